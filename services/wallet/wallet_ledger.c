/* wallet_ledger: the ledger store. See wallet_ledger.h and docs/wallet.md. */
#include "wallet_ledger.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "units.h"

static void problem_set(wallet_problem *p, wallet_problem_kind kind, const char *reason, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

#include <stdarg.h>
static void problem_set(wallet_problem *p, wallet_problem_kind kind, const char *reason, const char *fmt, ...) {
        va_list ap;
        p->kind = kind;
        p->reason = reason;
        va_start(ap, fmt);
        vsnprintf(p->msg, sizeof p->msg, fmt, ap);
        va_end(ap);
}

/* Runs a prepared statement with up to 8 bound values; the helpers below keep the statements readable. */
#define TRY(x)                                                                                                       \
        do {                                                                                                         \
                int r_ = (x);                                                                                        \
                if (r_ < 0)                                                                                          \
                        return r_;                                                                                   \
        } while (0)

static bool is_hot(uint64_t system) {
        return system == WALLET_SYS_SP_BURNED || system == WALLET_SYS_CV_ISSUED ||
               system == WALLET_SYS_CV_AIRDROP_SPENT || system == WALLET_SYS_FEN_BACKING_POOL ||
               system == WALLET_SYS_FEN_PAYMENTS_RECEIVED;
}

static const char *kind_word(int kind) {
        switch (kind) {
        case WALLET_OWNER_MEMBER:
                return "member";
        case WALLET_OWNER_MERCHANT:
                return "merchant";
        case WALLET_OWNER_CENTRE:
                return "centre";
        default:
                return "system";
        }
}

static const char *asset_word(int asset) {
        switch (asset) {
        case WALLET_ASSET_CV_LOCKED:
                return "CV_LOCKED";
        case WALLET_ASSET_CV_ACTIVE:
                return "CV_ACTIVE";
        case WALLET_ASSET_SP:
                return "SP";
        case WALLET_ASSET_FEN:
                return "FEN";
        default:
                return "?";
        }
}

static const char *system_word(uint64_t s) {
        static const char *const names[] = {"?", "SP_UNRELEASED", "SP_TREASURY", "SP_BURNED", "CV_ISSUED",
                                            "CV_AIRDROP_SPENT", "FEN_BACKING_POOL", "FEN_PAYMENTS_RECEIVED"};
        return s <= WALLET_SYS_MAX ? names[s] : "?";
}

/* "member 12 SP" or "system SP_TREASURY". */
static void account_name(const wallet_account_ref *r, char *buf, size_t n) {
        if (r->owner_kind == WALLET_OWNER_SYSTEM)
                snprintf(buf, n, "system account %s", system_word(r->owner_id));
        else
                snprintf(buf, n, "%s %" PRIu64 " %s account", kind_word(r->owner_kind), r->owner_id,
                         asset_word(r->asset));
}

static int64_t ref_cmp(const wallet_account_ref *a, const wallet_account_ref *b) {
        if (a->owner_kind != b->owner_kind)
                return a->owner_kind < b->owner_kind ? -1 : 1;
        if (a->owner_id != b->owner_id)
                return a->owner_id < b->owner_id ? -1 : 1;
        if (a->asset != b->asset)
                return a->asset < b->asset ? -1 : 1;
        return 0;
}

/* --- Posting ------------------------------------------------------------------------------------------------- */

static const char sql_lock_head[] = "SELECT chain_seq, chain_hash FROM chain_heads WHERE chain_part = ? FOR UPDATE";
static const char sql_set_head[] = "UPDATE chain_heads SET chain_seq = ?, chain_hash = ? WHERE chain_part = ?";
static const char sql_insert_tx[] =
        "INSERT INTO transactions (scope, idem_key, request_hash, cause_kind, cause_ref, cause_merchant, memo,"
        " posted_ms, business_day, reverses_tx_id, chain_part, chain_seq, prev_hash, chain_hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
/* Several rows per statement: a sale's five legs were ~10 round trips for the balances and the entries, now 3.
 * Texts for 1..ROWS_PER_STMT rows, built once (constant texts, as the statement cache wants). The balance rows
 * exist and are locked (single rows) or are the migration's shard rows: INSERT .. ON DUPLICATE KEY UPDATE only
 * updates, each updated row counting 2 affected rows — a row it inserted instead (a broken schema) counts 1 and
 * fails the posting, as the single-row UPDATE's affected-row check did. */
#define ROWS_PER_STMT 8
/* The account locks and the balance rows take more rows per statement (3 and 4 parameters a row, at most
 * SB_DB_PARAMS_MAX in all): a group of postings (wallet_ledger_post_group) locks and writes dozens at once. */
#define LOCK_ROWS_PER_STMT 21
#define BAL_ROWS_PER_STMT 16
#define TX_ROWS_PER_STMT 4
#define MULTI_SQL_MAX 1024
static char sql_set_balances[BAL_ROWS_PER_STMT + 1][MULTI_SQL_MAX];
static char sql_add_shards[BAL_ROWS_PER_STMT + 1][MULTI_SQL_MAX];
static char sql_insert_entries[ROWS_PER_STMT + 1][MULTI_SQL_MAX];
static char sql_lock_accounts[LOCK_ROWS_PER_STMT + 1][MULTI_SQL_MAX];
static char sql_insert_txs[TX_ROWS_PER_STMT + 1][MULTI_SQL_MAX];
static pthread_once_t multi_once = PTHREAD_ONCE_INIT;

static void multi_build(char *buf, const char *head, const char *row, unsigned n, const char *tail) {
        size_t len = (size_t) snprintf(buf, MULTI_SQL_MAX, "%s", head);
        for (unsigned i = 0; i < n && len < MULTI_SQL_MAX; i++)
                len += (size_t) snprintf(buf + len, MULTI_SQL_MAX - len, "%s%s", i ? ", " : "", row);
        if (len < MULTI_SQL_MAX)
                snprintf(buf + len, MULTI_SQL_MAX - len, "%s", tail);
}

static void multi_init(void) {
        for (unsigned n = 1; n <= BAL_ROWS_PER_STMT; n++) {
                multi_build(sql_set_balances[n], "INSERT INTO balances (account_id, shard, balance, updated_ms) VALUES ",
                            "(?, 0, ?, ?)",
                            n, " ON DUPLICATE KEY UPDATE balance = VALUES(balance), updated_ms = VALUES(updated_ms)");
                multi_build(sql_add_shards[n], "INSERT INTO balances (account_id, shard, balance, updated_ms) VALUES ",
                            "(?, ?, ?, ?)", n,
                            " ON DUPLICATE KEY UPDATE balance = balance + VALUES(balance), updated_ms = "
                            "VALUES(updated_ms)");
        }
        for (unsigned n = 1; n <= ROWS_PER_STMT; n++)
                multi_build(sql_insert_entries[n],
                            "INSERT INTO entries (tx_id, account_id, shard, asset, amount, balance_after, reason) "
                            "VALUES ",
                            "(?, ?, ?, ?, ?, ?, ?)", n, "");
        /* The single-row accounts of a posting locked in one statement: the forced range scan of the owner_asset
         * index reads (and locks) them in (kind, id, asset) order, each account's balance row right after it — the
         * order the single-row look-ups took one by one. */
        for (unsigned n = 1; n <= LOCK_ROWS_PER_STMT; n++)
                multi_build(sql_lock_accounts[n],
                            "SELECT a.owner_kind, a.owner_id, a.asset, a.account_id, b.balance FROM accounts a"
                            " FORCE INDEX (owner_asset) JOIN balances b ON b.account_id = a.account_id AND b.shard = 0"
                            " WHERE (a.owner_kind, a.owner_id, a.asset) IN (",
                            "(?, ?, ?)", n, ") FOR UPDATE");
        for (unsigned n = 1; n <= TX_ROWS_PER_STMT; n++)
                multi_build(sql_insert_txs[n],
                            "INSERT INTO transactions (scope, idem_key, request_hash, cause_kind, cause_ref,"
                            " cause_merchant, memo, posted_ms, business_day, reverses_tx_id, chain_part, chain_seq,"
                            " prev_hash, chain_hash) VALUES ",
                            "(?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?)", n, "");
}

/* The balance rows of legs idx[0..n) (amounts not 0): absolute balances (shard 0) or deltas to shard rows. */
static int balances_write(sb_db *db, const wallet_leg *legs, const size_t *idx, size_t n, bool shards,
                          int64_t now_ms) {
        for (size_t at = 0; at < n;) {
                unsigned k = (unsigned) (n - at < BAL_ROWS_PER_STMT ? n - at : BAL_ROWS_PER_STMT);
                sb_db_stmt *s;
                TRY(sb_db_prepare(db, shards ? sql_add_shards[k] : sql_set_balances[k], &s));
                unsigned p = 0;
                for (unsigned j = 0; j < k; j++) {
                        const wallet_leg *l = &legs[idx[at + j]];
                        TRY(sb_db_bind_u64(s, p++, l->account_id));
                        if (shards)
                                TRY(sb_db_bind_u64(s, p++, l->shard));
                        TRY(sb_db_bind_i64(s, p++, shards ? l->amount : l->balance_after));
                        TRY(sb_db_bind_i64(s, p++, now_ms));
                }
                TRY(sb_db_execute(s));
                if (sb_db_affected_rows(s) != 2 * (int64_t) k)
                        return -EIO; /* a row was missing: the migration made every one, so the schema is broken */
                at += k;
        }
        return 0;
}

/* Locks the accounts of legs order[0..n) (sorted by (kind, id, asset), no two alike) and reads their balances into
 * bal[] (same positions), LOCK_ROWS_PER_STMT accounts per statement. An account never opened refuses the posting. */
static int lock_singles(sb_db *db, wallet_leg *legs, const size_t *order, size_t n, int64_t *bal,
                        wallet_problem *problem) {
        for (size_t at = 0; at < n;) {
                unsigned k = (unsigned) (n - at < LOCK_ROWS_PER_STMT ? n - at : LOCK_ROWS_PER_STMT);
                bool found[LOCK_ROWS_PER_STMT] = {false};
                sb_db_stmt *s;
                TRY(sb_db_prepare(db, sql_lock_accounts[k], &s));
                unsigned p = 0;
                for (unsigned j = 0; j < k; j++) {
                        const wallet_leg *l = &legs[order[at + j]];
                        TRY(sb_db_bind_i64(s, p++, l->ref.owner_kind));
                        TRY(sb_db_bind_u64(s, p++, l->ref.owner_id));
                        TRY(sb_db_bind_i64(s, p++, l->ref.asset));
                }
                TRY(sb_db_execute(s));
                int r;
                while ((r = sb_db_fetch(s)) > 0) {
                        int64_t kind, asset, b;
                        wallet_account_ref ref;
                        uint64_t id;
                        TRY(sb_db_col_i64(s, 0, &kind));
                        TRY(sb_db_col_u64(s, 1, &ref.owner_id));
                        TRY(sb_db_col_i64(s, 2, &asset));
                        TRY(sb_db_col_u64(s, 3, &id));
                        TRY(sb_db_col_i64(s, 4, &b));
                        ref.owner_kind = (int) kind;
                        ref.asset = (int) asset;
                        for (unsigned j = 0; j < k; j++) {
                                wallet_leg *l = &legs[order[at + j]];
                                if (!found[j] && ref_cmp(&l->ref, &ref) == 0) {
                                        found[j] = true;
                                        l->account_id = id;
                                        bal[at + j] = b;
                                        break;
                                }
                        }
                }
                if (r < 0)
                        return r;
                for (unsigned j = 0; j < k; j++) {
                        if (!found[j]) {
                                char name[96];
                                account_name(&legs[order[at + j]].ref, name, sizeof name);
                                problem_set(problem, WALLET_P_NOT_FOUND, "REASON_ACCOUNT_UNKNOWN",
                                            "the %s was never opened", name);
                                return WALLET_EREFUSED;
                        }
                }
                at += k;
        }
        return 0;
}

int wallet_ledger_post_in_tx(sb_db *db, const wallet_ledger_cfg *cfg, wallet_tx *tx, int64_t now_ms,
                             wallet_problem *problem) {
        size_t order[WALLET_LEGS_MAX];
        size_t n = tx->n_legs;
        sb_db_stmt *s;

        if (!tx->request_hash_set) {
                wallet_request_hash(tx, tx->request_hash);
                tx->request_hash_set = true;
        }
        const uint8_t *request_hash = tx->request_hash;
        tx->posted_ms = now_ms;
        if (wallet_business_day(now_ms, cfg->utc_offset_min, cfg->cutoff_min, tx->business_day) < 0)
                return -EINVAL;

        /* Single-row accounts (holders, unreleased, treasury) in (kind, id, asset) order; insertion sort, n ≤ 64. */
        size_t n_single = 0;
        for (size_t i = 0; i < n; i++) {
                wallet_leg *l = &tx->legs[i];
                if (l->ref.owner_kind == WALLET_OWNER_SYSTEM && is_hot(l->ref.owner_id))
                        continue;
                size_t j = n_single++;
                while (j > 0 && ref_cmp(&tx->legs[order[j - 1]].ref, &l->ref) > 0) {
                        order[j] = order[j - 1];
                        j--;
                }
                order[j] = i;
        }
        pthread_once(&multi_once, multi_init);
        int64_t bals[WALLET_LEGS_MAX];
        TRY(lock_singles(db, tx->legs, order, n_single, bals, problem));
        for (size_t k = 0; k < n_single; k++) {
                wallet_leg *l = &tx->legs[order[k]];
                int64_t bal = bals[k], after;
                char name[96];
                if (sb_add_i64(bal, l->amount, &after) < 0) {
                        account_name(&l->ref, name, sizeof name);
                        problem_set(problem, WALLET_P_PRECONDITION, "REASON_AMOUNT_OUT_OF_RANGE",
                                    "the %s holds %" PRId64 " units; adding %" PRId64 " would overflow", name, bal,
                                    l->amount);
                        return WALLET_EREFUSED;
                }
                if (after < 0) {
                        bool treasury = l->ref.owner_kind == WALLET_OWNER_SYSTEM &&
                                        l->ref.owner_id == WALLET_SYS_SP_TREASURY;
                        account_name(&l->ref, name, sizeof name);
                        problem_set(problem, WALLET_P_PRECONDITION,
                                    treasury ? "REASON_TREASURY_INSUFFICIENT" : "REASON_INSUFFICIENT_BALANCE",
                                    "the %s holds %" PRId64 " units, less than the %" PRId64 " this takes", name, bal,
                                    -l->amount);
                        return WALLET_EREFUSED;
                }
                l->shard = 0;
                l->has_balance_after = true;
                l->balance_after = after;
        }
        /* Hot system accounts: one shard chosen by the key, updated blind (no lock held before, no balance read). */
        unsigned shard = wallet_shard_of(tx->scope, tx->key, WALLET_HOT_SHARDS);
        for (size_t i = 0; i < n; i++) {
                wallet_leg *l = &tx->legs[i];
                if (!(l->ref.owner_kind == WALLET_OWNER_SYSTEM && is_hot(l->ref.owner_id)))
                        continue;
                l->account_id = l->ref.owner_id;
                l->shard = shard;
                l->has_balance_after = false;
                l->balance_after = 0;
        }
        /* Ascending account id for the shard rows (all on the same shard), after every single-row lock; then the
         * single rows in their lock order. A leg of 0 (never from a caller: the legs check refuses it) changes no
         * balance and writes none. */
        pthread_once(&multi_once, multi_init);
        size_t idx[WALLET_LEGS_MAX], n_idx = 0;
        for (uint64_t sys = 1; sys <= WALLET_SYS_MAX; sys++) {
                for (size_t i = 0; i < n; i++) {
                        wallet_leg *l = &tx->legs[i];
                        if (l->ref.owner_kind != WALLET_OWNER_SYSTEM || l->ref.owner_id != sys || !is_hot(sys) ||
                            l->amount == 0)
                                continue;
                        idx[n_idx++] = i;
                }
        }
        TRY(balances_write(db, tx->legs, idx, n_idx, true, now_ms));
        n_idx = 0;
        for (size_t k = 0; k < n_single; k++)
                if (tx->legs[order[k]].amount != 0)
                        idx[n_idx++] = order[k];
        TRY(balances_write(db, tx->legs, idx, n_idx, false, now_ms));

        /* The chain head last: it is held from here to the commit only. */
        tx->chain_part = wallet_chain_of(tx->scope, tx->key, WALLET_CHAINS);
        TRY(sb_db_prepare(db, sql_lock_head, &s));
        TRY(sb_db_bind_u64(s, 0, tx->chain_part));
        TRY(sb_db_execute(s));
        int r = sb_db_fetch(s);
        if (r < 0)
                return r;
        if (r == 0)
                return -EIO;
        uint64_t seq;
        TRY(sb_db_col_u64(s, 0, &seq));
        if (sb_db_col_blob(s, 1, tx->prev_hash, WALLET_HASH_BYTES) != WALLET_HASH_BYTES)
                return -EIO;
        while ((r = sb_db_fetch(s)) > 0)
                ;
        if (r < 0)
                return r;
        tx->chain_seq = seq + 1;
        wallet_chain_hash(tx, tx->chain_hash);

        TRY(sb_db_prepare(db, sql_insert_tx, &s));
        TRY(sb_db_bind_str(s, 0, tx->scope));
        TRY(sb_db_bind_str(s, 1, tx->key));
        TRY(sb_db_bind_blob(s, 2, request_hash, WALLET_HASH_BYTES));
        TRY(sb_db_bind_i64(s, 3, tx->cause_kind));
        TRY(sb_db_bind_str(s, 4, tx->cause_ref));
        TRY(sb_db_bind_u64(s, 5, tx->cause_merchant));
        TRY(sb_db_bind_str(s, 6, tx->memo));
        TRY(sb_db_bind_i64(s, 7, tx->posted_ms));
        TRY(sb_db_bind_str(s, 8, tx->business_day));
        if (tx->reverses_tx_id)
                TRY(sb_db_bind_u64(s, 9, tx->reverses_tx_id));
        else
                TRY(sb_db_bind_null(s, 9));
        TRY(sb_db_bind_u64(s, 10, tx->chain_part));
        TRY(sb_db_bind_u64(s, 11, tx->chain_seq));
        TRY(sb_db_bind_blob(s, 12, tx->prev_hash, WALLET_HASH_BYTES));
        TRY(sb_db_bind_blob(s, 13, tx->chain_hash, WALLET_HASH_BYTES));
        TRY(sb_db_execute(s));
        tx->tx_id = sb_db_insert_id(s);

        for (size_t at = 0; at < n;) {
                unsigned k = (unsigned) (n - at < ROWS_PER_STMT ? n - at : ROWS_PER_STMT);
                TRY(sb_db_prepare(db, sql_insert_entries[k], &s));
                unsigned p = 0;
                for (unsigned j = 0; j < k; j++) {
                        const wallet_leg *l = &tx->legs[at + j];
                        TRY(sb_db_bind_u64(s, p++, tx->tx_id));
                        TRY(sb_db_bind_u64(s, p++, l->account_id));
                        TRY(sb_db_bind_u64(s, p++, l->shard));
                        TRY(sb_db_bind_i64(s, p++, l->ref.asset));
                        TRY(sb_db_bind_i64(s, p++, l->amount));
                        if (l->has_balance_after)
                                TRY(sb_db_bind_i64(s, p++, l->balance_after));
                        else
                                TRY(sb_db_bind_null(s, p++));
                        TRY(sb_db_bind_i64(s, p++, l->reason));
                }
                TRY(sb_db_execute(s));
                at += k;
        }

        TRY(sb_db_prepare(db, sql_set_head, &s));
        TRY(sb_db_bind_u64(s, 0, tx->chain_seq));
        TRY(sb_db_bind_blob(s, 1, tx->chain_hash, WALLET_HASH_BYTES));
        TRY(sb_db_bind_u64(s, 2, tx->chain_part));
        TRY(sb_db_execute(s));
        tx->reversed_by_tx_id = 0;
        return 0;
}

typedef struct post_ctx {
        const wallet_ledger_cfg *cfg;
        wallet_tx *tx;
        wallet_tx *work;
        int64_t now_ms;
        wallet_problem *problem;
} post_ctx;

static int post_fn(sb_db *db, void *arg) {
        post_ctx *c = arg;
        /* A retried attempt starts again from the request as given. */
        memcpy(c->work, c->tx, sizeof *c->work);
        c->problem->kind = WALLET_P_NONE;
        return wallet_ledger_post_in_tx(db, c->cfg, c->work, c->now_ms, c->problem);
}

int wallet_ledger_find(sb_db *db, const char *scope, const char *key, uint64_t *ret_id,
                       uint8_t ret_request_hash[WALLET_HASH_BYTES]) {
        sb_db_stmt *s;
        TRY(sb_db_prepare(db, "SELECT tx_id, request_hash FROM transactions WHERE scope = ? AND idem_key = ?", &s));
        TRY(sb_db_bind_str(s, 0, scope));
        TRY(sb_db_bind_str(s, 1, key));
        TRY(sb_db_execute(s));
        int r = sb_db_fetch(s);
        if (r <= 0)
                return r < 0 ? r : -ENOENT;
        uint64_t id;
        uint8_t h[WALLET_HASH_BYTES];
        TRY(sb_db_col_u64(s, 0, &id));
        if (sb_db_col_blob(s, 1, h, sizeof h) != WALLET_HASH_BYTES)
                return -EIO;
        while ((r = sb_db_fetch(s)) > 0)
                ;
        if (r < 0)
                return r;
        *ret_id = id;
        memcpy(ret_request_hash, h, sizeof h);
        return 0;
}

/* Looks the key up: 0 and *ret loaded (replay) when the same request was posted; -ENOENT when the key is free;
 * WALLET_EREFUSED (EXISTS) when it was used for another request. */
static int replay(sb_db *db, const wallet_tx *req, wallet_tx *ret, wallet_problem *problem) {
        uint64_t id;
        uint8_t stored[WALLET_HASH_BYTES], mine[WALLET_HASH_BYTES];
        int r = wallet_ledger_find(db, req->scope, req->key, &id, stored);
        if (r < 0)
                return r;
        if (req->request_hash_set)
                memcpy(mine, req->request_hash, sizeof mine);
        else
                wallet_request_hash(req, mine);
        if (memcmp(stored, mine, sizeof mine) != 0) {
                problem_set(problem, WALLET_P_EXISTS, "REASON_IDEMPOTENCY_KEY_REUSED",
                            "the idempotency key \"%s\" was used for a different transaction (id %" PRIu64 ")",
                            req->key, id);
                return WALLET_EREFUSED;
        }
        return wallet_ledger_load(db, id, ret);
}

/* The key is not looked up first: a new posting (the common case) goes straight to its transaction, and the
 * journal's unique (scope, key) turns a repeat into -EEXIST at the insert, after which the stored transaction is
 * loaded (a replay) or the key is found used for another request. A refusal is answered only after the same
 * look-up: a repeat of a posting that already took an account's balance must replay, not be refused for the balance
 * it took itself. */
int wallet_ledger_post(sb_db *db, const wallet_ledger_cfg *cfg, wallet_tx *tx, int64_t now_ms, bool *ret_replayed,
                       wallet_problem *problem) {
        wallet_tx *work = malloc(sizeof *work);
        if (!work)
                return -ENOMEM;
        post_ctx c = {.cfg = cfg, .tx = tx, .work = work, .now_ms = now_ms, .problem = problem};
        int r = sb_db_tx(db, post_fn, &c);
        if (r == 0) {
                memcpy(tx, work, sizeof *tx);
                *ret_replayed = false;
                goto out;
        }
        if (r != -EEXIST && r != WALLET_EREFUSED)
                goto out;
        wallet_problem refused = *problem;
        int r2 = replay(db, tx, work, problem);
        if (r2 == 0) {
                memcpy(tx, work, sizeof *tx);
                *ret_replayed = true;
                r = 0;
        } else if (r2 == -ENOENT) {
                if (r == WALLET_EREFUSED) {
                        *problem = refused; /* the key is free: the refusal stands */
                } else if (tx->reverses_tx_id) {
                        problem_set(problem, WALLET_P_PRECONDITION, "REASON_ALREADY_REVERSED",
                                    "transaction %" PRIu64 " was already reversed", tx->reverses_tx_id);
                        r = WALLET_EREFUSED;
                }
        } else {
                r = r2; /* the key was used for another request, or the look-up failed */
        }
out:
        free(work);
        return r;
}

/* --- Group commit -------------------------------------------------------------------------------------------- */

/* Texts for 1..WALLET_GROUP_MAX rows of the statements only a group runs. */
static char sql_lock_heads[WALLET_GROUP_MAX + 1][MULTI_SQL_MAX];
static char sql_set_heads[WALLET_GROUP_MAX + 1][MULTI_SQL_MAX];
static char sql_find_keys[WALLET_GROUP_MAX + 1][MULTI_SQL_MAX];
static pthread_once_t group_once = PTHREAD_ONCE_INIT;

static void group_init(void) {
        for (unsigned n = 1; n <= WALLET_GROUP_MAX; n++) {
                multi_build(sql_lock_heads[n], "SELECT chain_part, chain_seq, chain_hash FROM chain_heads WHERE chain_part IN (",
                            "?", n, ") ORDER BY chain_part FOR UPDATE");
                multi_build(sql_set_heads[n], "INSERT INTO chain_heads (chain_part, chain_seq, chain_hash) VALUES ",
                            "(?, ?, ?)", n,
                            " ON DUPLICATE KEY UPDATE chain_seq = VALUES(chain_seq), chain_hash = VALUES(chain_hash)");
                multi_build(sql_find_keys[n],
                            "SELECT scope, idem_key, tx_id FROM transactions FORCE INDEX (scope_key)"
                            " WHERE (scope, idem_key) IN (",
                            "(?, ?)", n, ")");
        }
}

/* A single-row account of the group: its balance as the postings before the current one left it. */
typedef struct group_acct {
        wallet_account_ref ref;
        uint64_t account_id;
        int64_t first, bal;
} group_acct;

/* A hot system account's shard row of the group and the sum of the group's legs on it. */
typedef struct group_shard {
        uint64_t account_id;
        unsigned shard;
        int64_t delta;
} group_shard;

typedef struct group_head {
        unsigned part;
        uint64_t seq;
        uint8_t hash[WALLET_HASH_BYTES];
} group_head;

typedef struct group_ctx {
        const wallet_ledger_cfg *cfg;
        wallet_tx *const *txs;
        size_t n;
        int64_t now_ms;
        bool *in;        /* per posting: booked by this group */
        wallet_tx *work; /* per posting: the copy being booked */
        group_acct *accts;
        size_t n_accts;
        group_shard *shards;
        size_t n_shards;
        group_head heads[WALLET_GROUP_MAX];
        size_t n_heads;
        wallet_leg *legs; /* scratch: one per account or shard row, for lock_singles() and balances_write() */
        size_t *idx;
        int64_t *bals;
        size_t e_cap;
        uint64_t *e_tx, *e_account, *e_shard;
        int64_t *e_asset, *e_amount, *e_after, *e_reason;
        uint8_t *e_null;
        wallet_problem problem;
} group_ctx;

static int cmp_acct(const void *a, const void *b) {
        int64_t c = ref_cmp(&((const group_acct *) a)->ref, &((const group_acct *) b)->ref);
        return c < 0 ? -1 : c > 0;
}

static int cmp_shard(const void *a, const void *b) {
        const group_shard *x = a, *y = b;
        if (x->account_id != y->account_id)
                return x->account_id < y->account_id ? -1 : 1;
        return x->shard < y->shard ? -1 : x->shard > y->shard;
}

static int cmp_head(const void *a, const void *b) {
        unsigned x = ((const group_head *) a)->part, y = ((const group_head *) b)->part;
        return x < y ? -1 : x > y;
}

static group_acct *acct_find(group_ctx *c, const wallet_account_ref *ref) {
        group_acct key = {.ref = *ref};
        return bsearch(&key, c->accts, c->n_accts, sizeof key, cmp_acct);
}

static group_head *head_find(group_ctx *c, unsigned part) {
        group_head key = {.part = part};
        return bsearch(&key, c->heads, c->n_heads, sizeof key, cmp_head);
}

/* Applies posting i to the running balances when every single-row leg stays within range; else leaves it out of the
 * group (c->in[i] false: the caller posts it alone and gets its refusal there). */
static void group_apply(group_ctx *c, size_t i) {
        wallet_tx *tx = &c->work[i];
        for (size_t k = 0; k < tx->n_legs; k++) {
                const wallet_leg *l = &tx->legs[k];
                if (l->ref.owner_kind == WALLET_OWNER_SYSTEM && is_hot(l->ref.owner_id))
                        continue;
                const group_acct *a = acct_find(c, &l->ref);
                int64_t after;
                if (!a || sb_add_i64(a->bal, l->amount, &after) < 0 || after < 0) {
                        c->in[i] = false;
                        return;
                }
        }
        unsigned shard = wallet_shard_of(tx->scope, tx->key, WALLET_HOT_SHARDS);
        for (size_t k = 0; k < tx->n_legs; k++) {
                wallet_leg *l = &tx->legs[k];
                if (l->ref.owner_kind == WALLET_OWNER_SYSTEM && is_hot(l->ref.owner_id)) {
                        l->account_id = l->ref.owner_id;
                        l->shard = shard;
                        l->has_balance_after = false;
                        l->balance_after = 0;
                        continue;
                }
                group_acct *a = acct_find(c, &l->ref);
                a->bal += l->amount; /* checked above; no two legs of a posting name the same account */
                l->account_id = a->account_id;
                l->shard = 0;
                l->has_balance_after = true;
                l->balance_after = a->bal;
        }
}

static int group_fn(sb_db *db, void *arg) {
        group_ctx *c = arg;
        sb_db_stmt *s;
        int r;
        c->problem.kind = WALLET_P_NONE;
        /* A retried attempt starts again from the requests as given. A key twice in the group: only the first is
         * booked here (the other replays it, or is refused, when posted alone). */
        for (size_t i = 0; i < c->n; i++) {
                memcpy(&c->work[i], c->txs[i], sizeof c->work[i]);
                c->work[i].tx_id = 0;
                c->in[i] = c->txs[i]->reverses_tx_id == 0;
                for (size_t j = 0; j < i && c->in[i]; j++)
                        if (!strcmp(c->txs[j]->scope, c->txs[i]->scope) && !strcmp(c->txs[j]->key, c->txs[i]->key))
                                c->in[i] = false;
        }

        /* 1. Every single-row account of the group, locked in the ledger's order, balances read. */
        c->n_accts = 0;
        for (size_t i = 0; i < c->n; i++) {
                if (!c->in[i])
                        continue;
                const wallet_tx *tx = &c->work[i];
                for (size_t k = 0; k < tx->n_legs; k++) {
                        const wallet_leg *l = &tx->legs[k];
                        if (!(l->ref.owner_kind == WALLET_OWNER_SYSTEM && is_hot(l->ref.owner_id)))
                                c->accts[c->n_accts++] = (group_acct){.ref = l->ref};
                }
        }
        qsort(c->accts, c->n_accts, sizeof *c->accts, cmp_acct);
        size_t d = 0;
        for (size_t k = 0; k < c->n_accts; k++)
                if (d == 0 || cmp_acct(&c->accts[d - 1], &c->accts[k]) != 0)
                        c->accts[d++] = c->accts[k];
        c->n_accts = d;
        for (size_t k = 0; k < d; k++) {
                c->legs[k] = (wallet_leg){.ref = c->accts[k].ref};
                c->idx[k] = k;
        }
        /* An unknown account refuses the whole attempt: each posting is then posted alone. */
        TRY(lock_singles(db, c->legs, c->idx, d, c->bals, &c->problem));
        for (size_t k = 0; k < d; k++) {
                c->accts[k].account_id = c->legs[k].account_id;
                c->accts[k].first = c->accts[k].bal = c->bals[k];
        }

        /* 2. The postings in order, each on the balances the ones before it left. */
        for (size_t i = 0; i < c->n; i++)
                if (c->in[i])
                        group_apply(c, i);

        /* 3. The hot shard rows (ascending account, shard), then the single rows in their lock order. */
        c->n_shards = 0;
        for (size_t i = 0; i < c->n; i++) {
                if (!c->in[i])
                        continue;
                const wallet_tx *tx = &c->work[i];
                for (size_t k = 0; k < tx->n_legs; k++) {
                        const wallet_leg *l = &tx->legs[k];
                        if (l->ref.owner_kind == WALLET_OWNER_SYSTEM && is_hot(l->ref.owner_id))
                                c->shards[c->n_shards++] = (group_shard){l->account_id, l->shard, l->amount};
                }
        }
        qsort(c->shards, c->n_shards, sizeof *c->shards, cmp_shard);
        size_t n_idx = 0;
        for (size_t k = 0; k < c->n_shards; k++) {
                group_shard *g = &c->shards[k];
                if (n_idx > 0 && c->legs[n_idx - 1].account_id == g->account_id && c->legs[n_idx - 1].shard == g->shard) {
                        if (sb_add_i64(c->legs[n_idx - 1].amount, g->delta, &c->legs[n_idx - 1].amount) < 0)
                                return -EOVERFLOW;
                        continue;
                }
                c->legs[n_idx++] = (wallet_leg){.account_id = g->account_id, .shard = g->shard, .amount = g->delta};
        }
        size_t w = 0;
        for (size_t k = 0; k < n_idx; k++)
                if (c->legs[k].amount != 0)
                        c->idx[w++] = k;
        TRY(balances_write(db, c->legs, c->idx, w, true, c->now_ms));
        w = 0;
        for (size_t k = 0; k < c->n_accts; k++) {
                if (c->accts[k].bal == c->accts[k].first)
                        continue; /* unchanged (or only touched by postings left out) */
                c->legs[w] = (wallet_leg){.account_id = c->accts[k].account_id, .balance_after = c->accts[k].bal};
                c->idx[w] = w;
                w++;
        }
        TRY(balances_write(db, c->legs, c->idx, w, false, c->now_ms));

        /* 4. The chain heads of the group, ascending, held from here to the commit; the journal rows hashed in
         * group order on each chain. */
        c->n_heads = 0;
        size_t booked = 0;
        for (size_t i = 0; i < c->n; i++) {
                if (!c->in[i])
                        continue;
                booked++;
                wallet_tx *tx = &c->work[i];
                tx->chain_part = wallet_chain_of(tx->scope, tx->key, WALLET_CHAINS);
                bool seen = false;
                for (size_t h = 0; h < c->n_heads && !seen; h++)
                        seen = c->heads[h].part == tx->chain_part;
                if (!seen)
                        c->heads[c->n_heads++] = (group_head){.part = tx->chain_part};
        }
        if (booked == 0)
                return 0;
        qsort(c->heads, c->n_heads, sizeof *c->heads, cmp_head);
        TRY(sb_db_prepare(db, sql_lock_heads[c->n_heads], &s));
        for (size_t h = 0; h < c->n_heads; h++)
                TRY(sb_db_bind_u64(s, (unsigned) h, c->heads[h].part));
        TRY(sb_db_execute(s));
        size_t got = 0;
        while ((r = sb_db_fetch(s)) > 0) {
                uint64_t part, seq;
                uint8_t hash[WALLET_HASH_BYTES];
                TRY(sb_db_col_u64(s, 0, &part));
                TRY(sb_db_col_u64(s, 1, &seq));
                if (sb_db_col_blob(s, 2, hash, sizeof hash) != WALLET_HASH_BYTES)
                        return -EIO;
                group_head *h = head_find(c, (unsigned) part);
                if (!h)
                        return -EIO;
                h->seq = seq;
                memcpy(h->hash, hash, sizeof hash);
                got++;
        }
        if (r < 0)
                return r;
        if (got != c->n_heads)
                return -EIO;
        char business_day[WALLET_DAY_LEN + 1];
        if (wallet_business_day(c->now_ms, c->cfg->utc_offset_min, c->cfg->cutoff_min, business_day) < 0)
                return -EINVAL;
        for (size_t i = 0; i < c->n; i++) {
                if (!c->in[i])
                        continue;
                wallet_tx *tx = &c->work[i];
                if (!tx->request_hash_set) {
                        wallet_request_hash(tx, tx->request_hash);
                        tx->request_hash_set = true;
                }
                tx->posted_ms = c->now_ms;
                memcpy(tx->business_day, business_day, sizeof business_day);
                group_head *h = head_find(c, tx->chain_part);
                if (!h)
                        return -EIO; /* every booked posting's chain was collected above */
                tx->chain_seq = ++h->seq;
                memcpy(tx->prev_hash, h->hash, WALLET_HASH_BYTES);
                wallet_chain_hash(tx, tx->chain_hash);
                memcpy(h->hash, tx->chain_hash, WALLET_HASH_BYTES);
        }

        /* 5. The journal rows, TX_ROWS_PER_STMT per statement; a key already in the journal fails the insert
         * (-EEXIST) and with it the group. Their ids, read back by key (interleaved auto-increment need not give a
         * statement consecutive ids). */
        size_t order[WALLET_GROUP_MAX], n_in = 0;
        for (size_t i = 0; i < c->n; i++)
                if (c->in[i])
                        order[n_in++] = i;
        for (size_t at = 0; at < n_in;) {
                unsigned k = (unsigned) (n_in - at < TX_ROWS_PER_STMT ? n_in - at : TX_ROWS_PER_STMT);
                TRY(sb_db_prepare(db, sql_insert_txs[k], &s));
                unsigned p = 0;
                for (unsigned j = 0; j < k; j++) {
                        const wallet_tx *tx = &c->work[order[at + j]];
                        TRY(sb_db_bind_str(s, p++, tx->scope));
                        TRY(sb_db_bind_str(s, p++, tx->key));
                        TRY(sb_db_bind_blob(s, p++, tx->request_hash, WALLET_HASH_BYTES));
                        TRY(sb_db_bind_i64(s, p++, tx->cause_kind));
                        TRY(sb_db_bind_str(s, p++, tx->cause_ref));
                        TRY(sb_db_bind_u64(s, p++, tx->cause_merchant));
                        TRY(sb_db_bind_str(s, p++, tx->memo));
                        TRY(sb_db_bind_i64(s, p++, tx->posted_ms));
                        TRY(sb_db_bind_str(s, p++, tx->business_day));
                        TRY(sb_db_bind_u64(s, p++, tx->chain_part));
                        TRY(sb_db_bind_u64(s, p++, tx->chain_seq));
                        TRY(sb_db_bind_blob(s, p++, tx->prev_hash, WALLET_HASH_BYTES));
                        TRY(sb_db_bind_blob(s, p++, tx->chain_hash, WALLET_HASH_BYTES));
                }
                TRY(sb_db_execute(s));
                at += k;
        }
        TRY(sb_db_prepare(db, sql_find_keys[n_in], &s));
        for (size_t j = 0; j < n_in; j++) {
                TRY(sb_db_bind_str(s, (unsigned) (2 * j), c->work[order[j]].scope));
                TRY(sb_db_bind_str(s, (unsigned) (2 * j + 1), c->work[order[j]].key));
        }
        TRY(sb_db_execute(s));
        got = 0;
        while ((r = sb_db_fetch(s)) > 0) {
                char scope[WALLET_SCOPE_MAX + 1], key[WALLET_KEY_MAX + 1];
                uint64_t id;
                TRY(sb_db_col_str(s, 0, scope, sizeof scope));
                TRY(sb_db_col_str(s, 1, key, sizeof key));
                TRY(sb_db_col_u64(s, 2, &id));
                for (size_t j = 0; j < n_in; j++) {
                        wallet_tx *tx = &c->work[order[j]];
                        if (!tx->tx_id && !strcmp(tx->scope, scope) && !strcmp(tx->key, key)) {
                                tx->tx_id = id;
                                got++;
                                break;
                        }
                }
        }
        if (r < 0)
                return r;
        if (got != n_in)
                return -EIO;

        /* 6. The entries of every posting, in group then leg order, in one bulk execution. */
        size_t ne = 0;
        for (size_t j = 0; j < n_in; j++) {
                const wallet_tx *tx = &c->work[order[j]];
                for (size_t k = 0; k < tx->n_legs; k++) {
                        const wallet_leg *l = &tx->legs[k];
                        if (ne >= c->e_cap)
                                return -EIO;
                        c->e_tx[ne] = tx->tx_id;
                        c->e_account[ne] = l->account_id;
                        c->e_shard[ne] = l->shard;
                        c->e_asset[ne] = l->ref.asset;
                        c->e_amount[ne] = l->amount;
                        c->e_after[ne] = l->has_balance_after ? l->balance_after : 0;
                        c->e_null[ne] = l->has_balance_after ? 0 : 1;
                        c->e_reason[ne] = l->reason;
                        ne++;
                }
        }
        TRY(sb_db_prepare(db,
                          "INSERT INTO entries (tx_id, account_id, shard, asset, amount, balance_after, reason)"
                          " VALUES (?, ?, ?, ?, ?, ?, ?)",
                          &s));
        const sb_db_bulk_col cols[7] = {
                {.u64 = c->e_tx},    {.u64 = c->e_account}, {.u64 = c->e_shard},
                {.i64 = c->e_asset}, {.i64 = c->e_amount},  {.i64 = c->e_after, .null = c->e_null},
                {.i64 = c->e_reason},
        };
        TRY(sb_db_execute_bulk(s, ne, cols, 7));
        if (sb_db_affected_rows(s) != ne)
                return -EIO;

        /* 7. The chain heads. */
        TRY(sb_db_prepare(db, sql_set_heads[c->n_heads], &s));
        for (size_t h = 0; h < c->n_heads; h++) {
                TRY(sb_db_bind_u64(s, (unsigned) (3 * h), c->heads[h].part));
                TRY(sb_db_bind_u64(s, (unsigned) (3 * h + 1), c->heads[h].seq));
                TRY(sb_db_bind_blob(s, (unsigned) (3 * h + 2), c->heads[h].hash, WALLET_HASH_BYTES));
        }
        TRY(sb_db_execute(s));
        if (sb_db_affected_rows(s) != 2 * (uint64_t) c->n_heads)
                return -EIO;
        return 0;
}

int wallet_ledger_post_group(sb_db *db, const wallet_ledger_cfg *cfg, wallet_tx *const *txs, size_t n, int64_t now_ms,
                             bool *posted) {
        for (size_t i = 0; i < n; i++)
                posted[i] = false;
        if (n == 0 || n > WALLET_GROUP_MAX)
                return -EINVAL;
        pthread_once(&multi_once, multi_init);
        pthread_once(&group_once, group_init);
        size_t legs = 0;
        for (size_t i = 0; i < n; i++)
                legs += txs[i]->n_legs;
        group_ctx c = {.cfg = cfg, .txs = txs, .n = n, .now_ms = now_ms, .e_cap = legs};
        c.in = calloc(n, sizeof *c.in);
        c.work = calloc(n, sizeof *c.work);
        c.accts = calloc(legs, sizeof *c.accts);
        c.shards = calloc(legs, sizeof *c.shards);
        c.legs = calloc(legs, sizeof *c.legs);
        c.idx = calloc(legs, sizeof *c.idx);
        c.bals = calloc(legs, sizeof *c.bals);
        c.e_tx = calloc(legs, sizeof *c.e_tx);
        c.e_account = calloc(legs, sizeof *c.e_account);
        c.e_shard = calloc(legs, sizeof *c.e_shard);
        c.e_asset = calloc(legs, sizeof *c.e_asset);
        c.e_amount = calloc(legs, sizeof *c.e_amount);
        c.e_after = calloc(legs, sizeof *c.e_after);
        c.e_reason = calloc(legs, sizeof *c.e_reason);
        c.e_null = calloc(legs, sizeof *c.e_null);
        int r = -ENOMEM;
        if (c.in && c.work && c.accts && c.shards && c.legs && c.idx && c.bals && c.e_tx && c.e_account && c.e_shard &&
            c.e_asset && c.e_amount && c.e_after && c.e_reason && c.e_null)
                r = sb_db_tx(db, group_fn, &c);
        if (r == 0) {
                for (size_t i = 0; i < n; i++) {
                        if (!c.in[i])
                                continue;
                        c.work[i].reversed_by_tx_id = 0;
                        memcpy(txs[i], &c.work[i], sizeof *txs[i]);
                        posted[i] = true;
                }
        } else if (r == WALLET_EREFUSED) {
                r = -ENOENT; /* an unknown account: nothing booked, each posting goes alone */
        }
        free(c.in);
        free(c.work);
        free(c.accts);
        free(c.shards);
        free(c.legs);
        free(c.idx);
        free(c.bals);
        free(c.e_tx);
        free(c.e_account);
        free(c.e_shard);
        free(c.e_asset);
        free(c.e_amount);
        free(c.e_after);
        free(c.e_reason);
        free(c.e_null);
        return r;
}

/* --- Genesis and accounts ------------------------------------------------------------------------------------ */

static int read_cap(sb_db *db, int64_t *ret) {
        sb_db_stmt *s;
        TRY(sb_db_prepare(db, "SELECT value FROM ledger_meta WHERE name = 'cap_sp'", &s));
        TRY(sb_db_execute(s));
        int r = sb_db_fetch(s);
        if (r <= 0)
                return r < 0 ? r : -ENOENT;
        int64_t v;
        TRY(sb_db_col_i64(s, 0, &v));
        while ((r = sb_db_fetch(s)) > 0)
                ;
        if (r < 0)
                return r;
        *ret = v;
        return 0;
}

typedef struct genesis_ctx {
        const wallet_ledger_cfg *cfg;
        wallet_tx *tx;
        wallet_tx *work;
        int64_t now_ms;
        wallet_problem *problem;
} genesis_ctx;

static int genesis_fn(sb_db *db, void *arg) {
        genesis_ctx *c = arg;
        sb_db_stmt *s;
        memcpy(c->work, c->tx, sizeof *c->work);
        TRY(sb_db_prepare(db, "INSERT INTO ledger_meta (name, value) VALUES ('cap_sp', ?)", &s));
        TRY(sb_db_bind_i64(s, 0, c->cfg->cap_sp));
        TRY(sb_db_execute(s));
        return wallet_ledger_post_in_tx(db, c->cfg, c->work, c->now_ms, c->problem);
}

int wallet_ledger_genesis(sb_db *db, const wallet_ledger_cfg *cfg, int64_t now_ms, wallet_problem *problem) {
        int64_t cap;
        int r = read_cap(db, &cap);
        if (r == -ENOENT) {
                wallet_tx *tx = calloc(2, sizeof *tx);
                if (!tx)
                        return -ENOMEM;
                snprintf(tx->scope, sizeof tx->scope, "genesis");
                snprintf(tx->key, sizeof tx->key, "genesis");
                tx->cause_kind = WALLET_CAUSE_GENESIS;
                snprintf(tx->cause_ref, sizeof tx->cause_ref, "genesis");
                snprintf(tx->memo, sizeof tx->memo, "the SP cap");
                size_t n = 0;
                if (cfg->cap_sp - cfg->treasury_sp > 0)
                        tx->legs[n++] = (wallet_leg){.ref = {WALLET_OWNER_SYSTEM, WALLET_SYS_SP_UNRELEASED, 0},
                                                     .amount = cfg->cap_sp - cfg->treasury_sp,
                                                     .reason = WALLET_REASON_GENESIS};
                if (cfg->treasury_sp > 0)
                        tx->legs[n++] = (wallet_leg){.ref = {WALLET_OWNER_SYSTEM, WALLET_SYS_SP_TREASURY, 0},
                                                     .amount = cfg->treasury_sp,
                                                     .reason = WALLET_REASON_GENESIS};
                tx->n_legs = n;
                char why[256];
                if (wallet_legs_check(tx->legs, n, true, cfg->cap_sp, why, sizeof why) < 0) {
                        problem_set(problem, WALLET_P_PRECONDITION, "REASON_SETTINGS_INVALID", "genesis: %s", why);
                        free(tx);
                        return WALLET_EREFUSED;
                }
                genesis_ctx c = {.cfg = cfg, .tx = tx, .work = tx + 1, .now_ms = now_ms, .problem = problem};
                r = sb_db_tx(db, genesis_fn, &c);
                free(tx);
                if (r != -EEXIST)
                        return r;
                /* Another process made it first: check its cap. */
                r = read_cap(db, &cap);
        }
        if (r < 0)
                return r;
        if (cap != cfg->cap_sp) {
                problem_set(problem, WALLET_P_PRECONDITION, "REASON_SETTINGS_INVALID",
                            "the ledger was created with a cap of %" PRId64 " SP units, the settings say %" PRId64,
                            cap, cfg->cap_sp);
                return WALLET_EREFUSED;
        }
        return 0;
}

typedef struct open_ctx {
        int kind;
        uint64_t id;
        int64_t now_ms;
        unsigned created;
} open_ctx;

static int open_fn(sb_db *db, void *arg) {
        open_ctx *c = arg;
        static const int assets[] = {WALLET_ASSET_CV_LOCKED, WALLET_ASSET_CV_ACTIVE, WALLET_ASSET_SP};
        c->created = 0;
        for (size_t i = 0; i < 3; i++) {
                sb_db_stmt *s;
                TRY(sb_db_prepare(db,
                                  "INSERT IGNORE INTO accounts (owner_kind, owner_id, asset, shards, created_ms)"
                                  " VALUES (?, ?, ?, 1, ?)",
                                  &s));
                TRY(sb_db_bind_i64(s, 0, c->kind));
                TRY(sb_db_bind_u64(s, 1, c->id));
                TRY(sb_db_bind_i64(s, 2, assets[i]));
                TRY(sb_db_bind_i64(s, 3, c->now_ms));
                TRY(sb_db_execute(s));
                if (sb_db_affected_rows(s) == 0)
                        continue;
                uint64_t account_id = sb_db_insert_id(s);
                c->created++;
                TRY(sb_db_prepare(db, "INSERT INTO balances (account_id, shard, balance, updated_ms) VALUES (?, 0, 0, ?)",
                                  &s));
                TRY(sb_db_bind_u64(s, 0, account_id));
                TRY(sb_db_bind_i64(s, 1, c->now_ms));
                TRY(sb_db_execute(s));
        }
        return 0;
}

int wallet_ledger_open_accounts(sb_db *db, int owner_kind, uint64_t owner_id, int64_t now_ms, bool *ret_existed) {
        if (owner_kind < WALLET_OWNER_MEMBER || owner_kind > WALLET_OWNER_CENTRE || owner_id == 0)
                return -EINVAL;
        open_ctx c = {.kind = owner_kind, .id = owner_id, .now_ms = now_ms};
        int r = sb_db_tx(db, open_fn, &c);
        if (r < 0)
                return r;
        *ret_existed = c.created == 0;
        return 0;
}

/* --- Reading ------------------------------------------------------------------------------------------------- */

int wallet_ledger_load(sb_db *db, uint64_t tx_id, wallet_tx *ret) {
        sb_db_stmt *s;
        wallet_tx *t = calloc(1, sizeof *t);
        int r;
        if (!t)
                return -ENOMEM;
        r = sb_db_prepare(db,
                          "SELECT scope, idem_key, cause_kind, cause_ref, cause_merchant, memo, posted_ms, business_day,"
                          " COALESCE(reverses_tx_id, 0), chain_part, chain_seq, prev_hash, chain_hash,"
                          " (SELECT r.tx_id FROM transactions r WHERE r.reverses_tx_id = t.tx_id)"
                          " FROM transactions t WHERE tx_id = ?",
                          &s);
        if (r < 0 || (r = sb_db_bind_u64(s, 0, tx_id)) < 0 || (r = sb_db_execute(s)) < 0)
                goto out;
        r = sb_db_fetch(s);
        if (r <= 0) {
                r = r < 0 ? r : -ENOENT;
                goto out;
        }
        int64_t v;
        t->tx_id = tx_id;
        if (sb_db_col_str(s, 0, t->scope, sizeof t->scope) < 0 || sb_db_col_str(s, 1, t->key, sizeof t->key) < 0 ||
            sb_db_col_i64(s, 2, &v) < 0 || sb_db_col_str(s, 3, t->cause_ref, sizeof t->cause_ref) < 0 ||
            sb_db_col_u64(s, 4, &t->cause_merchant) < 0 || sb_db_col_str(s, 5, t->memo, sizeof t->memo) < 0 ||
            sb_db_col_i64(s, 6, &t->posted_ms) < 0 ||
            sb_db_col_str(s, 7, t->business_day, sizeof t->business_day) < 0 ||
            sb_db_col_u64(s, 8, &t->reverses_tx_id) < 0 ||
            sb_db_col_blob(s, 11, t->prev_hash, WALLET_HASH_BYTES) != WALLET_HASH_BYTES ||
            sb_db_col_blob(s, 12, t->chain_hash, WALLET_HASH_BYTES) != WALLET_HASH_BYTES) {
                r = -EIO;
                goto out;
        }
        t->cause_kind = (int) v;
        uint64_t u;
        if (sb_db_col_u64(s, 9, &u) < 0 || sb_db_col_u64(s, 10, &t->chain_seq) < 0) {
                r = -EIO;
                goto out;
        }
        t->chain_part = (unsigned) u;
        if (!sb_db_col_is_null(s, 13) && sb_db_col_u64(s, 13, &t->reversed_by_tx_id) < 0) {
                r = -EIO;
                goto out;
        }
        while ((r = sb_db_fetch(s)) > 0)
                ;
        if (r < 0)
                goto out;

        r = sb_db_prepare(db,
                          "SELECT e.account_id, e.shard, e.asset, e.amount, e.balance_after, e.reason, a.owner_kind,"
                          " a.owner_id FROM entries e JOIN accounts a ON a.account_id = e.account_id"
                          " WHERE e.tx_id = ? ORDER BY e.entry_id",
                          &s);
        if (r < 0 || (r = sb_db_bind_u64(s, 0, tx_id)) < 0 || (r = sb_db_execute(s)) < 0)
                goto out;
        while ((r = sb_db_fetch(s)) > 0) {
                if (t->n_legs >= WALLET_LEGS_MAX) {
                        r = -EIO;
                        goto out;
                }
                wallet_leg *l = &t->legs[t->n_legs++];
                int64_t shard, asset, reason, kind;
                if (sb_db_col_u64(s, 0, &l->account_id) < 0 || sb_db_col_i64(s, 1, &shard) < 0 ||
                    sb_db_col_i64(s, 2, &asset) < 0 || sb_db_col_i64(s, 3, &l->amount) < 0 ||
                    sb_db_col_i64(s, 5, &reason) < 0 || sb_db_col_i64(s, 6, &kind) < 0 ||
                    sb_db_col_u64(s, 7, &l->ref.owner_id) < 0) {
                        r = -EIO;
                        goto out;
                }
                l->shard = (unsigned) shard;
                l->ref.asset = (int) asset;
                l->reason = (int) reason;
                l->ref.owner_kind = (int) kind;
                l->has_balance_after = !sb_db_col_is_null(s, 4);
                if (l->has_balance_after && sb_db_col_i64(s, 4, &l->balance_after) < 0) {
                        r = -EIO;
                        goto out;
                }
        }
        if (r < 0)
                goto out;
        memcpy(ret, t, sizeof *t);
        r = 0;
out:
        free(t);
        return r;
}

typedef struct reverse_ctx {
        const wallet_ledger_cfg *cfg;
        uint64_t target_id;
        const wallet_tx *req;
        wallet_tx *work;
        wallet_tx *orig;
        int64_t now_ms;
        wallet_problem *problem;
} reverse_ctx;

static int reverse_fn(sb_db *db, void *arg) {
        reverse_ctx *c = arg;
        sb_db_stmt *s;
        int r;
        /* Lock the target's reversal slot first, so two reversals under different keys queue here. */
        TRY(sb_db_prepare(db, "SELECT tx_id FROM transactions WHERE tx_id = ? FOR UPDATE", &s));
        TRY(sb_db_bind_u64(s, 0, c->target_id));
        TRY(sb_db_execute(s));
        while ((r = sb_db_fetch(s)) > 0)
                ;
        if (r < 0)
                return r;
        TRY(wallet_ledger_load(db, c->target_id, c->orig));
        if (c->orig->reversed_by_tx_id) {
                problem_set(c->problem, WALLET_P_PRECONDITION, "REASON_ALREADY_REVERSED",
                            "transaction %" PRIu64 " was already reversed by transaction %" PRIu64, c->target_id,
                            c->orig->reversed_by_tx_id);
                return WALLET_EREFUSED;
        }
        memcpy(c->work, c->req, sizeof *c->work);
        c->work->n_legs = c->orig->n_legs;
        for (size_t i = 0; i < c->orig->n_legs; i++) {
                c->work->legs[i] = (wallet_leg){.ref = c->orig->legs[i].ref,
                                                .amount = -c->orig->legs[i].amount,
                                                .reason = WALLET_REASON_REVERSAL};
        }
        return wallet_ledger_post_in_tx(db, c->cfg, c->work, c->now_ms, c->problem);
}

int wallet_ledger_reverse(sb_db *db, const wallet_ledger_cfg *cfg, uint64_t target_id, const char *target_key,
                          wallet_tx *tx, int64_t now_ms, bool *ret_replayed, wallet_problem *problem) {
        wallet_tx *buf = calloc(2, sizeof *buf);
        int r;
        if (!buf)
                return -ENOMEM;
        if (!target_id) {
                uint8_t h[WALLET_HASH_BYTES];
                r = wallet_ledger_find(db, "svc", target_key, &target_id, h);
                if (r == -ENOENT) {
                        problem_set(problem, WALLET_P_NOT_FOUND, "REASON_UNSPECIFIED",
                                    "no transaction was posted with the key \"%s\"", target_key);
                        r = WALLET_EREFUSED;
                }
                if (r < 0)
                        goto out;
        }
        /* The request as hashed for idempotency: the target is part of it, the legs follow from it. */
        tx->reverses_tx_id = target_id;
        tx->n_legs = 0;
        wallet_request_hash(tx, tx->request_hash);
        tx->request_hash_set = true;
        r = replay(db, tx, buf, problem);
        if (r == 0) {
                memcpy(tx, buf, sizeof *tx);
                *ret_replayed = true;
                goto out;
        }
        if (r != -ENOENT)
                goto out;
        r = wallet_ledger_load(db, target_id, buf);
        if (r == -ENOENT) {
                problem_set(problem, WALLET_P_NOT_FOUND, "REASON_UNSPECIFIED", "no transaction %" PRIu64, target_id);
                r = WALLET_EREFUSED;
                goto out;
        }
        if (r < 0)
                goto out;
        if (buf->cause_kind == WALLET_CAUSE_GENESIS || buf->reverses_tx_id) {
                problem_set(problem, WALLET_P_PRECONDITION, "REASON_ALREADY_REVERSED",
                            "transaction %" PRIu64 " is %s and cannot be reversed", target_id,
                            buf->reverses_tx_id ? "itself a reversal" : "the genesis");
                r = WALLET_EREFUSED;
                goto out;
        }
        reverse_ctx c = {.cfg = cfg, .target_id = target_id, .req = tx, .work = buf + 1, .orig = buf,
                         .now_ms = now_ms, .problem = problem};
        r = sb_db_tx(db, reverse_fn, &c);
        if (r == 0) {
                memcpy(tx, buf + 1, sizeof *tx);
                *ret_replayed = false;
        } else if (r == -EEXIST) {
                r = replay(db, tx, buf, problem);
                if (r == 0) {
                        memcpy(tx, buf, sizeof *tx);
                        *ret_replayed = true;
                } else if (r == -ENOENT) {
                        problem_set(problem, WALLET_P_PRECONDITION, "REASON_ALREADY_REVERSED",
                                    "transaction %" PRIu64 " was already reversed", target_id);
                        r = WALLET_EREFUSED;
                }
        }
out:
        free(buf);
        return r;
}

int wallet_ledger_balances(sb_db *db, int owner_kind, uint64_t owner_id, wallet_balance out[3]) {
        sb_db_stmt *s;
        wallet_balance b[3] = {{0}};
        unsigned seen = 0;
        TRY(sb_db_prepare(db,
                          "SELECT a.account_id, a.asset, b.balance, b.updated_ms FROM accounts a JOIN balances b"
                          " ON b.account_id = a.account_id AND b.shard = 0 WHERE a.owner_kind = ? AND a.owner_id = ?",
                          &s));
        TRY(sb_db_bind_i64(s, 0, owner_kind));
        TRY(sb_db_bind_u64(s, 1, owner_id));
        TRY(sb_db_execute(s));
        int r;
        while ((r = sb_db_fetch(s)) > 0) {
                uint64_t id;
                int64_t asset, bal, upd;
                TRY(sb_db_col_u64(s, 0, &id));
                TRY(sb_db_col_i64(s, 1, &asset));
                TRY(sb_db_col_i64(s, 2, &bal));
                TRY(sb_db_col_i64(s, 3, &upd));
                if (asset < 1 || asset > 3)
                        continue;
                b[asset - 1] = (wallet_balance){.account_id = id, .asset = (int) asset, .balance = bal,
                                                .updated_ms = upd};
                seen |= 1u << asset;
        }
        if (r < 0)
                return r;
        if (!seen)
                return -ENOENT;
        memcpy(out, b, sizeof b);
        return 0;
}

int wallet_ledger_account_balance(sb_db *db, uint64_t account_id, int64_t *ret) {
        sb_db_stmt *s;
        TRY(sb_db_prepare(db, "SELECT SUM(balance), COUNT(*) FROM balances WHERE account_id = ?", &s));
        TRY(sb_db_bind_u64(s, 0, account_id));
        TRY(sb_db_execute(s));
        int r = sb_db_fetch(s);
        if (r <= 0)
                return r < 0 ? r : -EIO;
        int64_t n, v = 0;
        TRY(sb_db_col_i64(s, 1, &n));
        if (n > 0)
                TRY(sb_db_col_i64(s, 0, &v));
        while ((r = sb_db_fetch(s)) > 0)
                ;
        if (r < 0)
                return r;
        if (n == 0)
                return -ENOENT;
        *ret = v;
        return 0;
}

static int supply_read(sb_db *db, wallet_supply *ret) {
        sb_db_stmt *s;
        int64_t sys[WALLET_SYS_MAX + 1] = {0};
        int64_t cap;
        TRY(read_cap(db, &cap));
        TRY(sb_db_prepare(db, "SELECT account_id, SUM(balance) FROM balances WHERE account_id <= 7 GROUP BY account_id",
                          &s));
        TRY(sb_db_execute(s));
        int r;
        while ((r = sb_db_fetch(s)) > 0) {
                uint64_t id;
                int64_t v;
                TRY(sb_db_col_u64(s, 0, &id));
                TRY(sb_db_col_i64(s, 1, &v));
                if (id >= 1 && id <= WALLET_SYS_MAX)
                        sys[id] = v;
        }
        if (r < 0)
                return r;
        wallet_supply su = {.cap = cap,
                            .unreleased = sys[WALLET_SYS_SP_UNRELEASED],
                            .treasury = sys[WALLET_SYS_SP_TREASURY],
                            .burned = sys[WALLET_SYS_SP_BURNED],
                            .pool_fen = sys[WALLET_SYS_FEN_BACKING_POOL]};
        /* Conservation: held = cap − unreleased − treasury − burned (verify checks it against the holders). */
        if (sb_sub_i64(cap, su.unreleased, &su.released) < 0 || sb_sub_i64(su.released, su.treasury, &su.held) < 0 ||
            sb_sub_i64(su.held, su.burned, &su.held) < 0)
                return -ERANGE;
        /* circulating = released − burned − treasury = held. */
        su.circulating = su.held;
        *ret = su;
        return 0;
}

int wallet_ledger_supply_in_tx(sb_db *db, wallet_supply *ret) {
        return supply_read(db, ret);
}

static int supply_fn(sb_db *db, void *arg) {
        return supply_read(db, arg);
}

int wallet_ledger_supply(sb_db *db, wallet_supply *ret) {
        wallet_supply su;
        int r = sb_db_tx(db, supply_fn, &su);
        if (r < 0)
                return r;
        *ret = su;
        return 0;
}

/* --- Verification -------------------------------------------------------------------------------------------- */

static void report(wallet_verify_report *rep, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(wallet_verify_report *rep, const char *fmt, ...) {
        rep->ok = false;
        if (rep->n_problems >= WALLET_VERIFY_PROBLEMS_MAX)
                return;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(rep->problems[rep->n_problems++], sizeof rep->problems[0], fmt, ap);
        va_end(ap);
}

#define VERIFY_WINDOW 500 /* chain sequence numbers read per query */

static int verify_chain(sb_db *db, unsigned part, uint64_t from_tx_id, wallet_verify_report *rep, wallet_tx *t) {
        sb_db_stmt *s;
        int r;
        uint64_t head_seq;
        uint8_t head_hash[WALLET_HASH_BYTES];

        TRY(sb_db_prepare(db, "SELECT chain_seq, chain_hash FROM chain_heads WHERE chain_part = ?", &s));
        TRY(sb_db_bind_u64(s, 0, part));
        TRY(sb_db_execute(s));
        r = sb_db_fetch(s);
        if (r < 0)
                return r;
        if (r == 0) {
                report(rep, "chain %u: its head row is missing", part);
                return 0;
        }
        TRY(sb_db_col_u64(s, 0, &head_seq));
        if (sb_db_col_blob(s, 1, head_hash, sizeof head_hash) != WALLET_HASH_BYTES)
                return -EIO;
        while ((r = sb_db_fetch(s)) > 0)
                ;
        if (r < 0)
                return r;

        /* Where to start: the genesis of the chain (seq 1, previous hash zero), or the first transaction with an
         * id ≥ from_tx_id, trusting the previous hash it stores. */
        uint64_t seq = 0;
        uint8_t prev[WALLET_HASH_BYTES] = {0};
        bool trust_first_prev = false;
        if (from_tx_id > 0) {
                TRY(sb_db_prepare(db, "SELECT MIN(chain_seq) FROM transactions WHERE chain_part = ? AND tx_id >= ?",
                                  &s));
                TRY(sb_db_bind_u64(s, 0, part));
                TRY(sb_db_bind_u64(s, 1, from_tx_id));
                TRY(sb_db_execute(s));
                if ((r = sb_db_fetch(s)) < 0)
                        return r;
                uint64_t first = 0;
                if (r > 0 && !sb_db_col_is_null(s, 0))
                        TRY(sb_db_col_u64(s, 0, &first));
                while ((r = sb_db_fetch(s)) > 0)
                        ;
                if (r < 0)
                        return r;
                if (first == 0)
                        return 0; /* nothing in this chain from there on */
                seq = first - 1;
                trust_first_prev = true;
        }

        bool have = false; /* t holds a transaction being assembled */
        for (;;) {
                uint64_t lo = seq, hi = seq + VERIFY_WINDOW;
                uint64_t rows = 0;
                TRY(sb_db_prepare(db,
                                  "SELECT t.tx_id, t.scope, t.idem_key, t.cause_kind, t.cause_ref, t.cause_merchant,"
                                  " t.memo, t.posted_ms, t.business_day, COALESCE(t.reverses_tx_id, 0), t.chain_seq,"
                                  " t.prev_hash, t.chain_hash, e.account_id, e.shard, e.asset, e.amount,"
                                  " e.balance_after, e.reason"
                                  " FROM transactions t LEFT JOIN entries e ON e.tx_id = t.tx_id"
                                  " WHERE t.chain_part = ? AND t.chain_seq > ? AND t.chain_seq <= ?"
                                  " ORDER BY t.chain_seq, e.entry_id",
                                  &s));
                TRY(sb_db_bind_u64(s, 0, part));
                TRY(sb_db_bind_u64(s, 1, lo));
                TRY(sb_db_bind_u64(s, 2, hi));
                TRY(sb_db_execute(s));
                while ((r = sb_db_fetch(s)) > 0) {
                        uint64_t tx_id, row_seq;
                        TRY(sb_db_col_u64(s, 0, &tx_id));
                        TRY(sb_db_col_u64(s, 10, &row_seq));
                        rows++;
                        if (!have || t->tx_id != tx_id) {
                                if (have) {
                                        /* Finish the previous one. */
                                        uint8_t h[WALLET_HASH_BYTES];
                                        wallet_chain_hash(t, h);
                                        if (memcmp(h, t->chain_hash, sizeof h) != 0)
                                                report(rep, "chain %u: transaction %" PRIu64 " (seq %" PRIu64
                                                            ") does not match its hash: it was altered",
                                                       part, t->tx_id, t->chain_seq);
                                        memcpy(prev, t->chain_hash, sizeof prev);
                                        rep->transactions_checked++;
                                        if (t->tx_id > rep->last_tx_id) {
                                                rep->last_tx_id = t->tx_id;
                                                memcpy(rep->last_hash, t->chain_hash, sizeof prev);
                                        }
                                }
                                memset(t, 0, sizeof *t);
                                have = true;
                                int64_t v;
                                t->tx_id = tx_id;
                                t->chain_part = part;
                                t->chain_seq = row_seq;
                                if (sb_db_col_str(s, 1, t->scope, sizeof t->scope) < 0 ||
                                    sb_db_col_str(s, 2, t->key, sizeof t->key) < 0 || sb_db_col_i64(s, 3, &v) < 0 ||
                                    sb_db_col_str(s, 4, t->cause_ref, sizeof t->cause_ref) < 0 ||
                                    sb_db_col_u64(s, 5, &t->cause_merchant) < 0 ||
                                    sb_db_col_str(s, 6, t->memo, sizeof t->memo) < 0 ||
                                    sb_db_col_i64(s, 7, &t->posted_ms) < 0 ||
                                    sb_db_col_str(s, 8, t->business_day, sizeof t->business_day) < 0 ||
                                    sb_db_col_u64(s, 9, &t->reverses_tx_id) < 0 ||
                                    sb_db_col_blob(s, 11, t->prev_hash, WALLET_HASH_BYTES) != WALLET_HASH_BYTES ||
                                    sb_db_col_blob(s, 12, t->chain_hash, WALLET_HASH_BYTES) != WALLET_HASH_BYTES) {
                                        report(rep, "transaction %" PRIu64 ": a column is malformed", tx_id);
                                        continue;
                                }
                                t->cause_kind = (int) v;
                                if (row_seq != seq + 1)
                                        report(rep, "chain %u: sequence %" PRIu64 " is missing (found %" PRIu64 ")",
                                               part, seq + 1, row_seq);
                                seq = row_seq;
                                if (trust_first_prev) {
                                        memcpy(prev, t->prev_hash, sizeof prev);
                                        trust_first_prev = false;
                                }
                                if (memcmp(prev, t->prev_hash, sizeof prev) != 0)
                                        report(rep, "chain %u: transaction %" PRIu64 " does not point at the hash of"
                                                    " the one before it",
                                               part, tx_id);
                        }
                        if (sb_db_col_is_null(s, 13))
                                continue; /* a transaction without entries: its hash says so */
                        if (t->n_legs >= WALLET_LEGS_MAX) {
                                report(rep, "transaction %" PRIu64 ": more than %d entries", tx_id, WALLET_LEGS_MAX);
                                continue;
                        }
                        wallet_leg *l = &t->legs[t->n_legs++];
                        int64_t shard, asset, reason;
                        if (sb_db_col_u64(s, 13, &l->account_id) < 0 || sb_db_col_i64(s, 14, &shard) < 0 ||
                            sb_db_col_i64(s, 15, &asset) < 0 || sb_db_col_i64(s, 16, &l->amount) < 0 ||
                            sb_db_col_i64(s, 18, &reason) < 0) {
                                report(rep, "transaction %" PRIu64 ": an entry is malformed", tx_id);
                                continue;
                        }
                        l->shard = (unsigned) shard;
                        l->ref.asset = (int) asset;
                        l->reason = (int) reason;
                        l->has_balance_after = !sb_db_col_is_null(s, 17);
                        if (l->has_balance_after)
                                TRY(sb_db_col_i64(s, 17, &l->balance_after));
                }
                if (r < 0)
                        return r;
                if (rows == 0 || seq < hi)
                        break;
        }
        if (have) {
                uint8_t h[WALLET_HASH_BYTES];
                wallet_chain_hash(t, h);
                if (memcmp(h, t->chain_hash, sizeof h) != 0)
                        report(rep, "chain %u: transaction %" PRIu64 " (seq %" PRIu64 ") does not match its hash: it"
                                    " was altered",
                               part, t->tx_id, t->chain_seq);
                memcpy(prev, t->chain_hash, sizeof prev);
                rep->transactions_checked++;
                if (t->tx_id > rep->last_tx_id) {
                        rep->last_tx_id = t->tx_id;
                        memcpy(rep->last_hash, t->chain_hash, sizeof prev);
                }
        }
        if (seq != head_seq || (seq > 0 && memcmp(prev, head_hash, sizeof prev) != 0))
                report(rep, "chain %u: the head says sequence %" PRIu64 ", the journal ends at %" PRIu64
                            " or with another hash (a transaction was removed or altered)",
                       part, head_seq, seq);
        return 0;
}

typedef struct verify_ctx {
        uint64_t from_tx_id;
        wallet_verify_report *rep;
        wallet_tx *t;
} verify_ctx;

static int verify_fn(sb_db *db, void *arg) {
        verify_ctx *c = arg;
        wallet_verify_report *rep = c->rep;
        sb_db_stmt *s;
        int r;

        memset(rep, 0, sizeof *rep);
        rep->ok = true;

        /* The first read fixes the snapshot every other check sees. */
        r = supply_read(db, &rep->supply);
        if (r == -ENOENT) {
                report(rep, "the ledger has no genesis (cap not recorded)");
                return 0;
        }
        if (r < 0)
                return r;

        for (unsigned part = 0; part < WALLET_CHAINS; part++)
                TRY(verify_chain(db, part, c->from_tx_id, rep, c->t));

        /* Every transaction balanced per asset class (CV = locked + active); the genesis: SP sums to the cap. */
        TRY(sb_db_prepare(db,
                          "SELECT e.tx_id, IF(e.asset = 2, 1, e.asset) AS cls, SUM(e.amount), MAX(t.scope = 'genesis')"
                          " FROM entries e JOIN transactions t ON t.tx_id = e.tx_id"
                          " GROUP BY e.tx_id, cls HAVING SUM(e.amount) <> 0",
                          &s));
        TRY(sb_db_execute(s));
        while ((r = sb_db_fetch(s)) > 0) {
                uint64_t tx;
                int64_t cls, sum, genesis;
                TRY(sb_db_col_u64(s, 0, &tx));
                TRY(sb_db_col_i64(s, 1, &cls));
                TRY(sb_db_col_i64(s, 2, &sum));
                TRY(sb_db_col_i64(s, 3, &genesis));
                if (genesis && cls == WALLET_ASSET_SP && sum == rep->supply.cap)
                        continue;
                report(rep, "transaction %" PRIu64 " does not balance: its %s legs sum to %" PRId64, tx,
                       cls == WALLET_ASSET_SP ? "SP" : cls == WALLET_ASSET_FEN ? "FEN" : "CV", sum);
        }
        if (r < 0)
                return r;

        /* Entries whose transaction is gone. */
        TRY(sb_db_prepare(db,
                          "SELECT COUNT(*) FROM entries e LEFT JOIN transactions t ON t.tx_id = e.tx_id"
                          " WHERE t.tx_id IS NULL",
                          &s));
        TRY(sb_db_execute(s));
        while ((r = sb_db_fetch(s)) > 0) {
                int64_t n;
                TRY(sb_db_col_i64(s, 0, &n));
                if (n)
                        report(rep, "%" PRId64 " journal entries belong to no transaction", n);
        }
        if (r < 0)
                return r;

        /* Every balance row equals the sum of its entries; holders, unreleased and treasury never below zero. */
        TRY(sb_db_prepare(db,
                          "SELECT b.account_id, b.shard, b.balance, COALESCE(x.total, 0), a.owner_kind, a.owner_id,"
                          " a.asset FROM balances b JOIN accounts a ON a.account_id = b.account_id"
                          " LEFT JOIN (SELECT account_id, shard, SUM(amount) AS total FROM entries"
                          "  GROUP BY account_id, shard) x ON x.account_id = b.account_id AND x.shard = b.shard"
                          " WHERE b.balance <> COALESCE(x.total, 0) OR (b.balance < 0 AND (a.owner_kind <> 0 OR"
                          "  a.account_id IN (1, 2)))",
                          &s));
        TRY(sb_db_execute(s));
        while ((r = sb_db_fetch(s)) > 0) {
                uint64_t id, oid;
                int64_t shard, bal, total, kind, asset;
                TRY(sb_db_col_u64(s, 0, &id));
                TRY(sb_db_col_i64(s, 1, &shard));
                TRY(sb_db_col_i64(s, 2, &bal));
                TRY(sb_db_col_i64(s, 3, &total));
                TRY(sb_db_col_i64(s, 4, &kind));
                TRY(sb_db_col_u64(s, 5, &oid));
                TRY(sb_db_col_i64(s, 6, &asset));
                wallet_account_ref ref = {(int) kind, oid, (int) asset};
                char name[96];
                account_name(&ref, name, sizeof name);
                if (bal != total)
                        report(rep, "account %" PRIu64 " (%s) shard %" PRId64 ": stored balance %" PRId64
                                    " but its entries sum to %" PRId64,
                               id, name, shard, bal, total);
                else
                        report(rep, "account %" PRIu64 " (%s) is negative: %" PRId64, id, name, bal);
        }
        if (r < 0)
                return r;
        /* Entries on an account/shard that has no balance row. */
        TRY(sb_db_prepare(db,
                          "SELECT COUNT(*) FROM entries e LEFT JOIN balances b ON b.account_id = e.account_id"
                          " AND b.shard = e.shard WHERE b.account_id IS NULL",
                          &s));
        TRY(sb_db_execute(s));
        while ((r = sb_db_fetch(s)) > 0) {
                int64_t n;
                TRY(sb_db_col_i64(s, 0, &n));
                if (n)
                        report(rep, "%" PRId64 " journal entries are on no balance row", n);
        }
        if (r < 0)
                return r;

        /* SP conserved: every SP balance together is the cap; the parts never exceed it. */
        TRY(sb_db_prepare(db,
                          "SELECT COALESCE(SUM(b.balance), 0), COUNT(DISTINCT b.account_id),"
                          " COALESCE(SUM(IF(a.owner_kind <> 0, b.balance, 0)), 0)"
                          " FROM balances b JOIN accounts a ON a.account_id = b.account_id WHERE a.asset = 3",
                          &s));
        TRY(sb_db_execute(s));
        while ((r = sb_db_fetch(s)) > 0) {
                int64_t total, held;
                TRY(sb_db_col_i64(s, 0, &total));
                TRY(sb_db_col_i64(s, 2, &held));
                if (total != rep->supply.cap)
                        report(rep, "SP is not conserved: all SP accounts hold %" PRId64 ", the cap is %" PRId64,
                               total, rep->supply.cap);
                if (held != rep->supply.held)
                        report(rep, "holders hold %" PRId64 " SP units, the system accounts imply %" PRId64, held,
                               rep->supply.held);
        }
        if (r < 0)
                return r;
        const wallet_supply *su = &rep->supply;
        if (su->unreleased < 0 || su->treasury < 0 || su->burned < 0 || su->held < 0 || su->unreleased > su->cap)
                report(rep, "the supply breaks the cap: unreleased %" PRId64 ", treasury %" PRId64 ", burned %" PRId64
                            ", held %" PRId64 ", cap %" PRId64,
                       su->unreleased, su->treasury, su->burned, su->held, su->cap);

        TRY(sb_db_prepare(db, "SELECT COUNT(*) FROM accounts", &s));
        TRY(sb_db_execute(s));
        while ((r = sb_db_fetch(s)) > 0) {
                int64_t n;
                TRY(sb_db_col_i64(s, 0, &n));
                rep->accounts_checked = (uint64_t) n;
        }
        return r < 0 ? r : 0;
}

int wallet_ledger_verify(sb_db *db, uint64_t from_tx_id, wallet_verify_report *ret) {
        wallet_verify_report *rep = calloc(1, sizeof *rep);
        wallet_tx *t = calloc(1, sizeof *t);
        int r = -ENOMEM;
        if (rep && t) {
                verify_ctx c = {.from_tx_id = from_tx_id, .rep = rep, .t = t};
                /* Read-only: the transaction gives one consistent snapshot (REPEATABLE READ) and commits nothing. */
                r = sb_db_tx(db, verify_fn, &c);
                if (r == 0)
                        memcpy(ret, rep, sizeof *rep);
        }
        free(rep);
        free(t);
        return r;
}
