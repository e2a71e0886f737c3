/* Integration tests of the airdrop through the real wallet and airdrop processes (tests/lib/sb_stack.h).
 *
 * Isolation: the airdrop takes EVERY account with active CV and releases from the one shared unreleased pool, so a
 * run in the database the other tests share would pay their accounts and move their balances. Each mode therefore
 * runs against its own private MariaDB: meson starts it as `with-mariadb test-airdrop MODE` with
 * SB_TEST_DB_PORT_RANGE=34600-34699 (see tests/airdrop/meson.build), and the test owns the whole ledger.
 *
 *   example3   economics.md worked example 3 (CV_T 100 000, D 500): 1000 CV → 5 SP, 5000 CV → 25 SP; preview,
 *              replay, days out of order, GetMyAllotments
 *   example4   worked example 4 (D 888, P 2.00): 1000 CV → 8.88 SP for 17.76 CV, 982.24 CV kept; run by
 *              `sharebuyctl airdrop run --json`
 *   example5   worked example 5 (constant 888 a day, cap 972 360): the last release day is day 1095
 *   example6   worked example 6 (decaying 498 a day): year 1 releases 181 770, year 2 90 885
 *   resume     kill -9 between chunks, restart: the allotment equals sb_econ_allot's unit for unit, nobody twice
 *   catchup    two missed days are run in order by the timer when the service starts
 * After every run `sharebuyctl ledger verify` must pass. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "economy.h"
#include "sb_stack.h"
#include "sb_test.h"
#include "sharebuy/airdrop/v1/airdrop.pb-c.h"
#include "sharebuy/wallet/v1/wallet.pb-c.h"

#define U(x) ((int64_t) (x) * 10000) /* whole CV or SP in units */
#define START_DAY "2025-01-01"

static sb_test_stack *st;
static char svc_tok[SB_AUTH_TOKEN_MAX], admin_tok[SB_AUTH_TOKEN_MAX];

static sb_status call(const char *service, const char *method, const void *req, const ProtobufCMessageDescriptor *d,
                      const char *tok, void **resp, char *reason) {
        sb_test_call_opts o = {.deadline_ms = 60000, .bearer = tok, .reason = reason, .print = SB_TEST_CALL_VERBOSE};
        return sb_test_stack_call(st, service, method, req, d, &o, resp);
}

#define WALLET(m, req, d, tok, resp, reason) call("wallet", m, req, d, tok, (void **) (resp), reason)
#define AIRDROP(m, req, d, tok, resp, reason) call("airdrop", m, req, d, tok, (void **) (resp), reason)

/* Opens a member's accounts and credits it cv units of active CV (from CV_ISSUED, as an activation would). */
/* A member's accounts, with no CV. */
static void member_without_cv(uint64_t id) {
        Sharebuy__Common__V1__OwnerRef o = SHAREBUY__COMMON__V1__OWNER_REF__INIT;
        o.kind = SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_MEMBER;
        o.id = id;
        Sharebuy__Wallet__V1__OpenAccountsRequest oreq = SHAREBUY__WALLET__V1__OPEN_ACCOUNTS_REQUEST__INIT;
        oreq.owner = &o;
        SB_CHECK_EQ(WALLET("OpenAccounts", &oreq, &sharebuy__wallet__v1__open_accounts_response__descriptor, svc_tok,
                           NULL, NULL),
                    SB_OK);
}

static void member_with_cv(uint64_t id, int64_t cv) {
        Sharebuy__Common__V1__OwnerRef o = SHAREBUY__COMMON__V1__OWNER_REF__INIT;
        o.kind = SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_MEMBER;
        o.id = id;
        member_without_cv(id);
        Sharebuy__Common__V1__AccountRef ra = SHAREBUY__COMMON__V1__ACCOUNT_REF__INIT, rb = ra;
        ra.holder_case = SHAREBUY__COMMON__V1__ACCOUNT_REF__HOLDER_OWNER;
        ra.owner = &o;
        ra.asset = SHAREBUY__COMMON__V1__ASSET__ASSET_CV_ACTIVE;
        rb.holder_case = SHAREBUY__COMMON__V1__ACCOUNT_REF__HOLDER_SYSTEM;
        rb.system = SHAREBUY__COMMON__V1__SYSTEM_ACCOUNT__SYSTEM_ACCOUNT_CV_ISSUED;
        Sharebuy__Common__V1__LedgerLeg la = SHAREBUY__COMMON__V1__LEDGER_LEG__INIT, lb = la;
        la.account = &ra;
        la.amount_units = cv;
        la.reason = SHAREBUY__COMMON__V1__LEG_REASON__LEG_REASON_ACTIVATION_PACK;
        lb.account = &rb;
        lb.amount_units = -cv;
        lb.reason = SHAREBUY__COMMON__V1__LEG_REASON__LEG_REASON_ACTIVATION_PACK;
        Sharebuy__Common__V1__LedgerLeg *legs[] = {&la, &lb};
        Sharebuy__Common__V1__Cause cause = SHAREBUY__COMMON__V1__CAUSE__INIT;
        cause.kind = SHAREBUY__COMMON__V1__CAUSE_KIND__CAUSE_KIND_ACTIVATION;
        char key[64];
        snprintf(key, sizeof key, "test-cv:%" PRIu64, id);
        cause.reference = key;
        Sharebuy__Wallet__V1__PostTransactionRequest req = SHAREBUY__WALLET__V1__POST_TRANSACTION_REQUEST__INIT;
        req.idempotency_key = key;
        req.cause = &cause;
        req.n_legs = 2;
        req.legs = legs;
        SB_CHECK_EQ(WALLET("PostTransaction", &req, &sharebuy__wallet__v1__post_transaction_response__descriptor,
                           svc_tok, NULL, NULL),
                    SB_OK);
}

static void balances(uint64_t id, int64_t *sp, int64_t *cv) {
        Sharebuy__Common__V1__OwnerRef o = SHAREBUY__COMMON__V1__OWNER_REF__INIT;
        o.kind = SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_MEMBER;
        o.id = id;
        Sharebuy__Wallet__V1__GetBalancesRequest req = SHAREBUY__WALLET__V1__GET_BALANCES_REQUEST__INIT;
        req.owner = &o;
        Sharebuy__Wallet__V1__GetBalancesResponse *resp;
        SB_CHECK_EQ(WALLET("GetBalances", &req, &sharebuy__wallet__v1__get_balances_response__descriptor, admin_tok,
                           &resp, NULL),
                    SB_OK);
        *sp = resp->sp_units;
        *cv = resp->cv_active_units;
        protobuf_c_message_free_unpacked(&resp->base, NULL);
}

static void ledger_verify(void) {
        char *out = NULL;
        const char *args[] = {"ledger", "verify", NULL};
        int rc = sb_test_stack_ctl(st, &out, args);
        if (rc != 0)
                fprintf(stderr, "ledger verify:\n%s\n", out ? out : "");
        SB_CHECK_EQ(rc, 0);
        free(out);
}

/* RunDay; returns the status and the run (caller frees the response) on OK. */
static sb_status run_day(const char *day, bool wait, Sharebuy__Airdrop__V1__RunDayResponse **ret, char *reason) {
        Sharebuy__Airdrop__V1__RunDayRequest req = SHAREBUY__AIRDROP__V1__RUN_DAY_REQUEST__INIT;
        req.business_day = (char *) day;
        req.wait = wait;
        Sharebuy__Airdrop__V1__RunDayResponse *resp = NULL;
        sb_status s = AIRDROP("RunDay", &req, &sharebuy__airdrop__v1__run_day_response__descriptor, admin_tok, &resp,
                              reason);
        if (ret)
                *ret = resp;
        else if (resp)
                protobuf_c_message_free_unpacked(&resp->base, NULL);
        return s;
}

static Sharebuy__Airdrop__V1__Run *get_run(const char *day) {
        Sharebuy__Airdrop__V1__GetRunRequest req = SHAREBUY__AIRDROP__V1__GET_RUN_REQUEST__INIT;
        req.business_day = (char *) day;
        Sharebuy__Airdrop__V1__Run *run = NULL;
        if (AIRDROP("GetRun", &req, &sharebuy__airdrop__v1__run__descriptor, admin_tok, &run, NULL) != SB_OK)
                return NULL;
        return run;
}

/* Waits until the day's run has completed (aborts after timeout_s). */
static void wait_completed(const char *day, int timeout_s) {
        for (int i = 0; i < timeout_s * 10; i++) {
                Sharebuy__Airdrop__V1__Run *run = get_run(day);
                bool done = run && run->status == SHAREBUY__AIRDROP__V1__RUN_STATUS__RUN_STATUS_COMPLETED;
                if (run)
                        protobuf_c_message_free_unpacked(&run->base, NULL);
                if (done)
                        return;
                usleep(100000);
        }
        fprintf(stderr, "the run of %s did not complete in %d s\n", day, timeout_s);
        abort();
}

static sb_test_stack *stack(void) {
        static const char *const services[] = {"wallet", "airdrop", NULL};
        sb_test_stack *s = sb_test_stack_new(services);
        sb_test_stack_env(s, "airdrop", "SB_AIRDROP_START_DAY", START_DAY);
        sb_test_stack_env(s, "airdrop", "SB_AIRDROP_TIMER", "false");
        return s;
}

static void start(void) {
        sb_test_stack_start_all(st);
        sb_test_stack_role_token(st, SB_ROLE_SERVICE, 0, 0, 0, 0, svc_tok);
        sb_test_stack_role_token(st, SB_ROLE_ADMIN, 1, 0, 0, 0, admin_tok);
}

/* --- Worked example 3 ----------------------------------------------------------------------------------------- */

static void test_example3(void) {
        st = stack();
        sb_test_stack_env(st, "airdrop", "SB_AIRDROP_DAILY_SP_UNITS", "5000000");
        /* The snapshot in two streams even for three members (members 101 and 102 in stream 0, 103 in stream 1):
         * the worked example's figures must not depend on it. */
        sb_test_stack_env(st, "airdrop", "SB_AIRDROP_SNAPSHOT_SPLIT_MIN_IDS", "1");
        start();
        member_with_cv(101, U(1000));
        member_with_cv(102, U(5000));
        member_with_cv(103, U(94000));

        /* The preview: nothing written. */
        Sharebuy__Airdrop__V1__PreviewRunRequest preq = SHAREBUY__AIRDROP__V1__PREVIEW_RUN_REQUEST__INIT;
        Sharebuy__Airdrop__V1__RunPreview *pv;
        SB_CHECK_EQ(AIRDROP("PreviewRun", &preq, &sharebuy__airdrop__v1__run_preview__descriptor, admin_tok, &pv, NULL),
                    SB_OK);
        SB_CHECK(strcmp(pv->business_day, START_DAY) == 0);
        SB_CHECK_EQ(pv->release_sp_units, U(500));
        SB_CHECK_EQ(pv->account_count, 3);
        SB_CHECK_EQ(pv->total_active_cv_units, U(100000));
        SB_CHECK_EQ(pv->allotted_sp_units, U(500));
        SB_CHECK_EQ(pv->cut_sp_units, 0);
        SB_CHECK_EQ(pv->price_micro_yuan, 1000000);
        SB_CHECK_EQ(pv->n_largest, 3);
        SB_CHECK_EQ(pv->largest[0]->owner->id, 103);
        SB_CHECK_EQ(pv->largest[0]->sp_units, U(470));
        SB_CHECK_EQ(pv->largest[2]->sp_units, U(5));
        SB_CHECK(!pv->completed);
        protobuf_c_message_free_unpacked(&pv->base, NULL);
        preq.top_n = 101;
        SB_CHECK_EQ(AIRDROP("PreviewRun", &preq, &sharebuy__airdrop__v1__run_preview__descriptor, admin_tok, NULL, NULL),
                    SB_INVALID_ARGUMENT);
        int64_t sp, cv;
        balances(101, &sp, &cv);
        SB_CHECK_EQ(sp, 0);

        /* Days run in order; a member may not run one. */
        char reason[SB_RPC_REASON_MAX];
        SB_CHECK_EQ(run_day("2025-01-02", true, NULL, reason), SB_FAILED_PRECONDITION);
        SB_CHECK(strcmp(reason, "REASON_DAY_OUT_OF_ORDER") == 0);
        SB_CHECK_EQ(run_day("2024-12-31", true, NULL, NULL), SB_FAILED_PRECONDITION);
        SB_CHECK_EQ(run_day("2025-13-01", true, NULL, NULL), SB_INVALID_ARGUMENT);

        Sharebuy__Airdrop__V1__RunDayResponse *rr;
        SB_CHECK_EQ(run_day(START_DAY, true, &rr, NULL), SB_OK);
        SB_CHECK_EQ(rr->run->status, SHAREBUY__AIRDROP__V1__RUN_STATUS__RUN_STATUS_COMPLETED);
        SB_CHECK(!rr->replayed);
        SB_CHECK_EQ(rr->run->release_sp_units, U(500));
        SB_CHECK_EQ(rr->run->allotted_sp_units, U(500));
        SB_CHECK_EQ(rr->run->account_count, 3);
        SB_CHECK_EQ(rr->run->trigger, SHAREBUY__AIRDROP__V1__RUN_TRIGGER__RUN_TRIGGER_ADMIN);
        SB_CHECK_EQ(rr->run->started_by_user_id, 1);
        protobuf_c_message_free_unpacked(&rr->base, NULL);
        balances(101, &sp, &cv);
        SB_CHECK_EQ(sp, U(5));
        SB_CHECK_EQ(cv, U(1000) - U(5)); /* 5 SP at 1.00 yuan cost 5 CV */
        balances(102, &sp, &cv);
        SB_CHECK_EQ(sp, U(25));
        balances(103, &sp, &cv);
        SB_CHECK_EQ(sp, U(470));
        ledger_verify();

        /* Again: a replay, nothing moves. */
        SB_CHECK_EQ(run_day(START_DAY, true, &rr, NULL), SB_OK);
        SB_CHECK(rr->replayed);
        protobuf_c_message_free_unpacked(&rr->base, NULL);
        balances(101, &sp, &cv);
        SB_CHECK_EQ(sp, U(5));

        /* The member sees its allotment; another member's is refused. */
        char mtok[SB_AUTH_TOKEN_MAX];
        sb_test_stack_role_token(st, SB_ROLE_MEMBER, 101, 0, 0, 0, mtok);
        Sharebuy__Airdrop__V1__GetMyAllotmentsRequest mreq = SHAREBUY__AIRDROP__V1__GET_MY_ALLOTMENTS_REQUEST__INIT;
        Sharebuy__Airdrop__V1__GetMyAllotmentsResponse *mine;
        SB_CHECK_EQ(AIRDROP("GetMyAllotments", &mreq, &sharebuy__airdrop__v1__get_my_allotments_response__descriptor,
                            mtok, &mine, NULL),
                    SB_OK);
        SB_CHECK_EQ(mine->n_allotments, 1);
        SB_CHECK(strcmp(mine->allotments[0]->business_day, START_DAY) == 0);
        SB_CHECK_EQ(mine->allotments[0]->sp_units, U(5));
        SB_CHECK_EQ(mine->allotments[0]->cost_cv_units, U(5));
        SB_CHECK_EQ(mine->allotments[0]->active_cv_units, U(1000));
        SB_CHECK(mine->allotments[0]->transaction_id != 0);
        SB_CHECK_EQ(mine->total_sp_units, U(5));
        protobuf_c_message_free_unpacked(&mine->base, NULL);
        Sharebuy__Common__V1__OwnerRef other = SHAREBUY__COMMON__V1__OWNER_REF__INIT;
        other.kind = SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_MEMBER;
        other.id = 102;
        mreq.owner = &other;
        SB_CHECK_EQ(AIRDROP("GetMyAllotments", &mreq, &sharebuy__airdrop__v1__get_my_allotments_response__descriptor,
                            mtok, NULL, NULL),
                    SB_PERMISSION_DENIED);

        /* The stored preview of the completed day, and the history. */
        preq.top_n = 2;
        preq.business_day = START_DAY;
        SB_CHECK_EQ(AIRDROP("PreviewRun", &preq, &sharebuy__airdrop__v1__run_preview__descriptor, admin_tok, &pv, NULL),
                    SB_OK);
        SB_CHECK(pv->completed);
        SB_CHECK_EQ(pv->n_largest, 2);
        SB_CHECK_EQ(pv->largest[1]->sp_units, U(25));
        protobuf_c_message_free_unpacked(&pv->base, NULL);
        Sharebuy__Airdrop__V1__ListRunsRequest lreq = SHAREBUY__AIRDROP__V1__LIST_RUNS_REQUEST__INIT;
        Sharebuy__Airdrop__V1__ListRunsResponse *lr;
        SB_CHECK_EQ(AIRDROP("ListRuns", &lreq, &sharebuy__airdrop__v1__list_runs_response__descriptor, mtok, &lr, NULL),
                    SB_OK);
        SB_CHECK_EQ(lr->n_runs, 1);
        SB_CHECK(lr->runs[0]->finished_unix_ms >= lr->runs[0]->started_unix_ms);
        protobuf_c_message_free_unpacked(&lr->base, NULL);

        /* The next day takes what is left: the costs lowered everyone's CV. */
        SB_CHECK_EQ(run_day("2025-01-02", true, &rr, NULL), SB_OK);
        SB_CHECK_EQ(rr->run->status, SHAREBUY__AIRDROP__V1__RUN_STATUS__RUN_STATUS_COMPLETED);
        SB_CHECK_EQ(rr->run->allotted_sp_units + rr->run->cut_sp_units, U(500));
        protobuf_c_message_free_unpacked(&rr->base, NULL);
        ledger_verify();
        sb_test_stack_free(st);
}

/* --- Worked example 4 ----------------------------------------------------------------------------------------- */

static void test_example4(void) {
        st = stack();
        sb_test_stack_env(st, "airdrop", "SB_AIRDROP_DAILY_SP_UNITS", "8880000");
        sb_test_stack_env(st, "airdrop", "SB_AIRDROP_INITIAL_PRICE_MICRO_YUAN", "2000000");
        sb_test_stack_env(st, "wallet", "SB_WALLET_INITIAL_PRICE_MICRO_YUAN", "2000000");
        start();
        member_with_cv(201, U(1000));
        member_with_cv(202, U(99000));
        /* Through sharebuyctl, as an operator would. */
        char *out = NULL;
        const char *args[] = {"--json", "airdrop", "run", "--day", START_DAY, "--target",
                              sb_test_stack_addr(st, "airdrop"), "--private", sb_test_stack_private_key(st), NULL};
        SB_CHECK_EQ(sb_test_stack_ctl(st, &out, args), 0);
        SB_CHECK(out && strstr(out, "\"status\":\"COMPLETED\"") && strstr(out, "\"allotted_sp_units\":8880000"));
        free(out);
        Sharebuy__Airdrop__V1__RunDayResponse *rr;
        SB_CHECK_EQ(run_day(START_DAY, true, &rr, NULL), SB_OK);
        SB_CHECK(rr->replayed);
        SB_CHECK_EQ(rr->run->price_micro_yuan, 2000000);
        SB_CHECK_EQ(rr->run->allotted_sp_units, U(888));
        protobuf_c_message_free_unpacked(&rr->base, NULL);
        int64_t sp, cv;
        balances(201, &sp, &cv);
        SB_CHECK_EQ(sp, 88800);    /* 8.88 SP */
        SB_CHECK_EQ(cv, 9822400);  /* 1000 − 17.76 = 982.24 CV */
        balances(202, &sp, &cv);
        SB_CHECK_EQ(sp, U(888) - 88800);
        ledger_verify();
        sb_test_stack_free(st);
}

/* --- Worked examples 5 and 6: the schedule -------------------------------------------------------------------- */

static void test_example5(void) {
        st = stack();
        sb_test_stack_env(st, "airdrop", "SB_AIRDROP_DAILY_SP_UNITS", "8880000");
        start();
        Sharebuy__Airdrop__V1__GetScheduleRequest req = SHAREBUY__AIRDROP__V1__GET_SCHEDULE_REQUEST__INIT;
        Sharebuy__Airdrop__V1__Schedule *s;
        SB_CHECK_EQ(AIRDROP("GetSchedule", &req, &sharebuy__airdrop__v1__schedule__descriptor, NULL, &s, NULL), SB_OK);
        SB_CHECK_EQ(s->cap_sp_units, U(972360));
        SB_CHECK_EQ(s->kind, SHAREBUY__AIRDROP__V1__SCHEDULE_KIND__SCHEDULE_KIND_CONSTANT);
        /* Day 1095 counted from 2025-01-01 is 2027-12-31. */
        SB_CHECK(strcmp(s->projected_last_day, "2027-12-31") == 0);
        SB_CHECK(strcmp(s->release_time, "22:00") == 0 && strcmp(s->time_zone, "Asia/Shanghai") == 0);
        SB_CHECK(strcmp(s->next_day, START_DAY) == 0);
        SB_CHECK_EQ(s->next_day_sp_units, U(888));
        protobuf_c_message_free_unpacked(&s->base, NULL);
        /* The last day releases 888, the day after nothing. */
        Sharebuy__Airdrop__V1__PreviewRunRequest preq = SHAREBUY__AIRDROP__V1__PREVIEW_RUN_REQUEST__INIT;
        member_with_cv(501, U(10));
        preq.business_day = "2027-12-31";
        Sharebuy__Airdrop__V1__RunPreview *pv;
        SB_CHECK_EQ(AIRDROP("PreviewRun", &preq, &sharebuy__airdrop__v1__run_preview__descriptor, admin_tok, &pv, NULL),
                    SB_OK);
        SB_CHECK_EQ(pv->schedule_sp_units, U(888));
        protobuf_c_message_free_unpacked(&pv->base, NULL);
        sb_test_stack_free(st);
}

static void test_example6(void) {
        st = stack();
        sb_test_stack_env(st, "airdrop", "SB_AIRDROP_DAILY_SP_UNITS", "4980000");
        sb_test_stack_env(st, "airdrop", "SB_AIRDROP_SCHEDULE", "decaying");
        start();
        member_with_cv(601, U(10));
        int64_t year[2] = {0, 0};
        /* The first and last day of years 1 and 2 (day index 0, 364, 365, 729). */
        static const char *const days[] = {"2025-01-01", "2025-12-31", "2026-01-01", "2026-12-31"};
        int64_t amount[4];
        for (int i = 0; i < 4; i++) {
                Sharebuy__Airdrop__V1__PreviewRunRequest preq = SHAREBUY__AIRDROP__V1__PREVIEW_RUN_REQUEST__INIT;
                preq.business_day = (char *) days[i];
                Sharebuy__Airdrop__V1__RunPreview *pv;
                SB_CHECK_EQ(AIRDROP("PreviewRun", &preq, &sharebuy__airdrop__v1__run_preview__descriptor, admin_tok,
                                    &pv, NULL),
                            SB_OK);
                amount[i] = pv->schedule_sp_units;
                protobuf_c_message_free_unpacked(&pv->base, NULL);
        }
        SB_CHECK_EQ(amount[0], U(498));
        SB_CHECK_EQ(amount[1], U(498));
        SB_CHECK_EQ(amount[2], U(249));
        SB_CHECK_EQ(amount[3], U(249));
        year[0] = amount[0] * 365;
        year[1] = amount[2] * 365;
        SB_CHECK_EQ(year[0], U(181770));
        SB_CHECK_EQ(year[1], U(90885));
        Sharebuy__Airdrop__V1__GetScheduleRequest req = SHAREBUY__AIRDROP__V1__GET_SCHEDULE_REQUEST__INIT;
        Sharebuy__Airdrop__V1__Schedule *s;
        SB_CHECK_EQ(AIRDROP("GetSchedule", &req, &sharebuy__airdrop__v1__schedule__descriptor, NULL, &s, NULL), SB_OK);
        SB_CHECK_EQ(s->kind, SHAREBUY__AIRDROP__V1__SCHEDULE_KIND__SCHEDULE_KIND_DECAYING);
        protobuf_c_message_free_unpacked(&s->base, NULL);
        /* And a real run of day 1 releases 498. */
        Sharebuy__Airdrop__V1__RunDayResponse *rr;
        SB_CHECK_EQ(run_day(START_DAY, true, &rr, NULL), SB_OK);
        SB_CHECK_EQ(rr->run->release_sp_units, U(498));
        protobuf_c_message_free_unpacked(&rr->base, NULL);
        ledger_verify();
        sb_test_stack_free(st);
}

/* --- Crash and resume ----------------------------------------------------------------------------------------- */

#define RESUME_N 40

/* One row of n integers from the admin connection; `day`, when not NULL, is the statement's one parameter. */
static void query_row(const char *sql, const char *day, int64_t *out, unsigned n) {
        sb_db_stmt *s;
        SB_CHECK_EQ(sb_db_prepare(sb_test_stack_admin_db(st), sql, &s), 0);
        if (day)
                SB_CHECK_EQ(sb_db_bind_str(s, 0, day), 0);
        SB_CHECK_EQ(sb_db_execute(s), 0);
        SB_CHECK(sb_db_fetch(s) > 0);
        for (unsigned i = 0; i < n; i++)
                SB_CHECK_EQ(sb_db_col_i64(s, i, &out[i]), 0);
        while (sb_db_fetch(s) > 0)
                ;
}

/* The members of the crash-and-resume tests, and the reference: the whole allotment in memory (sb_econ_allot). */
static void resume_members(int64_t cvs[RESUME_N], sb_econ_share want[RESUME_N], sb_econ_allot_summary *ret_sum) {
        for (int i = 0; i < RESUME_N; i++) {
                /* Uneven CV with fractional units, so remainders and leftover units matter. */
                cvs[i] = U((i * 7919) % 997 + 1) + (i * 37) % 10000;
                member_with_cv(1000 + (uint64_t) i, cvs[i]);
        }
        /* The reference: the whole allotment in memory, keyed by the wallet's CV account ids. */
        sb_db *adb = sb_test_stack_admin_db(st);
        sb_econ_account accts[RESUME_N];
        sb_db_stmt *s;
        SB_CHECK_EQ(sb_db_prepare(adb,
                                  "SELECT owner_id, account_id FROM sharebuy_wallet.accounts WHERE owner_kind = 1"
                                  " AND asset = 2 AND owner_id BETWEEN 1000 AND 1039",
                                  &s),
                    0);
        SB_CHECK_EQ(sb_db_execute(s), 0);
        int n = 0;
        while (sb_db_fetch(s) > 0) {
                uint64_t owner, acct;
                SB_CHECK_EQ(sb_db_col_u64(s, 0, &owner), 0);
                SB_CHECK_EQ(sb_db_col_u64(s, 1, &acct), 0);
                accts[owner - 1000] = (sb_econ_account){.id = acct, .cv = cvs[owner - 1000]};
                n++;
        }
        SB_CHECK_EQ(n, RESUME_N);
        SB_CHECK_EQ(sb_econ_allot(accts, RESUME_N, U(888), 1000000, want, ret_sum), 0);

}

/* After the kill: restart, and the result equals the reference unit for unit, one credit per account, two streams. */
static void resume_check(const int64_t cvs[RESUME_N], const sb_econ_share want[RESUME_N],
                         const sb_econ_allot_summary *sum) {
        sb_db *adb = sb_test_stack_admin_db(st);
        sb_db_stmt *s;
        int64_t sp, cv;
        SB_CHECK_EQ(sb_test_stack_start_service(st, "airdrop"), 0);
        wait_completed(START_DAY, 60);
        Sharebuy__Airdrop__V1__Run *run = get_run(START_DAY);
        SB_CHECK(run->resumes >= 1);
        SB_CHECK_EQ(run->allotted_sp_units, sum->released_sp);
        SB_CHECK_EQ(run->cut_sp_units, sum->cut_sp);
        SB_CHECK_EQ(run->cost_cv_units, sum->cost_cv);
        SB_CHECK_EQ(run->accounts_done, RESUME_N);
        protobuf_c_message_free_unpacked(&run->base, NULL);
        for (int k = 0; k < RESUME_N; k++) {
                balances(1000 + (uint64_t) k, &sp, &cv);
                SB_CHECK_EQ(sp, want[k].share_sp);
                SB_CHECK_EQ(cv, cvs[k] - want[k].cost_cv);
        }
        /* Exactly one airdrop credit per account in the journal. */
        int64_t credits[2]; /* rows, distinct accounts */
        query_row("SELECT COUNT(*), COUNT(DISTINCT account_id) FROM sharebuy_wallet.entries"
                  " WHERE reason = 15 AND asset = 3 AND account_id >= 1000",
                  NULL, credits, 2);
        SB_CHECK_EQ(credits[0], credits[1]);

        /* The snapshot was copied in two streams, stream 1 from seq 2^31, and together they hold everyone once: the
         * blocks (migration 0010) in seq order have increasing account ids, each block's records fill it, and no
         * block overlaps the next position range. */
        int64_t snap[5]; /* participants, of stream 1, blocks out of account order, malformed blocks, overlaps */
        query_row("SELECT SUM(n), SUM(IF(seq >= 2147483648, n, 0)), SUM(first_account <= prev_last),"
                  " SUM(LENGTH(recs) <> n * 63 OR n < 1 OR n > 256 OR first_account > last_account),"
                  " SUM(seq < prev_end) FROM (SELECT seq, n, recs, first_account, last_account,"
                  " COALESCE(LAG(last_account) OVER (ORDER BY seq), 0) AS prev_last,"
                  " COALESCE(LAG(seq + n) OVER (ORDER BY seq), 0) AS prev_end"
                  " FROM sharebuy_airdrop.snapshot_blocks WHERE business_day = ?) AS x",
                  START_DAY, snap, 5);
        SB_CHECK_EQ(snap[0], RESUME_N);
        SB_CHECK(snap[1] > 0 && snap[1] < RESUME_N);
        SB_CHECK_EQ(snap[2], 0);
        SB_CHECK_EQ(snap[3], 0);
        SB_CHECK_EQ(snap[4], 0);

        /* The last member (stream 1) sees its allotment and the very transaction that paid it. */
        uint64_t last = 1000 + RESUME_N - 1, paid_tx = 0;
        SB_CHECK_EQ(sb_db_prepare(adb,
                                  "SELECT e.tx_id FROM sharebuy_wallet.entries e JOIN sharebuy_wallet.accounts a"
                                  " ON a.account_id = e.account_id WHERE a.owner_kind = 1 AND a.owner_id = ?"
                                  " AND a.asset = 3 AND e.reason = 15",
                                  &s),
                    0);
        SB_CHECK_EQ(sb_db_bind_u64(s, 0, last), 0);
        SB_CHECK_EQ(sb_db_execute(s), 0);
        SB_CHECK(sb_db_fetch(s) > 0);
        SB_CHECK_EQ(sb_db_col_u64(s, 0, &paid_tx), 0);
        while (sb_db_fetch(s) > 0)
                ;
        char mtok[SB_AUTH_TOKEN_MAX];
        sb_test_stack_role_token(st, SB_ROLE_MEMBER, last, 0, 0, 0, mtok);
        Sharebuy__Airdrop__V1__GetMyAllotmentsRequest mreq = SHAREBUY__AIRDROP__V1__GET_MY_ALLOTMENTS_REQUEST__INIT;
        Sharebuy__Airdrop__V1__GetMyAllotmentsResponse *mine;
        SB_CHECK_EQ(AIRDROP("GetMyAllotments", &mreq, &sharebuy__airdrop__v1__get_my_allotments_response__descriptor,
                            mtok, &mine, NULL),
                    SB_OK);
        SB_CHECK_EQ(mine->n_allotments, 1);
        SB_CHECK_EQ(mine->allotments[0]->sp_units, want[RESUME_N - 1].share_sp);
        SB_CHECK_EQ(mine->allotments[0]->active_cv_units, cvs[RESUME_N - 1]);
        SB_CHECK_EQ(mine->allotments[0]->transaction_id, paid_tx);
        protobuf_c_message_free_unpacked(&mine->base, NULL);
        ledger_verify();
}

static void test_resume(void) {
        st = stack();
        sb_test_stack_env(st, "airdrop", "SB_AIRDROP_DAILY_SP_UNITS", "8880000");
        sb_test_stack_env(st, "airdrop", "SB_AIRDROP_CHUNK_ACCOUNTS", "3");
        sb_test_stack_env(st, "airdrop", "SB_AIRDROP_CHUNK_PAUSE", "250ms");
        sb_test_stack_env(st, "airdrop", "SB_AIRDROP_SNAPSHOT_SPLIT_MIN_IDS", "1"); /* two snapshot streams */
        start();
        int64_t cvs[RESUME_N];
        sb_econ_share want[RESUME_N];
        sb_econ_allot_summary sum;
        resume_members(cvs, want, &sum);
        Sharebuy__Airdrop__V1__RunDayResponse *rr;
        SB_CHECK_EQ(run_day(START_DAY, false, &rr, NULL), SB_OK);
        protobuf_c_message_free_unpacked(&rr->base, NULL);
        /* Kill it mid-way: some chunks done, not all (14 chunks of 3, 250 ms apart). */
        int i;
        for (i = 0; i < 300; i++) {
                Sharebuy__Airdrop__V1__Run *run = get_run(START_DAY);
                SB_CHECK(run);
                uint32_t done = run->chunks_done, total = run->chunks_total;
                protobuf_c_message_free_unpacked(&run->base, NULL);
                SB_CHECK(total == 0 || done < total);
                if (done >= 4)
                        break;
                usleep(20000);
        }
        SB_CHECK(i < 300);
        SB_CHECK_EQ(sb_test_stack_kill(st, "airdrop", SIGKILL), 0);
        /* Some accounts are paid, some not. */
        int64_t sp, cv;
        balances(1000, &sp, &cv);
        int paid_first = sp > 0;
        balances(1000 + RESUME_N - 1, &sp, &cv);
        SB_CHECK(paid_first && sp == 0);
        ledger_verify();

        resume_check(cvs, want, &sum);
        sb_test_stack_free(st);
}

/* Killed in the middle of a two-stream snapshot (batches of 2 participants, 100 ms apart): each stream resumes
 * from its own cursor, and the day's result is the same as an uninterrupted run's. */
static void test_resume_snapshot(void) {
        st = stack();
        sb_test_stack_env(st, "airdrop", "SB_AIRDROP_DAILY_SP_UNITS", "8880000");
        sb_test_stack_env(st, "airdrop", "SB_AIRDROP_CHUNK_ACCOUNTS", "7");
        sb_test_stack_env(st, "airdrop", "SB_AIRDROP_SNAPSHOT_BATCH", "2");
        sb_test_stack_env(st, "airdrop", "SB_AIRDROP_CHUNK_PAUSE", "100ms");
        sb_test_stack_env(st, "airdrop", "SB_AIRDROP_SNAPSHOT_SPLIT_MIN_IDS", "1");
        start();
        int64_t cvs[RESUME_N];
        sb_econ_share want[RESUME_N];
        sb_econ_allot_summary sum;
        resume_members(cvs, want, &sum);
        Sharebuy__Airdrop__V1__RunDayResponse *rr;
        SB_CHECK_EQ(run_day(START_DAY, false, &rr, NULL), SB_OK);
        protobuf_c_message_free_unpacked(&rr->base, NULL);
        /* Kill it when both streams have copied some participants and neither is done. */
        int i;
        for (i = 0; i < 500; i++) {
                int64_t v[3]; /* streams, the least copied, streams done */
                query_row("SELECT COUNT(*), COALESCE(MIN(copied), 0), COALESCE(SUM(done), 0)"
                          " FROM sharebuy_airdrop.snapshot_streams WHERE business_day = ?",
                          START_DAY, v, 3);
                SB_CHECK_EQ(v[2], 0); /* 10 batches a stream, 100 ms apart: not done before the kill */
                if (v[0] == 2 && v[1] >= 4)
                        break;
                usleep(10000);
        }
        SB_CHECK(i < 500);
        SB_CHECK_EQ(sb_test_stack_kill(st, "airdrop", SIGKILL), 0);
        /* Nobody is paid yet. */
        int64_t sp, cv;
        balances(1000, &sp, &cv);
        SB_CHECK_EQ(sp, 0);
        ledger_verify();
        resume_check(cvs, want, &sum);
        sb_test_stack_free(st);
}

/* --- Missed days ---------------------------------------------------------------------------------------------- */

static void test_catchup(void) {
        /* The last day whose 22:00 Asia/Shanghai (UTC+8, no DST) has passed, and the one before it. */
        time_t now = time(NULL);
        time_t due = (now + 8 * 3600 - 22 * 3600) / 86400 * 86400;
        char d1[16], d2[16];
        struct tm tm;
        time_t t1 = due - 86400;
        gmtime_r(&t1, &tm);
        strftime(d1, sizeof d1, "%Y-%m-%d", &tm);
        gmtime_r(&due, &tm);
        strftime(d2, sizeof d2, "%Y-%m-%d", &tm);
        static const char *const services[] = {"wallet", "airdrop", NULL};
        st = sb_test_stack_new(services);
        sb_test_stack_env(st, "airdrop", "SB_AIRDROP_START_DAY", d1);
        sb_test_stack_env(st, "airdrop", "SB_AIRDROP_TIMER", "false");
        start();
        member_with_cv(701, U(100000)); /* enough CV that a day's share (~222 SP at 1 yuan) leaves some */
        member_without_cv(702);         /* between two participants: in their snapshot block, without a record */
        member_with_cv(703, U(300000));
        /* Now with the timer: both missed days run, in order. */
        SB_CHECK_EQ(sb_test_stack_kill(st, "airdrop", SIGTERM), 0);
        sb_test_stack_env(st, "airdrop", "SB_AIRDROP_TIMER", "true");
        SB_CHECK_EQ(sb_test_stack_start_service(st, "airdrop"), 0);
        wait_completed(d2, 60);
        Sharebuy__Airdrop__V1__Run *a = get_run(d1), *b = get_run(d2);
        SB_CHECK(a && b);
        SB_CHECK_EQ(a->status, SHAREBUY__AIRDROP__V1__RUN_STATUS__RUN_STATUS_COMPLETED);
        SB_CHECK(a->finished_unix_ms <= b->started_unix_ms);
        SB_CHECK(a->trigger == SHAREBUY__AIRDROP__V1__RUN_TRIGGER__RUN_TRIGGER_CATCH_UP ||
                 a->trigger == SHAREBUY__AIRDROP__V1__RUN_TRIGGER__RUN_TRIGGER_TIMER);
        protobuf_c_message_free_unpacked(&a->base, NULL);
        protobuf_c_message_free_unpacked(&b->base, NULL);
        /* Each participant sees both days, newest first, and what it received matches its CV's share; a member
         * without CV (inside the day's block) and a member opened after the runs (after every block) see none. */
        member_without_cv(704);
        static const struct {
                uint64_t member;
                size_t days;
        } seen[] = {{701, 2}, {702, 0}, {703, 2}, {704, 0}};
        Sharebuy__Airdrop__V1__Run *ra = get_run(d1), *rb = get_run(d2);
        SB_CHECK(ra && rb);
        SB_CHECK_EQ(ra->account_count, 2);
        SB_CHECK_EQ(rb->account_count, 2);
        int64_t total_sp = 0;
        for (size_t i = 0; i < sizeof seen / sizeof *seen; i++) {
                char mtok[SB_AUTH_TOKEN_MAX];
                sb_test_stack_role_token(st, SB_ROLE_MEMBER, seen[i].member, 0, 0, 0, mtok);
                Sharebuy__Airdrop__V1__GetMyAllotmentsRequest mreq = SHAREBUY__AIRDROP__V1__GET_MY_ALLOTMENTS_REQUEST__INIT;
                Sharebuy__Airdrop__V1__GetMyAllotmentsResponse *mine;
                SB_CHECK_EQ(AIRDROP("GetMyAllotments", &mreq,
                                    &sharebuy__airdrop__v1__get_my_allotments_response__descriptor, mtok, &mine, NULL),
                            SB_OK);
                SB_CHECK_EQ(mine->n_allotments, seen[i].days);
                if (seen[i].days == 2) {
                        SB_CHECK(strcmp(mine->allotments[0]->business_day, d2) == 0);
                        SB_CHECK(strcmp(mine->allotments[1]->business_day, d1) == 0);
                        /* Day 1: 100 000 and 300 000 CV share the release 1 : 3. */
                        SB_CHECK_EQ(mine->allotments[1]->active_cv_units,
                                    seen[i].member == 701 ? U(100000) : U(300000));
                        SB_CHECK_EQ(ra->allotted_sp_units % 4, 0);
                        SB_CHECK_EQ(mine->allotments[1]->sp_units,
                                    (seen[i].member == 701 ? 1 : 3) * (ra->allotted_sp_units / 4));
                        SB_CHECK(mine->allotments[0]->transaction_id != 0 && mine->allotments[1]->transaction_id != 0);
                        SB_CHECK(mine->allotments[0]->transaction_id != mine->allotments[1]->transaction_id);
                }
                total_sp += mine->total_sp_units;
                protobuf_c_message_free_unpacked(&mine->base, NULL);
        }
        SB_CHECK_EQ(total_sp, ra->allotted_sp_units + rb->allotted_sp_units);
        protobuf_c_message_free_unpacked(&ra->base, NULL);
        protobuf_c_message_free_unpacked(&rb->base, NULL);

        /* The next day is not due yet. */
        char reason[SB_RPC_REASON_MAX];
        SB_CHECK_EQ(run_day("", true, NULL, reason), SB_FAILED_PRECONDITION);
        SB_CHECK(strcmp(reason, "REASON_DAY_NOT_DUE") == 0);
        ledger_verify();
        sb_test_stack_free(st);
}

int main(int argc, char **argv) {
        const char *mode = argc > 1 ? argv[1] : "example3";
        if (strcmp(mode, "example3") == 0)
                test_example3();
        else if (strcmp(mode, "example4") == 0)
                test_example4();
        else if (strcmp(mode, "example5") == 0)
                test_example5();
        else if (strcmp(mode, "example6") == 0)
                test_example6();
        else if (strcmp(mode, "resume-snapshot") == 0)
                test_resume_snapshot();
        else if (strcmp(mode, "resume") == 0)
                test_resume();
        else if (strcmp(mode, "catchup") == 0)
                test_catchup();
        else {
                fprintf(stderr, "unknown mode %s\n", mode);
                return 2;
        }
        printf("ok %s\n", mode);
        return 0;
}
