/* sb_test: the small helpers every plain C test shares (an assert that always runs, and the test database). */
#pragma once

#include <stdio.h>
#include <stdlib.h>

#include "db/db.h"

/* Exit code that meson reads as "skipped". */
#define SB_TEST_SKIP 77

/* Checks cond even in release builds; on failure prints where and what, then aborts. */
#define SB_CHECK(cond)                                                                                     \
    do {                                                                                                   \
        if (!(cond)) {                                                                                     \
            fprintf(stderr, "%s:%d: %s: check failed: %s\n", __FILE__, __LINE__, __func__, #cond);         \
            abort();                                                                                       \
        }                                                                                                  \
    } while (0)

/* Like SB_CHECK for an integer comparison a == b, printing both values. */
#define SB_CHECK_EQ(a, b)                                                                                  \
    do {                                                                                                   \
        long long sb_a_ = (long long) (a), sb_b_ = (long long) (b);                                        \
        if (sb_a_ != sb_b_) {                                                                              \
            fprintf(stderr, "%s:%d: %s: check failed: %s == %s (%lld != %lld)\n", __FILE__, __LINE__,      \
                    __func__, #a, #b, sb_a_, sb_b_);                                                       \
            abort();                                                                                       \
        }                                                                                                  \
    } while (0)

/* Fills cfg with the administrator's connection to the test server started by tests/lib/with-mariadb, read from
 * SB_TEST_DB_SOCKET, SB_TEST_DB_PORT, SB_TEST_DB_ADMIN_USER (default root) and SB_TEST_DB_ADMIN_PASSWORD. The
 * strings point into the environment. When SB_TEST_DB_SOCKET is unset, prints why and exits with SB_TEST_SKIP. */
void sb_test_db_admin_config(sb_db_config *cfg);

/* Opens an administrator's connection to the test server (see sb_test_db_admin_config), or aborts. */
sb_db *sb_test_db_open_admin(void);
