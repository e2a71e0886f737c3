/* merchant_util: the merchant service's pure helpers — licence numbers, phone numbers, ids, business days, distances.
 *
 * No I/O, no clock, no global state, no floating point. Errors are negative errno values; results are written only
 * on success. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MERCHANT_DAY_LEN 10     /* "YYYY-MM-DD" */
#define MERCHANT_LICENCE_LEN 18 /* 统一社会信用代码 */
#define MERCHANT_ID_MAX 64      /* sale ids and void ids: 1..64 of [A-Za-z0-9_-] */

/* Mainland China's box (common.v1.GeoPoint), micro-degrees. */
#define MERCHANT_LAT_MIN_E6 3000000
#define MERCHANT_LAT_MAX_E6 54000000
#define MERCHANT_LON_MIN_E6 73000000
#define MERCHANT_LON_MAX_E6 136000000

/* merchant_licence_valid(): whether s is a unified social credit code (统一社会信用代码) of GB 32100-2015: 18
 * characters of the code's alphabet (digits and upper-case letters without I, O, S, V, Z), the administrative
 * division code in positions 3..8 all digits, and the 18th character the check character of the first 17
 * (weights 3^(i) mod 31, check = 31 − Σ mod 31, 31 → 0). NULL is not valid. */
bool merchant_licence_valid(const char *s);

/* merchant_licence_check_char(): the check character for the first 17 characters of s, or '\0' when one of them is
 * outside the alphabet. For tests and for making valid numbers. */
char merchant_licence_check_char(const char *s17);

/* merchant_phone_valid(): a mainland mobile number (11 digits, 1[3-9]…) or a landline: a 0, an area code and a
 * local number, 10..12 digits in all, with an optional '-' after the area code (3 or 4 digits with the 0). */
bool merchant_phone_valid(const char *s);

/* merchant_id_valid(): a client-chosen id (sale id, void id): 1..MERCHANT_ID_MAX of [A-Za-z0-9_-]. */
bool merchant_id_valid(const char *s);

/* merchant_text_valid(): valid UTF-8 of at most max_chars code points without control characters; empty only when
 * !required. NULL counts as empty. */
bool merchant_text_valid(const char *s, size_t max_chars, bool required);

/* merchant_point_in_china(): whether the point lies in mainland China's box above. */
bool merchant_point_in_china(int32_t lat_e6, int32_t lon_e6);

/* merchant_business_day(): the business day of instant unix_ms in a zone utc_offset_min minutes east of UTC whose
 * days end at cutoff_min minutes after local midnight (an instant at or after the cut-off belongs to the next
 * day). The same rule as the wallet's. Writes "YYYY-MM-DD" and a NUL. -EINVAL for an offset beyond ±14 h, a
 * cut-off outside 0..1439 or an instant outside 1970..3000. */
int merchant_business_day(int64_t unix_ms, int utc_offset_min, int cutoff_min, char out[MERCHANT_DAY_LEN + 1]);

/* merchant_business_day_end(): the instant (unix ms) at which business day `day` ends (its cut-off). -EINVAL for
 * a day that is not a valid "YYYY-MM-DD". */
int merchant_business_day_end(const char *day, int utc_offset_min, int cutoff_min, int64_t *ret_ms);

/* merchant_day_valid(): whether s is a real calendar date "YYYY-MM-DD" in 1970..2999. */
bool merchant_day_valid(const char *s);

/* merchant_day_next(): the day after a valid day. -EINVAL for an invalid one. */
int merchant_day_next(const char *day, char out[MERCHANT_DAY_LEN + 1]);

/* merchant_distance_m(): the distance in metres between two points (micro-degrees), by the equirectangular
 * approximation on a sphere of radius 6 371 008.8 m, computed in integers: the longitude difference is scaled by
 * the cosine of the mean latitude, taken from a table of whole degrees with linear interpolation (error below
 * 4·10^-5). Within the 50 km radius that NearbyStores allows, the result differs from the haversine distance by
 * less than 0.1 %. Never overflows for points inside China's box; the result is saturated at UINT32_MAX. */
uint32_t merchant_distance_m(int32_t lat1_e6, int32_t lon1_e6, int32_t lat2_e6, int32_t lon2_e6);

/* merchant_bbox(): a box (micro-degrees) that contains every point within radius_m of (lat, lon): the prefilter of
 * a nearby search. The longitude half-width grows with latitude (1/cos); it is computed with the same table and
 * rounded outward. */
void merchant_bbox(int32_t lat_e6, int32_t lon_e6, uint32_t radius_m, int32_t *ret_lat_min, int32_t *ret_lat_max,
                   int32_t *ret_lon_min, int32_t *ret_lon_max);
