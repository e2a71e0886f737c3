/* wallet_airdrop: ApplyAirdropChunk, the booking of one chunk of a day's airdrop (docs/airdrop.md).
 *
 * The airdrop service computes every account's share and CV cost (economy.h) and sends them in chunks of up to
 * WALLET_AIRDROP_ALLOTMENTS_MAX accounts. This file books a chunk set-based, in ONE database transaction, as ordinary
 * journal transactions of at most WALLET_AIRDROP_PER_TX accounts each (64 legs: the unreleased pool, the airdrop-spent
 * account, and an SP and a CV leg per account), so that everything the ledger promises still holds and `sharebuyctl
 * ledger verify` checks it like any other posting: each transaction balanced, hash-chained with wallet_chain_hash(),
 * its request hash from wallet_request_hash(), every stored balance the sum of its entries.
 *
 * Why not wallet_ledger_post_in_tx() per transaction: it runs ~3 statements per leg, i.e. ~6 per account, which is
 * minutes for a million accounts. Here a chunk is a fixed handful of statements whatever its size: the rows travel as
 * one parameter — a JSON document expanded by JSON_TABLE, a fixed-width text of deltas (update_by_range()) — or as
 * the column arrays of one bulk execution (the entries), never as one parameter per value.
 *
 * All transactions of a chunk go on one hash chain (chunk number mod WALLET_CHAINS), so a chunk holds one chain head,
 * not all 32. Two chunks of a day are booked at once (the airdrop's credit workers): their holders are disjoint,
 * consecutive chunks use different chains, and the rows every chunk touches — the unreleased pool and the hot
 * shards of the airdrop-spent account — are changed by the chunk's LAST statements (pool, then shards ascending),
 * so they are held only from there to the commit. The order of a chunk: holders (in account id order when they are
 * changed by range, in (owner kind, owner id, asset) order — an ordinary posting's — when by probe: update_holders()),
 * its chain head, the pool, the shards — an ordinary posting's order of holders then chain head.
 * An ordinary posting with an SP_UNRELEASED leg (an admin stocking the treasury) takes the pool before its holders,
 * so it and a chunk can deadlock over a member in both; InnoDB then rolls one back and sb_db_tx retries it (time,
 * not correctness). The airdrop-spent account is touched by chunks only. Because the pool is decremented after the journal rows are hashed,
 * the pool's airdrop legs carry no balance-after (as the hot shards' legs); its stored balance is still the sum of
 * its entries. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sharebuy/wallet/v1/wallet.pb-c.h"
#include "units.h"
#include "wallet.h"
#include "wallet_airdrop.h"

#define WALLET_AIRDROP_ALLOTMENTS_MAX 20000
/* A chunk's accounts are read and changed by id range when they span at most this many ids per account touched. */
#define AD_RANGE_SPAN 4
/* The hinted range reaches this far beyond the lowest and highest hint (an owner's SP next to its CV). */
#define AD_HINT_SLACK 2
/* (WALLET_LEGS_MAX − the two system legs) / two legs per account. */
#define WALLET_AIRDROP_PER_TX ((WALLET_LEGS_MAX - 2) / 2)
#define WALLET_AIRDROP_TX_MAX ((WALLET_AIRDROP_ALLOTMENTS_MAX + WALLET_AIRDROP_PER_TX - 1) / WALLET_AIRDROP_PER_TX)

enum {
        AD_REASON_SP = 15,      /* LEG_REASON_AIRDROP_SP */
        AD_REASON_CV_COST = 16, /* LEG_REASON_AIRDROP_CV_COST */
        AD_CAUSE = 7,           /* CAUSE_KIND_AIRDROP */
};

/* One allotment of the request with what the ledger knows of its accounts. */
typedef struct ad_item {
        int kind;
        uint64_t owner;
        int64_t sp, cost;
        uint64_t sp_account, cv_account;
        uint64_t cv_hint;               /* the request's cv_account_id: where to look, not trusted */
        int64_t sp_balance, cv_balance; /* after the chunk */
        bool found_sp, found_cv;
} ad_item;

/* A growable text buffer for the statements' parameters. Allocation failure aborts, as sb_call_alloc does. */
typedef struct ad_buf {
        char *p;
        size_t len, cap;
} ad_buf;

/* Room for `more` bytes after b->len (and a terminating NUL). */
static void buf_reserve(ad_buf *b, size_t more) {
        if (b->cap - b->len > more)
                return;
        size_t cap = b->cap ? b->cap * 2 : 65536;
        while (cap - b->len <= more)
                cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
                abort();
        b->p = p;
        b->cap = cap;
}

static void buf_printf(ad_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(ad_buf *b, const char *fmt, ...) {
        for (;;) {
                va_list ap;
                va_start(ap, fmt);
                size_t room = b->cap - b->len;
                int n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
                va_end(ap);
                if (n < 0)
                        abort();
                if ((size_t) n < room) {
                        b->len += (size_t) n;
                        return;
                }
                buf_reserve(b, (size_t) n);
        }
}

static void buf_reset(ad_buf *b) {
        b->len = 0;
        if (b->p)
                b->p[0] = '\0';
}

typedef struct ad_ctx {
        const wallet_ledger_cfg *cfg;
        char day[WALLET_DAY_LEN + 1];
        unsigned chunk_no;
        int64_t price_micro;
        int64_t now_ms;
        ad_item *items; /* request order */
        size_t n;
        size_t *order;  /* item indices sorted by (kind, owner) */
        struct ad_acct *accts; /* 2 per item: account id to item, sorted by account id */
        size_t n_tx;
        wallet_tx *tx;  /* scratch */
        uint8_t (*request_hash)[WALLET_HASH_BYTES]; /* per transaction of the chunk */
        uint64_t *tx_ids;
        unsigned *shard;           /* per transaction: the airdrop-spent shard */
        int64_t sp_total, cost_total;
        ad_buf j1;
        /* the entries of the chunk, one array per column (sb_db_execute_bulk) */
        size_t e_cap;
        uint64_t *e_tx, *e_account, *e_shard;
        int64_t *e_asset, *e_amount, *e_after, *e_reason;
        uint8_t *e_after_null;
        bool replayed;
        bool by_range;       /* the balance rows were changed by range (update_holders) */
        bool lookup_range;   /* the accounts were read by the hinted id range (find_accounts) … */
        size_t lookup_probed; /* … and this many owners looked up by owner */
        wallet_problem problem;
} ad_ctx;

static void problem_set(wallet_problem *p, wallet_problem_kind kind, const char *reason, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static void problem_set(wallet_problem *p, wallet_problem_kind kind, const char *reason, const char *fmt, ...) {
        va_list ap;
        p->kind = kind;
        p->reason = reason;
        va_start(ap, fmt);
        vsnprintf(p->msg, sizeof p->msg, fmt, ap);
        va_end(ap);
}

static const char *kind_word(int kind) {
        return kind == WALLET_OWNER_MEMBER ? "member" : kind == WALLET_OWNER_MERCHANT ? "merchant" : "centre";
}

static void tx_key(const ad_ctx *c, size_t t, char out[WALLET_KEY_MAX + 1]) {
        snprintf(out, WALLET_KEY_MAX + 1, "airdrop:%s:%06u:%04zu", c->day, c->chunk_no, t);
}

/* Fills c->tx with transaction t of the chunk as a caller names it (scope, key, cause, memo, legs), and with the
 * ledger's side (account ids, shards, balances after) when `booked`. Returns 0 or -EINVAL (legs refused). */
static int build_tx(ad_ctx *c, size_t t, bool booked) {
        wallet_tx *tx = c->tx;
        memset(tx, 0, sizeof *tx);
        snprintf(tx->scope, sizeof tx->scope, "svc");
        tx_key(c, t, tx->key);
        tx->cause_kind = AD_CAUSE;
        snprintf(tx->cause_ref, sizeof tx->cause_ref, "%s", c->day);
        snprintf(tx->memo, sizeof tx->memo, "airdrop %s chunk %u part %zu at %" PRId64 " micro-yuan/SP", c->day,
                 c->chunk_no, t, c->price_micro);
        size_t lo = t * WALLET_AIRDROP_PER_TX, hi = lo + WALLET_AIRDROP_PER_TX;
        if (hi > c->n)
                hi = c->n;
        int64_t sp = 0, cost = 0;
        size_t k = 1;
        for (size_t i = lo; i < hi; i++) {
                const ad_item *it = &c->items[i];
                if (sb_add_i64(sp, it->sp, &sp) < 0 || sb_add_i64(cost, it->cost, &cost) < 0)
                        return -EINVAL;
                wallet_leg *l = &tx->legs[k++];
                l->ref = (wallet_account_ref){it->kind, it->owner, WALLET_ASSET_SP};
                l->amount = it->sp;
                l->reason = AD_REASON_SP;
                if (booked) {
                        l->account_id = it->sp_account;
                        l->has_balance_after = true;
                        l->balance_after = it->sp_balance;
                }
                l = &tx->legs[k++];
                l->ref = (wallet_account_ref){it->kind, it->owner, WALLET_ASSET_CV_ACTIVE};
                l->amount = -it->cost;
                l->reason = AD_REASON_CV_COST;
                if (booked) {
                        l->account_id = it->cv_account;
                        l->has_balance_after = true;
                        l->balance_after = it->cv_balance;
                }
        }
        wallet_leg *first = &tx->legs[0], *last = &tx->legs[k++];
        first->ref = (wallet_account_ref){WALLET_OWNER_SYSTEM, WALLET_SYS_SP_UNRELEASED, 0};
        first->amount = -sp;
        first->reason = AD_REASON_SP;
        last->ref = (wallet_account_ref){WALLET_OWNER_SYSTEM, WALLET_SYS_CV_AIRDROP_SPENT, 0};
        last->amount = cost;
        last->reason = AD_REASON_CV_COST;
        tx->n_legs = k;
        char why[256];
        if (wallet_legs_check(tx->legs, tx->n_legs, false, 0, why, sizeof why) < 0) {
                problem_set(&c->problem, WALLET_P_INVALID, "REASON_AMOUNT_OUT_OF_RANGE", "chunk part %zu: %s", t, why);
                return -EINVAL;
        }
        if (booked) {
                first->account_id = WALLET_SYS_SP_UNRELEASED;
                /* The pool's legs carry no balance-after, as the hot shards': the pool is decremented at the
                 * end of the chunk (book()), after the journal rows are hashed. */
                last->account_id = WALLET_SYS_CV_AIRDROP_SPENT;
                last->shard = c->shard[t];
        }
        return 0;
}

#define TRY(x)                                                                                                       \
        do {                                                                                                         \
                int r_ = (x);                                                                                        \
                if (r_ < 0)                                                                                          \
                        return r_;                                                                                   \
        } while (0)

static int drain(sb_db_stmt *s) {
        int r;
        while ((r = sb_db_fetch(s)) > 0)
                ;
        return r;
}

/* The chunk's transactions already in the journal: 0 with c->replayed when they are exactly this request's,
 * -ENOENT when there are none, WALLET_EREFUSED (EXISTS) when they were booked from other allotments. */
static int find_booked(sb_db *db, ad_ctx *c) {
        char like[WALLET_KEY_MAX + 1];
        snprintf(like, sizeof like, "airdrop:%s:%06u:%%", c->day, c->chunk_no);
        sb_db_stmt *s;
        TRY(sb_db_prepare(db,
                          "SELECT idem_key, tx_id, request_hash FROM transactions"
                          " WHERE scope = 'svc' AND idem_key LIKE ? ORDER BY idem_key",
                          &s));
        TRY(sb_db_bind_str(s, 0, like));
        TRY(sb_db_execute(s));
        size_t rows = 0;
        bool same = true;
        int r;
        while ((r = sb_db_fetch(s)) > 0) {
                char key[WALLET_KEY_MAX + 1], want[WALLET_KEY_MAX + 1];
                uint8_t h[WALLET_HASH_BYTES];
                uint64_t id;
                TRY(sb_db_col_str(s, 0, key, sizeof key));
                TRY(sb_db_col_u64(s, 1, &id));
                if (sb_db_col_blob(s, 2, h, sizeof h) != WALLET_HASH_BYTES)
                        return -EIO;
                if (rows < c->n_tx) {
                        tx_key(c, rows, want);
                        if (strcmp(key, want) != 0 || memcmp(h, c->request_hash[rows], sizeof h) != 0)
                                same = false;
                        else
                                c->tx_ids[rows] = id;
                }
                rows++;
        }
        if (r < 0)
                return r;
        if (rows == 0)
                return -ENOENT;
        if (!same || rows != c->n_tx) {
                problem_set(&c->problem, WALLET_P_EXISTS, "REASON_IDEMPOTENCY_KEY_REUSED",
                            "airdrop chunk %u of %s was already booked with other allotments", c->chunk_no, c->day);
                return WALLET_EREFUSED;
        }
        c->replayed = true;
        return 0;
}


static void found_account(ad_item *it, int64_t asset, uint64_t id) {
        if (asset == WALLET_ASSET_SP) {
                it->sp_account = id;
                it->found_sp = true;
        } else {
                it->cv_account = id;
                it->found_cv = true;
        }
}

/* The accounts inside the id range the request's hints give (cv_account_id: the airdrop's snapshot), matched to the
 * chunk's owners by the rows' own owner and asset — a wrong hint only makes the range miss — when the range is dense
 * (at most AD_RANGE_SPAN ids per account wanted; an owner's accounts are opened together, so SP lies next to CV). One
 * primary-key range read instead of a probe of owner_asset per owner: ~10 ms against ~30 ms for 10 000 owners. */
static int find_accounts_by_range(sb_db *db, ad_ctx *c) {
        uint64_t lo = UINT64_MAX, hi = 0;
        for (size_t i = 0; i < c->n; i++) {
                uint64_t h = c->items[i].cv_hint;
                if (h == 0)
                        return 0; /* no hint: look up by owner */
                lo = h < lo ? h : lo;
                hi = h > hi ? h : hi;
        }
        lo = lo > AD_HINT_SLACK ? lo - AD_HINT_SLACK : 1;
        hi = hi < UINT64_MAX - AD_HINT_SLACK ? hi + AD_HINT_SLACK : UINT64_MAX;
        if (hi - lo >= (uint64_t) AD_RANGE_SPAN * 2 * c->n)
                return 0;
        sb_db_stmt *s;
        TRY(sb_db_prepare(db,
                          "SELECT account_id, owner_kind, owner_id, asset FROM accounts"
                          " WHERE account_id BETWEEN ? AND ? AND asset IN (2, 3) AND owner_kind <> 0",
                          &s));
        TRY(sb_db_bind_u64(s, 0, lo));
        TRY(sb_db_bind_u64(s, 1, hi));
        TRY(sb_db_execute(s));
        int r;
        c->lookup_range = true;
        while ((r = sb_db_fetch(s)) > 0) {
                uint64_t id, owner;
                int64_t kind, asset;
                TRY(sb_db_col_u64(s, 0, &id));
                TRY(sb_db_col_i64(s, 1, &kind));
                TRY(sb_db_col_u64(s, 2, &owner));
                TRY(sb_db_col_i64(s, 3, &asset));
                /* The owner among the chunk's (c->order is sorted by owner). */
                ad_item key = {.kind = (int) kind, .owner = owner};
                size_t lo_k = 0, hi_k = c->n;
                while (lo_k < hi_k) {
                        size_t mid = lo_k + (hi_k - lo_k) / 2;
                        const ad_item *it = &c->items[c->order[mid]];
                        if (it->kind < key.kind || (it->kind == key.kind && it->owner < key.owner))
                                lo_k = mid + 1;
                        else
                                hi_k = mid;
                }
                if (lo_k == c->n)
                        continue;
                ad_item *it = &c->items[c->order[lo_k]];
                if (it->kind == key.kind && it->owner == key.owner)
                        found_account(it, asset, id);
        }
        return r;
}

/* The SP and active CV accounts of every owner of the chunk: those the hinted range held, then the others by owner
 * in one statement (account rows never change once created, so these reads take no lock). The STRAIGHT_JOIN drives
 * the look-ups in the order of the JSON document; rows are matched back by index, so no ORDER BY (a sort of the
 * whole chunk) is needed. */
static int find_accounts(sb_db *db, ad_ctx *c) {
        TRY(find_accounts_by_range(db, c));
        size_t missing = 0;
        buf_reset(&c->j1);
        buf_printf(&c->j1, "[");
        for (size_t k = 0; k < c->n; k++) {
                const ad_item *it = &c->items[c->order[k]];
                if (it->found_sp && it->found_cv)
                        continue;
                buf_printf(&c->j1, "%s[%zu,%d,%" PRIu64 "]", missing++ ? "," : "", c->order[k], it->kind, it->owner);
        }
        buf_printf(&c->j1, "]");
        c->lookup_probed = missing;
        if (missing == 0)
                return 0;
        sb_db_stmt *s;
        TRY(sb_db_prepare(db,
                          "SELECT j.i, a.asset, a.account_id FROM JSON_TABLE(?, '$[*]' COLUMNS ("
                          " i INT UNSIGNED PATH '$[0]', k TINYINT UNSIGNED PATH '$[1]', o BIGINT UNSIGNED PATH '$[2]'))"
                          " AS j STRAIGHT_JOIN accounts a ON a.owner_kind = j.k AND a.owner_id = j.o AND a.asset IN (2, 3)",
                          &s));
        TRY(sb_db_bind_strn(s, 0, c->j1.p, c->j1.len));
        TRY(sb_db_execute(s));
        int r;
        while ((r = sb_db_fetch(s)) > 0) {
                uint64_t i, id;
                int64_t asset;
                TRY(sb_db_col_u64(s, 0, &i));
                TRY(sb_db_col_i64(s, 1, &asset));
                TRY(sb_db_col_u64(s, 2, &id));
                if (i >= c->n)
                        return -EIO;
                found_account(&c->items[i], asset, id);
        }
        if (r < 0)
                return r;
        for (size_t k = 0; k < c->n; k++) {
                const ad_item *it = &c->items[c->order[k]];
                if (!it->found_sp || !it->found_cv) {
                        problem_set(&c->problem, WALLET_P_NOT_FOUND, "REASON_ACCOUNT_UNKNOWN",
                                    "the %s %" PRIu64 " has no ledger accounts", kind_word(it->kind), it->owner);
                        return WALLET_EREFUSED;
                }
        }
        return 0;
}

typedef struct ad_acct {
        uint64_t account_id;
        size_t item;
        bool sp;
} ad_acct;

static int cmp_acct(const void *a, const void *b) {
        uint64_t x = ((const ad_acct *) a)->account_id, y = ((const ad_acct *) b)->account_id;
        return x < y ? -1 : x > y;
}

/* The balance rows of a chunk are changed by one of two statements (docs/airdrop.md, "Where the time goes"):
 *
 * - by RANGE, when the chunk's accounts are dense in the id space (they span at most AD_RANGE_SPAN ids per account
 *   touched: members' accounts are opened three at a time, so a chunk of consecutive participants spans about
 *   1.5 ids per account): one `UPDATE … WHERE account_id BETWEEN lo AND hi` reads the range in primary-key order
 *   and takes each row's delta from a fixed-width text indexed by the row's offset in the range (a row without one
 *   is left alone), then one range read gives the balances after. Measured alone on 20 000 balance rows: ~50 ms,
 *   against ~110 ms for a primary-key probe per row. Under REPEATABLE READ the scan also locks the range's other rows
 *   (other owners' accounts between the chunk's, and their gaps) until the commit: a posting to one of them waits
 *   for the chunk, as a posting to one of the chunk's own accounts always did.
 * - by PROBE otherwise: one `INSERT … ON DUPLICATE KEY UPDATE … RETURNING` over a JSON document of the rows, which
 *   locks, writes and reads back each row by its key.
 *
 * Either way every row must exist (a missing balance row — a broken schema — fails the chunk) and no CV balance may
 * end below zero (a sale voided after the snapshot can leave less CV than the share costs), which is checked after
 * the statement, before anything else is written. The balances after the chunk are filled in: the journal rows carry
 * and hash them. */
#define AD_SLOT 17 /* one delta: "%+017" PRId64, a sign and 16 digits (|delta| <= WALLET_AMOUNT_MAX = 10^15) */
_Static_assert(AD_SLOT == 17, "update_by_range()'s SQL text spells the slot width");

static int64_t acct_delta(const ad_ctx *c, const ad_acct *m) {
        const ad_item *it = &c->items[m->item];
        return m->sp ? it->sp : -it->cost;
}

static void acct_set_balance(ad_ctx *c, const ad_acct *m, int64_t bal) {
        ad_item *it = &c->items[m->item];
        if (m->sp)
                it->sp_balance = bal;
        else
                it->cv_balance = bal;
}

static int update_by_range(sb_db *db, ad_ctx *c, const ad_acct *map, size_t m) {
        uint64_t lo = map[0].account_id, hi = map[m - 1].account_id;
        size_t span = (size_t) (hi - lo) + 1;
        buf_reset(&c->j1);
        buf_reserve(&c->j1, span * AD_SLOT);
        memset(c->j1.p, ' ', span * AD_SLOT);
        c->j1.len = span * AD_SLOT;
        for (size_t k = 0; k < m; k++) {
                char slot[24];
                if (snprintf(slot, sizeof slot, "%+0*" PRId64, AD_SLOT, acct_delta(c, &map[k])) != AD_SLOT)
                        return -EIO; /* cannot happen: the request's amounts are 1..10^15 */
                memcpy(c->j1.p + (size_t) (map[k].account_id - lo) * AD_SLOT, slot, AD_SLOT);
        }
        /* The deltas travel as one binary parameter, so SUBSTRING counts bytes (no character set to walk). */
        sb_db_stmt *s;
        TRY(sb_db_prepare(db,
                          "UPDATE balances SET balance = balance + CAST(SUBSTRING(?, (CAST(account_id AS SIGNED) - ?) * 17"
                          " + 1, 17) AS SIGNED), updated_ms = ?"
                          " WHERE account_id BETWEEN ? AND ? AND shard = 0"
                          " AND SUBSTRING(?, (CAST(account_id AS SIGNED) - ?) * 17 + 1, 1) <> ' '",
                          &s));
        TRY(sb_db_bind_blob(s, 0, c->j1.p, c->j1.len));
        TRY(sb_db_bind_i64(s, 1, (int64_t) lo));
        TRY(sb_db_bind_i64(s, 2, c->now_ms));
        TRY(sb_db_bind_u64(s, 3, lo));
        TRY(sb_db_bind_u64(s, 4, hi));
        TRY(sb_db_bind_blob(s, 5, c->j1.p, c->j1.len));
        TRY(sb_db_bind_i64(s, 6, (int64_t) lo));
        TRY(sb_db_execute(s));
        if (sb_db_affected_rows(s) != m)
                return -EIO; /* an account without its balance row (every delta is non-zero) */
        TRY(sb_db_prepare(db, "SELECT account_id, balance FROM balances WHERE account_id BETWEEN ? AND ? AND shard = 0",
                          &s));
        TRY(sb_db_bind_u64(s, 0, lo));
        TRY(sb_db_bind_u64(s, 1, hi));
        TRY(sb_db_execute(s));
        size_t rows = 0;
        int r;
        while ((r = sb_db_fetch(s)) > 0) {
                ad_acct key = {0};
                int64_t bal;
                TRY(sb_db_col_u64(s, 0, &key.account_id));
                TRY(sb_db_col_i64(s, 1, &bal));
                const ad_acct *hit = bsearch(&key, map, m, sizeof *map, cmp_acct);
                if (!hit)
                        continue; /* another owner's account inside the range */
                acct_set_balance(c, hit, bal);
                rows++;
        }
        if (r < 0)
                return r;
        return rows == m ? 0 : -EIO;
}

static int update_by_probe(sb_db *db, ad_ctx *c, const ad_acct *map, size_t m) {
        buf_reset(&c->j1);
        buf_printf(&c->j1, "[");
        for (size_t k = 0; k < c->n; k++) {
                const ad_item *it = &c->items[c->order[k]];
                /* In (owner kind, owner id, asset) order, an ordinary posting's: CV_ACTIVE (asset 2) before SP (3). */
                buf_printf(&c->j1, "%s[%" PRIu64 ",%" PRId64 "],[%" PRIu64 ",%" PRId64 "]", k ? "," : "",
                           it->cv_account, -it->cost, it->sp_account, it->sp);
        }
        buf_printf(&c->j1, "]");
        sb_db_stmt *s;
        TRY(sb_db_prepare(db,
                          "INSERT INTO balances (account_id, shard, balance, updated_ms)"
                          " SELECT j.a, 0, j.d, -1 FROM JSON_TABLE(?, '$[*]' COLUMNS (a BIGINT UNSIGNED PATH '$[0]',"
                          " d BIGINT PATH '$[1]')) AS j"
                          " ON DUPLICATE KEY UPDATE balance = balance + VALUES(balance), updated_ms = ?"
                          " RETURNING account_id, balance, updated_ms",
                          &s));
        TRY(sb_db_bind_strn(s, 0, c->j1.p, c->j1.len));
        TRY(sb_db_bind_i64(s, 1, c->now_ms));
        TRY(sb_db_execute(s));
        size_t rows = 0;
        int r;
        while ((r = sb_db_fetch(s)) > 0) {
                ad_acct key = {0};
                int64_t bal, updated;
                TRY(sb_db_col_u64(s, 0, &key.account_id));
                TRY(sb_db_col_i64(s, 1, &bal));
                TRY(sb_db_col_i64(s, 2, &updated));
                if (updated < 0)
                        return -EIO; /* inserted: the account has no balance row */
                const ad_acct *hit = bsearch(&key, map, m, sizeof *map, cmp_acct);
                if (!hit)
                        return -EIO;
                acct_set_balance(c, hit, bal);
                rows++;
        }
        if (r < 0)
                return r;
        return rows == m ? 0 : -EIO;
}

static int update_holders(sb_db *db, ad_ctx *c) {
        /* The chunk's accounts in id order (the order the range statement locks them in; the probe statement locks
         * them in owner order, an ordinary posting's). A posting that locks two of them in the other order can
         * deadlock with the chunk: InnoDB rolls one back and sb_db_tx retries it (time, not correctness). */
        ad_acct *map = c->accts;
        size_t m = 2 * c->n;
        for (size_t i = 0; i < c->n; i++) {
                map[2 * i] = (ad_acct){c->items[i].sp_account, i, true};
                map[2 * i + 1] = (ad_acct){c->items[i].cv_account, i, false};
        }
        qsort(map, m, sizeof *map, cmp_acct);
        for (size_t k = 1; k < m; k++)
                if (map[k].account_id == map[k - 1].account_id)
                        return -EIO; /* two holders on one account: the accounts table is broken */
        uint64_t span = map[m - 1].account_id - map[0].account_id + 1;
        c->by_range = span <= (uint64_t) AD_RANGE_SPAN * m;
        TRY(c->by_range ? update_by_range(db, c, map, m) : update_by_probe(db, c, map, m));
        for (size_t k = 0; k < c->n; k++) {
                const ad_item *it = &c->items[c->order[k]];
                if (it->cv_balance < 0) {
                        problem_set(&c->problem, WALLET_P_PRECONDITION, "REASON_INSUFFICIENT_BALANCE",
                                    "the %s %" PRIu64 " CV_ACTIVE account holds %" PRId64 " units, less than the %" PRId64
                                    " its airdrop share costs",
                                    kind_word(it->kind), it->owner, it->cv_balance + it->cost, it->cost);
                        return WALLET_EREFUSED;
                }
        }
        return 0;
}

static void hex(const uint8_t h[WALLET_HASH_BYTES], char out[2 * WALLET_HASH_BYTES + 1]) {
        wallet_hash_hex(h, out);
}

static int book(sb_db *db, ad_ctx *c) {
        sb_db_stmt *s;
        int r;
        /* 1. The holders: locked, credited and debited, and read back (their rows are this chunk's alone: chunks of
         * a day have disjoint accounts). The unreleased pool is NOT locked here: it is decremented by the chunk's last statements, so that two chunks book at
         * once and wait for each other only for those statements and the commit. */
        TRY(find_accounts(db, c));
        TRY(update_holders(db, c));
        /* 2. The chain head of the chunk: consecutive chunks on different chains, so chunks booked at once do not
         * wait for each other here. */
        unsigned part = c->chunk_no % WALLET_CHAINS;
        TRY(sb_db_prepare(db, "SELECT chain_seq, chain_hash FROM chain_heads WHERE chain_part = ? FOR UPDATE", &s));
        TRY(sb_db_bind_u64(s, 0, part));
        TRY(sb_db_execute(s));
        if ((r = sb_db_fetch(s)) <= 0)
                return r < 0 ? r : -EIO;
        uint64_t seq;
        uint8_t prev[WALLET_HASH_BYTES];
        TRY(sb_db_col_u64(s, 0, &seq));
        if (sb_db_col_blob(s, 1, prev, sizeof prev) != WALLET_HASH_BYTES)
                return -EIO;
        TRY(drain(s));

        /* 3. The journal rows, hashed in chain order. */
        char business_day[WALLET_DAY_LEN + 1];
        if (wallet_business_day(c->now_ms, c->cfg->utc_offset_min, c->cfg->cutoff_min, business_day) < 0)
                return -EINVAL;
        buf_reset(&c->j1);
        buf_printf(&c->j1, "[");
        for (size_t t = 0; t < c->n_tx; t++) {
                if (build_tx(c, t, true) < 0)
                        return WALLET_EREFUSED;
                wallet_tx *tx = c->tx;
                tx->posted_ms = c->now_ms;
                memcpy(tx->business_day, business_day, sizeof business_day);
                tx->chain_part = part;
                tx->chain_seq = seq + 1 + t;
                memcpy(tx->prev_hash, prev, sizeof prev);
                wallet_chain_hash(tx, tx->chain_hash);
                memcpy(prev, tx->chain_hash, sizeof prev);
                char rh[2 * WALLET_HASH_BYTES + 1], ph[2 * WALLET_HASH_BYTES + 1], ch[2 * WALLET_HASH_BYTES + 1];
                hex(c->request_hash[t], rh);
                hex(tx->prev_hash, ph);
                hex(tx->chain_hash, ch);
                buf_printf(&c->j1, "%s[\"%s\",\"%s\",%" PRIu64 ",\"%s\",\"%s\",\"%s\"]", t ? "," : "", tx->key, rh,
                           tx->chain_seq, ph, ch, tx->memo);
        }
        buf_printf(&c->j1, "]");
        TRY(sb_db_prepare(db,
                          "INSERT INTO transactions (scope, idem_key, request_hash, cause_kind, cause_ref,"
                          " cause_merchant, memo, posted_ms, business_day, reverses_tx_id, chain_part, chain_seq,"
                          " prev_hash, chain_hash)"
                          " SELECT 'svc', j.k, UNHEX(j.rh), 7, ?, 0, j.memo, ?, ?, NULL, ?, j.seq, UNHEX(j.ph),"
                          " UNHEX(j.ch) FROM JSON_TABLE(?, '$[*]' COLUMNS ("
                          " k VARCHAR(64) PATH '$[0]', rh CHAR(64) PATH '$[1]', seq BIGINT UNSIGNED PATH '$[2]',"
                          " ph CHAR(64) PATH '$[3]', ch CHAR(64) PATH '$[4]', memo VARCHAR(200) PATH '$[5]')) AS j",
                          &s));
        TRY(sb_db_bind_str(s, 0, c->day));
        TRY(sb_db_bind_i64(s, 1, c->now_ms));
        TRY(sb_db_bind_str(s, 2, business_day));
        TRY(sb_db_bind_u64(s, 3, part));
        TRY(sb_db_bind_strn(s, 4, c->j1.p, c->j1.len));
        TRY(sb_db_execute(s));
        if (sb_db_affected_rows(s) != c->n_tx)
                return -EIO;
        /* The ids the journal gave them (not necessarily consecutive under interleaved auto-increment). */
        r = find_booked(db, c);
        if (r < 0)
                return r == -ENOENT ? -EIO : r;
        c->replayed = false;

        /* 4. The entries, in leg order (the chain hash covers them in entry_id order), in one bulk execution
         * (sb_db_execute_bulk: the rows travel as binary arrays and the server runs them in order, so entry_id follows
         * leg order; `sharebuyctl ledger verify` checks the order of every chunk). Measured on 20 000 entries: ~90 ms
         * against ~130 ms for the same rows expanded from a JSON document by JSON_TABLE (docs/benchmarks.md). */
        size_t ne = 0;
        for (size_t t = 0; t < c->n_tx; t++) {
                if (build_tx(c, t, true) < 0)
                        return WALLET_EREFUSED;
                for (size_t k = 0; k < c->tx->n_legs; k++) {
                        const wallet_leg *l = &c->tx->legs[k];
                        if (ne >= c->e_cap)
                                return -EIO;
                        c->e_tx[ne] = c->tx_ids[t];
                        c->e_account[ne] = l->account_id;
                        c->e_shard[ne] = l->shard;
                        c->e_asset[ne] = l->ref.asset;
                        c->e_amount[ne] = l->amount;
                        c->e_after[ne] = l->has_balance_after ? l->balance_after : 0;
                        c->e_after_null[ne] = l->has_balance_after ? 0 : 1;
                        c->e_reason[ne] = l->reason;
                        ne++;
                }
        }
        TRY(sb_db_prepare(db,
                          "INSERT INTO entries (tx_id, account_id, shard, asset, amount, balance_after, reason)"
                          " VALUES (?, ?, ?, ?, ?, ?, ?)",
                          &s));
        const sb_db_bulk_col cols[7] = {
                {.u64 = c->e_tx},     {.u64 = c->e_account},  {.u64 = c->e_shard},
                {.i64 = c->e_asset},  {.i64 = c->e_amount},   {.i64 = c->e_after, .null = c->e_after_null},
                {.i64 = c->e_reason},
        };
        TRY(sb_db_execute_bulk(s, ne, cols, 7));
        if (sb_db_affected_rows(s) != ne)
                return -EIO;

        /* 6. Last, the rows every chunk shares, in the ledger's order (the pool, then the shards ascending): held
         * from here to the commit only. The pool must hold the chunk's release. */
        TRY(sb_db_prepare(db,
                          "UPDATE balances SET balance = balance - ?, updated_ms = ?"
                          " WHERE account_id = 1 AND shard = 0 AND balance >= ?",
                          &s));
        TRY(sb_db_bind_i64(s, 0, c->sp_total));
        TRY(sb_db_bind_i64(s, 1, c->now_ms));
        TRY(sb_db_bind_i64(s, 2, c->sp_total));
        TRY(sb_db_execute(s));
        if (sb_db_affected_rows(s) != 1) {
                int64_t unreleased = 0;
                TRY(sb_db_prepare(db, "SELECT balance FROM balances WHERE account_id = 1 AND shard = 0", &s));
                TRY(sb_db_execute(s));
                if ((r = sb_db_fetch(s)) > 0)
                        TRY(sb_db_col_i64(s, 0, &unreleased));
                TRY(drain(s));
                problem_set(&c->problem, WALLET_P_PRECONDITION, "REASON_INSUFFICIENT_BALANCE",
                            "the system account SP_UNRELEASED holds %" PRId64 " units, less than the %" PRId64
                            " this chunk releases",
                            unreleased, c->sp_total);
                return WALLET_EREFUSED;
        }
        int64_t per_shard[WALLET_HOT_SHARDS] = {0};
        for (size_t t = 0; t < c->n_tx; t++) {
                size_t lo = t * WALLET_AIRDROP_PER_TX, hi = lo + WALLET_AIRDROP_PER_TX;
                if (hi > c->n)
                        hi = c->n;
                for (size_t i = lo; i < hi; i++)
                        per_shard[c->shard[t]] += c->items[i].cost;
        }
        buf_reset(&c->j1);
        buf_printf(&c->j1, "[");
        bool first = true;
        for (unsigned sh = 0; sh < WALLET_HOT_SHARDS; sh++) {
                if (!per_shard[sh])
                        continue;
                buf_printf(&c->j1, "%s[%u,%" PRId64 "]", first ? "" : ",", sh, per_shard[sh]);
                first = false;
        }
        buf_printf(&c->j1, "]");
        TRY(sb_db_prepare(db,
                          "UPDATE balances b JOIN JSON_TABLE(?, '$[*]' COLUMNS (s SMALLINT UNSIGNED PATH '$[0]',"
                          " v BIGINT PATH '$[1]')) AS j ON b.account_id = 5 AND b.shard = j.s"
                          " SET b.balance = b.balance + j.v, b.updated_ms = ?",
                          &s));
        TRY(sb_db_bind_strn(s, 0, c->j1.p, c->j1.len));
        TRY(sb_db_bind_i64(s, 1, c->now_ms));
        TRY(sb_db_execute(s));

        /* 7. The chain head. */
        TRY(sb_db_prepare(db, "UPDATE chain_heads SET chain_seq = ?, chain_hash = ? WHERE chain_part = ?", &s));
        TRY(sb_db_bind_u64(s, 0, seq + c->n_tx));
        TRY(sb_db_bind_blob(s, 1, prev, sizeof prev));
        TRY(sb_db_bind_u64(s, 2, part));
        TRY(sb_db_execute(s));
        return 0;
}

/* Only the look-up of a booking of the chunk: 0 (replayed), -ENOENT, or EXISTS. */
static int find_fn(sb_db *db, void *arg) {
        ad_ctx *c = arg;
        c->problem.kind = WALLET_P_NONE;
        c->replayed = false;
        return find_booked(db, c);
}

static int apply_fn(sb_db *db, void *arg) {
        ad_ctx *c = arg;
        c->problem.kind = WALLET_P_NONE;
        c->replayed = false;
        c->by_range = c->lookup_range = false;
        c->lookup_probed = 0;
        for (size_t i = 0; i < c->n; i++)
                c->items[i].found_sp = c->items[i].found_cv = false;
        int r = find_booked(db, c);
        if (r != -ENOENT)
                return r;
        return book(db, c);
}

static int cmp_owner(const void *a, const void *b, void *arg) {
        const ad_item *items = arg;
        const ad_item *x = &items[*(const size_t *) a], *y = &items[*(const size_t *) b];
        if (x->kind != y->kind)
                return x->kind < y->kind ? -1 : 1;
        if (x->owner != y->owner)
                return x->owner < y->owner ? -1 : 1;
        return 0;
}

static void ctx_free(ad_ctx *c) {
        free(c->items);
        free(c->order);
        free(c->accts);
        free(c->tx);
        free(c->request_hash);
        free(c->tx_ids);
        free(c->shard);
        free(c->j1.p);
        free(c->e_tx);
        free(c->e_account);
        free(c->e_shard);
        free(c->e_asset);
        free(c->e_amount);
        free(c->e_after);
        free(c->e_reason);
        free(c->e_after_null);
}

sb_status wallet_h_apply_airdrop_chunk(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Wallet__V1__ApplyAirdropChunkRequest *req = (const void *) req_;
        Sharebuy__Wallet__V1__ApplyAirdropChunkResponse *resp = (void *) resp_;
        sb_status st;
        if ((st = sb_service_auth(call, SB_ROLES(SB_ROLE_SERVICE), NULL)) != SB_OK)
                return st;
        if (!wallet_day_valid(req->business_day))
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                           "business_day: \"YYYY-MM-DD\"");
        if (req->n_allotments == 0 || req->n_allotments > WALLET_AIRDROP_ALLOTMENTS_MAX)
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                           "allotments: 1..%d per chunk, got %zu", WALLET_AIRDROP_ALLOTMENTS_MAX,
                                           req->n_allotments);
        if (req->chunk_no > 999999 || req->price_micro_yuan <= 0)
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                           "chunk_no must be below 1 000 000 and price_micro_yuan positive");

        ad_ctx c = {.cfg = wallet_call_ledger(call), .chunk_no = req->chunk_no, .price_micro = req->price_micro_yuan,
                    .now_ms = wallet_now_ms(), .n = req->n_allotments};
        snprintf(c.day, sizeof c.day, "%s", req->business_day);
        c.n_tx = (c.n + WALLET_AIRDROP_PER_TX - 1) / WALLET_AIRDROP_PER_TX;
        c.items = calloc(c.n, sizeof *c.items);
        c.order = calloc(c.n, sizeof *c.order);
        c.accts = calloc(2 * c.n, sizeof *c.accts);
        c.tx = calloc(1, sizeof *c.tx);
        c.request_hash = calloc(c.n_tx, sizeof *c.request_hash);
        c.tx_ids = calloc(c.n_tx, sizeof *c.tx_ids);
        c.shard = calloc(c.n_tx, sizeof *c.shard);
        c.e_cap = 2 * c.n + 2 * c.n_tx; /* an SP and a CV leg per account, the pool and the spent account per tx */
        c.e_tx = calloc(c.e_cap, sizeof *c.e_tx);
        c.e_account = calloc(c.e_cap, sizeof *c.e_account);
        c.e_shard = calloc(c.e_cap, sizeof *c.e_shard);
        c.e_asset = calloc(c.e_cap, sizeof *c.e_asset);
        c.e_amount = calloc(c.e_cap, sizeof *c.e_amount);
        c.e_after = calloc(c.e_cap, sizeof *c.e_after);
        c.e_reason = calloc(c.e_cap, sizeof *c.e_reason);
        c.e_after_null = calloc(c.e_cap, sizeof *c.e_after_null);
        if (!c.items || !c.order || !c.accts || !c.tx || !c.request_hash || !c.tx_ids || !c.shard || !c.e_tx ||
            !c.e_account || !c.e_shard || !c.e_asset || !c.e_amount || !c.e_after || !c.e_reason || !c.e_after_null)
                abort();
        for (size_t i = 0; i < c.n; i++) {
                const Sharebuy__Wallet__V1__AirdropAllotment *a = req->allotments[i];
                ad_item *it = &c.items[i];
                if (!a->owner || a->owner->kind < 1 || a->owner->kind > 3 || a->owner->id == 0) {
                        ctx_free(&c);
                        return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                                   "allotment %zu: owner kind and id are required", i);
                }
                if (a->sp_units <= 0 || a->sp_units > WALLET_AMOUNT_MAX || a->cv_cost_units <= 0 ||
                    a->cv_cost_units > WALLET_AMOUNT_MAX) {
                        ctx_free(&c);
                        return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_AMOUNT_OUT_OF_RANGE",
                                                   "allotment %zu: sp_units and cv_cost_units must be 1..10^15", i);
                }
                it->kind = (int) a->owner->kind;
                it->owner = a->owner->id;
                it->cv_hint = a->cv_account_id;
                it->sp = a->sp_units;
                it->cost = a->cv_cost_units;
                if (sb_add_i64(c.sp_total, it->sp, &c.sp_total) < 0 ||
                    sb_add_i64(c.cost_total, it->cost, &c.cost_total) < 0) {
                        ctx_free(&c);
                        return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_AMOUNT_OUT_OF_RANGE",
                                                   "the chunk's total overflows");
                }
                c.order[i] = i;
        }
        qsort_r(c.order, c.n, sizeof *c.order, cmp_owner, c.items);
        for (size_t k = 1; k < c.n; k++) {
                if (cmp_owner(&c.order[k - 1], &c.order[k], c.items) == 0) {
                        const ad_item dup = c.items[c.order[k]];
                        ctx_free(&c);
                        return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                                   "the %s %" PRIu64 " appears twice in the chunk",
                                                   kind_word(dup.kind), dup.owner);
                }
        }
        /* The request hashes and shards depend only on the request: computed once, compared on a replay. */
        for (size_t t = 0; t < c.n_tx; t++) {
                if (build_tx(&c, t, false) < 0) {
                        st = sb_call_fail_reason(call, SB_INVALID_ARGUMENT, c.problem.reason, "%s", c.problem.msg);
                        ctx_free(&c);
                        return st;
                }
                wallet_request_hash(c.tx, c.request_hash[t]);
                c.shard[t] = wallet_shard_of(c.tx->scope, c.tx->key, WALLET_HOT_SHARDS);
        }

        sb_db *db = wallet_call_db(call, &st);
        if (!db) {
                ctx_free(&c);
                return st;
        }
        int r = sb_db_tx(db, apply_fn, &c);
        if (r == -EEXIST || r == WALLET_EREFUSED) {
                /* The same chunk booked concurrently (a retry while the first call still ran): its rows are there
                 * now, so this is a replay. Its insert collides (-EEXIST), or — when the first booking took the CV
                 * or the pool this one needs — this one is refused before it gets that far: look again either way
                 * (a refusal stands when nothing is booked). */
                wallet_problem refused = c.problem;
                int r2 = sb_db_tx(db, find_fn, &c);
                if (r2 == 0)
                        r = 0;
                else if (r2 == -ENOENT && r == WALLET_EREFUSED)
                        c.problem = refused;
                else if (r2 == -ENOENT)
                        r = sb_db_tx(db, apply_fn, &c);
                else
                        r = r2;
        }
        if (r < 0) {
                st = wallet_fail_store(call, r, &c.problem, "booking the airdrop chunk");
                ctx_free(&c);
                return st;
        }
        resp->n_transaction_ids = c.n;
        resp->transaction_ids = sb_call_alloc(call, c.n * sizeof *resp->transaction_ids);
        for (size_t i = 0; i < c.n; i++)
                resp->transaction_ids[i] = c.tx_ids[i / WALLET_AIRDROP_PER_TX];
        resp->sp_units = c.sp_total;
        resp->cv_cost_units = c.cost_total;
        resp->replayed = c.replayed;
        sb_log_kv(SB_LOG_DEBUG, "airdrop_chunk", "an airdrop chunk answered", "day", SB_LOG_STR(c.day), "chunk",
                  SB_LOG_INT((int64_t) c.chunk_no), "accounts", SB_LOG_INT((int64_t) c.n), "balances",
                  SB_LOG_STR(c.replayed ? "replayed" : c.by_range ? "range" : "probe"), "lookup",
                  SB_LOG_STR(c.replayed ? "replayed" : !c.lookup_range ? "probe" : c.lookup_probed ? "range+probe" : "range"),
                  "probed", SB_LOG_INT((int64_t) c.lookup_probed), NULL);
        ctx_free(&c);
        return SB_OK;
}
