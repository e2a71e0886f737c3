/* identity_activate: activation packs — Activate and RecordRepeatPack through the wallet, idempotent on the payment
 * reference. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "identity_internal.h"

#define AUD(x) SHAREBUY__IDENTITY__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_TYPE_##x
#define OWNER_MEMBER SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_MEMBER

enum { KIND_ACTIVATE = 1, KIND_REPEAT = 2 };

sb_status identity_list_activation_packs(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        Sharebuy__Identity__V1__ListActivationPacksResponse *resp = (void *)resp_;
        identity_state *st = identity_st(call);
        resp->packs = sb_call_alloc(call, sizeof *resp->packs * (st->econ.n_packs + 1));
        for (size_t i = 0; i < st->econ.n_packs; i++) {
                Sharebuy__Common__V1__ActivationPack *p = sb_call_alloc(call, sizeof *p);
                sharebuy__common__v1__activation_pack__init(p);
                p->price_fen = st->econ.packs[i].price_fen;
                p->cv_units = st->econ.packs[i].cv;
                resp->packs[i] = p;
        }
        resp->n_packs = st->econ.n_packs;
        return SB_OK;
}

/* One row of activations. */
struct act_row {
        uint64_t member_id;
        int64_t kind, price_fen, pack_cv, unlocked, ref_kind, bonus, active_after, done_ms;
        uint64_t ref_id, tx;
};

static int act_load(sb_db *db, const char *ref, struct act_row *ret) {
        sb_db_stmt *q;
        int r = sb_db_prepare(db,
                              "SELECT member_id, kind, pack_price_fen, pack_cv_units, unlocked_units, referrer_kind, "
                              "referrer_id, referrer_bonus_units, transaction_id, active_after_units, done_ms "
                              "FROM activations WHERE payment_reference = ?",
                              &q);
        if (r < 0)
                return r;
        sb_db_bind_str(q, 0, ref);
        if ((r = sb_db_execute(q)) < 0 || (r = sb_db_fetch(q)) <= 0)
                return r;
        struct act_row a;
        memset(&a, 0, sizeof a);
        sb_db_col_u64(q, 0, &a.member_id);
        sb_db_col_i64(q, 1, &a.kind);
        sb_db_col_i64(q, 2, &a.price_fen);
        sb_db_col_i64(q, 3, &a.pack_cv);
        sb_db_col_i64(q, 4, &a.unlocked);
        sb_db_col_i64(q, 5, &a.ref_kind);
        sb_db_col_u64(q, 6, &a.ref_id);
        sb_db_col_i64(q, 7, &a.bonus);
        sb_db_col_u64(q, 8, &a.tx);
        sb_db_col_i64(q, 9, &a.active_after);
        sb_db_col_i64(q, 10, &a.done_ms);
        while (sb_db_fetch(q) == 1) {
        }
        *ret = a;
        return 1;
}

static void result_fill(sb_call *call, const struct act_row *a, bool replayed,
                        Sharebuy__Identity__V1__ActivationResult *resp) {
        resp->member_id = a->member_id;
        resp->pack = sb_call_alloc(call, sizeof *resp->pack);
        sharebuy__common__v1__activation_pack__init(resp->pack);
        resp->pack->price_fen = a->price_fen;
        resp->pack->cv_units = a->pack_cv;
        resp->cv_unlocked_units = a->unlocked;
        resp->cv_credited_units = a->pack_cv;
        resp->cv_active_after_units = a->active_after;
        resp->vip = true;
        if (a->ref_kind) {
                resp->referrer = sb_call_alloc(call, sizeof *resp->referrer);
                sharebuy__common__v1__owner_ref__init(resp->referrer);
                resp->referrer->kind = (Sharebuy__Common__V1__OwnerKind)a->ref_kind;
                resp->referrer->id = a->ref_id;
        }
        resp->referrer_bonus_cv_units = a->bonus;
        resp->transaction_id = a->tx;
        resp->activated_unix_ms = a->done_ms;
        resp->replayed = replayed;
}

static sb_status wallet_balances(sb_call *call, uint64_t member_id, int64_t *ret_locked, int64_t *ret_active) {
        Sharebuy__Common__V1__OwnerRef owner = SHAREBUY__COMMON__V1__OWNER_REF__INIT;
        owner.kind = OWNER_MEMBER;
        owner.id = member_id;
        Sharebuy__Wallet__V1__GetBalancesRequest req = SHAREBUY__WALLET__V1__GET_BALANCES_REQUEST__INIT;
        req.owner = &owner;
        ProtobufCMessage *resp = NULL;
        char msg[256];
        sb_status s = sb_service_call(call, "wallet", "/sharebuy.wallet.v1.Wallet/GetBalances", &req.base,
                                      &sharebuy__wallet__v1__get_balances_response__descriptor,
                                      IDENTITY_WALLET_DEADLINE_MS, &resp, msg, sizeof msg);
        if (s == SB_NOT_FOUND) {
                *ret_locked = 0;
                *ret_active = 0;
                return SB_OK;
        }
        if (s != SB_OK)
                return identity_wallet_fail(call, s, msg);
        Sharebuy__Wallet__V1__GetBalancesResponse *b = (void *)resp;
        *ret_locked = b->cv_locked_units;
        *ret_active = b->cv_active_units;
        protobuf_c_message_free_unpacked(resp, NULL);
        return SB_OK;
}

/* Post the activation's legs (the amounts fixed in the row) under a key derived from the reference. */
static sb_status wallet_post(sb_call *call, const char *ref, const struct act_row *a, uint64_t *ret_tx) {
        Sharebuy__Common__V1__OwnerRef me = SHAREBUY__COMMON__V1__OWNER_REF__INIT, ro = me;
        me.kind = OWNER_MEMBER;
        me.id = a->member_id;
        ro.kind = (Sharebuy__Common__V1__OwnerKind)a->ref_kind;
        ro.id = a->ref_id;
        Sharebuy__Common__V1__AccountRef sys = SHAREBUY__COMMON__V1__ACCOUNT_REF__INIT, locked = sys, active = sys,
                                          ract = sys;
        sys.holder_case = SHAREBUY__COMMON__V1__ACCOUNT_REF__HOLDER_SYSTEM;
        sys.system = SHAREBUY__COMMON__V1__SYSTEM_ACCOUNT__SYSTEM_ACCOUNT_CV_ISSUED;
        locked.holder_case = active.holder_case = ract.holder_case = SHAREBUY__COMMON__V1__ACCOUNT_REF__HOLDER_OWNER;
        locked.owner = active.owner = &me;
        ract.owner = &ro;
        locked.asset = SHAREBUY__COMMON__V1__ASSET__ASSET_CV_LOCKED;
        active.asset = ract.asset = SHAREBUY__COMMON__V1__ASSET__ASSET_CV_ACTIVE;
        Sharebuy__Common__V1__LedgerLeg legs[4];
        Sharebuy__Common__V1__LedgerLeg *lp[4];
        size_t n = 0;
        for (int i = 0; i < 4; i++) {
                sharebuy__common__v1__ledger_leg__init(&legs[i]);
                lp[i] = &legs[i];
        }
        legs[n].account = &sys;
        legs[n].amount_units = -(a->pack_cv + a->bonus);
        legs[n++].reason = SHAREBUY__COMMON__V1__LEG_REASON__LEG_REASON_ACTIVATION_PACK;
        if (a->unlocked > 0) {
                legs[n].account = &locked;
                legs[n].amount_units = -a->unlocked;
                legs[n++].reason = SHAREBUY__COMMON__V1__LEG_REASON__LEG_REASON_ACTIVATION_UNLOCK;
        }
        /* The member's active account appears once per asset: the unlocked CV and the pack's CV in one leg. */
        legs[n].account = &active;
        legs[n].amount_units = a->pack_cv + a->unlocked;
        legs[n++].reason = a->unlocked > 0 ? SHAREBUY__COMMON__V1__LEG_REASON__LEG_REASON_ACTIVATION_UNLOCK
                                           : SHAREBUY__COMMON__V1__LEG_REASON__LEG_REASON_ACTIVATION_PACK;
        if (a->bonus > 0) {
                legs[n].account = &ract;
                legs[n].amount_units = a->bonus;
                legs[n++].reason = SHAREBUY__COMMON__V1__LEG_REASON__LEG_REASON_REFERRAL_ACTIVATION_BONUS;
        }
        /* The wallet's key is at most 64 characters; a reference may be 64 itself, so the key carries its hash. */
        unsigned char h[32];
        crypto_hash_sha256(h, (const unsigned char *)ref, strlen(ref));
        char hex[65], key[64];
        sodium_bin2hex(hex, sizeof hex, h, sizeof h);
        snprintf(key, sizeof key, "identity:pack:%.40s", hex);
        Sharebuy__Common__V1__Cause cause = SHAREBUY__COMMON__V1__CAUSE__INIT;
        cause.kind = a->kind == KIND_ACTIVATE ? SHAREBUY__COMMON__V1__CAUSE_KIND__CAUSE_KIND_ACTIVATION
                                              : SHAREBUY__COMMON__V1__CAUSE_KIND__CAUSE_KIND_PACK_PURCHASE;
        cause.reference = (char *)ref;
        Sharebuy__Wallet__V1__PostTransactionRequest req = SHAREBUY__WALLET__V1__POST_TRANSACTION_REQUEST__INIT;
        req.idempotency_key = key;
        req.cause = &cause;
        req.legs = lp;
        req.n_legs = n;
        req.memo = (char *)(a->kind == KIND_ACTIVATE ? "activation pack" : "repeat pack");
        ProtobufCMessage *resp = NULL;
        char msg[256];
        sb_status s = sb_service_call(call, "wallet", "/sharebuy.wallet.v1.Wallet/PostTransaction", &req.base,
                                      &sharebuy__wallet__v1__post_transaction_response__descriptor,
                                      IDENTITY_WALLET_DEADLINE_MS, &resp, msg, sizeof msg);
        if (s != SB_OK)
                return identity_wallet_fail(call, s, msg);
        Sharebuy__Wallet__V1__PostTransactionResponse *pr = (void *)resp;
        *ret_tx = pr->transaction ? pr->transaction->transaction_id : 0;
        protobuf_c_message_free_unpacked(resp, NULL);
        return SB_OK;
}

struct claim_tx {
        const char *ref;
        struct act_row *a;
};

static int claim_tx_fn(sb_db *db, void *arg) {
        struct claim_tx *t = arg;
        const struct act_row *a = t->a;
        sb_db_stmt *q;
        int r = sb_db_prepare(db,
                              "INSERT INTO activations (payment_reference, member_id, kind, first_activation, "
                              "pack_price_fen, pack_cv_units, unlocked_units, referrer_kind, referrer_id, "
                              "referrer_bonus_units, created_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                              &q);
        if (r < 0)
                return r;
        sb_db_bind_str(q, 0, t->ref);
        sb_db_bind_u64(q, 1, a->member_id);
        sb_db_bind_i64(q, 2, a->kind);
        if (a->kind == KIND_ACTIVATE)
                sb_db_bind_u64(q, 3, a->member_id);
        else
                sb_db_bind_null(q, 3);
        sb_db_bind_i64(q, 4, a->price_fen);
        sb_db_bind_i64(q, 5, a->pack_cv);
        sb_db_bind_i64(q, 6, a->unlocked);
        sb_db_bind_i64(q, 7, a->ref_kind);
        sb_db_bind_u64(q, 8, a->ref_id);
        sb_db_bind_i64(q, 9, a->bonus);
        sb_db_bind_i64(q, 10, identity_now_ms());
        return sb_db_execute(q);
}

static sb_status pack_purchase(sb_call *call, const Sharebuy__Identity__V1__ActivateRequest *req,
                               Sharebuy__Identity__V1__ActivationResult *resp, int kind) {
        identity_state *st = identity_st(call);
        sb_claims c;
        sb_status s = sb_service_auth(call,
                                      SB_ROLES(SB_ROLE_SERVICE) | SB_ROLES(SB_ROLE_ADMIN) |
                                              SB_ROLES(SB_ROLE_MERCHANT_OWNER),
                                      &c);
        if (s != SB_OK)
                return s;
        if (c.role == SB_ROLE_MERCHANT_OWNER) {
                bool ok = false;
                for (size_t i = 0; i < st->n_activation_merchants; i++)
                        ok = ok || st->activation_merchants[i] == c.merchant_id;
                if (!ok)
                        return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_ROLE_NOT_ALLOWED",
                                                   "merchant %" PRIu64 " is not authorised to sell activation packs",
                                                   c.merchant_id);
        }
        if (!identity_ascii_valid(req->payment_reference, IDENTITY_REFERENCE_MAX))
                return identity_invalid(call, "payment_reference: 1 to %d printable ASCII characters",
                                        IDENTITY_REFERENCE_MAX);
        sb_db *db = sb_service_db(call);
        if (!db)
                return sb_service_db_unavailable(call);
        uint64_t member_id = 0;
        if (req->member_case == SHAREBUY__IDENTITY__V1__ACTIVATE_REQUEST__MEMBER_MEMBER_ID && req->member_id) {
                member_id = req->member_id;
        } else if (req->member_case == SHAREBUY__IDENTITY__V1__ACTIVATE_REQUEST__MEMBER_MEMBER_CODE &&
                   req->member_code[0]) {
                if (strnlen(req->member_code, IDENTITY_MEMBER_CODE_MAX + 1) > IDENTITY_MEMBER_CODE_MAX)
                        return identity_invalid(call, "member_code: at most %d characters", IDENTITY_MEMBER_CODE_MAX);
                identity_member_code mc;
                if ((s = identity_member_code_check(call, req->member_code, identity_now_ms(), &mc, &c, c.merchant_id,
                                                    0)) != SB_OK)
                        return s;
                char key[IDENTITY_REFERENCE_MAX + 16];
                snprintf(key, sizeof key, "pack:%s", req->payment_reference);
                bool consumed = false;
                int r = identity_member_code_spend(db, &mc, key, c.merchant_id, &consumed);
                if (r < 0)
                        return sb_service_db_fail(call, r, "spending the member code");
                if (r == 1)
                        return sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_MEMBER_CODE_USED",
                                                   "this member code was used already");
                if (r == 2)
                        return sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_MEMBER_CODE_FORGED",
                                                   "this member code was never issued (forged)");
                member_id = mc.member_id;
        } else {
                return identity_invalid(call, "give member_id or member_code");
        }
        const sb_econ_pack *pack = NULL;
        for (size_t i = 0; i < st->econ.n_packs; i++)
                if (st->econ.packs[i].price_fen == req->pack_price_fen)
                        pack = &st->econ.packs[i];
        if (!pack)
                return sb_call_fail_reason(call, SB_NOT_FOUND, "REASON_PACK_UNKNOWN",
                                           "no activation pack costs %" PRId64 " fen (see ListActivationPacks)",
                                           req->pack_price_fen);

        /* Idempotency: a reference seen before returns its result, or is refused for another purchase. */
        struct act_row a;
        int r = act_load(db, req->payment_reference, &a);
        if (r < 0)
                return sb_service_db_fail(call, r, "reading the activation");
        if (r == 1 && (a.member_id != member_id || a.price_fen != req->pack_price_fen || a.kind != kind))
                return sb_call_fail_reason(call, SB_ALREADY_EXISTS, "REASON_IDEMPOTENCY_KEY_REUSED",
                                           "this payment reference was used for another pack purchase");
        bool replay = r == 1;
        if (replay && a.done_ms) {
                result_fill(call, &a, true, resp);
                resp->vip = true;
                return SB_OK;
        }
        if (!replay) {
                identity_user u;
                if ((r = identity_user_by_id(db, member_id, &u)) < 0)
                        return sb_service_db_fail(call, r, "reading the member");
                if (r == 0 || u.kind != IDENTITY_KIND_MEMBER || u.disabled)
                        return sb_call_fail_reason(call, SB_NOT_FOUND, "REASON_MEMBER_UNKNOWN",
                                                   "no member with id %" PRIu64, member_id);
                if (kind == KIND_ACTIVATE && u.vip)
                        return sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_ALREADY_ACTIVATED",
                                                   "member %" PRIu64 " is activated already; record a further pack "
                                                   "with RecordRepeatPack",
                                                   member_id);
                if (kind == KIND_REPEAT && !u.vip)
                        return sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_NOT_ACTIVATED",
                                                   "member %" PRIu64 " is not activated; use Activate", member_id);
                int64_t locked = 0, active = 0;
                if (kind == KIND_ACTIVATE && (s = wallet_balances(call, member_id, &locked, &active)) != SB_OK)
                        return s;
                int kinds[2] = { 0, 0 };
                uint64_t ids[2] = { 0, 0 };
                bool vips[2] = { false, false };
                int n = identity_referrers(db, member_id, kinds, ids, vips);
                if (n < 0)
                        return sb_service_db_fail(call, n, "reading referrers");
                sb_econ_activation_in in = {
                        .pack_price_fen = req->pack_price_fen,
                        .member_is_vip = kind == KIND_REPEAT,
                        .locked_cv = locked,
                        .has_referrer = n >= 1,
                        .referrer_is_vip = n >= 1 && vips[0],
                        .has_referrer2 = n >= 2,
                        .referrer2_is_vip = n >= 2 && vips[1],
                };
                sb_econ_activation out;
                if ((r = sb_econ_activate(&st->econ, &in, &out)) < 0)
                        return sb_call_fail(call, SB_INTERNAL, "the activation rules refused (%d); request %s", r,
                                            sb_call_request_id(call));
                memset(&a, 0, sizeof a);
                a.member_id = member_id;
                a.kind = kind;
                a.price_fen = req->pack_price_fen;
                a.pack_cv = out.pack_cv;
                a.unlocked = out.unlocked_cv;
                if (n >= 1) {
                        a.ref_kind = kinds[0];
                        a.ref_id = ids[0];
                }
                /* A second-level bonus is 0 by default (economics.md) and not paid here. */
                a.bonus = out.referrer_bonus_cv;
                struct claim_tx t = { .ref = req->payment_reference, .a = &a };
                r = sb_db_tx(db, claim_tx_fn, &t);
                if (r == -EEXIST) {
                        /* Another reference activated this member meanwhile, or this reference raced in. */
                        struct act_row b;
                        if (act_load(db, req->payment_reference, &b) == 1)
                                return sb_call_fail(call, SB_ABORTED, "a concurrent request with this payment "
                                                                      "reference is in progress; retry");
                        return sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_ALREADY_ACTIVATED",
                                                   "member %" PRIu64 " is activated already", member_id);
                }
                if (r < 0)
                        return sb_service_db_fail(call, r, "recording the activation");
                a.active_after = active + a.unlocked + a.pack_cv;
        } else {
                int64_t locked = 0, active = 0;
                if ((s = wallet_balances(call, member_id, &locked, &active)) != SB_OK)
                        return s;
                a.active_after = active; /* corrected below once posted */
        }
        uint64_t tx = 0;
        if ((s = wallet_post(call, req->payment_reference, &a, &tx)) != SB_OK)
                return s;
        int64_t locked_after = 0, active_after = 0;
        if (wallet_balances(call, member_id, &locked_after, &active_after) == SB_OK)
                a.active_after = active_after;
        a.tx = tx;
        a.done_ms = identity_now_ms();
        sb_db_stmt *q;
        r = sb_db_prepare(db,
                          "UPDATE activations SET transaction_id = ?, active_after_units = ?, done_ms = ? "
                          "WHERE payment_reference = ? AND done_ms = 0",
                          &q);
        if (r == 0) {
                sb_db_bind_u64(q, 0, tx);
                sb_db_bind_i64(q, 1, a.active_after);
                sb_db_bind_i64(q, 2, a.done_ms);
                sb_db_bind_str(q, 3, req->payment_reference);
                r = sb_db_execute(q);
        }
        if (r == 0 && kind == KIND_ACTIVATE && (r = sb_db_prepare(db,
                                                                   "UPDATE users SET vip = 1, activated_ms = ? WHERE "
                                                                   "user_id = ? AND vip = 0",
                                                                   &q)) == 0) {
                sb_db_bind_i64(q, 0, a.done_ms);
                sb_db_bind_u64(q, 1, member_id);
                r = sb_db_execute(q);
        }
        if (r < 0)
                return sb_service_db_fail(call, r, "recording the activation");
        identity_audit(call, kind == KIND_ACTIVATE ? AUD(ACTIVATED) : AUD(REPEAT_PACK), &c, member_id, c.merchant_id, 0,
                       0, "pack of %" PRId64 " fen%s", a.price_fen,
                       a.bonus ? ", referrer bonus paid" : "");
        result_fill(call, &a, replay, resp);
        return SB_OK;
}

sb_status identity_activate(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        return pack_purchase(call, (const void *)req_, (void *)resp_, KIND_ACTIVATE);
}

sb_status identity_record_repeat_pack(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        return pack_purchase(call, (const void *)req_, (void *)resp_, KIND_REPEAT);
}
