/* airdrop_day: business days as day numbers, and the release instant of a day in the configured zone.
 *
 * The zone is the process's TZ, set once by airdrop_init() before the runner starts; localtime_r() and mktime() are
 * then thread-safe readers of it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "airdrop_internal.h"

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
        y -= m <= 2;
        const int64_t era = (y >= 0 ? y : y - 399) / 400;
        const unsigned yoe = (unsigned) (y - era * 400);
        const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
        const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + (int64_t) doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
        z += 719468;
        const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
        const unsigned doe = (unsigned) (z - era * 146097);
        const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        const unsigned mp = (5 * doy + 2) / 153;
        *d = doy - (153 * mp + 2) / 5 + 1;
        *m = mp < 10 ? mp + 3 : mp - 9;
        *y = (int64_t) yoe + era * 400 + (*m <= 2);
}

int airdrop_day_parse(const char *s, int64_t *ret_day) {
        if (!s || strlen(s) != AIRDROP_DAY_LEN || s[4] != '-' || s[7] != '-')
                return -EINVAL;
        for (int i = 0; i < AIRDROP_DAY_LEN; i++)
                if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
                        return -EINVAL;
        int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
        unsigned m = (unsigned) ((s[5] - '0') * 10 + (s[6] - '0')), d = (unsigned) ((s[8] - '0') * 10 + (s[9] - '0'));
        if (y < 2000 || y > 2999 || m < 1 || m > 12 || d < 1)
                return -EINVAL;
        static const unsigned mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        unsigned dim = mdays[m - 1] + (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
        if (d > dim)
                return -EINVAL;
        *ret_day = days_from_civil(y, m, d);
        return 0;
}

void airdrop_day_format(int64_t day, char out[AIRDROP_DAY_LEN + 1]) {
        int64_t y;
        unsigned m, d;
        civil_from_days(day, &y, &m, &d);
        unsigned yy = (unsigned) (y % 10000);
        const unsigned v[] = {yy / 1000, yy / 100 % 10, yy / 10 % 10, yy % 10, 10, m / 10, m % 10, 10, d / 10, d % 10};
        for (int i = 0; i < AIRDROP_DAY_LEN; i++)
                out[i] = v[i] == 10 ? '-' : (char) ('0' + v[i]);
        out[AIRDROP_DAY_LEN] = '\0';
}

int64_t airdrop_release_ms(const airdrop_state *st, int64_t day) {
        int64_t y;
        unsigned m, d;
        civil_from_days(day, &y, &m, &d);
        struct tm tm = {.tm_year = (int) (y - 1900), .tm_mon = (int) m - 1, .tm_mday = (int) d,
                        .tm_hour = st->release_minute / 60, .tm_min = st->release_minute % 60, .tm_isdst = -1};
        time_t t = mktime(&tm);
        return (int64_t) t * 1000;
}

int64_t airdrop_last_due_day(const airdrop_state *st, int64_t now_ms) {
        time_t t = (time_t) (now_ms / 1000);
        struct tm tm;
        localtime_r(&t, &tm);
        int64_t today = days_from_civil(tm.tm_year + 1900, (unsigned) tm.tm_mon + 1, (unsigned) tm.tm_mday);
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
