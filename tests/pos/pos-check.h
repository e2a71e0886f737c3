/* The checks of the POS unit tests (no database, no display): always on, print where and what, then abort. */
#pragma once

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                                        \
        do {                                                                                               \
                if (!(cond)) {                                                                             \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);           \
                        abort();                                                                           \
                }                                                                                          \
        } while (0)

#define CHECK_EQ(a, b)                                                                                     \
        do {                                                                                               \
                long long a_ = (long long) (a), b_ = (long long) (b);                                      \
                if (a_ != b_) {                                                                            \
                        fprintf(stderr, "%s:%d: check failed: %s == %s (%lld != %lld)\n", __FILE__, __LINE__, \
                                #a, #b, a_, b_);                                                           \
                        abort();                                                                           \
                }                                                                                          \
        } while (0)
