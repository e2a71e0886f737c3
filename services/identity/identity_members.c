/* identity_members: registration, sign-in, refresh, sign-out, passwords, GetMe, members and referral codes. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "identity_internal.h"

#define AUD(x) SHAREBUY__IDENTITY__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_TYPE_##x
#define MINUTE_MS 60000

/* --- users --- */

#define USER_COLS                                                                                                     \
        "SELECT user_id, kind, COALESCE(phone, ''), COALESCE(login, ''), login_merchant_id, display_name, "            \
        "password_hash, disabled, must_change_password, vip, failed_signins, locked_until_ms, bonus_tx_id FROM users "

static int user_fetch(sb_db_stmt *s, identity_user *ret) {
        int r = sb_db_fetch(s);
        if (r <= 0)
                return r;
        identity_user u;
        memset(&u, 0, sizeof u);
        int64_t kind = 0, dis = 0, mcp = 0, vip = 0;
        sb_db_col_u64(s, 0, &u.user_id);
        sb_db_col_i64(s, 1, &kind);
        sb_db_col_str(s, 2, u.phone, sizeof u.phone);
        sb_db_col_str(s, 3, u.login, sizeof u.login);
        sb_db_col_u64(s, 4, &u.login_merchant_id);
        sb_db_col_str(s, 5, u.display_name, sizeof u.display_name);
        sb_db_col_str(s, 6, u.password_hash, sizeof u.password_hash);
        sb_db_col_i64(s, 7, &dis);
        sb_db_col_i64(s, 8, &mcp);
        sb_db_col_i64(s, 9, &vip);
        sb_db_col_i64(s, 10, &u.failed_signins);
        sb_db_col_i64(s, 11, &u.locked_until_ms);
        sb_db_col_u64(s, 12, &u.bonus_tx_id);
        u.kind = (int)kind;
        u.disabled = dis != 0;
        u.must_change_password = mcp != 0;
        u.vip = vip != 0;
        while ((r = sb_db_fetch(s)) == 1) {
        }
        if (r < 0)
                return r;
        *ret = u;
        return 1;
}

int identity_user_by_id(sb_db *db, uint64_t user_id, identity_user *ret) {
        sb_db_stmt *s;
        int r = sb_db_prepare(db, USER_COLS "WHERE user_id = ?", &s);
        if (r < 0)
                return r;
        sb_db_bind_u64(s, 0, user_id);
        if ((r = sb_db_execute(s)) < 0)
                return r;
        return user_fetch(s, ret);
}

int identity_user_by_phone(sb_db *db, const char *phone, identity_user *ret) {
        sb_db_stmt *s;
        int r = sb_db_prepare(db, USER_COLS "WHERE phone = ?", &s);
        if (r < 0)
                return r;
        sb_db_bind_str(s, 0, phone);
        if ((r = sb_db_execute(s)) < 0)
                return r;
        return user_fetch(s, ret);
}

int identity_user_by_login(sb_db *db, const char *login, uint64_t prefer_merchant_id, bool any_merchant,
                           identity_user *ret) {
        sb_db_stmt *s;
        int r = sb_db_prepare(db,
                              USER_COLS "WHERE login = ? AND (? OR login_merchant_id = ?) "
                                        "ORDER BY login_merchant_id = ? DESC, user_id LIMIT 1",
                              &s);
        if (r < 0)
                return r;
        sb_db_bind_str(s, 0, login);
        sb_db_bind_i64(s, 1, any_merchant ? 1 : 0);
        sb_db_bind_u64(s, 2, prefer_merchant_id);
        sb_db_bind_u64(s, 3, prefer_merchant_id);
        if ((r = sb_db_execute(s)) < 0)
                return r;
        return user_fetch(s, ret);
}

sb_status identity_check_login_input(sb_call *call, const char *login, const char *password) {
        if (!login || !login[0] || strnlen(login, 65) > 64 || !identity_text_valid(login, 64))
                return identity_invalid(call, "login: required, at most 64 characters of UTF-8 text");
        if (!password || !password[0] || strnlen(password, IDENTITY_PASSWORD_MAX + 1) > IDENTITY_PASSWORD_MAX)
                return identity_invalid(call, "password: required, at most %d bytes", IDENTITY_PASSWORD_MAX);
        return SB_OK;
}

sb_status identity_password_check(sb_call *call, sb_db *db, const identity_user *u, const char *password,
                                  const sb_claims *actor, uint64_t merchant_id, uint64_t terminal_id) {
        identity_state *st = identity_st(call);
        char peer[80], key[IDENTITY_LIMIT_KEY_MAX];
        identity_peer(call, peer, sizeof peer);
        snprintf(key, sizeof key, "signin:%s", peer);
        int64_t retry = 0;
        if (identity_limit_over(st, key, st->signin_peer_failures, MINUTE_MS, false, &retry))
                return identity_fail_retry(call, "REASON_RATE_LIMITED", "too many failed sign-ins from this address",
                                           retry);
        int64_t now = identity_now_ms();
        if (u && u->locked_until_ms > now) {
                identity_audit(call, AUD(SIGN_IN_FAILED), actor, u->user_id, merchant_id, terminal_id, 0,
                               "refused: the account is locked");
                return identity_fail_retry(call, "REASON_ACCOUNT_LOCKED",
                                           "this account is locked after too many wrong passwords",
                                           u->locked_until_ms - now);
        }
        int v = sb_auth_password_verify(u ? u->password_hash : st->dummy_hash, password);
        if (u && v == 0) {
                if (u->failed_signins > 0) {
                        sb_db_stmt *s;
                        if (sb_db_prepare(db, "UPDATE users SET failed_signins = 0 WHERE user_id = ?", &s) == 0) {
                                sb_db_bind_u64(s, 0, u->user_id);
                                (void)sb_db_execute(s);
                        }
                }
                return SB_OK;
        }
        identity_limit_over(st, key, st->signin_peer_failures, MINUTE_MS, true, NULL);
        if (!u) {
                identity_audit(call, AUD(SIGN_IN_FAILED), actor, 0, merchant_id, terminal_id, 0, "unknown login");
                return sb_call_fail_reason(call, SB_UNAUTHENTICATED, "REASON_BAD_CREDENTIALS",
                                           "wrong login or password");
        }
        /* Count the failure and lock at the threshold, in one statement so concurrent failures all count. */
        sb_db_stmt *s;
        int r = sb_db_prepare(db,
                              "UPDATE users SET failed_signins = IF(failed_signins + 1 >= ?, 0, failed_signins + 1), "
                              "locked_until_ms = IF(failed_signins = 0, ?, locked_until_ms) WHERE user_id = ?",
                              &s);
        /* MariaDB evaluates SET left to right: in the second assignment failed_signins is already the new value,
         * 0 exactly when this failure reached the threshold. */
        if (r == 0) {
                sb_db_bind_i64(s, 0, st->lock_failures);
                sb_db_bind_i64(s, 1, now + st->lock_ms);
                sb_db_bind_u64(s, 2, u->user_id);
                r = sb_db_execute(s);
        }
        if (r < 0)
                return sb_service_db_fail(call, r, "counting a failed sign-in");
        int64_t failures = u->failed_signins + 1;
        if (failures >= st->lock_failures) {
                identity_audit(call, AUD(LOCKED_OUT), actor, u->user_id, merchant_id, terminal_id, 0,
                               "locked for %" PRId64 " s after %" PRId64 " wrong passwords", st->lock_ms / 1000,
                               failures);
                identity_audit(call, AUD(SIGN_IN_FAILED), actor, u->user_id, merchant_id, terminal_id, 0,
                               "wrong password (failure %" PRId64 ", account locked)", failures);
        } else {
                identity_audit(call, AUD(SIGN_IN_FAILED), actor, u->user_id, merchant_id, terminal_id, 0,
                               "wrong password (failure %" PRId64 " of %" PRId64 ")", failures, st->lock_failures);
        }
        return sb_call_fail_reason(call, SB_UNAUTHENTICATED, "REASON_BAD_CREDENTIALS", "wrong login or password");
}

/* --- referral codes --- */

/* Find the owner of a referral code (a code, or a member's phone number). 1 found, 0 not, negative on error. */
static int referral_lookup(sb_db *db, const char *code, int *ret_kind, uint64_t *ret_id) {
        if (identity_phone_valid(code)) {
                identity_user u;
                int r = identity_user_by_phone(db, code, &u);
                if (r <= 0)
                        return r;
                if (u.kind != IDENTITY_KIND_MEMBER || u.disabled)
                        return 0;
                *ret_kind = SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_MEMBER;
                *ret_id = u.user_id;
                return 1;
        }
        char norm[IDENTITY_REFERRAL_CODE_LEN + 1];
        if (identity_referral_code_normalise(code, norm) < 0)
                return 0;
        sb_db_stmt *s;
        int r = sb_db_prepare(db, "SELECT owner_kind, owner_id FROM referral_codes WHERE code = ?", &s);
        if (r < 0)
                return r;
        sb_db_bind_str(s, 0, norm);
        if ((r = sb_db_execute(s)) < 0 || (r = sb_db_fetch(s)) <= 0)
                return r;
        int64_t k = 0;
        uint64_t id = 0;
        sb_db_col_i64(s, 0, &k);
        sb_db_col_u64(s, 1, &id);
        while (sb_db_fetch(s) == 1) {
        }
        *ret_kind = (int)k;
        *ret_id = id;
        return 1;
}

/* The referrer of a member: 1 with kind/id, 0 when none, negative on error. */
static int member_referrer(sb_db *db, uint64_t member_id, int *ret_kind, uint64_t *ret_id, bool *ret_vip) {
        sb_db_stmt *s;
        int r = sb_db_prepare(db,
                              "SELECT u.referrer_kind, u.referrer_id, COALESCE(r.vip, 0) FROM users u LEFT JOIN users r "
                              "ON u.referrer_kind = 1 AND r.user_id = u.referrer_id WHERE u.user_id = ?",
                              &s);
        if (r < 0)
                return r;
        sb_db_bind_u64(s, 0, member_id);
        if ((r = sb_db_execute(s)) < 0 || (r = sb_db_fetch(s)) <= 0)
                return r;
        int64_t k = 0, vip = 0;
        uint64_t id = 0;
        sb_db_col_i64(s, 0, &k);
        sb_db_col_u64(s, 1, &id);
        sb_db_col_i64(s, 2, &vip);
        while (sb_db_fetch(s) == 1) {
        }
        if (k == 0)
                return 0;
        *ret_kind = (int)k;
        *ret_id = id;
        *ret_vip = vip != 0;
        return 1;
}

int identity_referrer_cols(sb_db_stmt *s, unsigned first, int kinds[2], uint64_t ids[2], bool vips[2]) {
        int64_t k = 0, vip = 0, k2 = 0, vip2 = 0;
        uint64_t id = 0, id2 = 0;
        sb_db_col_i64(s, first, &k);
        sb_db_col_u64(s, first + 1, &id);
        sb_db_col_i64(s, first + 2, &vip);
        if (k == 0)
                return 0;
        kinds[0] = (int)k, ids[0] = id, vips[0] = vip != 0;
        if (k != SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_MEMBER || sb_db_col_is_null(s, first + 3))
                return 1;
        sb_db_col_i64(s, first + 4, &k2);
        sb_db_col_u64(s, first + 5, &id2);
        sb_db_col_i64(s, first + 6, &vip2);
        if (k2 == 0)
                return 1;
        kinds[1] = (int)k2, ids[1] = id2, vips[1] = vip2 != 0;
        return 2;
}

int identity_referrers(sb_db *db, uint64_t member_id, int kinds[2], uint64_t ids[2], bool vips[2]) {
        sb_db_stmt *s;
        int r = sb_db_prepare(db, "SELECT " IDENTITY_REFERRER_COLS " FROM users u" IDENTITY_REFERRER_JOINS
                                  "WHERE u.user_id = ?",
                              &s);
        if (r < 0)
                return r;
        sb_db_bind_u64(s, 0, member_id);
        if ((r = sb_db_execute(s)) < 0 || (r = sb_db_fetch(s)) < 0)
                return r;
        int n = r == 0 ? 0 : identity_referrer_cols(s, 0, kinds, ids, vips);
        while (sb_db_fetch(s) == 1) {
        }
        return n;
}

/* Walk the member referrer chain from start: -ELOOP when it comes back to a member it passed (the data was
 * corrupted or edited: a new member can never close a loop, but a loop must never pay out), 0 otherwise. */
static int referral_chain_check(sb_db *db, uint64_t start) {
        enum { DEPTH_MAX = 64 };
        uint64_t seen[DEPTH_MAX];
        size_t n = 0;
        uint64_t cur = start;
        while (n < DEPTH_MAX) {
                for (size_t i = 0; i < n; i++)
                        if (seen[i] == cur)
                                return -ELOOP;
                seen[n++] = cur;
                int k = 0;
                uint64_t id = 0;
                bool vip = false;
                int r = member_referrer(db, cur, &k, &id, &vip);
                if (r < 0)
                        return r;
                if (r == 0 || k != SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_MEMBER)
                        return 0;
                cur = id;
        }
        return -ELOOP;
}

/* Give an owner a referral code if it has none; the code is written into out (9 bytes). */
int identity_referral_code_ensure(sb_db *db, int kind, uint64_t id, char out[IDENTITY_REFERRAL_CODE_LEN + 1]) {
        for (int attempt = 0; attempt < 8; attempt++) {
                sb_db_stmt *s;
                int r = sb_db_prepare(db, "SELECT code FROM referral_codes WHERE owner_kind = ? AND owner_id = ?", &s);
                if (r < 0)
                        return r;
                sb_db_bind_i64(s, 0, kind);
                sb_db_bind_u64(s, 1, id);
                if ((r = sb_db_execute(s)) < 0 || (r = sb_db_fetch(s)) < 0)
                        return r;
                if (r == 1) {
                        sb_db_col_str(s, 0, out, IDENTITY_REFERRAL_CODE_LEN + 1);
                        while (sb_db_fetch(s) == 1) {
                        }
                        return 0;
                }
                unsigned char rnd[5];
                char code[IDENTITY_REFERRAL_CODE_LEN + 1];
                randombytes_buf(rnd, sizeof rnd);
                identity_referral_code_make(rnd, code);
                if ((r = sb_db_prepare(db,
                                       "INSERT INTO referral_codes (code, owner_kind, owner_id, created_ms) "
                                       "VALUES (?,?,?,?)",
                                       &s)) < 0)
                        return r;
                sb_db_bind_str(s, 0, code);
                sb_db_bind_i64(s, 1, kind);
                sb_db_bind_u64(s, 2, id);
                sb_db_bind_i64(s, 3, identity_now_ms());
                r = sb_db_execute(s);
                if (r == 0) {
                        memcpy(out, code, sizeof code);
                        return 0;
                }
                if (r != -EEXIST)
                        return r;
                /* A taken code (or a concurrent insert for this owner): look again, then try another code. */
        }
        return -EEXIST;
}

/* --- RegisterMember --- */

struct reg_tx {
        const char *phone, *hash, *name;
        int ref_kind;
        uint64_t ref_id;
        uint64_t member_id;
        char code[IDENTITY_REFERRAL_CODE_LEN + 1];
};

static int reg_tx_fn(sb_db *db, void *arg) {
        struct reg_tx *t = arg;
        sb_db_stmt *s;
        int r = sb_db_prepare(db,
                              "INSERT INTO users (kind, phone, display_name, password_hash, referrer_kind, referrer_id, "
                              "created_ms) VALUES (1,?,?,?,?,?,?)",
                              &s);
        if (r < 0)
                return r;
        sb_db_bind_str(s, 0, t->phone);
        sb_db_bind_str(s, 1, t->name);
        sb_db_bind_str(s, 2, t->hash);
        sb_db_bind_i64(s, 3, t->ref_kind);
        sb_db_bind_u64(s, 4, t->ref_id);
        sb_db_bind_i64(s, 5, identity_now_ms());
        if ((r = sb_db_execute(s)) < 0)
                return r;
        t->member_id = sb_db_insert_id(s);
        r = identity_referral_code_ensure(db, SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_MEMBER, t->member_id,
                                          t->code);
        /* A code collision must not read as "phone taken". */
        return r == -EEXIST ? -EAGAIN : r;
}

sb_status identity_register_member(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Identity__V1__RegisterMemberRequest *req = (const void *)req_;
        Sharebuy__Identity__V1__RegisterMemberResponse *resp = (void *)resp_;
        identity_state *st = identity_st(call);
        if (!identity_phone_valid(req->phone))
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_PHONE_INVALID",
                                           "phone: a mainland mobile number of 11 digits, 1[3-9]xxxxxxxxx");
        char why[160];
        if (strnlen(req->password, IDENTITY_PASSWORD_MAX + 1) > IDENTITY_PASSWORD_MAX ||
            !sb_auth_password_acceptable(req->password, why, sizeof why))
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_PASSWORD_WEAK", "password: %s",
                                           strnlen(req->password, IDENTITY_PASSWORD_MAX + 1) > IDENTITY_PASSWORD_MAX
                                                   ? "at most 128 bytes"
                                                   : why);
        if (!identity_text_valid(req->display_name, IDENTITY_DISPLAY_NAME_MAX))
                return identity_invalid(call, "display_name: at most %d characters of UTF-8 text",
                                        IDENTITY_DISPLAY_NAME_MAX);
        if (!identity_text_valid(req->device_name, IDENTITY_DEVICE_NAME_MAX))
                return identity_invalid(call, "device_name: at most %d characters of UTF-8 text",
                                        IDENTITY_DEVICE_NAME_MAX);
        if (req->referral_code[0] && strnlen(req->referral_code, 17) > 16)
                return identity_invalid(call, "referral_code: at most 16 characters");
        if (req->referral_code[0] && !identity_text_valid(req->referral_code, 16))
                return identity_invalid(call, "referral_code: not valid UTF-8 text");

        char peer[80], key[IDENTITY_LIMIT_KEY_MAX];
        identity_peer(call, peer, sizeof peer);
        snprintf(key, sizeof key, "register:%s", peer);
        int64_t retry = 0;
        if (identity_limit_over(st, key, st->register_per_peer, MINUTE_MS, true, &retry))
                return identity_fail_retry(call, "REASON_RATE_LIMITED", "too many registrations from this address",
                                           retry);
        sb_db *db = sb_service_db(call);
        if (!db)
                return sb_service_db_unavailable(call);

        struct reg_tx t = { .phone = req->phone, .name = req->display_name };
        if (req->referral_code[0]) {
                if (strcmp(req->referral_code, req->phone) == 0)
                        return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_REFERRAL_SELF",
                                                   "a member cannot refer itself");
                int r = referral_lookup(db, req->referral_code, &t.ref_kind, &t.ref_id);
                if (r < 0)
                        return sb_service_db_fail(call, r, "looking up the referral code");
                if (r == 0)
                        return sb_call_fail_reason(call, SB_NOT_FOUND, "REASON_REFERRAL_CODE_UNKNOWN",
                                                   "no member or merchant has this referral code");
                if (t.ref_kind == SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_MEMBER) {
                        r = referral_chain_check(db, t.ref_id);
                        if (r == -ELOOP)
                                return sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_REFERRAL_LOOP",
                                                           "the referrer's own chain of referrers loops; this code "
                                                           "cannot be used");
                        if (r < 0)
                                return sb_service_db_fail(call, r, "checking the referral chain");
                }
        }
        /* Refuse a taken phone before spending the hashing time. */
        identity_user existing;
        int r = identity_user_by_phone(db, req->phone, &existing);
        if (r < 0)
                return sb_service_db_fail(call, r, "looking up the phone number");
        if (r == 1)
                return sb_call_fail_reason(call, SB_ALREADY_EXISTS, "REASON_PHONE_TAKEN",
                                           "this phone number is registered already; sign in instead");
        char hash[SB_AUTH_HASH_MAX];
        if (sb_auth_password_hash(req->password, hash) < 0)
                return sb_call_fail(call, SB_UNAVAILABLE, "the server is out of memory for password hashing; retry");
        t.hash = hash;
        r = sb_db_tx(db, reg_tx_fn, &t);
        if (r == -EEXIST)
                return sb_call_fail_reason(call, SB_ALREADY_EXISTS, "REASON_PHONE_TAKEN",
                                           "this phone number is registered already; sign in instead");
        if (r < 0)
                return sb_service_db_fail(call, r, "registering the member");
        identity_audit(call, AUD(REGISTERED), NULL, t.member_id, 0, 0, 0, "member registered%s",
                       t.ref_kind ? " with a referrer" : "");

        /* The bonus: keyed by the member id in the wallet, so it is credited once. If the wallet does not answer
         * now, the member is registered all the same and the next sign-in credits it. */
        char msg[256];
        uint64_t tx = 0;
        sb_status ws = identity_bonus_credit(call, db, t.member_id, &tx, msg, sizeof msg);
        if (ws == SB_OK) {
                resp->bonus_transaction_id = tx;
                resp->bonus_cv_locked_units = st->econ.register_bonus_cv;
        }
        sb_status s = identity_member_load(call, db, t.member_id, true, &resp->member);
        if (s != SB_OK)
                return s;
        identity_principal p = { .user_id = t.member_id, .role = SB_ROLE_MEMBER, .display_name = req->display_name };
        s = identity_tokens_issue(call, db, &p, 0, req->device_name, &resp->tokens);
        if (s != SB_OK)
                return s;
        return identity_grants_load(call, db, t.member_id, true, &resp->tokens->grants, &resp->tokens->n_grants) < 0
                       ? sb_service_db_fail(call, -EIO, "reading grants")
                       : SB_OK;
}

/* --- SignIn --- */

sb_status identity_sign_in(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Identity__V1__SignInRequest *req = (const void *)req_;
        Sharebuy__Identity__V1__TokenPair *resp = (void *)resp_;
        sb_status s = identity_check_login_input(call, req->login, req->password);
        if (s != SB_OK)
                return s;
        if (!identity_text_valid(req->device_name, IDENTITY_DEVICE_NAME_MAX))
                return identity_invalid(call, "device_name: at most %d characters of UTF-8 text",
                                        IDENTITY_DEVICE_NAME_MAX);
        sb_db *db = sb_service_db(call);
        if (!db)
                return sb_service_db_unavailable(call);
        identity_user u;
        int r = identity_phone_valid(req->login) ? identity_user_by_phone(db, req->login, &u)
                                                  : identity_user_by_login(db, req->login, 0, false, &u);
        if (r < 0)
                return sb_service_db_fail(call, r, "looking up the login");
        if ((s = identity_password_check(call, db, r == 1 ? &u : NULL, req->password, NULL, 0, 0)) != SB_OK)
                return s;
        if (u.disabled) {
                identity_audit(call, AUD(SIGN_IN_FAILED), NULL, u.user_id, 0, 0, 0, "refused: the account is disabled");
                return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_ACCOUNT_DISABLED",
                                           "this account is disabled");
        }
        Sharebuy__Identity__V1__RoleGrant **grants = NULL;
        size_t n_grants = 0;
        if ((r = identity_grants_load(call, db, u.user_id, u.kind == IDENTITY_KIND_MEMBER, &grants, &n_grants)) < 0)
                return sb_service_db_fail(call, r, "reading grants");
        /* Pick the grant: the requested role (and scope), else MEMBER, else the first. */
        const Sharebuy__Identity__V1__RoleGrant *g = NULL;
        for (size_t i = 0; i < n_grants && !g; i++) {
                const Sharebuy__Identity__V1__RoleGrant *x = grants[i];
                if (req->role == 0 ? true
                                   : (x->role == req->role && (!req->merchant_id || x->merchant_id == req->merchant_id) &&
                                      (!req->centre_id || x->centre_id == req->centre_id)))
                        g = x;
        }
        if (!g)
                return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_ROLE_NOT_ALLOWED",
                                           "this user does not hold the role %s for that scope",
                                           sb_role_name((sb_role)req->role));
        if (g->role == SHAREBUY__COMMON__V1__ROLE__ROLE_CASHIER)
                return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_ROLE_NOT_ALLOWED",
                                           "cashiers sign in on a paired terminal (CashierSignIn)");
        sb_db_stmt *st;
        if (sb_db_prepare(db, "UPDATE users SET last_sign_in_ms = ? WHERE user_id = ?", &st) == 0) {
                sb_db_bind_i64(st, 0, identity_now_ms());
                sb_db_bind_u64(st, 1, u.user_id);
                (void)sb_db_execute(st);
        }
        if (u.kind == IDENTITY_KIND_MEMBER && u.bonus_tx_id == 0) {
                char msg[256];
                uint64_t tx;
                (void)identity_bonus_credit(call, db, u.user_id, &tx, msg, sizeof msg);
        }
        identity_principal p = { .user_id = u.user_id, .role = (sb_role)g->role, .merchant_id = g->merchant_id,
                                 .centre_id = g->centre_id, .display_name = u.display_name };
        Sharebuy__Identity__V1__TokenPair *tp = NULL;
        if ((s = identity_tokens_issue(call, db, &p, 0, req->device_name, &tp)) != SB_OK)
                return s;
        sb_claims actor = { .role = p.role, .uid = u.user_id };
        identity_audit(call, AUD(SIGN_IN), &actor, u.user_id, g->merchant_id, 0, g->centre_id, "signed in as %s",
                       sb_role_name(p.role));
        *resp = *tp;
        resp->grants = grants;
        resp->n_grants = n_grants;
        resp->must_change_password = u.must_change_password;
        return SB_OK;
}

/* --- Refresh, SignOut --- */

struct session_row {
        uint64_t session_id, family_id, user_id, terminal_id, merchant_id, centre_id;
        int64_t role, expires_ms, spent_ms, revoked_ms;
        char device[260];
};

static int session_by_token(sb_db *db, const char *token, struct session_row *ret) {
        unsigned char hash[32];
        identity_hash_secret(token, hash);
        sb_db_stmt *s;
        int r = sb_db_prepare(db,
                              "SELECT session_id, family_id, user_id, terminal_id, merchant_id, centre_id, role, "
                              "expires_ms, spent_ms, revoked_ms, device_name FROM sessions WHERE token_hash = ?",
                              &s);
        if (r < 0)
                return r;
        sb_db_bind_blob(s, 0, hash, sizeof hash);
        if ((r = sb_db_execute(s)) < 0 || (r = sb_db_fetch(s)) <= 0)
                return r;
        struct session_row x;
        memset(&x, 0, sizeof x);
        sb_db_col_u64(s, 0, &x.session_id);
        sb_db_col_u64(s, 1, &x.family_id);
        sb_db_col_u64(s, 2, &x.user_id);
        sb_db_col_u64(s, 3, &x.terminal_id);
        sb_db_col_u64(s, 4, &x.merchant_id);
        sb_db_col_u64(s, 5, &x.centre_id);
        sb_db_col_i64(s, 6, &x.role);
        sb_db_col_i64(s, 7, &x.expires_ms);
        sb_db_col_i64(s, 8, &x.spent_ms);
        sb_db_col_i64(s, 9, &x.revoked_ms);
        sb_db_col_str(s, 10, x.device, sizeof x.device);
        while (sb_db_fetch(s) == 1) {
        }
        *ret = x;
        return 1;
}

static int family_revoke(sb_db *db, uint64_t family_id) {
        sb_db_stmt *s;
        int r = sb_db_prepare(db, "UPDATE sessions SET revoked_ms = ? WHERE family_id = ? AND revoked_ms = 0", &s);
        if (r < 0)
                return r;
        sb_db_bind_i64(s, 0, identity_now_ms());
        sb_db_bind_u64(s, 1, family_id);
        if ((r = sb_db_execute(s)) < 0)
                return r;
        return (int)sb_db_affected_rows(s);
}

/* Whether a terminal is paired (not revoked): 1 yes, 0 no, negative on error. Also its merchant. */
int identity_terminal_active(sb_db *db, uint64_t terminal_id, uint64_t *ret_merchant) {
        sb_db_stmt *s;
        int r = sb_db_prepare(db, "SELECT merchant_id, status FROM terminals WHERE terminal_id = ?", &s);
        if (r < 0)
                return r;
        sb_db_bind_u64(s, 0, terminal_id);
        if ((r = sb_db_execute(s)) < 0 || (r = sb_db_fetch(s)) <= 0)
                return r;
        uint64_t m = 0;
        int64_t status = 0;
        sb_db_col_u64(s, 0, &m);
        sb_db_col_i64(s, 1, &status);
        while (sb_db_fetch(s) == 1) {
        }
        if (ret_merchant)
                *ret_merchant = m;
        return status == SHAREBUY__IDENTITY__V1__TERMINAL_STATUS__TERMINAL_STATUS_PAIRED ? 1 : 0;
}

sb_status identity_refresh(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Identity__V1__RefreshRequest *req = (const void *)req_;
        Sharebuy__Identity__V1__TokenPair *resp = (void *)resp_;
        if (!req->refresh_token[0] || strnlen(req->refresh_token, 129) > 128)
                return identity_invalid(call, "refresh_token: required, at most 128 characters");
        sb_db *db = sb_service_db(call);
        if (!db)
                return sb_service_db_unavailable(call);
        struct session_row x;
        int r = session_by_token(db, req->refresh_token, &x);
        if (r < 0)
                return sb_service_db_fail(call, r, "reading the session");
        if (r == 0)
                return sb_call_fail_reason(call, SB_UNAUTHENTICATED, "REASON_TOKEN_REVOKED",
                                           "unknown refresh token; sign in again");
        if (x.revoked_ms)
                return sb_call_fail_reason(call, SB_UNAUTHENTICATED, "REASON_TOKEN_REVOKED",
                                           "this session was revoked; sign in again");
        int64_t now = identity_now_ms();
        if (x.expires_ms <= now)
                return sb_call_fail_reason(call, SB_UNAUTHENTICATED, "REASON_TOKEN_EXPIRED",
                                           "the refresh token has expired; sign in again");
        sb_db_stmt *s;
        r = sb_db_prepare(db, "UPDATE sessions SET spent_ms = ? WHERE session_id = ? AND spent_ms = 0 AND revoked_ms = 0",
                          &s);
        if (r == 0) {
                sb_db_bind_i64(s, 0, now);
                sb_db_bind_u64(s, 1, x.session_id);
                r = sb_db_execute(s);
        }
        if (r < 0)
                return sb_service_db_fail(call, r, "spending the refresh token");
        if (x.spent_ms || sb_db_affected_rows(s) == 0) {
                /* A spent token presented again: it was copied. End the whole session. */
                family_revoke(db, x.family_id);
                sb_claims actor = { .role = (sb_role)x.role, .uid = x.user_id };
                identity_audit(call, AUD(REFRESH_REUSE), &actor, x.user_id, x.merchant_id, x.terminal_id, x.centre_id,
                               "a spent refresh token was presented again; the session is revoked");
                return sb_call_fail_reason(call, SB_UNAUTHENTICATED, "REASON_TOKEN_REVOKED",
                                           "this refresh token was used already; the session is revoked, sign in "
                                           "again");
        }
        identity_principal p = { .user_id = x.user_id, .role = (sb_role)x.role, .merchant_id = x.merchant_id,
                                 .terminal_id = x.terminal_id, .centre_id = x.centre_id, .display_name = "" };
        identity_user u;
        if (x.user_id) {
                if ((r = identity_user_by_id(db, x.user_id, &u)) < 0)
                        return sb_service_db_fail(call, r, "reading the user");
                if (r == 0 || u.disabled)
                        return sb_call_fail_reason(call, SB_UNAUTHENTICATED, "REASON_ACCOUNT_DISABLED",
                                                   "the account is disabled");
                p.display_name = u.display_name;
                if (u.kind == IDENTITY_KIND_MEMBER && u.bonus_tx_id == 0) {
                        char msg[256];
                        uint64_t tx;
                        (void)identity_bonus_credit(call, db, u.user_id, &tx, msg, sizeof msg);
                }
        }
        if (x.terminal_id) {
                if ((r = identity_terminal_active(db, x.terminal_id, NULL)) < 0)
                        return sb_service_db_fail(call, r, "reading the terminal");
                if (r == 0)
                        return sb_call_fail_reason(call, SB_UNAUTHENTICATED, "REASON_TERMINAL_REVOKED",
                                                   "the terminal was revoked");
        }
        Sharebuy__Identity__V1__TokenPair *tp = NULL;
        sb_status st = identity_tokens_issue(call, db, &p, x.family_id, x.device, &tp);
        if (st != SB_OK)
                return st;
        *resp = *tp;
        if (x.user_id) {
                if ((r = identity_grants_load(call, db, x.user_id, u.kind == IDENTITY_KIND_MEMBER, &resp->grants,
                                              &resp->n_grants)) < 0)
                        return sb_service_db_fail(call, r, "reading grants");
                resp->must_change_password = u.must_change_password;
        }
        return SB_OK;
}

#define ANY_ROLE                                                                                                      \
        (SB_ROLES(SB_ROLE_MEMBER) | SB_ROLES(SB_ROLE_MERCHANT_OWNER) | SB_ROLES(SB_ROLE_CASHIER) |                    \
         SB_ROLES(SB_ROLE_TERMINAL) | SB_ROLES(SB_ROLE_CENTRE_OPERATOR) | SB_ROLES(SB_ROLE_ADMIN))

sb_status identity_sign_out(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Identity__V1__SignOutRequest *req = (const void *)req_;
        Sharebuy__Identity__V1__SignOutResponse *resp = (void *)resp_;
        sb_claims c;
        sb_status s = sb_service_auth(call, ANY_ROLE, &c);
        if (s != SB_OK)
                return s;
        if (!req->refresh_token[0] && !req->all_sessions)
                return identity_invalid(call, "give refresh_token or all_sessions");
        if (strnlen(req->refresh_token, 129) > 128)
                return identity_invalid(call, "refresh_token: at most 128 characters");
        sb_db *db = sb_service_db(call);
        if (!db)
                return sb_service_db_unavailable(call);
        int r = 0;
        uint64_t uid = c.role == SB_ROLE_TERMINAL ? 0 : c.uid;
        uint64_t tid = c.role == SB_ROLE_TERMINAL ? c.terminal_id : 0;
        if (req->all_sessions) {
                r = identity_sessions_revoke(db, uid, tid, 0, 0, 0);
        } else {
                struct session_row x;
                r = session_by_token(db, req->refresh_token, &x);
                if (r == 1 && (x.user_id != uid || x.terminal_id != tid))
                        return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_SCOPE_MISMATCH",
                                                   "this refresh token belongs to another principal");
                if (r == 1)
                        r = family_revoke(db, x.family_id);
        }
        if (r < 0)
                return sb_service_db_fail(call, r, "revoking sessions");
        resp->sessions_revoked = (uint32_t)r;
        identity_audit(call, AUD(SIGN_OUT), &c, c.uid, c.merchant_id, c.terminal_id, c.centre_id,
                       "signed out (%d session%s revoked)", r, r == 1 ? "" : "s");
        return SB_OK;
}

/* --- ChangePassword --- */

sb_status identity_change_password(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Identity__V1__ChangePasswordRequest *req = (const void *)req_;
        Sharebuy__Identity__V1__ChangePasswordResponse *resp = (void *)resp_;
        sb_claims c;
        sb_status s = sb_service_auth(call,
                                      SB_ROLES(SB_ROLE_MEMBER) | SB_ROLES(SB_ROLE_MERCHANT_OWNER) |
                                              SB_ROLES(SB_ROLE_CASHIER) | SB_ROLES(SB_ROLE_CENTRE_OPERATOR) |
                                              SB_ROLES(SB_ROLE_ADMIN),
                                      &c);
        if (s != SB_OK)
                return s;
        char why[160];
        if (!req->old_password[0] || strnlen(req->old_password, IDENTITY_PASSWORD_MAX + 1) > IDENTITY_PASSWORD_MAX)
                return identity_invalid(call, "old_password: required, at most %d bytes", IDENTITY_PASSWORD_MAX);
        if (strnlen(req->new_password, IDENTITY_PASSWORD_MAX + 1) > IDENTITY_PASSWORD_MAX ||
            !sb_auth_password_acceptable(req->new_password, why, sizeof why))
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_PASSWORD_WEAK", "new_password: %s",
                                           strnlen(req->new_password, 129) > 128 ? "at most 128 bytes" : why);
        if (strcmp(req->old_password, req->new_password) == 0)
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_PASSWORD_WEAK",
                                           "new_password: must differ from the old one");
        sb_db *db = sb_service_db(call);
        if (!db)
                return sb_service_db_unavailable(call);
        identity_user u;
        int r = identity_user_by_id(db, c.uid, &u);
        if (r < 0)
                return sb_service_db_fail(call, r, "reading the user");
        if (r == 0)
                return sb_call_fail_reason(call, SB_UNAUTHENTICATED, "REASON_TOKEN_REVOKED", "the user no longer exists");
        if ((s = identity_password_check(call, db, &u, req->old_password, &c, c.merchant_id, c.terminal_id)) != SB_OK)
                return s;
        char hash[SB_AUTH_HASH_MAX];
        if (sb_auth_password_hash(req->new_password, hash) < 0)
                return sb_call_fail(call, SB_UNAVAILABLE, "the server is out of memory for password hashing; retry");
        sb_db_stmt *st;
        r = sb_db_prepare(db, "UPDATE users SET password_hash = ?, must_change_password = 0 WHERE user_id = ?", &st);
        if (r == 0) {
                sb_db_bind_str(st, 0, hash);
                sb_db_bind_u64(st, 1, u.user_id);
                r = sb_db_execute(st);
        }
        if (r < 0 || (r = identity_sessions_revoke(db, u.user_id, 0, 0, 0, 0)) < 0)
                return sb_service_db_fail(call, r, "changing the password");
        identity_audit(call, AUD(PASSWORD_CHANGED), &c, u.user_id, c.merchant_id, c.terminal_id, c.centre_id,
                       "password changed; %d session%s revoked", r, r == 1 ? "" : "s");
        identity_principal p = { .user_id = u.user_id, .role = c.role, .merchant_id = c.merchant_id,
                                 .terminal_id = c.terminal_id, .centre_id = c.centre_id,
                                 .display_name = u.display_name };
        if ((s = identity_tokens_issue(call, db, &p, 0, "", &resp->tokens)) != SB_OK)
                return s;
        if ((r = identity_grants_load(call, db, u.user_id, u.kind == IDENTITY_KIND_MEMBER, &resp->tokens->grants,
                                      &resp->tokens->n_grants)) < 0)
                return sb_service_db_fail(call, r, "reading grants");
        return SB_OK;
}

/* --- GetMe, GetMember --- */

sb_status identity_get_me(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        Sharebuy__Identity__V1__GetMeResponse *resp = (void *)resp_;
        sb_claims c;
        sb_status s = sb_service_auth(call, ANY_ROLE, &c);
        if (s != SB_OK)
                return s;
        sb_db *db = sb_service_db(call);
        if (!db)
                return sb_service_db_unavailable(call);
        Sharebuy__Identity__V1__Principal *pr = sb_call_alloc(call, sizeof *pr);
        sharebuy__identity__v1__principal__init(pr);
        pr->user_id = c.uid;
        pr->role = (Sharebuy__Common__V1__Role)c.role;
        pr->merchant_id = c.merchant_id;
        pr->terminal_id = c.terminal_id;
        pr->centre_id = c.centre_id;
        pr->display_name = (char *)"";
        resp->principal = pr;
        if (c.uid) {
                identity_user u;
                int r = identity_user_by_id(db, c.uid, &u);
                if (r < 0)
                        return sb_service_db_fail(call, r, "reading the user");
                if (r == 0)
                        return sb_call_fail_reason(call, SB_UNAUTHENTICATED, "REASON_TOKEN_REVOKED",
                                                   "the user no longer exists");
                pr->display_name = sb_call_strdup(call, u.display_name);
                if ((r = identity_grants_load(call, db, c.uid, u.kind == IDENTITY_KIND_MEMBER, &resp->grants,
                                              &resp->n_grants)) < 0)
                        return sb_service_db_fail(call, r, "reading grants");
                if (u.kind == IDENTITY_KIND_MEMBER)
                        s = identity_member_load(call, db, c.uid, true, &resp->member);
                else
                        s = identity_staff_load(call, db, c.uid, &resp->staff);
                if (s != SB_OK)
                        return s;
        }
        if (c.terminal_id && (s = identity_terminal_load(call, db, c.terminal_id, &resp->terminal)) != SB_OK)
                return s;
        return SB_OK;
}

sb_status identity_get_member(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Identity__V1__GetMemberRequest *req = (const void *)req_;
        Sharebuy__Identity__V1__Member *resp = (void *)resp_;
        sb_status s = sb_service_auth(call, SB_ROLES(SB_ROLE_ADMIN) | SB_ROLES(SB_ROLE_SERVICE), NULL);
        if (s != SB_OK)
                return s;
        sb_db *db = sb_service_db(call);
        if (!db)
                return sb_service_db_unavailable(call);
        uint64_t id = 0;
        if (req->key_case == SHAREBUY__IDENTITY__V1__GET_MEMBER_REQUEST__KEY_MEMBER_ID && req->member_id) {
                id = req->member_id;
        } else if (req->key_case == SHAREBUY__IDENTITY__V1__GET_MEMBER_REQUEST__KEY_PHONE) {
                if (!identity_phone_valid(req->phone))
                        return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_PHONE_INVALID",
                                                   "phone: a mainland mobile number of 11 digits");
                identity_user u;
                int r = identity_user_by_phone(db, req->phone, &u);
                if (r < 0)
                        return sb_service_db_fail(call, r, "looking up the phone");
                if (r == 0)
                        return sb_call_fail_reason(call, SB_NOT_FOUND, "REASON_MEMBER_UNKNOWN",
                                                   "no member with this phone number");
                id = u.user_id;
        } else {
                return identity_invalid(call, "give member_id or phone");
        }
        Sharebuy__Identity__V1__Member *m = NULL;
        if ((s = identity_member_load(call, db, id, true, &m)) != SB_OK)
                return s;
        *resp = *m;
        return SB_OK;
}

/* --- ResolveReferralCode --- */

sb_status identity_resolve_referral_code(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Identity__V1__ResolveReferralCodeRequest *req = (const void *)req_;
        Sharebuy__Identity__V1__ResolveReferralCodeResponse *resp = (void *)resp_;
        identity_state *st = identity_st(call);
        if (!req->referral_code[0] || strnlen(req->referral_code, 17) > 16 ||
            !identity_text_valid(req->referral_code, 16))
                return identity_invalid(call, "referral_code: 1 to 16 characters");
        bool privileged = false;
        if (sb_call_bearer(call)) {
                sb_claims c;
                sb_status s = sb_service_auth(call, ANY_ROLE | SB_ROLES(SB_ROLE_SERVICE), &c);
                if (s != SB_OK)
                        return s;
                privileged = c.role == SB_ROLE_ADMIN || c.role == SB_ROLE_SERVICE;
        }
        if (!privileged) {
                char peer[80], key[IDENTITY_LIMIT_KEY_MAX];
                identity_peer(call, peer, sizeof peer);
                snprintf(key, sizeof key, "lookup:%s", peer);
                int64_t retry = 0;
                if (identity_limit_over(st, key, st->lookup_per_peer, MINUTE_MS, true, &retry))
                        return identity_fail_retry(call, "REASON_RATE_LIMITED",
                                                   "too many referral code look-ups from this address", retry);
        }
        sb_db *db = sb_service_db(call);
        if (!db)
                return sb_service_db_unavailable(call);
        int kind = 0;
        uint64_t id = 0;
        int r = referral_lookup(db, req->referral_code, &kind, &id);
        if (r < 0)
                return sb_service_db_fail(call, r, "looking up the referral code");
        if (r == 0)
                return sb_call_fail_reason(call, SB_NOT_FOUND, "REASON_REFERRAL_CODE_UNKNOWN",
                                           "no member or merchant has this referral code");
        Sharebuy__Common__V1__OwnerRef *o = sb_call_alloc(call, sizeof *o);
        sharebuy__common__v1__owner_ref__init(o);
        o->kind = (Sharebuy__Common__V1__OwnerKind)kind;
        o->id = id;
        resp->owner = o;
        char masked[32] = "*";
        if (kind == SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_MEMBER) {
                identity_user u;
                if ((r = identity_user_by_id(db, id, &u)) < 0)
                        return sb_service_db_fail(call, r, "reading the member");
                if (r == 1) {
                        identity_name_mask(u.display_name, masked, sizeof masked);
                        resp->vip = privileged && u.vip;
                }
        }
        resp->masked_name = sb_call_strdup(call, masked);
        return SB_OK;
}
