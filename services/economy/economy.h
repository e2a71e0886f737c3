/* SPDX-License-Identifier: LicenseRef-proprietary */
#pragma once

/*
 * The economic rules of /shared/spec/economics.md as pure functions: the settings and their validator, the split of
 * a sale, activation, the release schedule, the guide price and the daily airdrop allotment.
 *
 * No I/O, no clock, no global state, no floating point. Units (see units.h): money in fen, CV and SP in 0.0001
 * units, the price in micro-yuan per 1 SP, rates and shares in basis points. Errors are negative errno values and
 * results are written only on success. Passing NULL where a pointer is required is a programmer error (asserted).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "units.h"

/* ---------------------------------------------------------------------------------------------------------------
 * Settings
 * ------------------------------------------------------------------------------------------------------------- */

#define SB_ECON_MAX_PACKS 8

/* The validator's upper bounds: they keep every product of the rules far inside int64_t. */
#define SB_ECON_MAX_SUPPLY_SP   (INT64_C(100000000000) * SB_SP_SCALE) /* 10^11 SP */
#define SB_ECON_MAX_CV_BONUS    (INT64_C(1000000000) * SB_CV_SCALE)   /* 10^9 CV */
#define SB_ECON_MAX_MULTIPLIER  INT64_C(1000)
#define SB_ECON_MAX_PACK_FEN    (INT64_C(100000000) * SB_FEN_PER_YUAN) /* 10^8 yuan */
#define SB_ECON_MAX_PRICE_MICRO (INT64_C(1000000000) * SB_MICRO_PER_YUAN) /* 10^9 yuan per SP */
#define SB_ECON_REFERRAL_LEVELS_MAX 2

typedef enum sb_econ_schedule {
        SB_ECON_SCHEDULE_CONSTANT,
        SB_ECON_SCHEDULE_DECAYING,
} sb_econ_schedule;

typedef struct sb_econ_pack {
        int64_t price_fen;
        int64_t cv; /* CV credited (active), in 0.0001 CV */
} sb_econ_pack;

typedef struct sb_econ_settings {
        int64_t register_bonus_cv; /* locked CV given at registration */

        sb_econ_pack packs[SB_ECON_MAX_PACKS];
        size_t n_packs;

        /* A merchant's concession rate: the default and the allowed range, in bp. */
        int64_t concession_default_bp;
        int64_t concession_min_bp;
        int64_t concession_max_bp;

        /* CV per yuan of concession value. */
        int64_t member_cv_multiplier;
        int64_t merchant_cv_multiplier;

        /* Shares of the SP a sale takes from the merchant's deposit, in bp of it. */
        int64_t referral_sp_share_bp;          /* the member's referrer (直推), if VIP */
        int64_t referral2_sp_share_bp;         /* the referrer's referrer (间推), if VIP */
        int64_t merchant_referral_sp_share_bp; /* the merchant's referrer, if VIP */
        int64_t centre_sp_share_bp;            /* the operating centre of the merchant's district */
        int64_t parent_centre_sp_share_bp;     /* that centre's parent centre, if it is a sub-centre */

        /* CV rewards: shares of the member's CV from a sale, and bonuses when a referred member activates. */
        int64_t referral_cv_share_bp;
        int64_t referral2_cv_share_bp;
        int64_t referral_bonus_cv;
        int64_t referral2_bonus_cv;

        /* How many referral levels rewards reach: 0, 1 or 2, never more (economics.md). */
        int64_t referral_levels;

        int64_t deposit_min_fen;

        /* The airdrop. Days are day numbers (days since 1970-01-01 in the region's time zone). */
        int64_t cap_sp;           /* the total supply */
        int64_t treasury_sp;      /* set aside from the cap for sale to merchants; the airdrop releases the rest */
        int64_t daily_release_sp; /* D */
        sb_econ_schedule schedule;
        int64_t decay_period_days;      /* the decaying schedule halves D after each period (a "year", 365) */
        int64_t start_day;              /* the day number of the first release day */
        int64_t release_minute_of_day;  /* 22:00 = 1320, local time of the region */
        int64_t initial_price_micro;    /* the guide price before any SP circulates */
} sb_econ_settings;

/*
 * sb_econ_settings_default(): every default of economics.md. Where economics.md names no default (the cap, D,
 * the start day) the values of its worked example 5 are used: cap 972 360 SP, D 888 SP, constant schedule,
 * start day 0 (a deployment sets its own); the treasury is 0. The result always passes the validator.
 */
sb_econ_settings sb_econ_settings_default(void);

/*
 * sb_econ_settings_validate(): checks s against the limits of economics.md. Returns 0 when the settings are
 * usable, otherwise -EINVAL and, when why is not NULL and n > 0, a NUL-terminated sentence naming the first
 * offending setting and the rule it breaks (truncated to n bytes). Refused, among others: a rate or share outside
 * 0..10000 bp; a concession range outside 1..10000 bp or not containing the default; SP shares that together exceed
 * 100% of the SP a sale takes (a sale would pay out more than it takes); more than two referral levels, or a
 * second-level reward while referral_levels < 2; a cap, D or initial price ≤ 0; D above what the airdrop can
 * release; a treasury < 0 or ≥ the cap; packs with price ≤ 0, duplicate prices or negative CV; amounts past the
 * SB_ECON_MAX_* bounds.
 */
int sb_econ_settings_validate(const sb_econ_settings *s, char *why, size_t n);

/* ---------------------------------------------------------------------------------------------------------------
 * A sale at a merchant
 * ------------------------------------------------------------------------------------------------------------- */

typedef struct sb_econ_sale_in {
        int64_t spend_fen;   /* S, > 0 */
        int64_t rate_bp;     /* r, inside the settings' concession range */
        int64_t price_micro; /* P, the day's guide price, > 0 */
        bool member_is_vip;
        bool has_referrer;        /* the member's referrer (直推) exists */
        bool referrer_is_vip;
        bool has_referrer2;       /* the referrer's referrer (间推) exists */
        bool referrer2_is_vip;
        bool has_merchant_referrer;
        bool merchant_referrer_is_vip;
        bool has_centre;          /* the merchant's district has an operating centre */
        bool has_parent_centre;   /* that centre is a sub-centre (requires has_centre) */
} sb_econ_sale_in;

typedef struct sb_econ_sale {
        /* V = S × r / 10000 fen, kept exact: in 0.0001 fen, i.e. simply S × r. */
        int64_t concession_fen_e4;

        /* CV (0.0001 units) = V in yuan × multiplier, rounded down to the CV unit. */
        int64_t member_cv;
        bool member_cv_locked; /* the member is not VIP: its CV is credited locked */
        int64_t merchant_cv;   /* active */

        /* SP (0.0001 units) taken from the deposit: V / P rounded up. The parts below sum to it exactly. */
        int64_t sp_taken;
        int64_t referrer_sp;
        int64_t referrer2_sp;
        int64_t merchant_referrer_sp;
        int64_t centre_sp;
        int64_t parent_centre_sp;
        int64_t burned_sp;

        /* Active CV for the referrers, a share of member_cv rounded down. */
        int64_t referrer_cv;
        int64_t referrer2_cv;
} sb_econ_sale;

/*
 * sb_econ_sale_split(): every leg of one sale (economics.md, "A sale at a merchant"). Each SP share is rounded down
 * in bp of sp_taken; a share whose party does not exist, or is not VIP where the rule asks for a VIP, is burned with
 * the rest, and so are second-level shares when s->referral_levels < 2. Conservation is checked before returning:
 * the parts always sum to sp_taken.
 * Whether the deposit holds sp_taken is the caller's check (a sale the deposit cannot cover is refused).
 * Returns 0 and writes *ret; -EINVAL for a spend ≤ 0, a rate outside the settings' concession range, a price ≤ 0,
 * a parent centre without a centre, a second-level referrer without a first, or settings whose SP shares exceed
 * 100%; -ERANGE when an amount overflows.
 */
int sb_econ_sale_split(const sb_econ_settings *s, const sb_econ_sale_in *in, sb_econ_sale *ret);

/* ---------------------------------------------------------------------------------------------------------------
 * Activation
 * ------------------------------------------------------------------------------------------------------------- */

typedef struct sb_econ_activation_in {
        int64_t pack_price_fen;
        bool member_is_vip; /* already activated before this purchase */
        int64_t locked_cv;  /* the member's locked CV now (registration bonus and CV earned before activation) */
        bool has_referrer;
        bool referrer_is_vip;
        bool has_referrer2;
        bool referrer2_is_vip;
} sb_econ_activation_in;

typedef struct sb_econ_activation {
        int64_t pack_cv;      /* credited active */
        int64_t unlocked_cv;  /* moved from locked to active */
        int64_t active_cv;    /* pack_cv + unlocked_cv: the member's active CV gained */
        bool becomes_vip;     /* this purchase is the activation */
        int64_t referrer_bonus_cv;
        int64_t referrer2_bonus_cv;
} sb_econ_activation;

/*
 * sb_econ_activate(): what buying a pack does. The first purchase (member not VIP) unlocks all locked CV, credits
 * the pack's CV active, makes the member VIP and pays the referral bonus to a VIP referrer (and the second-level
 * bonus to a VIP second-level referrer when referral_levels is 2). A further purchase credits the pack's CV and
 * changes nothing else.
 * Returns 0 and writes *ret; -ENOENT when no pack has that price; -EINVAL for negative locked CV; -ERANGE on
 * overflow.
 */
int sb_econ_activate(const sb_econ_settings *s, const sb_econ_activation_in *in, sb_econ_activation *ret);

/* ---------------------------------------------------------------------------------------------------------------
 * The release schedule
 * ------------------------------------------------------------------------------------------------------------- */

/*
 * sb_econ_day_index(): the release day index of calendar day `day` (a day number): 0 on s->start_day.
 * Returns 0 and writes *ret; -EDOM when day is before the start day; -ERANGE on overflow.
 */
int sb_econ_day_index(const sb_econ_settings *s, int64_t day, int64_t *ret);

/*
 * sb_econ_schedule_amount(): the schedule's amount for release day index idx (≥ 0), before the unreleased limit:
 * D for the constant schedule; for the decaying one D during the first decay period (365 release days), then halved
 * each following period, each halving rounded down to the SP unit (so D >> period number).
 * Returns 0 and writes *ret; -EDOM for idx < 0.
 */
int sb_econ_schedule_amount(const sb_econ_settings *s, int64_t idx, int64_t *ret);

/*
 * sb_econ_daily_release(): D_d, the day's release: the schedule's amount, never more than unreleased_sp (what
 * remains unreleased in the airdrop's part of the cap, amounts cut by the value cap included).
 * Returns 0 and writes *ret; -EDOM for idx < 0; -EINVAL for unreleased_sp < 0.
 */
int sb_econ_daily_release(const sb_econ_settings *s, int64_t idx, int64_t unreleased_sp, int64_t *ret);

/*
 * sb_econ_schedule_total(): what the schedule releases in its first n_days release days (indices 0..n_days-1) if
 * nothing is cut, limited by the airdrop's part of the cap (cap − treasury). Runs in O(number of decay periods).
 * Returns 0 and writes *ret; -EDOM for n_days < 0; -ERANGE on overflow.
 */
int sb_econ_schedule_total(const sb_econ_settings *s, int64_t n_days, int64_t *ret);

/*
 * sb_econ_schedule_end(): the number of release days with a nonzero release if nothing is cut: the last release is
 * on day ret_days counted from 1 (day index ret_days − 1, calendar day start_day + ret_days − 1). After it the pool
 * is empty, or (decaying schedule) the halved amount has reached zero; *ret_total_sp (optional, may be NULL) gets
 * the total released by then. Worked example 5: constant 888 a day, cap 972 360 → 1095.
 * Returns 0; -ERANGE on overflow.
 */
int sb_econ_schedule_end(const sb_econ_settings *s, int64_t *ret_days, int64_t *ret_total_sp);

/* ---------------------------------------------------------------------------------------------------------------
 * The guide price
 * ------------------------------------------------------------------------------------------------------------- */

/*
 * sb_econ_circulating(): SP in circulation = released_sp − burned_sp − treasury_held_sp, where released_sp is
 * everything that has left the unreleased pool (cap − unreleased, the treasury's part included) and
 * treasury_held_sp what the treasury still holds. Returns 0 and writes *ret; -EINVAL when an input is negative or
 * the result would be; -ERANGE on overflow.
 */
int sb_econ_circulating(int64_t released_sp, int64_t burned_sp, int64_t treasury_held_sp, int64_t *ret);

/*
 * sb_econ_guide_price(): P = backing pool ÷ SP in circulation, in micro-yuan per SP, rounded DOWN to the micro-yuan,
 * but never below 1 micro-yuan (a price is always a valid divisor). When nothing circulates (circulating_sp == 0)
 * the result is initial_price_micro.
 * Returns 0 and writes *ret; -EINVAL for a negative pool or circulation, or an initial price ≤ 0; -ERANGE when
 * the price does not fit.
 */
int sb_econ_guide_price(int64_t pool_fen, int64_t circulating_sp, int64_t initial_price_micro, int64_t *ret);

/* ---------------------------------------------------------------------------------------------------------------
 * The airdrop allotment
 *
 * In memory, sb_econ_allot() does it all. A caller with a million accounts streams them in chunks, any order,
 * any chunk size, and gets exactly the same numbers:
 *
 *   pass 0  cv_total = Σ CV_i, n = count and id_max = max id over the accounts with active CV > 0
 *           (SQL: SELECT SUM(cv), COUNT(*), MAX(id) ... WHERE cv > 0). D = sb_econ_daily_release(...).
 *   pass 1  for each account sb_econ_share_floor(cv, D, cv_total, &floor, &rem); sum the floors (checked);
 *           then sb_econ_leftover(D, floor_sum, n, &k): k units go one each to the k largest (rem, lower id).
 *   select  find the threshold of the k-th largest key, either
 *             - in SQL, with floor and rem kept in a staging table: UPDATE ... SET share = share + 1
 *               ORDER BY rem DESC, id ASC LIMIT k; or
 *             - streaming with sb_econ_select (bounded memory, a few passes): sb_econ_select_init(sel, k,
 *               cv_total, id_max); do { feed every (rem, id) } while (sb_econ_select_next(sel) > 0);
 *               then sb_econ_select_result(sel, &t);
 *   pass 2  for each account share = floor + sb_econ_gets_extra(rem, id, &t); then
 *           sb_econ_cap_share(share, cv, P, &final) gives the SP credited, the CV cost and the cut.
 *   Σ share = D exactly; Σ final.share_sp = D − Σ final.cut_sp; the cut stays unreleased.
 * ------------------------------------------------------------------------------------------------------------- */

typedef struct sb_econ_account {
        uint64_t id;
        int64_t cv; /* active CV, ≥ 0; an account with 0 takes no part and gets nothing */
} sb_econ_account;

typedef struct sb_econ_share {
        uint64_t id;
        int64_t share_sp; /* SP credited, after the value cap */
        int64_t cost_cv;  /* CV deducted: share_sp × P rounded up to the CV unit; never more than the account's CV */
        int64_t cut_sp;   /* what the value cap cut from the allotted share; stays unreleased */
        bool extra;       /* the account got one leftover unit */
} sb_econ_share;

typedef struct sb_econ_allot_summary {
        int64_t cv_total;     /* CV_T */
        size_t participants;  /* accounts with CV > 0 */
        int64_t leftover_sp;  /* units handed out by the largest remainder rule */
        int64_t allotted_sp;  /* Σ shares before the cap: exactly D (0 when nobody takes part) */
        int64_t cut_sp;       /* Σ cut_sp */
        int64_t released_sp;  /* allotted_sp − cut_sp: what leaves the unreleased pool */
        int64_t cost_cv;      /* Σ cost_cv */
} sb_econ_allot_summary;

/*
 * sb_econ_share_floor(): one account's floor share ⌊cv × d / cv_total⌋ and the remainder (cv × d) mod cv_total,
 * 0 ≤ rem < cv_total, both exact through 128-bit arithmetic. Returns 0 and writes both; -EINVAL for cv < 0,
 * d < 0, cv_total ≤ 0 or cv > cv_total.
 */
int sb_econ_share_floor(int64_t cv, int64_t d, int64_t cv_total, int64_t *ret_floor, int64_t *ret_rem);

/*
 * sb_econ_leftover(): the units left after the floor shares, d − floor_sum, checked against the rule: it must be
 * ≥ 0 and fewer than the participants (0 when there are none). Returns 0 and writes *ret; -EINVAL when the inputs
 * cannot come from one consistent pass 1 (a chunk missed or counted twice).
 */
int sb_econ_leftover(int64_t d, int64_t floor_sum, uint64_t participants, int64_t *ret);

/* The cut between the accounts that get a leftover unit and those that do not. */
typedef struct sb_econ_threshold {
        bool none;      /* k was 0: nobody gets one */
        int64_t rem;    /* an account gets one when rem > this ... */
        uint64_t id_max; /* ... or rem equals it and id ≤ this */
} sb_econ_threshold;

/*
 * sb_econ_gets_extra(): whether the account (rem, id) is among the k largest by (remainder descending, id
 * ascending) that t was computed for. In SQL: rem > t.rem OR (rem = t.rem AND id <= t.id_max).
 */
bool sb_econ_gets_extra(int64_t rem, uint64_t id, const sb_econ_threshold *t);

/*
 * sb_econ_key_before(): the order of the leftover rule: true when account a comes before account b, that is a has
 * the larger remainder or, at equal remainders, the lower id. For sorting in tests and small callers.
 */
bool sb_econ_key_before(int64_t rem_a, uint64_t id_a, int64_t rem_b, uint64_t id_b);

/*
 * A streaming radix selection of the k-th largest key (rem, −id) in bounded memory: each pass reads every account
 * once, in any order and any chunks, and fixes 16 more bits of the key; it usually ends after two or three passes
 * and never takes more than eight. The struct is about 256 KiB: allocate it on the heap.
 */
#define SB_ECON_SELECT_BITS 16
typedef struct sb_econ_select {
        uint64_t k;             /* how many accounts get a unit */
        uint64_t need;          /* how many still to find inside the current prefix */
        int64_t rem_bound;      /* cv_total: every remainder is below it */
        uint64_t id_max;
        unsigned id_bits, key_bits;         /* the key: remainder bits, then id_bits of (id_max − id) */
        unsigned top, shift;                /* bits ≥ top are fixed; this pass looks at shift..top−1 */
        uint64_t prefix_hi, prefix_lo;      /* the fixed high bits of the threshold key */
        uint64_t fed;           /* accounts fed this pass */
        uint64_t fed_first;     /* accounts fed in the first pass, to check later passes see the same set */
        unsigned pass;
        bool done, failed;
        uint64_t thr_hi, thr_lo; /* the threshold key when done */
        uint32_t counts[1u << SB_ECON_SELECT_BITS];
} sb_econ_select;

/*
 * sb_econ_select_init(): starts a selection of the k largest among accounts with remainders below cv_total
 * (> 0) and ids ≤ id_max. Returns 0; -EINVAL for cv_total ≤ 0.
 */
int sb_econ_select_init(sb_econ_select *sel, uint64_t k, int64_t cv_total, uint64_t id_max);

/*
 * sb_econ_select_feed(): feeds one account in the current pass. Returns 0; -EINVAL for a remainder outside
 * 0..cv_total−1 or an id above id_max (the selection is then failed). Once the selection is done (k = 0 is done
 * at once) a feed is ignored and returns 0, so callers run the same loop whatever k is.
 */
int sb_econ_select_feed(sb_econ_select *sel, int64_t rem, uint64_t id);

/*
 * sb_econ_select_next(): ends a pass. Returns 1 when another pass over all accounts is needed, 0 when the
 * threshold is known, -EINVAL when the accounts fed cannot hold k keys (k ≥ the count, a pass saw a different
 * number of accounts than the first, duplicate ids) or a feed failed.
 */
int sb_econ_select_next(sb_econ_select *sel);

/* sb_econ_select_result(): writes the threshold once sb_econ_select_next() returned 0; -EAGAIN before that. */
int sb_econ_select_result(const sb_econ_select *sel, sb_econ_threshold *ret);

/* The value cap applied to one account. */
typedef struct sb_econ_capped {
        int64_t share_sp;
        int64_t cost_cv;
        int64_t cut_sp;
} sb_econ_capped;

/*
 * sb_econ_cap_share(): account i pays for its allotted share with CV: cost = share × P rounded up to the CV unit.
 * When that exceeds cv, the share is cut to ⌊cv ÷ P⌋ (what cv pays for), its cost recomputed (≤ cv), and the
 * difference reported as cut_sp. Returns 0 and writes *ret; -EINVAL for a negative share or cv, or a price ≤ 0;
 * -ERANGE on overflow.
 */
int sb_econ_cap_share(int64_t share_sp, int64_t cv, int64_t price_micro, sb_econ_capped *ret);

/*
 * sb_econ_allot(): the whole day's allotment in memory: out[i] for accts[i] (same order; out has n entries).
 * Accounts with cv 0 get zeros. Accounts must have distinct ids (duplicates may be refused with -EINVAL).
 * Returns 0 and writes out[] and *ret_summary (optional, may be NULL); -EINVAL for negative CV, d < 0,
 * price ≤ 0 or CV_T overflowing;
 * -ENOMEM when the selection buffer cannot be allocated. On error out[] is left untouched.
 */
int sb_econ_allot(const sb_econ_account *accts, size_t n, int64_t d, int64_t price_micro, sb_econ_share *out,
                  sb_econ_allot_summary *ret_summary);
