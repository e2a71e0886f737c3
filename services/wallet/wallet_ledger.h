/* wallet_ledger: the double-entry ledger in MariaDB (schema sharebuy_wallet, see migrations/0002_wallet.sql and
 * docs/wallet.md).
 *
 * Every function takes the caller's connection and uses unqualified table names, so the connection's default schema
 * must be sharebuy_wallet (the service's is; sharebuyctl runs `USE sharebuy_wallet` first). Nothing here knows gRPC
 * or logs. Return values: 0 on success; WALLET_EREFUSED when the request was refused for a reason a person must read
 * (then *problem says which status kind, reason and message); any other negative value is an sb_db code. Results are
 * written only on success. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "wallet_legs.h"

/* The request was refused: see the wallet_problem. */
#define WALLET_EREFUSED (-EPROTO)

#define WALLET_CHAINS 32     /* independent hash chains of the journal (rows of chain_heads) */
#define WALLET_HOT_SHARDS 16 /* balance rows of each hot system account */
#define WALLET_VERIFY_PROBLEMS_MAX 100

typedef enum wallet_problem_kind {
        WALLET_P_NONE = 0,
        WALLET_P_INVALID,      /* INVALID_ARGUMENT */
        WALLET_P_NOT_FOUND,    /* NOT_FOUND */
        WALLET_P_EXISTS,       /* ALREADY_EXISTS */
        WALLET_P_PRECONDITION, /* FAILED_PRECONDITION */
        WALLET_P_PERMISSION,   /* PERMISSION_DENIED */
} wallet_problem_kind;

typedef struct wallet_problem {
        wallet_problem_kind kind;
        const char *reason; /* a common.v1.ErrorReason name, static */
        char msg[400];
} wallet_problem;

typedef struct wallet_ledger_cfg {
        int64_t cap_sp;             /* the SP cap, created at the genesis */
        int64_t treasury_sp;        /* the part of it set aside as the treasury */
        int utc_offset_min;         /* the deployment's time zone (Asia/Shanghai: 480) */
        int cutoff_min;             /* the airdrop cut-off, minutes after local midnight (1320) */
} wallet_ledger_cfg;

/* Creates the genesis transaction (the whole cap into SP unreleased and the treasury) when the ledger has none, or
 * checks that the ledger's cap equals cfg->cap_sp. Safe to call concurrently and repeatedly. Refuses
 * (WALLET_EREFUSED, PRECONDITION) when the ledger was created with another cap. */
int wallet_ledger_genesis(sb_db *db, const wallet_ledger_cfg *cfg, int64_t now_ms, wallet_problem *problem);

/* Opens the three accounts (CV locked, CV active, SP) of an owner (kind member, merchant or centre, id > 0).
 * *ret_existed is true when they all existed before. */
int wallet_ledger_open_accounts(sb_db *db, int owner_kind, uint64_t owner_id, int64_t now_ms, bool *ret_existed);

/* Posts tx atomically. In: scope, key, cause_kind, cause_ref, cause_merchant, memo, reverses_tx_id (0 unless a
 * reversal) and the legs (ref, amount, reason), already checked with wallet_legs_check(). Out (on success): every
 * other field, legs with account ids and balances after. Idempotent on (scope, key): the same request again gives the
 * first transaction and *ret_replayed = true; a different request under the key is refused (EXISTS). Refuses an
 * unknown account (NOT_FOUND), a holder or the treasury/unreleased going below zero or a balance overflowing
 * (PRECONDITION, naming the account and its balance). Accounts are locked in one global order (single-row accounts by
 * (owner kind, owner id, asset), then hot shards by (account, shard), then the chain head), so concurrent postings
 * never deadlock on each other. */
int wallet_ledger_post(sb_db *db, const wallet_ledger_cfg *cfg, wallet_tx *tx, int64_t now_ms, bool *ret_replayed,
                       wallet_problem *problem);

/* The most postings wallet_ledger_post_group() books at once. */
#define WALLET_GROUP_MAX 16

/* Group commit (docs/wallet.md, "Group commit"): books txs[0..n) (1 ≤ n ≤ WALLET_GROUP_MAX, each as
 * wallet_ledger_post() takes it) in ONE database transaction, with a few multi-row statements for all of them:
 * every single-row account of the group locked at once in the ledger's order, each posting applied in turn to the
 * balances the ones before it left, the shard and balance rows, chain heads, journal rows and entries written
 * together. posted[i] is set for each posting booked (its fields filled as wallet_ledger_post() fills them, not a
 * replay). A posting is left out — posted[i] false, nothing of it written — when it is a reversal, when its
 * (scope, key) came earlier in the group, or when a balance would go below zero or overflow; the caller then posts
 * it alone with wallet_ledger_post(), which replays, refuses with its message, or posts it. Returns 0, or a negative
 * code when the group failed as a whole and nothing is booked (-EEXIST: a key was already in the journal; -ENOENT:
 * an account was never opened; an sb_db code), except SB_DB_EUNKNOWN_COMMIT, after which all of it may be booked:
 * either way each posting must then go alone through wallet_ledger_post(), which replays what was booked. */
int wallet_ledger_post_group(sb_db *db, const wallet_ledger_cfg *cfg, wallet_tx *const *txs, size_t n, int64_t now_ms,
                             bool *posted);

/* The same inside a transaction the caller runs with sb_db_tx() (for postings tied to other rows, such as a
 * treasury payment): no idempotency lookup; a duplicate (scope, key) or a second reversal fails with -EEXIST. */
int wallet_ledger_post_in_tx(sb_db *db, const wallet_ledger_cfg *cfg, wallet_tx *tx, int64_t now_ms,
                             wallet_problem *problem);

/* Posts the reversal of a transaction, named by id (target_id) or by its service key (target_key, scope "svc"):
 * every leg negated with reason REVERSAL, reverses_tx_id set. Request in tx: scope, key, cause_kind, cause_ref,
 * cause_merchant, memo (the reason). Refuses a genesis, a reversal, or a transaction already reversed under another
 * key (PRECONDITION, REASON_ALREADY_REVERSED), an unknown target (NOT_FOUND); a holder that spent what the reversal
 * takes back is refused as in wallet_ledger_post(). Idempotent like wallet_ledger_post(). */
int wallet_ledger_reverse(sb_db *db, const wallet_ledger_cfg *cfg, uint64_t target_id, const char *target_key,
                          wallet_tx *tx, int64_t now_ms, bool *ret_replayed, wallet_problem *problem);

/* Loads transaction tx_id with its legs into *ret. -ENOENT when there is none. */
int wallet_ledger_load(sb_db *db, uint64_t tx_id, wallet_tx *ret);

/* The id of the transaction posted under (scope, key) and its request hash. -ENOENT when there is none. */
int wallet_ledger_find(sb_db *db, const char *scope, const char *key, uint64_t *ret_id,
                       uint8_t ret_request_hash[WALLET_HASH_BYTES]);

typedef struct wallet_balance {
        uint64_t account_id;
        int asset;
        int64_t balance;
        int64_t updated_ms;
} wallet_balance;

/* The balances of an owner's three accounts (ordered CV locked, CV active, SP) into out. -ENOENT when the owner
 * has no accounts. */
int wallet_ledger_balances(sb_db *db, int owner_kind, uint64_t owner_id, wallet_balance out[3]);

/* The balance of one account (summed over its shards). -ENOENT for an unknown account. */
int wallet_ledger_account_balance(sb_db *db, uint64_t account_id, int64_t *ret);

typedef struct wallet_supply {
        int64_t cap, unreleased, treasury, held, burned, circulating, released, pool_fen;
} wallet_supply;

/* The SP supply now, read in one snapshot. held is what the ledger's conservation implies (cap − unreleased −
 * treasury − burned); wallet_ledger_verify() checks it against the sum of every holder's balance. -ENOENT before
 * the genesis. */
int wallet_ledger_supply(sb_db *db, wallet_supply *ret);

/* The same inside the caller's transaction. */
int wallet_ledger_supply_in_tx(sb_db *db, wallet_supply *ret);

typedef struct wallet_verify_report {
        bool ok;
        size_t n_problems;
        char problems[WALLET_VERIFY_PROBLEMS_MAX][200];
        uint64_t transactions_checked;
        uint64_t accounts_checked;
        uint64_t last_tx_id;
        uint8_t last_hash[WALLET_HASH_BYTES];
        wallet_supply supply;
} wallet_verify_report;

/* Checks the whole ledger in one consistent snapshot: every chain's hashes recomputed from its rows (from the first
 * transaction with id ≥ from_tx_id on; 0 = from the genesis) and its head; every transaction balanced per asset (the
 * genesis: SP summing to the cap); every balance row equal to the sum of its entries; no holder, treasury or
 * unreleased balance below zero; SP conserved (all SP balances sum to the cap); no entry without its transaction.
 * A failed check is not an error: ret->ok is false and ret->problems say why (at most WALLET_VERIFY_PROBLEMS_MAX).
 * Returns 0 or an sb_db code. ret is large: allocate it on the heap. */
int wallet_ledger_verify(sb_db *db, uint64_t from_tx_id, wallet_verify_report *ret);
