/* What the airdrop's files share: the service state, the calendar of business days, the allotment over a snapshot
 * or the live active CV, the run store and the runner thread. See docs/airdrop.md. */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "economy.h"
#include "metrics.h"

#define AIRDROP_DAY_LEN 10
#define AIRDROP_CHUNK_MAX 20000  /* accounts per wallet chunk: the wallet's WALLET_AIRDROP_ALLOTMENTS_MAX */
#define AIRDROP_SNAPSHOT_BATCH 20000 /* at most this many accounts copied into the snapshot per transaction */
#define AIRDROP_PAGE 8192        /* rows read per query while streaming */
#define AIRDROP_TOP_MAX 100
#define AIRDROP_WORKERS_MAX 8    /* chunks booked at once (airdrop.credit_workers) */
#define AIRDROP_STREAMS_MAX 2    /* snapshot streams copied at once (airdrop.snapshot_streams; migration 0009) */
#define AIRDROP_SEQ_STREAM1 2147483648ULL /* the first seq of snapshot stream 1 (2^31; stream 0 starts at 0) */
/* The snapshot's blocks (migration 0010): at most AIRDROP_BLOCK participants per row of snapshot_blocks, each a record
 * of AIRDROP_REC bytes: '#', account id (20 digits), owner kind (3), owner id (20), CV units (19). */
#define AIRDROP_BLOCK 256
#define AIRDROP_REC 63
#define AIRDROP_PAGE_BLOCKS 32 /* AIRDROP_PAGE / AIRDROP_BLOCK: blocks read per query while streaming */
#define AIRDROP_STR_(x) #x
#define AIRDROP_STR(x) AIRDROP_STR_(x)
_Static_assert(AIRDROP_PAGE == AIRDROP_PAGE_BLOCKS * AIRDROP_BLOCK, "a page is whole blocks");
_Static_assert(AIRDROP_SEQ_STREAM1 % AIRDROP_BLOCK == 0, "no block spans the two streams");

enum { AIRDROP_RUNNING = 1, AIRDROP_COMPLETED = 2, AIRDROP_INTERRUPTED = 3 };
enum { AIRDROP_TRIGGER_TIMER = 1, AIRDROP_TRIGGER_ADMIN = 2, AIRDROP_TRIGGER_CATCH_UP = 3 };
enum { AIRDROP_PHASE_START = 0, AIRDROP_PHASE_SNAPSHOT = 1, AIRDROP_PHASE_CREDIT = 2, AIRDROP_PHASE_DONE = 3 };

typedef struct airdrop_state {
        sb_econ_settings econ;       /* validated; econ.start_day is a day number */
        int release_minute;          /* local minutes after midnight */
        char zone[64];
        char start_day[AIRDROP_DAY_LEN + 1];
        int64_t chunk_accounts;
        int64_t chunk_pause_ms;      /* a pause between chunks (tests use it to kill a run between chunks) */
        int credit_workers;          /* chunks booked at once, each with its own connection */
        int snapshot_streams;        /* 1 or 2: the snapshot copied in that many account id ranges at once */
        int64_t snapshot_batch;      /* participants copied per snapshot transaction (≤ AIRDROP_SNAPSHOT_BATCH) */
        int64_t snapshot_split_min_ids; /* split only when the CV accounts' ids span at least this many */
        bool timer;
        sb_db_config dbc;            /* the runner thread's own connection */

        pthread_t thread;
        bool thread_started;
        pthread_mutex_t mu;
        pthread_cond_t cond;
        bool stop, kick;             /* under mu */

        sb_metrics_series *g_chunks_done, *g_chunks_total, *g_accounts_done, *g_running, *c_completed;
} airdrop_state;

/* --- Calendar (airdrop_day.c) --- */

/* "YYYY-MM-DD" (years 2000..2999) to a day number (days since 1970-01-01) and back. -EINVAL for a bad day. */
int airdrop_day_parse(const char *s, int64_t *ret_day);
void airdrop_day_format(int64_t day, char out[AIRDROP_DAY_LEN + 1]);

/* The instant (unix ms) of the release of day number `day` in the state's zone at its release time. */
int64_t airdrop_release_ms(const airdrop_state *st, int64_t day);

/* The last day whose release time has passed at now_ms (it may be before the start day). */
int64_t airdrop_last_due_day(const airdrop_state *st, int64_t now_ms);

int64_t airdrop_now_ms(void);

/* A monotonic clock in ms, for timings. */
int64_t airdrop_mono_ms(void);

/* --- The allotment (airdrop_allot.c) --- */

/* One participant as read from the snapshot of a day (seq = position) or from the live active CV (seq = 0). */
typedef struct airdrop_row {
        uint64_t seq;
        uint64_t account_id;
        int owner_kind;
        uint64_t owner_id;
        int64_t cv;
} airdrop_row;

/* The n decimal digits at p (exactly n, no sign, zero-padded) as a value of at most max: 0, or -EIO. */
int airdrop_parse_digits(const uint8_t *p, size_t n, uint64_t max, uint64_t *ret);

/* The n records of a block at seq into rows[0..n): 0, or -EIO when the block is malformed (length, marks, digits,
 * ranges). */
int airdrop_block_parse(const uint8_t *recs, size_t len, uint64_t n, uint64_t seq, airdrop_row *rows);

/* Called with each page of rows in account id order; a negative return stops the scan and is returned. */
typedef int (*airdrop_row_fn)(const airdrop_row *rows, size_t n, void *arg);

/* Streams the participants: the snapshot of `day` with seq_lo ≤ seq < seq_hi, or (day NULL) the wallet's live
 * active CV, in pages of AIRDROP_PAGE rows. Returns 0 or an sb_db code / fn's code. */
int airdrop_scan(sb_db *db, const char *day, uint64_t seq_lo, uint64_t seq_hi, airdrop_row_fn fn, void *arg);

/* Everything the share of one account depends on, besides its own (id, CV). */
typedef struct airdrop_params {
        int64_t d;            /* the day's release */
        int64_t cv_total;     /* CV_T; 0 when nobody takes part */
        uint64_t n;           /* participants */
        uint64_t id_max;
        int64_t price_micro;
        int64_t leftover;     /* k */
        sb_econ_threshold thr;
} airdrop_params;

/* Pass 1 and the leftover selection (economy.h, "The airdrop allotment") over the scan of `day` (or the live view),
 * given p->d, p->cv_total, p->n, p->id_max, p->price_micro: fills p->leftover and p->thr. Memory is bounded (one
 * page and the selection). Returns 0, -EINVAL when the participants are inconsistent, or a database code. */
int airdrop_allot_params(sb_db *db, const char *day, airdrop_params *p);

/* The final share of one participant: floor + the leftover unit, then the value cap. */
int airdrop_share(const airdrop_params *p, uint64_t account_id, int64_t cv, sb_econ_capped *ret);

/* --- The runner (airdrop_run.c) --- */

/* Starts and stops the runner thread: it resumes unfinished runs, runs due days in order (timer), and runs what
 * RunDay asks for. */
int airdrop_runner_start(airdrop_state *st, char *err, size_t err_n);
void airdrop_runner_stop(airdrop_state *st);
void airdrop_runner_kick(airdrop_state *st);

/* The next day to run: the day after the last completed run, or the start day. */
int airdrop_next_day(sb_db *db, const airdrop_state *st, int64_t *ret_day);
