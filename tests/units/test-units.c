/* SPDX-License-Identifier: LicenseRef-proprietary */
/* Unit tests of services/core/units: checked arithmetic, rounding, formatting and strict parsing. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "units.h"

__extension__ typedef __int128 i128;

#define CHECK(cond)                                                                   \
        do {                                                                          \
                if (!(cond)) {                                                        \
                        fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
                        abort();                                                      \
                }                                                                     \
        } while (0)

#define CHECK_EQ(a, b)                                                                                   \
        do {                                                                                             \
                int64_t a_ = (int64_t) (a), b_ = (int64_t) (b);                                          \
                if (a_ != b_) {                                                                          \
                        fprintf(stderr, "%s:%d: CHECK_EQ(%s, %s) failed: %" PRId64 " != %" PRId64 "\n", \
                                __FILE__, __LINE__, #a, #b, a_, b_);                                     \
                        abort();                                                                         \
                }                                                                                        \
        } while (0)

#define CHECK_STR(a, b)                                                                                 \
        do {                                                                                            \
                const char *a_ = (a), *b_ = (b);                                                        \
                if (strcmp(a_, b_) != 0) {                                                              \
                        fprintf(stderr, "%s:%d: CHECK_STR(%s, %s) failed: \"%s\" != \"%s\"\n", __FILE__, \
                                __LINE__, #a, #b, a_, b_);                                              \
                        abort();                                                                        \
                }                                                                                       \
        } while (0)

#define SENTINEL INT64_C(0x5b5b5b5b5b5b5b5b)

static uint64_t rng_state;

static uint64_t rng(void) {
        /* xorshift64* */
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return rng_state * UINT64_C(2685821657736338717);
}

static int64_t rng_i64(void) {
        /* Mix magnitudes so small, medium and extreme values all appear. */
        unsigned bits = (unsigned) (rng() % 64);
        uint64_t v = bits == 63 ? rng() : rng() & ((UINT64_C(1) << bits) - 1);
        return (int64_t) v;
}

static void test_add_sub_mul(void) {
        int64_t r = SENTINEL;

        CHECK_EQ(sb_add_i64(2, 3, &r), 0);
        CHECK_EQ(r, 5);
        r = SENTINEL;
        CHECK_EQ(sb_add_i64(INT64_MAX, 1, &r), -ERANGE);
        CHECK_EQ(r, SENTINEL);
        CHECK_EQ(sb_add_i64(INT64_MIN, -1, &r), -ERANGE);
        CHECK_EQ(sb_sub_i64(INT64_MIN, 1, &r), -ERANGE);
        CHECK_EQ(sb_sub_i64(0, INT64_MIN, &r), -ERANGE);
        CHECK_EQ(r, SENTINEL);
        CHECK_EQ(sb_sub_i64(-5, 7, &r), 0);
        CHECK_EQ(r, -12);
        CHECK_EQ(sb_mul_i64(INT64_MAX, 2, &r), -ERANGE);
        CHECK_EQ(sb_mul_i64(INT64_MIN, -1, &r), -ERANGE);
        CHECK_EQ(sb_mul_i64(-4, 25, &r), 0);
        CHECK_EQ(r, -100);
}

static void test_muldiv_rounding(void) {
        static const struct {
                int64_t a, b, c;
                int64_t down, up, half_even, toward_zero;
        } v[] = {
                { 7, 1, 2, 3, 4, 4, 3 },      { 5, 1, 2, 2, 3, 2, 2 },      { -7, 1, 2, -4, -3, -4, -3 },
                { -5, 1, 2, -3, -2, -2, -2 }, { 7, 1, -2, -4, -3, -4, -3 }, { -7, 1, -2, 3, 4, 4, 3 },
                { 10, 1, 3, 3, 4, 3, 3 },     { 11, 1, 3, 3, 4, 4, 3 },     { 6, 1, 3, 2, 2, 2, 2 },
                { 0, 5, 7, 0, 0, 0, 0 },      { 1, 1, 4, 0, 1, 0, 0 },      { 3, 1, 4, 0, 1, 1, 0 },
                /* the sale's SP: 1000.00 yuan at 10 % and 2.00 yuan → 50 SP exactly */
                { 100000000, 10000, 2000000, 500000, 500000, 500000, 500000 },
                /* a third: rounded up for the deposit, down for shares */
                { 100000000, 10000, 3000000, 333333, 333334, 333333, 333333 },
        };
        int64_t r;

        for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
                CHECK_EQ(sb_muldiv_i64(v[i].a, v[i].b, v[i].c, SB_ROUND_DOWN, &r), 0);
                CHECK_EQ(r, v[i].down);
                CHECK_EQ(sb_muldiv_i64(v[i].a, v[i].b, v[i].c, SB_ROUND_UP, &r), 0);
                CHECK_EQ(r, v[i].up);
                CHECK_EQ(sb_muldiv_i64(v[i].a, v[i].b, v[i].c, SB_ROUND_HALF_EVEN, &r), 0);
                CHECK_EQ(r, v[i].half_even);
                CHECK_EQ(sb_muldiv_i64(v[i].a, v[i].b, v[i].c, SB_ROUND_TOWARD_ZERO, &r), 0);
                CHECK_EQ(r, v[i].toward_zero);
        }
        CHECK_EQ(sb_div_i64(-1, 3, SB_ROUND_DOWN, &r), 0);
        CHECK_EQ(r, -1);
}

static void test_muldiv_extremes(void) {
        int64_t r = SENTINEL;

        CHECK_EQ(sb_muldiv_i64(1, 1, 0, SB_ROUND_DOWN, &r), -EDOM);
        CHECK_EQ(sb_muldiv_i64(1, 1, 1, (sb_round) 99, &r), -EINVAL);
        CHECK_EQ(r, SENTINEL);
        /* The product overflows 64 bits but the quotient fits: exact via 128 bits. */
        CHECK_EQ(sb_muldiv_i64(INT64_MAX, INT64_MAX, INT64_MAX, SB_ROUND_DOWN, &r), 0);
        CHECK_EQ(r, INT64_MAX);
        CHECK_EQ(sb_muldiv_i64(INT64_MIN, INT64_MIN, INT64_MIN, SB_ROUND_UP, &r), 0);
        CHECK_EQ(r, INT64_MIN);
        CHECK_EQ(sb_muldiv_i64(INT64_MAX, 3, 4, SB_ROUND_DOWN, &r), 0);
        CHECK_EQ(r, (int64_t) (((i128) INT64_MAX * 3) / 4));
        r = SENTINEL;
        CHECK_EQ(sb_muldiv_i64(INT64_MAX, 2, 1, SB_ROUND_DOWN, &r), -ERANGE);
        CHECK_EQ(sb_muldiv_i64(INT64_MIN, -1, 1, SB_ROUND_DOWN, &r), -ERANGE);
        CHECK_EQ(sb_muldiv_i64(INT64_MIN, 1, -1, SB_ROUND_DOWN, &r), -ERANGE);
        CHECK_EQ(sb_muldiv_i64(INT64_MAX, INT64_MAX, 1, SB_ROUND_HALF_EVEN, &r), -ERANGE);
        CHECK_EQ(r, SENTINEL);
        /* Rounding up past INT64_MAX is an overflow too. */
        CHECK_EQ(sb_muldiv_i64(INT64_MAX, 2, 2, SB_ROUND_UP, &r), 0);
        CHECK_EQ(r, INT64_MAX);
        CHECK_EQ(sb_muldiv_i64(INT64_MAX - 1, 4, 4, SB_ROUND_UP, &r), 0);
        CHECK_EQ(r, INT64_MAX - 1);
}

/* floor and ceiling of n / d by the definition, for the reference. */
static i128 ref_floor(i128 n, i128 d) {
        i128 q = n / d;
        if (n % d != 0 && ((n < 0) != (d < 0)))
                q--;
        return q;
}

static void test_arith_random(void) {
        int64_t r;

        for (int i = 0; i < 200000; i++) {
                int64_t a = rng_i64(), b = rng_i64(), c = rng_i64();
                i128 exact;

                if (rng() & 1)
                        a = -a;
                if (rng() & 1)
                        b = -b;
                if (rng() & 1)
                        c = -c;

                exact = (i128) a + b;
                if (exact > INT64_MAX || exact < INT64_MIN)
                        CHECK_EQ(sb_add_i64(a, b, &r), -ERANGE);
                else {
                        CHECK_EQ(sb_add_i64(a, b, &r), 0);
                        CHECK(r == exact);
                }
                exact = (i128) a * b;
                if (exact > INT64_MAX || exact < INT64_MIN)
                        CHECK_EQ(sb_mul_i64(a, b, &r), -ERANGE);
                else {
                        CHECK_EQ(sb_mul_i64(a, b, &r), 0);
                        CHECK(r == exact);
                }

                if (c == 0) {
                        CHECK_EQ(sb_muldiv_i64(a, b, c, SB_ROUND_DOWN, &r), -EDOM);
                        continue;
                }
                /* The properties that define each mode, checked on the exact rational a·b/c. */
                {
                        i128 fl = ref_floor((i128) a * b, c), ce = -ref_floor(-((i128) a * b), c);
                        int e;

                        e = sb_muldiv_i64(a, b, c, SB_ROUND_DOWN, &r);
                        if (fl > INT64_MAX || fl < INT64_MIN)
                                CHECK_EQ(e, -ERANGE);
                        else {
                                CHECK_EQ(e, 0);
                                CHECK(r == fl);
                        }
                        e = sb_muldiv_i64(a, b, c, SB_ROUND_UP, &r);
                        if (ce > INT64_MAX || ce < INT64_MIN)
                                CHECK_EQ(e, -ERANGE);
                        else {
                                CHECK_EQ(e, 0);
                                CHECK(r == ce);
                        }
                        e = sb_muldiv_i64(a, b, c, SB_ROUND_HALF_EVEN, &r);
                        if (e == 0)
                                CHECK(r == fl || r == ce);
                        else
                                CHECK_EQ(e, -ERANGE);
                }
        }
}

static void test_format(void) {
        char buf[SB_UNITS_FORMAT_MAX];

        CHECK_EQ(sb_fen_format(100000, buf, sizeof(buf)), 7);
        CHECK_STR(buf, "1000.00");
        sb_fen_format(-50, buf, sizeof(buf));
        CHECK_STR(buf, "-0.50");
        sb_fen_format(0, buf, sizeof(buf));
        CHECK_STR(buf, "0.00");
        sb_fen_format(INT64_MIN, buf, sizeof(buf));
        CHECK_STR(buf, "-92233720368547758.08");
        sb_fen_format(INT64_MAX, buf, sizeof(buf));
        CHECK_STR(buf, "92233720368547758.07");

        CHECK_EQ(sb_units_format(88800, buf, sizeof(buf)), 4);
        CHECK_STR(buf, "8.88");
        sb_units_format(9822400, buf, sizeof(buf));
        CHECK_STR(buf, "982.24");
        sb_units_format(25000, buf, sizeof(buf));
        CHECK_STR(buf, "2.5");
        sb_units_format(50000, buf, sizeof(buf));
        CHECK_STR(buf, "5");
        sb_units_format(0, buf, sizeof(buf));
        CHECK_STR(buf, "0");
        sb_units_format(-1, buf, sizeof(buf));
        CHECK_STR(buf, "-0.0001");
        sb_units_format_fixed(88800, buf, sizeof(buf));
        CHECK_STR(buf, "8.8800");
        sb_units_format_fixed(INT64_MIN, buf, sizeof(buf));
        CHECK_STR(buf, "-922337203685477.5808");

        sb_price_format(2000000, buf, sizeof(buf));
        CHECK_STR(buf, "2.00");
        sb_price_format(1234500, buf, sizeof(buf));
        CHECK_STR(buf, "1.2345");
        sb_price_format(1, buf, sizeof(buf));
        CHECK_STR(buf, "0.000001");

        /* Too small a buffer: refused, untouched. "1000.00" needs 8 bytes. */
        memcpy(buf, "xxxxxxxx", 9);
        CHECK_EQ(sb_fen_format(100000, buf, 7), -ENOBUFS);
        CHECK_STR(buf, "xxxxxxxx");
        CHECK_EQ(sb_fen_format(100000, buf, 8), 7);
        CHECK_EQ(sb_units_format(1, NULL, 0), -ENOBUFS);
}

static void test_parse(void) {
        static const char *const bad[] = {
                "", "-", "+1", " 1", "1 ", "1.", ".5", "1.2.3", "1,5", "1e3", "0x10", "١", "--1", "1-",
                "1.234", "12345678901234567890123456789012345678901", "nan", "-.5", "1..0",
        };
        int64_t r = SENTINEL;

        CHECK_EQ(sb_fen_parse("1000.00", &r), 0);
        CHECK_EQ(r, 100000);
        CHECK_EQ(sb_fen_parse("1000", &r), 0);
        CHECK_EQ(r, 100000);
        CHECK_EQ(sb_fen_parse("1000.5", &r), 0);
        CHECK_EQ(r, 100050);
        CHECK_EQ(sb_fen_parse("-0.50", &r), 0);
        CHECK_EQ(r, -50);
        CHECK_EQ(sb_fen_parse("-0", &r), 0);
        CHECK_EQ(r, 0);
        CHECK_EQ(sb_fen_parse("0007.01", &r), 0);
        CHECK_EQ(r, 701);
        CHECK_EQ(sb_units_parse("8.88", &r), 0);
        CHECK_EQ(r, 88800);
        CHECK_EQ(sb_units_parse("982.2400", &r), 0);
        CHECK_EQ(r, 9822400);
        CHECK_EQ(sb_units_parse("1.2345", &r), 0);
        CHECK_EQ(r, 12345);
        CHECK_EQ(sb_price_parse("1.00", &r), 0);
        CHECK_EQ(r, 1000000);
        CHECK_EQ(sb_price_parse("0.000001", &r), 0);
        CHECK_EQ(r, 1);

        r = SENTINEL;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                if (sb_fen_parse(bad[i], &r) != -EINVAL) {
                        fprintf(stderr, "%s:%d: sb_fen_parse(\"%s\") was not refused with -EINVAL\n", __FILE__,
                                __LINE__, bad[i]);
                        abort();
                }
        }
        CHECK_EQ(sb_fen_parse(NULL, &r), -EINVAL);
        CHECK_EQ(sb_units_parse("1.23456", &r), -EINVAL);
        CHECK_EQ(sb_price_parse("1.0000001", &r), -EINVAL);
        CHECK_EQ(r, SENTINEL);

        /* The int64 edges, and one past them. */
        CHECK_EQ(sb_fen_parse("92233720368547758.07", &r), 0);
        CHECK_EQ(r, INT64_MAX);
        CHECK_EQ(sb_fen_parse("-92233720368547758.08", &r), 0);
        CHECK_EQ(r, INT64_MIN);
        r = SENTINEL;
        CHECK_EQ(sb_fen_parse("92233720368547758.08", &r), -ERANGE);
        CHECK_EQ(sb_fen_parse("-92233720368547758.09", &r), -ERANGE);
        CHECK_EQ(sb_units_parse("922337203685478", &r), -ERANGE);
        CHECK_EQ(sb_fen_parse("99999999999999999999999999999999999999", &r), -ERANGE);
        CHECK_EQ(r, SENTINEL);
        /* Junk wins over range: a malformed huge number is malformed. */
        CHECK_EQ(sb_fen_parse("99999999999999999999999999x", &r), -EINVAL);
}

static void test_roundtrip_random(void) {
        char buf[SB_UNITS_FORMAT_MAX];
        int64_t r;

        for (int i = 0; i < 100000; i++) {
                int64_t v = rng_i64();

                if (rng() & 1)
                        v = -v - (int64_t) (rng() & 1); /* reaches INT64_MIN now and then */
                CHECK(sb_fen_format(v, buf, sizeof(buf)) > 0);
                CHECK_EQ(sb_fen_parse(buf, &r), 0);
                CHECK_EQ(r, v);
                CHECK(sb_units_format(v, buf, sizeof(buf)) > 0);
                CHECK_EQ(sb_units_parse(buf, &r), 0);
                CHECK_EQ(r, v);
                CHECK(sb_units_format_fixed(v, buf, sizeof(buf)) > 0);
                CHECK_EQ(sb_units_parse(buf, &r), 0);
                CHECK_EQ(r, v);
                CHECK(sb_price_format(v, buf, sizeof(buf)) > 0);
                CHECK_EQ(sb_price_parse(buf, &r), 0);
                CHECK_EQ(r, v);
        }
}

int main(void) {
        const char *seed_env = getenv("SB_TEST_SEED");

        rng_state = seed_env ? strtoull(seed_env, NULL, 0) : UINT64_C(0x9e3779b97f4a7c15);
        if (rng_state == 0)
                rng_state = 1;
        printf("test-units: seed %" PRIu64 " (set SB_TEST_SEED to repeat)\n", rng_state);

        test_add_sub_mul();
        test_muldiv_rounding();
        test_muldiv_extremes();
        test_arith_random();
        test_format();
        test_parse();
        test_roundtrip_random();
        printf("test-units: ok\n");
        return 0;
}
