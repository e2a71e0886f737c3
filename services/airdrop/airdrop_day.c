/* airdrop_day: business days as day numbers, and the release instant of a day in the configured zone.
 *
 * The zone is the process's TZ, set once by airdrop_init() before the runner starts; localtime_r() and mktime() are
 * then thread-safe readers of it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "airdrop_internal.h"
#include "day.h"

int airdrop_day_parse(const char *s, int64_t *ret_day) {
        return sb_day_parse(s, ret_day);
}

void airdrop_day_format(int64_t day, char out[AIRDROP_DAY_LEN + 1]) {
        if (sb_day_format(day, out) < 0)
                snprintf(out, AIRDROP_DAY_LEN + 1, "0000-00-00");
}

int64_t airdrop_release_ms(const airdrop_state *st, int64_t day) {
        int64_t y;
        unsigned m, d;
        sb_day_to_civil(day, &y, &m, &d);
        struct tm tm = {.tm_year = (int) (y - 1900), .tm_mon = (int) m - 1, .tm_mday = (int) d,
                        .tm_hour = st->release_minute / 60, .tm_min = st->release_minute % 60, .tm_isdst = -1};
        time_t t = mktime(&tm);
        return (int64_t) t * 1000;
}

int64_t airdrop_last_due_day(const airdrop_state *st, int64_t now_ms) {
        time_t t = (time_t) (now_ms / 1000);
        struct tm tm;
        localtime_r(&t, &tm);
        int64_t today = sb_day_from_civil(tm.tm_year + 1900, (unsigned) tm.tm_mon + 1, (unsigned) tm.tm_mday);
        /* The release instant decides, not the clock fields, so that a DST jump cannot skip or repeat a day. */
        return now_ms >= airdrop_release_ms(st, today) ? today : today - 1;
}

int64_t airdrop_now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t airdrop_mono_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
