/* Tests of services/core/batch: every item done exactly once, by its group or alone; groups form when items arrive
 * while one is being done; a group's refusals are done alone by their own threads; the limit on a group's size; at
 * most `leaders` groups at once, and with more than one leader groups do run at once. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "sb_test.h"

#define THREADS 16
#define PER_THREAD 200
#define ITEMS (THREADS * PER_THREAD)

typedef struct item {
        int id;
        int result;   /* written by whoever did it */
        void *conn;   /* the connection it was done on */
} item;

typedef struct world {
        atomic_int times_done[ITEMS];
        atomic_int singles, groups, largest;
        atomic_int in_flight;     /* calls of group running now */
        atomic_int max_in_flight; /* the most at once: never more than the batch's leaders */
        int refuse_mod; /* a group leaves items with id % refuse_mod == 0 (0: none) */
        bool fail_groups;
        long work_ns;
} world;

static void pause_ns(long ns) {
        struct timespec ts = {0, ns};
        if (ns)
                nanosleep(&ts, NULL);
}

static int do_single(void *ctx, void *conn, void *p) {
        world *w = ctx;
        item *it = p;
        atomic_fetch_add(&w->singles, 1);
        atomic_fetch_add(&w->times_done[it->id], 1);
        it->result = it->id * 2 + 1;
        it->conn = conn;
        pause_ns(w->work_ns);
        return it->id % 7 == 3 ? -EEXIST : 0; /* a code of its own, passed back unchanged */
}

static int do_group(void *ctx, void *conn, void *const *items, size_t n, bool *done) {
        world *w = ctx;
        int now = atomic_fetch_add(&w->in_flight, 1) + 1;
        int seen = atomic_load(&w->max_in_flight);
        while (now > seen && !atomic_compare_exchange_weak(&w->max_in_flight, &seen, now))
                ;
        SB_CHECK(n >= 2 && n <= SB_BATCH_MAX);
        for (size_t i = 0; i < n; i++)
                SB_CHECK(!done[i]);
        atomic_fetch_add(&w->groups, 1);
        int prev = atomic_load(&w->largest);
        while ((int) n > prev && !atomic_compare_exchange_weak(&w->largest, &prev, (int) n))
                ;
        pause_ns(w->work_ns);
        if (!w->fail_groups)
                for (size_t i = 0; i < n; i++) {
                        item *it = items[i];
                        if (w->refuse_mod && it->id % w->refuse_mod == 0)
                                continue;
                        atomic_fetch_add(&w->times_done[it->id], 1);
                        it->result = it->id * 2 + 1;
                        it->conn = conn;
                        done[i] = true;
                }
        atomic_fetch_sub(&w->in_flight, 1);
        return w->fail_groups ? -EIO : 0;
}

typedef struct worker {
        sb_batch *b;
        int t;
        item items[PER_THREAD];
        int wrong_code;
} worker;

static void *run_worker(void *p) {
        worker *k = p;
        for (int i = 0; i < PER_THREAD; i++) {
                item *it = &k->items[i];
                it->id = k->t * PER_THREAD + i;
                it->result = -1;
                int r = sb_batch_run(k->b, &k->t, it);
                /* Done alone: single's code; done by a group: 0. The expected -EEXIST is single's only. */
                if (r != 0 && r != -EEXIST)
                        k->wrong_code++;
        }
        return NULL;
}

static void run(world *w, size_t max, unsigned leaders, bool enabled, uint64_t *ret_groups, uint64_t *ret_grouped,
                uint64_t *ret_alone) {
        sb_batch b;
        SB_CHECK(sb_batch_init(&b, max, leaders, enabled, do_single, do_group, w) == 0);
        static worker k[THREADS];
        pthread_t th[THREADS];
        for (int t = 0; t < THREADS; t++) {
                k[t] = (worker){.b = &b, .t = t};
                pthread_create(&th[t], NULL, run_worker, &k[t]);
        }
        for (int t = 0; t < THREADS; t++)
                pthread_join(th[t], NULL);
        int twice = 0, never = 0, wrong = 0;
        for (int i = 0; i < ITEMS; i++) {
                int d = atomic_load(&w->times_done[i]);
                twice += d > 1;
                never += d == 0;
        }
        for (int t = 0; t < THREADS; t++) {
                wrong += k[t].wrong_code;
                for (int i = 0; i < PER_THREAD; i++)
                        wrong += k[t].items[i].result != k[t].items[i].id * 2 + 1;
        }
        SB_CHECK(twice == 0);
        SB_CHECK(never == 0);
        SB_CHECK(wrong == 0);
        SB_CHECK(atomic_load(&w->max_in_flight) <= (int) leaders);
        sb_batch_stats(&b, ret_groups, ret_grouped, ret_alone);
        sb_batch_fini(&b);
}

int main(void) {
        static world w;
        uint64_t g, gd, al;

        /* Contended: groups form, each item once, counters add up. */
        memset(&w, 0, sizeof w);
        w.work_ns = 200000;
        run(&w, 16, 1, true, &g, &gd, &al);
        SB_CHECK(g > 0);
        SB_CHECK(atomic_load(&w.largest) >= 2 && atomic_load(&w.largest) <= 16);
        SB_CHECK(gd + al == ITEMS);
        SB_CHECK((int) al == atomic_load(&w.singles));
        fprintf(stderr, "contended: %llu groups, %llu grouped, %llu alone, largest %d\n", (unsigned long long) g,
                (unsigned long long) gd, (unsigned long long) al, atomic_load(&w.largest));

        /* Four leaders: groups still form, and run at once (16 threads, each group 200 µs). */
        memset(&w, 0, sizeof w);
        w.work_ns = 200000;
        run(&w, 16, 4, true, &g, &gd, &al);
        SB_CHECK(g > 0 && gd + al == ITEMS);
        SB_CHECK(atomic_load(&w.max_in_flight) >= 2);
        fprintf(stderr, "4 leaders: %llu groups, %llu grouped, %llu alone, at most %d at once\n",
                (unsigned long long) g, (unsigned long long) gd, (unsigned long long) al,
                atomic_load(&w.max_in_flight));

        /* A group that leaves every fifth item: those are done alone, by their own threads, once. */
        memset(&w, 0, sizeof w);
        w.work_ns = 100000;
        w.refuse_mod = 5;
        run(&w, 8, 2, true, &g, &gd, &al);
        SB_CHECK(g > 0 && atomic_load(&w.largest) <= 8);
        SB_CHECK(gd + al == ITEMS);

        /* A group that fails as a whole: every item is still done, alone. */
        memset(&w, 0, sizeof w);
        w.work_ns = 50000;
        w.fail_groups = true;
        run(&w, 4, 3, true, &g, &gd, &al);
        SB_CHECK(gd == 0 && al == ITEMS);

        /* Disabled, or groups of at most one: single only. */
        memset(&w, 0, sizeof w);
        run(&w, 16, 4, false, &g, &gd, &al);
        SB_CHECK(atomic_load(&w.groups) == 0 && atomic_load(&w.singles) == ITEMS);
        memset(&w, 0, sizeof w);
        run(&w, 1, 1, true, &g, &gd, &al);
        SB_CHECK(atomic_load(&w.groups) == 0 && atomic_load(&w.singles) == ITEMS);

        /* Bad set-ups are refused. */
        sb_batch b;
        SB_CHECK(sb_batch_init(&b, 0, 1, true, do_single, do_group, &w) == -EINVAL);
        SB_CHECK(sb_batch_init(&b, SB_BATCH_MAX + 1, 1, true, do_single, do_group, &w) == -EINVAL);
        SB_CHECK(sb_batch_init(&b, 4, 1, true, NULL, do_group, &w) == -EINVAL);
        SB_CHECK(sb_batch_init(&b, 4, 0, true, do_single, do_group, &w) == -EINVAL);
        SB_CHECK(sb_batch_init(&b, 4, SB_BATCH_LEADERS_MAX + 1, true, do_single, do_group, &w) == -EINVAL);

        return 0;
}
