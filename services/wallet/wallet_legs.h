/* wallet_legs: the pure parts of the ledger — the types of a transaction, the validation of its legs, the request
 * hash that idempotency compares, the journal's chain hash, and the business day of an instant.
 *
 * No I/O, no clock, no database: everything here is a function of its arguments, so the unit tests cover it fully.
 * Numbers follow sharebuy.common.v1 (Asset, OwnerKind, SystemAccount, LegReason, CauseKind), so that the proto
 * values pass through unchanged. Errors are negative errno values; results are written only on success. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WALLET_LEGS_MAX 64           /* legs of one transaction */
#define WALLET_AMOUNT_MAX INT64_C(1000000000000000) /* |amount| of one leg, 10^15 units */
#define WALLET_KEY_MAX 64            /* idempotency key, printable ASCII */
#define WALLET_REF_MAX 64            /* cause reference, printable ASCII */
#define WALLET_MEMO_CHARS_MAX 200    /* memo, UTF-8 characters */
#define WALLET_MEMO_BYTES_MAX (WALLET_MEMO_CHARS_MAX * 4)
#define WALLET_SCOPE_MAX 40          /* "svc", "genesis", "tr:<member id>", "pay" */
#define WALLET_HASH_BYTES 32
#define WALLET_DAY_LEN 10            /* "YYYY-MM-DD" */

enum {
        WALLET_ASSET_CV_LOCKED = 1,
        WALLET_ASSET_CV_ACTIVE = 2,
        WALLET_ASSET_SP = 3,
        WALLET_ASSET_FEN = 4,
};

enum {
        WALLET_OWNER_SYSTEM = 0,
        WALLET_OWNER_MEMBER = 1,
        WALLET_OWNER_MERCHANT = 2,
        WALLET_OWNER_CENTRE = 3,
};

enum {
        WALLET_SYS_SP_UNRELEASED = 1,
        WALLET_SYS_SP_TREASURY = 2,
        WALLET_SYS_SP_BURNED = 3,
        WALLET_SYS_CV_ISSUED = 4,
        WALLET_SYS_CV_AIRDROP_SPENT = 5,
        WALLET_SYS_FEN_BACKING_POOL = 6,
        WALLET_SYS_FEN_PAYMENTS_RECEIVED = 7,
        WALLET_SYS_MAX = 7,
};

enum {
        WALLET_REASON_GENESIS = 1,
        WALLET_REASON_TRANSFER = 17,
        WALLET_REASON_TREASURY_SP = 18,
        WALLET_REASON_TREASURY_PAYMENT = 19,
        WALLET_REASON_REVERSAL = 20,
        WALLET_REASON_MAX = 23,
};

enum {
        WALLET_CAUSE_GENESIS = 1,
        WALLET_CAUSE_SALE = 5,
        WALLET_CAUSE_SALE_VOID = 6,
        WALLET_CAUSE_TRANSFER = 8,
        WALLET_CAUSE_TREASURY_PURCHASE = 9,
        WALLET_CAUSE_ADJUSTMENT = 10,
        WALLET_CAUSE_MAX = 10,
};

/* One account as a caller names it: an owner's account of one asset, or a system account (owner_kind 0, owner_id
 * the SystemAccount value). */
typedef struct wallet_account_ref {
        int owner_kind;
        uint64_t owner_id;
        int asset;
} wallet_account_ref;

/* One leg. account_id, shard and balance_after are filled by the ledger. */
typedef struct wallet_leg {
        wallet_account_ref ref;
        int64_t amount;
        int reason;
        uint64_t account_id;
        unsigned shard;
        bool has_balance_after;      /* false on the sharded system accounts */
        int64_t balance_after;
} wallet_leg;

/* One journal transaction. */
typedef struct wallet_tx {
        uint64_t tx_id;
        char scope[WALLET_SCOPE_MAX + 1];
        char key[WALLET_KEY_MAX + 1];
        int cause_kind;
        char cause_ref[WALLET_REF_MAX + 1];
        uint64_t cause_merchant;
        char memo[WALLET_MEMO_BYTES_MAX + 1];
        int64_t posted_ms;
        char business_day[WALLET_DAY_LEN + 1];
        uint64_t reverses_tx_id;     /* 0: none */
        uint64_t reversed_by_tx_id;  /* 0: none (filled when loading) */
        unsigned chain_part;
        uint64_t chain_seq;
        uint8_t prev_hash[WALLET_HASH_BYTES];
        uint8_t chain_hash[WALLET_HASH_BYTES];
        /* The request hash idempotency compares; computed from the request when request_hash_set is false. */
        bool request_hash_set;
        uint8_t request_hash[WALLET_HASH_BYTES];
        size_t n_legs;
        wallet_leg legs[WALLET_LEGS_MAX];
} wallet_tx;

/* The system account's asset and whether it exists: WALLET_ASSET_* or 0 for an unknown system account. */
int wallet_system_asset(uint64_t system);

/* The CV/SP/FEN class an asset balances in: locked and active CV are one class (WALLET_ASSET_CV_LOCKED). 0 for an
 * unknown asset. */
int wallet_asset_class(int asset);

/* Whether a string is a valid key or reference: 1..max printable ASCII characters (0x21..0x7e). */
bool wallet_key_valid(const char *s, size_t max);

/* Whether s is valid UTF-8 of at most max_chars characters (and no control characters but none). */
bool wallet_utf8_valid(const char *s, size_t max_chars);

/* Checks the legs of a transaction as a caller sent them: 1..WALLET_LEGS_MAX legs; each amount nonzero and within
 * ±WALLET_AMOUNT_MAX; a known reason; an owner account with a known kind, an id > 0 and a holder asset (CV_LOCKED,
 * CV_ACTIVE or SP); a system account that exists, its asset matching (an asset 0 is filled in); each account at
 * most once; the sum of each class (CV, SP, FEN) zero. When `genesis` is true the SP class must instead sum to
 * genesis_sp (the cap). Returns 0, or -EINVAL with a sentence for a person in why (naming the leg, the asset and the
 * difference). May fill in the asset of system legs. */
int wallet_legs_check(wallet_leg *legs, size_t n, bool genesis, int64_t genesis_sp, char *why, size_t why_n);

/* The SHA-256 of everything that makes a posting request what it is (scope, key, cause, memo, reversal target and
 * legs as the caller named them, amounts and reasons), written to out. Two requests with the same key are the same
 * request exactly when their hashes are equal. */
void wallet_request_hash(const wallet_tx *tx, uint8_t out[WALLET_HASH_BYTES]);

/* The chain hash of tx: SHA-256 over tx->prev_hash and a canonical, length-prefixed encoding of the chain position,
 * the key, cause, memo, time, business day, reversal target and every leg (account id, shard, asset, amount, reason,
 * balance after) in order. tx_id is not part of it (it is assigned by the insert); the position (chain_part,
 * chain_seq) is, so that a row moved, dropped or altered breaks the chain. */
void wallet_chain_hash(const wallet_tx *tx, uint8_t out[WALLET_HASH_BYTES]);

/* Lower-case hex of a hash into out (2 × WALLET_HASH_BYTES + 1 bytes). */
void wallet_hash_hex(const uint8_t h[WALLET_HASH_BYTES], char out[2 * WALLET_HASH_BYTES + 1]);

/* The business day of instant unix_ms for a zone utc_offset_min minutes east of UTC whose day ends at cutoff_min
 * minutes after local midnight (the airdrop's cut-off, 1320 = 22:00): an instant at or after the cut-off belongs to
 * the next day. Writes "YYYY-MM-DD". Returns 0, -EINVAL for arguments out of range. */
int wallet_business_day(int64_t unix_ms, int utc_offset_min, int cutoff_min, char out[WALLET_DAY_LEN + 1]);

/* The instant (unix ms) at which business day `day` ("YYYY-MM-DD") ends, i.e. its cut-off. Returns 0, -EINVAL for
 * a malformed day. */
int wallet_business_day_end(const char *day, int utc_offset_min, int cutoff_min, int64_t *ret_ms);

/* Whether s is a well-formed day "YYYY-MM-DD" (a real calendar date, year 2000..2999). */
bool wallet_day_valid(const char *s);

/* The chain (0..n_chains-1) and the balance shard (0..n_shards-1) of a transaction, from the hash of its scope and
 * key, so that the same request always lands in the same place and different ones spread evenly. */
unsigned wallet_chain_of(const char *scope, const char *key, unsigned n_chains);
unsigned wallet_shard_of(const char *scope, const char *key, unsigned n_shards);
