/* identity_codes: member QR codes — issuing (text, PNG, SVG) and resolving at a till. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "identity_internal.h"
#include "identity_qr.h"

#define AUD(x) SHAREBUY__IDENTITY__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_TYPE_##x
#define CARD_TTL_MAX_S 31536000

sb_status identity_issue_member_code(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Identity__V1__IssueMemberCodeRequest *req = (const void *)req_;
        Sharebuy__Identity__V1__IssueMemberCodeResponse *resp = (void *)resp_;
        identity_state *st = identity_st(call);
        sb_claims c;
        sb_status s = sb_service_auth(call,
                                      SB_ROLES(SB_ROLE_MEMBER) | SB_ROLES(SB_ROLE_ADMIN) | SB_ROLES(SB_ROLE_SERVICE) |
                                              SB_ROLES(SB_ROLE_CASHIER),
                                      &c);
        if (s != SB_OK)
                return s;
        unsigned px = req->png_module_px ? req->png_module_px : 8;
        if (px > IDENTITY_QR_MODULE_PX_MAX)
                return identity_invalid(call, "png_module_px: 1 to %d", IDENTITY_QR_MODULE_PX_MAX);
        if (req->ttl_seconds > CARD_TTL_MAX_S)
                return identity_invalid(call, "ttl_seconds: at most %d (365 days)", CARD_TTL_MAX_S);
        sb_db *db = sb_service_db(call);
        if (!db)
                return sb_service_db_unavailable(call);
        uint64_t member_id = 0;
        bool card = false;
        int r;
        switch (c.role) {
        case SB_ROLE_MEMBER:
                if (req->member_id && req->member_id != c.uid)
                        return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_SCOPE_MISMATCH",
                                                   "a member gets codes for itself only");
                member_id = c.uid;
                break;
        case SB_ROLE_ADMIN:
        case SB_ROLE_SERVICE:
                if (!req->member_id)
                        return identity_invalid(call, "member_id: required");
                member_id = req->member_id;
                card = req->ttl_seconds > 0;
                break;
        default: { /* CASHIER: the member types phone and password on the terminal. */
                if (!identity_phone_valid(req->member_phone))
                        return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_PHONE_INVALID",
                                                   "member_phone: a mainland mobile number of 11 digits");
                if (!req->member_password[0] ||
                    strnlen(req->member_password, IDENTITY_PASSWORD_MAX + 1) > IDENTITY_PASSWORD_MAX)
                        return identity_invalid(call, "member_password: required, at most %d bytes",
                                                IDENTITY_PASSWORD_MAX);
                identity_user u;
                if ((r = identity_user_by_phone(db, req->member_phone, &u)) < 0)
                        return sb_service_db_fail(call, r, "looking up the member");
                if ((s = identity_password_check(call, db, r == 1 ? &u : NULL, req->member_password, &c,
                                                 c.merchant_id, c.terminal_id)) != SB_OK)
                        return s;
                member_id = u.user_id;
                card = req->ttl_seconds > 0;
                break;
        }
        }
        Sharebuy__Identity__V1__Member *m = NULL;
        if ((s = identity_member_load(call, db, member_id, false, &m)) != SB_OK)
                return s;
        if (m->disabled)
                return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_ACCOUNT_DISABLED",
                                           "this member is disabled");
        int64_t now = identity_now_ms();
        sb_db_stmt *q;
        r = sb_db_prepare(db, "SELECT COUNT(*) FROM member_codes WHERE member_id = ? AND issued_ms > ?", &q);
        if (r == 0) {
                sb_db_bind_u64(q, 0, member_id);
                sb_db_bind_i64(q, 1, now - 60000);
                r = sb_db_execute(q);
        }
        if (r == 0)
                r = sb_db_fetch(q);
        if (r < 0)
                return sb_service_db_fail(call, r, "counting codes");
        int64_t recent = 0;
        sb_db_col_i64(q, 0, &recent);
        while (sb_db_fetch(q) == 1) {
        }
        if (recent >= st->member_codes_per_minute)
                return identity_fail_retry(call, "REASON_RATE_LIMITED", "too many member codes for this member",
                                           60000);

        identity_member_code mc = { .member_id = member_id, .card = card };
        int64_t ttl_ms = card ? (int64_t)req->ttl_seconds * 1000 : st->member_code_ttl_ms;
        mc.expires_unix_s = (now + ttl_ms) / 1000;
        randombytes_buf(mc.nonce, sizeof mc.nonce);
        if ((r = sb_db_prepare(db,
                               "INSERT INTO member_codes (nonce, member_id, card, issued_ms, expires_ms) "
                               "VALUES (?,?,?,?,?)",
                               &q)) == 0) {
                sb_db_bind_blob(q, 0, mc.nonce, sizeof mc.nonce);
                sb_db_bind_u64(q, 1, member_id);
                sb_db_bind_i64(q, 2, card ? 1 : 0);
                sb_db_bind_i64(q, 3, now);
                sb_db_bind_i64(q, 4, mc.expires_unix_s * 1000);
                r = sb_db_execute(q);
        }
        if (r < 0)
                return sb_service_db_fail(call, r, "recording the code");
        char body[128], *text = sb_call_alloc(call, IDENTITY_MEMBER_CODE_MAX + 1);
        unsigned char sig[64];
        if (identity_member_code_body(&mc, body, sizeof body) < 0 ||
            sb_auth_sign_bytes(st->signer, body, strlen(body), sig) < 0 ||
            identity_member_code_join(body, sig, text, IDENTITY_MEMBER_CODE_MAX + 1) < 0)
                return sb_call_fail(call, SB_INTERNAL, "cannot sign the member code (request %s)",
                                    sb_call_request_id(call));
        resp->code = text;
        resp->expires_unix_ms = mc.expires_unix_s * 1000;
        if (!req->text_only) {
                unsigned char *png = NULL;
                size_t png_len = 0;
                char *svg = NULL;
                if (identity_qr_png(text, px, &png, &png_len) < 0 || identity_qr_svg(text, &svg) < 0) {
                        free(png);
                        return sb_call_fail(call, SB_INTERNAL, "cannot render the QR code (request %s)",
                                            sb_call_request_id(call));
                }
                resp->png.data = sb_call_alloc(call, png_len);
                memcpy(resp->png.data, png, png_len);
                resp->png.len = png_len;
                resp->svg = sb_call_strdup(call, svg);
                free(png);
                free(svg);
        }
        return SB_OK;
}

/* Whether s is empty or 1..max bytes of printable ASCII. */
static bool key_ok(const char *s, size_t max) {
        return !s[0] || identity_ascii_valid(s, max);
}

/* Check a member code at time now_ms: 0 valid (*ret filled), or the failing status set on the call. */
sb_status identity_member_code_check(sb_call *call, const char *text, int64_t now_ms, identity_member_code *ret,
                                     const sb_claims *actor, uint64_t merchant_id, uint64_t terminal_id) {
        identity_state *st = identity_st(call);
        identity_member_code mc;
        unsigned char sig[64];
        size_t body_len = 0;
        if (identity_member_code_parse(text, &mc, sig, &body_len) < 0)
                return identity_invalid(call, "code: not a member code");
        if (!sb_auth_verify_bytes(st->verifier, text, body_len, sig)) {
                identity_audit(call, AUD(MEMBER_CODE_REFUSED), actor, 0, merchant_id, terminal_id, 0, "forged code");
                return sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_MEMBER_CODE_FORGED",
                                           "this member code is forged (its signature does not verify)");
        }
        if (mc.expires_unix_s * 1000 <= now_ms) {
                identity_audit(call, AUD(MEMBER_CODE_REFUSED), actor, mc.member_id, merchant_id, terminal_id, 0,
                               "expired code");
                return sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_MEMBER_CODE_EXPIRED",
                                           "this member code has expired; ask the member to show a new one");
        }
        *ret = mc;
        return SB_OK;
}

/* Marks an unused single-use code consumed under consume_key: 1 when this call consumed it, 0 when it was not unused
 * (used before, under this key or another), or a negative sb_db code. */
static int code_consume(sb_db *db, const identity_member_code *mc, const char *consume_key, uint64_t merchant_id) {
        sb_db_stmt *q;
        int r = sb_db_prepare(db,
                              "UPDATE member_codes SET consume_key = ?, consumed_ms = ?, consumed_merchant_id = ? "
                              "WHERE nonce = ? AND member_id = ? AND consume_key IS NULL",
                              &q);
        if (r < 0)
                return r;
        sb_db_bind_str(q, 0, consume_key);
        sb_db_bind_i64(q, 1, identity_now_ms());
        sb_db_bind_u64(q, 2, merchant_id);
        sb_db_bind_blob(q, 3, mc->nonce, sizeof mc->nonce);
        sb_db_bind_u64(q, 4, mc->member_id);
        if ((r = sb_db_execute(q)) < 0)
                return r;
        return sb_db_affected_rows(q) == 1 ? 1 : 0;
}


/* What ResolveMemberCode needs of a code, its member and the member's two referrer levels, read in ONE statement
 * (the code's row, the member, the referrer and the referrer's referrer): a sale resolves a code at every till, so
 * this is one round trip instead of three or four. */
typedef struct resolve_row {
        bool code_found, member_found, used;
        char used_key[IDENTITY_CONSUME_KEY_MAX + 1];
        char phone[16];
        bool vip, disabled;
        int n_ref;
        int ref_kind[2];
        uint64_t ref_id[2];
        bool ref_vip[2];
} resolve_row;

static int resolve_load(sb_db *db, const identity_member_code *mc, resolve_row *x) {
        sb_db_stmt *q;
        memset(x, 0, sizeof *x);
        int r = sb_db_prepare(db,
                              "SELECT c.consume_key, u.user_id, u.phone, u.vip, u.disabled, " IDENTITY_REFERRER_COLS
                              " FROM member_codes c LEFT JOIN users u ON u.user_id = c.member_id AND u.kind = 1"
                              IDENTITY_REFERRER_JOINS
                              "WHERE c.nonce = ? AND c.member_id = ?",
                              &q);
        if (r < 0)
                return r;
        sb_db_bind_blob(q, 0, mc->nonce, sizeof mc->nonce);
        sb_db_bind_u64(q, 1, mc->member_id);
        if ((r = sb_db_execute(q)) < 0 || (r = sb_db_fetch(q)) < 0)
                return r;
        if (r == 0)
                return 0; /* never issued */
        x->code_found = true;
        x->used = !sb_db_col_is_null(q, 0);
        if (x->used)
                sb_db_col_str(q, 0, x->used_key, sizeof x->used_key);
        x->member_found = !sb_db_col_is_null(q, 1);
        if (x->member_found) {
                int64_t vip = 0, dis = 0;
                sb_db_col_str(q, 2, x->phone, sizeof x->phone);
                sb_db_col_i64(q, 3, &vip);
                sb_db_col_i64(q, 4, &dis);
                x->vip = vip != 0;
                x->disabled = dis != 0;
                x->n_ref = identity_referrer_cols(q, 5, x->ref_kind, x->ref_id, x->ref_vip);
        }
        while (sb_db_fetch(q) == 1) {
        }
        return 1;
}

/* Spends (or checks) a code and reads what ResolveMemberCode shows of it into *x: 0 fine, with *ret_consumed; 1 used
 * under another key; 2 never issued (forged); a negative sb_db code. A single-use code with a key is consumed by
 * an UPDATE first; one read then gives the code's state, its member and the referrers. A card is never consumed:
 * "consumed" says the sale's key was given. A used code is fine again under the very key that used it (a retry). */
static int code_spend(sb_db *db, const identity_member_code *mc, const char *consume_key, uint64_t merchant_id,
                      bool *ret_consumed, resolve_row *x) {
        bool consumed = false;
        int r;
        if (consume_key[0] && !mc->card) {
                if ((r = code_consume(db, mc, consume_key, merchant_id)) < 0)
                        return r;
                consumed = r == 1;
        }
        if ((r = resolve_load(db, mc, x)) < 0)
                return r;
        if (!x->code_found)
                return 2;
        if (mc->card)
                consumed = consume_key[0] != '\0';
        else if (!consumed && x->used)
                consumed = consume_key[0] && strcmp(x->used_key, consume_key) == 0;
        if (!mc->card && x->used && !consumed)
                return 1;
        *ret_consumed = consumed;
        return 0;
}

int identity_member_code_spend(sb_db *db, const identity_member_code *mc, const char *consume_key,
                               uint64_t merchant_id, bool *ret_consumed) {
        resolve_row x;
        return code_spend(db, mc, consume_key, merchant_id, ret_consumed, &x);
}

sb_status identity_resolve_member_code(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Identity__V1__ResolveMemberCodeRequest *req = (const void *)req_;
        Sharebuy__Identity__V1__ResolveMemberCodeResponse *resp = (void *)resp_;
        sb_claims c;
        sb_status s = sb_service_auth(call,
                                      SB_ROLES(SB_ROLE_CASHIER) | SB_ROLES(SB_ROLE_MERCHANT_OWNER) |
                                              SB_ROLES(SB_ROLE_SERVICE),
                                      &c);
        if (s != SB_OK)
                return s;
        if (!req->code[0] || strnlen(req->code, IDENTITY_MEMBER_CODE_MAX + 1) > IDENTITY_MEMBER_CODE_MAX)
                return identity_invalid(call, "code: 1 to %d characters", IDENTITY_MEMBER_CODE_MAX);
        if (!key_ok(req->consume_key, IDENTITY_CONSUME_KEY_MAX))
                return identity_invalid(call, "consume_key: at most %d printable ASCII characters",
                                        IDENTITY_CONSUME_KEY_MAX);
        uint64_t merchant_id = c.merchant_id, terminal_id = c.terminal_id;
        sb_db *db = sb_service_db(call);
        if (!db)
                return sb_service_db_unavailable(call);
        if (c.role == SB_ROLE_SERVICE) {
                if (!req->merchant_id)
                        return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_SCOPE_MISMATCH",
                                                   "a service must name the merchant (merchant_id)");
                merchant_id = req->merchant_id;
                terminal_id = req->terminal_id;
        } else if (req->merchant_id || req->terminal_id || req->captured_unix_ms) {
                return identity_invalid(call, "merchant_id, terminal_id and captured_unix_ms are for services only");
        }
        if (c.role == SB_ROLE_CASHIER) {
                /* The till must be a paired terminal of the cashier's own merchant. */
                uint64_t tm = 0;
                int r = identity_terminal_active(db, c.terminal_id, &tm);
                if (r < 0)
                        return sb_service_db_fail(call, r, "reading the terminal");
                if (r == 0 || tm != c.merchant_id) {
                        identity_audit(call, AUD(MEMBER_CODE_REFUSED), &c, 0, c.merchant_id, c.terminal_id, 0,
                                       "terminal %" PRIu64 " is not a paired terminal of merchant %" PRIu64,
                                       c.terminal_id, c.merchant_id);
                        return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_SCOPE_MISMATCH",
                                                   "codes are resolved only on a paired terminal of the cashier's "
                                                   "own merchant");
                }
        }
        int64_t now = identity_now_ms();
        int64_t at = now;
        if (c.role == SB_ROLE_SERVICE && req->captured_unix_ms) {
                /* A sale from a terminal's offline queue: the code must have been valid when the terminal captured
                 * it. The merchant gives the capture time only within its district's offline grace (and the same
                 * business day); identity bounds it too, by identity.offline_grace_max. */
                if (req->captured_unix_ms > now + 60000)
                        return identity_invalid(call, "captured_unix_ms: in the future");
                if (now - req->captured_unix_ms > identity_st(call)->offline_grace_max_ms)
                        return sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_MEMBER_CODE_EXPIRED",
                                                   "the code was captured %" PRId64 " s ago, longer than the offline "
                                                   "grace allows",
                                                   (now - req->captured_unix_ms) / 1000);
                at = req->captured_unix_ms;
        }
        identity_member_code mc;
        if ((s = identity_member_code_check(call, req->code, at, &mc, &c, merchant_id, terminal_id)) != SB_OK)
                return s;
        char key[IDENTITY_CONSUME_KEY_MAX + 24] = "";
        if (req->consume_key[0])
                snprintf(key, sizeof key, "%s", req->consume_key);
        bool consumed = false;
        resolve_row x;
        int r = code_spend(db, &mc, key, merchant_id, &consumed, &x);
        if (r < 0)
                return sb_service_db_fail(call, r, "spending the code");
        if (r == 2) {
                identity_audit(call, AUD(MEMBER_CODE_REFUSED), &c, mc.member_id, merchant_id, terminal_id, 0,
                               "code never issued");
                return sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_MEMBER_CODE_FORGED",
                                           "this member code was never issued (forged)");
        }
        if (r == 1) {
                identity_audit(call, AUD(MEMBER_CODE_REFUSED), &c, mc.member_id, merchant_id, terminal_id, 0,
                               "code already used");
                return sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_MEMBER_CODE_USED",
                                           "this member code was used already; ask the member to show a new one");
        }
        if (!x.member_found)
                return sb_call_fail_reason(call, SB_NOT_FOUND, "REASON_MEMBER_UNKNOWN", "no member with id %" PRIu64,
                                           mc.member_id);
        if (x.disabled)
                return sb_call_fail_reason(call, SB_NOT_FOUND, "REASON_MEMBER_UNKNOWN", "this member is disabled");
        char masked[12] = "";
        identity_phone_mask(x.phone, masked);
        Sharebuy__Common__V1__MemberBrief *b = sb_call_alloc(call, sizeof *b);
        sharebuy__common__v1__member_brief__init(b);
        b->member_id = mc.member_id;
        b->masked_phone = sb_call_strdup(call, masked);
        b->vip = x.vip;
        resp->member = b;
        resp->referrers = sb_call_alloc(call, sizeof *resp->referrers * 2);
        for (int i = 0; i < x.n_ref; i++) {
                Sharebuy__Identity__V1__Referrer *rf = sb_call_alloc(call, sizeof *rf);
                sharebuy__identity__v1__referrer__init(rf);
                rf->level = (uint32_t)i + 1;
                rf->owner = sb_call_alloc(call, sizeof *rf->owner);
                sharebuy__common__v1__owner_ref__init(rf->owner);
                rf->owner->kind = (Sharebuy__Common__V1__OwnerKind)x.ref_kind[i];
                rf->owner->id = x.ref_id[i];
                rf->vip = x.ref_vip[i];
                resp->referrers[i] = rf;
        }
        resp->n_referrers = (size_t)x.n_ref;
        resp->code_expires_unix_ms = mc.expires_unix_s * 1000;
        resp->consumed = consumed;
        identity_audit(call, AUD(MEMBER_CODE_RESOLVED), &c, mc.member_id, merchant_id, terminal_id, 0, "%s",
                       consumed ? "code resolved and spent" : "code checked");
        return SB_OK;
}
