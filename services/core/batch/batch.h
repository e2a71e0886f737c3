/* sb_batch: group commit for the services — calls that arrive while one is being written are written together.
 *
 * A thread that has one item of work (a posting, a row to insert) hands it to sb_batch_run(). Up to `leaders`
 * threads at a time lead, each with its own group: a thread whose item is still waiting becomes a leader when fewer
 * than `leaders` lead, takes every waiting item (at most the batch's max), and
 *   - when it found only its own, does it alone with the single function, still leading, so that when every lead
 *     is taken the items that arrive meanwhile wait and form the next group;
 *   - otherwise gives them all to the group function, which writes what it can in one go (one database
 *     transaction, one multi-row statement) and says which items it completed.
 * With one leader the groups are written one after the other; with more, a group's commit (its fsync) no longer
 * holds up the next one, and groups form only once every lead is busy. Concurrent groups are concurrent database
 * transactions: the functions must take their row locks in one order (or survive a deadlock's rollback).
 * An item its group did not complete (a conflict, a refusal that needs the item's own exact answer, a failed group)
 * is done by its own thread with the single function, outside the lead. Nothing waits on a timer: under light load
 * every item is alone and costs what it would cost without the batch.
 *
 * The functions get the calling thread's context (its database connection, say) as `conn`: the leader's for a
 * group. Items live on their callers' stacks; the batch never copies or frees them. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The most items one group takes. */
#define SB_BATCH_MAX 64

/* Does one item alone: its result code, which sb_batch_run() returns. */
typedef int (*sb_batch_single_fn)(void *ctx, void *conn, void *item);

/* Does n >= 2 items together; sets done[i] (all false on entry) for each item it completed, whose result it has
 * stored in the item itself. Returns a code for the log only: items not done are done alone afterwards. */
typedef int (*sb_batch_group_fn)(void *ctx, void *conn, void *const *items, size_t n, bool *done);

typedef struct sb_batch_waiter sb_batch_waiter;

typedef struct sb_batch {
        pthread_mutex_t mu;
        pthread_cond_t cv;
        sb_batch_waiter *queue, *queue_tail;
        unsigned leading;  /* threads leading now */
        unsigned leaders;  /* at most this many at once */
        bool enabled;
        size_t max;
        sb_batch_single_fn single;
        sb_batch_group_fn group;
        void *ctx;
        /* Counters (read with sb_batch_stats): groups run, items completed by groups, items done alone. */
        uint64_t n_groups, n_grouped, n_alone;
} sb_batch;

/* The most groups one batch writes at once. */
#define SB_BATCH_LEADERS_MAX 64

/* Sets up b: groups of at most max items (1..SB_BATCH_MAX), at most `leaders` of them (1..SB_BATCH_LEADERS_MAX)
 * being written at once; with enabled false, sb_batch_run() calls single directly. -EINVAL on a bad max or leaders,
 * or a missing function. */
int sb_batch_init(sb_batch *b, size_t max, unsigned leaders, bool enabled, sb_batch_single_fn single,
                  sb_batch_group_fn group, void *ctx);

/* Releases what sb_batch_init() set up; no thread may be inside sb_batch_run(). */
void sb_batch_fini(sb_batch *b);

/* Does item (alone or in a group) and returns its result: single's code when it was done alone, 0 when its group
 * completed it. Blocks until it is done; conn is this thread's context, used when this thread leads or does its
 * item alone. */
int sb_batch_run(sb_batch *b, void *conn, void *item);

/* The counters so far (any may be NULL). */
void sb_batch_stats(sb_batch *b, uint64_t *ret_groups, uint64_t *ret_grouped, uint64_t *ret_alone);
