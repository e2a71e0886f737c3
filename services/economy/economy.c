/* SPDX-License-Identifier: LicenseRef-proprietary */
#include "economy.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__extension__ typedef unsigned __int128 sb_u128;

#define CV(x)  ((int64_t) (x) * SB_CV_SCALE)
#define SP(x)  ((int64_t) (x) * SB_SP_SCALE)
#define FEN(yuan) ((int64_t) (yuan) * SB_FEN_PER_YUAN)

/* The fen → micro-yuan → SP factors of the formulas below, named so each formula reads as its unit algebra. */
#define CONCESSION_E4_PER_YUAN (SB_FEN_PER_YUAN * SB_BP_ONE) /* S × r is in 0.0001 fen */

sb_econ_settings sb_econ_settings_default(void) {
        return (sb_econ_settings) {
                .register_bonus_cv = CV(300),
                .packs = {
                        { .price_fen = FEN(99), .cv = CV(99) },
                        { .price_fen = FEN(399), .cv = CV(599) },
                        { .price_fen = FEN(999), .cv = CV(1999) },
                },
                .n_packs = 3,
                .concession_default_bp = 1000,
                .concession_min_bp = 100,
                .concession_max_bp = 5000,
                .member_cv_multiplier = 10,
                .merchant_cv_multiplier = 2,
                .referral_sp_share_bp = 500,
                .referral2_sp_share_bp = 0,
                .merchant_referral_sp_share_bp = 500,
                .centre_sp_share_bp = 800,
                .parent_centre_sp_share_bp = 300,
                .referral_cv_share_bp = 2000,
                .referral2_cv_share_bp = 0,
                .referral_bonus_cv = CV(100),
                .referral2_bonus_cv = 0,
                .referral_levels = 2,
                .deposit_min_fen = FEN(500),
                .cap_sp = SP(972360),
                .treasury_sp = 0,
                .daily_release_sp = SP(888),
                .schedule = SB_ECON_SCHEDULE_CONSTANT,
                .decay_period_days = 365,
                .start_day = 0,
                .release_minute_of_day = 22 * 60,
                .initial_price_micro = SB_MICRO_PER_YUAN,
        };
}

__attribute__((format(printf, 3, 4)))
static int refuse(char *why, size_t n, const char *fmt, ...) {
        va_list ap;

        if (why && n > 0) {
                va_start(ap, fmt);
                vsnprintf(why, n, fmt, ap);
                va_end(ap);
        }
        return -EINVAL;
}

/* Checks lo ≤ v ≤ hi for the setting called name. */
#define CHECK_RANGE(name, v, lo, hi)                                                                             \
        do {                                                                                                     \
                if ((v) < (lo) || (v) > (hi))                                                                    \
                        return refuse(why, n, "%s must be between %" PRId64 " and %" PRId64 " (is %" PRId64 ")", \
                                      name, (int64_t) (lo), (int64_t) (hi), (int64_t) (v));                      \
        } while (0)

int sb_econ_settings_validate(const sb_econ_settings *s, char *why, size_t n) {
        int64_t sp_shares;

        assert(s);

        CHECK_RANGE("register_bonus_cv", s->register_bonus_cv, 0, SB_ECON_MAX_CV_BONUS);

        if (s->n_packs < 1 || s->n_packs > SB_ECON_MAX_PACKS)
                return refuse(why, n, "packs must list between 1 and %d activation packs (has %zu)",
                              SB_ECON_MAX_PACKS, s->n_packs);
        for (size_t i = 0; i < s->n_packs; i++) {
                if (s->packs[i].price_fen <= 0 || s->packs[i].price_fen > SB_ECON_MAX_PACK_FEN)
                        return refuse(why, n, "packs[%zu].price_fen must be between 1 and %" PRId64 " (is %" PRId64 ")",
                                      i, SB_ECON_MAX_PACK_FEN, s->packs[i].price_fen);
                if (s->packs[i].cv < 0 || s->packs[i].cv > SB_ECON_MAX_CV_BONUS)
                        return refuse(why, n, "packs[%zu].cv must be between 0 and %" PRId64 " (is %" PRId64 ")",
                                      i, SB_ECON_MAX_CV_BONUS, s->packs[i].cv);
                for (size_t j = 0; j < i; j++)
                        if (s->packs[j].price_fen == s->packs[i].price_fen)
                                return refuse(why, n,
                                              "packs[%zu] and packs[%zu] have the same price_fen %" PRId64
                                              ": a purchase must name exactly one pack",
                                              j, i, s->packs[i].price_fen);
        }

        CHECK_RANGE("concession_min_bp", s->concession_min_bp, 1, SB_BP_ONE);
        CHECK_RANGE("concession_max_bp", s->concession_max_bp, s->concession_min_bp, SB_BP_ONE);
        CHECK_RANGE("concession_default_bp", s->concession_default_bp, s->concession_min_bp, s->concession_max_bp);

        CHECK_RANGE("member_cv_multiplier", s->member_cv_multiplier, 0, SB_ECON_MAX_MULTIPLIER);
        CHECK_RANGE("merchant_cv_multiplier", s->merchant_cv_multiplier, 0, SB_ECON_MAX_MULTIPLIER);

        CHECK_RANGE("referral_sp_share_bp", s->referral_sp_share_bp, 0, SB_BP_ONE);
        CHECK_RANGE("referral2_sp_share_bp", s->referral2_sp_share_bp, 0, SB_BP_ONE);
        CHECK_RANGE("merchant_referral_sp_share_bp", s->merchant_referral_sp_share_bp, 0, SB_BP_ONE);
        CHECK_RANGE("centre_sp_share_bp", s->centre_sp_share_bp, 0, SB_BP_ONE);
        CHECK_RANGE("parent_centre_sp_share_bp", s->parent_centre_sp_share_bp, 0, SB_BP_ONE);
        /* Each is at most 10000, so the sum cannot overflow. */
        sp_shares = s->referral_sp_share_bp + s->referral2_sp_share_bp + s->merchant_referral_sp_share_bp +
                    s->centre_sp_share_bp + s->parent_centre_sp_share_bp;
        if (sp_shares > SB_BP_ONE)
                return refuse(why, n,
                              "referral_sp_share_bp + referral2_sp_share_bp + merchant_referral_sp_share_bp + "
                              "centre_sp_share_bp + parent_centre_sp_share_bp is %" PRId64
                              " bp, more than 10000 (100%%): a sale would pay out more SP than it takes",
                              sp_shares);

        CHECK_RANGE("referral_cv_share_bp", s->referral_cv_share_bp, 0, SB_BP_ONE);
        CHECK_RANGE("referral2_cv_share_bp", s->referral2_cv_share_bp, 0, SB_BP_ONE);
        CHECK_RANGE("referral_bonus_cv", s->referral_bonus_cv, 0, SB_ECON_MAX_CV_BONUS);
        CHECK_RANGE("referral2_bonus_cv", s->referral2_bonus_cv, 0, SB_ECON_MAX_CV_BONUS);

        if (s->referral_levels < 0 || s->referral_levels > SB_ECON_REFERRAL_LEVELS_MAX)
                return refuse(why, n,
                              "referral_levels must be 0, 1 or 2 (is %" PRId64
                              "): no reward may depend on more than two referral levels",
                              s->referral_levels);
        if (s->referral_levels < 2 &&
            (s->referral2_sp_share_bp != 0 || s->referral2_cv_share_bp != 0 || s->referral2_bonus_cv != 0))
                return refuse(why, n,
                              "referral2_sp_share_bp, referral2_cv_share_bp and referral2_bonus_cv must be 0 when "
                              "referral_levels is %" PRId64,
                              s->referral_levels);
        if (s->referral_levels < 1 &&
            (s->referral_sp_share_bp != 0 || s->merchant_referral_sp_share_bp != 0 || s->referral_cv_share_bp != 0 ||
             s->referral_bonus_cv != 0))
                return refuse(why, n,
                              "referral_sp_share_bp, merchant_referral_sp_share_bp, referral_cv_share_bp and "
                              "referral_bonus_cv must be 0 when referral_levels is 0");

        CHECK_RANGE("deposit_min_fen", s->deposit_min_fen, 0, SB_ECON_MAX_PACK_FEN);

        CHECK_RANGE("cap_sp", s->cap_sp, 1, SB_ECON_MAX_SUPPLY_SP);
        if (s->treasury_sp < 0 || s->treasury_sp >= s->cap_sp)
                return refuse(why, n,
                              "treasury_sp must be at least 0 and less than cap_sp %" PRId64
                              " so that the airdrop has something to release (is %" PRId64 ")",
                              s->cap_sp, s->treasury_sp);
        if (s->daily_release_sp <= 0)
                return refuse(why, n, "daily_release_sp must be greater than 0 (is %" PRId64 ")",
                              s->daily_release_sp);
        if (s->daily_release_sp > s->cap_sp - s->treasury_sp)
                return refuse(why, n,
                              "daily_release_sp %" PRId64 " exceeds what the airdrop can release, cap_sp − "
                              "treasury_sp = %" PRId64,
                              s->daily_release_sp, s->cap_sp - s->treasury_sp);
        if (s->schedule != SB_ECON_SCHEDULE_CONSTANT && s->schedule != SB_ECON_SCHEDULE_DECAYING)
                return refuse(why, n, "schedule must be constant or decaying (is %d)", (int) s->schedule);
        CHECK_RANGE("decay_period_days", s->decay_period_days, 1, 36500);
        CHECK_RANGE("start_day", s->start_day, 0, 2932896); /* 9999-12-31 */
        CHECK_RANGE("release_minute_of_day", s->release_minute_of_day, 0, 24 * 60 - 1);
        CHECK_RANGE("initial_price_micro", s->initial_price_micro, 1, SB_ECON_MAX_PRICE_MICRO);

        return 0;
}

/* ---------------------------------------------------------------------------------------------------------------
 * Sale
 * ------------------------------------------------------------------------------------------------------------- */

/* A share of `total` in bp, rounded down; 0 when the party is not paid. */
static int share_of(bool paid, int64_t total, int64_t bp, int64_t *ret) {
        if (!paid) {
                *ret = 0;
                return 0;
        }
        return sb_muldiv_i64(total, bp, SB_BP_ONE, SB_ROUND_DOWN, ret);
}

int sb_econ_sale_split(const sb_econ_settings *s, const sb_econ_sale_in *in, sb_econ_sale *ret) {
        sb_econ_sale r = { 0 };
        bool pay_ref, pay_ref2, pay_mref;
        int64_t paid = 0, bp_sum;
        int e;

        assert(s);
        assert(in);
        assert(ret);

        if (in->spend_fen <= 0 || in->price_micro <= 0)
                return -EINVAL;
        if (in->rate_bp < s->concession_min_bp || in->rate_bp > s->concession_max_bp || in->rate_bp <= 0 ||
            in->rate_bp > SB_BP_ONE)
                return -EINVAL;
        if (in->has_parent_centre && !in->has_centre)
                return -EINVAL;
        if (in->has_referrer2 && !in->has_referrer)
                return -EINVAL;

        /* The settings should have been validated, but a sale must never pay out more than it takes. */
        bp_sum = 0;
        for (int i = 0; i < 5; i++) {
                int64_t bp = i == 0 ? s->referral_sp_share_bp
                           : i == 1 ? s->referral2_sp_share_bp
                           : i == 2 ? s->merchant_referral_sp_share_bp
                           : i == 3 ? s->centre_sp_share_bp
                                    : s->parent_centre_sp_share_bp;
                if (bp < 0 || bp > SB_BP_ONE)
                        return -EINVAL;
                bp_sum += bp;
        }
        if (bp_sum > SB_BP_ONE)
                return -EINVAL;

        e = sb_mul_i64(in->spend_fen, in->rate_bp, &r.concession_fen_e4);
        if (e < 0)
                return e;

        /* CV = V (yuan) × multiplier in 0.0001 units = S·r / 10^6 × m × 10^4 = S·r × m / 100. */
        e = sb_muldiv_i64(r.concession_fen_e4, s->member_cv_multiplier, CONCESSION_E4_PER_YUAN / SB_CV_SCALE,
                          SB_ROUND_DOWN, &r.member_cv);
        if (e < 0)
                return e;
        e = sb_muldiv_i64(r.concession_fen_e4, s->merchant_cv_multiplier, CONCESSION_E4_PER_YUAN / SB_CV_SCALE,
                          SB_ROUND_DOWN, &r.merchant_cv);
        if (e < 0)
                return e;
        r.member_cv_locked = !in->member_is_vip;

        /* SP = V / P = (S·r / 10^6 yuan) / (P / 10^6 yuan per SP) = S·r / P SP; in 0.0001 units × 10^4, rounded up. */
        e = sb_muldiv_i64(r.concession_fen_e4, SB_SP_SCALE, in->price_micro, SB_ROUND_UP, &r.sp_taken);
        if (e < 0)
                return e;

        pay_ref = s->referral_levels >= 1 && in->has_referrer && in->referrer_is_vip;
        pay_ref2 = s->referral_levels >= 2 && in->has_referrer2 && in->referrer2_is_vip;
        pay_mref = s->referral_levels >= 1 && in->has_merchant_referrer && in->merchant_referrer_is_vip;

        if ((e = share_of(pay_ref, r.sp_taken, s->referral_sp_share_bp, &r.referrer_sp)) < 0 ||
            (e = share_of(pay_ref2, r.sp_taken, s->referral2_sp_share_bp, &r.referrer2_sp)) < 0 ||
            (e = share_of(pay_mref, r.sp_taken, s->merchant_referral_sp_share_bp, &r.merchant_referrer_sp)) < 0 ||
            (e = share_of(in->has_centre, r.sp_taken, s->centre_sp_share_bp, &r.centre_sp)) < 0 ||
            (e = share_of(in->has_parent_centre, r.sp_taken, s->parent_centre_sp_share_bp, &r.parent_centre_sp)) < 0 ||
            (e = share_of(pay_ref, r.member_cv, s->referral_cv_share_bp, &r.referrer_cv)) < 0 ||
            (e = share_of(pay_ref2, r.member_cv, s->referral2_cv_share_bp, &r.referrer2_cv)) < 0)
                return e;

        /* Each share is at most its bp of sp_taken and the bp sum at most 100%, so these sums stay ≤ sp_taken. */
        paid = r.referrer_sp + r.referrer2_sp + r.merchant_referrer_sp + r.centre_sp + r.parent_centre_sp;
        assert(paid >= 0 && paid <= r.sp_taken);
        r.burned_sp = r.sp_taken - paid;
        assert(r.referrer_sp + r.referrer2_sp + r.merchant_referrer_sp + r.centre_sp + r.parent_centre_sp +
               r.burned_sp == r.sp_taken);

        *ret = r;
        return 0;
}

/* ---------------------------------------------------------------------------------------------------------------
 * Activation
 * ------------------------------------------------------------------------------------------------------------- */

int sb_econ_activate(const sb_econ_settings *s, const sb_econ_activation_in *in, sb_econ_activation *ret) {
        sb_econ_activation r = { 0 };
        const sb_econ_pack *pack = NULL;
        int e;

        assert(s);
        assert(in);
        assert(ret);

        for (size_t i = 0; i < s->n_packs && i < SB_ECON_MAX_PACKS; i++)
                if (s->packs[i].price_fen == in->pack_price_fen) {
                        pack = &s->packs[i];
                        break;
                }
        if (!pack)
                return -ENOENT;
        if (in->locked_cv < 0 || pack->cv < 0)
                return -EINVAL;

        r.pack_cv = pack->cv;
        if (!in->member_is_vip) {
                r.becomes_vip = true;
                r.unlocked_cv = in->locked_cv;
                if (s->referral_levels >= 1 && in->has_referrer && in->referrer_is_vip)
                        r.referrer_bonus_cv = s->referral_bonus_cv;
                if (s->referral_levels >= 2 && in->has_referrer && in->has_referrer2 && in->referrer2_is_vip)
                        r.referrer2_bonus_cv = s->referral2_bonus_cv;
        }
        e = sb_add_i64(r.pack_cv, r.unlocked_cv, &r.active_cv);
        if (e < 0)
                return e;

        *ret = r;
        return 0;
}

/* ---------------------------------------------------------------------------------------------------------------
 * Schedule
 * ------------------------------------------------------------------------------------------------------------- */

int sb_econ_day_index(const sb_econ_settings *s, int64_t day, int64_t *ret) {
        int64_t idx;
        int e;

        assert(s);
        assert(ret);

        e = sb_sub_i64(day, s->start_day, &idx);
        if (e < 0)
                return e;
        if (idx < 0)
                return -EDOM;
        *ret = idx;
        return 0;
}

/* D >> period: halving `period` times, each rounded down to the SP unit. */
static int64_t halved(int64_t d, int64_t period) {
        return period >= 63 ? 0 : d >> period;
}

int sb_econ_schedule_amount(const sb_econ_settings *s, int64_t idx, int64_t *ret) {
        assert(s);
        assert(ret);

        if (idx < 0)
                return -EDOM;
        if (s->daily_release_sp < 0 || s->decay_period_days <= 0)
                return -EINVAL;
        if (s->schedule == SB_ECON_SCHEDULE_DECAYING)
                *ret = halved(s->daily_release_sp, idx / s->decay_period_days);
        else
                *ret = s->daily_release_sp;
        return 0;
}

int sb_econ_daily_release(const sb_econ_settings *s, int64_t idx, int64_t unreleased_sp, int64_t *ret) {
        int64_t amount;
        int e;

        assert(s);
        assert(ret);

        if (unreleased_sp < 0)
                return -EINVAL;
        e = sb_econ_schedule_amount(s, idx, &amount);
        if (e < 0)
                return e;
        *ret = amount < unreleased_sp ? amount : unreleased_sp;
        return 0;
}

/* Walks the schedule one decay period (or, constant, one stretch) at a time: at most 64 steps. */
static int schedule_walk(const sb_econ_settings *s, int64_t n_days, int64_t *ret_days, int64_t *ret_total) {
        int64_t pool, total = 0, days = 0, period;

        if (s->daily_release_sp <= 0 || s->decay_period_days <= 0 || s->treasury_sp < 0 || s->cap_sp < s->treasury_sp)
                return -EINVAL;
        pool = s->cap_sp - s->treasury_sp;
        /* A constant schedule is a decaying one whose period never ends. */
        period = s->schedule == SB_ECON_SCHEDULE_DECAYING ? s->decay_period_days : INT64_MAX;

        for (int64_t p = 0; p < 64 && days < n_days && total < pool; p++) {
                int64_t a = halved(s->daily_release_sp, s->schedule == SB_ECON_SCHEDULE_DECAYING ? p : 0);
                int64_t span = n_days - days < period ? n_days - days : period;
                int64_t left = pool - total, need;

                if (a == 0)
                        break;
                /* Days of this span needed to empty the pool: ⌈left / a⌉. */
                need = left / a + (left % a != 0);
                if (need <= span) {
                        days += need;
                        total = pool;
                        break;
                }
                /* span < need ≤ left / a + 1, so span × a ≤ left: no overflow. */
                days += span;
                total += span * a;
        }
        *ret_days = days;
        *ret_total = total;
        return 0;
}

int sb_econ_schedule_total(const sb_econ_settings *s, int64_t n_days, int64_t *ret) {
        int64_t days, total;
        int e;

        assert(s);
        assert(ret);

        if (n_days < 0)
                return -EDOM;
        e = schedule_walk(s, n_days, &days, &total);
        if (e < 0)
                return e;
        *ret = total;
        return 0;
}

int sb_econ_schedule_end(const sb_econ_settings *s, int64_t *ret_days, int64_t *ret_total_sp) {
        int64_t days, total;
        int e;

        assert(s);
        assert(ret_days);

        e = schedule_walk(s, INT64_MAX, &days, &total);
        if (e < 0)
                return e;
        *ret_days = days;
        if (ret_total_sp)
                *ret_total_sp = total;
        return 0;
}

/* ---------------------------------------------------------------------------------------------------------------
 * Guide price
 * ------------------------------------------------------------------------------------------------------------- */

int sb_econ_circulating(int64_t released_sp, int64_t burned_sp, int64_t treasury_held_sp, int64_t *ret) {
        int64_t c;
        int e;

        assert(ret);

        if (released_sp < 0 || burned_sp < 0 || treasury_held_sp < 0)
                return -EINVAL;
        if ((e = sb_sub_i64(released_sp, burned_sp, &c)) < 0 || (e = sb_sub_i64(c, treasury_held_sp, &c)) < 0)
                return e;
        if (c < 0)
                return -EINVAL;
        *ret = c;
        return 0;
}

int sb_econ_guide_price(int64_t pool_fen, int64_t circulating_sp, int64_t initial_price_micro, int64_t *ret) {
        int64_t p;
        int e;

        assert(ret);

        if (pool_fen < 0 || circulating_sp < 0 || initial_price_micro <= 0)
                return -EINVAL;
        if (circulating_sp == 0) {
                *ret = initial_price_micro;
                return 0;
        }
        /* micro-yuan per SP = pool_fen × 10^4 micro/fen ÷ (circulating / 10^4 SP). */
        e = sb_muldiv_i64(pool_fen, SB_MICRO_PER_FEN * SB_SP_SCALE, circulating_sp, SB_ROUND_DOWN, &p);
        if (e < 0)
                return e;
        *ret = p > 0 ? p : 1;
        return 0;
}

/* ---------------------------------------------------------------------------------------------------------------
 * Allotment
 * ------------------------------------------------------------------------------------------------------------- */

int sb_econ_share_floor(int64_t cv, int64_t d, int64_t cv_total, int64_t *ret_floor, int64_t *ret_rem) {
        sb_u128 num;

        assert(ret_floor);
        assert(ret_rem);

        if (cv < 0 || d < 0 || cv_total <= 0 || cv > cv_total)
                return -EINVAL;
        num = (sb_u128) cv * (sb_u128) d;
        /* cv ≤ cv_total, so the quotient is at most d and fits. */
        *ret_floor = (int64_t) (num / (sb_u128) cv_total);
        *ret_rem = (int64_t) (num % (sb_u128) cv_total);
        return 0;
}

int sb_econ_leftover(int64_t d, int64_t floor_sum, uint64_t participants, int64_t *ret) {
        int64_t k;

        assert(ret);

        if (d < 0 || floor_sum < 0 || floor_sum > d)
                return -EINVAL;
        if (participants == 0) {
                /* With nobody taking part nothing is allotted: the caller releases nothing that day. */
                if (floor_sum != 0)
                        return -EINVAL;
                *ret = 0;
                return 0;
        }
        k = d - floor_sum;
        if ((uint64_t) k >= participants)
                return -EINVAL;
        *ret = k;
        return 0;
}

bool sb_econ_gets_extra(int64_t rem, uint64_t id, const sb_econ_threshold *t) {
        assert(t);

        if (t->none)
                return false;
        return rem > t->rem || (rem == t->rem && id <= t->id_max);
}

bool sb_econ_key_before(int64_t rem_a, uint64_t id_a, int64_t rem_b, uint64_t id_b) {
        return rem_a > rem_b || (rem_a == rem_b && id_a < id_b);
}

static unsigned bit_length(uint64_t v) {
        unsigned b = 0;

        while (v > 0) {
                b++;
                v >>= 1;
        }
        return b;
}

/* The key sorts like the leftover rule: larger remainder first, then lower id (stored as id_max − id). */
static sb_u128 select_key(const sb_econ_select *sel, int64_t rem, uint64_t id) {
        return ((sb_u128) (uint64_t) rem << sel->id_bits) | (sb_u128) (sel->id_max - id);
}

static sb_u128 u128_of(uint64_t hi, uint64_t lo) {
        return ((sb_u128) hi << 64) | lo;
}

int sb_econ_select_init(sb_econ_select *sel, uint64_t k, int64_t cv_total, uint64_t id_max) {
        assert(sel);

        if (cv_total <= 0)
                return -EINVAL;

        memset(sel, 0, sizeof(*sel));
        sel->k = k;
        sel->need = k;
        sel->rem_bound = cv_total;
        sel->id_max = id_max;
        sel->id_bits = bit_length(id_max);
        sel->key_bits = bit_length((uint64_t) cv_total - 1) + sel->id_bits;
        if (sel->key_bits == 0)
                sel->key_bits = 1;
        /* Key bits at and above `top` are fixed by the prefix; this pass looks at bits shift..top−1. */
        sel->top = sel->key_bits;
        sel->shift = sel->top > SB_ECON_SELECT_BITS ? sel->top - SB_ECON_SELECT_BITS : 0;
        sel->done = k == 0;
        return 0;
}

int sb_econ_select_feed(sb_econ_select *sel, int64_t rem, uint64_t id) {
        sb_u128 key, prefix;
        unsigned top;

        assert(sel);

        if (sel->done)
                return 0;
        if (sel->failed)
                return -EINVAL;
        if (rem < 0 || rem >= sel->rem_bound || id > sel->id_max || sel->fed == UINT32_MAX) {
                sel->failed = true;
                return -EINVAL;
        }
        sel->fed++;

        key = select_key(sel, rem, id);
        top = sel->top;
        prefix = u128_of(sel->prefix_hi, sel->prefix_lo);
        /* Only keys sharing the resolved prefix can hold the threshold; the prefix is the key >> top. */
        if ((top >= 128 ? 0 : key >> top) != prefix)
                return 0;
        sel->counts[(unsigned) ((key >> sel->shift) & ((1u << (top - sel->shift)) - 1))]++;
        return 0;
}

int sb_econ_select_next(sb_econ_select *sel) {
        unsigned top, width;
        uint64_t above = 0;
        sb_u128 prefix;

        assert(sel);

        if (sel->done)
                return 0;
        if (sel->failed)
                return -EINVAL;
        if (sel->pass == 0)
                sel->fed_first = sel->fed;
        else if (sel->fed != sel->fed_first)
                goto fail;

        top = sel->top;
        width = top - sel->shift;
        prefix = u128_of(sel->prefix_hi, sel->prefix_lo);

        for (uint64_t b = (UINT64_C(1) << width); b-- > 0;) {
                uint64_t c = sel->counts[b];

                if (above + c < sel->need) {
                        above += c;
                        continue;
                }
                prefix = (prefix << width) | b;
                if (above + c == sel->need) {
                        /* Every key of this bucket and above is in, none below: the threshold's low bits are 0. */
                        sb_u128 thr = prefix << sel->shift;
                        sel->thr_hi = (uint64_t) (thr >> 64);
                        sel->thr_lo = (uint64_t) thr;
                        sel->done = true;
                        return 0;
                }
                /* The k-th key is inside this bucket: narrow to it and look at the next bits. */
                if (sel->shift == 0)
                        goto fail; /* fully resolved yet still tied: duplicate keys */
                sel->need -= above;
                sel->prefix_hi = (uint64_t) (prefix >> 64);
                sel->prefix_lo = (uint64_t) prefix;
                sel->top = sel->shift;
                sel->shift = sel->top > SB_ECON_SELECT_BITS ? sel->top - SB_ECON_SELECT_BITS : 0;
                sel->pass++;
                sel->fed = 0;
                memset(sel->counts, 0, sizeof(sel->counts));
                return 1;
        }
fail:
        /* Fewer keys than k: the accounts fed are not the ones k was computed for. */
        sel->failed = true;
        return -EINVAL;
}

int sb_econ_select_result(const sb_econ_select *sel, sb_econ_threshold *ret) {
        sb_u128 thr, lo_mask;

        assert(sel);
        assert(ret);

        if (!sel->done)
                return -EAGAIN;
        if (sel->k == 0) {
                *ret = (sb_econ_threshold) { .none = true };
                return 0;
        }
        thr = u128_of(sel->thr_hi, sel->thr_lo);
        lo_mask = sel->id_bits == 0 ? 0 : (((sb_u128) 1 << sel->id_bits) - 1);
        *ret = (sb_econ_threshold) {
                .none = false,
                .rem = (int64_t) (thr >> sel->id_bits),
                /* key ≥ thr ⇔ rem > t.rem, or rem = t.rem and id_max − id ≥ low bits ⇔ id ≤ id_max − low bits. */
                .id_max = sel->id_max - (uint64_t) (thr & lo_mask),
        };
        return 0;
}

int sb_econ_cap_share(int64_t share_sp, int64_t cv, int64_t price_micro, sb_econ_capped *ret) {
        sb_econ_capped r = { .share_sp = share_sp };
        int e;

        assert(ret);

        if (share_sp < 0 || cv < 0 || price_micro <= 0)
                return -EINVAL;
        /* CV cost = SP × price in yuan; in 0.0001 units both sides: share × P / 10^6, rounded up. */
        e = sb_muldiv_i64(share_sp, price_micro, SB_MICRO_PER_YUAN, SB_ROUND_UP, &r.cost_cv);
        if (e < 0 && e != -ERANGE)
                return e;
        if (e == -ERANGE || r.cost_cv > cv) {
                /* What cv pays for: ⌊cv × 10^6 / P⌋; its cost rounds up to at most cv. */
                e = sb_muldiv_i64(cv, SB_MICRO_PER_YUAN, price_micro, SB_ROUND_DOWN, &r.share_sp);
                if (e < 0)
                        return e;
                e = sb_muldiv_i64(r.share_sp, price_micro, SB_MICRO_PER_YUAN, SB_ROUND_UP, &r.cost_cv);
                if (e < 0)
                        return e;
                assert(r.share_sp < share_sp && r.cost_cv <= cv);
                r.cut_sp = share_sp - r.share_sp;
        }
        *ret = r;
        return 0;
}

/* One sweep over the accounts computing each final share; writes out[] only when `write` is set. */
static int allot_sweep(const sb_econ_account *accts, size_t n, int64_t d, int64_t price_micro, int64_t cv_total,
                       const sb_econ_threshold *t, bool write, sb_econ_share *out, sb_econ_allot_summary *sum) {
        for (size_t i = 0; i < n; i++) {
                sb_econ_share sh = { .id = accts[i].id };
                int64_t fl = 0, rem = 0, alloc;
                sb_econ_capped c;
                int e;

                if (accts[i].cv > 0) {
                        e = sb_econ_share_floor(accts[i].cv, d, cv_total, &fl, &rem);
                        if (e < 0)
                                return e;
                        sh.extra = sb_econ_gets_extra(rem, accts[i].id, t);
                        alloc = fl + (sh.extra ? 1 : 0);
                        e = sb_econ_cap_share(alloc, accts[i].cv, price_micro, &c);
                        if (e < 0)
                                return e;
                        sh.share_sp = c.share_sp;
                        sh.cost_cv = c.cost_cv;
                        sh.cut_sp = c.cut_sp;
                        if ((e = sb_add_i64(sum->allotted_sp, alloc, &sum->allotted_sp)) < 0 ||
                            (e = sb_add_i64(sum->cut_sp, c.cut_sp, &sum->cut_sp)) < 0 ||
                            (e = sb_add_i64(sum->released_sp, c.share_sp, &sum->released_sp)) < 0 ||
                            (e = sb_add_i64(sum->cost_cv, c.cost_cv, &sum->cost_cv)) < 0)
                                return e;
                }
                if (write)
                        out[i] = sh;
        }
        return 0;
}

int sb_econ_allot(const sb_econ_account *accts, size_t n, int64_t d, int64_t price_micro, sb_econ_share *out,
                  sb_econ_allot_summary *ret_summary) {
        sb_econ_allot_summary sum = { 0 };
        sb_econ_threshold t = { .none = true };
        sb_econ_select *sel = NULL;
        int64_t floor_sum = 0, k = 0;
        uint64_t id_max = 0;
        int e;

        assert(accts || n == 0);
        assert(out || n == 0);

        if (d < 0 || price_micro <= 0)
                return -EINVAL;

        /* Pass 0: CV_T, the participants and the largest id. */
        for (size_t i = 0; i < n; i++) {
                if (accts[i].cv < 0)
                        return -EINVAL;
                if (accts[i].cv == 0)
                        continue;
                if (sb_add_i64(sum.cv_total, accts[i].cv, &sum.cv_total) < 0)
                        return -EINVAL;
                sum.participants++;
                if (accts[i].id > id_max)
                        id_max = accts[i].id;
        }

        if (sum.participants > 0) {
                /* Pass 1: the floor shares; the leftover k. */
                for (size_t i = 0; i < n; i++) {
                        int64_t fl, rem;

                        if (accts[i].cv == 0)
                                continue;
                        e = sb_econ_share_floor(accts[i].cv, d, sum.cv_total, &fl, &rem);
                        if (e < 0)
                                return e;
                        if ((e = sb_add_i64(floor_sum, fl, &floor_sum)) < 0)
                                return e;
                }
                e = sb_econ_leftover(d, floor_sum, sum.participants, &k);
                if (e < 0)
                        return e;

                /* The threshold of the k largest remainders, by the same streaming selection a chunked caller uses. */
                sel = malloc(sizeof(*sel));
                if (!sel)
                        return -ENOMEM;
                e = sb_econ_select_init(sel, (uint64_t) k, sum.cv_total, id_max);
                for (unsigned pass = 0; e >= 0 && pass < 16; pass++) {
                        for (size_t i = 0; i < n && e >= 0; i++) {
                                int64_t fl, rem;

                                if (accts[i].cv == 0)
                                        continue;
                                e = sb_econ_share_floor(accts[i].cv, d, sum.cv_total, &fl, &rem);
                                if (e >= 0)
                                        e = sb_econ_select_feed(sel, rem, accts[i].id);
                        }
                        if (e < 0)
                                break;
                        e = sb_econ_select_next(sel);
                        if (e == 0)
                                break;
                }
                if (e > 0)
                        e = -EINVAL; /* cannot happen: a 127-bit key resolves in at most eight passes */
                if (e == 0)
                        e = sb_econ_select_result(sel, &t);
                free(sel);
                if (e < 0)
                        return e == -EAGAIN ? -EINVAL : e;
        }
        sum.leftover_sp = k;

        /* Pass 2, twice: first every check and the sums, then the writes, so out[] is untouched on error. */
        e = allot_sweep(accts, n, d, price_micro, sum.cv_total, &t, false, out, &sum);
        if (e < 0)
                return e;
        assert(sum.participants == 0 || sum.allotted_sp == d);
        assert(sum.released_sp + sum.cut_sp == sum.allotted_sp);
        {
                sb_econ_allot_summary scratch = { .cv_total = sum.cv_total };
                e = allot_sweep(accts, n, d, price_micro, sum.cv_total, &t, true, out, &scratch);
                assert(e == 0);
        }
        if (ret_summary)
                *ret_summary = sum;
        return 0;
}
