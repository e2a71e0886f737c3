/* wallet_test: what the wallet's integration tests share (wallet_test.h). */
#include "wallet_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

sb_test_stack *st;
sb_rpc_client *cli;
char svc_tok[SB_AUTH_TOKEN_MAX], admin_tok[SB_AUTH_TOKEN_MAX];
uint64_t run_id;
int64_t wt_deadline_ms = 20000;

uint64_t wt_random_run_id(void) {
        uint64_t r;
        FILE *f = fopen("/dev/urandom", "rb");
        SB_CHECK(f && fread(&r, sizeof r, 1, f) == 1);
        fclose(f);
        return r % UINT64_C(1000000000000) + 1;
}

void wt_connect(void) {
        cli = sb_test_stack_client(st, "wallet");
        sb_test_stack_role_token(st, SB_ROLE_SERVICE, 0, 0, 0, 0, svc_tok);
        sb_test_stack_role_token(st, SB_ROLE_ADMIN, 1, 0, 0, 0, admin_tok);
}

uint64_t owner_id(uint64_t n) {
        return run_id * 1000 + n;
}

void free_msg(void *m) {
        if (m)
                protobuf_c_message_free_unpacked(m, NULL);
}

sb_status wt_call_path(const char *svc, const char *path, const void *req, const ProtobufCMessageDescriptor *d,
                       const char *tok, void **resp, char *reason, char *msg) {
        sb_test_call_opts o = {.deadline_ms = wt_deadline_ms, .bearer = tok, .reason = reason, .msg = msg,
                               .msg_n = msg ? WT_MSG_MAX : 0, .print = SB_TEST_CALL_VERBOSE};
        return sb_test_stack_call(st, svc, path, req, d, &o, resp);
}

sb_status wt_call(const char *method, const void *req, const ProtobufCMessageDescriptor *d, const char *tok,
                  void **resp, char *reason, char *msg) {
        return wt_call_path("wallet", method, req, d, tok, resp, reason, msg);
}

sb_status wt_open_accounts(int kind, uint64_t id, Sharebuy__Wallet__V1__OpenAccountsResponse **resp) {
        Sharebuy__Common__V1__OwnerRef o = SHAREBUY__COMMON__V1__OWNER_REF__INIT;
        o.kind = (Sharebuy__Common__V1__OwnerKind) kind;
        o.id = id;
        Sharebuy__Wallet__V1__OpenAccountsRequest req = SHAREBUY__WALLET__V1__OPEN_ACCOUNTS_REQUEST__INIT;
        req.owner = &o;
        return wt_call("OpenAccounts", &req, &sharebuy__wallet__v1__open_accounts_response__descriptor, svc_tok,
                       (void **) resp, NULL, NULL);
}

void wt_open_member(uint64_t id) {
        Sharebuy__Wallet__V1__OpenAccountsResponse *resp;
        SB_CHECK_EQ(wt_open_accounts(SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_MEMBER, id, &resp), SB_OK);
        SB_CHECK_EQ(resp->n_accounts, 3);
        SB_CHECK(!resp->existed);
        free_msg(resp);
}

void wt_balances(uint64_t member, int64_t *sp, int64_t *cv) {
        Sharebuy__Common__V1__OwnerRef o = SHAREBUY__COMMON__V1__OWNER_REF__INIT;
        o.kind = SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_MEMBER;
        o.id = member;
        Sharebuy__Wallet__V1__GetBalancesRequest req = SHAREBUY__WALLET__V1__GET_BALANCES_REQUEST__INIT;
        req.owner = &o;
        Sharebuy__Wallet__V1__GetBalancesResponse *resp;
        SB_CHECK_EQ(wt_call("GetBalances", &req, &sharebuy__wallet__v1__get_balances_response__descriptor, admin_tok,
                            (void **) &resp, NULL, NULL),
                    SB_OK);
        if (sp)
                *sp = resp->sp_units;
        if (cv)
                *cv = resp->cv_active_units;
        free_msg(resp);
}

/* Adds a leg of amount and reason on l->refs[i] (the caller names the account); returns i. */
static size_t leg_add(wt_legs *l, int64_t amount, int reason) {
        SB_CHECK(l->n < WT_LEGS_MAX);
        size_t i = l->n++;
        sharebuy__common__v1__account_ref__init(&l->refs[i]);
        sharebuy__common__v1__ledger_leg__init(&l->legs[i]);
        l->legs[i].account = &l->refs[i];
        l->legs[i].amount_units = amount;
        l->legs[i].reason = (Sharebuy__Common__V1__LegReason) reason;
        l->ptrs[i] = &l->legs[i];
        return i;
}

void wt_leg_member(wt_legs *l, uint64_t member, int asset, int64_t amount, int reason) {
        size_t i = leg_add(l, amount, reason);
        sharebuy__common__v1__owner_ref__init(&l->owners[i]);
        l->owners[i].kind = SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_MEMBER;
        l->owners[i].id = member;
        l->refs[i].holder_case = SHAREBUY__COMMON__V1__ACCOUNT_REF__HOLDER_OWNER;
        l->refs[i].owner = &l->owners[i];
        l->refs[i].asset = (Sharebuy__Common__V1__Asset) asset;
}

void wt_leg_system(wt_legs *l, int system, int64_t amount, int reason) {
        size_t i = leg_add(l, amount, reason);
        l->refs[i].holder_case = SHAREBUY__COMMON__V1__ACCOUNT_REF__HOLDER_SYSTEM;
        l->refs[i].system = (Sharebuy__Common__V1__SystemAccount) system;
}

sb_status wt_post(const char *key, const wt_legs *l, Sharebuy__Common__V1__CauseKind cause_kind,
                  const char *cause_reference, const char *memo, const char *tok, char *reason, char *msg,
                  uint64_t *tx_id, bool *replayed) {
        Sharebuy__Common__V1__Cause cause = SHAREBUY__COMMON__V1__CAUSE__INIT;
        cause.kind = cause_kind;
        cause.reference = (char *) cause_reference;
        Sharebuy__Wallet__V1__PostTransactionRequest req = SHAREBUY__WALLET__V1__POST_TRANSACTION_REQUEST__INIT;
        req.idempotency_key = (char *) key;
        req.cause = &cause;
        req.n_legs = l->n;
        req.legs = (Sharebuy__Common__V1__LedgerLeg **) l->ptrs;
        req.memo = (char *) memo;
        Sharebuy__Wallet__V1__PostTransactionResponse *resp = NULL;
        sb_status s = wt_call("PostTransaction", &req, &sharebuy__wallet__v1__post_transaction_response__descriptor,
                              tok, (void **) &resp, reason, msg);
        if (s == SB_OK) {
                SB_CHECK(resp->transaction);
                SB_CHECK(resp->transaction->transaction_id > 0);
                SB_CHECK_EQ(resp->transaction->n_legs, l->n);
                SB_CHECK_EQ(strlen(resp->transaction->chain_hash_hex), 64);
                if (tx_id)
                        *tx_id = resp->transaction->transaction_id;
                if (replayed)
                        *replayed = resp->replayed;
        }
        free_msg(resp);
        return s;
}

uint64_t wt_verify_rpc(bool expect_ok) {
        Sharebuy__Wallet__V1__VerifyLedgerRequest req = SHAREBUY__WALLET__V1__VERIFY_LEDGER_REQUEST__INIT;
        Sharebuy__Wallet__V1__VerifyLedgerResponse *resp;
        SB_CHECK_EQ(wt_call("VerifyLedger", &req, &sharebuy__wallet__v1__verify_ledger_response__descriptor,
                            admin_tok, (void **) &resp, NULL, NULL),
                    SB_OK);
        if (resp->ok != expect_ok || getenv("TEST_VERBOSE"))
                for (size_t i = 0; i < resp->n_problems; i++)
                        fprintf(stderr, "verify: %s\n", resp->problems[i]);
        SB_CHECK_EQ(resp->ok, expect_ok);
        SB_CHECK(resp->transactions_checked > 0);
        SB_CHECK(resp->supply);
        SB_CHECK_EQ(resp->supply->unreleased_sp_units + resp->supply->treasury_sp_units +
                            resp->supply->held_sp_units + resp->supply->burned_sp_units,
                    resp->supply->cap_sp_units);
        uint64_t checked = resp->transactions_checked;
        free_msg(resp);
        return checked;
}

uint64_t wt_verify(bool expect_ok) {
        uint64_t checked = wt_verify_rpc(expect_ok);
        char *out = NULL;
        const char *want = expect_ok ? "\"ok\":true" : "\"ok\":false";
        int rc = sb_test_stack_ctl(st, &out, (const char *const[]){"--json", "ledger", "verify", NULL});
        SB_CHECK(out);
        if ((rc == 0) != expect_ok || !strstr(out, want))
                fprintf(stderr, "sharebuyctl ledger verify (exit %d): %s\n", rc, out);
        SB_CHECK_EQ(rc == 0, expect_ok);
        SB_CHECK(strstr(out, want));
        free(out);
        return checked;
}
