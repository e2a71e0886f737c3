/* The identity service against the real process (with the real wallet): registration and its bonus, referral
 * codes, bad input, sign-in limits and lock-out, refresh rotation and reuse, sign-out, forged and expired tokens,
 * the first admin from sharebuyctl, role grants, staff, terminal pairing, cashier sign-in, member QR codes (PNG
 * decoded by zbarimg, resolved, replayed, forged, expired, wrong merchant), activation through the wallet, the
 * audit trail, a token accepted by the wallet without asking identity, the per-address registration limit. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "identity_util.h"
#include "sb_stack.h"
#include "sb_test.h"
#include "sharebuy/identity/v1/identity.pb-c.h"
#include "sharebuy/wallet/v1/wallet.pb-c.h"

#define ID "/sharebuy.identity.v1.Identity/"
#define PW "correct-horse-9"

static sb_test_stack *st;
static char reason[SB_RPC_REASON_MAX];
static char msg[512];
/* Every response a check kept, freed at the end. */
static ProtobufCMessage *kept[1024];
static size_t n_kept;

static sb_status callx(const char *svc, const char *path, const char *token, const ProtobufCMessage *req,
                       const ProtobufCMessageDescriptor *d, void *ret) {
        sb_test_call_opts o = { .deadline_ms = 20000, .bearer = token, .reason = reason, .msg = msg,
                                .msg_n = sizeof msg };
        ProtobufCMessage *resp = NULL;
        sb_status s = sb_test_stack_call(st, svc, path, req, d, &o, ret ? (void **)&resp : NULL);
        if (ret) {
                *(ProtobufCMessage **)ret = resp;
                if (resp) {
                        SB_CHECK(n_kept < sizeof kept / sizeof kept[0]);
                        kept[n_kept++] = resp;
                }
        } else if (resp)
                protobuf_c_message_free_unpacked(resp, NULL);
        return s;
}

#define CALL(method, token, req, T, ret)                                                                             \
        callx("identity", ID method, token, &(req).base, &sharebuy__identity__v1__##T##__descriptor, ret)

#define EXPECT(s, code, why)                                                                                         \
        do {                                                                                                           \
                sb_status s_ = (s);                                                                                   \
                if (s_ != (code) || strcmp(reason, why) != 0) {                                                      \
                        fprintf(stderr, "%s:%d: got %s %s (%s), want %s %s\n", __FILE__, __LINE__,                   \
                                sb_status_name(s_), reason, msg, sb_status_name(code), why);                          \
                        abort();                                                                                      \
                }                                                                                                     \
        } while (0)

static void random_phone(char out[12]) {
        snprintf(out, 12, "13%09u", (unsigned)(randombytes_uniform(1000000000)));
}

static Sharebuy__Identity__V1__RegisterMemberResponse *reg(const char *phone, const char *code) {
        Sharebuy__Identity__V1__RegisterMemberRequest r = SHAREBUY__IDENTITY__V1__REGISTER_MEMBER_REQUEST__INIT;
        r.phone = (char *)phone;
        r.password = (char *)PW;
        r.referral_code = (char *)(code ? code : "");
        r.display_name = (char *)"张三";
        Sharebuy__Identity__V1__RegisterMemberResponse *resp = NULL;
        sb_status s = CALL("RegisterMember", NULL, r, register_member_response, &resp);
        if (s != SB_OK)
                fprintf(stderr, "register: %s %s %s\n", sb_status_name(s), reason, msg);
        SB_CHECK_EQ(s, SB_OK);
        return resp;
}

static sb_status sign_in(const char *login, const char *pw, int role, uint64_t merchant,
                         Sharebuy__Identity__V1__TokenPair **ret) {
        Sharebuy__Identity__V1__SignInRequest r = SHAREBUY__IDENTITY__V1__SIGN_IN_REQUEST__INIT;
        r.login = (char *)login;
        r.password = (char *)pw;
        r.role = (Sharebuy__Common__V1__Role)role;
        r.merchant_id = merchant;
        return CALL("SignIn", NULL, r, token_pair, ret);
}

static int64_t balance(const char *token, uint64_t member, int64_t *ret_active) {
        Sharebuy__Wallet__V1__GetBalancesRequest r = SHAREBUY__WALLET__V1__GET_BALANCES_REQUEST__INIT;
        Sharebuy__Common__V1__OwnerRef o = SHAREBUY__COMMON__V1__OWNER_REF__INIT;
        if (member) {
                o.kind = SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_MEMBER;
                o.id = member;
                r.owner = &o;
        }
        Sharebuy__Wallet__V1__GetBalancesResponse *b = NULL;
        sb_status s = callx("wallet", "/sharebuy.wallet.v1.Wallet/GetBalances", token, &r.base,
                            &sharebuy__wallet__v1__get_balances_response__descriptor, &b);
        if (s != SB_OK)
                fprintf(stderr, "balances: %s %s\n", sb_status_name(s), msg);
        SB_CHECK_EQ(s, SB_OK);
        int64_t locked = b->cv_locked_units;
        if (ret_active)
                *ret_active = b->cv_active_units;
        return locked;
}

/* Audit rows of one type about one user, straight from the table. */
static int64_t count_events(sb_db *adb, uint64_t user, int64_t type) {
        sb_db_stmt *q;
        SB_CHECK_EQ(sb_db_prepare(adb,
                                  "SELECT COUNT(*) FROM sharebuy_identity.audit_events WHERE subject_user_id = ? AND "
                                  "type = ?",
                                  &q),
                    0);
        sb_db_bind_u64(q, 0, user);
        sb_db_bind_i64(q, 1, type);
        SB_CHECK_EQ(sb_db_execute(q), 0);
        SB_CHECK_EQ(sb_db_fetch(q), 1);
        int64_t n = -1;
        sb_db_col_i64(q, 0, &n);
        while (sb_db_fetch(q) == 1) {
        }
        return n;
}

int main(void) {
        SB_CHECK(sodium_init() >= 0);
        st = sb_test_stack_new((const char *const[]){ "identity", "wallet", NULL });
        sb_test_stack_env(st, "identity", "SB_IDENTITY_LOCK_FAILURES", "3");
        sb_test_stack_env(st, "identity", "SB_IDENTITY_SIGNIN_PEER_FAILURES", "1000");
        sb_test_stack_env(st, "identity", "SB_IDENTITY_REGISTER_PER_PEER", "1000");
        sb_test_stack_start_all(st);
        char svc[SB_AUTH_TOKEN_MAX];
        sb_test_stack_role_token(st, SB_ROLE_SERVICE, 0, 0, 0, 0, svc);

        /* --- registration, the bonus, a token the wallet accepts on its own --- */
        char pa[12], pb[12], pc[12], pd[12];
        random_phone(pa);
        random_phone(pb);
        random_phone(pc);
        random_phone(pd);
        Sharebuy__Identity__V1__RegisterMemberResponse *ra = reg(pa, NULL);
        uint64_t a = ra->member->member_id;
        SB_CHECK(ra->bonus_transaction_id != 0);
        SB_CHECK_EQ(ra->bonus_cv_locked_units, 3000000);
        SB_CHECK(strlen(ra->member->referral_code) == 8);
        SB_CHECK(strncmp(ra->member->masked_phone, pa, 3) == 0 && strstr(ra->member->masked_phone, "****"));
        char tok_a[SB_AUTH_TOKEN_MAX];
        snprintf(tok_a, sizeof tok_a, "%s", ra->tokens->access_token);
        char code_a[16];
        snprintf(code_a, sizeof code_a, "%s", ra->member->referral_code);
        /* The wallet verifies identity's token offline: identity is stopped meanwhile to prove it. */
        SB_CHECK_EQ(sb_test_stack_kill(st, "identity", SIGTERM), 0);
        SB_CHECK_EQ(balance(tok_a, 0, NULL), 3000000);
        SB_CHECK_EQ(sb_test_stack_start_service(st, "identity"), 0);

        /* --- bad registrations: each a clear status, nothing created --- */
        Sharebuy__Identity__V1__RegisterMemberRequest r = SHAREBUY__IDENTITY__V1__REGISTER_MEMBER_REQUEST__INIT;
        r.phone = (char *)"12345678901";
        r.password = (char *)PW;
        EXPECT(CALL("RegisterMember", NULL, r, register_member_response, NULL), SB_INVALID_ARGUMENT,
               "REASON_PHONE_INVALID");
        r.phone = pd;
        r.password = (char *)"12345678";
        EXPECT(CALL("RegisterMember", NULL, r, register_member_response, NULL), SB_INVALID_ARGUMENT,
               "REASON_PASSWORD_WEAK");
        r.password = (char *)"short";
        EXPECT(CALL("RegisterMember", NULL, r, register_member_response, NULL), SB_INVALID_ARGUMENT,
               "REASON_PASSWORD_WEAK");
        r.password = (char *)PW;
        r.phone = pa;
        EXPECT(CALL("RegisterMember", NULL, r, register_member_response, NULL), SB_ALREADY_EXISTS,
               "REASON_PHONE_TAKEN");
        r.phone = pd;
        r.referral_code = (char *)"ZZZZZZZZ";
        EXPECT(CALL("RegisterMember", NULL, r, register_member_response, NULL), SB_NOT_FOUND,
               "REASON_REFERRAL_CODE_UNKNOWN");
        r.referral_code = pd;
        EXPECT(CALL("RegisterMember", NULL, r, register_member_response, NULL), SB_INVALID_ARGUMENT,
               "REASON_REFERRAL_SELF");
        r.referral_code = (char *)"";
        r.display_name = (char *)"a-name-much-longer-than-thirty-two-characters";
        EXPECT(CALL("RegisterMember", NULL, r, register_member_response, NULL), SB_INVALID_ARGUMENT,
               "REASON_FIELD_INVALID");
        r.display_name = (char *)"bad\xff\xfeutf8";
        EXPECT(CALL("RegisterMember", NULL, r, register_member_response, NULL), SB_INVALID_ARGUMENT,
               "REASON_FIELD_INVALID");
        r.display_name = (char *)"";
        Sharebuy__Identity__V1__GetMemberRequest gm = SHAREBUY__IDENTITY__V1__GET_MEMBER_REQUEST__INIT;
        gm.key_case = SHAREBUY__IDENTITY__V1__GET_MEMBER_REQUEST__KEY_PHONE;
        gm.phone = pd;
        EXPECT(CALL("GetMember", svc, gm, member, NULL), SB_NOT_FOUND, "REASON_MEMBER_UNKNOWN");

        /* --- referral: B by A's code (lower case works), a loop refused --- */
        char lower[16];
        for (int i = 0; code_a[i]; i++)
                lower[i] = (char)(code_a[i] >= 'A' && code_a[i] <= 'Z' ? code_a[i] + 32 : code_a[i]);
        lower[8] = '\0';
        Sharebuy__Identity__V1__RegisterMemberResponse *rb = reg(pb, lower);
        uint64_t b = rb->member->member_id;
        SB_CHECK(rb->member->referrer && rb->member->referrer->id == a);
        sb_db *adb = sb_test_stack_admin_db(st);
        char sql[256];
        snprintf(sql, sizeof sql, "UPDATE sharebuy_identity.users SET referrer_kind = 1, referrer_id = %" PRIu64
                 " WHERE user_id = %" PRIu64, b, a);
        SB_CHECK_EQ(sb_db_exec_text(adb, sql, strlen(sql)), 0);
        r.phone = pc;
        r.referral_code = code_a;
        EXPECT(CALL("RegisterMember", NULL, r, register_member_response, NULL), SB_FAILED_PRECONDITION,
               "REASON_REFERRAL_LOOP");
        snprintf(sql, sizeof sql, "UPDATE sharebuy_identity.users SET referrer_kind = 0, referrer_id = 0 WHERE "
                 "user_id = %" PRIu64, a);
        SB_CHECK_EQ(sb_db_exec_text(adb, sql, strlen(sql)), 0);
        Sharebuy__Identity__V1__ResolveReferralCodeRequest rr = SHAREBUY__IDENTITY__V1__RESOLVE_REFERRAL_CODE_REQUEST__INIT;
        rr.referral_code = code_a;
        Sharebuy__Identity__V1__ResolveReferralCodeResponse *rrr = NULL;
        SB_CHECK_EQ(CALL("ResolveReferralCode", NULL, rr, resolve_referral_code_response, &rrr), SB_OK);
        SB_CHECK(rrr->owner->id == a && strcmp(rrr->masked_name, "张*") == 0);

        /* --- sign-in, lock-out, refresh rotation and reuse, sign-out --- */
        Sharebuy__Identity__V1__TokenPair *tp = NULL;
        EXPECT(sign_in(pb, "wrong-password-1", 0, 0, NULL), SB_UNAUTHENTICATED, "REASON_BAD_CREDENTIALS");
        EXPECT(sign_in("13000000000", "wrong-password-1", 0, 0, NULL), SB_UNAUTHENTICATED, "REASON_BAD_CREDENTIALS");
        EXPECT(sign_in(pb, "wrong-password-1", 0, 0, NULL), SB_UNAUTHENTICATED, "REASON_BAD_CREDENTIALS");
        EXPECT(sign_in(pb, "wrong-password-1", 0, 0, NULL), SB_UNAUTHENTICATED, "REASON_BAD_CREDENTIALS");
        EXPECT(sign_in(pb, PW, 0, 0, NULL), SB_RESOURCE_EXHAUSTED, "REASON_ACCOUNT_LOCKED");
        SB_CHECK(strstr(msg, "try again in"));
        snprintf(sql, sizeof sql, "UPDATE sharebuy_identity.users SET locked_until_ms = 0 WHERE user_id = %" PRIu64, b);
        SB_CHECK_EQ(sb_db_exec_text(adb, sql, strlen(sql)), 0);
        EXPECT(sign_in("", PW, 0, 0, NULL), SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID");
        SB_CHECK_EQ(sign_in(pa, PW, 0, 0, &tp), SB_OK);
        SB_CHECK(tp->principal->role == SHAREBUY__COMMON__V1__ROLE__ROLE_MEMBER && tp->principal->user_id == a);
        char refresh1[128];
        snprintf(refresh1, sizeof refresh1, "%s", tp->refresh_token);
        Sharebuy__Identity__V1__RefreshRequest rf = SHAREBUY__IDENTITY__V1__REFRESH_REQUEST__INIT;
        rf.refresh_token = refresh1;
        Sharebuy__Identity__V1__TokenPair *tp2 = NULL;
        SB_CHECK_EQ(CALL("Refresh", NULL, rf, token_pair, &tp2), SB_OK);
        SB_CHECK(strcmp(tp2->refresh_token, refresh1) != 0);
        EXPECT(CALL("Refresh", NULL, rf, token_pair, NULL), SB_UNAUTHENTICATED, "REASON_TOKEN_REVOKED");
        rf.refresh_token = tp2->refresh_token; /* the whole session died with the replay */
        EXPECT(CALL("Refresh", NULL, rf, token_pair, NULL), SB_UNAUTHENTICATED, "REASON_TOKEN_REVOKED");
        SB_CHECK_EQ(sign_in(pa, PW, 0, 0, &tp), SB_OK);
        Sharebuy__Identity__V1__SignOutRequest so = SHAREBUY__IDENTITY__V1__SIGN_OUT_REQUEST__INIT;
        so.refresh_token = tp->refresh_token;
        SB_CHECK_EQ(CALL("SignOut", tp->access_token, so, sign_out_response, NULL), SB_OK);
        rf.refresh_token = tp->refresh_token;
        EXPECT(CALL("Refresh", NULL, rf, token_pair, NULL), SB_UNAUTHENTICATED, "REASON_TOKEN_REVOKED");

        /* --- forged and expired access tokens --- */
        Sharebuy__Identity__V1__GetMeRequest me = SHAREBUY__IDENTITY__V1__GET_ME_REQUEST__INIT;
        Sharebuy__Identity__V1__GetMeResponse *mer = NULL;
        SB_CHECK_EQ(CALL("GetMe", tok_a, me, get_me_response, &mer), SB_OK);
        SB_CHECK(mer->member && mer->member->member_id == a && strcmp(mer->member->phone, pa) == 0);
        char forged[SB_AUTH_TOKEN_MAX];
        snprintf(forged, sizeof forged, "%s", tok_a);
        size_t fl = strlen(forged);
        forged[fl - 5] = forged[fl - 5] == 'A' ? 'B' : 'A';
        EXPECT(CALL("GetMe", forged, me, get_me_response, NULL), SB_UNAUTHENTICATED, "REASON_TOKEN_INVALID");
        sb_claims ec = { .role = SB_ROLE_MEMBER, .uid = a, .iat = time(NULL) - 4000, .exp = time(NULL) - 3000 };
        snprintf(ec.sub, sizeof ec.sub, "member:%" PRIu64, a);
        char expired[SB_AUTH_TOKEN_MAX];
        SB_CHECK(sb_test_stack_token(st, &ec, expired, sizeof expired) > 0);
        EXPECT(CALL("GetMe", expired, me, get_me_response, NULL), SB_UNAUTHENTICATED, "REASON_TOKEN_EXPIRED");

        /* --- the first admin, role grants, staff --- */
        char admin_login[32];
        snprintf(admin_login, sizeof admin_login, "admin%u", (unsigned)randombytes_uniform(100000000));
        setenv("SB_ADMIN_PASSWORD", "admin-pass-123", 1);
        SB_CHECK_EQ(sb_test_stack_ctl(st, NULL, (const char *const[]){ "admin", "create", "--login", admin_login,
                                                                         "--name", "Root", NULL }),
                    0);
        SB_CHECK_EQ(sign_in(admin_login, "admin-pass-123", 0, 0, &tp), SB_OK);
        SB_CHECK(tp->principal->role == SHAREBUY__COMMON__V1__ROLE__ROLE_ADMIN);
        char tok_admin[SB_AUTH_TOKEN_MAX];
        snprintf(tok_admin, sizeof tok_admin, "%s", tp->access_token);
        uint64_t m1 = 1000000 + randombytes_uniform(100000000), m2 = m1 + 1;
        Sharebuy__Identity__V1__RoleGrant g = SHAREBUY__IDENTITY__V1__ROLE_GRANT__INIT;
        g.role = SHAREBUY__COMMON__V1__ROLE__ROLE_MERCHANT_OWNER;
        g.merchant_id = m1;
        Sharebuy__Identity__V1__GrantRoleRequest gr = SHAREBUY__IDENTITY__V1__GRANT_ROLE_REQUEST__INIT;
        gr.user_id = b;
        gr.grant = &g;
        SB_CHECK_EQ(CALL("GrantRole", tok_admin, gr, role_grant, NULL), SB_OK);
        EXPECT(CALL("GrantRole", tok_a, gr, role_grant, NULL), SB_PERMISSION_DENIED, "REASON_ROLE_NOT_ALLOWED");
        SB_CHECK_EQ(sign_in(pb, PW, SB_ROLE_MERCHANT_OWNER, 0, &tp), SB_OK);
        SB_CHECK(tp->principal->merchant_id == m1);
        char tok_owner[SB_AUTH_TOKEN_MAX];
        snprintf(tok_owner, sizeof tok_owner, "%s", tp->access_token);
        /* A second merchant with its own owner and cashier. */
        Sharebuy__Identity__V1__CreateStaffRequest cs = SHAREBUY__IDENTITY__V1__CREATE_STAFF_REQUEST__INIT;
        char owner2[32];
        snprintf(owner2, sizeof owner2, "owner%" PRIu64, m2);
        cs.role = SHAREBUY__COMMON__V1__ROLE__ROLE_MERCHANT_OWNER;
        cs.login = owner2;
        cs.initial_password = (char *)"owner-pass-123";
        cs.merchant_id = m2;
        SB_CHECK_EQ(CALL("CreateStaff", tok_admin, cs, staff, NULL), SB_OK);
        SB_CHECK_EQ(sign_in(owner2, "owner-pass-123", 0, 0, &tp), SB_OK);
        char tok_owner2[SB_AUTH_TOKEN_MAX];
        snprintf(tok_owner2, sizeof tok_owner2, "%s", tp->access_token);
        SB_CHECK(tp->must_change_password);
        cs.role = SHAREBUY__COMMON__V1__ROLE__ROLE_CASHIER;
        cs.login = (char *)"cashier1";
        cs.initial_password = (char *)"cashier-pass-1";
        cs.merchant_id = 0;
        SB_CHECK_EQ(CALL("CreateStaff", tok_owner, cs, staff, NULL), SB_OK);
        EXPECT(CALL("CreateStaff", tok_owner, cs, staff, NULL), SB_ALREADY_EXISTS, "REASON_LOGIN_TAKEN");
        cs.login = (char *)"cashier2";
        SB_CHECK_EQ(CALL("CreateStaff", tok_owner2, cs, staff, NULL), SB_OK);
        cs.role = SHAREBUY__COMMON__V1__ROLE__ROLE_ADMIN;
        cs.login = (char *)"sneaky";
        EXPECT(CALL("CreateStaff", tok_owner, cs, staff, NULL), SB_PERMISSION_DENIED, "REASON_ROLE_NOT_ALLOWED");

        /* --- terminals: register, pair (once), cashier sign-in --- */
        Sharebuy__Identity__V1__RegisterTerminalRequest rt = SHAREBUY__IDENTITY__V1__REGISTER_TERMINAL_REQUEST__INIT;
        rt.label = (char *)"收银台 1";
        Sharebuy__Identity__V1__RegisterTerminalResponse *rtr = NULL;
        SB_CHECK_EQ(CALL("RegisterTerminal", tok_owner, rt, register_terminal_response, &rtr), SB_OK);
        SB_CHECK(identity_pairing_code_valid(rtr->pairing_code));
        uint64_t t1 = rtr->terminal->terminal_id;
        Sharebuy__Identity__V1__PairTerminalRequest pt = SHAREBUY__IDENTITY__V1__PAIR_TERMINAL_REQUEST__INIT;
        pt.pairing_code = rtr->pairing_code;
        pt.device_name = (char *)"POS-1";
        Sharebuy__Identity__V1__PairTerminalResponse *ptr = NULL;
        SB_CHECK_EQ(CALL("PairTerminal", NULL, pt, pair_terminal_response, &ptr), SB_OK);
        SB_CHECK(ptr->tokens->principal->role == SHAREBUY__COMMON__V1__ROLE__ROLE_TERMINAL);
        SB_CHECK(ptr->tokens->principal->terminal_id == t1 && ptr->tokens->principal->merchant_id == m1);
        EXPECT(CALL("PairTerminal", NULL, pt, pair_terminal_response, NULL), SB_UNAUTHENTICATED,
               "REASON_PAIRING_CODE_INVALID");
        pt.pairing_code = (char *)"12ab";
        EXPECT(CALL("PairTerminal", NULL, pt, pair_terminal_response, NULL), SB_INVALID_ARGUMENT,
               "REASON_FIELD_INVALID");
        char tok_term[SB_AUTH_TOKEN_MAX];
        snprintf(tok_term, sizeof tok_term, "%s", ptr->tokens->access_token);
        Sharebuy__Identity__V1__CashierSignInRequest ci = SHAREBUY__IDENTITY__V1__CASHIER_SIGN_IN_REQUEST__INIT;
        ci.login = (char *)"cashier1";
        ci.password = (char *)"cashier-pass-1";
        SB_CHECK_EQ(CALL("CashierSignIn", tok_term, ci, token_pair, &tp), SB_OK);
        SB_CHECK(tp->principal->role == SHAREBUY__COMMON__V1__ROLE__ROLE_CASHIER && tp->principal->merchant_id == m1 &&
                 tp->principal->terminal_id == t1 && tp->principal->user_id != 0);
        char tok_cashier[SB_AUTH_TOKEN_MAX];
        snprintf(tok_cashier, sizeof tok_cashier, "%s", tp->access_token);
        uint64_t cashier1 = tp->principal->user_id;
        ci.login = (char *)"cashier2"; /* merchant 2's cashier on merchant 1's terminal */
        EXPECT(CALL("CashierSignIn", tok_term, ci, token_pair, NULL), SB_PERMISSION_DENIED, "REASON_SCOPE_MISMATCH");
        EXPECT(CALL("CashierSignIn", tok_owner, ci, token_pair, NULL), SB_PERMISSION_DENIED,
               "REASON_ROLE_NOT_ALLOWED");

        /* --- a cashier calling admin RPCs --- */
        Sharebuy__Identity__V1__ListAuditEventsRequest la = SHAREBUY__IDENTITY__V1__LIST_AUDIT_EVENTS_REQUEST__INIT;
        EXPECT(CALL("ListAuditEvents", tok_cashier, la, list_audit_events_response, NULL), SB_PERMISSION_DENIED,
               "REASON_ROLE_NOT_ALLOWED");
        EXPECT(CALL("GrantRole", tok_cashier, gr, role_grant, NULL), SB_PERMISSION_DENIED, "REASON_ROLE_NOT_ALLOWED");

        /* --- ListStaff: each caller within its scope, paging, filters, disabled users --- */
        {
                Sharebuy__Identity__V1__ListStaffRequest ls = SHAREBUY__IDENTITY__V1__LIST_STAFF_REQUEST__INIT;
                Sharebuy__Identity__V1__ListStaffResponse *lr = NULL;
                /* The owner of m1 sees its cashier only, with the grant of its merchant. */
                SB_CHECK_EQ(CALL("ListStaff", tok_owner, ls, list_staff_response, &lr), SB_OK);
                SB_CHECK_EQ(lr->n_staff, 1);
                SB_CHECK(lr->staff[0]->user_id == cashier1 && strcmp(lr->staff[0]->login, "cashier1") == 0);
                SB_CHECK(lr->staff[0]->n_grants == 1 &&
                         lr->staff[0]->grants[0]->role == SHAREBUY__COMMON__V1__ROLE__ROLE_CASHIER &&
                         lr->staff[0]->grants[0]->merchant_id == m1);
                SB_CHECK(lr->page && lr->page->next_page_token[0] == '\0');
                ls.merchant_id = m2; /* another merchant's cashiers */
                EXPECT(CALL("ListStaff", tok_owner, ls, list_staff_response, NULL), SB_PERMISSION_DENIED,
                       "REASON_SCOPE_MISMATCH");
                ls.merchant_id = 0;
                ls.role = SHAREBUY__COMMON__V1__ROLE__ROLE_ADMIN; /* a role it may not see */
                EXPECT(CALL("ListStaff", tok_owner, ls, list_staff_response, NULL), SB_PERMISSION_DENIED,
                       "REASON_SCOPE_MISMATCH");
                ls.role = SHAREBUY__COMMON__V1__ROLE__ROLE_MEMBER;
                EXPECT(CALL("ListStaff", tok_admin, ls, list_staff_response, NULL), SB_INVALID_ARGUMENT,
                       "REASON_FIELD_INVALID");
                ls.role = 0;
                EXPECT(CALL("ListStaff", tok_cashier, ls, list_staff_response, NULL), SB_PERMISSION_DENIED,
                       "REASON_ROLE_NOT_ALLOWED");
                EXPECT(CALL("ListStaff", tok_a, ls, list_staff_response, NULL), SB_PERMISSION_DENIED,
                       "REASON_ROLE_NOT_ALLOWED");
                EXPECT(CALL("ListStaff", NULL, ls, list_staff_response, NULL), SB_UNAUTHENTICATED,
                       "REASON_TOKEN_MISSING");

                /* The admin filtered by merchant m1: the member made owner (no login) and the cashier. */
                ls.merchant_id = m1;
                SB_CHECK_EQ(CALL("ListStaff", tok_admin, ls, list_staff_response, &lr), SB_OK);
                SB_CHECK_EQ(lr->n_staff, 2);
                SB_CHECK(lr->staff[0]->user_id == b && lr->staff[0]->login[0] == '\0');
                SB_CHECK(lr->staff[1]->user_id == cashier1);
                ls.role = SHAREBUY__COMMON__V1__ROLE__ROLE_MERCHANT_OWNER;
                SB_CHECK_EQ(CALL("ListStaff", tok_admin, ls, list_staff_response, &lr), SB_OK);
                SB_CHECK(lr->n_staff == 1 && lr->staff[0]->user_id == b);

                /* A centre with three operators (a fresh centre id): paged one by one, tokens bound to filters. */
                uint64_t centre = 2000000 + randombytes_uniform(100000000);
                uint64_t ops[3];
                for (int i = 0; i < 3; i++) {
                        Sharebuy__Identity__V1__CreateStaffRequest co = SHAREBUY__IDENTITY__V1__CREATE_STAFF_REQUEST__INIT;
                        char login[32];
                        snprintf(login, sizeof login, "op%" PRIu64 "-%d", centre, i);
                        co.role = SHAREBUY__COMMON__V1__ROLE__ROLE_CENTRE_OPERATOR;
                        co.login = login;
                        co.initial_password = (char *)"operator-pass-1";
                        co.centre_id = centre;
                        Sharebuy__Identity__V1__Staff *opr = NULL;
                        SB_CHECK_EQ(CALL("CreateStaff", tok_admin, co, staff, &opr), SB_OK);
                        ops[i] = opr->user_id;
                }
                char tok_op[SB_AUTH_TOKEN_MAX], tok_op_other[SB_AUTH_TOKEN_MAX];
                sb_test_stack_role_token(st, SB_ROLE_CENTRE_OPERATOR, ops[0], 0, 0, centre, tok_op);
                sb_test_stack_role_token(st, SB_ROLE_CENTRE_OPERATOR, ops[0], 0, 0, centre + 1, tok_op_other);
                ls = (Sharebuy__Identity__V1__ListStaffRequest)SHAREBUY__IDENTITY__V1__LIST_STAFF_REQUEST__INIT;
                Sharebuy__Common__V1__PageRequest pg = SHAREBUY__COMMON__V1__PAGE_REQUEST__INIT;
                pg.page_size = 1;
                ls.page = &pg;
                char tok_page[160] = "";
                for (int i = 0; i < 3; i++) {
                        pg.page_token = tok_page;
                        SB_CHECK_EQ(CALL("ListStaff", tok_op, ls, list_staff_response, &lr), SB_OK);
                        SB_CHECK(lr->n_staff == 1 && lr->staff[0]->user_id == ops[i]);
                        SB_CHECK(lr->staff[0]->must_change_password && lr->staff[0]->n_grants == 1 &&
                                 lr->staff[0]->grants[0]->centre_id == centre);
                        SB_CHECK((i < 2) == (lr->page->next_page_token[0] != '\0'));
                        snprintf(tok_page, sizeof tok_page, "%s", lr->page->next_page_token);
                        if (i == 0) {
                                /* The same token with other filters, or altered, is refused. */
                                char saved[160];
                                snprintf(saved, sizeof saved, "%s", tok_page);
                                pg.page_token = saved;
                                ls.include_disabled = true;
                                EXPECT(CALL("ListStaff", tok_op, ls, list_staff_response, NULL), SB_INVALID_ARGUMENT,
                                       "REASON_PAGE_TOKEN_INVALID");
                                ls.include_disabled = false;
                                pg.page_token = (char *)"s5.0.1.0.x";
                                EXPECT(CALL("ListStaff", tok_op, ls, list_staff_response, NULL), SB_INVALID_ARGUMENT,
                                       "REASON_PAGE_TOKEN_INVALID");
                        }
                }
                /* Another centre's operator sees none of them and may not ask for them. */
                pg.page_token = (char *)"";
                SB_CHECK_EQ(CALL("ListStaff", tok_op_other, ls, list_staff_response, &lr), SB_OK);
                SB_CHECK_EQ(lr->n_staff, 0);
                ls.centre_id = centre;
                EXPECT(CALL("ListStaff", tok_op_other, ls, list_staff_response, NULL), SB_PERMISSION_DENIED,
                       "REASON_SCOPE_MISMATCH");
                /* A disabled operator is left out unless asked for; a huge page size is lowered, not refused. */
                Sharebuy__Identity__V1__SetStaffDisabledRequest sd = SHAREBUY__IDENTITY__V1__SET_STAFF_DISABLED_REQUEST__INIT;
                sd.user_id = ops[1];
                sd.disabled = true;
                sd.reason = (char *)"left the centre";
                SB_CHECK_EQ(CALL("SetStaffDisabled", tok_admin, sd, staff, NULL), SB_OK);
                pg.page_size = 1000000;
                SB_CHECK_EQ(CALL("ListStaff", tok_admin, ls, list_staff_response, &lr), SB_OK);
                SB_CHECK(lr->n_staff == 2 && lr->staff[0]->user_id == ops[0] && lr->staff[1]->user_id == ops[2]);
                ls.include_disabled = true;
                SB_CHECK_EQ(CALL("ListStaff", tok_admin, ls, list_staff_response, &lr), SB_OK);
                SB_CHECK(lr->n_staff == 3 && lr->staff[1]->disabled);
        }

        /* --- member QR: issue, decode the PNG with zbarimg, resolve, replay, reuse, forged, expired --- */
        Sharebuy__Identity__V1__IssueMemberCodeRequest ic = SHAREBUY__IDENTITY__V1__ISSUE_MEMBER_CODE_REQUEST__INIT;
        Sharebuy__Identity__V1__IssueMemberCodeResponse *icr = NULL;
        SB_CHECK_EQ(CALL("IssueMemberCode", tok_a, ic, issue_member_code_response, &icr), SB_OK);
        SB_CHECK(icr->png.len > 100 && strstr(icr->svg, "<svg"));
        int64_t ttl = icr->expires_unix_ms - (int64_t)time(NULL) * 1000;
        SB_CHECK(ttl > 110000 && ttl <= 121000);
        char png_path[512], cmd[700];
        snprintf(png_path, sizeof png_path, "%s/member.png", sb_test_stack_dir(st));
        FILE *f = fopen(png_path, "wb");
        SB_CHECK(f && fwrite(icr->png.data, 1, icr->png.len, f) == icr->png.len && fclose(f) == 0);
        snprintf(cmd, sizeof cmd, "zbarimg --quiet --raw '%s'", png_path);
        FILE *p = popen(cmd, "r");
        char decoded[512] = "";
        SB_CHECK(p && fgets(decoded, sizeof decoded, p));
        pclose(p);
        decoded[strcspn(decoded, "\r\n")] = '\0';
        SB_CHECK(strcmp(decoded, icr->code) == 0);
        Sharebuy__Identity__V1__ResolveMemberCodeRequest rm = SHAREBUY__IDENTITY__V1__RESOLVE_MEMBER_CODE_REQUEST__INIT;
        rm.code = decoded;
        Sharebuy__Identity__V1__ResolveMemberCodeResponse *rmr = NULL;
        SB_CHECK_EQ(CALL("ResolveMemberCode", tok_cashier, rm, resolve_member_code_response, &rmr), SB_OK);
        SB_CHECK(rmr->member->member_id == a && !rmr->consumed && strstr(rmr->member->masked_phone, "****"));
        rm.consume_key = (char *)"sale:1:1";
        SB_CHECK_EQ(CALL("ResolveMemberCode", tok_cashier, rm, resolve_member_code_response, &rmr), SB_OK);
        SB_CHECK(rmr->consumed);
        SB_CHECK_EQ(CALL("ResolveMemberCode", tok_cashier, rm, resolve_member_code_response, &rmr), SB_OK);
        SB_CHECK(rmr->consumed); /* the same key again: a retried sale */
        rm.consume_key = (char *)"sale:1:2";
        EXPECT(CALL("ResolveMemberCode", tok_cashier, rm, resolve_member_code_response, NULL), SB_FAILED_PRECONDITION,
               "REASON_MEMBER_CODE_USED");
        EXPECT(CALL("ResolveMemberCode", tok_a, rm, resolve_member_code_response, NULL), SB_PERMISSION_DENIED,
               "REASON_ROLE_NOT_ALLOWED");
        /* B's code: referrers (A, level 1). */
        Sharebuy__Identity__V1__TokenPair *tpb = NULL;
        SB_CHECK_EQ(sign_in(pb, PW, SB_ROLE_MEMBER, 0, &tpb), SB_OK);
        SB_CHECK_EQ(CALL("IssueMemberCode", tpb->access_token, ic, issue_member_code_response, &icr), SB_OK);
        rm.code = icr->code;
        rm.consume_key = (char *)"";
        SB_CHECK_EQ(CALL("ResolveMemberCode", tok_cashier, rm, resolve_member_code_response, &rmr), SB_OK);
        SB_CHECK(rmr->n_referrers == 1 && rmr->referrers[0]->level == 1 && rmr->referrers[0]->owner->id == a &&
                 !rmr->referrers[0]->vip);
        /* Forged: one character of the signature changed. */
        char fc[300];
        snprintf(fc, sizeof fc, "%s", icr->code);
        size_t cl = strlen(fc);
        fc[cl - 3] = fc[cl - 3] == 'A' ? 'B' : 'A';
        rm.code = fc;
        EXPECT(CALL("ResolveMemberCode", tok_cashier, rm, resolve_member_code_response, NULL), SB_FAILED_PRECONDITION,
               "REASON_MEMBER_CODE_FORGED");
        rm.code = (char *)"not a code";
        EXPECT(CALL("ResolveMemberCode", tok_cashier, rm, resolve_member_code_response, NULL), SB_INVALID_ARGUMENT,
               "REASON_FIELD_INVALID");
        /* Expired: a code signed with identity's key whose time has passed. */
        sb_auth_signer *signer = NULL;
        char err[256];
        SB_CHECK_EQ(sb_auth_signer_load(sb_test_stack_private_key(st), &signer, err, sizeof err), 0);
        identity_member_code old = { .member_id = a, .expires_unix_s = time(NULL) - 10 };
        randombytes_buf(old.nonce, sizeof old.nonce);
        char body[128], oldtext[300];
        unsigned char sig[64];
        SB_CHECK(identity_member_code_body(&old, body, sizeof body) > 0);
        SB_CHECK_EQ(sb_auth_sign_bytes(signer, body, strlen(body), sig), 0);
        SB_CHECK(identity_member_code_join(body, sig, oldtext, sizeof oldtext) > 0);
        sb_auth_signer_free(signer);
        rm.code = oldtext;
        EXPECT(CALL("ResolveMemberCode", tok_cashier, rm, resolve_member_code_response, NULL), SB_FAILED_PRECONDITION,
               "REASON_MEMBER_CODE_EXPIRED");
        /* A cashier of merchant 2 presenting merchant 1's terminal. */
        char tok_wrong[SB_AUTH_TOKEN_MAX];
        sb_test_stack_role_token(st, SB_ROLE_CASHIER, cashier1, m2, t1, 0, tok_wrong);
        rm.code = icr->code;
        EXPECT(CALL("ResolveMemberCode", tok_wrong, rm, resolve_member_code_response, NULL), SB_PERMISSION_DENIED,
               "REASON_SCOPE_MISMATCH");
        /* The member card printed by sharebuyctl resolves too, and is reusable. */
        char card_path[512], idbuf[32];
        snprintf(card_path, sizeof card_path, "%s/card.png", sb_test_stack_dir(st));
        snprintf(idbuf, sizeof idbuf, "%" PRIu64, a);
        setenv("SB_AUTH_SIGNING_KEY", sb_test_stack_private_key(st), 1);
        SB_CHECK_EQ(sb_test_stack_ctl(st, NULL, (const char *const[]){ "member", "card", "--member", idbuf, "--out",
                                                                         card_path, "--days", "30", NULL }),
                    0);
        snprintf(cmd, sizeof cmd, "zbarimg --quiet --raw '%s'", card_path);
        p = popen(cmd, "r");
        SB_CHECK(p && fgets(decoded, sizeof decoded, p));
        pclose(p);
        decoded[strcspn(decoded, "\r\n")] = '\0';
        rm.code = decoded;
        rm.consume_key = (char *)"sale:card:1";
        SB_CHECK_EQ(CALL("ResolveMemberCode", tok_cashier, rm, resolve_member_code_response, &rmr), SB_OK);
        rm.consume_key = (char *)"sale:card:2";
        SB_CHECK_EQ(CALL("ResolveMemberCode", tok_cashier, rm, resolve_member_code_response, &rmr), SB_OK);
        SB_CHECK(rmr->member->member_id == a);

        /* --- activation through the wallet --- */
        Sharebuy__Identity__V1__ActivateRequest ac = SHAREBUY__IDENTITY__V1__ACTIVATE_REQUEST__INIT;
        char ref1[40], ref2[40];
        snprintf(ref1, sizeof ref1, "pay-%u-a", (unsigned)randombytes_uniform(1000000000));
        snprintf(ref2, sizeof ref2, "pay-%u-b", (unsigned)randombytes_uniform(1000000000));
        ac.payment_reference = ref1;
        ac.member_case = SHAREBUY__IDENTITY__V1__ACTIVATE_REQUEST__MEMBER_MEMBER_ID;
        ac.member_id = a;
        ac.pack_price_fen = 12345;
        EXPECT(CALL("Activate", svc, ac, activation_result, NULL), SB_NOT_FOUND, "REASON_PACK_UNKNOWN");
        ac.pack_price_fen = 39900;
        ac.member_id = 999999999999ULL;
        EXPECT(CALL("Activate", svc, ac, activation_result, NULL), SB_NOT_FOUND, "REASON_MEMBER_UNKNOWN");
        ac.member_id = a;
        EXPECT(CALL("Activate", tok_cashier, ac, activation_result, NULL), SB_PERMISSION_DENIED,
               "REASON_ROLE_NOT_ALLOWED");
        EXPECT(CALL("Activate", tok_owner, ac, activation_result, NULL), SB_PERMISSION_DENIED,
               "REASON_ROLE_NOT_ALLOWED");
        Sharebuy__Identity__V1__ActivationResult *ar = NULL;
        SB_CHECK_EQ(CALL("Activate", svc, ac, activation_result, &ar), SB_OK);
        SB_CHECK_EQ(ar->cv_unlocked_units, 3000000);
        SB_CHECK_EQ(ar->cv_credited_units, 5990000);
        SB_CHECK_EQ(ar->cv_active_after_units, 8990000); /* worked example 7: 300 + 599 = 899 */
        SB_CHECK(ar->vip && !ar->replayed && ar->transaction_id);
        SB_CHECK_EQ(CALL("Activate", svc, ac, activation_result, &ar), SB_OK);
        SB_CHECK(ar->replayed && ar->cv_active_after_units == 8990000);
        ac.payment_reference = ref2;
        EXPECT(CALL("Activate", svc, ac, activation_result, NULL), SB_FAILED_PRECONDITION, "REASON_ALREADY_ACTIVATED");
        ac.payment_reference = ref1;
        ac.member_id = b;
        EXPECT(CALL("Activate", svc, ac, activation_result, NULL), SB_ALREADY_EXISTS,
               "REASON_IDEMPOTENCY_KEY_REUSED");
        /* B activates with the 99 pack; its referrer A is VIP now: +100 CV. */
        ac.payment_reference = ref2;
        ac.pack_price_fen = 9900;
        SB_CHECK_EQ(CALL("Activate", svc, ac, activation_result, &ar), SB_OK);
        SB_CHECK_EQ(ar->referrer_bonus_cv_units, 1000000);
        SB_CHECK(ar->referrer && ar->referrer->id == a);
        int64_t active = 0;
        SB_CHECK_EQ(balance(svc, a, &active), 0);
        SB_CHECK_EQ(active, 8990000 + 1000000);
        ac.payment_reference = ref1;
        ac.member_id = a;
        ac.pack_price_fen = 39900;
        Sharebuy__Identity__V1__ActivationResult *rep = NULL;
        EXPECT(CALL("RecordRepeatPack", svc, ac, activation_result, &rep), SB_ALREADY_EXISTS,
               "REASON_IDEMPOTENCY_KEY_REUSED");

        /* --- the audit trail: who, when, from where; never a secret --- */
        la.user_id = a;
        la.page = NULL;
        Sharebuy__Identity__V1__ListAuditEventsResponse *lr = NULL;
        SB_CHECK_EQ(CALL("ListAuditEvents", tok_admin, la, list_audit_events_response, &lr), SB_OK);
        bool seen_reg = false, seen_act = false, seen_in = false;
        for (size_t i = 0; i < lr->n_events; i++) {
                Sharebuy__Identity__V1__AuditEvent *e = lr->events[i];
                seen_reg |= e->type == SHAREBUY__IDENTITY__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_TYPE_REGISTERED;
                seen_act |= e->type == SHAREBUY__IDENTITY__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_TYPE_ACTIVATED;
                seen_in |= e->type == SHAREBUY__IDENTITY__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_TYPE_SIGN_IN;
                SB_CHECK(e->occurred_unix_ms > 0 && strstr(e->peer, "127.0.0.1"));
        }
        SB_CHECK(seen_reg && seen_act && seen_in);
        la.user_id = b;
        la.type = SHAREBUY__IDENTITY__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_TYPE_LOCKED_OUT;
        SB_CHECK_EQ(CALL("ListAuditEvents", tok_admin, la, list_audit_events_response, &lr), SB_OK);
        SB_CHECK_EQ(lr->n_events, 1);
        la.type = 0;
        la.user_id = 0;
        la.merchant_id = m1;
        la.type = SHAREBUY__IDENTITY__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_TYPE_TERMINAL_PAIRED;
        SB_CHECK_EQ(CALL("ListAuditEvents", tok_owner, la, list_audit_events_response, &lr), SB_OK);
        SB_CHECK_EQ(lr->n_events, 1);
        la.merchant_id = m2;
        EXPECT(CALL("ListAuditEvents", tok_owner, la, list_audit_events_response, NULL), SB_PERMISSION_DENIED,
               "REASON_SCOPE_MISMATCH");
        /* No password, token or code anywhere in the audit table. */
        sb_db_stmt *q;
        SB_CHECK_EQ(sb_db_prepare(adb,
                                  "SELECT COUNT(*) FROM sharebuy_identity.audit_events WHERE detail LIKE ? OR detail "
                                  "LIKE ? OR detail LIKE ? OR detail LIKE '%SBM1.%' OR detail LIKE '%sbr1_%'",
                                  &q),
                    0);
        sb_db_bind_str(q, 0, "%" PW "%");
        sb_db_bind_str(q, 1, "%cashier-pass-1%");
        sb_db_bind_str(q, 2, "%wrong-password-1%");
        SB_CHECK_EQ(sb_db_execute(q), 0);
        SB_CHECK_EQ(sb_db_fetch(q), 1);
        int64_t leaks = -1;
        sb_db_col_i64(q, 0, &leaks);
        SB_CHECK_EQ(leaks, 0);
        while (sb_db_fetch(q) == 1) {
        }

        /* --- public keys --- */
        Sharebuy__Identity__V1__GetPublicKeysRequest pk = SHAREBUY__IDENTITY__V1__GET_PUBLIC_KEYS_REQUEST__INIT;
        Sharebuy__Identity__V1__GetPublicKeysResponse *pkr = NULL;
        SB_CHECK_EQ(CALL("GetPublicKeys", NULL, pk, get_public_keys_response, &pkr), SB_OK);
        SB_CHECK(pkr->n_keys >= 2 && strcmp(pkr->keys[0]->alg, "ES256") == 0 && strlen(pkr->keys[0]->x) == 43);
        SB_CHECK(strstr(pkr->jwks_json, pkr->keys[0]->kid));

        /* --- the trail is written in batches: events wait in memory (here up to a minute), ListAuditEvents and
         * a graceful stop write them first --- */
        SB_CHECK_EQ(sb_test_stack_kill(st, "identity", SIGTERM), 0);
        sb_test_stack_env(st, "identity", "SB_IDENTITY_AUDIT_FLUSH", "60s");
        SB_CHECK_EQ(sb_test_stack_start_service(st, "identity"), 0);
        int64_t n_resolved[4] = {0};
        const int64_t resolved_type = SHAREBUY__IDENTITY__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_TYPE_MEMBER_CODE_RESOLVED;
        n_resolved[0] = count_events(adb, a, resolved_type);
        rm.consume_key = (char *)"sale:1:1"; /* a retried sale: resolves again, one event each */
        for (int i = 0; i < 5; i++)
                SB_CHECK_EQ(CALL("ResolveMemberCode", tok_cashier, rm, resolve_member_code_response, NULL), SB_OK);
        n_resolved[1] = count_events(adb, a, resolved_type);
        SB_CHECK_EQ(n_resolved[1], n_resolved[0]); /* still queued */
        la = (Sharebuy__Identity__V1__ListAuditEventsRequest)SHAREBUY__IDENTITY__V1__LIST_AUDIT_EVENTS_REQUEST__INIT;
        la.user_id = a;
        la.type = (Sharebuy__Identity__V1__AuditEventType)resolved_type;
        SB_CHECK_EQ(CALL("ListAuditEvents", tok_admin, la, list_audit_events_response, &lr), SB_OK);
        n_resolved[2] = count_events(adb, a, resolved_type);
        SB_CHECK_EQ(n_resolved[2], n_resolved[0] + 5); /* the list waited for them */
        size_t n_spent = 0;
        for (size_t i = 0; i < lr->n_events; i++)
                n_spent += strstr(lr->events[i]->detail, "code resolved and spent") != NULL;
        SB_CHECK(n_spent >= 5);
        for (int i = 0; i < 7; i++)
                SB_CHECK_EQ(CALL("ResolveMemberCode", tok_cashier, rm, resolve_member_code_response, NULL), SB_OK);
        SB_CHECK_EQ(sb_test_stack_kill(st, "identity", SIGTERM), 0);
        n_resolved[3] = count_events(adb, a, resolved_type);
        SB_CHECK_EQ(n_resolved[3], n_resolved[2] + 7); /* the graceful stop wrote them */

        /* --- a queued sale's code: a service gives the moment a terminal captured it; the code counts as of then,
         * within identity.offline_grace_max --- */
        sb_test_stack_env(st, "identity", "SB_IDENTITY_MEMBER_CODE_TTL", "10s");
        sb_test_stack_env(st, "identity", "SB_IDENTITY_OFFLINE_GRACE_MAX", "1h");
        SB_CHECK_EQ(sb_test_stack_start_service(st, "identity"), 0);
        SB_CHECK_EQ(CALL("IssueMemberCode", tok_a, ic, issue_member_code_response, &icr), SB_OK);
        const int64_t captured = icr->expires_unix_ms - 9000; /* a second after it was issued */
        Sharebuy__Identity__V1__ResolveMemberCodeRequest oq = SHAREBUY__IDENTITY__V1__RESOLVE_MEMBER_CODE_REQUEST__INIT;
        oq.code = icr->code;
        oq.merchant_id = m1;
        oq.consume_key = (char *)"sale:offline:1";
        struct timespec wait = { 11, 0 }; /* past the code's 10 s */
        nanosleep(&wait, NULL);
        EXPECT(CALL("ResolveMemberCode", tok_cashier, oq, resolve_member_code_response, NULL), SB_INVALID_ARGUMENT,
               "REASON_FIELD_INVALID"); /* a cashier cannot give a capture time (nor a merchant) */
        oq.merchant_id = 0;
        EXPECT(CALL("ResolveMemberCode", tok_cashier, oq, resolve_member_code_response, NULL), SB_FAILED_PRECONDITION,
               "REASON_MEMBER_CODE_EXPIRED"); /* live: expired now */
        oq.merchant_id = m1;
        oq.captured_unix_ms = captured;
        Sharebuy__Identity__V1__ResolveMemberCodeResponse *orr = NULL;
        SB_CHECK_EQ(CALL("ResolveMemberCode", svc, oq, resolve_member_code_response, &orr), SB_OK);
        SB_CHECK(orr->member->member_id == a && orr->consumed);
        oq.captured_unix_ms = icr->expires_unix_ms + 1000; /* captured after it expired */
        EXPECT(CALL("ResolveMemberCode", svc, oq, resolve_member_code_response, NULL), SB_FAILED_PRECONDITION,
               "REASON_MEMBER_CODE_EXPIRED");
        oq.captured_unix_ms = captured - 2 * 3600 * 1000; /* older than identity.offline_grace_max */
        EXPECT(CALL("ResolveMemberCode", svc, oq, resolve_member_code_response, NULL), SB_FAILED_PRECONDITION,
               "REASON_MEMBER_CODE_EXPIRED");
        SB_CHECK(strstr(msg, "offline grace"));
        SB_CHECK_EQ(sb_test_stack_kill(st, "identity", SIGTERM), 0);

        /* --- the per-address registration limit (restart identity with a low one) --- */
        sb_test_stack_env(st, "identity", "SB_IDENTITY_REGISTER_PER_PEER", "2");
        SB_CHECK_EQ(sb_test_stack_start_service(st, "identity"), 0);
        r = (Sharebuy__Identity__V1__RegisterMemberRequest)SHAREBUY__IDENTITY__V1__REGISTER_MEMBER_REQUEST__INIT;
        r.password = (char *)PW;
        sb_status last = SB_OK;
        for (int i = 0; i < 3; i++) {
                char ph[12];
                random_phone(ph);
                r.phone = ph;
                last = CALL("RegisterMember", NULL, r, register_member_response, NULL);
        }
        EXPECT(last, SB_RESOURCE_EXHAUSTED, "REASON_RATE_LIMITED");
        SB_CHECK(strstr(msg, "try again in"));

        for (size_t i = 0; i < n_kept; i++)
                protobuf_c_message_free_unpacked(kept[i], NULL);
        sb_test_stack_free(st);
        printf("identity: all checks passed\n");
        return 0;
}
