/* airdrop_run: the runner thread and the phases of a day's run (docs/airdrop.md).
 *
 * One thread per process runs days, one at a time, and only while it holds the database lock
 * 'sharebuy_airdrop_runner' (so two airdrop processes never run at once). A run moves through phases recorded in its
 * row of `runs`, each step committed before the next starts:
 *   START     the release D (schedule and what remains unreleased) and the guide price fixed for the next day
 *             (Wallet/FixGuidePrice, idempotent) are recorded;
 *   SNAPSHOT  the participants' active CV is copied from the wallet's view into `snapshot_blocks` (rows of up to
 *             256 participants, migration 0010), batch by batch (keyset on account id, the cursor committed with each
 *             batch), in two streams at once over the lower and the upper half of the account ids (stream 1 from seq
 *             2^31; migration 0009); then CV_T, the participants
 *             and the leftover threshold are computed from the snapshot (airdrop_allot.c) and recorded;
 *   CREDIT    chunk by chunk (seq ranges of one stream), each account's share is computed from the snapshot and
 *             the recorded figures and booked by Wallet/ApplyAirdropChunk (idempotent on (day, chunk)); the chunk's
 *             row and the run's progress are committed together afterwards;
 *   DONE      completed.
 * A kill at any point leaves a row whose phase says what to redo: a repeated START gives the same figures (the
 * price is replayed, nothing was released yet), a repeated SNAPSHOT batch was rolled back whole, a repeated chunk is
 * a replay at the wallet. So every account is paid once, from the same numbers. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "airdrop_internal.h"
#include "log.h"
#include "rpc.h"
#include "service.h"
#include "sharebuy/wallet/v1/wallet.pb-c.h"

#define TRY(x)                                                                                                       \
        do {                                                                                                         \
                int r_ = (x);                                                                                        \
                if (r_ < 0)                                                                                          \
                        return r_;                                                                                   \
        } while (0)

#define WALLET_DEADLINE_MS 120000
#define ERR_RUN (-EPROTO) /* a run step failed for a reason in run_error */

static int drain(sb_db_stmt *s) {
        int r;
        while ((r = sb_db_fetch(s)) > 0)
                ;
        return r;
}

static bool stopping(airdrop_state *st) {
        pthread_mutex_lock(&st->mu);
        bool s = st->stop;
        pthread_mutex_unlock(&st->mu);
        return s;
}

/* Waits up to ms or until kicked or stopped. */
static void nap(airdrop_state *st, int64_t ms) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = (int64_t) ts.tv_nsec + (ms % 1000) * 1000000;
        ts.tv_sec += (time_t) (ms / 1000 + ns / 1000000000);
        ts.tv_nsec = (long) (ns % 1000000000);
        pthread_mutex_lock(&st->mu);
        while (!st->stop && !st->kick) {
                if (pthread_cond_timedwait(&st->cond, &st->mu, &ts) != 0)
                        break;
        }
        st->kick = false;
        pthread_mutex_unlock(&st->mu);
}

void airdrop_runner_kick(airdrop_state *st) {
        pthread_mutex_lock(&st->mu);
        st->kick = true;
        pthread_cond_broadcast(&st->cond);
        pthread_mutex_unlock(&st->mu);
}

static sb_status wallet_call(const char *method, const ProtobufCMessage *req, const ProtobufCMessageDescriptor *desc,
                             ProtobufCMessage **ret, char *msg, size_t msg_n) {
        char path[128];
        snprintf(path, sizeof path, "/sharebuy.wallet.v1.Wallet/%s", method);
        sb_rpc_client *c = sb_service_peer("wallet");
        if (!c) {
                snprintf(msg, msg_n, "no wallet peer configured");
                return SB_UNAVAILABLE;
        }
        sb_rpc_call_opts opts = {.deadline_ms = WALLET_DEADLINE_MS, .bearer = sb_service_token()};
        return sb_rpc_client_call(c, path, req, desc, &opts, ret, msg, msg_n);
}

/* --- The run's row -------------------------------------------------------------------------------------------- */

typedef struct run_row {
        char day[AIRDROP_DAY_LEN + 1];
        int status, phase;
        int64_t release_sp, price_micro;
        uint64_t account_count, id_max;
        int64_t cv_total, leftover;
        bool thr_none;
        int64_t thr_rem;
        uint64_t thr_id;
        uint64_t chunk_accounts, chunks_total, chunks_done;
        uint64_t chunks_first; /* the chunks of snapshot stream 0 (migration 0009) */
} run_row;

static int run_load(sb_db *db, const char *day, run_row *ret) {
        sb_db_stmt *s;
        TRY(sb_db_prepare(db,
                          "SELECT status, phase, release_sp, price_micro, account_count, id_max, cv_total, leftover_sp,"
                          " thr_none, thr_rem, thr_id, chunk_accounts, chunks_total, chunks_done,"
                          " COALESCE(chunks_first, chunks_total) FROM runs WHERE business_day = ?",
                          &s));
        TRY(sb_db_bind_str(s, 0, day));
        TRY(sb_db_execute(s));
        int r = sb_db_fetch(s);
        if (r <= 0)
                return r < 0 ? r : -ENOENT;
        run_row w = {0};
        int64_t v;
        snprintf(w.day, sizeof w.day, "%s", day);
        TRY(sb_db_col_i64(s, 0, &v));
        w.status = (int) v;
        TRY(sb_db_col_i64(s, 1, &v));
        w.phase = (int) v;
        TRY(sb_db_col_i64(s, 2, &w.release_sp));
        TRY(sb_db_col_i64(s, 3, &w.price_micro));
        TRY(sb_db_col_u64(s, 4, &w.account_count));
        TRY(sb_db_col_u64(s, 5, &w.id_max));
        TRY(sb_db_col_i64(s, 6, &w.cv_total));
        TRY(sb_db_col_i64(s, 7, &w.leftover));
        TRY(sb_db_col_i64(s, 8, &v));
        w.thr_none = v != 0;
        TRY(sb_db_col_i64(s, 9, &w.thr_rem));
        TRY(sb_db_col_u64(s, 10, &w.thr_id));
        TRY(sb_db_col_u64(s, 11, &w.chunk_accounts));
        TRY(sb_db_col_u64(s, 12, &w.chunks_total));
        TRY(sb_db_col_u64(s, 13, &w.chunks_done));
        TRY(sb_db_col_u64(s, 14, &w.chunks_first));
        TRY(drain(s));
        *ret = w;
        return 0;
}

static int run_fail(sb_db *db, const char *day, const char *why) {
        sb_db_stmt *s;
        TRY(sb_db_prepare(db, "UPDATE runs SET status = 3, last_error = ? WHERE business_day = ? AND status <> 2", &s));
        TRY(sb_db_bind_strn(s, 0, why, strnlen(why, 400)));
        TRY(sb_db_bind_str(s, 1, day));
        return sb_db_execute(s);
}

int airdrop_next_day(sb_db *db, const airdrop_state *st, int64_t *ret_day) {
        sb_db_stmt *s;
        TRY(sb_db_prepare(db, "SELECT MAX(business_day) FROM runs WHERE status = 2", &s));
        TRY(sb_db_execute(s));
        int64_t next = st->econ.start_day;
        int r;
        while ((r = sb_db_fetch(s)) > 0) {
                char day[AIRDROP_DAY_LEN + 1];
                int64_t d;
                if (sb_db_col_str(s, 0, day, sizeof day) >= 0 && airdrop_day_parse(day, &d) == 0 && d + 1 > next)
                        next = d + 1;
        }
        if (r < 0)
                return r;
        *ret_day = next;
        return 0;
}

/* --- START ---------------------------------------------------------------------------------------------------- */

static int phase_start(airdrop_state *st, sb_db *db, const run_row *run, char *why, size_t why_n) {
        int64_t dayno;
        if (airdrop_day_parse(run->day, &dayno) < 0)
                return -EINVAL;
        char msg[SB_RPC_MESSAGE_MAX];
        Sharebuy__Wallet__V1__GetSupplyRequest sreq = SHAREBUY__WALLET__V1__GET_SUPPLY_REQUEST__INIT;
        ProtobufCMessage *out = NULL;
        sb_status code = wallet_call("GetSupply", &sreq.base, &sharebuy__wallet__v1__supply__descriptor, &out, msg,
                                     sizeof msg);
        if (code != SB_OK) {
                snprintf(why, why_n, "the wallet's GetSupply failed: %s: %.200s", sb_status_name(code), msg);
                return ERR_RUN;
        }
        Sharebuy__Wallet__V1__Supply *su = (void *) out;
        int64_t cap = su->cap_sp_units, unreleased = su->unreleased_sp_units, pool = su->backing_pool_fen,
                circulating = su->circulating_sp_units;
        protobuf_c_message_free_unpacked(out, NULL);
        if (cap != st->econ.cap_sp) {
                snprintf(why, why_n, "airdrop.cap_sp_units is %" PRId64 " but the wallet's ledger was created with cap %"
                         PRId64 ": set the same cap in both", st->econ.cap_sp, cap);
                return ERR_RUN;
        }
        int64_t idx, amount, release;
        if (sb_econ_day_index(&st->econ, dayno, &idx) < 0 || sb_econ_schedule_amount(&st->econ, idx, &amount) < 0 ||
            sb_econ_daily_release(&st->econ, idx, unreleased, &release) < 0) {
                snprintf(why, why_n, "the day %s is outside the schedule", run->day);
                return ERR_RUN;
        }
        char next_day[AIRDROP_DAY_LEN + 1];
        airdrop_day_format(dayno + 1, next_day);
        Sharebuy__Wallet__V1__FixGuidePriceRequest preq = SHAREBUY__WALLET__V1__FIX_GUIDE_PRICE_REQUEST__INIT;
        preq.business_day = next_day;
        preq.fixed_by_airdrop_day = (char *) run->day;
        code = wallet_call("FixGuidePrice", &preq.base, &sharebuy__wallet__v1__fix_guide_price_response__descriptor,
                           &out, msg, sizeof msg);
        if (code != SB_OK) {
                snprintf(why, why_n, "the wallet's FixGuidePrice failed: %s: %.200s", sb_status_name(code), msg);
                return ERR_RUN;
        }
        Sharebuy__Wallet__V1__FixGuidePriceResponse *pr = (void *) out;
        int64_t price = pr->price ? pr->price->price_micro_yuan : 0;
        if (pr->price) {
                pool = pr->price->backing_pool_fen;
                circulating = pr->price->circulating_sp_units;
        }
        protobuf_c_message_free_unpacked(out, NULL);
        if (price <= 0) {
                snprintf(why, why_n, "the wallet fixed no usable price for %s", next_day);
                return ERR_RUN;
        }
        sb_db_stmt *s;
        TRY(sb_db_prepare(db,
                          "UPDATE runs SET phase = 1, schedule_sp = ?, release_sp = ?, price_micro = ?, pool_fen = ?,"
                          " circulating_sp = ?, start_done_ms = ? WHERE business_day = ? AND phase = 0",
                          &s));
        TRY(sb_db_bind_i64(s, 0, amount));
        TRY(sb_db_bind_i64(s, 1, release));
        TRY(sb_db_bind_i64(s, 2, price));
        TRY(sb_db_bind_i64(s, 3, pool));
        TRY(sb_db_bind_i64(s, 4, circulating));
        TRY(sb_db_bind_i64(s, 5, airdrop_now_ms()));
        TRY(sb_db_bind_str(s, 6, run->day));
        return sb_db_execute(s);
}

/* --- SNAPSHOT ------------------------------------------------------------------------------------------------- */

/* The snapshot is copied in one or two streams (migration 0009): stream 0 takes the account ids up to a split,
 * stream 1 those above it, each on its own connection, with its own cursor row in snapshot_streams and its own seq
 * range (0… and AIRDROP_SEQ_STREAM1…), so the two batches of a moment share no lock and each appends to its own end
 * of the snapshot's indexes. Copying is MariaDB's work alone (INSERT … SELECT from the wallet's view), on one CPU
 * per stream. */

/* Plans the streams of the day once: two when st->snapshot_streams is 2 and the CV accounts' ids span at least
 * st->snapshot_split_min_ids, split at the middle of that span; else one over every id. */
typedef struct plan_ctx {
        const airdrop_state *st;
        const char *day;
        unsigned streams;
} plan_ctx;

static int first_cv_account(sb_db *db, bool last, uint64_t *ret, bool *ret_found) {
        sb_db_stmt *s;
        TRY(sb_db_prepare(db,
                          last ? "SELECT account_id FROM sharebuy_wallet.airdrop_cv_accounts ORDER BY account_id DESC"
                                 " LIMIT 1"
                               : "SELECT account_id FROM sharebuy_wallet.airdrop_cv_accounts ORDER BY account_id"
                                 " LIMIT 1",
                          &s));
        TRY(sb_db_execute(s));
        int r = sb_db_fetch(s);
        if (r < 0)
                return r;
        *ret_found = r > 0;
        if (r > 0)
                TRY(sb_db_col_u64(s, 0, ret));
        return drain(s);
}

static int snap_plan_fn(sb_db *db, void *arg) {
        plan_ctx *c = arg;
        sb_db_stmt *s;
        TRY(sb_db_prepare(db, "SELECT COUNT(*) FROM snapshot_streams WHERE business_day = ?", &s));
        TRY(sb_db_bind_str(s, 0, c->day));
        TRY(sb_db_execute(s));
        int r = sb_db_fetch(s);
        if (r <= 0)
                return r < 0 ? r : -EIO;
        uint64_t have;
        TRY(sb_db_col_u64(s, 0, &have));
        TRY(drain(s));
        if (have > 0) {
                c->streams = (unsigned) have;
                return 0;
        }
        uint64_t lo = 0, hi = 0;
        bool found_lo = false, found_hi = false;
        TRY(first_cv_account(db, false, &lo, &found_lo));
        TRY(first_cv_account(db, true, &hi, &found_hi));
        bool split = c->st->snapshot_streams >= 2 && found_lo && found_hi && hi > lo &&
                     hi - lo >= (uint64_t) c->st->snapshot_split_min_ids;
        uint64_t mid = split ? lo + (hi - lo) / 2 : UINT64_MAX;
        TRY(sb_db_prepare(db,
                          "INSERT INTO snapshot_streams (business_day, stream, seq_base, lo, hi, after_account)"
                          " VALUES (?, ?, ?, ?, ?, ?)",
                          &s));
        c->streams = split ? 2 : 1;
        for (unsigned k = 0; k < c->streams; k++) {
                uint64_t from = k == 0 ? 0 : mid, to = k + 1 == c->streams ? UINT64_MAX : mid;
                TRY(sb_db_bind_str(s, 0, c->day));
                TRY(sb_db_bind_u64(s, 1, k));
                TRY(sb_db_bind_u64(s, 2, k == 0 ? 0 : AIRDROP_SEQ_STREAM1));
                TRY(sb_db_bind_u64(s, 3, from));
                TRY(sb_db_bind_u64(s, 4, to));
                TRY(sb_db_bind_u64(s, 5, from));
                TRY(sb_db_execute(s));
        }
        return 0;
}

typedef struct snap_ctx {
        const char *day;
        unsigned stream;
        uint64_t batch;
        uint64_t inserted;
        bool done;
} snap_ctx;

/* One batch of one stream: the next c->batch participants after the stream's cursor, and the cursor,
 * committed together. */
static int snap_batch_fn(sb_db *db, void *arg) {
        snap_ctx *c = arg;
        c->inserted = 0;
        c->done = false;
        sb_db_stmt *s;
        TRY(sb_db_prepare(db,
                          "SELECT seq_base, hi, after_account, copied, done FROM snapshot_streams"
                          " WHERE business_day = ? AND stream = ? FOR UPDATE",
                          &s));
        TRY(sb_db_bind_str(s, 0, c->day));
        TRY(sb_db_bind_u64(s, 1, c->stream));
        TRY(sb_db_execute(s));
        int r = sb_db_fetch(s);
        if (r <= 0)
                return r < 0 ? r : -ENOENT;
        uint64_t base, hi, after, copied;
        int64_t done;
        TRY(sb_db_col_u64(s, 0, &base));
        TRY(sb_db_col_u64(s, 1, &hi));
        TRY(sb_db_col_u64(s, 2, &after));
        TRY(sb_db_col_u64(s, 3, &copied));
        TRY(sb_db_col_i64(s, 4, &done));
        TRY(drain(s));
        if (done) {
                c->done = true;
                return 0;
        }
        /* seq is an INT UNSIGNED: a stream holds fewer than 2^31 participants. */
        if (copied + c->batch > AIRDROP_SEQ_STREAM1)
                return -ERANGE;
        /* The batch as blocks of AIRDROP_BLOCK participants (migration 0010): one row per block, its records made
         * by GROUP_CONCAT in account id order. */
        TRY(sb_db_prepare(db,
                          "INSERT INTO snapshot_blocks (business_day, seq, n, first_account, last_account, cv_sum, recs)"
                          " SELECT ?, ? + MIN(x.rn) - 1, COUNT(*), MIN(x.account_id), MAX(x.account_id),"
                          " SUM(x.cv_units), GROUP_CONCAT(CONCAT('#', LPAD(x.account_id, 20, '0'),"
                          " LPAD(x.owner_kind, 3, '0'), LPAD(x.owner_id, 20, '0'), LPAD(x.cv_units, 19, '0'))"
                          " ORDER BY x.account_id SEPARATOR '')"
                          " FROM (SELECT v.account_id, v.owner_kind, v.owner_id, v.cv_units,"
                          " ROW_NUMBER() OVER (ORDER BY v.account_id) AS rn FROM (SELECT account_id, owner_kind,"
                          " owner_id, cv_units FROM sharebuy_wallet.airdrop_active_cv WHERE account_id > ?"
                          " AND account_id <= ? ORDER BY account_id LIMIT ?) AS v) AS x"
                          " GROUP BY (x.rn - 1) DIV " AIRDROP_STR(AIRDROP_BLOCK),
                          &s));
        TRY(sb_db_bind_str(s, 0, c->day));
        TRY(sb_db_bind_u64(s, 1, base + copied));
        TRY(sb_db_bind_u64(s, 2, after));
        TRY(sb_db_bind_u64(s, 3, hi));
        TRY(sb_db_bind_u64(s, 4, c->batch));
        TRY(sb_db_execute(s));
        /* What the batch holds, read back by the primary key: the participants, the cursor (the last account id:
         * blocks follow account id order) and the records' length (GROUP_CONCAT truncates silently at
         * group_concat_max_len: a short block refuses the batch). */
        TRY(sb_db_prepare(db,
                          "SELECT COUNT(*), COALESCE(SUM(n), 0), COALESCE(MAX(last_account), 0),"
                          " COALESCE(SUM(LENGTH(recs) <> n * " AIRDROP_STR(AIRDROP_REC) "), 0) FROM snapshot_blocks"
                          " WHERE business_day = ? AND seq >= ? AND seq < ?",
                          &s));
        TRY(sb_db_bind_str(s, 0, c->day));
        TRY(sb_db_bind_u64(s, 1, base + copied));
        TRY(sb_db_bind_u64(s, 2, base + copied + c->batch));
        TRY(sb_db_execute(s));
        if ((r = sb_db_fetch(s)) <= 0)
                return r < 0 ? r : -EIO;
        uint64_t blocks, bad, last_id;
        TRY(sb_db_col_u64(s, 0, &blocks));
        TRY(sb_db_col_u64(s, 1, &c->inserted));
        TRY(sb_db_col_u64(s, 2, &last_id));
        TRY(sb_db_col_u64(s, 3, &bad));
        TRY(drain(s));
        if (bad > 0 || c->inserted > c->batch || blocks > (c->batch + AIRDROP_BLOCK - 1) / AIRDROP_BLOCK)
                return -EIO;
        c->done = c->inserted < c->batch;
        uint64_t last = c->inserted > 0 ? last_id : after;
        TRY(sb_db_prepare(db,
                          "UPDATE snapshot_streams SET after_account = ?, copied = copied + ?, done = ?"
                          " WHERE business_day = ? AND stream = ?",
                          &s));
        TRY(sb_db_bind_u64(s, 0, last));
        TRY(sb_db_bind_u64(s, 1, c->inserted));
        TRY(sb_db_bind_i64(s, 2, c->done ? 1 : 0));
        TRY(sb_db_bind_str(s, 3, c->day));
        TRY(sb_db_bind_u64(s, 4, c->stream));
        return sb_db_execute(s);
}

/* Copies one stream to its end (or until the service stops). */
static int snap_stream(airdrop_state *st, sb_db *db, const char *day, unsigned stream) {
        snap_ctx c = {.day = day, .stream = stream, .batch = (uint64_t) st->snapshot_batch};
        /* A block's records are one GROUP_CONCAT: AIRDROP_BLOCK × AIRDROP_REC bytes, well under this (MariaDB's
         * default is the same); the batch checks every block's length anyway. */
        static const char gc[] = "SET SESSION group_concat_max_len = 1048576";
        TRY(sb_db_exec_text(db, gc, sizeof gc - 1));
        while (!c.done) {
                if (stopping(st))
                        return -ECANCELED;
                TRY(sb_db_tx(db, snap_batch_fn, &c));
                if (!c.done && st->chunk_pause_ms > 0)
                        nap(st, st->chunk_pause_ms);
        }
        return 0;
}

typedef struct snap_worker {
        airdrop_state *st;
        sb_db *db;
        const char *day;
        pthread_t thread;
        int r;
        char err[256];
} snap_worker;

static void *snap_thread(void *arg) {
        snap_worker *w = arg;
        w->r = snap_stream(w->st, w->db, w->day, 1);
        if (w->r < 0)
                snprintf(w->err, sizeof w->err, "%s", sb_db_errmsg(w->db));
        return NULL;
}

/* The streams, at once when a second connection can be had, else one after the other. */
static int snap_copy(airdrop_state *st, sb_db *db, const char *day, char *why, size_t why_n) {
        plan_ctx plan = {.st = st, .day = day};
        TRY(sb_db_tx(db, snap_plan_fn, &plan));
        if (plan.streams < 2)
                return snap_stream(st, db, day, 0);
        snap_worker w = {.st = st, .day = day};
        char err[256];
        bool started = false;
        if (sb_db_open(&st->dbc, &w.db, err, sizeof err) < 0) {
                sb_log_kv(SB_LOG_WARN, "airdrop", "the second snapshot stream could not connect; it runs after the first",
                          "error", SB_LOG_STR(err), NULL);
                w.db = NULL;
        } else if (pthread_create(&w.thread, NULL, snap_thread, &w) == 0) {
                started = true;
        }
        int r = snap_stream(st, db, day, 0);
        if (started) {
                pthread_join(w.thread, NULL);
        } else if (r == 0) {
                w.r = snap_stream(st, db, day, 1);
        }
        if (w.db)
                sb_db_close(w.db);
        if (r < 0)
                return r;
        if (w.r < 0 && started && w.r != -ECANCELED) {
                snprintf(why, why_n, "snapshot stream 1: database: %s (%s)", w.err, strerror(-w.r));
                return ERR_RUN;
        }
        return w.r;
}

static int phase_snapshot(airdrop_state *st, sb_db *db, const run_row *run, char *why, size_t why_n) {
        int r = snap_copy(st, db, run->day, why, why_n);
        if (r == -ERANGE) {
                snprintf(why, why_n, "a snapshot stream would hold more than 2^31 participants");
                return ERR_RUN;
        }
        if (r < 0)
                return r;
        sb_db_stmt *s;
        TRY(sb_db_prepare(db, "UPDATE runs SET snap_copied_ms = ? WHERE business_day = ?", &s));
        TRY(sb_db_bind_i64(s, 0, airdrop_now_ms()));
        TRY(sb_db_bind_str(s, 1, run->day));
        TRY(sb_db_execute(s));
        TRY(sb_db_prepare(db,
                          "SELECT COALESCE(SUM(n), 0), COALESCE(SUM(cv_sum), 0), COALESCE(MAX(last_account), 0)"
                          " FROM snapshot_blocks WHERE business_day = ?",
                          &s));
        TRY(sb_db_bind_str(s, 0, run->day));
        TRY(sb_db_execute(s));
        r = sb_db_fetch(s);
        if (r <= 0)
                return r < 0 ? r : -EIO;
        airdrop_params p = {.d = run->release_sp, .price_micro = run->price_micro};
        TRY(sb_db_col_u64(s, 0, &p.n));
        if (sb_db_col_i64(s, 1, &p.cv_total) < 0) {
                drain(s);
                snprintf(why, why_n, "the total active CV of the day overflows 64 bits");
                return ERR_RUN;
        }
        TRY(sb_db_col_u64(s, 2, &p.id_max));
        TRY(drain(s));
        r = airdrop_allot_params(db, run->day, &p);
        if (r == -EINVAL || r == -ERANGE) {
                snprintf(why, why_n, "the allotment refused the snapshot (%s)", strerror(-r));
                return ERR_RUN;
        }
        if (r < 0)
                return r;
        /* The chunks: stream 0's, then stream 1's (a chunk never spans two streams). */
        uint64_t copied[AIRDROP_STREAMS_MAX] = {0}, sum = 0;
        TRY(sb_db_prepare(db, "SELECT stream, copied, done FROM snapshot_streams WHERE business_day = ?", &s));
        TRY(sb_db_bind_str(s, 0, run->day));
        TRY(sb_db_execute(s));
        while ((r = sb_db_fetch(s)) > 0) {
                uint64_t k, n;
                int64_t done;
                TRY(sb_db_col_u64(s, 0, &k));
                TRY(sb_db_col_u64(s, 1, &n));
                TRY(sb_db_col_i64(s, 2, &done));
                if (k >= AIRDROP_STREAMS_MAX) {
                        drain(s);
                        return -EIO;
                }
                if (!done) {
                        /* Every stream must have reached its end before the day's figures are computed. */
                        drain(s);
                        snprintf(why, why_n, "snapshot stream %" PRIu64 " stopped before its end", k);
                        return ERR_RUN;
                }
                copied[k] = n;
                sum += n;
        }
        if (r < 0)
                return r;
        if (sum != p.n) {
                snprintf(why, why_n, "the snapshot streams hold %" PRIu64 " participants, the snapshot %" PRIu64, sum,
                         p.n);
                return ERR_RUN;
        }
        uint64_t cs = run->chunk_accounts, first = 0, chunks = 0;
        if (p.n > 0 && p.d > 0) {
                first = (copied[0] + cs - 1) / cs;
                chunks = first + (copied[1] + cs - 1) / cs;
        }
        TRY(sb_db_prepare(db,
                          "UPDATE runs SET phase = 2, account_count = ?, cv_total = ?, id_max = ?, leftover_sp = ?,"
                          " thr_none = ?, thr_rem = ?, thr_id = ?, chunks_total = ?, snap_done_ms = ?,"
                          " chunks_first = ? WHERE business_day = ? AND phase = 1",
                          &s));
        TRY(sb_db_bind_u64(s, 0, p.n));
        TRY(sb_db_bind_i64(s, 1, p.cv_total));
        TRY(sb_db_bind_u64(s, 2, p.id_max));
        TRY(sb_db_bind_i64(s, 3, p.leftover));
        TRY(sb_db_bind_i64(s, 4, p.thr.none ? 1 : 0));
        TRY(sb_db_bind_i64(s, 5, p.thr.rem));
        TRY(sb_db_bind_u64(s, 6, p.thr.id_max));
        TRY(sb_db_bind_u64(s, 7, chunks));
        TRY(sb_db_bind_i64(s, 8, airdrop_now_ms()));
        TRY(sb_db_bind_u64(s, 9, first));
        TRY(sb_db_bind_str(s, 10, run->day));
        return sb_db_execute(s);
}

/* --- CREDIT --------------------------------------------------------------------------------------------------- */

typedef struct chunk_ctx {
        const airdrop_params *p;
        uint64_t seq_lo;
        size_t n_rows, n_credit;
        Sharebuy__Wallet__V1__AirdropAllotment *allot;
        Sharebuy__Wallet__V1__AirdropAllotment **ptrs;
        Sharebuy__Common__V1__OwnerRef *owners;
        uint32_t *offsets; /* seq − seq_lo of each credited account */
        int64_t sp, cost, cut;
        /* for the record */
        const char *day;
        unsigned chunk_no;
        uint8_t *map;
        size_t map_len;
        int64_t now_ms;
        int64_t scan_ms, wallet_ms, record_ms; /* this chunk's timings, added to the run's */
} chunk_ctx;

static int chunk_rows_fn(const airdrop_row *rows, size_t n, void *arg) {
        chunk_ctx *c = arg;
        for (size_t i = 0; i < n; i++) {
                sb_econ_capped cap;
                TRY(airdrop_share(c->p, rows[i].account_id, rows[i].cv, &cap));
                c->n_rows++;
                if (sb_add_i64(c->cut, cap.cut_sp, &c->cut) < 0)
                        return -ERANGE;
                if (cap.share_sp == 0)
                        continue;
                size_t k = c->n_credit++;
                Sharebuy__Common__V1__OwnerRef *o = &c->owners[k];
                sharebuy__common__v1__owner_ref__init(o);
                o->kind = (Sharebuy__Common__V1__OwnerKind) rows[i].owner_kind;
                o->id = rows[i].owner_id;
                Sharebuy__Wallet__V1__AirdropAllotment *a = &c->allot[k];
                sharebuy__wallet__v1__airdrop_allotment__init(a);
                a->owner = o;
                a->sp_units = cap.share_sp;
                a->cv_cost_units = cap.cost_cv;
                a->cv_account_id = rows[i].account_id; /* where the wallet finds the chunk's accounts */
                c->ptrs[k] = a;
                c->offsets[k] = (uint32_t) (rows[i].seq - c->seq_lo);
                if (sb_add_i64(c->sp, cap.share_sp, &c->sp) < 0 || sb_add_i64(c->cost, cap.cost_cv, &c->cost) < 0)
                        return -ERANGE;
        }
        return 0;
}

static int record_chunk_fn(sb_db *db, void *arg) {
        chunk_ctx *c = arg;
        sb_db_stmt *s;
        TRY(sb_db_prepare(db,
                          "INSERT INTO chunks (business_day, chunk_no, status, accounts, credited, sp_units,"
                          " cost_cv_units, cut_sp_units, tx_map, done_ms) VALUES (?, ?, 2, ?, ?, ?, ?, ?, ?, ?)",
                          &s));
        TRY(sb_db_bind_str(s, 0, c->day));
        TRY(sb_db_bind_u64(s, 1, c->chunk_no));
        TRY(sb_db_bind_u64(s, 2, c->n_rows));
        TRY(sb_db_bind_u64(s, 3, c->n_credit));
        TRY(sb_db_bind_i64(s, 4, c->sp));
        TRY(sb_db_bind_i64(s, 5, c->cost));
        TRY(sb_db_bind_i64(s, 6, c->cut));
        TRY(sb_db_bind_blob(s, 7, c->map, c->map_len));
        TRY(sb_db_bind_i64(s, 8, c->now_ms));
        TRY(sb_db_execute(s));
        TRY(sb_db_prepare(db,
                          "UPDATE runs SET chunks_done = chunks_done + 1, accounts_done = accounts_done + ?,"
                          " allotted_sp = allotted_sp + ?, cut_sp = cut_sp + ?, cost_cv = cost_cv + ?,"
                          " credit_scan_ms = credit_scan_ms + ?, credit_wallet_ms = credit_wallet_ms + ?,"
                          " credit_record_ms = credit_record_ms + ? WHERE business_day = ?",
                          &s));
        TRY(sb_db_bind_u64(s, 0, c->n_rows));
        TRY(sb_db_bind_i64(s, 1, c->sp));
        TRY(sb_db_bind_i64(s, 2, c->cut));
        TRY(sb_db_bind_i64(s, 3, c->cost));
        TRY(sb_db_bind_i64(s, 4, c->scan_ms));
        TRY(sb_db_bind_i64(s, 5, c->wallet_ms));
        TRY(sb_db_bind_i64(s, 6, c->record_ms));
        TRY(sb_db_bind_str(s, 7, c->day));
        return sb_db_execute(s);
}

static int chunk_done(sb_db *db, const char *day, unsigned chunk_no, bool *ret) {
        sb_db_stmt *s;
        TRY(sb_db_prepare(db, "SELECT 1 FROM chunks WHERE business_day = ? AND chunk_no = ?", &s));
        TRY(sb_db_bind_str(s, 0, day));
        TRY(sb_db_bind_u64(s, 1, chunk_no));
        TRY(sb_db_execute(s));
        int r = sb_db_fetch(s);
        if (r < 0)
                return r;
        *ret = r > 0;
        return drain(s);
}

static void put_le(uint8_t *p, uint64_t v, int n) {
        for (int i = 0; i < n; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

static void progress(airdrop_state *st, sb_db *db, const char *day) {
        sb_db_stmt *s;
        if (sb_db_prepare(db, "SELECT chunks_done, chunks_total, accounts_done FROM runs WHERE business_day = ?", &s) < 0 ||
            sb_db_bind_str(s, 0, day) < 0 || sb_db_execute(s) < 0)
                return;
        if (sb_db_fetch(s) > 0) {
                int64_t done = 0, total = 0, accounts = 0;
                sb_db_col_i64(s, 0, &done);
                sb_db_col_i64(s, 1, &total);
                sb_db_col_i64(s, 2, &accounts);
                if (st->g_chunks_done) {
                        sb_metrics_series_set(st->g_chunks_done, done);
                        sb_metrics_series_set(st->g_chunks_total, total);
                        sb_metrics_series_set(st->g_accounts_done, accounts);
                }
        }
        drain(s);
}

/* The credit workers share the chunk counter and the first failure. */
typedef struct credit_shared {
        airdrop_state *st;
        const run_row *run;
        const airdrop_params *p;
        pthread_mutex_t mu;
        uint64_t next; /* the next chunk to take */
        int err;       /* the first failure: stops every worker */
        char why[400];
} credit_shared;

typedef struct credit_worker {
        credit_shared *sh;
        sb_db *db;
        pthread_t thread;
        int r;
} credit_worker;

static bool credit_take(credit_shared *sh, uint64_t *ret_k) {
        pthread_mutex_lock(&sh->mu);
        bool ok = sh->err == 0 && sh->next < sh->run->chunks_total;
        if (ok)
                *ret_k = sh->next++;
        pthread_mutex_unlock(&sh->mu);
        return ok;
}

static void credit_failed(credit_shared *sh, int r, const char *why) {
        pthread_mutex_lock(&sh->mu);
        if (sh->err == 0) {
                sh->err = r;
                snprintf(sh->why, sizeof sh->why, "%s", why);
        }
        pthread_mutex_unlock(&sh->mu);
}

/* Books chunk k: reads its rows of the snapshot, computes the shares, calls the wallet, records the chunk. */
static int credit_chunk(credit_shared *sh, sb_db *db, chunk_ctx *c, uint64_t k, char *why, size_t why_n) {
        const run_row *run = sh->run;
        size_t cs = run->chunk_accounts;
        bool done;
        TRY(chunk_done(db, run->day, (unsigned) k, &done));
        if (done)
                return 0;
        if (stopping(sh->st))
                return -ECANCELED;
        /* Stream 0's chunks cover seq 0…, stream 1's seq AIRDROP_SEQ_STREAM1… (migration 0009). */
        c->seq_lo = k < run->chunks_first ? k * cs : AIRDROP_SEQ_STREAM1 + (k - run->chunks_first) * cs;
        c->n_rows = c->n_credit = 0;
        c->sp = c->cost = c->cut = 0;
        c->chunk_no = (unsigned) k;
        int64_t t0 = airdrop_mono_ms();
        TRY(airdrop_scan(db, run->day, c->seq_lo, c->seq_lo + cs, chunk_rows_fn, c));
        int64_t t1 = airdrop_mono_ms();
        c->scan_ms = t1 - t0;
        c->map_len = 0;
        if (c->n_credit > 0) {
                Sharebuy__Wallet__V1__ApplyAirdropChunkRequest req = SHAREBUY__WALLET__V1__APPLY_AIRDROP_CHUNK_REQUEST__INIT;
                req.business_day = (char *) run->day;
                req.chunk_no = (uint32_t) k;
                req.price_micro_yuan = sh->p->price_micro;
                req.n_allotments = c->n_credit;
                req.allotments = c->ptrs;
                ProtobufCMessage *out = NULL;
                char msg[SB_RPC_MESSAGE_MAX];
                sb_status code = wallet_call("ApplyAirdropChunk", &req.base,
                                             &sharebuy__wallet__v1__apply_airdrop_chunk_response__descriptor, &out,
                                             msg, sizeof msg);
                if (code != SB_OK) {
                        snprintf(why, why_n, "chunk %" PRIu64 ": the wallet's ApplyAirdropChunk failed: %s: %.200s", k,
                                 sb_status_name(code), msg);
                        return ERR_RUN;
                }
                Sharebuy__Wallet__V1__ApplyAirdropChunkResponse *resp = (void *) out;
                if (resp->n_transaction_ids != c->n_credit || resp->sp_units != c->sp || resp->cv_cost_units != c->cost) {
                        protobuf_c_message_free_unpacked(out, NULL);
                        snprintf(why, why_n, "chunk %" PRIu64 ": the wallet booked other totals", k);
                        return ERR_RUN;
                }
                for (size_t i = 0; i < c->n_credit; i++) {
                        if (i > 0 && resp->transaction_ids[i] == resp->transaction_ids[i - 1])
                                continue;
                        put_le(c->map + c->map_len, c->offsets[i], 4);
                        put_le(c->map + c->map_len + 4, resp->transaction_ids[i], 8);
                        c->map_len += 12;
                }
                protobuf_c_message_free_unpacked(out, NULL);
        }
        int64_t t2 = airdrop_mono_ms();
        c->wallet_ms = t2 - t1;
        c->now_ms = airdrop_now_ms();
        TRY(sb_db_tx(db, record_chunk_fn, c));
        c->record_ms = airdrop_mono_ms() - t2; /* added with this worker's next chunk's row */
        progress(sh->st, db, run->day);
        if (sh->st->chunk_pause_ms > 0)
                nap(sh->st, sh->st->chunk_pause_ms);
        return 0;
}

/* One worker: takes chunks in order until none is left or any worker failed. */
static int credit_work(credit_shared *sh, sb_db *db) {
        size_t cs = sh->run->chunk_accounts;
        size_t max_tx = cs; /* at most one transaction per account: the map never holds more entries */
        chunk_ctx c = {.p = sh->p, .day = sh->run->day};
        c.allot = calloc(cs, sizeof *c.allot);
        c.ptrs = calloc(cs, sizeof *c.ptrs);
        c.owners = calloc(cs, sizeof *c.owners);
        c.offsets = calloc(cs, sizeof *c.offsets);
        c.map = calloc(max_tx, 12);
        int r = 0;
        char why[400] = "";
        if (!c.allot || !c.ptrs || !c.owners || !c.offsets || !c.map)
                r = -ENOMEM;
        uint64_t k;
        while (r == 0 && credit_take(sh, &k))
                r = credit_chunk(sh, db, &c, k, why, sizeof why);
        if (r < 0) {
                if (r != ERR_RUN && r != -ECANCELED)
                        snprintf(why, sizeof why, "database: %s (%s)", sb_db_errmsg(db), strerror(-r));
                credit_failed(sh, r, why);
        }
        free(c.allot);
        free(c.ptrs);
        free(c.owners);
        free(c.offsets);
        free(c.map);
        return r;
}

static void *credit_thread(void *arg) {
        credit_worker *w = arg;
        w->r = credit_work(w->sh, w->db);
        return NULL;
}

static int phase_credit(airdrop_state *st, sb_db *db, const run_row *run, char *why, size_t why_n) {
        airdrop_params p = {.d = run->release_sp,
                            .cv_total = run->cv_total,
                            .n = run->account_count,
                            .id_max = run->id_max,
                            .price_micro = run->price_micro,
                            .leftover = run->leftover,
                            .thr = {.none = run->thr_none, .rem = run->thr_rem, .id_max = run->thr_id}};
        credit_shared sh = {.st = st, .run = run, .p = &p};
        pthread_mutex_init(&sh.mu, NULL);
        /* The other workers, each with its own connection (the runner's keeps the lock and works too). A worker
         * that cannot connect is simply not started: the run goes on with fewer. */
        credit_worker extra[AIRDROP_WORKERS_MAX];
        int n_extra = 0;
        int want = st->credit_workers > 1 ? st->credit_workers - 1 : 0;
        if ((uint64_t) want > run->chunks_total)
                want = run->chunks_total > 1 ? (int) run->chunks_total - 1 : 0;
        for (int i = 0; i < want; i++) {
                char err[256];
                credit_worker *w = &extra[n_extra];
                *w = (credit_worker){.sh = &sh};
                if (sb_db_open(&st->dbc, &w->db, err, sizeof err) < 0) {
                        sb_log_kv(SB_LOG_WARN, "airdrop", "a credit worker could not connect; fewer work", "error",
                                  SB_LOG_STR(err), NULL);
                        break;
                }
                if (pthread_create(&w->thread, NULL, credit_thread, w) != 0) {
                        sb_db_close(w->db);
                        break;
                }
                n_extra++;
        }
        int r = credit_work(&sh, db);
        for (int i = 0; i < n_extra; i++) {
                pthread_join(extra[i].thread, NULL);
                sb_db_close(extra[i].db);
        }
        pthread_mutex_destroy(&sh.mu);
        if (sh.err != 0) {
                snprintf(why, why_n, "%s", sh.why);
                /* A database failure of another worker: report it as a run error with its message. */
                return sh.err == ERR_RUN || sh.err == -ECANCELED || r == sh.err ? sh.err : ERR_RUN;
        }
        if (r < 0)
                return r;
        /* Every account was credited: check the sums before calling the day complete. */
        sb_db_stmt *s;
        TRY(sb_db_prepare(db, "SELECT allotted_sp, cut_sp FROM runs WHERE business_day = ?", &s));
        TRY(sb_db_bind_str(s, 0, run->day));
        TRY(sb_db_execute(s));
        if ((r = sb_db_fetch(s)) < 0)
                return r;
        int64_t allotted = 0, cut = 0;
        if (r > 0) {
                sb_db_col_i64(s, 0, &allotted);
                sb_db_col_i64(s, 1, &cut);
        }
        TRY(drain(s));
        if (p.n > 0 && allotted + cut != p.d) {
                snprintf(why, why_n, "credited %" PRId64 " + cut %" PRId64 " differ from the release %" PRId64, allotted,
                         cut, p.d);
                return ERR_RUN;
        }
        TRY(sb_db_prepare(db, "UPDATE runs SET status = 2, phase = 3, finished_ms = ? WHERE business_day = ?", &s));
        TRY(sb_db_bind_i64(s, 0, airdrop_now_ms()));
        TRY(sb_db_bind_str(s, 1, run->day));
        return sb_db_execute(s);
}

/* The completion line, with the time of each phase (migration 0007; docs/airdrop.md). */
static void log_completed(sb_db *db, const char *day) {
        int64_t v[8] = {0};
        sb_db_stmt *s;
        if (sb_db_prepare(db,
                          "SELECT started_ms, start_done_ms, snap_copied_ms, snap_done_ms, finished_ms, credit_scan_ms,"
                          " credit_wallet_ms, credit_record_ms FROM runs WHERE business_day = ?",
                          &s) == 0 &&
            sb_db_bind_str(s, 0, day) == 0 && sb_db_execute(s) == 0 && sb_db_fetch(s) > 0) {
                for (unsigned i = 0; i < 8; i++)
                        sb_db_col_i64(s, i, &v[i]);
                drain(s);
        }
        sb_log_kv(SB_LOG_INFO, "airdrop", "the day's run completed", "day", SB_LOG_STR(day), "start_ms",
                  SB_LOG_INT(v[1] - v[0]), "snapshot_copy_ms", SB_LOG_INT(v[2] - v[1]), "threshold_ms",
                  SB_LOG_INT(v[3] - v[2]), "credit_ms", SB_LOG_INT(v[4] - v[3]), "credit_scan_ms", SB_LOG_INT(v[5]),
                  "credit_wallet_ms", SB_LOG_INT(v[6]), "credit_record_ms", SB_LOG_INT(v[7]), NULL);
}

/* Runs (or resumes) the day of `day` to the end. */
static int execute_run(airdrop_state *st, sb_db *db, const char *day) {
        run_row run;
        char why[400] = "";
        int r;
        sb_db_stmt *s;
        TRY(sb_db_prepare(db,
                          "UPDATE runs SET resumes = resumes + IF(status = 3, 1, 0), status = 1, last_error = ''"
                          " WHERE business_day = ? AND status <> 2",
                          &s));
        TRY(sb_db_bind_str(s, 0, day));
        TRY(sb_db_execute(s));
        if (st->g_running)
                sb_metrics_series_set(st->g_running, 1);
        sb_log_kv(SB_LOG_INFO, "airdrop", "running the day", "day", SB_LOG_STR(day), NULL);
        for (;;) {
                if ((r = run_load(db, day, &run)) < 0)
                        break;
                if (run.status == AIRDROP_COMPLETED)
                        break;
                if (run.phase == AIRDROP_PHASE_START)
                        r = phase_start(st, db, &run, why, sizeof why);
                else if (run.phase == AIRDROP_PHASE_SNAPSHOT)
                        r = phase_snapshot(st, db, &run, why, sizeof why);
                else if (run.phase == AIRDROP_PHASE_CREDIT)
                        r = phase_credit(st, db, &run, why, sizeof why);
                else
                        r = -EIO;
                if (r < 0)
                        break;
        }
        if (st->g_running)
                sb_metrics_series_set(st->g_running, 0);
        if (r == 0) {
                if (st->c_completed)
                        sb_metrics_series_add(st->c_completed, 1);
                log_completed(db, day);
                return 0;
        }
        if (r == ERR_RUN) {
                sb_log_kv(SB_LOG_ERROR, "airdrop", "the day's run stopped; it is retried", "day", SB_LOG_STR(day),
                          "error", SB_LOG_STR(why), NULL);
                run_fail(db, day, why);
        } else if (r == -ECANCELED) {
                run_fail(db, day, "the service stopped; the run resumes at the next start");
        } else {
                snprintf(why, sizeof why, "database: %s (%s)", sb_db_errmsg(db), strerror(r < 0 ? -r : r));
                sb_log_kv(SB_LOG_ERROR, "airdrop", "the day's run stopped; it is retried", "day", SB_LOG_STR(day),
                          "error", SB_LOG_STR(why), NULL);
                run_fail(db, day, why);
        }
        return r;
}

/* --- The thread ----------------------------------------------------------------------------------------------- */

static int find_unfinished(sb_db *db, char day[AIRDROP_DAY_LEN + 1], bool *ret_found) {
        sb_db_stmt *s;
        TRY(sb_db_prepare(db, "SELECT business_day FROM runs WHERE status <> 2 ORDER BY business_day LIMIT 1", &s));
        TRY(sb_db_execute(s));
        int r = sb_db_fetch(s);
        if (r < 0)
                return r;
        *ret_found = r > 0;
        if (r > 0)
                TRY(sb_db_col_str(s, 0, day, AIRDROP_DAY_LEN + 1));
        return drain(s);
}

/* One step: resume an unfinished run, or start the next due day. Sets *ret_idle_ms to how long to wait after. */
static int runner_step(airdrop_state *st, sb_db *db, int64_t *ret_idle_ms) {
        char day[AIRDROP_DAY_LEN + 1];
        bool found;
        *ret_idle_ms = 60000;
        TRY(find_unfinished(db, day, &found));
        if (found) {
                int r = execute_run(st, db, day);
                *ret_idle_ms = r == 0 ? 0 : 5000;
                return r == ERR_RUN ? 0 : r;
        }
        if (!st->timer)
                return 0;
        int64_t next, now = airdrop_now_ms();
        TRY(airdrop_next_day(db, st, &next));
        int64_t idx, amount;
        if (sb_econ_day_index(&st->econ, next, &idx) < 0 || sb_econ_schedule_amount(&st->econ, idx, &amount) < 0 ||
            amount == 0)
                return 0; /* the schedule has ended */
        int64_t release = airdrop_release_ms(st, next);
        if (now < release) {
                int64_t wait = release - now;
                *ret_idle_ms = wait < 60000 ? wait : 60000;
                return 0;
        }
        airdrop_day_format(next, day);
        sb_db_stmt *s;
        TRY(sb_db_prepare(db,
                          "INSERT IGNORE INTO runs (business_day, status, phase, trigger_kind, started_by,"
                          " chunk_accounts, started_ms) VALUES (?, 1, 0, ?, 0, ?, ?)",
                          &s));
        TRY(sb_db_bind_str(s, 0, day));
        TRY(sb_db_bind_i64(s, 1, now - release < 120000 ? AIRDROP_TRIGGER_TIMER : AIRDROP_TRIGGER_CATCH_UP));
        TRY(sb_db_bind_i64(s, 2, st->chunk_accounts));
        TRY(sb_db_bind_i64(s, 3, now));
        TRY(sb_db_execute(s));
        *ret_idle_ms = 0;
        return 0;
}

static void *runner_main(void *arg) {
        airdrop_state *st = arg;
        sb_db *db = NULL;
        uint64_t locked_conn = 0;
        bool marked = false;
        while (!stopping(st)) {
                char err[256];
                if (!db && sb_db_open(&st->dbc, &db, err, sizeof err) < 0) {
                        db = NULL;
                        nap(st, 2000);
                        continue;
                }
                uint64_t conn = sb_db_connection_id(db);
                if (conn == 0 || conn != locked_conn) {
                        /* A reconnection lost the lock with the old session: take it again. */
                        sb_db_stmt *s;
                        int64_t got = 0;
                        if (sb_db_prepare(db, "SELECT GET_LOCK('sharebuy_airdrop_runner', 0)", &s) == 0 &&
                            sb_db_execute(s) == 0 && sb_db_fetch(s) > 0)
                                sb_db_col_i64(s, 0, &got);
                        if (got == 1) {
                                drain(s);
                                locked_conn = sb_db_connection_id(db);
                        } else {
                                nap(st, 5000);
                                continue;
                        }
                }
                if (!marked) {
                        /* Runs left RUNNING by a process that died: interrupted, resumed below. */
                        sb_db_stmt *s;
                        if (sb_db_prepare(db, "UPDATE runs SET status = 3 WHERE status = 1", &s) < 0 ||
                            sb_db_execute(s) < 0) {
                                nap(st, 2000);
                                continue;
                        }
                        marked = true;
                }
                int64_t idle = 0;
                int r = runner_step(st, db, &idle);
                if (r < 0 && r != -ECANCELED) {
                        sb_log_kv(SB_LOG_WARN, "airdrop", "runner step failed; retrying", "error",
                                  SB_LOG_STR(sb_db_errmsg(db)), NULL);
                        idle = 2000;
                }
                if (idle > 0)
                        nap(st, idle);
        }
        sb_db_close(db);
        return NULL;
}

int airdrop_runner_start(airdrop_state *st, char *err, size_t err_n) {
        int r = pthread_create(&st->thread, NULL, runner_main, st);
        if (r != 0) {
                snprintf(err, err_n, "cannot start the airdrop runner thread: %s", strerror(r));
                return -r;
        }
        st->thread_started = true;
        return 0;
}

void airdrop_runner_stop(airdrop_state *st) {
        if (!st->thread_started)
                return;
        pthread_mutex_lock(&st->mu);
        st->stop = true;
        pthread_cond_broadcast(&st->cond);
        pthread_mutex_unlock(&st->mu);
        pthread_join(st->thread, NULL);
        st->thread_started = false;
}
