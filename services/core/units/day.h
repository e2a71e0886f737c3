/* sb_day: calendar days and business days, as plain integers — no clock, no time zone database.
 *
 * A day is a number: days since 1970-01-01 in the proleptic Gregorian calendar. Its text is "YYYY-MM-DD". A
 * business day (economics.md) ends at the daily cut-off (the airdrop's release time, default 22:00 local): a sale at
 * 22:00 or later belongs to the next day. Time zones are fixed UTC offsets in minutes (Asia/Shanghai: +480). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define SB_DAY_LEN 10        /* "YYYY-MM-DD" */
#define SB_DAY_MIN_YEAR 2000 /* the range accepted as text: the platform has no earlier days */
#define SB_DAY_MAX_YEAR 2999

/* The day number of a valid date (the caller checked it: see sb_day_parse). */
int64_t sb_day_from_civil(int64_t year, unsigned month, unsigned day);

/* The date of a day number. */
void sb_day_to_civil(int64_t day, int64_t *ret_year, unsigned *ret_month, unsigned *ret_day);

/* Parse "YYYY-MM-DD" strictly (exactly ten characters, a real date, years SB_DAY_MIN_YEAR..SB_DAY_MAX_YEAR) into a
 * day number. Returns 0, or -EINVAL with *ret_day untouched. */
int sb_day_parse(const char *text, int64_t *ret_day);

/* Whether text is a date sb_day_parse accepts. */
bool sb_day_valid(const char *text);

/* Write the day's "YYYY-MM-DD" and a NUL into out. Returns 0, or -ERANGE for a day outside the years above. */
int sb_day_format(int64_t day, char out[SB_DAY_LEN + 1]);

/* The business day of the instant unix_ms (ms since the epoch) for a zone utc_offset_min minutes east of UTC
 * (-840..840) and a cut-off cutoff_min minutes after local midnight (0..1439). Returns 0 and the day number, or
 * -EINVAL for arguments out of range or an instant outside 1970..2999 (formatting needs 2000..2999). */
int sb_business_day(int64_t unix_ms, int utc_offset_min, int cutoff_min, int64_t *ret_day);

/* The instant (ms since the epoch) business day `day` ends: the cut-off of that local day. Business day D runs from
 * the cut-off of local day D-1 to the cut-off of local day D. */
int64_t sb_business_day_end_ms(int64_t day, int utc_offset_min, int cutoff_min);
