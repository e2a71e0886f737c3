/* SPDX-License-Identifier: LicenseRef-proprietary */
/*
 * Unit tests of services/economy: every worked example of /shared/spec/economics.md, one function each, then
 * property tests on random inputs from a seeded xorshift generator (SB_TEST_SEED repeats a run).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "economy.h"

#define CHECK(cond)                                                                              \
        do {                                                                                     \
                if (!(cond)) {                                                                   \
                        fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
                        abort();                                                                 \
                }                                                                                \
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

#define CHECK_UNITS(v, text)                                                                              \
        do {                                                                                              \
                char b_[SB_UNITS_FORMAT_MAX];                                                             \
                CHECK(sb_units_format((v), b_, sizeof(b_)) > 0);                                          \
                if (strcmp(b_, (text)) != 0) {                                                            \
                        fprintf(stderr, "%s:%d: %s is %s, expected %s\n", __FILE__, __LINE__, #v, b_, text); \
                        abort();                                                                          \
                }                                                                                         \
        } while (0)

#define CV(x) ((int64_t) (x) * SB_CV_SCALE)
#define SP(x) ((int64_t) (x) * SB_SP_SCALE)
#define YUAN(x) ((int64_t) (x) * SB_FEN_PER_YUAN)
#define PRICE(yuan) ((int64_t) (yuan) * SB_MICRO_PER_YUAN)

__extension__ typedef __int128 i128;

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

static uint64_t rng_state;

static uint64_t rng(void) {
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return rng_state * UINT64_C(2685821657736338717);
}

/* Uniform enough in [lo, hi] for tests. */
static int64_t rng_range(int64_t lo, int64_t hi) {
        return lo + (int64_t) (rng() % (uint64_t) (hi - lo + 1));
}

/* ---------------------------------------------------------------------------------------------------------------
 * The worked examples
 * ------------------------------------------------------------------------------------------------------------- */

static void example_1_sale_vip_member(void) {
        sb_econ_settings s = sb_econ_settings_default();
        sb_econ_sale_in in = { .spend_fen = YUAN(1000), .rate_bp = 1000, .price_micro = PRICE(2),
                               .member_is_vip = true };
        sb_econ_sale r;
        int64_t value_fen;

        CHECK_EQ(sb_econ_sale_split(&s, &in, &r), 0);
        CHECK_EQ(r.concession_fen_e4, YUAN(100) * SB_BP_ONE); /* V = 100.00 yuan */
        CHECK_EQ(r.member_cv, CV(1000));
        CHECK(!r.member_cv_locked);
        CHECK_EQ(r.merchant_cv, CV(200));
        CHECK_EQ(r.sp_taken, SP(50));
        /* "value 100.00 yuan": 50 SP at 2.00 yuan. */
        CHECK_EQ(sb_muldiv_i64(r.sp_taken, in.price_micro, SB_SP_SCALE * SB_MICRO_PER_FEN, SB_ROUND_DOWN, &value_fen), 0);
        CHECK_EQ(value_fen, YUAN(100));
        CHECK_UNITS(r.sp_taken, "50");
        CHECK_UNITS(r.member_cv, "1000");
        CHECK_UNITS(r.merchant_cv, "200");
}

static void example_2_sale_5000(void) {
        sb_econ_settings s = sb_econ_settings_default();
        sb_econ_sale_in in = { .spend_fen = YUAN(5000), .rate_bp = 1000, .price_micro = PRICE(2),
                               .member_is_vip = true };
        sb_econ_sale r;

        CHECK_EQ(sb_econ_sale_split(&s, &in, &r), 0);
        CHECK_EQ(r.member_cv, CV(5000));
        CHECK_EQ(r.merchant_cv, CV(1000));

        /* The same sale for a member who is not VIP: the same CV, but locked. */
        in.member_is_vip = false;
        CHECK_EQ(sb_econ_sale_split(&s, &in, &r), 0);
        CHECK_EQ(r.member_cv, CV(5000));
        CHECK(r.member_cv_locked);
}

static void example_3_airdrop_500(void) {
        const sb_econ_account a[] = {
                { .id = 1, .cv = CV(1000) },
                { .id = 2, .cv = CV(5000) },
                { .id = 3, .cv = CV(94000) },
        };
        sb_econ_share out[ELEMENTSOF(a)];
        sb_econ_allot_summary sum;

        CHECK_EQ(sb_econ_allot(a, ELEMENTSOF(a), SP(500), PRICE(1), out, &sum), 0);
        CHECK_EQ(sum.cv_total, CV(100000));
        CHECK_EQ(out[0].share_sp, SP(5));
        CHECK_EQ(out[1].share_sp, SP(25));
        CHECK_EQ(out[2].share_sp, SP(470));
        CHECK_EQ(sum.allotted_sp, SP(500));
        CHECK_EQ(sum.cut_sp, 0);
        CHECK_EQ(sum.leftover_sp, 0);
}

static void example_4_airdrop_888_price_2(void) {
        const sb_econ_account a[] = {
                { .id = 7, .cv = CV(1000) },
                { .id = 8, .cv = CV(99000) },
        };
        sb_econ_share out[ELEMENTSOF(a)];
        sb_econ_allot_summary sum;
        int64_t left;

        CHECK_EQ(sb_econ_allot(a, ELEMENTSOF(a), SP(888), PRICE(2), out, &sum), 0);
        CHECK_EQ(out[0].id, 7);
        CHECK_EQ(out[0].share_sp, 88800);
        CHECK_EQ(out[0].cost_cv, 177600);
        CHECK_EQ(out[0].cut_sp, 0);
        left = a[0].cv - out[0].cost_cv;
        CHECK_UNITS(out[0].share_sp, "8.88");
        CHECK_UNITS(out[0].cost_cv, "17.76");
        CHECK_UNITS(left, "982.24");
        CHECK_EQ(sum.allotted_sp, SP(888));
        CHECK_EQ(sum.released_sp, SP(888));

        /* The same by the per-account functions a chunked caller uses. */
        {
                int64_t fl, rem;
                sb_econ_capped c;

                CHECK_EQ(sb_econ_share_floor(CV(1000), SP(888), CV(100000), &fl, &rem), 0);
                CHECK_EQ(fl, 88800);
                CHECK_EQ(rem, 0);
                CHECK_EQ(sb_econ_cap_share(fl, CV(1000), PRICE(2), &c), 0);
                CHECK_EQ(c.cost_cv, 177600);
        }
}

static void example_5_constant_schedule_end(void) {
        sb_econ_settings s = sb_econ_settings_default();
        int64_t days, total, unreleased, d, last = -1;

        s.schedule = SB_ECON_SCHEDULE_CONSTANT;
        s.daily_release_sp = SP(888);
        s.cap_sp = SP(972360);
        s.treasury_sp = 0;
        CHECK_EQ(sb_econ_settings_validate(&s, NULL, 0), 0);
        CHECK_EQ(sb_econ_schedule_end(&s, &days, &total), 0);
        CHECK_EQ(days, 1095);
        CHECK_EQ(total, SP(972360));

        /* Day by day, as the airdrop service runs it (with nothing cut): the last release is day 1095. */
        unreleased = s.cap_sp - s.treasury_sp;
        for (int64_t idx = 0; idx < 2000; idx++) {
                CHECK_EQ(sb_econ_daily_release(&s, idx, unreleased, &d), 0);
                if (d > 0)
                        last = idx + 1;
                unreleased -= d;
        }
        CHECK_EQ(last, 1095);
        CHECK_EQ(unreleased, 0);
        CHECK_EQ(sb_econ_schedule_total(&s, 1094, &total), 0);
        CHECK_EQ(total, SP(888) * 1094);
        CHECK_EQ(sb_econ_schedule_total(&s, 1095, &total), 0);
        CHECK_EQ(total, SP(972360));
        CHECK_EQ(sb_econ_schedule_total(&s, 5000, &total), 0);
        CHECK_EQ(total, SP(972360));

        /* Calendar days map to indices from the start day; a day before the start has none. */
        s.start_day = 20000;
        CHECK_EQ(sb_econ_day_index(&s, 20000 + 1094, &d), 0);
        CHECK_EQ(d, 1094);
        CHECK_EQ(sb_econ_day_index(&s, 19999, &d), -EDOM);
}

static void example_6_decaying_schedule(void) {
        sb_econ_settings s = sb_econ_settings_default();
        int64_t y1, y2, a, days, total;

        s.schedule = SB_ECON_SCHEDULE_DECAYING;
        s.daily_release_sp = SP(498);
        s.cap_sp = SP(1000000);
        CHECK_EQ(sb_econ_settings_validate(&s, NULL, 0), 0);

        CHECK_EQ(sb_econ_schedule_total(&s, 365, &y1), 0);
        CHECK_EQ(y1, SP(181770));
        CHECK_EQ(sb_econ_schedule_total(&s, 730, &y2), 0);
        CHECK_EQ(y2 - y1, SP(90885));

        CHECK_EQ(sb_econ_schedule_amount(&s, 0, &a), 0);
        CHECK_EQ(a, SP(498));
        CHECK_EQ(sb_econ_schedule_amount(&s, 364, &a), 0);
        CHECK_EQ(a, SP(498));
        CHECK_EQ(sb_econ_schedule_amount(&s, 365, &a), 0);
        CHECK_EQ(a, SP(249));
        /* Year 3: 124.5; year 4: 62.25; each halving rounded down to the 0.0001 unit. */
        CHECK_EQ(sb_econ_schedule_amount(&s, 730, &a), 0);
        CHECK_EQ(a, 1245000);
        CHECK_EQ(sb_econ_schedule_amount(&s, 365 * 6, &a), 0);
        CHECK_EQ(a, 77812); /* 7.78125 → 7.7812 */
        CHECK_EQ(sb_econ_schedule_amount(&s, -1, &a), -EDOM);

        /* The series converges below the cap: the release ends when the halved amount reaches zero. */
        CHECK_EQ(sb_econ_schedule_end(&s, &days, &total), 0);
        CHECK(total < s.cap_sp);
        CHECK_EQ(sb_econ_schedule_amount(&s, days - 1, &a), 0);
        CHECK(a > 0);
        CHECK_EQ(sb_econ_schedule_amount(&s, days, &a), 0);
        CHECK_EQ(a, 0);
        {
                int64_t t2;
                CHECK_EQ(sb_econ_schedule_total(&s, days, &t2), 0);
                CHECK_EQ(t2, total);
        }
}

static void example_7_activation_399(void) {
        sb_econ_settings s = sb_econ_settings_default();
        sb_econ_activation_in in = { .pack_price_fen = YUAN(399), .member_is_vip = false,
                                     .locked_cv = s.register_bonus_cv, .has_referrer = true, .referrer_is_vip = true };
        sb_econ_activation r;

        CHECK_EQ(s.register_bonus_cv, CV(300));
        CHECK_EQ(sb_econ_activate(&s, &in, &r), 0);
        CHECK_EQ(r.unlocked_cv, CV(300));
        CHECK_EQ(r.pack_cv, CV(599));
        CHECK_EQ(r.active_cv, CV(899));
        CHECK(r.becomes_vip);
        CHECK_EQ(r.referrer_bonus_cv, CV(100));
        CHECK_EQ(r.referrer2_bonus_cv, 0);

        /* A referrer who is not VIP earns nothing. */
        in.referrer_is_vip = false;
        CHECK_EQ(sb_econ_activate(&s, &in, &r), 0);
        CHECK_EQ(r.active_cv, CV(899));
        CHECK_EQ(r.referrer_bonus_cv, 0);

        /* A second purchase credits its CV and changes nothing else. */
        in = (sb_econ_activation_in) { .pack_price_fen = YUAN(999), .member_is_vip = true, .locked_cv = 0,
                                       .has_referrer = true, .referrer_is_vip = true };
        CHECK_EQ(sb_econ_activate(&s, &in, &r), 0);
        CHECK_EQ(r.pack_cv, CV(1999));
        CHECK_EQ(r.unlocked_cv, 0);
        CHECK_EQ(r.active_cv, CV(1999));
        CHECK(!r.becomes_vip);
        CHECK_EQ(r.referrer_bonus_cv, 0);

        /* The other packs, and one that does not exist. */
        in = (sb_econ_activation_in) { .pack_price_fen = YUAN(99), .locked_cv = CV(300) + 12345 };
        CHECK_EQ(sb_econ_activate(&s, &in, &r), 0);
        CHECK_EQ(r.pack_cv, CV(99));
        CHECK_EQ(r.active_cv, CV(399) + 12345);
        in.pack_price_fen = YUAN(500);
        CHECK_EQ(sb_econ_activate(&s, &in, &r), -ENOENT);
        in.pack_price_fen = YUAN(99);
        in.locked_cv = -1;
        CHECK_EQ(sb_econ_activate(&s, &in, &r), -EINVAL);
}

static void example_8_sale_with_referrer_and_subcentre(void) {
        sb_econ_settings s = sb_econ_settings_default();
        sb_econ_sale_in in = {
                .spend_fen = YUAN(1000), .rate_bp = 1000, .price_micro = PRICE(2),
                .member_is_vip = true, .has_referrer = true, .referrer_is_vip = true,
                .has_merchant_referrer = false, .has_centre = true, .has_parent_centre = true,
        };
        sb_econ_sale r;

        CHECK_EQ(sb_econ_sale_split(&s, &in, &r), 0);
        CHECK_EQ(r.sp_taken, SP(50));
        CHECK_EQ(r.referrer_sp, 25000);
        CHECK_UNITS(r.referrer_sp, "2.5");
        CHECK_EQ(r.referrer_cv, CV(200));
        CHECK_EQ(r.centre_sp, SP(4));
        CHECK_EQ(r.parent_centre_sp, 15000);
        CHECK_UNITS(r.parent_centre_sp, "1.5");
        CHECK_EQ(r.merchant_referrer_sp, 0);
        CHECK_EQ(r.referrer2_sp, 0);
        CHECK_EQ(r.burned_sp, SP(42));
        CHECK_EQ(r.member_cv, CV(1000));
        CHECK_EQ(r.merchant_cv, CV(200));

        /* A merchant referrer who is VIP takes its 5 % out of what was burned. */
        in.has_merchant_referrer = true;
        in.merchant_referrer_is_vip = true;
        CHECK_EQ(sb_econ_sale_split(&s, &in, &r), 0);
        CHECK_EQ(r.merchant_referrer_sp, 25000);
        CHECK_EQ(r.burned_sp, SP(42) - 25000);
}

/* ---------------------------------------------------------------------------------------------------------------
 * Other fixed cases
 * ------------------------------------------------------------------------------------------------------------- */

static void test_sale_refusals(void) {
        sb_econ_settings s = sb_econ_settings_default();
        sb_econ_sale_in ok = { .spend_fen = YUAN(10), .rate_bp = 1000, .price_micro = PRICE(1) };
        sb_econ_sale_in in;
        sb_econ_sale r;

        in = ok, in.spend_fen = 0;
        CHECK_EQ(sb_econ_sale_split(&s, &in, &r), -EINVAL);
        in = ok, in.rate_bp = 99;
        CHECK_EQ(sb_econ_sale_split(&s, &in, &r), -EINVAL);
        in = ok, in.rate_bp = 5001;
        CHECK_EQ(sb_econ_sale_split(&s, &in, &r), -EINVAL);
        in = ok, in.price_micro = 0;
        CHECK_EQ(sb_econ_sale_split(&s, &in, &r), -EINVAL);
        in = ok, in.has_parent_centre = true;
        CHECK_EQ(sb_econ_sale_split(&s, &in, &r), -EINVAL);
        /* Overflow is an error, never a wrap. */
        in = ok, in.spend_fen = INT64_MAX;
        CHECK_EQ(sb_econ_sale_split(&s, &in, &r), -ERANGE);
        in = ok, in.spend_fen = INT64_MAX / 5000, in.price_micro = 1;
        CHECK_EQ(sb_econ_sale_split(&s, &in, &r), -ERANGE);
        /* Settings that would pay out more than the sale takes are refused here too. */
        s.centre_sp_share_bp = 9000;
        CHECK_EQ(sb_econ_sale_split(&s, &ok, &r), -EINVAL);

        /* A fractional SP is rounded up for the deposit: 0.01 yuan at 1 % at 3.00 → 0.0001 yuan → 0.0001 SP. */
        s = sb_econ_settings_default();
        in = ok, in.spend_fen = 1, in.rate_bp = 100, in.price_micro = PRICE(3);
        CHECK_EQ(sb_econ_sale_split(&s, &in, &r), 0);
        CHECK_EQ(r.concession_fen_e4, 100);
        CHECK_EQ(r.sp_taken, 1);
}

static void test_second_level(void) {
        sb_econ_settings s = sb_econ_settings_default();
        sb_econ_sale_in in = { .spend_fen = YUAN(1000), .rate_bp = 1000, .price_micro = PRICE(2),
                               .member_is_vip = true, .has_referrer = true, .referrer_is_vip = true,
                               .has_referrer2 = true, .referrer2_is_vip = true };
        sb_econ_activation_in ain = { .pack_price_fen = YUAN(99), .has_referrer = true, .referrer_is_vip = true,
                                      .has_referrer2 = true, .referrer2_is_vip = true };
        sb_econ_activation a;
        sb_econ_sale r;

        /* Defaults: the second level earns nothing. */
        CHECK_EQ(sb_econ_sale_split(&s, &in, &r), 0);
        CHECK_EQ(r.referrer2_sp, 0);
        CHECK_EQ(r.referrer2_cv, 0);

        s.referral2_sp_share_bp = 100;
        s.referral2_cv_share_bp = 500;
        s.referral2_bonus_cv = CV(10);
        CHECK_EQ(sb_econ_settings_validate(&s, NULL, 0), 0);
        CHECK_EQ(sb_econ_sale_split(&s, &in, &r), 0);
        CHECK_EQ(r.referrer2_sp, 5000);
        CHECK_EQ(r.referrer2_cv, CV(50));
        CHECK_EQ(r.burned_sp, SP(50) - 25000 - 5000);
        CHECK_EQ(sb_econ_activate(&s, &ain, &a), 0);
        CHECK_EQ(a.referrer2_bonus_cv, CV(10));

        /* A second-level referrer without a first is not a referral chain. */
        in.has_referrer = false;
        CHECK_EQ(sb_econ_sale_split(&s, &in, &r), -EINVAL);
}

static void test_guide_price(void) {
        int64_t p, c;

        CHECK_EQ(sb_econ_guide_price(0, 0, PRICE(1), &p), 0);
        CHECK_EQ(p, PRICE(1));
        CHECK_EQ(sb_econ_guide_price(YUAN(1000), SP(500), PRICE(1), &p), 0);
        CHECK_EQ(p, PRICE(2));
        /* 100.00 yuan over 3 SP: 33.333333… rounded down to the micro-yuan. */
        CHECK_EQ(sb_econ_guide_price(YUAN(100), SP(3), PRICE(1), &p), 0);
        CHECK_EQ(p, 33333333);
        /* Never below 1 micro-yuan. */
        CHECK_EQ(sb_econ_guide_price(0, SP(1000), PRICE(1), &p), 0);
        CHECK_EQ(p, 1);
        CHECK_EQ(sb_econ_guide_price(INT64_MAX, 1, PRICE(1), &p), -ERANGE);
        CHECK_EQ(sb_econ_guide_price(-1, 1, PRICE(1), &p), -EINVAL);
        CHECK_EQ(sb_econ_guide_price(1, 1, 0, &p), -EINVAL);

        CHECK_EQ(sb_econ_circulating(SP(1000), SP(100), SP(200), &c), 0);
        CHECK_EQ(c, SP(700));
        CHECK_EQ(sb_econ_circulating(SP(10), SP(100), 0, &c), -EINVAL);
}

static void test_allot_ties_to_lower_id(void) {
        /* Seven equal accounts, 3 units: every remainder ties; ids 2, 5, 9 are the lowest. */
        const sb_econ_account a[] = {
                { .id = 11, .cv = 7 }, { .id = 9, .cv = 7 }, { .id = 40, .cv = 7 }, { .id = 2, .cv = 7 },
                { .id = 13, .cv = 7 }, { .id = 5, .cv = 7 }, { .id = 30, .cv = 7 },
        };
        const bool expect[] = { false, true, false, true, false, true, false };
        sb_econ_share out[ELEMENTSOF(a)];
        sb_econ_allot_summary sum;

        CHECK_EQ(sb_econ_allot(a, ELEMENTSOF(a), 3, PRICE(1), out, &sum), 0);
        for (size_t i = 0; i < ELEMENTSOF(a); i++) {
                CHECK_EQ(out[i].extra, expect[i]);
                CHECK_EQ(out[i].share_sp + out[i].cut_sp, expect[i] ? 1 : 0);
        }
        CHECK_EQ(sum.leftover_sp, 3);
        CHECK_EQ(sum.allotted_sp, 3);
}

static void test_allot_value_cap(void) {
        /* Two accounts of 1 CV each share 10 SP at 2.00: each would owe 10 CV; 1 CV pays for 0.5 SP. */
        const sb_econ_account a[] = { { .id = 1, .cv = CV(1) }, { .id = 2, .cv = CV(1) }, { .id = 3, .cv = 0 } };
        sb_econ_share out[ELEMENTSOF(a)];
        sb_econ_allot_summary sum;

        CHECK_EQ(sb_econ_allot(a, ELEMENTSOF(a), SP(10), PRICE(2), out, &sum), 0);
        CHECK_EQ(out[0].share_sp, 5000);
        CHECK_EQ(out[0].cost_cv, CV(1));
        CHECK_EQ(out[0].cut_sp, SP(5) - 5000);
        CHECK_EQ(out[2].share_sp, 0);
        CHECK_EQ(out[2].cost_cv, 0);
        CHECK_EQ(sum.participants, 2);
        CHECK_EQ(sum.allotted_sp, SP(10));
        CHECK_EQ(sum.cut_sp, SP(9));
        CHECK_EQ(sum.released_sp, SP(1));
        CHECK_EQ(sum.cost_cv, CV(2));

        /* Nobody with CV: nothing allotted. */
        CHECK_EQ(sb_econ_allot(a + 2, 1, SP(10), PRICE(2), out, &sum), 0);
        CHECK_EQ(sum.allotted_sp, 0);
        CHECK_EQ(sum.released_sp, 0);
        /* Refusals leave out[] untouched. */
        {
                const sb_econ_account bad[] = { { .id = 1, .cv = 5 }, { .id = 2, .cv = -1 } };
                memset(out, 0x5b, sizeof(out));
                CHECK_EQ(sb_econ_allot(bad, 2, SP(10), PRICE(2), out, &sum), -EINVAL);
                CHECK_EQ(out[0].share_sp, INT64_C(0x5b5b5b5b5b5b5b5b));
                CHECK_EQ(sb_econ_allot(a, 2, SP(10), 0, out, &sum), -EINVAL);
                CHECK_EQ(sb_econ_allot(a, 2, -1, PRICE(2), out, &sum), -EINVAL);
        }
}

/* One mutation of the defaults that the validator must refuse, naming the setting. */
typedef struct bad_setting {
        const char *name;
        void (*mutate)(sb_econ_settings *s);
} bad_setting;

static void m_rate_high(sb_econ_settings *s) { s->centre_sp_share_bp = 10001; }
static void m_rate_neg(sb_econ_settings *s) { s->referral_sp_share_bp = -1; }
static void m_shares_sum(sb_econ_settings *s) { s->centre_sp_share_bp = 9000; }
static void m_levels(sb_econ_settings *s) { s->referral_levels = 3; }
static void m_level2_off(sb_econ_settings *s) { s->referral_levels = 1, s->referral2_sp_share_bp = 10; }
static void m_level0(sb_econ_settings *s) { s->referral_levels = 0; }
static void m_cap_zero(sb_econ_settings *s) { s->cap_sp = 0; }
static void m_cap_neg(sb_econ_settings *s) { s->cap_sp = -5; }
static void m_daily_over_cap(sb_econ_settings *s) { s->daily_release_sp = s->cap_sp + 1; }
static void m_daily_zero(sb_econ_settings *s) { s->daily_release_sp = 0; }
static void m_treasury_over(sb_econ_settings *s) { s->treasury_sp = s->cap_sp + 1; }
static void m_treasury_neg(sb_econ_settings *s) { s->treasury_sp = -1; }
static void m_daily_over_rest(sb_econ_settings *s) { s->treasury_sp = s->cap_sp - 10, s->daily_release_sp = 11; }
static void m_conc_min(sb_econ_settings *s) { s->concession_min_bp = 0; }
static void m_conc_max(sb_econ_settings *s) { s->concession_max_bp = 10001; }
static void m_conc_default(sb_econ_settings *s) { s->concession_default_bp = 6000; }
static void m_cv_share(sb_econ_settings *s) { s->referral_cv_share_bp = 20000; }
static void m_mult(sb_econ_settings *s) { s->member_cv_multiplier = -1; }
static void m_pack_dup(sb_econ_settings *s) { s->packs[1].price_fen = s->packs[0].price_fen; }
static void m_pack_zero(sb_econ_settings *s) { s->packs[2].price_fen = 0; }
static void m_packs_none(sb_econ_settings *s) { s->n_packs = 0; }
static void m_price(sb_econ_settings *s) { s->initial_price_micro = 0; }
static void m_schedule(sb_econ_settings *s) { s->schedule = (sb_econ_schedule) 7; }
static void m_period(sb_econ_settings *s) { s->decay_period_days = 0; }
static void m_minute(sb_econ_settings *s) { s->release_minute_of_day = 1440; }
static void m_bonus(sb_econ_settings *s) { s->register_bonus_cv = -1; }
static void m_deposit(sb_econ_settings *s) { s->deposit_min_fen = -1; }

static void test_validator(void) {
        static const bad_setting bad[] = {
                { "centre_sp_share_bp", m_rate_high },
                { "referral_sp_share_bp", m_rate_neg },
                { "more than 10000", m_shares_sum },
                { "referral_levels", m_levels },
                { "referral2_sp_share_bp", m_level2_off },
                { "referral_levels is 0", m_level0 },
                { "cap_sp", m_cap_zero },
                { "cap_sp", m_cap_neg },
                { "daily_release_sp", m_daily_over_cap },
                { "daily_release_sp", m_daily_zero },
                { "treasury_sp", m_treasury_over },
                { "treasury_sp", m_treasury_neg },
                { "daily_release_sp", m_daily_over_rest },
                { "concession_min_bp", m_conc_min },
                { "concession_max_bp", m_conc_max },
                { "concession_default_bp", m_conc_default },
                { "referral_cv_share_bp", m_cv_share },
                { "member_cv_multiplier", m_mult },
                { "same price_fen", m_pack_dup },
                { "packs[2].price_fen", m_pack_zero },
                { "packs", m_packs_none },
                { "initial_price_micro", m_price },
                { "schedule", m_schedule },
                { "decay_period_days", m_period },
                { "release_minute_of_day", m_minute },
                { "register_bonus_cv", m_bonus },
                { "deposit_min_fen", m_deposit },
        };
        sb_econ_settings s = sb_econ_settings_default();
        char why[256];

        CHECK_EQ(sb_econ_settings_validate(&s, why, sizeof(why)), 0);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                s = sb_econ_settings_default();
                bad[i].mutate(&s);
                why[0] = '\0';
                if (sb_econ_settings_validate(&s, why, sizeof(why)) != -EINVAL || !strstr(why, bad[i].name)) {
                        fprintf(stderr, "%s:%d: bad setting #%zu not refused with a message naming \"%s\": \"%s\"\n",
                                __FILE__, __LINE__, i, bad[i].name, why);
                        abort();
                }
        }
        /* A tiny buffer truncates but still refuses; NULL is fine. */
        s = sb_econ_settings_default();
        m_cap_zero(&s);
        CHECK_EQ(sb_econ_settings_validate(&s, why, 4), -EINVAL);
        CHECK_EQ(strlen(why), 3);
        CHECK_EQ(sb_econ_settings_validate(&s, NULL, 0), -EINVAL);
        /* Exactly 100 % is allowed: nothing is burned. */
        s = sb_econ_settings_default();
        s.centre_sp_share_bp = 10000 - 500 - 500 - 300;
        CHECK_EQ(sb_econ_settings_validate(&s, why, sizeof(why)), 0);
}

/* ---------------------------------------------------------------------------------------------------------------
 * Property tests
 * ------------------------------------------------------------------------------------------------------------- */

/* The streaming path of economy.h, chunk by chunk and in a shuffled order, for comparison with sb_econ_allot(). */
static void allot_chunked(const sb_econ_account *a, size_t n, int64_t d, int64_t price, size_t chunk,
                          sb_econ_share *out, int64_t *ret_cut) {
        size_t *order = malloc((n ? n : 1) * sizeof(*order));
        sb_econ_select *sel = malloc(sizeof(*sel));
        int64_t cv_total = 0, floor_sum = 0, k, cut = 0;
        uint64_t participants = 0, id_max = 0;
        sb_econ_threshold t = { .none = true };
        int e, passes = 0;

        CHECK(order && sel);
        for (size_t i = 0; i < n; i++)
                order[i] = i;
        for (size_t i = n; i > 1; i--) {
                size_t j = (size_t) (rng() % i), tmp = order[i - 1];
                order[i - 1] = order[j];
                order[j] = tmp;
        }

        for (size_t base = 0; base < n; base += chunk)
                for (size_t c = base; c < n && c < base + chunk; c++) {
                        const sb_econ_account *x = &a[order[c]];
                        if (x->cv == 0)
                                continue;
                        CHECK_EQ(sb_add_i64(cv_total, x->cv, &cv_total), 0);
                        participants++;
                        if (x->id > id_max)
                                id_max = x->id;
                }
        if (participants > 0) {
                for (size_t c = 0; c < n; c++) {
                        const sb_econ_account *x = &a[order[c]];
                        int64_t fl, rem;
                        if (x->cv == 0)
                                continue;
                        CHECK_EQ(sb_econ_share_floor(x->cv, d, cv_total, &fl, &rem), 0);
                        floor_sum += fl;
                }
                CHECK_EQ(sb_econ_leftover(d, floor_sum, participants, &k), 0);
                CHECK_EQ(sb_econ_select_init(sel, (uint64_t) k, cv_total, id_max), 0);
                do {
                        CHECK(++passes <= 8);
                        for (size_t c = 0; c < n; c++) {
                                const sb_econ_account *x = &a[order[c]];
                                int64_t fl, rem;
                                if (x->cv == 0)
                                        continue;
                                CHECK_EQ(sb_econ_share_floor(x->cv, d, cv_total, &fl, &rem), 0);
                                CHECK_EQ(sb_econ_select_feed(sel, rem, x->id), 0);
                        }
                        e = sb_econ_select_next(sel);
                        CHECK(e >= 0);
                } while (e > 0);
                CHECK_EQ(sb_econ_select_result(sel, &t), 0);
        }
        for (size_t c = 0; c < n; c++) {
                const sb_econ_account *x = &a[order[c]];
                sb_econ_share *o = &out[order[c]];
                int64_t fl = 0, rem = 0;
                sb_econ_capped cap = { 0 };

                *o = (sb_econ_share) { .id = x->id };
                if (x->cv == 0)
                        continue;
                CHECK_EQ(sb_econ_share_floor(x->cv, d, cv_total, &fl, &rem), 0);
                o->extra = sb_econ_gets_extra(rem, x->id, &t);
                CHECK_EQ(sb_econ_cap_share(fl + o->extra, x->cv, price, &cap), 0);
                o->share_sp = cap.share_sp;
                o->cost_cv = cap.cost_cv;
                o->cut_sp = cap.cut_sp;
                cut += cap.cut_sp;
        }
        *ret_cut = cut;
        free(sel);
        free(order);
}

typedef struct ranked {
        int64_t rem;
        uint64_t id;
        size_t i;
} ranked;

static int cmp_ranked(const void *pa, const void *pb) {
        const ranked *a = pa, *b = pb;
        if (sb_econ_key_before(a->rem, a->id, b->rem, b->id))
                return -1;
        if (sb_econ_key_before(b->rem, b->id, a->rem, a->id))
                return 1;
        return 0;
}

static void random_accounts(sb_econ_account *a, size_t n) {
        /* Distinct ids, sometimes sparse and huge; CVs from several shapes so ties and zeros are common. */
        unsigned shape = (unsigned) (rng() % 4);
        uint64_t id = rng() % 3 == 0 ? rng() % (UINT64_MAX / 2) : rng() % 100;

        for (size_t i = 0; i < n; i++) {
                id += 1 + (rng() % 3 == 0 ? rng() % 1000000 : 0);
                a[i].id = id;
                switch (shape) {
                case 0: a[i].cv = rng_range(0, 5); break;
                case 1: a[i].cv = rng_range(0, CV(100000)); break;
                case 2: a[i].cv = (int64_t) (rng() % 4) * CV(250); break;
                default: a[i].cv = rng_range(0, INT64_C(1) << (rng() % 40)); break;
                }
        }
        /* Shuffle so ids are not in order. */
        for (size_t i = n; i > 1; i--) {
                size_t j = (size_t) (rng() % i);
                sb_econ_account tmp = a[i - 1];
                a[i - 1] = a[j];
                a[j] = tmp;
        }
}

static void property_allotment(void) {
        enum { N_MAX = 300, ROUNDS = 3000 };
        sb_econ_account *a = malloc(N_MAX * sizeof(*a));
        sb_econ_share *out = malloc(N_MAX * sizeof(*out)), *out2 = malloc(N_MAX * sizeof(*out2));
        ranked *rk = malloc(N_MAX * sizeof(*rk));

        CHECK(a && out && out2 && rk);
        for (int round = 0; round < ROUNDS; round++) {
                size_t n = (size_t) rng_range(1, N_MAX), np = 0;
                int64_t d = rng() % 2 ? rng_range(0, 1000) : rng_range(0, SP(1000000));
                int64_t price = rng_range(1, PRICE(5));
                int64_t sum_share = 0, sum_cut = 0, k = 0, cut2 = 0;
                sb_econ_allot_summary sum;

                random_accounts(a, n);
                CHECK_EQ(sb_econ_allot(a, n, d, price, out, &sum), 0);

                for (size_t i = 0; i < n; i++) {
                        CHECK_EQ(out[i].id, a[i].id);
                        CHECK(out[i].share_sp >= 0 && out[i].cut_sp >= 0 && out[i].cost_cv >= 0);
                        CHECK(out[i].cost_cv <= a[i].cv);
                        sum_share += out[i].share_sp;
                        sum_cut += out[i].cut_sp;
                        if (a[i].cv == 0) {
                                CHECK_EQ(out[i].share_sp + out[i].cut_sp, 0);
                                continue;
                        }
                        /* The share before the cap is the floor plus at most one leftover unit. */
                        {
                                int64_t fl, rem;
                                CHECK_EQ(sb_econ_share_floor(a[i].cv, d, sum.cv_total, &fl, &rem), 0);
                                CHECK_EQ(out[i].share_sp + out[i].cut_sp, fl + out[i].extra);
                                rk[np++] = (ranked) { .rem = rem, .id = a[i].id, .i = i };
                        }
                        /* A cut share is the most the CV pays for: one unit more would cost more than the CV. */
                        if (out[i].cut_sp > 0) {
                                int64_t more;
                                CHECK_EQ(sb_muldiv_i64(out[i].share_sp + 1, price, SB_MICRO_PER_YUAN, SB_ROUND_UP,
                                                       &more), 0);
                                CHECK(more > a[i].cv);
                        }
                }
                if (np > 0) {
                        CHECK_EQ(sum_share + sum_cut, d); /* exactly D allotted */
                        CHECK_EQ(sum.allotted_sp, d);
                }
                CHECK_EQ(sum_share, sum.released_sp);
                CHECK_EQ(sum_share, sum.allotted_sp - sum.cut_sp); /* D − cut after the cap */
                CHECK_EQ(sum_cut, sum.cut_sp);
                CHECK_EQ(np, sum.participants);

                /* The leftover went to the largest remainders, ties to the lower id. */
                qsort(rk, np, sizeof(*rk), cmp_ranked);
                for (size_t j = 0; j < np; j++) {
                        if (out[rk[j].i].extra)
                                k++;
                        CHECK_EQ(out[rk[j].i].extra, (int64_t) j < sum.leftover_sp);
                }
                CHECK_EQ(k, sum.leftover_sp);
                CHECK((np == 0 && k == 0) || k < (int64_t) np);

                /* A chunked, shuffled caller gets exactly the same numbers. */
                allot_chunked(a, n, d, price, (size_t) rng_range(1, 64), out2, &cut2);
                CHECK_EQ(cut2, sum.cut_sp);
                for (size_t i = 0; i < n; i++) {
                        CHECK_EQ(out2[i].id, out[i].id);
                        CHECK_EQ(out2[i].share_sp, out[i].share_sp);
                        CHECK_EQ(out2[i].cost_cv, out[i].cost_cv);
                        CHECK_EQ(out2[i].cut_sp, out[i].cut_sp);
                        CHECK_EQ(out2[i].extra, out[i].extra);
                }
        }
        free(rk);
        free(out2);
        free(out);
        free(a);
}

static void property_allotment_million(void) {
        /* A million accounts: the selection stays bounded and the sum is exactly D. */
        const size_t n = 1000000;
        sb_econ_account *a = malloc(n * sizeof(*a));
        sb_econ_share *out = malloc(n * sizeof(*out));
        sb_econ_allot_summary sum;
        int64_t total = 0;

        CHECK(a && out);
        for (size_t i = 0; i < n; i++)
                a[i] = (sb_econ_account) { .id = i + 1, .cv = rng_range(0, CV(5000)) };
        CHECK_EQ(sb_econ_allot(a, n, SP(888), PRICE(2), out, &sum), 0);
        for (size_t i = 0; i < n; i++)
                total += out[i].share_sp + out[i].cut_sp;
        CHECK_EQ(total, SP(888));
        CHECK_EQ(sum.allotted_sp, SP(888));
        free(out);
        free(a);
}

static void property_sale_conserves(void) {
        for (int round = 0; round < 20000; round++) {
                sb_econ_settings s = sb_econ_settings_default();
                sb_econ_sale_in in;
                sb_econ_sale r;
                int64_t left = SB_BP_ONE, taken_e4, shares;
                int64_t *bps[] = { &s.referral_sp_share_bp, &s.referral2_sp_share_bp, &s.merchant_referral_sp_share_bp,
                                   &s.centre_sp_share_bp, &s.parent_centre_sp_share_bp };
                char why[200];

                /* Random shares that fit in 100 %, in random order so each can be large. */
                for (size_t i = 0; i < ELEMENTSOF(bps); i++) {
                        int64_t *p = bps[(i + (size_t) round) % ELEMENTSOF(bps)];
                        *p = rng_range(0, left);
                        left -= *p;
                }
                s.referral_cv_share_bp = rng_range(0, SB_BP_ONE);
                s.referral2_cv_share_bp = rng_range(0, SB_BP_ONE);
                s.concession_min_bp = 1;
                s.concession_max_bp = SB_BP_ONE;
                if (sb_econ_settings_validate(&s, why, sizeof(why)) != 0) {
                        fprintf(stderr, "%s:%d: random valid settings refused: %s\n", __FILE__, __LINE__, why);
                        abort();
                }

                in = (sb_econ_sale_in) {
                        .spend_fen = rng() % 2 ? rng_range(1, YUAN(100000)) : rng_range(1, INT64_C(1) << 40),
                        .rate_bp = rng_range(1, SB_BP_ONE),
                        .price_micro = rng_range(1, PRICE(1000)),
                        .member_is_vip = rng() & 1,
                        .has_referrer = rng() & 1,
                        .referrer_is_vip = rng() & 1,
                        .has_merchant_referrer = rng() & 1,
                        .merchant_referrer_is_vip = rng() & 1,
                        .has_centre = rng() & 1,
                };
                in.has_referrer2 = in.has_referrer && (rng() & 1);
                in.referrer2_is_vip = rng() & 1;
                in.has_parent_centre = in.has_centre && (rng() & 1);

                CHECK_EQ(sb_econ_sale_split(&s, &in, &r), 0);
                shares = r.referrer_sp + r.referrer2_sp + r.merchant_referrer_sp + r.centre_sp + r.parent_centre_sp;
                CHECK_EQ(shares + r.burned_sp, r.sp_taken); /* SP conserved */
                CHECK(r.burned_sp >= 0 && r.referrer_sp >= 0 && r.centre_sp >= 0);
                /* sp_taken is V / P rounded up: the least whole unit covering V. */
                taken_e4 = r.concession_fen_e4;
                CHECK_EQ(taken_e4, in.spend_fen * in.rate_bp);
                CHECK((i128) r.sp_taken * in.price_micro >= (i128) taken_e4 * SB_SP_SCALE);
                CHECK((i128) (r.sp_taken - 1) * in.price_micro < (i128) taken_e4 * SB_SP_SCALE);
                /* Each share is its bp of sp_taken rounded down, or 0 when its party is not paid. */
                CHECK_EQ(r.centre_sp, in.has_centre ? r.sp_taken * s.centre_sp_share_bp / SB_BP_ONE : 0);
                CHECK_EQ(r.parent_centre_sp,
                         in.has_parent_centre ? r.sp_taken * s.parent_centre_sp_share_bp / SB_BP_ONE : 0);
                CHECK_EQ(r.referrer_sp, in.has_referrer && in.referrer_is_vip
                                                ? r.sp_taken * s.referral_sp_share_bp / SB_BP_ONE : 0);
                CHECK_EQ(r.referrer_cv, in.has_referrer && in.referrer_is_vip
                                                ? (int64_t) ((i128) r.member_cv * s.referral_cv_share_bp / SB_BP_ONE)
                                                : 0);
                CHECK_EQ(r.merchant_referrer_sp, in.has_merchant_referrer && in.merchant_referrer_is_vip
                                                         ? r.sp_taken * s.merchant_referral_sp_share_bp / SB_BP_ONE
                                                         : 0);
                CHECK_EQ(r.member_cv_locked, !in.member_is_vip);
        }
}

static void property_overflow_is_an_error(void) {
        sb_econ_settings s = sb_econ_settings_default();
        sb_econ_capped c;
        int64_t fl, rem;

        s.concession_min_bp = 1;
        s.concession_max_bp = SB_BP_ONE;
        for (int round = 0; round < 20000; round++) {
                sb_econ_sale_in in = {
                        .spend_fen = (int64_t) (rng() >> (rng() % 16 + 1)) | 1,
                        .rate_bp = rng_range(1, SB_BP_ONE),
                        .price_micro = rng_range(1, 1000),
                };
                sb_econ_sale r = { .sp_taken = -7 };
                i128 e4 = (i128) in.spend_fen * in.rate_bp;
                i128 taken = (e4 * SB_SP_SCALE + in.price_micro - 1) / in.price_micro;
                i128 mcv = e4 * s.member_cv_multiplier / 100;
                int e = sb_econ_sale_split(&s, &in, &r);

                if (e4 > INT64_MAX || taken > INT64_MAX || mcv > INT64_MAX) {
                        CHECK_EQ(e, -ERANGE);
                        CHECK_EQ(r.sp_taken, -7); /* nothing written */
                } else {
                        CHECK_EQ(e, 0);
                        CHECK(r.sp_taken == taken);
                }
        }
        /* The value cap with a share whose cost overflows: cut, not wrapped. */
        CHECK_EQ(sb_econ_cap_share(INT64_MAX, CV(10), PRICE(2), &c), 0);
        CHECK_EQ(c.share_sp, SP(5));
        CHECK_EQ(c.cut_sp, INT64_MAX - SP(5));
        CHECK_EQ(sb_econ_share_floor(INT64_MAX, INT64_MAX, INT64_MAX, &fl, &rem), 0);
        CHECK_EQ(fl, INT64_MAX);
        CHECK_EQ(sb_econ_share_floor(5, 1, 4, &fl, &rem), -EINVAL);
        {
                const sb_econ_account big[] = { { .id = 1, .cv = INT64_MAX }, { .id = 2, .cv = 1 } };
                sb_econ_share out[2];
                CHECK_EQ(sb_econ_allot(big, 2, 10, PRICE(1), out, NULL), -EINVAL);
        }
}

static void property_validator(void) {
        /* The validator accepts SP shares exactly when they sum to at most 100 %. */
        for (int round = 0; round < 20000; round++) {
                sb_econ_settings s = sb_econ_settings_default();
                int64_t sum;
                int e;

                s.referral_sp_share_bp = rng_range(0, 4000);
                s.merchant_referral_sp_share_bp = rng_range(0, 4000);
                s.centre_sp_share_bp = rng_range(0, 4000);
                s.parent_centre_sp_share_bp = rng_range(0, 4000);
                s.referral2_sp_share_bp = rng_range(0, 1000);
                sum = s.referral_sp_share_bp + s.merchant_referral_sp_share_bp + s.centre_sp_share_bp +
                      s.parent_centre_sp_share_bp + s.referral2_sp_share_bp;
                e = sb_econ_settings_validate(&s, NULL, 0);
                CHECK_EQ(e, sum <= SB_BP_ONE ? 0 : -EINVAL);

                /* Random supply settings: accepted exactly when 0 ≤ treasury < cap and 0 < D ≤ cap − treasury. */
                s = sb_econ_settings_default();
                s.cap_sp = rng_range(-2, 1000);
                s.treasury_sp = rng_range(-2, 1000);
                s.daily_release_sp = rng_range(-2, 1000);
                e = sb_econ_settings_validate(&s, NULL, 0);
                CHECK_EQ(e, (s.cap_sp > 0 && s.treasury_sp >= 0 && s.treasury_sp < s.cap_sp &&
                             s.daily_release_sp > 0 && s.daily_release_sp <= s.cap_sp - s.treasury_sp)
                                    ? 0
                                    : -EINVAL);
        }
}

static void property_schedule(void) {
        /* The closed form of sb_econ_schedule_total() against a day-by-day run of sb_econ_daily_release(). */
        for (int round = 0; round < 300; round++) {
                sb_econ_settings s = sb_econ_settings_default();
                int64_t unreleased, total = 0, days, end_total, last = 0, d;

                s.schedule = rng() & 1 ? SB_ECON_SCHEDULE_DECAYING : SB_ECON_SCHEDULE_CONSTANT;
                s.decay_period_days = rng_range(1, 40);
                s.cap_sp = rng_range(1, SP(50000));
                s.treasury_sp = rng_range(0, s.cap_sp - 1);
                s.daily_release_sp = rng_range(1, (s.cap_sp - s.treasury_sp) / rng_range(1, 300) + 1);
                if (s.daily_release_sp > s.cap_sp - s.treasury_sp)
                        s.daily_release_sp = s.cap_sp - s.treasury_sp;
                CHECK_EQ(sb_econ_settings_validate(&s, NULL, 0), 0);
                CHECK_EQ(sb_econ_schedule_end(&s, &days, &end_total), 0);

                unreleased = s.cap_sp - s.treasury_sp;
                for (int64_t idx = 0; idx < days + 3 && idx < 5000; idx++) {
                        int64_t closed;
                        CHECK_EQ(sb_econ_daily_release(&s, idx, unreleased, &d), 0);
                        CHECK(d >= 0 && d <= unreleased);
                        unreleased -= d;
                        total += d;
                        if (d > 0)
                                last = idx + 1;
                        CHECK_EQ(sb_econ_schedule_total(&s, idx + 1, &closed), 0);
                        CHECK_EQ(closed, total);
                }
                if (days < 5000) {
                        CHECK_EQ(last, days);
                        CHECK_EQ(total, end_total);
                }
        }
}

int main(void) {
        const char *seed_env = getenv("SB_TEST_SEED");

        rng_state = seed_env ? strtoull(seed_env, NULL, 0) : UINT64_C(0x5eed5b5b2024);
        if (rng_state == 0)
                rng_state = 1;
        printf("test-economy: seed %" PRIu64 " (set SB_TEST_SEED to repeat)\n", rng_state);

        example_1_sale_vip_member();
        example_2_sale_5000();
        example_3_airdrop_500();
        example_4_airdrop_888_price_2();
        example_5_constant_schedule_end();
        example_6_decaying_schedule();
        example_7_activation_399();
        example_8_sale_with_referrer_and_subcentre();

        test_sale_refusals();
        test_second_level();
        test_guide_price();
        test_allot_ties_to_lower_id();
        test_allot_value_cap();
        test_validator();

        property_allotment();
        property_allotment_million();
        property_sale_conserves();
        property_overflow_is_an_error();
        property_validator();
        property_schedule();

        printf("test-economy: ok\n");
        return 0;
}
