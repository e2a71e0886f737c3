/* merchant_util: see merchant_util.h. */
#include "merchant_util.h"

#include "day.h"

#include <errno.h>
#include <string.h>

/* --- 统一社会信用代码 (GB 32100-2015) ---------------------------------------------------------------------------- */

static const char licence_alphabet[] = "0123456789ABCDEFGHJKLMNPQRTUWXY"; /* 31 characters */
static const int licence_weights[17] = {1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28};

static int licence_value(char c) {
        if (c == '\0')
                return -1;
        const char *p = strchr(licence_alphabet, c);
        return p ? (int) (p - licence_alphabet) : -1;
}

char merchant_licence_check_char(const char *s17) {
        int sum = 0;
        for (int i = 0; i < 17; i++) {
                int v = licence_value(s17[i]);
                if (v < 0)
                        return '\0';
                sum += v * licence_weights[i];
        }
        int c = 31 - sum % 31;
        return licence_alphabet[c == 31 ? 0 : c];
}

bool merchant_licence_valid(const char *s) {
        if (!s || strlen(s) != MERCHANT_LICENCE_LEN)
                return false;
        /* Positions 3..8 are the administrative division code of the registering authority. */
        for (int i = 2; i < 8; i++)
                if (s[i] < '0' || s[i] > '9')
                        return false;
        char c = merchant_licence_check_char(s);
        return c != '\0' && c == s[17];
}

/* --- Phones, ids, text ----------------------------------------------------------------------------------------- */

static bool all_digits(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (s[i] < '0' || s[i] > '9')
                        return false;
        return true;
}

bool merchant_phone_valid(const char *s) {
        if (!s)
                return false;
        size_t n = strlen(s);
        if (n == 11 && s[0] == '1' && s[1] >= '3' && s[1] <= '9' && all_digits(s, n))
                return true;
        if (n < 10 || n > 13 || s[0] != '0')
                return false;
        const char *dash = strchr(s, '-');
        if (dash) {
                size_t area = (size_t) (dash - s);
                if ((area != 3 && area != 4) || !all_digits(s, area) || strchr(dash + 1, '-'))
                        return false;
                size_t local = n - area - 1;
                return local >= 7 && local <= 8 && all_digits(dash + 1, local);
        }
        return n <= 12 && all_digits(s, n);
}

bool merchant_id_valid(const char *s) {
        if (!s)
                return false;
        size_t n = 0;
        for (; s[n]; n++) {
                char c = s[n];
                if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
                      c == '-'))
                        return false;
                if (n >= MERCHANT_ID_MAX)
                        return false;
        }
        return n >= 1;
}

bool merchant_text_valid(const char *s, size_t max_chars, bool required) {
        if (!s || !*s)
                return !required;
        const unsigned char *p = (const unsigned char *) s;
        size_t chars = 0;
        while (*p) {
                unsigned c = *p;
                size_t len;
                uint32_t cp;
                if (c < 0x80) {
                        if (c < 0x20 || c == 0x7f)
                                return false;
                        len = 1;
                        cp = c;
                } else if ((c & 0xe0) == 0xc0) {
                        len = 2;
                        cp = c & 0x1f;
                } else if ((c & 0xf0) == 0xe0) {
                        len = 3;
                        cp = c & 0x0f;
                } else if ((c & 0xf8) == 0xf0) {
                        len = 4;
                        cp = c & 0x07;
                } else
                        return false;
                for (size_t i = 1; i < len; i++) {
                        if ((p[i] & 0xc0) != 0x80)
                                return false;
                        cp = (cp << 6) | (p[i] & 0x3f);
                }
                /* Overlong forms, surrogates and values beyond U+10FFFF are not UTF-8. */
                if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
                    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff || (cp >= 0x80 && cp < 0xa0))
                        return false;
                p += len;
                if (++chars > max_chars)
                        return false;
        }
        return true;
}

bool merchant_point_in_china(int32_t lat_e6, int32_t lon_e6) {
        return lat_e6 >= MERCHANT_LAT_MIN_E6 && lat_e6 <= MERCHANT_LAT_MAX_E6 && lon_e6 >= MERCHANT_LON_MIN_E6 &&
               lon_e6 <= MERCHANT_LON_MAX_E6;
}

/* --- Business days ---------------------------------------------------------------------------------------------- */

int merchant_business_day(int64_t unix_ms, int utc_offset_min, int cutoff_min, char out[MERCHANT_DAY_LEN + 1]) {
        int64_t day;
        int r = sb_business_day(unix_ms, utc_offset_min, cutoff_min, &day);
        return r < 0 ? r : sb_day_format(day, out);
}

int merchant_business_day_end(const char *day, int utc_offset_min, int cutoff_min, int64_t *ret_ms) {
        int64_t d;
        if (sb_day_parse(day, &d) < 0 || cutoff_min < 0 || cutoff_min >= 1440)
                return -EINVAL;
        *ret_ms = sb_business_day_end_ms(d, utc_offset_min, cutoff_min);
        return 0;
}

bool merchant_day_valid(const char *s) {
        return sb_day_valid(s);
}

int merchant_day_next(const char *day, char out[MERCHANT_DAY_LEN + 1]) {
        int64_t d;
        if (sb_day_parse(day, &d) < 0)
                return -EINVAL;
        return sb_day_format(d + 1, out);
}

/* --- Distances -------------------------------------------------------------------------------------------------- */

/* cos(d°) × 10^6 for d = 0..90. */
static const int32_t cos_e6[91] = {
        1000000, 999848, 999391, 998630, 997564, 996195, 994522, 992546, 990268, 987688,
        984808,  981627, 978148, 974370, 970296, 965926, 961262, 956305, 951057, 945519,
        939693,  933580, 927184, 920505, 913545, 906308, 898794, 891007, 882948, 874620,
        866025,  857167, 848048, 838671, 829038, 819152, 809017, 798636, 788011, 777146,
        766044,  754710, 743145, 731354, 719340, 707107, 694658, 681998, 669131, 656059,
        642788,  629320, 615661, 601815, 587785, 573576, 559193, 544639, 529919, 515038,
        500000,  484810, 469472, 453990, 438371, 422618, 406737, 390731, 374607, 358368,
        342020,  325568, 309017, 292372, 275637, 258819, 241922, 224951, 207912, 190809,
        173648,  156434, 139173, 121869, 104528, 87156,  69756,  52336,  34899,  17452,
        0,
};

/* Metres per degree of a great circle on the mean Earth radius (6 371 008.8 m), × 1000: 111 195.080 m. Multiplied
 * by a difference in micro-degrees and divided by 10^6 it gives millimetres. */
#define METRES_PER_DEG_E3 INT64_C(111195080)

/* cos of a latitude in micro-degrees, × 10^6, by linear interpolation between whole degrees. */
static int64_t cos_lat_e6(int64_t lat_e6) {
        if (lat_e6 < 0)
                lat_e6 = -lat_e6;
        if (lat_e6 >= 90000000)
                return 0;
        int64_t deg = lat_e6 / 1000000, frac = lat_e6 % 1000000;
        return cos_e6[deg] + (cos_e6[deg + 1] - cos_e6[deg]) * frac / 1000000;
}

static uint64_t isqrt_u64(uint64_t v) {
        uint64_t r = 0, bit = UINT64_C(1) << 62;
        while (bit > v)
                bit >>= 2;
        while (bit) {
                if (v >= r + bit) {
                        v -= r + bit;
                        r = (r >> 1) + bit;
                } else
                        r >>= 1;
                bit >>= 2;
        }
        return r;
}

uint32_t merchant_distance_m(int32_t lat1_e6, int32_t lon1_e6, int32_t lat2_e6, int32_t lon2_e6) {
        int64_t dlat = (int64_t) lat2_e6 - lat1_e6;
        int64_t dlon = (int64_t) lon2_e6 - lon1_e6;
        int64_t c = cos_lat_e6(((int64_t) lat1_e6 + lat2_e6) / 2);
        /* |dlat|, |dlon| < 4.3·10^9 and c ≤ 10^6: dlon × c < 4.3·10^15, then × 111195080 / 10^9 after a first
         * division keeps every product below 2^63. Distances in millimetres keep the rounding small. */
        int64_t x_e6 = dlon * c / 1000000; /* the longitude difference as micro-degrees of a great circle */
        int64_t dy_mm = dlat * METRES_PER_DEG_E3 / 1000000;
        int64_t dx_mm = x_e6 * METRES_PER_DEG_E3 / 1000000;
        if (dy_mm < 0)
                dy_mm = -dy_mm;
        if (dx_mm < 0)
                dx_mm = -dx_mm;
        /* Squares of millimetres could overflow: the sum is taken in whole metres (rounded), below 4.8·10^5 km
         * for any two int32 points, so each square fits easily and the overflow checks below never fire inside
         * China. */
        uint64_t dy = (uint64_t) (dy_mm + 500) / 1000, dx = (uint64_t) (dx_mm + 500) / 1000;
        if (dx > UINT32_MAX || dy > UINT32_MAX)
                return UINT32_MAX;
        uint64_t sq = dx * dx;
        uint64_t sy = dy * dy;
        if (sq > UINT64_MAX - sy)
                return UINT32_MAX;
        uint64_t d = isqrt_u64(sq + sy);
        return d > UINT32_MAX ? UINT32_MAX : (uint32_t) d;
}

void merchant_bbox(int32_t lat_e6, int32_t lon_e6, uint32_t radius_m, int32_t *ret_lat_min, int32_t *ret_lat_max,
                   int32_t *ret_lon_min, int32_t *ret_lon_max) {
        /* Half-height in micro-degrees, rounded up, plus one for the rounding of the distance. */
        int64_t dlat = ((int64_t) radius_m * 1000 * 1000000 + METRES_PER_DEG_E3 - 1) / METRES_PER_DEG_E3 + 1;
        /* The box's widest latitude has the smallest cosine. */
        int64_t far_lat = (lat_e6 < 0 ? -(int64_t) lat_e6 : lat_e6) + dlat;
        int64_t c = cos_lat_e6(far_lat);
        int64_t dlon = c <= 1000 ? INT64_C(180000000) : (dlat * 1000000 + c - 1) / c + 1;
        int64_t v[4] = {lat_e6 - dlat, lat_e6 + dlat, lon_e6 - dlon, lon_e6 + dlon};
        for (int i = 0; i < 4; i++)
                v[i] = v[i] < INT32_MIN ? INT32_MIN : v[i] > INT32_MAX ? INT32_MAX : v[i];
        *ret_lat_min = (int32_t) v[0];
        *ret_lat_max = (int32_t) v[1];
        *ret_lon_min = (int32_t) v[2];
        *ret_lon_max = (int32_t) v[3];
}
