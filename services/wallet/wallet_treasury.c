/* wallet_treasury: deposit purchases from the treasury. See wallet_treasury.h and docs/wallet.md. */
#include "wallet_treasury.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "sharebuy/merchant/v1/merchant.pb-c.h"
#include "sharebuy/wallet/v1/wallet.pb-c.h"
#include "units.h"
#include "wallet_prices.h"

#define TRY(x)                                                                                                       \
        do {                                                                                                         \
                int r_ = (x);                                                                                        \
                if (r_ < 0)                                                                                          \
                        return r_;                                                                                   \
        } while (0)

#define AMOUNT_FEN_MAX INT64_C(100000000000000) /* 10^12 yuan: beyond any real order */
#define PURCHASES_PAGE_MAX 500

enum { ST_PENDING = 1, ST_PAID = 2, ST_CANCELLED = 3, ST_EXPIRED = 4 };

typedef struct purchase {
        uint64_t id, merchant_id, tx_id;
        int64_t sp, price, amount_fen, created_ms, expires_ms, paid_ms;
        int status;
        char day[WALLET_DAY_LEN + 1];
        char payment_ref[WALLET_KEY_MAX + 1];
        uint8_t request_hash[WALLET_HASH_BYTES];
} purchase;

#define PURCHASE_COLS "purchase_id, merchant_id, sp_units, price_micro_yuan, amount_fen, status, business_day," \
                      " created_ms, expires_ms, paid_ms, COALESCE(payment_reference, ''), tx_id, request_hash"

static int read_purchase(sb_db_stmt *s, purchase *p) {
        int64_t status;
        memset(p, 0, sizeof *p);
        if (sb_db_col_u64(s, 0, &p->id) < 0 || sb_db_col_u64(s, 1, &p->merchant_id) < 0 ||
            sb_db_col_i64(s, 2, &p->sp) < 0 || sb_db_col_i64(s, 3, &p->price) < 0 ||
            sb_db_col_i64(s, 4, &p->amount_fen) < 0 || sb_db_col_i64(s, 5, &status) < 0 ||
            sb_db_col_str(s, 6, p->day, sizeof p->day) < 0 || sb_db_col_i64(s, 7, &p->created_ms) < 0 ||
            sb_db_col_i64(s, 8, &p->expires_ms) < 0 || sb_db_col_i64(s, 9, &p->paid_ms) < 0 ||
            sb_db_col_str(s, 10, p->payment_ref, sizeof p->payment_ref) < 0 || sb_db_col_u64(s, 11, &p->tx_id) < 0 ||
            sb_db_col_blob(s, 12, p->request_hash, WALLET_HASH_BYTES) != WALLET_HASH_BYTES)
                return -EIO;
        p->status = (int) status;
        return 0;
}

/* One purchase by a statement with its parameters bound; -ENOENT when none. */
static int one_purchase(sb_db_stmt *s, purchase *ret) {
        purchase p;
        TRY(sb_db_execute(s));
        int r = sb_db_fetch(s);
        if (r <= 0)
                return r < 0 ? r : -ENOENT;
        TRY(read_purchase(s, &p));
        while ((r = sb_db_fetch(s)) > 0)
                ;
        if (r < 0)
                return r;
        *ret = p;
        return 0;
}

static int load_purchase(sb_db *db, uint64_t id, bool lock, purchase *ret) {
        sb_db_stmt *s;
        TRY(sb_db_prepare(db,
                          lock ? "SELECT " PURCHASE_COLS " FROM purchases WHERE purchase_id = ? FOR UPDATE"
                               : "SELECT " PURCHASE_COLS " FROM purchases WHERE purchase_id = ?",
                          &s));
        TRY(sb_db_bind_u64(s, 0, id));
        return one_purchase(s, ret);
}

/* SP units × micro-yuan per SP → fen: ÷ (10^4 units per SP × 10^4 micro-yuan per fen). */
#define SP_PRICE_TO_FEN (SB_SP_SCALE * SB_MICRO_PER_FEN)

static Sharebuy__Wallet__V1__DepositPurchase *purchase_to_proto(sb_call *call, const purchase *p, int64_t now,
                                                                 int64_t deposit_now) {
        Sharebuy__Wallet__V1__DepositPurchase *d = sb_call_alloc(call, sizeof *d);
        sharebuy__wallet__v1__deposit_purchase__init(d);
        d->purchase_id = p->id;
        d->merchant_id = p->merchant_id;
        d->sp_units = p->sp;
        d->price_micro_yuan = p->price;
        d->amount_fen = p->amount_fen;
        /* An unpaid order past the cut-off is expired, whether or not anyone has written that down. */
        int status = p->status == ST_PENDING && now >= p->expires_ms ? ST_EXPIRED : p->status;
        d->status = (Sharebuy__Wallet__V1__PurchaseStatus) status;
        d->business_day = sb_call_strdup(call, p->day);
        d->created_unix_ms = p->created_ms;
        d->expires_unix_ms = p->expires_ms;
        d->paid_unix_ms = p->paid_ms;
        d->payment_reference = sb_call_strdup(call, p->payment_ref);
        d->transaction_id = p->tx_id;
        if (deposit_now >= 0) {
                int64_t after = deposit_now, value = 0;
                if (p->status != ST_PAID && sb_add_i64(deposit_now, p->sp, &after) < 0)
                        after = deposit_now;
                if (sb_muldiv_i64(after, p->price, SP_PRICE_TO_FEN, SB_ROUND_DOWN, &value) < 0)
                        value = 0;
                d->deposit_after_sp_units = after;
                d->deposit_after_value_fen = value;
        }
        return d;
}

static int64_t merchant_sp(sb_db *db, uint64_t merchant, int *ret_err) {
        wallet_balance b[3];
        int r = wallet_ledger_balances(db, WALLET_OWNER_MERCHANT, merchant, b);
        *ret_err = r;
        return r < 0 ? -1 : b[2].balance;
}

static void request_hash(uint64_t merchant, const char *key, int qcase, int64_t qty, uint8_t out[WALLET_HASH_BYTES]) {
        char buf[160];
        int n = snprintf(buf, sizeof buf, "buy|%" PRIu64 "|%s|%d|%" PRId64, merchant, key, qcase, qty);
        crypto_hash_sha256(out, (const unsigned char *) buf, (unsigned long long) n);
}

#define MERCHANT_DEADLINE_MS 5000

/* Whether the merchant may order deposit: asks the merchant service (Merchant/GetMerchant with the wallet's SERVICE
 * credential) and refuses a merchant that is unknown (NOT_FOUND), not approved (REASON_MERCHANT_NOT_APPROVED) or
 * suspended (REASON_MERCHANT_SUSPENDED). When the merchant service does not answer the order is refused as
 * UNAVAILABLE: a deposit is never sold to a merchant whose state is unknown. Returns SB_OK or the failed status. */
static sb_status merchant_may_buy(sb_call *call, uint64_t merchant) {
        Sharebuy__Merchant__V1__GetMerchantRequest rq = SHAREBUY__MERCHANT__V1__GET_MERCHANT_REQUEST__INIT;
        rq.merchant_id = merchant;
        ProtobufCMessage *out = NULL;
        char msg[256];
        sb_status s = sb_service_call(call, "merchant", "/sharebuy.merchant.v1.Merchant/GetMerchant", &rq.base,
                                      &sharebuy__merchant__v1__merchant_profile__descriptor, MERCHANT_DEADLINE_MS, &out,
                                      msg, sizeof msg);
        if (s == SB_NOT_FOUND)
                return sb_call_fail(call, SB_NOT_FOUND, "no merchant with id %" PRIu64, merchant);
        if (s == SB_UNAVAILABLE || s == SB_DEADLINE_EXCEEDED || s == SB_RESOURCE_EXHAUSTED)
                return sb_call_fail_reason(call, SB_UNAVAILABLE, "REASON_DEPENDENCY_UNAVAILABLE",
                                           "the merchant service did not answer whether merchant %" PRIu64
                                           " may buy deposit (%s); retry with the same key",
                                           merchant, msg);
        if (s != SB_OK)
                return sb_call_fail(call, SB_INTERNAL, "the merchant service refused the merchant look-up: %s (request %s)",
                                    msg, sb_call_request_id(call));
        Sharebuy__Merchant__V1__MerchantStatus status = ((const Sharebuy__Merchant__V1__MerchantProfile *) out)->status;
        protobuf_c_message_free_unpacked(out, NULL);
        if (status == SHAREBUY__MERCHANT__V1__MERCHANT_STATUS__MERCHANT_STATUS_APPROVED)
                return SB_OK;
        if (status == SHAREBUY__MERCHANT__V1__MERCHANT_STATUS__MERCHANT_STATUS_SUSPENDED)
                return sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_MERCHANT_SUSPENDED",
                                           "merchant %" PRIu64 " is suspended and cannot buy deposit", merchant);
        return sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_MERCHANT_NOT_APPROVED",
                                   "merchant %" PRIu64 " is not approved and cannot buy deposit", merchant);
}

sb_status wallet_h_buy_deposit(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Wallet__V1__BuyDepositRequest *req = (const void *) req_;
        Sharebuy__Wallet__V1__BuyDepositResponse *resp = (void *) resp_;
        sb_claims claims;
        sb_status st;
        if ((st = sb_service_auth(call, SB_ROLES(SB_ROLE_MERCHANT_OWNER) | SB_ROLES(SB_ROLE_ADMIN), &claims)) != SB_OK)
                return st;
        uint64_t merchant = claims.merchant_id;
        if (claims.role == SB_ROLE_ADMIN)
                merchant = req->merchant_id;
        else if (req->merchant_id && req->merchant_id != claims.merchant_id)
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                           "merchant_id is for admins; a merchant owner buys for its own merchant");
        if (merchant == 0)
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID", "merchant_id: required");
        if (!wallet_key_valid(req->idempotency_key, WALLET_KEY_MAX))
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                           "idempotency_key: 1 to 64 printable ASCII characters");
        int64_t qty;
        if (req->quantity_case == SHAREBUY__WALLET__V1__BUY_DEPOSIT_REQUEST__QUANTITY_SP_UNITS)
                qty = req->sp_units;
        else if (req->quantity_case == SHAREBUY__WALLET__V1__BUY_DEPOSIT_REQUEST__QUANTITY_AMOUNT_FEN)
                qty = req->amount_fen;
        else
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                           "give sp_units or amount_fen");
        if (qty <= 0 || qty > (req->quantity_case == SHAREBUY__WALLET__V1__BUY_DEPOSIT_REQUEST__QUANTITY_SP_UNITS
                                       ? WALLET_AMOUNT_MAX
                                       : AMOUNT_FEN_MAX))
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_AMOUNT_OUT_OF_RANGE",
                                           "the quantity %" PRId64 " is not a positive, sensible amount", qty);
        sb_db *db = wallet_call_db(call, &st);
        if (!db)
                return st;
        int64_t now = wallet_now_ms();
        const wallet_ledger_cfg *lc = wallet_call_ledger(call);
        uint8_t rh[WALLET_HASH_BYTES];
        request_hash(merchant, req->idempotency_key, (int) req->quantity_case, qty, rh);

        /* A replay answers with the stored order, whatever the price is now. */
        sb_db_stmt *s;
        int r = sb_db_prepare(db, "SELECT " PURCHASE_COLS " FROM purchases WHERE merchant_id = ? AND idem_key = ?", &s);
        purchase p;
        if (r >= 0 && (r = sb_db_bind_u64(s, 0, merchant)) >= 0 && (r = sb_db_bind_str(s, 1, req->idempotency_key)) >= 0)
                r = one_purchase(s, &p);
        if (r == 0 && !req->validate_only) {
                if (memcmp(p.request_hash, rh, sizeof rh) != 0)
                        return sb_call_fail_reason(call, SB_ALREADY_EXISTS, "REASON_IDEMPOTENCY_KEY_REUSED",
                                                   "the key \"%s\" was used for a different order (%" PRIu64 ")",
                                                   req->idempotency_key, p.id);
                int err;
                int64_t dep = merchant_sp(db, merchant, &err);
                resp->purchase = purchase_to_proto(call, &p, now, dep);
                resp->replayed = true;
                resp->deposit_min_fen = wallet_call_deposit_min(call);
                return SB_OK;
        }
        if (r < 0 && r != -ENOENT)
                return sb_service_db_fail(call, r, "reading the order");
        /* A new order (or a validation) only: a replay above answers with the stored order whatever the merchant's
         * state is now, as every idempotent answer does. */
        if ((st = merchant_may_buy(call, merchant)) != SB_OK)
                return st;

        char day[WALLET_DAY_LEN + 1];
        if (wallet_business_day(now, lc->utc_offset_min, lc->cutoff_min, day) < 0)
                return sb_call_fail(call, SB_INTERNAL, "the clock is out of range");
        wallet_price price;
        if ((r = wallet_price_in_force(db, day, wallet_call_initial_price(call), &price)) < 0)
                return sb_service_db_fail(call, r, "reading the guide price");
        int64_t sp, amount;
        if (req->quantity_case == SHAREBUY__WALLET__V1__BUY_DEPOSIT_REQUEST__QUANTITY_SP_UNITS)
                sp = qty;
        else if (sb_muldiv_i64(qty, SP_PRICE_TO_FEN, price.price_micro, SB_ROUND_DOWN, &sp) < 0)
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_AMOUNT_OUT_OF_RANGE", "amount too large");
        if (sp <= 0)
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_AMOUNT_OUT_OF_RANGE",
                                           "%" PRId64 " fen buys no SP at the price of %" PRId64 " micro-yuan", qty,
                                           price.price_micro);
        if (sb_muldiv_i64(sp, price.price_micro, SP_PRICE_TO_FEN, SB_ROUND_UP, &amount) < 0 || amount > AMOUNT_FEN_MAX)
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_AMOUNT_OUT_OF_RANGE", "amount too large");

        int err;
        int64_t dep = merchant_sp(db, merchant, &err);
        if (err == -ENOENT)
                return sb_call_fail(call, SB_NOT_FOUND, "merchant %" PRIu64 " has no ledger accounts (not approved)",
                                    merchant);
        if (err < 0)
                return sb_service_db_fail(call, err, "reading the deposit");
        int64_t after, after_value, min = wallet_call_deposit_min(call);
        if (sb_add_i64(dep, sp, &after) < 0 ||
            sb_muldiv_i64(after, price.price_micro, SP_PRICE_TO_FEN, SB_ROUND_DOWN, &after_value) < 0)
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_AMOUNT_OUT_OF_RANGE", "amount too large");
        if (after_value < min) {
                int64_t need_total = 0, need_fen = 0;
                sb_muldiv_i64(min, SP_PRICE_TO_FEN, price.price_micro, SB_ROUND_UP, &need_total);
                int64_t need = need_total - dep;
                sb_muldiv_i64(need, price.price_micro, SP_PRICE_TO_FEN, SB_ROUND_UP, &need_fen);
                return sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_DEPOSIT_BELOW_MINIMUM",
                                           "merchant %" PRIu64 "'s deposit would be worth %" PRId64 " fen, below the "
                                           "minimum of %" PRId64 " fen; the smallest order is %" PRId64
                                           " SP units (%" PRId64 " fen)",
                                           merchant, after_value, min, need, need_fen);
        }
        int64_t treasury;
        if ((r = wallet_ledger_account_balance(db, WALLET_SYS_SP_TREASURY, &treasury)) < 0)
                return sb_service_db_fail(call, r, "reading the treasury");
        if (treasury < sp)
                return sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_TREASURY_INSUFFICIENT",
                                           "the treasury holds %" PRId64 " SP units, fewer than the %" PRId64
                                           " ordered",
                                           treasury, sp);
        memset(&p, 0, sizeof p);
        p.merchant_id = merchant;
        p.sp = sp;
        p.price = price.price_micro;
        p.amount_fen = amount;
        p.status = ST_PENDING;
        memcpy(p.day, day, sizeof p.day);
        p.created_ms = now;
        if (wallet_business_day_end(day, lc->utc_offset_min, lc->cutoff_min, &p.expires_ms) < 0)
                return sb_call_fail(call, SB_INTERNAL, "bad business day");
        resp->deposit_min_fen = min;
        if (req->validate_only) {
                resp->purchase = purchase_to_proto(call, &p, now, dep);
                return SB_OK;
        }
        if ((r = sb_db_prepare(db,
                               "INSERT INTO purchases (merchant_id, idem_key, request_hash, sp_units, price_micro_yuan,"
                               " amount_fen, status, business_day, created_ms, expires_ms)"
                               " VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
                               &s)) < 0 ||
            (r = sb_db_bind_u64(s, 0, merchant)) < 0 || (r = sb_db_bind_str(s, 1, req->idempotency_key)) < 0 ||
            (r = sb_db_bind_blob(s, 2, rh, sizeof rh)) < 0 || (r = sb_db_bind_i64(s, 3, sp)) < 0 ||
            (r = sb_db_bind_i64(s, 4, p.price)) < 0 || (r = sb_db_bind_i64(s, 5, amount)) < 0 ||
            (r = sb_db_bind_str(s, 6, day)) < 0 || (r = sb_db_bind_i64(s, 7, now)) < 0 ||
            (r = sb_db_bind_i64(s, 8, p.expires_ms)) < 0 || (r = sb_db_execute(s)) < 0) {
                if (r == -EEXIST)
                        return sb_call_fail(call, SB_ABORTED, "a concurrent order with the same key: retry");
                return sb_service_db_fail(call, r, "storing the order");
        }
        p.id = sb_db_insert_id(s);
        resp->purchase = purchase_to_proto(call, &p, now, dep);
        return SB_OK;
}

typedef struct confirm_ctx {
        const wallet_ledger_cfg *cfg;
        uint64_t id;
        const char *ref;
        int64_t paid_fen, paid_ms, now;
        purchase p;
        bool replayed;
        wallet_problem problem;
        wallet_tx *tx;
} confirm_ctx;

static int refuse(wallet_problem *p, wallet_problem_kind kind, const char *reason, const char *msg) {
        p->kind = kind;
        p->reason = reason;
        snprintf(p->msg, sizeof p->msg, "%s", msg);
        return WALLET_EREFUSED;
}

static int confirm_fn(sb_db *db, void *arg) {
        confirm_ctx *c = arg;
        sb_db_stmt *s;
        char msg[300];
        c->replayed = false;
        int r = load_purchase(db, c->id, true, &c->p);
        if (r == -ENOENT) {
                snprintf(msg, sizeof msg, "no deposit purchase %" PRIu64, c->id);
                return refuse(&c->problem, WALLET_P_NOT_FOUND, "REASON_UNSPECIFIED", msg);
        }
        if (r < 0)
                return r;
        /* The reference on another order: reused. */
        TRY(sb_db_prepare(db, "SELECT purchase_id FROM purchases WHERE payment_reference = ?", &s));
        TRY(sb_db_bind_str(s, 0, c->ref));
        TRY(sb_db_execute(s));
        uint64_t other = 0;
        while ((r = sb_db_fetch(s)) > 0)
                TRY(sb_db_col_u64(s, 0, &other));
        if (r < 0)
                return r;
        if (other && other != c->id) {
                snprintf(msg, sizeof msg, "payment reference \"%s\" was recorded for purchase %" PRIu64, c->ref, other);
                return refuse(&c->problem, WALLET_P_EXISTS, "REASON_IDEMPOTENCY_KEY_REUSED", msg);
        }
        if (c->p.status == ST_PAID) {
                if (strcmp(c->p.payment_ref, c->ref) == 0 && c->paid_fen == c->p.amount_fen) {
                        c->replayed = true;
                        return 0;
                }
                if (strcmp(c->p.payment_ref, c->ref) == 0) {
                        snprintf(msg, sizeof msg, "payment reference \"%s\" was recorded with %" PRId64 " fen",
                                 c->ref, c->p.amount_fen);
                        return refuse(&c->problem, WALLET_P_EXISTS, "REASON_IDEMPOTENCY_KEY_REUSED", msg);
                }
                snprintf(msg, sizeof msg, "purchase %" PRIu64 " was already paid under another reference", c->id);
                return refuse(&c->problem, WALLET_P_PRECONDITION, "REASON_WRONG_STATE", msg);
        }
        if (c->p.status == ST_CANCELLED) {
                snprintf(msg, sizeof msg, "purchase %" PRIu64 " was cancelled: refund the payment", c->id);
                return refuse(&c->problem, WALLET_P_PRECONDITION, "REASON_WRONG_STATE", msg);
        }
        if (c->now >= c->p.expires_ms || c->p.status == ST_EXPIRED) {
                snprintf(msg, sizeof msg, "purchase %" PRIu64 " expired at the cut-off of %s: refund the payment and order"
                                          " again", c->id, c->p.day);
                return refuse(&c->problem, WALLET_P_PRECONDITION, "REASON_PURCHASE_EXPIRED", msg);
        }
        if (c->paid_fen != c->p.amount_fen) {
                snprintf(msg, sizeof msg, "purchase %" PRIu64 " costs %" PRId64 " fen, the payment was %" PRId64 " fen",
                         c->id, c->p.amount_fen, c->paid_fen);
                return refuse(&c->problem, WALLET_P_PRECONDITION, "REASON_PAYMENT_MISMATCH", msg);
        }
        wallet_tx *tx = c->tx;
        memset(tx, 0, sizeof *tx);
        snprintf(tx->scope, sizeof tx->scope, "pay");
        snprintf(tx->key, sizeof tx->key, "%s", c->ref);
        tx->cause_kind = WALLET_CAUSE_TREASURY_PURCHASE;
        snprintf(tx->cause_ref, sizeof tx->cause_ref, "%" PRIu64, c->id);
        tx->cause_merchant = c->p.merchant_id;
        tx->n_legs = 4;
        tx->legs[0] = (wallet_leg){.ref = {WALLET_OWNER_SYSTEM, WALLET_SYS_SP_TREASURY, WALLET_ASSET_SP},
                                   .amount = -c->p.sp, .reason = WALLET_REASON_TREASURY_SP};
        tx->legs[1] = (wallet_leg){.ref = {WALLET_OWNER_MERCHANT, c->p.merchant_id, WALLET_ASSET_SP},
                                   .amount = c->p.sp, .reason = WALLET_REASON_TREASURY_SP};
        tx->legs[2] = (wallet_leg){.ref = {WALLET_OWNER_SYSTEM, WALLET_SYS_FEN_PAYMENTS_RECEIVED, WALLET_ASSET_FEN},
                                   .amount = -c->p.amount_fen, .reason = WALLET_REASON_TREASURY_PAYMENT};
        tx->legs[3] = (wallet_leg){.ref = {WALLET_OWNER_SYSTEM, WALLET_SYS_FEN_BACKING_POOL, WALLET_ASSET_FEN},
                                   .amount = c->p.amount_fen, .reason = WALLET_REASON_TREASURY_PAYMENT};
        char why[200];
        if (wallet_legs_check(tx->legs, tx->n_legs, false, 0, why, sizeof why) < 0)
                return refuse(&c->problem, WALLET_P_INVALID, "REASON_AMOUNT_OUT_OF_RANGE", why);
        c->problem.kind = WALLET_P_NONE;
        TRY(wallet_ledger_post_in_tx(db, c->cfg, tx, c->now, &c->problem));
        TRY(sb_db_prepare(db,
                          "UPDATE purchases SET status = 2, paid_ms = ?, payment_reference = ?, tx_id = ?"
                          " WHERE purchase_id = ?",
                          &s));
        TRY(sb_db_bind_i64(s, 0, c->paid_ms));
        TRY(sb_db_bind_str(s, 1, c->ref));
        TRY(sb_db_bind_u64(s, 2, tx->tx_id));
        TRY(sb_db_bind_u64(s, 3, c->id));
        TRY(sb_db_execute(s));
        c->p.status = ST_PAID;
        c->p.paid_ms = c->paid_ms;
        snprintf(c->p.payment_ref, sizeof c->p.payment_ref, "%s", c->ref);
        c->p.tx_id = tx->tx_id;
        return 0;
}

sb_status wallet_h_confirm_payment(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Wallet__V1__ConfirmPaymentRequest *req = (const void *) req_;
        Sharebuy__Wallet__V1__ConfirmPaymentResponse *resp = (void *) resp_;
        sb_status st;
        if ((st = sb_service_auth(call, SB_ROLES(SB_ROLE_SERVICE) | SB_ROLES(SB_ROLE_ADMIN), NULL)) != SB_OK)
                return st;
        if (!wallet_key_valid(req->payment_reference, WALLET_KEY_MAX))
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                           "payment_reference: 1 to 64 printable ASCII characters");
        if (req->paid_fen <= 0 || req->paid_fen > AMOUNT_FEN_MAX || req->purchase_id == 0)
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_AMOUNT_OUT_OF_RANGE",
                                           "purchase_id and a positive paid_fen are required");
        sb_db *db = wallet_call_db(call, &st);
        if (!db)
                return st;
        int64_t now = wallet_now_ms();
        confirm_ctx c = {.cfg = wallet_call_ledger(call), .id = req->purchase_id, .ref = req->payment_reference,
                         .paid_fen = req->paid_fen, .paid_ms = req->paid_unix_ms > 0 ? req->paid_unix_ms : now,
                         .now = now, .tx = sb_call_alloc(call, sizeof(wallet_tx))};
        int r = sb_db_tx(db, confirm_fn, &c);
        if (r == -EEXIST) /* the reference was taken concurrently: the retry sees by whom */
                r = sb_db_tx(db, confirm_fn, &c);
        if (r < 0)
                return wallet_fail_store(call, r, &c.problem, "recording the payment");
        int err;
        int64_t dep = merchant_sp(db, c.p.merchant_id, &err);
        resp->purchase = purchase_to_proto(call, &c.p, now, dep);
        resp->replayed = c.replayed;
        return SB_OK;
}

/* The purchase if the caller may see it; fails the call otherwise. */
static sb_status visible_purchase(sb_call *call, sb_db *db, const sb_claims *claims, uint64_t id, bool lock,
                                  purchase *p) {
        int r = load_purchase(db, id, lock, p);
        if (r == -ENOENT)
                return sb_call_fail(call, SB_NOT_FOUND, "no deposit purchase %" PRIu64, id);
        if (r < 0)
                return sb_service_db_fail(call, r, "reading the order");
        if (claims->role == SB_ROLE_MERCHANT_OWNER && claims->merchant_id != p->merchant_id)
                return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_SCOPE_MISMATCH",
                                           "purchase %" PRIu64 " is another merchant's", id);
        return SB_OK;
}

sb_status wallet_h_cancel_purchase(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Wallet__V1__CancelDepositPurchaseRequest *req = (const void *) req_;
        sb_claims claims;
        sb_status st;
        if ((st = sb_service_auth(call, SB_ROLES(SB_ROLE_MERCHANT_OWNER) | SB_ROLES(SB_ROLE_ADMIN), &claims)) != SB_OK)
                return st;
        if (req->reason && !wallet_utf8_valid(req->reason, WALLET_MEMO_CHARS_MAX))
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                           "reason: at most 200 characters of UTF-8 text");
        sb_db *db = wallet_call_db(call, &st);
        if (!db)
                return st;
        purchase p;
        if ((st = visible_purchase(call, db, &claims, req->purchase_id, false, &p)) != SB_OK)
                return st;
        if (p.status == ST_PAID)
                return sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_WRONG_STATE",
                                           "purchase %" PRIu64 " is paid and cannot be cancelled", p.id);
        if (p.status != ST_CANCELLED) {
                /* Only a pending order changes; a concurrent payment wins (the row's status is the guard). */
                sb_db_stmt *s;
                int r;
                if ((r = sb_db_prepare(db,
                                       "UPDATE purchases SET status = 3, cancel_reason = ? WHERE purchase_id = ?"
                                       " AND status = 1",
                                       &s)) < 0 ||
                    (r = sb_db_bind_str(s, 0, req->reason ? req->reason : "")) < 0 ||
                    (r = sb_db_bind_u64(s, 1, p.id)) < 0 || (r = sb_db_execute(s)) < 0)
                        return sb_service_db_fail(call, r, "cancelling the order");
                if (sb_db_affected_rows(s) == 0)
                        return sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_WRONG_STATE",
                                                   "purchase %" PRIu64 " was paid meanwhile", p.id);
                p.status = ST_CANCELLED;
        }
        Sharebuy__Wallet__V1__DepositPurchase *d = purchase_to_proto(call, &p, wallet_now_ms(), -1);
        d->base = ((Sharebuy__Wallet__V1__DepositPurchase *) resp_)->base;
        *(Sharebuy__Wallet__V1__DepositPurchase *) resp_ = *d;
        return SB_OK;
}

sb_status wallet_h_get_purchase(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Wallet__V1__GetDepositPurchaseRequest *req = (const void *) req_;
        sb_claims claims;
        sb_status st;
        if ((st = sb_service_auth(call,
                                  SB_ROLES(SB_ROLE_MERCHANT_OWNER) | SB_ROLES(SB_ROLE_ADMIN) | SB_ROLES(SB_ROLE_SERVICE),
                                  &claims)) != SB_OK)
                return st;
        sb_db *db = wallet_call_db(call, &st);
        if (!db)
                return st;
        purchase p;
        if ((st = visible_purchase(call, db, &claims, req->purchase_id, false, &p)) != SB_OK)
                return st;
        int err;
        int64_t dep = merchant_sp(db, p.merchant_id, &err);
        Sharebuy__Wallet__V1__DepositPurchase *d = purchase_to_proto(call, &p, wallet_now_ms(), dep);
        d->base = ((Sharebuy__Wallet__V1__DepositPurchase *) resp_)->base;
        *(Sharebuy__Wallet__V1__DepositPurchase *) resp_ = *d;
        return SB_OK;
}

sb_status wallet_h_list_purchases(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Wallet__V1__ListDepositPurchasesRequest *req = (const void *) req_;
        Sharebuy__Wallet__V1__ListDepositPurchasesResponse *resp = (void *) resp_;
        sb_claims claims;
        sb_status st;
        if ((st = sb_service_auth(call,
                                  SB_ROLES(SB_ROLE_MERCHANT_OWNER) | SB_ROLES(SB_ROLE_ADMIN) | SB_ROLES(SB_ROLE_SERVICE),
                                  &claims)) != SB_OK)
                return st;
        uint64_t merchant = req->merchant_id;
        if (claims.role == SB_ROLE_MERCHANT_OWNER) {
                if (merchant && merchant != claims.merchant_id)
                        return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_SCOPE_MISMATCH",
                                                   "these are another merchant's orders");
                merchant = claims.merchant_id;
        }
        int status = (int) req->status;
        if (status < 0 || status > ST_EXPIRED)
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID", "unknown status");
        size_t size = req->page && req->page->page_size ? req->page->page_size : 50;
        if (size > PURCHASES_PAGE_MAX)
                size = PURCHASES_PAGE_MAX;
        uint64_t before = UINT64_MAX;
        if (req->page && req->page->page_token && *req->page->page_token) {
                unsigned long long b, m;
                int stt, n = 0;
                if (sscanf(req->page->page_token, "q1.%llu.%llu.%d%n", &b, &m, &stt, &n) != 3 ||
                    req->page->page_token[n] != '\0' || m != merchant || stt != status || b == 0)
                        return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_PAGE_TOKEN_INVALID",
                                                   "bad page token (or other filters than the first page's)");
                before = b;
        }
        sb_db *db = wallet_call_db(call, &st);
        if (!db)
                return st;
        sb_db_stmt *s;
        int r;
        if ((r = sb_db_prepare(db,
                               "SELECT " PURCHASE_COLS " FROM purchases WHERE (? = 0 OR merchant_id = ?)"
                               " AND (? = 0 OR status = ?) AND purchase_id < ? ORDER BY purchase_id DESC LIMIT ?",
                               &s)) < 0 ||
            (r = sb_db_bind_u64(s, 0, merchant)) < 0 || (r = sb_db_bind_u64(s, 1, merchant)) < 0 ||
            (r = sb_db_bind_i64(s, 2, status)) < 0 || (r = sb_db_bind_i64(s, 3, status)) < 0 ||
            (r = sb_db_bind_u64(s, 4, before)) < 0 || (r = sb_db_bind_u64(s, 5, size + 1)) < 0 ||
            (r = sb_db_execute(s)) < 0)
                return sb_service_db_fail(call, r, "listing orders");
        resp->purchases = sb_call_alloc(call, (size + 1) * sizeof *resp->purchases);
        size_t n = 0;
        bool more = false;
        uint64_t last = 0;
        int64_t now = wallet_now_ms();
        while ((r = sb_db_fetch(s)) > 0) {
                purchase p;
                if (n == size) {
                        more = true;
                        continue;
                }
                if (read_purchase(s, &p) < 0)
                        return sb_service_db_fail(call, -EIO, "reading an order");
                resp->purchases[n++] = purchase_to_proto(call, &p, now, -1);
                last = p.id;
        }
        if (r < 0)
                return sb_service_db_fail(call, r, "listing orders");
        resp->n_purchases = n;
        Sharebuy__Common__V1__PageInfo *pi = sb_call_alloc(call, sizeof *pi);
        sharebuy__common__v1__page_info__init(pi);
        pi->next_page_token = more ? sb_call_printf(call, "q1.%" PRIu64 ".%" PRIu64 ".%d", last, merchant, status) : "";
        resp->page = pi;
        return SB_OK;
}
