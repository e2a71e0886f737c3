/* sb_day: Howard Hinnant's civil-date algorithms (exact for the proleptic Gregorian calendar), business days. */
#include "day.h"

#include <errno.h>
#include <string.h>

#define DAY_MS INT64_C(86400000)

int64_t sb_day_from_civil(int64_t y, unsigned m, unsigned d) {
        y -= m <= 2;
        const int64_t era = (y >= 0 ? y : y - 399) / 400;
        const unsigned yoe = (unsigned)(y - era * 400);
        const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
        const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + (int64_t)doe - 719468;
}

void sb_day_to_civil(int64_t z, int64_t *ret_year, unsigned *ret_month, unsigned *ret_day) {
        z += 719468;
        const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
        const unsigned doe = (unsigned)(z - era * 146097);
        const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        const unsigned mp = (5 * doy + 2) / 153;
        const unsigned d = doy - (153 * mp + 2) / 5 + 1;
        const unsigned m = mp < 10 ? mp + 3 : mp - 9;
        *ret_year = (int64_t)yoe + era * 400 + (m <= 2);
        *ret_month = m;
        *ret_day = d;
}

int sb_day_parse(const char *s, int64_t *ret_day) {
        if (!s || strlen(s) != SB_DAY_LEN || s[4] != '-' || s[7] != '-')
                return -EINVAL;
        for (int i = 0; i < SB_DAY_LEN; i++)
                if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
                        return -EINVAL;
        const int64_t y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
        const unsigned m = (unsigned)((s[5] - '0') * 10 + (s[6] - '0'));
        const unsigned d = (unsigned)((s[8] - '0') * 10 + (s[9] - '0'));
        if (y < SB_DAY_MIN_YEAR || y > SB_DAY_MAX_YEAR || m < 1 || m > 12 || d < 1)
                return -EINVAL;
        static const unsigned mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
        const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        if (d > mdays[m - 1] + (m == 2 && leap))
                return -EINVAL;
        *ret_day = sb_day_from_civil(y, m, d);
        return 0;
}

bool sb_day_valid(const char *text) {
        int64_t day;
        return sb_day_parse(text, &day) == 0;
}

int sb_day_format(int64_t day, char out[SB_DAY_LEN + 1]) {
        int64_t y;
        unsigned m, d;
        if (day < sb_day_from_civil(SB_DAY_MIN_YEAR, 1, 1) || day > sb_day_from_civil(SB_DAY_MAX_YEAR, 12, 31))
                return -ERANGE;
        sb_day_to_civil(day, &y, &m, &d);
        out[0] = (char)('0' + y / 1000);
        out[1] = (char)('0' + y / 100 % 10);
        out[2] = (char)('0' + y / 10 % 10);
        out[3] = (char)('0' + y % 10);
        out[4] = '-';
        out[5] = (char)('0' + m / 10);
        out[6] = (char)('0' + m % 10);
        out[7] = '-';
        out[8] = (char)('0' + d / 10);
        out[9] = (char)('0' + d % 10);
        out[10] = '\0';
        return 0;
}

static int64_t floor_div(int64_t a, int64_t b) {
        const int64_t q = a / b;
        return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

int sb_business_day(int64_t unix_ms, int utc_offset_min, int cutoff_min, int64_t *ret_day) {
        if (utc_offset_min < -14 * 60 || utc_offset_min > 14 * 60 || cutoff_min < 0 || cutoff_min >= 1440 ||
            unix_ms < 0 || unix_ms > INT64_C(32503680000000) /* 3000-01-01 */)
                return -EINVAL;
        const int64_t local = unix_ms + (int64_t)utc_offset_min * 60000;
        int64_t day = floor_div(local, DAY_MS);
        if (local - day * DAY_MS >= (int64_t)cutoff_min * 60000)
                day++;
        *ret_day = day;
        return 0;
}

int64_t sb_business_day_end_ms(int64_t day, int utc_offset_min, int cutoff_min) {
        return day * DAY_MS + (int64_t)cutoff_min * 60000 - (int64_t)utc_offset_min * 60000;
}
