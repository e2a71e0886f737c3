/* airdrop-bench: one day's airdrop over N accounts (default 1 000 000) through the real wallet and airdrop processes,
 * against the private MariaDB that tests/bench/airdrop-bench starts (with-mariadb).
 *
 *   1. N members with random active CV are bulk-loaded as the wallet's own rows, consistent with every invariant
 *      `sharebuyctl ledger verify` checks: accounts, balances, and CV issuance transactions of 63 members each,
 *      hash-chained with the wallet's wallet_chain_hash().
 *   2. The ceiling: the time MariaDB takes to bulk-load as many ledger rows as the run writes (2 entries per
 *      account, one transaction per 31 accounts) into copies of the journal tables, in the same batches.
 *   3. The run: RunDay, then GetRun until it completes; the wall time, and the peak RSS (VmHWM) of the airdrop and
 *      the wallet processes.
 *   4. `sharebuyctl ledger verify` (with --verify).
 * Prints one line per figure, and a JSON line at the end. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sb_stack.h"
#include "sb_test.h"
#include "sharebuy/airdrop/v1/airdrop.pb-c.h"
#include "sharebuy/wallet/v1/wallet.pb-c.h"
#include "wallet_legs.h"

#define BATCH 10000
#define PER_TX 63

static int64_t mono_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct buf {
        char *p;
        size_t len, cap;
} buf;

static void bprintf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bprintf(buf *b, const char *fmt, ...) {
        for (;;) {
                va_list ap;
                va_start(ap, fmt);
                int n = vsnprintf(b->p ? b->p + b->len : NULL, b->cap - b->len, fmt, ap);
                va_end(ap);
                SB_CHECK(n >= 0);
                if ((size_t) n < b->cap - b->len) {
                        b->len += (size_t) n;
                        return;
                }
                b->cap = b->cap ? b->cap * 2 : 1 << 20;
                b->p = realloc(b->p, b->cap);
                SB_CHECK(b->p);
        }
}

static void exec(sb_db *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void exec(sb_db *db, const char *fmt, ...) {
        char sql[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(sql, sizeof sql, fmt, ap);
        va_end(ap);
        if (sb_db_exec_text(db, sql, strlen(sql)) < 0) {
                fprintf(stderr, "%s\n  -> %s\n", sql, sb_db_errmsg(db));
                abort();
        }
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return rng;
}

/* Loads members lo..hi (inclusive ids) with random active CV as CV issuance transactions on chain `part`. */
static void load_batch(sb_db *db, uint64_t lo, uint64_t hi, unsigned part, uint64_t *seq, uint8_t prev[32],
                       int64_t shard_sum[16], int64_t *issued) {
        exec(db,
             "INSERT INTO sharebuy_wallet.accounts (owner_kind, owner_id, asset, shards, created_ms)"
             " SELECT 1, s.seq, a.asset, 1, 0 FROM seq_%" PRIu64 "_to_%" PRIu64 " s JOIN"
             " (SELECT 1 AS asset UNION ALL SELECT 2 UNION ALL SELECT 3) a ORDER BY s.seq, a.asset",
             lo, hi);
        exec(db,
             "INSERT INTO sharebuy_wallet.balances (account_id, shard, balance, updated_ms) SELECT account_id, 0, 0, 0"
             " FROM sharebuy_wallet.accounts WHERE owner_kind = 1 AND owner_id BETWEEN %" PRIu64 " AND %" PRIu64,
             lo, hi);
        size_t n = (size_t) (hi - lo + 1);
        uint64_t *acct = calloc(n, sizeof *acct);
        int64_t *cv = calloc(n, sizeof *cv);
        SB_CHECK(acct && cv);
        sb_db_stmt *s;
        SB_CHECK_EQ(sb_db_prepare(db,
                                  "SELECT owner_id, account_id FROM sharebuy_wallet.accounts WHERE owner_kind = 1"
                                  " AND asset = 2 AND owner_id BETWEEN ? AND ?",
                                  &s),
                    0);
        sb_db_bind_u64(s, 0, lo);
        sb_db_bind_u64(s, 1, hi);
        SB_CHECK_EQ(sb_db_execute(s), 0);
        while (sb_db_fetch(s) > 0) {
                uint64_t o, a;
                sb_db_col_u64(s, 0, &o);
                sb_db_col_u64(s, 1, &a);
                acct[o - lo] = a;
        }
        for (size_t i = 0; i < n; i++)
                cv[i] = (int64_t) (next_rand() % 100000000) + 1; /* up to 10 000 CV */
        size_t n_tx = (n + PER_TX - 1) / PER_TX;
        static wallet_tx tx;
        buf jt = {0}, je = {0}, jb = {0};
        bprintf(&jt, "[");
        for (size_t t = 0; t < n_tx; t++) {
                memset(&tx, 0, sizeof tx);
                snprintf(tx.scope, sizeof tx.scope, "svc");
                snprintf(tx.key, sizeof tx.key, "bench-cv:%08" PRIu64 ":%04zu", lo, t);
                tx.cause_kind = 3;
                snprintf(tx.cause_ref, sizeof tx.cause_ref, "bench");
                tx.posted_ms = 0;
                snprintf(tx.business_day, sizeof tx.business_day, "2025-01-01");
                size_t a = t * PER_TX, b = a + PER_TX < n ? a + PER_TX : n;
                int64_t sum = 0;
                tx.n_legs = 1;
                for (size_t i = a; i < b; i++) {
                        wallet_leg *l = &tx.legs[tx.n_legs++];
                        l->ref = (wallet_account_ref){1, lo + i, 2};
                        l->amount = cv[i];
                        l->reason = 4;
                        l->account_id = acct[i];
                        l->has_balance_after = true;
                        l->balance_after = cv[i];
                        sum += cv[i];
                }
                wallet_leg *l0 = &tx.legs[0];
                l0->ref = (wallet_account_ref){0, 4, 1};
                l0->amount = -sum;
                l0->reason = 4;
                l0->account_id = 4;
                l0->shard = wallet_shard_of(tx.scope, tx.key, 16);
                shard_sum[l0->shard] -= sum;
                *issued += sum;
                wallet_request_hash(&tx, tx.request_hash);
                tx.chain_part = part;
                tx.chain_seq = ++*seq;
                memcpy(tx.prev_hash, prev, 32);
                wallet_chain_hash(&tx, tx.chain_hash);
                memcpy(prev, tx.chain_hash, 32);
                char rh[65], ph[65], ch[65];
                wallet_hash_hex(tx.request_hash, rh);
                wallet_hash_hex(tx.prev_hash, ph);
                wallet_hash_hex(tx.chain_hash, ch);
                bprintf(&jt, "%s[\"%s\",\"%s\",%" PRIu64 ",\"%s\",\"%s\"]", t ? "," : "", tx.key, rh, tx.chain_seq, ph,
                        ch);
        }
        bprintf(&jt, "]");
        exec(db, "BEGIN");
        SB_CHECK_EQ(sb_db_prepare(db,
                                  "INSERT INTO sharebuy_wallet.transactions (scope, idem_key, request_hash, cause_kind,"
                                  " cause_ref, cause_merchant, memo, posted_ms, business_day, reverses_tx_id,"
                                  " chain_part, chain_seq, prev_hash, chain_hash) SELECT 'svc', j.k, UNHEX(j.rh), 3,"
                                  " 'bench', 0, '', 0, '2025-01-01', NULL, ?, j.seq, UNHEX(j.ph), UNHEX(j.ch)"
                                  " FROM JSON_TABLE(?, '$[*]' COLUMNS (ord FOR ORDINALITY, k VARCHAR(64) PATH '$[0]',"
                                  " rh CHAR(64) PATH '$[1]', seq BIGINT UNSIGNED PATH '$[2]', ph CHAR(64) PATH '$[3]',"
                                  " ch CHAR(64) PATH '$[4]')) AS j ORDER BY j.ord",
                                  &s),
                    0);
        sb_db_bind_u64(s, 0, part);
        sb_db_bind_strn(s, 1, jt.p, jt.len);
        SB_CHECK_EQ(sb_db_execute(s), 0);
        uint64_t *ids = calloc(n_tx, sizeof *ids);
        char like[64];
        snprintf(like, sizeof like, "bench-cv:%08" PRIu64 ":%%", lo);
        SB_CHECK_EQ(sb_db_prepare(db,
                                  "SELECT tx_id FROM sharebuy_wallet.transactions WHERE scope = 'svc' AND idem_key LIKE ?"
                                  " ORDER BY idem_key",
                                  &s),
                    0);
        sb_db_bind_str(s, 0, like);
        SB_CHECK_EQ(sb_db_execute(s), 0);
        size_t k = 0;
        while (sb_db_fetch(s) > 0)
                sb_db_col_u64(s, 0, &ids[k++]);
        SB_CHECK_EQ(k, n_tx);
        bprintf(&je, "[");
        bprintf(&jb, "[");
        for (size_t t = 0; t < n_tx; t++) {
                size_t a = t * PER_TX, b = a + PER_TX < n ? a + PER_TX : n;
                char key[64];
                snprintf(key, sizeof key, "bench-cv:%08" PRIu64 ":%04zu", lo, t);
                int64_t sum = 0;
                for (size_t i = a; i < b; i++)
                        sum += cv[i];
                bprintf(&je, "%s[%" PRIu64 ",4,%u,1,%" PRId64 ",0,0,4]", t ? "," : "", ids[t],
                        wallet_shard_of("svc", key, 16), -sum);
                for (size_t i = a; i < b; i++) {
                        bprintf(&je, ",[%" PRIu64 ",%" PRIu64 ",0,2,%" PRId64 ",1,%" PRId64 ",4]", ids[t], acct[i],
                                cv[i], cv[i]);
                        bprintf(&jb, "%s[%" PRIu64 ",%" PRId64 "]", i ? "," : "", acct[i], cv[i]);
                }
        }
        bprintf(&je, "]");
        bprintf(&jb, "]");
        SB_CHECK_EQ(sb_db_prepare(db,
                                  "INSERT INTO sharebuy_wallet.entries (tx_id, account_id, shard, asset, amount,"
                                  " balance_after, reason) SELECT j.t, j.a, j.s, j.asset, j.amount,"
                                  " IF(j.hb = 1, j.ba, NULL), j.reason FROM JSON_TABLE(?, '$[*]' COLUMNS (ord FOR"
                                  " ORDINALITY, t BIGINT UNSIGNED PATH '$[0]', a BIGINT UNSIGNED PATH '$[1]',"
                                  " s SMALLINT UNSIGNED PATH '$[2]', asset TINYINT UNSIGNED PATH '$[3]',"
                                  " amount BIGINT PATH '$[4]', hb TINYINT PATH '$[5]', ba BIGINT PATH '$[6]',"
                                  " reason TINYINT UNSIGNED PATH '$[7]')) AS j ORDER BY j.ord",
                                  &s),
                    0);
        sb_db_bind_strn(s, 0, je.p, je.len);
        SB_CHECK_EQ(sb_db_execute(s), 0);
        SB_CHECK_EQ(sb_db_prepare(db,
                                  "UPDATE sharebuy_wallet.balances b JOIN JSON_TABLE(?, '$[*]' COLUMNS ("
                                  " a BIGINT UNSIGNED PATH '$[0]', v BIGINT PATH '$[1]')) AS j"
                                  " ON b.account_id = j.a AND b.shard = 0 SET b.balance = j.v",
                                  &s),
                    0);
        sb_db_bind_strn(s, 0, jb.p, jb.len);
        SB_CHECK_EQ(sb_db_execute(s), 0);
        char hex[65];
        wallet_hash_hex(prev, hex);
        exec(db, "UPDATE sharebuy_wallet.chain_heads SET chain_seq = %" PRIu64 ", chain_hash = UNHEX('%s')"
                 " WHERE chain_part = %u",
             *seq, hex, part);
        for (int sh = 0; sh < 16; sh++) {
                if (shard_sum[sh])
                        exec(db, "UPDATE sharebuy_wallet.balances SET balance = balance + (%" PRId64 ")"
                                 " WHERE account_id = 4 AND shard = %d",
                             shard_sum[sh], sh);
                shard_sum[sh] = 0;
        }
        exec(db, "COMMIT");
        free(ids);
        free(jt.p);
        free(je.p);
        free(jb.p);
        free(acct);
        free(cv);
}

static int64_t vm_hwm_kb(pid_t pid) {
        char path[64], line[256];
        snprintf(path, sizeof path, "/proc/%d/status", (int) pid);
        FILE *f = fopen(path, "r");
        if (!f)
                return -1;
        int64_t kb = -1;
        while (fgets(line, sizeof line, f))
                if (strncmp(line, "VmHWM:", 6) == 0)
                        kb = strtoll(line + 6, NULL, 10);
        fclose(f);
        return kb;
}

int main(int argc, char **argv) {
        uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
        bool verify = argc > 2 && strcmp(argv[2], "--verify") == 0;
        static const char *const services[] = {"wallet", "airdrop", NULL};
        sb_test_stack *st = sb_test_stack_new(services);
        sb_test_stack_env(st, "airdrop", "SB_AIRDROP_START_DAY", "2025-01-01");
        sb_test_stack_env(st, "airdrop", "SB_AIRDROP_TIMER", "false");
        sb_test_stack_env(st, "airdrop", "SB_LOG_LEVEL", "warn");
        sb_test_stack_env(st, "wallet", "SB_LOG_LEVEL", "warn");
        const char *chunk = getenv("AIRDROP_BENCH_CHUNK"); /* accounts per chunk; the service's default otherwise */
        if (chunk && *chunk)
                sb_test_stack_env(st, "airdrop", "SB_AIRDROP_CHUNK_ACCOUNTS", chunk);
        const char *workers = getenv("AIRDROP_BENCH_WORKERS"); /* credit workers; the service's default otherwise */
        if (workers && *workers)
                sb_test_stack_env(st, "airdrop", "SB_AIRDROP_CREDIT_WORKERS", workers);
        const char *streams = getenv("AIRDROP_BENCH_STREAMS"); /* snapshot streams (1 or 2); the default otherwise */
        if (streams && *streams)
                sb_test_stack_env(st, "airdrop", "SB_AIRDROP_SNAPSHOT_STREAMS", streams);
        sb_test_stack_start_all(st);
        char admin_tok[SB_AUTH_TOKEN_MAX], svc_tok[SB_AUTH_TOKEN_MAX];
        sb_test_stack_role_token(st, SB_ROLE_ADMIN, 1, 0, 0, 0, admin_tok);
        sb_test_stack_role_token(st, SB_ROLE_SERVICE, 0, 0, 0, 0, svc_tok);
        char msg[512];
        ProtobufCMessage *out = NULL;
        sb_rpc_call_opts o = {.deadline_ms = 600000, .bearer = admin_tok};
        /* The genesis (the wallet makes it on its first call). */
        Sharebuy__Wallet__V1__GetSupplyRequest sreq = SHAREBUY__WALLET__V1__GET_SUPPLY_REQUEST__INIT;
        SB_CHECK_EQ(sb_rpc_client_call(sb_test_stack_client(st, "wallet"), "/sharebuy.wallet.v1.Wallet/GetSupply",
                                       &sreq.base, &sharebuy__wallet__v1__supply__descriptor, &o, &out, msg, sizeof msg),
                    SB_OK);
        protobuf_c_message_free_unpacked(out, NULL);

        /* 1. The accounts. */
        sb_db *db = sb_test_stack_admin_db(st);
        exec(db, "USE sharebuy_wallet"); /* the seq_ tables of the SEQUENCE engine need a current schema */
        int64_t t0 = mono_ms();
        unsigned part = wallet_chain_of("svc", "bench-cv", 32);
        sb_db_stmt *s;
        SB_CHECK_EQ(sb_db_prepare(db, "SELECT chain_seq, chain_hash FROM sharebuy_wallet.chain_heads WHERE chain_part = ?",
                                  &s),
                    0);
        sb_db_bind_u64(s, 0, part);
        SB_CHECK_EQ(sb_db_execute(s), 0);
        SB_CHECK(sb_db_fetch(s) > 0);
        uint64_t seq;
        uint8_t prev[32];
        sb_db_col_u64(s, 0, &seq);
        SB_CHECK_EQ(sb_db_col_blob(s, 1, prev, 32), 32);
        while (sb_db_fetch(s) > 0)
                ;
        int64_t shard_sum[16] = {0}, issued = 0;
        for (uint64_t lo = 1; lo <= n; lo += BATCH) {
                uint64_t hi = lo + BATCH - 1 < n ? lo + BATCH - 1 : n;
                load_batch(db, lo, hi, part, &seq, prev, shard_sum, &issued);
        }
        int64_t load_ms = mono_ms() - t0;
        printf("loaded %" PRIu64 " accounts with %" PRId64 " CV units in %" PRId64 " ms\n", n, issued, load_ms);

        /* 2. The ceiling: the same number of ledger rows bulk-loaded in the same batches. */
        exec(db, "CREATE DATABASE IF NOT EXISTS sharebuy_bench");
        exec(db, "DROP TABLE IF EXISTS sharebuy_bench.entries, sharebuy_bench.transactions");
        exec(db, "CREATE TABLE sharebuy_bench.entries LIKE sharebuy_wallet.entries");
        exec(db, "CREATE TABLE sharebuy_bench.transactions LIKE sharebuy_wallet.transactions");
        t0 = mono_ms();
        for (uint64_t lo = 1; lo <= n; lo += BATCH) {
                uint64_t hi = lo + BATCH - 1 < n ? lo + BATCH - 1 : n;
                exec(db, "BEGIN");
                exec(db,
                     "INSERT INTO sharebuy_bench.transactions (scope, idem_key, request_hash, cause_kind, cause_ref,"
                     " cause_merchant, memo, posted_ms, business_day, reverses_tx_id, chain_part, chain_seq,"
                     " prev_hash, chain_hash) SELECT 'svc', CONCAT('c:', seq), UNHEX(SHA2(seq, 256)), 7, '2025-01-01',"
                     " 0, 'airdrop 2025-01-01 chunk 0 part 0 at 1000000 micro-yuan/SP', 0, '2025-01-02', NULL, 0,"
                     " seq, UNHEX(SHA2(seq, 256)), UNHEX(SHA2(seq + 1, 256))"
                     " FROM seq_%" PRIu64 "_to_%" PRIu64 "_step_31",
                     lo, hi);
                exec(db,
                     "INSERT INTO sharebuy_bench.entries (tx_id, account_id, shard, asset, amount, balance_after, reason)"
                     " SELECT s.seq DIV 31, s.seq * 3 + a.x, 0, a.x, 12345, 67890, 15 FROM seq_%" PRIu64 "_to_%" PRIu64
                     " s JOIN (SELECT 2 AS x UNION ALL SELECT 3) a ORDER BY s.seq, a.x",
                     lo, hi);
                exec(db,
                     "UPDATE sharebuy_wallet.balances SET updated_ms = updated_ms + 1 WHERE account_id BETWEEN"
                     " %" PRIu64 " AND %" PRIu64 " AND shard = 0",
                     1000 + (lo - 1) * 3, 1000 + hi * 3 - 1);
                exec(db, "COMMIT");
        }
        int64_t ceiling_ms = mono_ms() - t0;
        printf("ceiling: bulk-loading %" PRIu64 " entries and %" PRIu64 " transactions (and touching the %" PRIu64
               " balance rows) took %" PRId64 " ms\n",
               2 * n, (n + 30) / 31, 3 * n, ceiling_ms);
        exec(db, "DROP DATABASE sharebuy_bench");

        /* 3. The run. */
        sb_rpc_client *ac = sb_test_stack_client(st, "airdrop");
        Sharebuy__Airdrop__V1__RunDayRequest rreq = SHAREBUY__AIRDROP__V1__RUN_DAY_REQUEST__INIT;
        rreq.business_day = "2025-01-01";
        t0 = mono_ms();
        SB_CHECK_EQ(sb_rpc_client_call(ac, "/sharebuy.airdrop.v1.Airdrop/RunDay", &rreq.base,
                                       &sharebuy__airdrop__v1__run_day_response__descriptor, &o, &out, msg, sizeof msg),
                    SB_OK);
        protobuf_c_message_free_unpacked(out, NULL);
        Sharebuy__Airdrop__V1__Run *run = NULL;
        for (;;) {
                Sharebuy__Airdrop__V1__GetRunRequest g = SHAREBUY__AIRDROP__V1__GET_RUN_REQUEST__INIT;
                g.business_day = "2025-01-01";
                SB_CHECK_EQ(sb_rpc_client_call(ac, "/sharebuy.airdrop.v1.Airdrop/GetRun", &g.base,
                                               &sharebuy__airdrop__v1__run__descriptor, &o, &out, msg, sizeof msg),
                            SB_OK);
                run = (void *) out;
                if (run->status == SHAREBUY__AIRDROP__V1__RUN_STATUS__RUN_STATUS_COMPLETED)
                        break;
                SB_CHECK(mono_ms() - t0 < 1800000);
                protobuf_c_message_free_unpacked(out, NULL);
                usleep(50000);
        }
        int64_t run_ms = mono_ms() - t0;
        int64_t rss_airdrop = vm_hwm_kb(sb_test_stack_pid(st, "airdrop"));
        int64_t rss_wallet = vm_hwm_kb(sb_test_stack_pid(st, "wallet"));
        printf("run: %" PRIu64 " accounts, %" PRId64 " SP units allotted, %u chunks, %" PRId64 " ms wall (%" PRId64
               " ms by the run's own clock); ratio to the ceiling %.2f\n",
               run->account_count, run->allotted_sp_units, run->chunks_total, run_ms, run->duration_ms,
               ceiling_ms > 0 ? (double) run_ms / (double) ceiling_ms : 0.0);
        printf("peak RSS (VmHWM): airdrop %" PRId64 " KiB, wallet %" PRId64 " KiB\n", rss_airdrop, rss_wallet);
        SB_CHECK_EQ(run->account_count, n);
        protobuf_c_message_free_unpacked(out, NULL);
        /* The phases, from the run's row (migration 0007). */
        int64_t ph[9] = {0};
        SB_CHECK_EQ(sb_db_prepare(db,
                                  "SELECT started_ms, start_done_ms, snap_copied_ms, snap_done_ms, finished_ms,"
                                  " credit_scan_ms, credit_wallet_ms, credit_record_ms, chunks_total"
                                  " FROM sharebuy_airdrop.runs WHERE business_day = '2025-01-01'",
                                  &s),
                    0);
        SB_CHECK_EQ(sb_db_execute(s), 0);
        SB_CHECK(sb_db_fetch(s) > 0);
        for (int i = 0; i < 9; i++)
                sb_db_col_i64(s, i, &ph[i]);
        while (sb_db_fetch(s) > 0)
                ;
        int64_t start_ms = ph[1] - ph[0], copy_ms = ph[2] - ph[1], params_ms = ph[3] - ph[2], credit_ms = ph[4] - ph[3];
        printf("phases: start %" PRId64 " ms, snapshot copy %" PRId64 " ms, CV_T and threshold %" PRId64
               " ms, credit %" PRId64 " ms (%" PRId64 " chunks; summed: reading and computing %" PRId64
               " ms, the wallet %" PRId64 " ms, recording %" PRId64 " ms)\n",
               start_ms, copy_ms, params_ms, credit_ms, ph[8], ph[5], ph[6], ph[7]);

        int64_t verify_ms = -1;
        if (verify) {
                t0 = mono_ms();
                char *vout = NULL;
                const char *args[] = {"ledger", "verify", NULL};
                int rc = sb_test_stack_ctl(st, &vout, args);
                verify_ms = mono_ms() - t0;
                printf("ledger verify: exit %d in %" PRId64 " ms\n", rc, verify_ms);
                if (rc != 0)
                        fprintf(stderr, "%s\n", vout ? vout : "");
                free(vout);
                SB_CHECK_EQ(rc, 0);
        }
        printf("{\"accounts\":%" PRIu64 ",\"load_ms\":%" PRId64 ",\"ceiling_ms\":%" PRId64 ",\"run_ms\":%" PRId64
               ",\"start_ms\":%" PRId64 ",\"snapshot_copy_ms\":%" PRId64 ",\"threshold_ms\":%" PRId64
               ",\"credit_ms\":%" PRId64 ",\"airdrop_vmhwm_kib\":%" PRId64 ",\"wallet_vmhwm_kib\":%" PRId64
               ",\"verify_ms\":%" PRId64 "}\n",
               n, load_ms, ceiling_ms, run_ms, start_ms, copy_ms, params_ms, credit_ms, rss_airdrop, rss_wallet,
               verify_ms);
        sb_test_stack_free(st);
        return 0;
}
