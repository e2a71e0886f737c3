/* wallet-bench-driver: PostTransaction throughput, through the wallet service (gRPC, many concurrent clients)
 * against the same SQL statements run straight on MariaDB (the ledger store, wallet_ledger_post(), called from the
 * same number of threads with one connection each), in one run, against one server (tests/lib/with-mariadb).
 *
 *   wallet-bench-driver [--threads N] [--seconds S] [--rounds R]
 *
 * Each posting is a sale as the merchant service would post it: 5 legs — the merchant's deposit −1 SP, SP burned
 * +1 SP, the member's CV +100, the merchant's CV +20, CV issued −120 — so 3 holder rows locked and 2 hot system
 * shards. Every thread has its own merchant (a terminal) and cycles over 50 members of its own. Prints one line
 * per mode and round ("rpc <tx/s>", "sql <tx/s>") and a final "ratio"; the script (tests/bench/wallet-bench) turns
 * them into the docs table. */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sb_stack.h"
#include "sb_test.h"
#include "sharebuy/wallet/v1/wallet.pb-c.h"
#include "wallet_ledger.h"

#define MEMBERS 50

static sb_test_stack *st;
static sb_rpc_client *cli;
static char svc_tok[SB_AUTH_TOKEN_MAX];
static uint64_t run_id;
static atomic_bool stop;
static char post_path[128];

/* The ledger's clock: a posting's time and business day (0 is no time the ledger takes). */
static int64_t wall_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t merchant_of(unsigned t) {
        return run_id * 10000 + t + 1;
}

static uint64_t member_of(unsigned t, unsigned i) {
        return run_id * 10000 + 1000 + t * MEMBERS + i;
}

typedef struct worker {
        unsigned t;
        int mode; /* 0 rpc, 1 sql */
        unsigned round;
        uint64_t done, failed;
        pthread_t th;
} worker;

static void sale_legs(wallet_tx *tx, uint64_t merchant, uint64_t member) {
        tx->n_legs = 5;
        tx->legs[0] = (wallet_leg){.ref = {WALLET_OWNER_MERCHANT, merchant, WALLET_ASSET_SP}, .amount = -10000,
                                   .reason = 9};
        tx->legs[1] = (wallet_leg){.ref = {WALLET_OWNER_SYSTEM, WALLET_SYS_SP_BURNED, 0}, .amount = 10000,
                                   .reason = 14};
        tx->legs[2] = (wallet_leg){.ref = {WALLET_OWNER_MEMBER, member, WALLET_ASSET_CV_ACTIVE}, .amount = 1000000,
                                   .reason = 6};
        tx->legs[3] = (wallet_leg){.ref = {WALLET_OWNER_MERCHANT, merchant, WALLET_ASSET_CV_ACTIVE},
                                   .amount = 200000, .reason = 7};
        tx->legs[4] = (wallet_leg){.ref = {WALLET_OWNER_SYSTEM, WALLET_SYS_CV_ISSUED, 0}, .amount = -1200000,
                                   .reason = 6};
}

static void *rpc_worker(void *p) {
        worker *w = p;
        Sharebuy__Common__V1__OwnerRef owners[5];
        Sharebuy__Common__V1__AccountRef refs[5];
        Sharebuy__Common__V1__LedgerLeg legs[5], *ptrs[5];
        wallet_tx *tx = calloc(1, sizeof *tx);
        for (uint64_t i = 0; !atomic_load(&stop); i++) {
                sale_legs(tx, merchant_of(w->t), member_of(w->t, (unsigned) (i % MEMBERS)));
                for (size_t k = 0; k < tx->n_legs; k++) {
                        sharebuy__common__v1__account_ref__init(&refs[k]);
                        refs[k].asset = (Sharebuy__Common__V1__Asset) tx->legs[k].ref.asset;
                        if (tx->legs[k].ref.owner_kind == WALLET_OWNER_SYSTEM) {
                                refs[k].holder_case = SHAREBUY__COMMON__V1__ACCOUNT_REF__HOLDER_SYSTEM;
                                refs[k].system = (Sharebuy__Common__V1__SystemAccount) tx->legs[k].ref.owner_id;
                        } else {
                                sharebuy__common__v1__owner_ref__init(&owners[k]);
                                owners[k].kind = (Sharebuy__Common__V1__OwnerKind) tx->legs[k].ref.owner_kind;
                                owners[k].id = tx->legs[k].ref.owner_id;
                                refs[k].holder_case = SHAREBUY__COMMON__V1__ACCOUNT_REF__HOLDER_OWNER;
                                refs[k].owner = &owners[k];
                        }
                        sharebuy__common__v1__ledger_leg__init(&legs[k]);
                        legs[k].account = &refs[k];
                        legs[k].amount_units = tx->legs[k].amount;
                        legs[k].reason = (Sharebuy__Common__V1__LegReason) tx->legs[k].reason;
                        ptrs[k] = &legs[k];
                }
                char key[64], ref[32];
                snprintf(key, sizeof key, "b%" PRIu64 ":r%u:%u:%" PRIu64, run_id, w->round, w->t, i);
                snprintf(ref, sizeof ref, "%u-%" PRIu64, w->t, i);
                Sharebuy__Common__V1__Cause cause = SHAREBUY__COMMON__V1__CAUSE__INIT;
                cause.kind = SHAREBUY__COMMON__V1__CAUSE_KIND__CAUSE_KIND_SALE;
                cause.reference = ref;
                cause.merchant_id = merchant_of(w->t);
                Sharebuy__Wallet__V1__PostTransactionRequest req = SHAREBUY__WALLET__V1__POST_TRANSACTION_REQUEST__INIT;
                req.idempotency_key = key;
                req.cause = &cause;
                req.n_legs = tx->n_legs;
                req.legs = ptrs;
                char msg[256];
                sb_rpc_call_opts o = {.deadline_ms = 10000, .bearer = svc_tok};
                ProtobufCMessage *resp = NULL;
                sb_status s = sb_rpc_client_call(cli, post_path, &req.base,
                                                 &sharebuy__wallet__v1__post_transaction_response__descriptor, &o,
                                                 &resp, msg, sizeof msg);
                if (s == SB_OK) {
                        w->done++;
                        protobuf_c_message_free_unpacked(resp, NULL);
                } else {
                        if (w->failed++ == 0)
                                fprintf(stderr, "rpc: %s: %s\n", sb_status_name(s), msg);
                }
        }
        free(tx);
        return NULL;
}

static const wallet_ledger_cfg ledger_cfg = {.cap_sp = INT64_C(9723600000), .utc_offset_min = 480, .cutoff_min = 1320};

static sb_db *open_direct(void) {
        sb_db *db = sb_test_db_open_admin();
        static const char use[] = "USE sharebuy_wallet";
        SB_CHECK_EQ(sb_db_exec_text(db, use, sizeof use - 1), 0);
        return db;
}

static void *sql_worker(void *p) {
        worker *w = p;
        sb_db *db = open_direct();
        wallet_tx *tx = calloc(1, sizeof *tx);
        for (uint64_t i = 0; !atomic_load(&stop); i++) {
                memset(tx, 0, sizeof *tx);
                sale_legs(tx, merchant_of(w->t), member_of(w->t, (unsigned) (i % MEMBERS)));
                char why[256];
                SB_CHECK_EQ(wallet_legs_check(tx->legs, tx->n_legs, false, 0, why, sizeof why), 0);
                snprintf(tx->scope, sizeof tx->scope, "svc");
                snprintf(tx->key, sizeof tx->key, "b%" PRIu64 ":s%u:%u:%" PRIu64, run_id, w->round, w->t, i);
                tx->cause_kind = WALLET_CAUSE_SALE;
                snprintf(tx->cause_ref, sizeof tx->cause_ref, "%u-%" PRIu64, w->t, i);
                tx->cause_merchant = merchant_of(w->t);
                wallet_problem prob = {0};
                bool replayed;
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                int r = wallet_ledger_post(db, &ledger_cfg, tx, (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000,
                                           &replayed, &prob);
                if (r == 0)
                        w->done++;
                else if (w->failed++ == 0)
                        fprintf(stderr, "sql: %d %s %s\n", r, prob.msg, sb_db_errmsg(db));
        }
        free(tx);
        sb_db_close(db);
        return NULL;
}

static double run(int mode, unsigned threads, unsigned seconds, unsigned round) {
        worker *w = calloc(threads, sizeof *w);
        atomic_store(&stop, false);
        for (unsigned t = 0; t < threads; t++) {
                w[t] = (worker){.t = t, .mode = mode, .round = round};
                SB_CHECK_EQ(pthread_create(&w[t].th, NULL, mode ? sql_worker : rpc_worker, &w[t]), 0);
        }
        /* Count from the end of a short warm-up. */
        struct timespec ws = {0, 500 * 1000000};
        nanosleep(&ws, NULL);
        uint64_t before = 0;
        for (unsigned t = 0; t < threads; t++)
                before += __atomic_load_n(&w[t].done, __ATOMIC_RELAXED);
        int64_t t0 = mono_ms();
        struct timespec d = {seconds, 0};
        nanosleep(&d, NULL);
        uint64_t after = 0;
        for (unsigned t = 0; t < threads; t++)
                after += __atomic_load_n(&w[t].done, __ATOMIC_RELAXED);
        int64_t t1 = mono_ms();
        atomic_store(&stop, true);
        uint64_t failed = 0;
        for (unsigned t = 0; t < threads; t++) {
                pthread_join(w[t].th, NULL);
                failed += w[t].failed;
        }
        free(w);
        double rate = (double) (after - before) * 1000.0 / (double) (t1 - t0);
        printf("%s %.0f failed=%" PRIu64 "\n", mode ? "sql" : "rpc", rate, failed);
        fflush(stdout);
        return rate;
}

int main(int argc, char **argv) {
        unsigned threads = 16, seconds = 5, rounds = 3;
        for (int i = 1; i + 1 < argc; i += 2) {
                if (!strcmp(argv[i], "--threads"))
                        threads = (unsigned) atoi(argv[i + 1]);
                else if (!strcmp(argv[i], "--seconds"))
                        seconds = (unsigned) atoi(argv[i + 1]);
                else if (!strcmp(argv[i], "--rounds"))
                        rounds = (unsigned) atoi(argv[i + 1]);
        }
        if (threads < 1 || threads > 256 || seconds < 1 || rounds < 1) {
                fprintf(stderr, "usage: wallet-bench-driver [--threads 1..256] [--seconds S] [--rounds R]\n");
                return 2;
        }
        FILE *f = fopen("/dev/urandom", "rb");
        SB_CHECK(f && fread(&run_id, sizeof run_id, 1, f) == 1);
        fclose(f);
        run_id = run_id % UINT64_C(100000000) + 1;

        static const char *const services[] = {"wallet", NULL};
        st = sb_test_stack_new(services);
        char workers[16];
        snprintf(workers, sizeof workers, "%u", threads);
        sb_test_stack_env(st, "wallet", "SB_WORKERS", workers);
        sb_test_stack_start_all(st);
        cli = sb_test_stack_client(st, "wallet");
        sb_test_stack_role_token(st, SB_ROLE_SERVICE, 0, 0, 0, 0, svc_tok);
        SB_CHECK_EQ(sb_rpc_method_path(&sharebuy__wallet__v1__wallet__descriptor, "PostTransaction", post_path,
                                       sizeof post_path),
                    0);

        /* Accounts, and each merchant's deposit funded from the unreleased SP. */
        sb_db *db = open_direct();
        for (unsigned t = 0; t < threads; t++) {
                bool existed;
                SB_CHECK_EQ(wallet_ledger_open_accounts(db, WALLET_OWNER_MERCHANT, merchant_of(t), 0, &existed), 0);
                for (unsigned i = 0; i < MEMBERS; i++)
                        SB_CHECK_EQ(wallet_ledger_open_accounts(db, WALLET_OWNER_MEMBER, member_of(t, i), 0, &existed),
                                    0);
        }
        /* The genesis exists once the service answered a call that needs the database; make sure of it. */
        wallet_problem prob = {0};
        SB_CHECK_EQ(wallet_ledger_genesis(db, &ledger_cfg, wall_ms(), &prob), 0);
        for (unsigned t = 0; t < threads; t++) {
                wallet_tx *tx = calloc(1, sizeof *tx);
                snprintf(tx->scope, sizeof tx->scope, "svc");
                snprintf(tx->key, sizeof tx->key, "b%" PRIu64 ":fund:%u", run_id, t);
                tx->cause_kind = WALLET_CAUSE_ADJUSTMENT;
                snprintf(tx->cause_ref, sizeof tx->cause_ref, "bench");
                tx->n_legs = 2;
                tx->legs[0] = (wallet_leg){.ref = {WALLET_OWNER_SYSTEM, WALLET_SYS_SP_UNRELEASED, WALLET_ASSET_SP},
                                           .amount = -(INT64_C(20000) * 10000), .reason = 21};
                tx->legs[1] = (wallet_leg){.ref = {WALLET_OWNER_MERCHANT, merchant_of(t), WALLET_ASSET_SP},
                                           .amount = (INT64_C(20000) * 10000), .reason = 21};
                bool replayed;
                int r = wallet_ledger_post(db, &ledger_cfg, tx, wall_ms(), &replayed, &prob);
                if (r < 0)
                        fprintf(stderr, "funding: %d %s %s\n", r, prob.msg, sb_db_errmsg(db));
                SB_CHECK_EQ(r, 0);
                free(tx);
        }
        sb_db_close(db);

        double best_rpc = 0, best_sql = 0, sum_ratio = 0;
        for (unsigned r = 0; r < rounds; r++) {
                double s = run(1, threads, seconds, r);
                double g = run(0, threads, seconds, r);
                if (s > best_sql)
                        best_sql = s;
                if (g > best_rpc)
                        best_rpc = g;
                sum_ratio += g / s;
        }
        printf("best rpc %.0f sql %.0f\n", best_rpc, best_sql);
        printf("ratio %.3f\n", sum_ratio / rounds);
        sb_test_stack_free(st);
        return 0;
}
