/* The wallet service (sharebuy.wallet.v1.Wallet): the handlers. They check the caller and the request, call the
 * ledger store (wallet_ledger, wallet_prices, wallet_treasury) and map its answers to statuses; the store does the
 * work in MariaDB. */
#include "wallet.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "economy.h"
#include "log.h"
#include "metrics.h"
#include "sharebuy/identity/v1/identity.pb-c.h"
#include "sharebuy/wallet/v1/wallet.pb-c.h"
#include "units.h"
#include "wallet_airdrop.h"
#include "wallet_ledger.h"
#include "wallet_prices.h"
#include "wallet_treasury.h"

/* A PostTransaction handed to the group commit (below), with its answer when posted alone. */
typedef struct post_item {
        wallet_tx *tx;
        bool replayed;
        wallet_problem problem;
} post_item;

typedef struct wallet_state {
        wallet_ledger_cfg ledger;
        int64_t initial_price_micro;
        int64_t deposit_min_fen;
        atomic_bool genesis_done;
        sb_batch posts; /* group commit of PostTransaction */
        sb_metrics_series *m_groups, *m_grouped;
} wallet_state;

#define SVC_ROLES (SB_ROLES(SB_ROLE_SERVICE))
#define ADMIN_ROLES (SB_ROLES(SB_ROLE_ADMIN))
#define ANY_ROLE                                                                                                     \
        (SB_ROLES(SB_ROLE_MEMBER) | SB_ROLES(SB_ROLE_MERCHANT_OWNER) | SB_ROLES(SB_ROLE_CASHIER) |                   \
         SB_ROLES(SB_ROLE_TERMINAL) | SB_ROLES(SB_ROLE_CENTRE_OPERATOR) | SB_ROLES(SB_ROLE_ADMIN) |                  \
         SB_ROLES(SB_ROLE_SERVICE))

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static wallet_state *state(sb_call *call) {
        return sb_call_service_data(call);
}

static sb_status fail_problem(sb_call *call, const wallet_problem *p) {
        sb_status code;
        switch (p->kind) {
        case WALLET_P_INVALID:
                code = SB_INVALID_ARGUMENT;
                break;
        case WALLET_P_NOT_FOUND:
                code = SB_NOT_FOUND;
                break;
        case WALLET_P_EXISTS:
                code = SB_ALREADY_EXISTS;
                break;
        case WALLET_P_PRECONDITION:
                code = SB_FAILED_PRECONDITION;
                break;
        case WALLET_P_PERMISSION:
                code = SB_PERMISSION_DENIED;
                break;
        default:
                code = SB_INTERNAL;
                break;
        }
        return sb_call_fail_reason(call, code, p->reason ? p->reason : "REASON_UNSPECIFIED", "%s", p->msg);
}

/* Maps a store result: a refusal to its status, a database code to UNAVAILABLE/INTERNAL. */
static sb_status fail_store(sb_call *call, int r, const wallet_problem *p, const char *what) {
        if (r == WALLET_EREFUSED)
                return fail_problem(call, p);
        return sb_service_db_fail(call, r, what);
}

static sb_status invalid(sb_call *call, const char *msg) {
        return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID", "%s", msg);
}

/* The database connection with the statement limit of the call's deadline, and the genesis made once per process. */
static sb_db *db_for(sb_call *call, sb_status *ret_fail) {
        sb_db *db = sb_service_db(call);
        if (!db) {
                *ret_fail = sb_service_db_unavailable(call);
                return NULL;
        }
        /* The statement limit follows the deadline, rounded up to whole seconds: setting it costs a round trip
         * whenever it changes, and the time left changes on every call. */
        int64_t left = sb_call_remaining_ms(call);
        uint32_t limit_ms = left > 600000 ? 0 : (uint32_t) ((left + 999) / 1000 * 1000);
        sb_db_set_statement_timeout_ms(db, left <= 0 ? 1 : limit_ms);
        wallet_state *st = state(call);
        if (!atomic_load(&st->genesis_done)) {
                wallet_problem p = {0};
                int r = wallet_ledger_genesis(db, &st->ledger, now_ms(), &p);
                if (r < 0) {
                        *ret_fail = fail_store(call, r, &p, "creating the ledger's genesis");
                        return NULL;
                }
                atomic_store(&st->genesis_done, true);
        }
        return db;
}

static void today(sb_call *call, char out[WALLET_DAY_LEN + 1]) {
        wallet_state *st = state(call);
        if (wallet_business_day(now_ms(), st->ledger.utc_offset_min, st->ledger.cutoff_min, out) < 0)
                snprintf(out, WALLET_DAY_LEN + 1, "1970-01-01");
}

/* --- Conversions --------------------------------------------------------------------------------------------- */

static int ref_from_proto(const Sharebuy__Common__V1__AccountRef *a, wallet_account_ref *ret) {
        if (!a)
                return -EINVAL;
        if (a->holder_case == SHAREBUY__COMMON__V1__ACCOUNT_REF__HOLDER_OWNER && a->owner) {
                if (a->owner->kind == SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_UNSPECIFIED)
                        return -EINVAL;
                *ret = (wallet_account_ref){(int) a->owner->kind, a->owner->id, (int) a->asset};
                return 0;
        }
        if (a->holder_case == SHAREBUY__COMMON__V1__ACCOUNT_REF__HOLDER_SYSTEM) {
                *ret = (wallet_account_ref){WALLET_OWNER_SYSTEM, (uint64_t) a->system, (int) a->asset};
                return 0;
        }
        return -EINVAL;
}

static Sharebuy__Common__V1__AccountRef *ref_to_proto(sb_call *call, const wallet_account_ref *r) {
        Sharebuy__Common__V1__AccountRef *a = sb_call_alloc(call, sizeof *a);
        sharebuy__common__v1__account_ref__init(a);
        a->asset = (Sharebuy__Common__V1__Asset) r->asset;
        if (r->owner_kind == WALLET_OWNER_SYSTEM) {
                a->holder_case = SHAREBUY__COMMON__V1__ACCOUNT_REF__HOLDER_SYSTEM;
                a->system = (Sharebuy__Common__V1__SystemAccount) r->owner_id;
        } else {
                Sharebuy__Common__V1__OwnerRef *o = sb_call_alloc(call, sizeof *o);
                sharebuy__common__v1__owner_ref__init(o);
                o->kind = (Sharebuy__Common__V1__OwnerKind) r->owner_kind;
                o->id = r->owner_id;
                a->holder_case = SHAREBUY__COMMON__V1__ACCOUNT_REF__HOLDER_OWNER;
                a->owner = o;
        }
        return a;
}

static Sharebuy__Wallet__V1__Transaction *tx_to_proto(sb_call *call, const wallet_tx *tx) {
        Sharebuy__Wallet__V1__Transaction *t = sb_call_alloc(call, sizeof *t);
        sharebuy__wallet__v1__transaction__init(t);
        t->transaction_id = tx->tx_id;
        t->idempotency_key = sb_call_strdup(call, tx->key);
        Sharebuy__Common__V1__Cause *c = sb_call_alloc(call, sizeof *c);
        sharebuy__common__v1__cause__init(c);
        c->kind = (Sharebuy__Common__V1__CauseKind) tx->cause_kind;
        c->reference = sb_call_strdup(call, tx->cause_ref);
        c->merchant_id = tx->cause_merchant;
        t->cause = c;
        t->n_legs = tx->n_legs;
        t->legs = sb_call_alloc(call, (tx->n_legs ? tx->n_legs : 1) * sizeof *t->legs);
        for (size_t i = 0; i < tx->n_legs; i++) {
                Sharebuy__Common__V1__LedgerLeg *l = sb_call_alloc(call, sizeof *l);
                sharebuy__common__v1__ledger_leg__init(l);
                l->account = ref_to_proto(call, &tx->legs[i].ref);
                l->amount_units = tx->legs[i].amount;
                l->reason = (Sharebuy__Common__V1__LegReason) tx->legs[i].reason;
                l->balance_after_units = tx->legs[i].has_balance_after ? tx->legs[i].balance_after : 0;
                t->legs[i] = l;
        }
        t->memo = sb_call_strdup(call, tx->memo);
        t->posted_unix_ms = tx->posted_ms;
        t->business_day = sb_call_strdup(call, tx->business_day);
        t->reverses_transaction_id = tx->reverses_tx_id;
        t->reversed_by_transaction_id = tx->reversed_by_tx_id;
        char hex[2 * WALLET_HASH_BYTES + 1];
        wallet_hash_hex(tx->chain_hash, hex);
        t->chain_hash_hex = sb_call_strdup(call, hex);
        return t;
}

static int cause_from_proto(const Sharebuy__Common__V1__Cause *c, wallet_tx *tx, char *why, size_t n) {
        if (!c || c->kind <= 0 || (int) c->kind > WALLET_CAUSE_MAX) {
                snprintf(why, n, "cause missing or of an unknown kind");
                return -EINVAL;
        }
        if (c->kind == SHAREBUY__COMMON__V1__CAUSE_KIND__CAUSE_KIND_GENESIS) {
                snprintf(why, n, "the genesis is made by the wallet itself");
                return -EINVAL;
        }
        if (!wallet_key_valid(c->reference, WALLET_REF_MAX)) {
                snprintf(why, n, "cause reference: 1 to %d printable ASCII characters", WALLET_REF_MAX);
                return -EINVAL;
        }
        tx->cause_kind = (int) c->kind;
        snprintf(tx->cause_ref, sizeof tx->cause_ref, "%s", c->reference);
        tx->cause_merchant = c->merchant_id;
        return 0;
}

/* A wallet_tx on the heap for one call: it is large (64 legs). */
static wallet_tx *new_tx(sb_call *call) {
        return sb_call_alloc(call, sizeof(wallet_tx));
}

/* --- Group commit -------------------------------------------------------------------------------------------- */

static int post_single(void *ctx, void *conn, void *p) {
        wallet_state *st = ctx;
        post_item *it = p;
        it->problem = (wallet_problem){0};
        return wallet_ledger_post(conn, &st->ledger, it->tx, now_ms(), &it->replayed, &it->problem);
}

static int post_group(void *ctx, void *conn, void *const *items, size_t n, bool *done) {
        wallet_state *st = ctx;
        wallet_tx *txs[WALLET_GROUP_MAX];
        for (size_t i = 0; i < n; i++)
                txs[i] = ((post_item *) items[i])->tx;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int r = wallet_ledger_post_group(conn, &st->ledger, txs, n, now_ms(), done);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        size_t booked = 0;
        for (size_t i = 0; i < n; i++)
                booked += done[i];
        int64_t us = (int64_t) (t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
        sb_log_kv(SB_LOG_DEBUG, "post_group", "postings booked in one transaction", "taken", SB_LOG_INT((int64_t) n),
                  "booked", SB_LOG_INT((int64_t) booked), "result", SB_LOG_INT(r), "us", SB_LOG_INT(us), NULL);
        if (st->m_groups) {
                sb_metrics_series_add(st->m_groups, 1);
                sb_metrics_series_add(st->m_grouped, (int64_t) booked);
        }
        return r;
}

/* Posts tx like wallet_ledger_post(), with the postings of other calls that arrive while one is being booked
 * (docs/wallet.md, "Group commit"; the leader/follower scheme is services/core/batch): a group of them is booked on
 * the leader's connection in one database transaction (wallet_ledger_post_group); a posting found alone, or one
 * its group left out (a refusal, a replay, a failed group), is posted the ordinary way and gets its exact answer.
 * A reversal is always posted alone. */
static int post_tx(sb_call *call, sb_db *db, wallet_tx *tx, bool *ret_replayed, wallet_problem *problem) {
        wallet_state *st = state(call);
        post_item it = {.tx = tx};
        int r = tx->reverses_tx_id ? post_single(st, db, &it) : sb_batch_run(&st->posts, db, &it);
        *ret_replayed = it.replayed;
        *problem = it.problem;
        return r;
}

/* --- OpenAccounts -------------------------------------------------------------------------------------------- */

static sb_status fill_balances(sb_call *call, sb_db *db, int kind, uint64_t id, size_t *ret_n,
                               Sharebuy__Wallet__V1__AccountBalance ***ret, wallet_balance b[3]) {
        int r = wallet_ledger_balances(db, kind, id, b);
        if (r == -ENOENT)
                return sb_call_fail_reason(call, SB_NOT_FOUND, "REASON_ACCOUNT_UNKNOWN",
                                           "owner %d/%" PRIu64 " has no accounts", kind, id);
        if (r < 0)
                return sb_service_db_fail(call, r, "reading balances");
        Sharebuy__Wallet__V1__AccountBalance **arr = sb_call_alloc(call, 3 * sizeof *arr);
        for (size_t i = 0; i < 3; i++) {
                Sharebuy__Wallet__V1__AccountBalance *ab = sb_call_alloc(call, sizeof *ab);
                sharebuy__wallet__v1__account_balance__init(ab);
                wallet_account_ref ref = {kind, id, (int) i + 1};
                ab->account = ref_to_proto(call, &ref);
                ab->balance_units = b[i].balance;
                ab->updated_unix_ms = b[i].updated_ms;
                arr[i] = ab;
        }
        *ret = arr;
        *ret_n = 3;
        return SB_OK;
}

static sb_status h_open_accounts(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Wallet__V1__OpenAccountsRequest *req = (const void *) req_;
        Sharebuy__Wallet__V1__OpenAccountsResponse *resp = (void *) resp_;
        sb_status st;
        if ((st = sb_service_auth(call, SVC_ROLES, NULL)) != SB_OK)
                return st;
        if (!req->owner || req->owner->kind <= 0 || req->owner->kind > 3 || req->owner->id == 0)
                return invalid(call, "owner: a member, merchant or centre with an id > 0");
        sb_db *db = db_for(call, &st);
        if (!db)
                return st;
        bool existed;
        int r = wallet_ledger_open_accounts(db, (int) req->owner->kind, req->owner->id, now_ms(), &existed);
        if (r < 0)
                return sb_service_db_fail(call, r, "opening accounts");
        wallet_balance b[3];
        if ((st = fill_balances(call, db, (int) req->owner->kind, req->owner->id, &resp->n_accounts, &resp->accounts,
                                b)) != SB_OK)
                return st;
        resp->existed = existed;
        return SB_OK;
}

/* --- PostTransaction, ReverseTransaction, GetTransaction ------------------------------------------------------ */

/* Keys "airdrop:…" in the service scope belong to ApplyAirdropChunk (wallet_airdrop.c), which finds a chunk's
 * transactions by that prefix: a posting under such a key would make the chunk look booked with other allotments. */
static bool airdrop_key(const char *key) {
        return strncmp(key, "airdrop:", 8) == 0;
}

static sb_status h_post_transaction(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Wallet__V1__PostTransactionRequest *req = (const void *) req_;
        Sharebuy__Wallet__V1__PostTransactionResponse *resp = (void *) resp_;
        sb_status st;
        char why[300];
        if ((st = sb_service_auth(call, SVC_ROLES, NULL)) != SB_OK)
                return st;
        if (!wallet_key_valid(req->idempotency_key, WALLET_KEY_MAX))
                return invalid(call, "idempotency_key: 1 to 64 printable ASCII characters");
        if (airdrop_key(req->idempotency_key))
                return invalid(call, "idempotency_key: the prefix \"airdrop:\" is reserved for ApplyAirdropChunk");
        if (!wallet_utf8_valid(req->memo, WALLET_MEMO_CHARS_MAX))
                return invalid(call, "memo: at most 200 characters of UTF-8 text");
        if (req->n_legs == 0 || req->n_legs > WALLET_LEGS_MAX)
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_LEGS_UNBALANCED",
                                           "a transaction has 1 to %d legs, not %zu", WALLET_LEGS_MAX, req->n_legs);
        wallet_tx *tx = new_tx(call);
        snprintf(tx->scope, sizeof tx->scope, "svc");
        snprintf(tx->key, sizeof tx->key, "%s", req->idempotency_key);
        snprintf(tx->memo, sizeof tx->memo, "%s", req->memo);
        if (cause_from_proto(req->cause, tx, why, sizeof why) < 0)
                return invalid(call, why);
        tx->n_legs = req->n_legs;
        for (size_t i = 0; i < req->n_legs; i++) {
                const Sharebuy__Common__V1__LedgerLeg *l = req->legs[i];
                if (ref_from_proto(l->account, &tx->legs[i].ref) < 0) {
                        snprintf(why, sizeof why, "leg %zu: the account names no owner or system account", i + 1);
                        return invalid(call, why);
                }
                tx->legs[i].amount = l->amount_units;
                tx->legs[i].reason = (int) l->reason;
        }
        if (wallet_legs_check(tx->legs, tx->n_legs, false, 0, why, sizeof why) < 0) {
                const char *reason = strstr(why, "balance") ? "REASON_LEGS_UNBALANCED"
                                     : strstr(why, "amount")  ? "REASON_AMOUNT_OUT_OF_RANGE"
                                                              : "REASON_FIELD_INVALID";
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, reason, "%s", why);
        }
        sb_db *db = db_for(call, &st);
        if (!db)
                return st;
        wallet_problem p = {0};
        bool replayed = false;
        int r = post_tx(call, db, tx, &replayed, &p);
        if (r < 0)
                return fail_store(call, r, &p, "posting the transaction");
        resp->transaction = tx_to_proto(call, tx);
        resp->replayed = replayed;
        return SB_OK;
}

static sb_status h_reverse_transaction(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Wallet__V1__ReverseTransactionRequest *req = (const void *) req_;
        Sharebuy__Wallet__V1__ReverseTransactionResponse *resp = (void *) resp_;
        sb_status st;
        char why[300];
        if ((st = sb_service_auth(call, SVC_ROLES | ADMIN_ROLES, NULL)) != SB_OK)
                return st;
        if (!wallet_key_valid(req->idempotency_key, WALLET_KEY_MAX))
                return invalid(call, "idempotency_key: 1 to 64 printable ASCII characters");
        if (airdrop_key(req->idempotency_key))
                return invalid(call, "idempotency_key: the prefix \"airdrop:\" is reserved for ApplyAirdropChunk");
        uint64_t target_id = 0;
        const char *target_key = NULL;
        if (req->target_case == SHAREBUY__WALLET__V1__REVERSE_TRANSACTION_REQUEST__TARGET_TRANSACTION_ID &&
            req->transaction_id > 0)
                target_id = req->transaction_id;
        else if (req->target_case ==
                         SHAREBUY__WALLET__V1__REVERSE_TRANSACTION_REQUEST__TARGET_ORIGINAL_IDEMPOTENCY_KEY &&
                 wallet_key_valid(req->original_idempotency_key, WALLET_KEY_MAX))
                target_key = req->original_idempotency_key;
        else
                return invalid(call, "target: a transaction id or the original idempotency key");
        if (!req->reason || !*req->reason || !wallet_utf8_valid(req->reason, WALLET_MEMO_CHARS_MAX))
                return invalid(call, "reason: required, at most 200 characters of UTF-8 text");
        wallet_tx *tx = new_tx(call);
        snprintf(tx->scope, sizeof tx->scope, "svc");
        snprintf(tx->key, sizeof tx->key, "%s", req->idempotency_key);
        snprintf(tx->memo, sizeof tx->memo, "%s", req->reason);
        if (cause_from_proto(req->cause, tx, why, sizeof why) < 0)
                return invalid(call, why);
        sb_db *db = db_for(call, &st);
        if (!db)
                return st;
        wallet_problem p = {0};
        bool replayed = false;
        int r = wallet_ledger_reverse(db, &state(call)->ledger, target_id, target_key, tx, now_ms(), &replayed, &p);
        if (r < 0)
                return fail_store(call, r, &p, "posting the reversal");
        resp->transaction = tx_to_proto(call, tx);
        resp->replayed = replayed;
        return SB_OK;
}

/* Whether the caller owns owner (kind, id): a member itself, a merchant's staff and terminals, a centre's operator. */
static bool owns(const sb_claims *c, int kind, uint64_t id) {
        switch (c->role) {
        case SB_ROLE_MEMBER:
                return kind == WALLET_OWNER_MEMBER && c->uid == id;
        case SB_ROLE_MERCHANT_OWNER:
        case SB_ROLE_CASHIER:
        case SB_ROLE_TERMINAL:
                return kind == WALLET_OWNER_MERCHANT && c->merchant_id == id;
        case SB_ROLE_CENTRE_OPERATOR:
                return kind == WALLET_OWNER_CENTRE && c->centre_id == id;
        case SB_ROLE_ADMIN:
        case SB_ROLE_SERVICE:
                return true;
        default:
                return false;
        }
}

static sb_status h_get_transaction(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Wallet__V1__GetTransactionRequest *req = (const void *) req_;
        Sharebuy__Wallet__V1__Transaction *resp = (void *) resp_;
        sb_claims claims;
        sb_status st;
        if ((st = sb_service_auth(call, ANY_ROLE, &claims)) != SB_OK)
                return st;
        sb_db *db = db_for(call, &st);
        if (!db)
                return st;
        uint64_t id = 0;
        int r;
        if (req->key_case == SHAREBUY__WALLET__V1__GET_TRANSACTION_REQUEST__KEY_TRANSACTION_ID && req->transaction_id)
                id = req->transaction_id;
        else if (req->key_case == SHAREBUY__WALLET__V1__GET_TRANSACTION_REQUEST__KEY_IDEMPOTENCY_KEY &&
                 wallet_key_valid(req->idempotency_key, WALLET_KEY_MAX)) {
                uint8_t h[WALLET_HASH_BYTES];
                r = wallet_ledger_find(db, "svc", req->idempotency_key, &id, h);
                if (r == -ENOENT)
                        return sb_call_fail(call, SB_NOT_FOUND, "no transaction with the key \"%s\"",
                                            req->idempotency_key);
                if (r < 0)
                        return sb_service_db_fail(call, r, "finding the transaction");
        } else
                return invalid(call, "give a transaction_id or an idempotency_key");
        wallet_tx *tx = new_tx(call);
        r = wallet_ledger_load(db, id, tx);
        if (r == -ENOENT)
                return sb_call_fail(call, SB_NOT_FOUND, "no transaction %" PRIu64, id);
        if (r < 0)
                return sb_service_db_fail(call, r, "loading the transaction");
        if (claims.role != SB_ROLE_ADMIN && claims.role != SB_ROLE_SERVICE) {
                /* Only the caller's own legs and the system legs are shown, and only if it has a leg. */
                size_t k = 0;
                bool mine = false;
                for (size_t i = 0; i < tx->n_legs; i++) {
                        const wallet_leg *l = &tx->legs[i];
                        bool own = l->ref.owner_kind != WALLET_OWNER_SYSTEM &&
                                   owns(&claims, l->ref.owner_kind, l->ref.owner_id);
                        mine |= own;
                        if (own || l->ref.owner_kind == WALLET_OWNER_SYSTEM)
                                tx->legs[k++] = *l;
                }
                if (!mine)
                        return sb_call_fail(call, SB_NOT_FOUND, "no transaction %" PRIu64, id);
                tx->n_legs = k;
        }
        Sharebuy__Wallet__V1__Transaction *t = tx_to_proto(call, tx);
        t->base = resp->base;
        *resp = *t;
        return SB_OK;
}

/* --- Balances, transfers ------------------------------------------------------------------------------------- */

/* The owner a token acts for when the request names none. */
static bool own_owner(const sb_claims *c, int *kind, uint64_t *id) {
        switch (c->role) {
        case SB_ROLE_MEMBER:
                *kind = WALLET_OWNER_MEMBER;
                *id = c->uid;
                return true;
        case SB_ROLE_MERCHANT_OWNER:
        case SB_ROLE_CASHIER:
        case SB_ROLE_TERMINAL:
                *kind = WALLET_OWNER_MERCHANT;
                *id = c->merchant_id;
                return true;
        case SB_ROLE_CENTRE_OPERATOR:
                *kind = WALLET_OWNER_CENTRE;
                *id = c->centre_id;
                return true;
        default:
                return false;
        }
}

static sb_status resolve_owner(sb_call *call, const sb_claims *claims, const Sharebuy__Common__V1__OwnerRef *o,
                               int *kind, uint64_t *id) {
        if (!o || (o->kind == 0 && o->id == 0)) {
                if (!own_owner(claims, kind, id) || *id == 0)
                        return invalid(call, "owner: required for an admin or service caller");
                return SB_OK;
        }
        if (o->kind <= 0 || o->kind > 3 || o->id == 0)
                return invalid(call, "owner: a member, merchant or centre with an id > 0");
        if (!owns(claims, (int) o->kind, o->id))
                return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_SCOPE_MISMATCH",
                                           "these are another owner's accounts");
        *kind = (int) o->kind;
        *id = o->id;
        return SB_OK;
}

static sb_status h_get_balances(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Wallet__V1__GetBalancesRequest *req = (const void *) req_;
        Sharebuy__Wallet__V1__GetBalancesResponse *resp = (void *) resp_;
        sb_claims claims;
        sb_status st;
        int kind = 0;
        uint64_t id = 0;
        if ((st = sb_service_auth(call, ANY_ROLE, &claims)) != SB_OK)
                return st;
        if ((st = resolve_owner(call, &claims, req->owner, &kind, &id)) != SB_OK)
                return st;
        sb_db *db = db_for(call, &st);
        if (!db)
                return st;
        wallet_balance b[3];
        if ((st = fill_balances(call, db, kind, id, &resp->n_accounts, &resp->accounts, b)) != SB_OK)
                return st;
        char day[WALLET_DAY_LEN + 1];
        today(call, day);
        wallet_price p;
        int r = wallet_price_in_force(db, day, state(call)->initial_price_micro, &p);
        if (r < 0)
                return sb_service_db_fail(call, r, "reading the guide price");
        Sharebuy__Common__V1__OwnerRef *o = sb_call_alloc(call, sizeof *o);
        sharebuy__common__v1__owner_ref__init(o);
        o->kind = (Sharebuy__Common__V1__OwnerKind) kind;
        o->id = id;
        resp->owner = o;
        resp->cv_locked_units = b[0].balance;
        resp->cv_active_units = b[1].balance;
        resp->sp_units = b[2].balance;
        /* fen = SP units × micro-yuan per SP ÷ (10^4 units per SP × 10^4 micro-yuan per fen), rounded down. */
        int64_t value = 0;
        if (sb_muldiv_i64(b[2].balance, p.price_micro, SB_SP_SCALE * SB_MICRO_PER_FEN, SB_ROUND_DOWN, &value) < 0)
                value = 0;
        resp->sp_value_fen = value;
        resp->guide_price_micro_yuan = p.price_micro;
        resp->business_day = sb_call_strdup(call, day);
        return SB_OK;
}

/* Identity is asked within this time (less when the call has less left). */
#define WALLET_IDENTITY_DEADLINE_MS 5000
#define WALLET_REFERRAL_CODE_MAX 16 /* bytes; identity's limit */
#define WALLET_MASKED_PHONE_DEADLINE_MS 2000 /* a nicety after the posting: not worth a long wait */

/* The member a referral code (or a member's phone number) belongs to, asked of identity with the wallet's SERVICE
 * credential (so the look-up is not limited per address). A merchant's code is NOT_FOUND: SP goes to members only.
 * Identity not answering is UNAVAILABLE: nothing was posted, so the sender retries with the same key. */
static sb_status transfer_resolve_code(sb_call *call, const char *code, uint64_t *ret_member) {
        if (!code[0] || strnlen(code, WALLET_REFERRAL_CODE_MAX + 1) > WALLET_REFERRAL_CODE_MAX ||
            !wallet_utf8_valid(code, WALLET_REFERRAL_CODE_MAX))
                return invalid(call, "to_referral_code: 1 to 16 characters");
        Sharebuy__Identity__V1__ResolveReferralCodeRequest rq = SHAREBUY__IDENTITY__V1__RESOLVE_REFERRAL_CODE_REQUEST__INIT;
        rq.referral_code = (char *) code;
        ProtobufCMessage *out = NULL;
        char msg[256];
        sb_status s = sb_service_call(call, "identity", "/sharebuy.identity.v1.Identity/ResolveReferralCode", &rq.base,
                                      &sharebuy__identity__v1__resolve_referral_code_response__descriptor,
                                      WALLET_IDENTITY_DEADLINE_MS, &out, msg, sizeof msg);
        if (s == SB_NOT_FOUND)
                return sb_call_fail_reason(call, SB_NOT_FOUND, "REASON_REFERRAL_CODE_UNKNOWN",
                                           "no member has the referral code \"%s\"", code);
        if (s == SB_INVALID_ARGUMENT)
                return invalid(call, "to_referral_code: not a referral code or phone number");
        if (s == SB_UNAVAILABLE || s == SB_DEADLINE_EXCEEDED || s == SB_RESOURCE_EXHAUSTED)
                return sb_call_fail_reason(call, SB_UNAVAILABLE, "REASON_DEPENDENCY_UNAVAILABLE",
                                           "identity did not answer the referral code look-up (%s); retry with the "
                                           "same key",
                                           msg);
        if (s != SB_OK)
                return sb_call_fail(call, SB_INTERNAL, "identity refused the referral code look-up: %s (request %s)",
                                    msg, sb_call_request_id(call));
        const Sharebuy__Identity__V1__ResolveReferralCodeResponse *r = (const void *) out;
        bool member = r->owner && r->owner->kind == SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_MEMBER &&
                      r->owner->id != 0;
        uint64_t id = member ? r->owner->id : 0;
        protobuf_c_message_free_unpacked(out, NULL);
        if (!member)
                return sb_call_fail_reason(call, SB_NOT_FOUND, "REASON_MEMBER_UNKNOWN",
                                           "the referral code \"%s\" is a merchant's; SP can be given to members only",
                                           code);
        *ret_member = id;
        return SB_OK;
}

/* The recipient's masked phone from identity (Identity/GetMember with the SERVICE credential), for the sender to
 * confirm. Asked after the posting, so it never decides the transfer: when identity does not answer the transfer
 * stands and the field is empty (a retry with the same key replays and asks again). */
static char *transfer_masked_phone(sb_call *call, uint64_t member_id) {
        Sharebuy__Identity__V1__GetMemberRequest rq = SHAREBUY__IDENTITY__V1__GET_MEMBER_REQUEST__INIT;
        rq.key_case = SHAREBUY__IDENTITY__V1__GET_MEMBER_REQUEST__KEY_MEMBER_ID;
        rq.member_id = member_id;
        ProtobufCMessage *out = NULL;
        char msg[256];
        if (sb_service_call(call, "identity", "/sharebuy.identity.v1.Identity/GetMember", &rq.base,
                            &sharebuy__identity__v1__member__descriptor, WALLET_MASKED_PHONE_DEADLINE_MS, &out, msg,
                            sizeof msg) != SB_OK)
                return (char *) "";
        char *masked = sb_call_strdup(call, ((const Sharebuy__Identity__V1__Member *) out)->masked_phone);
        protobuf_c_message_free_unpacked(out, NULL);
        return masked;
}

static sb_status h_transfer(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Wallet__V1__TransferRequest *req = (const void *) req_;
        Sharebuy__Wallet__V1__TransferResponse *resp = (void *) resp_;
        sb_claims claims;
        sb_status st;
        if ((st = sb_service_auth(call, SB_ROLES(SB_ROLE_MEMBER), &claims)) != SB_OK)
                return st;
        if (claims.uid == 0)
                return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_ROLE_NOT_ALLOWED",
                                           "the token names no member");
        if (!wallet_key_valid(req->idempotency_key, WALLET_KEY_MAX))
                return invalid(call, "idempotency_key: 1 to 64 printable ASCII characters");
        if (req->sp_units <= 0 || req->sp_units > WALLET_AMOUNT_MAX)
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_AMOUNT_OUT_OF_RANGE",
                                           "sp_units must be between 1 and 10^15, not %" PRId64, req->sp_units);
        if (!wallet_utf8_valid(req->memo, 140))
                return invalid(call, "memo: at most 140 characters of UTF-8 text");
        uint64_t to = 0;
        if (req->recipient_case == SHAREBUY__WALLET__V1__TRANSFER_REQUEST__RECIPIENT_TO_REFERRAL_CODE) {
                if ((st = transfer_resolve_code(call, req->to_referral_code, &to)) != SB_OK)
                        return st;
        } else if (req->recipient_case == SHAREBUY__WALLET__V1__TRANSFER_REQUEST__RECIPIENT_TO_MEMBER_ID &&
                   req->to_member_id != 0) {
                to = req->to_member_id;
        } else {
                return invalid(call, "recipient: to_member_id or to_referral_code");
        }
        if (to == claims.uid)
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_SELF_TRANSFER",
                                           "member %" PRIu64 " cannot give SP to itself", claims.uid);
        wallet_tx *tx = new_tx(call);
        snprintf(tx->scope, sizeof tx->scope, "tr:%" PRIu64, claims.uid);
        snprintf(tx->key, sizeof tx->key, "%s", req->idempotency_key);
        snprintf(tx->memo, sizeof tx->memo, "%s", req->memo);
        /* The transfer id: stable for the sender's key, so a retry names the same transfer. */
        uint8_t h[WALLET_HASH_BYTES];
        wallet_tx probe = {0};
        memcpy(probe.scope, tx->scope, sizeof probe.scope);
        memcpy(probe.key, tx->key, sizeof probe.key);
        wallet_request_hash(&probe, h);
        char hex[2 * WALLET_HASH_BYTES + 1];
        wallet_hash_hex(h, hex);
        tx->cause_kind = WALLET_CAUSE_TRANSFER;
        tx->cause_ref[0] = 't';
        memcpy(tx->cause_ref + 1, hex, 16);
        tx->cause_ref[17] = '\0';
        tx->n_legs = 2;
        tx->legs[0] = (wallet_leg){.ref = {WALLET_OWNER_MEMBER, claims.uid, WALLET_ASSET_SP},
                                   .amount = -req->sp_units, .reason = WALLET_REASON_TRANSFER};
        tx->legs[1] = (wallet_leg){.ref = {WALLET_OWNER_MEMBER, to, WALLET_ASSET_SP},
                                   .amount = req->sp_units, .reason = WALLET_REASON_TRANSFER};
        sb_db *db = db_for(call, &st);
        if (!db)
                return st;
        wallet_problem p = {0};
        bool replayed = false;
        int r = post_tx(call, db, tx, &replayed, &p);
        if (r == WALLET_EREFUSED && p.kind == WALLET_P_NOT_FOUND)
                return sb_call_fail_reason(call, SB_NOT_FOUND, "REASON_MEMBER_UNKNOWN",
                                           "member %" PRIu64 " has no SP account", to);
        if (r == WALLET_EREFUSED && p.kind == WALLET_P_EXISTS)
                return sb_call_fail_reason(call, SB_ALREADY_EXISTS, "REASON_IDEMPOTENCY_KEY_REUSED",
                                           "the key \"%s\" was used for a different transfer", req->idempotency_key);
        if (r < 0)
                return fail_store(call, r, &p, "posting the transfer");
        resp->transfer_id = sb_call_strdup(call, tx->cause_ref);
        resp->transaction_id = tx->tx_id;
        resp->from_member_id = claims.uid;
        resp->to_member_id = to;
        resp->to_masked_phone = transfer_masked_phone(call, to);
        resp->sp_units = req->sp_units;
        for (size_t i = 0; i < tx->n_legs; i++)
                if (tx->legs[i].ref.owner_id == claims.uid && tx->legs[i].amount < 0)
                        resp->balance_after_sp_units = tx->legs[i].balance_after;
        resp->transferred_unix_ms = tx->posted_ms;
        resp->replayed = replayed;
        return SB_OK;
}

/* --- Guide price, supply, verify ----------------------------------------------------------------------------- */

static Sharebuy__Wallet__V1__GuidePrice *price_to_proto(sb_call *call, const wallet_price *p,
                                                        Sharebuy__Wallet__V1__GuidePrice *g) {
        if (!g) {
                g = sb_call_alloc(call, sizeof *g);
                sharebuy__wallet__v1__guide_price__init(g);
        }
        g->business_day = sb_call_strdup(call, p->business_day);
        g->price_micro_yuan = p->price_micro;
        g->backing_pool_fen = p->pool_fen;
        g->circulating_sp_units = p->circulating_sp;
        g->initial_price = p->initial;
        g->fixed_by_airdrop_day = sb_call_strdup(call, p->fixed_by);
        g->fixed_unix_ms = p->fixed_ms;
        return g;
}

static sb_status h_get_guide_price(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Wallet__V1__GetGuidePriceRequest *req = (const void *) req_;
        char day[WALLET_DAY_LEN + 1];
        sb_status st;
        if (req->business_day && *req->business_day) {
                if (!wallet_day_valid(req->business_day))
                        return invalid(call, "business_day: \"YYYY-MM-DD\"");
                snprintf(day, sizeof day, "%s", req->business_day);
        } else
                today(call, day);
        sb_db *db = db_for(call, &st);
        if (!db)
                return st;
        wallet_price p;
        int r = wallet_price_get(db, day, &p);
        if (r == -ENOENT)
                return sb_call_fail(call, SB_NOT_FOUND, "the guide price of %s is not fixed yet (its airdrop has not run)",
                                    day);
        if (r < 0)
                return sb_service_db_fail(call, r, "reading the guide price");
        price_to_proto(call, &p, (void *) resp_);
        return SB_OK;
}

#define PRICES_PAGE_MAX 1000

static sb_status h_list_guide_prices(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Wallet__V1__ListGuidePricesRequest *req = (const void *) req_;
        Sharebuy__Wallet__V1__ListGuidePricesResponse *resp = (void *) resp_;
        sb_status st;
        const char *from = req->from_day ? req->from_day : "", *to = req->to_day ? req->to_day : "";
        if ((*from && !wallet_day_valid(from)) || (*to && !wallet_day_valid(to)))
                return invalid(call, "from_day / to_day: \"YYYY-MM-DD\"");
        if (*from && *to && strcmp(from, to) > 0)
                return invalid(call, "from_day is after to_day");
        size_t size = req->page && req->page->page_size ? req->page->page_size : 50;
        if (size > PRICES_PAGE_MAX)
                size = PRICES_PAGE_MAX;
        /* The token is the last day shown, with the filters it is bound to: "p1|<day>|<from>|<to>". */
        char before[WALLET_DAY_LEN + 1] = "";
        if (req->page && req->page->page_token && *req->page->page_token) {
                char want[64];
                const char *tok = req->page->page_token;
                if (strlen(tok) < 14 || strncmp(tok, "p1|", 3) != 0)
                        return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_PAGE_TOKEN_INVALID",
                                                   "bad page token");
                memcpy(before, tok + 3, WALLET_DAY_LEN);
                snprintf(want, sizeof want, "p1|%s|%s|%s", before, from, to);
                if (!wallet_day_valid(before) || strcmp(want, tok) != 0)
                        return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_PAGE_TOKEN_INVALID",
                                                   "bad page token (or other filters than the first page's)");
        }
        sb_db *db = db_for(call, &st);
        if (!db)
                return st;
        wallet_price *ps = sb_call_alloc(call, (size + 1) * sizeof *ps);
        size_t n;
        int r = wallet_price_list(db, from, to, before, ps, size + 1, &n);
        if (r < 0)
                return sb_service_db_fail(call, r, "listing guide prices");
        size_t shown = n > size ? size : n;
        resp->prices = sb_call_alloc(call, (shown ? shown : 1) * sizeof *resp->prices);
        for (size_t i = 0; i < shown; i++)
                resp->prices[i] = price_to_proto(call, &ps[i], NULL);
        resp->n_prices = shown;
        Sharebuy__Common__V1__PageInfo *pi = sb_call_alloc(call, sizeof *pi);
        sharebuy__common__v1__page_info__init(pi);
        pi->next_page_token = n > size ? sb_call_printf(call, "p1|%s|%s|%s", ps[shown - 1].business_day, from, to)
                                       : "";
        resp->page = pi;
        return SB_OK;
}

static sb_status h_fix_guide_price(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Wallet__V1__FixGuidePriceRequest *req = (const void *) req_;
        Sharebuy__Wallet__V1__FixGuidePriceResponse *resp = (void *) resp_;
        sb_status st;
        if ((st = sb_service_auth(call, SVC_ROLES | ADMIN_ROLES, NULL)) != SB_OK)
                return st;
        if (!wallet_day_valid(req->business_day) || !wallet_day_valid(req->fixed_by_airdrop_day))
                return invalid(call, "business_day and fixed_by_airdrop_day: \"YYYY-MM-DD\"");
        if (strcmp(req->business_day, req->fixed_by_airdrop_day) <= 0)
                return invalid(call, "business_day must come after fixed_by_airdrop_day");
        sb_db *db = db_for(call, &st);
        if (!db)
                return st;
        wallet_price p;
        bool replayed;
        int r = wallet_price_fix(db, req->business_day, req->fixed_by_airdrop_day, state(call)->initial_price_micro,
                                 now_ms(), &p, &replayed);
        if (r < 0)
                return sb_service_db_fail(call, r, "fixing the guide price");
        resp->price = price_to_proto(call, &p, NULL);
        resp->replayed = replayed;
        return SB_OK;
}

static void supply_to_proto(const wallet_supply *su, Sharebuy__Wallet__V1__Supply *s) {
        s->cap_sp_units = su->cap;
        s->unreleased_sp_units = su->unreleased;
        s->treasury_sp_units = su->treasury;
        s->held_sp_units = su->held;
        s->burned_sp_units = su->burned;
        s->circulating_sp_units = su->circulating;
        s->released_sp_units = su->released;
        s->backing_pool_fen = su->pool_fen;
        s->as_of_unix_ms = now_ms();
}

static sb_status h_get_supply(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        sb_status st;
        sb_db *db = db_for(call, &st);
        if (!db)
                return st;
        wallet_supply su;
        int r = wallet_ledger_supply(db, &su);
        if (r < 0)
                return sb_service_db_fail(call, r, "reading the supply");
        supply_to_proto(&su, (void *) resp_);
        return SB_OK;
}

static sb_status h_verify_ledger(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Wallet__V1__VerifyLedgerRequest *req = (const void *) req_;
        Sharebuy__Wallet__V1__VerifyLedgerResponse *resp = (void *) resp_;
        sb_status st;
        if ((st = sb_service_auth(call, ADMIN_ROLES, NULL)) != SB_OK)
                return st;
        sb_db *db = db_for(call, &st);
        if (!db)
                return st;
        int64_t t0 = now_ms();
        wallet_verify_report *rep = sb_call_alloc(call, sizeof *rep);
        int r = wallet_ledger_verify(db, req->from_transaction_id, rep);
        if (r < 0)
                return sb_service_db_fail(call, r, "verifying the ledger");
        resp->ok = rep->ok;
        resp->n_problems = rep->n_problems;
        resp->problems = sb_call_alloc(call, (rep->n_problems ? rep->n_problems : 1) * sizeof(char *));
        for (size_t i = 0; i < rep->n_problems; i++)
                resp->problems[i] = rep->problems[i];
        resp->transactions_checked = rep->transactions_checked;
        resp->accounts_checked = rep->accounts_checked;
        resp->last_transaction_id = rep->last_tx_id;
        char hex[2 * WALLET_HASH_BYTES + 1];
        wallet_hash_hex(rep->last_hash, hex);
        resp->last_chain_hash_hex = sb_call_strdup(call, hex);
        Sharebuy__Wallet__V1__Supply *s = sb_call_alloc(call, sizeof *s);
        sharebuy__wallet__v1__supply__init(s);
        supply_to_proto(&rep->supply, s);
        resp->supply = s;
        resp->duration_ms = now_ms() - t0;
        return SB_OK;
}

/* --- The service --------------------------------------------------------------------------------------------- */

static const sb_rpc_method wallet_methods[] = {
        {"OpenAccounts", h_open_accounts},
        {"PostTransaction", h_post_transaction},
        {"ReverseTransaction", h_reverse_transaction},
        {"GetTransaction", h_get_transaction},
        {"GetBalances", h_get_balances},
        {"ListStatement", wallet_h_list_statement},
        {"Transfer", h_transfer},
        {"GetGuidePrice", h_get_guide_price},
        {"ListGuidePrices", h_list_guide_prices},
        {"GetSupply", h_get_supply},
        {"BuyDeposit", wallet_h_buy_deposit},
        {"ConfirmPayment", wallet_h_confirm_payment},
        {"CancelDepositPurchase", wallet_h_cancel_purchase},
        {"GetDepositPurchase", wallet_h_get_purchase},
        {"ListDepositPurchases", wallet_h_list_purchases},
        {"VerifyLedger", h_verify_ledger},
        {"FixGuidePrice", h_fix_guide_price},
        {"ApplyAirdropChunk", wallet_h_apply_airdrop_chunk},
};

/* The economy's settings that the ledger uses; the rest keep economics.md's defaults for the validator. */
static const sb_config_key wallet_keys[] = {
        {"wallet.cap_sp_units", SB_CONFIG_INT, "9723600000", 1, SB_ECON_MAX_SUPPLY_SP, true, false,
         "the SP cap in 0.0001 SP (economics.md: cap), created at the genesis and never changed"},
        {"wallet.treasury_sp_units", SB_CONFIG_INT, "0", 0, SB_ECON_MAX_SUPPLY_SP, true, false,
         "the part of the cap set aside as the treasury, in 0.0001 SP"},
        {"wallet.initial_price_micro_yuan", SB_CONFIG_INT, "1000000", 1, SB_ECON_MAX_PRICE_MICRO, true, false,
         "the guide price before any SP circulates (micro-yuan per SP)"},
        {"wallet.deposit_min_fen", SB_CONFIG_INT, "50000", 0, INT64_C(100000000000), true, false,
         "the smallest deposit value a merchant must hold after a treasury order (fen)"},
        {"wallet.utc_offset_min", SB_CONFIG_INT, "480", -840, 840, true, false,
         "the deployment's time zone, minutes east of UTC (Asia/Shanghai: 480)"},
        {"wallet.cutoff_min", SB_CONFIG_INT, "1320", 0, 1439, true, false,
         "the daily airdrop cut-off that ends a business day, minutes after local midnight (22:00 = 1320)"},
        {"wallet.group_commit", SB_CONFIG_BOOL, "true", 0, 0, true, false,
         "book PostTransaction calls that arrive together in one database transaction (docs/wallet.md)"},
        {"wallet.group_leaders", SB_CONFIG_INT, "2", 1, SB_BATCH_LEADERS_MAX, true, false,
         "with group_commit: how many groups of postings may be booked at once (docs/wallet.md)"},
};

static int wallet_init(const sb_config *cfg, void **ret_state, char *err, size_t err_n) {
        sb_econ_settings s = sb_econ_settings_default();
        s.cap_sp = sb_config_int(cfg, "wallet.cap_sp_units");
        s.treasury_sp = sb_config_int(cfg, "wallet.treasury_sp_units");
        s.initial_price_micro = sb_config_int(cfg, "wallet.initial_price_micro_yuan");
        s.deposit_min_fen = sb_config_int(cfg, "wallet.deposit_min_fen");
        s.release_minute_of_day = sb_config_int(cfg, "wallet.cutoff_min");
        /* D must fit the airdrop's part of the cap for the validator; the airdrop service owns D itself. */
        if (s.daily_release_sp > s.cap_sp - s.treasury_sp && s.cap_sp - s.treasury_sp > 0)
                s.daily_release_sp = s.cap_sp - s.treasury_sp;
        char why[256];
        if (sb_econ_settings_validate(&s, why, sizeof why) < 0) {
                snprintf(err, err_n, "wallet settings refused by the economy validator: %s", why);
                return -EINVAL;
        }
        wallet_state *st = calloc(1, sizeof *st);
        if (!st)
                return -ENOMEM;
        st->ledger = (wallet_ledger_cfg){.cap_sp = s.cap_sp,
                                         .treasury_sp = s.treasury_sp,
                                         .utc_offset_min = (int) sb_config_int(cfg, "wallet.utc_offset_min"),
                                         .cutoff_min = (int) sb_config_int(cfg, "wallet.cutoff_min")};
        st->initial_price_micro = s.initial_price_micro;
        st->deposit_min_fen = s.deposit_min_fen;
        atomic_init(&st->genesis_done, false);
        if (sb_batch_init(&st->posts, WALLET_GROUP_MAX, (unsigned) sb_config_int(cfg, "wallet.group_leaders"),
                          sb_config_bool(cfg, "wallet.group_commit"), post_single, post_group, st) < 0) {
                free(st);
                return -EINVAL;
        }
        sb_metrics_registry *reg = sb_service_metrics();
        if (reg) {
                if (sb_metrics_plain(reg, "sharebuy_wallet_post_groups_total",
                                     "groups of PostTransaction calls booked in one database transaction",
                                     SB_METRICS_COUNTER, &st->m_groups) < 0 ||
                    sb_metrics_plain(reg, "sharebuy_wallet_post_grouped_total",
                                     "PostTransaction calls booked as part of a group", SB_METRICS_COUNTER,
                                     &st->m_grouped) < 0)
                        st->m_groups = st->m_grouped = NULL;
        }
        *ret_state = st;
        return 0;
}

static void wallet_fini(void *arg) {
        wallet_state *st = arg;
        sb_batch_fini(&st->posts);
        free(st);
}

/* For the treasury and statement handlers in their own files. */
sb_db *wallet_call_db(sb_call *call, sb_status *ret_fail) {
        return db_for(call, ret_fail);
}

const wallet_ledger_cfg *wallet_call_ledger(sb_call *call) {
        return &state(call)->ledger;
}

int64_t wallet_call_initial_price(sb_call *call) {
        return state(call)->initial_price_micro;
}

int64_t wallet_call_deposit_min(sb_call *call) {
        return state(call)->deposit_min_fen;
}

int64_t wallet_now_ms(void) {
        return now_ms();
}

sb_status wallet_fail_store(sb_call *call, int r, const wallet_problem *p, const char *what) {
        return fail_store(call, r, p, what);
}

bool wallet_owns(const sb_claims *c, int kind, uint64_t id) {
        return owns(c, kind, id);
}

bool wallet_own_owner(const sb_claims *c, int *kind, uint64_t *id) {
        return own_owner(c, kind, id);
}

const sb_service_def wallet_service = {
        .name = "wallet",
        .desc = &sharebuy__wallet__v1__wallet__descriptor,
        .methods = wallet_methods,
        .n_methods = sizeof wallet_methods / sizeof wallet_methods[0],
        .default_port = 50052,
        .default_metrics_port = 9152,
        .extra_keys = wallet_keys,
        .n_extra_keys = sizeof wallet_keys / sizeof wallet_keys[0],
        .init = wallet_init,
        .fini = wallet_fini,
};
