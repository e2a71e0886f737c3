/* sb_batch: leader/follower group commit (batch.h). */
#include "batch.h"

#include <errno.h>

struct sb_batch_waiter {
        void *item;
        bool taken;    /* a leader took it */
        bool finished; /* its group ran (or it ran alone while leading) */
        bool done;     /* completed by its group */
        bool alone;    /* done alone while leading: r is the result */
        int r;
        sb_batch_waiter *next;
};

int sb_batch_init(sb_batch *b, size_t max, unsigned leaders, bool enabled, sb_batch_single_fn single,
                  sb_batch_group_fn group, void *ctx) {
        if (max < 1 || max > SB_BATCH_MAX || leaders < 1 || leaders > SB_BATCH_LEADERS_MAX || !single || !group)
                return -EINVAL;
        *b = (sb_batch){.enabled = enabled, .max = max, .leaders = leaders, .single = single, .group = group,
                        .ctx = ctx};
        pthread_mutex_init(&b->mu, NULL);
        pthread_cond_init(&b->cv, NULL);
        return 0;
}

void sb_batch_fini(sb_batch *b) {
        pthread_mutex_destroy(&b->mu);
        pthread_cond_destroy(&b->cv);
}

int sb_batch_run(sb_batch *b, void *conn, void *item) {
        if (!b->enabled || b->max == 1)
                return b->single(b->ctx, conn, item);
        sb_batch_waiter me = {.item = item};
        pthread_mutex_lock(&b->mu);
        if (b->queue_tail)
                b->queue_tail->next = &me;
        else
                b->queue = &me;
        b->queue_tail = &me;
        while (!me.finished) {
                /* Taken by another leader: wait for its group. Every lead busy: wait for one to end. */
                if (me.taken || b->leading >= b->leaders) {
                        pthread_cond_wait(&b->cv, &b->mu);
                        continue;
                }
                b->leading++;
                sb_batch_waiter *taken[SB_BATCH_MAX];
                void *items[SB_BATCH_MAX];
                size_t n = 0;
                while (b->queue && n < b->max) {
                        sb_batch_waiter *w = b->queue;
                        b->queue = w->next;
                        w->next = NULL;
                        w->taken = true;
                        taken[n] = w;
                        items[n++] = w->item;
                }
                if (!b->queue)
                        b->queue_tail = NULL;
                pthread_mutex_unlock(&b->mu);
                bool done[SB_BATCH_MAX] = {false};
                size_t n_done = 0;
                /* A group of one is the leader's own item (a leader's item is queued until its group has run): done
                 * alone, still leading, so that the items arriving meanwhile form the next group. */
                if (n == 1) {
                        taken[0]->r = b->single(b->ctx, conn, items[0]);
                        taken[0]->alone = true;
                } else {
                        (void) b->group(b->ctx, conn, items, n, done);
                        for (size_t i = 0; i < n; i++)
                                n_done += done[i];
                }
                pthread_mutex_lock(&b->mu);
                /* Counted here, under the lock already held: the items a group left are done alone below. */
                if (n == 1)
                        b->n_alone++;
                else {
                        b->n_groups++;
                        b->n_grouped += n_done;
                        b->n_alone += n - n_done;
                }
                for (size_t i = 0; i < n; i++) {
                        taken[i]->done = done[i];
                        taken[i]->finished = true;
                }
                b->leading--;
                pthread_cond_broadcast(&b->cv);
        }
        pthread_mutex_unlock(&b->mu);
        if (me.alone)
                return me.r;
        if (me.done)
                return 0;
        return b->single(b->ctx, conn, item);
}

void sb_batch_stats(sb_batch *b, uint64_t *ret_groups, uint64_t *ret_grouped, uint64_t *ret_alone) {
        pthread_mutex_lock(&b->mu);
        if (ret_groups)
                *ret_groups = b->n_groups;
        if (ret_grouped)
                *ret_grouped = b->n_grouped;
        if (ret_alone)
                *ret_alone = b->n_alone;
        pthread_mutex_unlock(&b->mu);
}
