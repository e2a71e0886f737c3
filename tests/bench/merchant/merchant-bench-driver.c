/* merchant-bench-driver: RecordSale end to end — a gRPC client per terminal → merchant → identity (the member code),
 * region (settings and centres, cached), wallet (deposit and price, then the posting) → a durable commit — at a
 * given number of concurrent terminals, against the direct-SQL ceiling for the same rows in the same run (tests/lib/
 * with-mariadb: one private MariaDB).
 *
 *   merchant-bench-driver [--terminals N]... [--seconds S] [--rounds R]
 *
 * Setup through the real services: the division tree imported (sharebuyctl region import), 64 members registered
 * and activated, a member card code each (IssueMemberCode with a lifetime: reusable, so that the run needs no
 * stock of single-use codes), 16 merchants applied for and approved in one district without a centre, each funded
 * with 20 000 SP. Terminal t rings up sales of 1.00 yuan at merchant t mod 16 for member (t·7 + i) mod 64.
 *
 * The direct-SQL ceiling runs, per sale and from as many threads with one connection each, the statements the
 * services run on the database for it: the merchant's look-up (the merchant and the sale id, one statement), its
 * pending INSERT,
 * the wallet's posting of the same five legs (wallet_ledger_post(): idempotency look-up, holder rows, shards,
 * chain head, journal, entries, commit) and the merchant's UPDATE to recorded; identity's read of the card code
 * (one SELECT) too. Prints lines "rpc <N> <sales/s> <p50 µs> <p99 µs>" and "sql <N> <sales/s> <p50> <p99>" per
 * round, and after each such line "cpu <phase> <N> <sales> merchant=<µs> … mariadb=<µs> client=<µs> total=<µs>"
 * (CPU time per sale of each process over the counted interval, from /proc/<pid>/stat) and "db <phase> <N> <sales>
 * statements=… executes=… commits=… fsyncs=…" (MariaDB's counters per sale over the same interval);
 * tests/bench/merchant-bench turns them into the docs tables. */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sb_stack.h"
#include "sb_test.h"
#include "sharebuy/identity/v1/identity.pb-c.h"
#include "sharebuy/merchant/v1/merchant.pb-c.h"
#include "sharebuy/wallet/v1/wallet.pb-c.h"
#include "wallet_ledger.h"

#define MEMBERS 64
#define MERCHANTS 16
#define MAX_TERMINALS 256
#define LAT_MAX 2000000 /* latency samples per thread and run */
#define DISTRICT "110101"
#define SPEND_FEN 100

static sb_test_stack *st;
static char svc_tok[SB_AUTH_TOKEN_MAX], admin_tok[SB_AUTH_TOKEN_MAX];
static uint64_t run_id;
static atomic_bool stop;
static char record_path[128];
static uint64_t members[MEMBERS], merchants[MERCHANTS];
static char *cards[MEMBERS];

static int64_t mono_us(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void *call(const char *svc, const char *method, const void *req, const ProtobufCMessageDescriptor *rd,
                  const char *tok) {
        char msg[512];
        sb_test_call_opts o = {.deadline_ms = 30000, .bearer = tok, .msg = msg, .msg_n = sizeof msg};
        void *r = NULL;
        sb_status s = sb_test_stack_call(st, svc, method, req, rd, &o, &r);
        if (s != SB_OK) {
                fprintf(stderr, "setup: %s/%s: %s: %s\n", svc, method, sb_status_name(s), msg);
                abort();
        }
        return r;
}

typedef struct worker {
        unsigned t, round, n;
        int mode; /* 0 rpc, 1 sql */
        int64_t interval_us; /* > 0: open loop, one sale every interval_us from start_us (a fixed arrival rate) */
        int64_t start_us;
        int64_t due_us;      /* the scheduled start of the sale in flight (open loop) */
        uint64_t done, failed;
        uint32_t *lat;
        size_t n_lat;
        char tok[SB_AUTH_TOKEN_MAX];
        pthread_t th;
} worker;

/* Open loop: waits for the next scheduled sale of w and returns its scheduled time. Latencies are counted from
 * the schedule, not from the send, so a sale that waited for the one before it counts its wait (no coordinated
 * omission). Closed loop: now. */
static int64_t pace(worker *w, uint64_t i) {
        if (w->interval_us <= 0)
                return mono_us();
        int64_t due = w->start_us + (int64_t) i * w->interval_us;
        int64_t now = mono_us();
        if (due > now) {
                struct timespec ts = {(due - now) / 1000000, ((due - now) % 1000000) * 1000};
                nanosleep(&ts, NULL);
        }
        return due;
}

static void note(worker *w, int64_t t0) {
        if (w->n_lat < LAT_MAX)
                w->lat[w->n_lat++] = (uint32_t) (mono_us() - t0);
}

static void *rpc_worker(void *p) {
        worker *w = p;
        for (uint64_t i = 0; !atomic_load(&stop); i++) {
                char sid[64];
                snprintf(sid, sizeof sid, "b%" PRIu64 "-r%u-n%u-t%u-%" PRIu64, run_id, w->round, w->n, w->t, i);
                Sharebuy__Merchant__V1__RecordSaleRequest rq = SHAREBUY__MERCHANT__V1__RECORD_SALE_REQUEST__INIT;
                rq.sale_id = sid;
                rq.member_code = cards[(w->t * 7 + i) % MEMBERS];
                rq.spend_fen = SPEND_FEN;
                char msg[512];
                sb_rpc_call_opts o = {.deadline_ms = 20000, .bearer = w->tok};
                ProtobufCMessage *resp = NULL;
                int64_t t0 = pace(w, i);
                if (atomic_load(&stop))
                        break;
                sb_status s = sb_rpc_client_call(sb_test_stack_client(st, "merchant"), record_path, &rq.base,
                                                 &sharebuy__merchant__v1__record_sale_response__descriptor, &o, &resp,
                                                 msg, sizeof msg);
                if (s == SB_OK) {
                        note(w, t0);
                        __atomic_add_fetch(&w->done, 1, __ATOMIC_RELAXED);
                        protobuf_c_message_free_unpacked(resp, NULL);
                } else if (w->failed++ == 0)
                        fprintf(stderr, "rpc: %s: %s\n", sb_status_name(s), msg);
        }
        return NULL;
}

static const wallet_ledger_cfg ledger_cfg = {.cap_sp = INT64_C(9723600000), .utc_offset_min = 480, .cutoff_min = 1320};

/* An administrator's connection with the wallet's schema as default (the ledger store's statements name tables
 * without a schema). */
static sb_db *open_direct(void) {
        sb_db *db = sb_test_db_open_admin();
        static const char use[] = "USE sharebuy_wallet";
        SB_CHECK_EQ(sb_db_exec_text(db, use, sizeof use - 1), 0);
        return db;
}

static int exec_stmt(sb_db *db, const char *sql, int (*bind)(sb_db_stmt *, void *), void *arg) {
        sb_db_stmt *s;
        int r = sb_db_prepare(db, sql, &s);
        if (r < 0)
                return r;
        if ((r = bind(s, arg)) < 0 || (r = sb_db_execute(s)) < 0)
                return r;
        while ((r = sb_db_fetch(s)) > 0)
                ;
        return r;
}

typedef struct sql_sale {
        uint64_t merchant, member, terminal;
        const char *sale_id;
        uint8_t nonce[8];
} sql_sale;

static int bind_merchant_sale(sb_db_stmt *s, void *a) {
        sql_sale *x = a;
        sb_db_bind_u64(s, 0, x->merchant);
        sb_db_bind_u64(s, 1, x->merchant);
        return sb_db_bind_str(s, 2, x->sale_id);
}

static int bind_code(sb_db_stmt *s, void *a) {
        sql_sale *x = a;
        sb_db_bind_blob(s, 0, x->nonce, sizeof x->nonce);
        return sb_db_bind_u64(s, 1, x->member);
}

static int bind_insert(sb_db_stmt *s, void *a) {
        sql_sale *x = a;
        static const uint8_t hash[32];
        static const uint8_t post[400];
        unsigned i = 0;
        sb_db_bind_u64(s, i++, x->merchant);
        sb_db_bind_str(s, i++, x->sale_id);
        sb_db_bind_u64(s, i++, x->terminal);
        sb_db_bind_u64(s, i++, 1);
        sb_db_bind_blob(s, i++, hash, sizeof hash);
        sb_db_bind_u64(s, i++, x->member);
        sb_db_bind_str(s, i++, "139****0000");
        sb_db_bind_i64(s, i++, 1);
        sb_db_bind_i64(s, i++, SPEND_FEN);
        sb_db_bind_i64(s, i++, 1000);
        sb_db_bind_i64(s, i++, 1000000);
        sb_db_bind_i64(s, i++, 10000);
        sb_db_bind_i64(s, i++, 2000);
        sb_db_bind_i64(s, i++, 1000);
        sb_db_bind_i64(s, i++, 1000);
        sb_db_bind_blob(s, i++, post, sizeof post);
        sb_db_bind_i64(s, i++, 1);
        return sb_db_bind_str(s, i++, "2026-01-01");
}

static int bind_update(sb_db_stmt *s, void *a) {
        sql_sale *x = a;
        sb_db_bind_u64(s, 0, 1);
        sb_db_bind_i64(s, 1, 0);
        sb_db_bind_u64(s, 2, x->merchant);
        return sb_db_bind_str(s, 3, x->sale_id);
}

static void *sql_worker(void *p) {
        worker *w = p;
        sb_db *db = open_direct();
        wallet_tx *tx = calloc(1, sizeof *tx);
        for (uint64_t i = 0; !atomic_load(&stop); i++) {
                char sid[64];
                snprintf(sid, sizeof sid, "q%" PRIu64 "-r%u-n%u-t%u-%" PRIu64, run_id, w->round, w->n, w->t, i);
                sql_sale x = {.merchant = merchants[w->t % MERCHANTS], .member = members[(w->t * 7 + i) % MEMBERS],
                              .terminal = w->t + 1, .sale_id = sid};
                memcpy(x.nonce, &i, sizeof x.nonce);
                int64_t t0 = pace(w, i);
                if (atomic_load(&stop))
                        break;
                int r = exec_stmt(db, "SELECT consume_key FROM sharebuy_identity.member_codes WHERE nonce = ? AND "
                                      "member_id = ?",
                                  bind_code, &x);
                /* The merchant and the sale id in one statement, as the service does. */
                if (r >= 0)
                        r = exec_stmt(db,
                                      "SELECT m.*, s.* FROM (SELECT merchant_id, name, status, rate_bp, district_code "
                                      "FROM sharebuy_merchant.merchants WHERE merchant_id = ?) m LEFT JOIN (SELECT "
                                      "state FROM sharebuy_merchant.sales WHERE merchant_id = ? AND sale_id = ?) s ON "
                                      "1 = 1",
                                      bind_merchant_sale, &x);
                if (r >= 0)
                        r = exec_stmt(db,
                                      "INSERT INTO sharebuy_merchant.sales (merchant_id, sale_id, state, terminal_id, "
                                      "cashier_user_id, code_hash, member_id, member_masked, member_vip, spend_fen, "
                                      "rate_bp, price_micro, member_cv, merchant_cv, deposit_sp, burned_sp, "
                                      "post_request, recorded_ms, business_day) VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?, ?, "
                                      "?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                      bind_insert, &x);
                if (r >= 0) {
                        memset(tx, 0, sizeof *tx);
                        tx->n_legs = 5;
                        tx->legs[0] = (wallet_leg){.ref = {WALLET_OWNER_MEMBER, x.member, WALLET_ASSET_CV_ACTIVE},
                                                   .amount = 10000, .reason = 6};
                        tx->legs[1] = (wallet_leg){.ref = {WALLET_OWNER_MERCHANT, x.merchant, WALLET_ASSET_CV_ACTIVE},
                                                   .amount = 2000, .reason = 7};
                        tx->legs[2] = (wallet_leg){.ref = {WALLET_OWNER_SYSTEM, WALLET_SYS_CV_ISSUED, 0},
                                                   .amount = -12000, .reason = 6};
                        tx->legs[3] = (wallet_leg){.ref = {WALLET_OWNER_MERCHANT, x.merchant, WALLET_ASSET_SP},
                                                   .amount = -1000, .reason = 9};
                        tx->legs[4] = (wallet_leg){.ref = {WALLET_OWNER_SYSTEM, WALLET_SYS_SP_BURNED, 0},
                                                   .amount = 1000, .reason = 14};
                        char why[256];
                        SB_CHECK_EQ(wallet_legs_check(tx->legs, tx->n_legs, false, 0, why, sizeof why), 0);
                        snprintf(tx->scope, sizeof tx->scope, "svc");
                        snprintf(tx->key, sizeof tx->key, "sale:%" PRIu64 ":%.48s", x.merchant, sid);
                        tx->cause_kind = WALLET_CAUSE_SALE;
                        snprintf(tx->cause_ref, sizeof tx->cause_ref, "%s", sid);
                        tx->cause_merchant = x.merchant;
                        wallet_problem prob = {0};
                        bool replayed;
                        struct timespec ts;
                        clock_gettime(CLOCK_REALTIME, &ts);
                        r = wallet_ledger_post(db, &ledger_cfg, tx, (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000,
                                               &replayed, &prob);
                        if (r < 0 && w->failed == 0)
                                fprintf(stderr, "sql post: %d %s %s\n", r, prob.msg, sb_db_errmsg(db));
                }
                if (r >= 0)
                        r = exec_stmt(db,
                                      "UPDATE sharebuy_merchant.sales SET state = 2, tx_id = ?, deposit_left_sp = ? "
                                      "WHERE merchant_id = ? AND sale_id = ? AND state = 1",
                                      bind_update, &x);
                if (r >= 0) {
                        note(w, t0);
                        __atomic_add_fetch(&w->done, 1, __ATOMIC_RELAXED);
                } else if (w->failed++ == 0)
                        fprintf(stderr, "sql: %d %s\n", r, sb_db_errmsg(db));
        }
        free(tx);
        sb_db_close(db);
        return NULL;
}

/* CPU time (user + system, in clock ticks) of the processes on a sale's path, read from /proc at the start and end
 * of a level's counted interval: what each spends per sale is steadier on a shared machine than the rate. */
enum { P_MERCHANT, P_WALLET, P_IDENTITY, P_REGION, P_MARIADB, P_CLIENT, N_PROCS };
static const char *const proc_names[N_PROCS] = {"merchant", "wallet", "identity", "region", "mariadb", "client"};
static pid_t proc_pids[N_PROCS];

static long long proc_ticks(pid_t pid) {
        char path[64], buf[1024];
        snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
        FILE *f = fopen(path, "r");
        if (!f)
                return -1;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        const char *p = strrchr(buf, ')'); /* the name may hold spaces; fields 14 and 15 are utime and stime */
        unsigned long long ut, stt;
        if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &stt) != 2)
                return -1;
        return (long long) (ut + stt);
}

static void procs_find(void) {
        proc_pids[P_MERCHANT] = sb_test_stack_pid(st, "merchant");
        proc_pids[P_WALLET] = sb_test_stack_pid(st, "wallet");
        proc_pids[P_IDENTITY] = sb_test_stack_pid(st, "identity");
        proc_pids[P_REGION] = sb_test_stack_pid(st, "region");
        proc_pids[P_CLIENT] = getpid();
        const char *dir = getenv("SB_TEST_DB_DIR");
        char path[512];
        snprintf(path, sizeof path, "%s/mysqld.pid", dir ? dir : ".");
        FILE *f = fopen(path, "r");
        int pid = 0;
        if (f) {
                if (fscanf(f, "%d", &pid) != 1)
                        pid = 0;
                fclose(f);
        }
        proc_pids[P_MARIADB] = pid;
}

/* MariaDB's own counters of the work done (information_schema.GLOBAL_STATUS), sampled with the CPU times: statements
 * and commits per sale say what a sale costs the database, whatever the machine's speed. */
enum { S_QUESTIONS, S_EXECUTE, S_COMMIT, S_FSYNCS, N_STATUS };
static const char *const status_vars[N_STATUS] = {"QUESTIONS", "COM_STMT_EXECUTE", "COM_COMMIT", "INNODB_DATA_FSYNCS"};
static const char *const status_names[N_STATUS] = {"statements", "executes", "commits", "fsyncs"};
static sb_db *status_db;

static void status_sample(long long out[N_STATUS]) {
        for (int i = 0; i < N_STATUS; i++)
                out[i] = -1;
        if (!status_db)
                status_db = sb_test_db_open_admin();
        sb_db_stmt *q = NULL;
        if (sb_db_prepare(status_db,
                          "SELECT VARIABLE_NAME, VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME "
                          "IN ('QUESTIONS', 'COM_STMT_EXECUTE', 'COM_COMMIT', 'INNODB_DATA_FSYNCS')",
                          &q) < 0 ||
            sb_db_execute(q) < 0)
                return;
        while (sb_db_fetch(q) == 1) {
                char name[64];
                int64_t v;
                if (sb_db_col_str(q, 0, name, sizeof name) < 0 || sb_db_col_i64(q, 1, &v) < 0)
                        continue;
                for (int i = 0; i < N_STATUS; i++)
                        if (!strcmp(name, status_vars[i]))
                                out[i] = v;
        }
}

static void procs_sample(long long out[N_PROCS + N_STATUS]) {
        for (int i = 0; i < N_PROCS; i++)
                out[i] = proc_pids[i] > 0 ? proc_ticks(proc_pids[i]) : -1;
        status_sample(out + N_PROCS);
}

/* "cpu <what> <N> <sales> merchant=<µs a sale> … total=<µs>": CPU per sale over the counted interval. */
static void procs_print(const char *what, unsigned n, uint64_t sales, const long long a[N_PROCS + N_STATUS],
                        const long long b[N_PROCS + N_STATUS]) {
        if (!sales)
                return;
        double us_tick = 1e6 / (double) sysconf(_SC_CLK_TCK), total = 0;
        printf("cpu %s %u %" PRIu64, what, n, sales);
        for (int i = 0; i < N_PROCS; i++) {
                if (a[i] < 0 || b[i] < 0)
                        continue;
                double us = (double) (b[i] - a[i]) * us_tick / (double) sales;
                total += us;
                printf(" %s=%.0f", proc_names[i], us);
        }
        printf(" total=%.0f\n", total);
        printf("db %s %u %" PRIu64, what, n, sales);
        for (int i = 0; i < N_STATUS; i++)
                if (a[N_PROCS + i] >= 0 && b[N_PROCS + i] >= 0)
                        printf(" %s=%.2f", status_names[i], (double) (b[N_PROCS + i] - a[N_PROCS + i]) / (double) sales);
        printf("\n");
}

static int cmp_u32(const void *a, const void *b) {
        uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
        return x < y ? -1 : x > y;
}

/* One level: n terminals for `seconds` (after a 0.5 s warm-up); rate > 0 paces them to `rate` sales/s in all. */
static void run(int mode, unsigned n, unsigned seconds, unsigned round, unsigned rate) {
        worker *w = calloc(n, sizeof *w);
        atomic_store(&stop, false);
        int64_t start = mono_us() + 20000;
        for (unsigned t = 0; t < n; t++) {
                w[t].t = t;
                w[t].round = round;
                w[t].n = rate ? n + 1000 * rate : n; /* sale ids differ from the closed-loop levels' */
                w[t].mode = mode;
                if (rate) {
                        w[t].interval_us = (int64_t) n * 1000000 / rate;
                        w[t].start_us = start + (int64_t) t * w[t].interval_us / n; /* staggered */
                }
                w[t].lat = malloc(sizeof *w[t].lat * LAT_MAX);
                sb_test_stack_role_token(st, SB_ROLE_CASHIER, 500000 + t, merchants[t % MERCHANTS], t + 1, 0, w[t].tok);
                SB_CHECK_EQ(pthread_create(&w[t].th, NULL, mode ? sql_worker : rpc_worker, &w[t]), 0);
        }
        /* Count from the end of a short warm-up; latencies from then on. */
        struct timespec ws = {0, 500 * 1000000};
        nanosleep(&ws, NULL);
        uint64_t before = 0;
        for (unsigned t = 0; t < n; t++) {
                before += __atomic_load_n(&w[t].done, __ATOMIC_RELAXED);
                __atomic_store_n(&w[t].n_lat, 0, __ATOMIC_RELAXED);
        }
        long long cpu0[N_PROCS + N_STATUS], cpu1[N_PROCS + N_STATUS];
        procs_sample(cpu0);
        int64_t t0 = mono_us();
        struct timespec d = {seconds, 0};
        nanosleep(&d, NULL);
        uint64_t after = 0;
        for (unsigned t = 0; t < n; t++)
                after += __atomic_load_n(&w[t].done, __ATOMIC_RELAXED);
        int64_t t1 = mono_us();
        procs_sample(cpu1);
        atomic_store(&stop, true);
        uint64_t failed = 0;
        size_t total = 0;
        for (unsigned t = 0; t < n; t++) {
                pthread_join(w[t].th, NULL);
                failed += w[t].failed;
                total += w[t].n_lat;
        }
        uint32_t *all = malloc(sizeof *all * (total ? total : 1));
        size_t k = 0;
        for (unsigned t = 0; t < n; t++) {
                memcpy(all + k, w[t].lat, sizeof *all * w[t].n_lat);
                k += w[t].n_lat;
                free(w[t].lat);
        }
        qsort(all, total, sizeof *all, cmp_u32);
        unsigned rate_target = rate;
        double rate_d = (double) (after - before) * 1e6 / (double) (t1 - t0);
        if (w[0].interval_us > 0)
                printf("%s %u %u %.0f %u %u failed=%" PRIu64 "\n", mode ? "rate-sql" : "rate-rpc", rate_target, n,
                       rate_d, total ? all[total / 2] : 0, total ? all[total * 99 / 100] : 0, failed);
        else
                printf("%s %u %.0f %u %u failed=%" PRIu64 "\n", mode ? "sql" : "rpc", n, rate_d,
               total ? all[total / 2] : 0, total ? all[total * 99 / 100] : 0, failed);
        char what[16];
        snprintf(what, sizeof what, "%s%s", w[0].interval_us > 0 ? "rate-" : "", mode ? "sql" : "rpc");
        procs_print(what, n, after - before, cpu0, cpu1);
        fflush(stdout);
        free(all);
        free(w);
}

static void setup(void) {
        const char *imp[] = {"region", "import", "--from", getenv("SB_REGION_DATA"), NULL};
        SB_CHECK(imp[3] != NULL);
        char *out = NULL;
        SB_CHECK_EQ(sb_test_stack_ctl(st, &out, imp), 0);
        free(out);
        for (unsigned i = 0; i < MEMBERS; i++) {
                char phone[16];
                snprintf(phone, sizeof phone, "137%08u", (unsigned) ((run_id * 131 + i) % 100000000u));
                Sharebuy__Identity__V1__RegisterMemberRequest rq = SHAREBUY__IDENTITY__V1__REGISTER_MEMBER_REQUEST__INIT;
                rq.phone = phone;
                rq.password = "Correct-Horse-Battery-42";
                Sharebuy__Identity__V1__RegisterMemberResponse *r =
                        call("identity", "RegisterMember", &rq,
                             &sharebuy__identity__v1__register_member_response__descriptor, NULL);
                members[i] = r->member->member_id;
                protobuf_c_message_free_unpacked(&r->base, NULL);
                char ref[64];
                snprintf(ref, sizeof ref, "bench-%" PRIu64 "-%u", run_id, i);
                Sharebuy__Identity__V1__ActivateRequest ac = SHAREBUY__IDENTITY__V1__ACTIVATE_REQUEST__INIT;
                ac.payment_reference = ref;
                ac.member_case = SHAREBUY__IDENTITY__V1__ACTIVATE_REQUEST__MEMBER_MEMBER_ID;
                ac.member_id = members[i];
                ac.pack_price_fen = 9900;
                protobuf_c_message_free_unpacked(call("identity", "Activate", &ac,
                                                      &sharebuy__identity__v1__activation_result__descriptor, svc_tok),
                                                 NULL);
                Sharebuy__Identity__V1__IssueMemberCodeRequest ic = SHAREBUY__IDENTITY__V1__ISSUE_MEMBER_CODE_REQUEST__INIT;
                ic.member_id = members[i];
                ic.text_only = true;
                ic.ttl_seconds = 86400;
                Sharebuy__Identity__V1__IssueMemberCodeResponse *c =
                        call("identity", "IssueMemberCode", &ic,
                             &sharebuy__identity__v1__issue_member_code_response__descriptor, svc_tok);
                cards[i] = strdup(c->code);
                protobuf_c_message_free_unpacked(&c->base, NULL);
        }
        static const char alphabet[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";
        static const int wt[17] = {1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28};
        for (unsigned m = 0; m < MERCHANTS; m++) {
                char lic[19];
                snprintf(lic, sizeof lic, "91%s%09" PRIu64, DISTRICT, (run_id * 37 + m) % 1000000000u);
                int sum = 0;
                for (int i = 0; i < 17; i++)
                        sum += (int) (strchr(alphabet, lic[i]) - alphabet) * wt[i];
                lic[17] = alphabet[(31 - sum % 31) % 31];
                lic[18] = '\0';
                char owner_tok[SB_AUTH_TOKEN_MAX];
                sb_test_stack_role_token(st, SB_ROLE_MEMBER, members[m], 0, 0, 0, owner_tok);
                Sharebuy__Common__V1__GeoPoint g = SHAREBUY__COMMON__V1__GEO_POINT__INIT;
                g.latitude_e6 = 39915000 + (int32_t) m * 100;
                g.longitude_e6 = 116404000;
                Sharebuy__Merchant__V1__ApplyRequest ap = SHAREBUY__MERCHANT__V1__APPLY_REQUEST__INIT;
                ap.name = "基准测试店";
                ap.licence_no = lic;
                ap.address = "东城区 1 号";
                ap.location = &g;
                ap.district_code = DISTRICT;
                ap.contact_name = "店长";
                ap.contact_phone = "13800138000";
                Sharebuy__Merchant__V1__MerchantProfile *p =
                        call("merchant", "Apply", &ap,
                             &sharebuy__merchant__v1__merchant_profile__descriptor, owner_tok);
                merchants[m] = p->merchant_id;
                protobuf_c_message_free_unpacked(&p->base, NULL);
                Sharebuy__Merchant__V1__ApproveRequest ar = SHAREBUY__MERCHANT__V1__APPROVE_REQUEST__INIT;
                ar.merchant_id = merchants[m];
                protobuf_c_message_free_unpacked(call("merchant", "Approve", &ar,
                                                      &sharebuy__merchant__v1__merchant_profile__descriptor, admin_tok),
                                                 NULL);
        }
        /* Deposits: 20 000 SP each, from the unreleased SP (an admin's adjustment: the treasury path is tested
         * elsewhere and adds nothing to the sale path). */
        sb_db *db = open_direct();
        wallet_problem prob = {0};
        SB_CHECK_EQ(wallet_ledger_genesis(db, &ledger_cfg, 0, &prob), 0);
        for (unsigned m = 0; m < MERCHANTS; m++) {
                wallet_tx *tx = calloc(1, sizeof *tx);
                snprintf(tx->scope, sizeof tx->scope, "svc");
                snprintf(tx->key, sizeof tx->key, "bench:%" PRIu64 ":fund:%u", run_id, m);
                tx->cause_kind = WALLET_CAUSE_ADJUSTMENT;
                snprintf(tx->cause_ref, sizeof tx->cause_ref, "bench");
                tx->n_legs = 2;
                tx->legs[0] = (wallet_leg){.ref = {WALLET_OWNER_SYSTEM, WALLET_SYS_SP_UNRELEASED, WALLET_ASSET_SP},
                                           .amount = -(INT64_C(20000) * 10000), .reason = 21};
                tx->legs[1] = (wallet_leg){.ref = {WALLET_OWNER_MERCHANT, merchants[m], WALLET_ASSET_SP},
                                           .amount = INT64_C(20000) * 10000, .reason = 21};
                bool replayed;
                struct timespec now;
                clock_gettime(CLOCK_REALTIME, &now);
                SB_CHECK_EQ(wallet_ledger_post(db, &ledger_cfg, tx, (int64_t) now.tv_sec * 1000, &replayed, &prob), 0);
                free(tx);
        }
        sb_db_close(db);
}

int main(int argc, char **argv) {
        unsigned terminals[8], n_terminals = 0, seconds = 5, rounds = 1, rate = 0, rate_terminals = 32;
        for (int i = 1; i + 1 < argc; i += 2) {
                if (!strcmp(argv[i], "--terminals") && n_terminals < 8)
                        terminals[n_terminals++] = (unsigned) atoi(argv[i + 1]);
                else if (!strcmp(argv[i], "--seconds"))
                        seconds = (unsigned) atoi(argv[i + 1]);
                else if (!strcmp(argv[i], "--rounds"))
                        rounds = (unsigned) atoi(argv[i + 1]);
                else if (!strcmp(argv[i], "--rate"))
                        rate = (unsigned) atoi(argv[i + 1]);
                else if (!strcmp(argv[i], "--rate-terminals"))
                        rate_terminals = (unsigned) atoi(argv[i + 1]);
        }
        if (!n_terminals) {
                terminals[0] = 1;
                terminals[1] = 16;
                terminals[2] = 64;
                n_terminals = 3;
        }
        for (unsigned i = 0; i < n_terminals; i++)
                if (terminals[i] > MAX_TERMINALS) { /* 0: no closed-loop level (only --rate) */
                        fprintf(stderr, "usage: merchant-bench-driver [--terminals 0..256]... [--seconds S] [--rounds R] [--rate R] [--rate-terminals T]\n");
                        return 2;
                }
        FILE *f = fopen("/dev/urandom", "rb");
        SB_CHECK(f && fread(&run_id, sizeof run_id, 1, f) == 1);
        fclose(f);
        run_id = run_id % UINT64_C(100000000) + 1;

        static const char *const services[] = {"identity", "wallet", "region", "merchant", NULL};
        st = sb_test_stack_new(services);
        /* Worker threads per service (each holds a database connection): the services' default (16; the test
         * stack's own default is 8) unless MERCHANT_BENCH_WORKERS="merchant wallet identity region" says
         * otherwise. */
        const char *wenv = getenv("MERCHANT_BENCH_WORKERS");
        if (!wenv || !*wenv)
                wenv = "16 16 16 16";
        {
                char wm[16], ww[16], wi[16], wr[16];
                if (sscanf(wenv, "%15s %15s %15s %15s", wm, ww, wi, wr) != 4) {
                        fprintf(stderr, "MERCHANT_BENCH_WORKERS: four numbers, merchant wallet identity region\n");
                        return 2;
                }
                sb_test_stack_env(st, "merchant", "SB_WORKERS", wm);
                sb_test_stack_env(st, "wallet", "SB_WORKERS", ww);
                sb_test_stack_env(st, "identity", "SB_WORKERS", wi);
                sb_test_stack_env(st, "region", "SB_WORKERS", wr);
        }
        sb_test_stack_env(st, "identity", "SB_IDENTITY_REGISTER_PER_PEER", "1000000");
        sb_test_stack_env(st, "identity", "SB_IDENTITY_MEMBER_CODES_PER_MINUTE", "10000");
        /* MERCHANT_BENCH_LOG_LEVEL=info logs every call with its latency (for a breakdown per service; it costs
         * CPU: not for figures). */
        const char *level = getenv("MERCHANT_BENCH_LOG_LEVEL");
        if (!level || !*level)
                level = "warn";
        sb_test_stack_env(st, "identity", "SB_LOG_LEVEL", level);
        sb_test_stack_env(st, "wallet", "SB_LOG_LEVEL", level);
        sb_test_stack_env(st, "merchant", "SB_LOG_LEVEL", level);
        sb_test_stack_env(st, "region", "SB_LOG_LEVEL", level);
        sb_test_stack_start_all(st);
        sb_test_stack_role_token(st, SB_ROLE_SERVICE, 0, 0, 0, 0, svc_tok);
        sb_test_stack_role_token(st, SB_ROLE_ADMIN, 1, 0, 0, 0, admin_tok);
        SB_CHECK_EQ(sb_rpc_method_path(&sharebuy__merchant__v1__merchant__descriptor, "RecordSale", record_path,
                                       sizeof record_path),
                    0);
        setup();
        procs_find();
        for (unsigned r = 0; r < rounds; r++)
                for (unsigned i = 0; i < n_terminals; i++) {
                        if (!terminals[i])
                                continue;
                        run(1, terminals[i], seconds, r, 0);
                        run(0, terminals[i], seconds, r, 0);
                }
        /* The latency at a fixed arrival rate (the issue's "p99 at 500 sales/s"). */
        if (rate > 0 && rate_terminals >= 1 && rate_terminals <= MAX_TERMINALS)
                for (unsigned r = 0; r < rounds; r++) {
                        run(1, rate_terminals, seconds, r, rate);
                        run(0, rate_terminals, seconds, r, rate);
                }
        const char *verify[] = {"ledger", "verify", NULL};
        char *out = NULL;
        int rc = sb_test_stack_ctl(st, &out, verify);
        printf("verify %s\n", rc == 0 ? "ok" : "FAILED");
        free(out);
        if (status_db)
                sb_db_close(status_db);
        sb_test_stack_free(st);
        return rc == 0 ? 0 : 1;
}
