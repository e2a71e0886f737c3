/* Tests of services/core/units/day: dates as day numbers and business days around the cut-off. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "day.h"

static int failures;

#define CHECK(cond)                                                                                                   \
        do {                                                                                                          \
                if (!(cond)) {                                                                                        \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                      \
                        failures++;                                                                                   \
                }                                                                                                     \
        } while (0)

int main(void) {
        int64_t d = -1;
        char out[SB_DAY_LEN + 1];
        CHECK(sb_day_from_civil(1970, 1, 1) == 0);
        CHECK(sb_day_parse("2000-01-01", &d) == 0 && d == 10957);
        CHECK(sb_day_parse("2024-02-29", &d) == 0 && sb_day_format(d, out) == 0 && strcmp(out, "2024-02-29") == 0);
        CHECK(sb_day_parse("2000-02-29", &d) == 0);
        const char *bad[] = { "2023-02-29", "1900-02-29", "2024-13-01", "2024-00-10", "2024-04-31", "2024-4-01",
                              "2024/04/01", "1999-12-31", "3000-01-01", "", "2024-04-011", "２０２４-04-01" };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                int64_t keep = 42;
                CHECK(sb_day_parse(bad[i], &keep) == -EINVAL && keep == 42);
                CHECK(!sb_day_valid(bad[i]));
        }
        CHECK(sb_day_parse(NULL, &d) == -EINVAL);
        /* Every day of 2000..2999 round-trips through text. */
        int64_t first = sb_day_from_civil(2000, 1, 1), last = sb_day_from_civil(2999, 12, 31);
        int bad_round = 0;
        for (int64_t k = first; k <= last; k++) {
                int64_t back = -1;
                if (sb_day_format(k, out) != 0 || sb_day_parse(out, &back) != 0 || back != k)
                        bad_round++;
        }
        CHECK(bad_round == 0);
        CHECK(sb_day_format(last + 1, out) == -ERANGE && sb_day_format(first - 1, out) == -ERANGE);

        /* Business days in Asia/Shanghai (+480) with the 22:00 cut-off: 2024-03-01 21:59:59.999 local is still
         * 2024-03-01; 22:00 is 2024-03-02. 22:00 local = 14:00 UTC. */
        int64_t mar1 = sb_day_from_civil(2024, 3, 1);
        int64_t end = sb_business_day_end_ms(mar1, 480, 1320);
        CHECK(end == mar1 * 86400000 + 14 * 3600000);
        CHECK(sb_business_day(end - 1, 480, 1320, &d) == 0 && d == mar1);
        CHECK(sb_business_day(end, 480, 1320, &d) == 0 && d == mar1 + 1);
        /* Local midnight belongs to the same day; UTC offset west of Greenwich. */
        CHECK(sb_business_day(mar1 * 86400000 - 8 * 3600000, 480, 1320, &d) == 0 && d == mar1);
        CHECK(sb_business_day(mar1 * 86400000 + 5 * 3600000, -300, 0, &d) == 0 && d == mar1 + 1);
        int64_t keep = 7;
        CHECK(sb_business_day(0, 480, 1440, &keep) == -EINVAL && keep == 7);
        CHECK(sb_business_day(-1, 480, 1320, &keep) == -EINVAL);
        CHECK(sb_business_day(0, 900, 0, &keep) == -EINVAL);
        if (failures) {
                fprintf(stderr, "%d check(s) failed\n", failures);
                return 1;
        }
        printf("day: all checks passed\n");
        return 0;
}
