/* identity_audit_queue: the audit trail written in batches.
 *
 * identity_audit() used to INSERT each event in the handler's own connection: a statement and a durable commit on
 * the path of every sale (each resolved member code is an event). Now a handler only appends the event to a
 * bounded queue; one writer thread, with its own connection, inserts whatever has queued up every
 * identity.audit_flush (20 ms; or at once when AUDIT_BATCH events wait) as one statement and one commit. The trail keeps its
 * order (events are inserted in the order they were queued, in one statement per batch).
 *
 * What it costs: an event is in the table up to identity.audit_flush after the call that caused it answered, and a
 * process killed with SIGKILL loses what had not been written yet (a graceful stop writes everything first; the
 * audit was already best effort: a failed INSERT never failed the call). ListAuditEvents waits until every event
 * queued before it is written, so a caller reads its own events. A full queue (the database unreachable for a
 * while) makes identity_audit() write synchronously, as before, rather than drop or block. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "identity_internal.h"
#include "log.h"

#define AUDIT_QUEUE_MAX 4096
#define AUDIT_BATCH 256     /* events that wake the writer at once */
#define AUDIT_SYNC_WAIT_MS 3000

typedef struct audit_row {
        int type;
        int64_t occurred_ms;
        uint64_t actor_user_id;
        int actor_role;
        uint64_t subject_user_id, merchant_id, terminal_id, centre_id;
        char peer[64];
        char request_id[65];
        char detail[IDENTITY_REASON_MAX * 4 + 1];
} audit_row;

struct identity_audit_queue {
        sb_db_config dbc;
        int64_t flush_ms;
        pthread_mutex_t mu;
        pthread_cond_t wake, written;
        audit_row *rows; /* ring of AUDIT_QUEUE_MAX */
        size_t head, n;
        uint64_t queued, done; /* events queued / written (or given up) so far */
        bool stop, want_flush;
        pthread_t thread;
        bool started;
        /* writer only */
        sb_db *db;
        audit_row *batch;
        char *json;
        size_t json_cap;
};

static void ts_after(struct timespec *ts, int64_t ms) {
        clock_gettime(CLOCK_REALTIME, ts);
        ts->tv_sec += ms / 1000;
        ts->tv_nsec += (ms % 1000) * 1000000;
        if (ts->tv_nsec >= 1000000000) {
                ts->tv_sec++;
                ts->tv_nsec -= 1000000000;
        }
}

/* Appends s to the JSON text as a string literal. */
static size_t json_str(char *out, const char *s) {
        size_t k = 0;
        out[k++] = '"';
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                if (*p == '"' || *p == '\\') {
                        out[k++] = '\\';
                        out[k++] = (char)*p;
                } else if (*p < 0x20) {
                        k += (size_t)sprintf(out + k, "\\u%04x", *p);
                } else {
                        out[k++] = (char)*p;
                }
        }
        out[k++] = '"';
        return k;
}

/* Inserts rows[0..n) in one statement. */
static int write_rows(identity_audit_queue *q, const audit_row *rows, size_t n, char *err, size_t err_n) {
        /* Worst case per row: 8 numbers and 3 strings escaped to 6 bytes a byte. */
        size_t need = n * (8 * 24 + 6 * (sizeof rows->peer + sizeof rows->request_id + sizeof rows->detail) + 64) + 8;
        if (need > q->json_cap) {
                char *p = realloc(q->json, need);
                if (!p)
                        return -ENOMEM;
                q->json = p;
                q->json_cap = need;
        }
        char *j = q->json;
        size_t k = 0;
        j[k++] = '[';
        for (size_t i = 0; i < n; i++) {
                const audit_row *r = &rows[i];
                k += (size_t)sprintf(j + k, "%s[%d,%" PRId64 ",%" PRIu64 ",%d,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",",
                                     i ? "," : "", r->type, r->occurred_ms, r->actor_user_id, r->actor_role,
                                     r->subject_user_id, r->merchant_id, r->terminal_id, r->centre_id);
                k += json_str(j + k, r->peer);
                j[k++] = ',';
                k += json_str(j + k, r->request_id);
                j[k++] = ',';
                k += json_str(j + k, r->detail);
                j[k++] = ']';
        }
        j[k++] = ']';
        j[k] = '\0';
        if (!q->db && sb_db_open(&q->dbc, &q->db, err, err_n) < 0) {
                q->db = NULL;
                return -ENOTCONN;
        }
        sb_db_stmt *s;
        int r = sb_db_prepare(q->db,
                              "INSERT INTO audit_events (type, occurred_ms, actor_user_id, actor_role, subject_user_id,"
                              " merchant_id, terminal_id, centre_id, peer, request_id, detail)"
                              " SELECT j.t, j.o, j.a, j.r, j.s, j.m, j.te, j.c, j.p, j.q, LEFT(j.d, 200)"
                              " FROM JSON_TABLE(?, '$[*]' COLUMNS (ord FOR ORDINALITY, t INT PATH '$[0]',"
                              " o BIGINT PATH '$[1]', a BIGINT UNSIGNED PATH '$[2]', r INT PATH '$[3]',"
                              " s BIGINT UNSIGNED PATH '$[4]', m BIGINT UNSIGNED PATH '$[5]',"
                              " te BIGINT UNSIGNED PATH '$[6]', c BIGINT UNSIGNED PATH '$[7]',"
                              " p VARCHAR(64) PATH '$[8]', q VARCHAR(64) PATH '$[9]',"
                              " d VARCHAR(800) PATH '$[10]')) AS j ORDER BY j.ord",
                              &s);
        if (r == 0)
                r = sb_db_bind_strn(s, 0, j, k);
        if (r == 0)
                r = sb_db_execute(s);
        if (r < 0)
                snprintf(err, err_n, "%s", sb_db_errmsg(q->db));
        return r;
}

static void *writer_main(void *arg) {
        identity_audit_queue *q = arg;
        pthread_mutex_lock(&q->mu);
        for (;;) {
                while (q->n == 0 && !q->stop) {
                        q->want_flush = false;
                        pthread_cond_wait(&q->wake, &q->mu);
                }
                if (q->n == 0 && q->stop)
                        break;
                /* Let a batch gather, unless it is big already, someone waits for it, or we are stopping. */
                if (q->n < AUDIT_BATCH && !q->want_flush && !q->stop) {
                        struct timespec ts;
                        ts_after(&ts, q->flush_ms);
                        while (q->n < AUDIT_BATCH && !q->want_flush && !q->stop &&
                               pthread_cond_timedwait(&q->wake, &q->mu, &ts) == 0)
                                ;
                }
                size_t n = q->n;
                for (size_t i = 0; i < n; i++)
                        q->batch[i] = q->rows[(q->head + i) % AUDIT_QUEUE_MAX];
                q->head = (q->head + n) % AUDIT_QUEUE_MAX;
                q->n = 0;
                pthread_mutex_unlock(&q->mu);

                char err[256] = "";
                int r = write_rows(q, q->batch, n, err, sizeof err);
                if (r < 0) {
                        /* Once more on a fresh connection (a restarted server), then give the events up. */
                        sb_db_close(q->db);
                        q->db = NULL;
                        r = write_rows(q, q->batch, n, err, sizeof err);
                }
                if (r < 0)
                        sb_log_kv(SB_LOG_WARN, "identity", "audit events could not be written", "events",
                                  SB_LOG_INT((int64_t)n), "error", SB_LOG_STR(err), NULL);

                pthread_mutex_lock(&q->mu);
                q->done += n;
                pthread_cond_broadcast(&q->written);
        }
        pthread_mutex_unlock(&q->mu);
        return NULL;
}

int identity_audit_queue_start(const sb_db_config *dbc, int64_t flush_ms, identity_audit_queue **ret, char *err,
                               size_t err_n) {
        identity_audit_queue *q = calloc(1, sizeof *q);
        if (!q)
                return -ENOMEM;
        q->dbc = *dbc;
        q->flush_ms = flush_ms;
        q->rows = calloc(AUDIT_QUEUE_MAX, sizeof *q->rows);
        q->batch = calloc(AUDIT_QUEUE_MAX, sizeof *q->batch);
        if (!q->rows || !q->batch) {
                free(q->rows);
                free(q->batch);
                free(q);
                return -ENOMEM;
        }
        pthread_mutex_init(&q->mu, NULL);
        pthread_cond_init(&q->wake, NULL);
        pthread_cond_init(&q->written, NULL);
        int r = pthread_create(&q->thread, NULL, writer_main, q);
        if (r != 0) {
                snprintf(err, err_n, "cannot start the audit writer thread: %s", strerror(r));
                identity_audit_queue_stop(q);
                return -r;
        }
        q->started = true;
        *ret = q;
        return 0;
}

void identity_audit_queue_stop(identity_audit_queue *q) {
        if (!q)
                return;
        if (q->started) {
                pthread_mutex_lock(&q->mu);
                q->stop = true;
                pthread_cond_broadcast(&q->wake);
                pthread_mutex_unlock(&q->mu);
                pthread_join(q->thread, NULL); /* it writes what is queued first */
        }
        sb_db_close(q->db);
        pthread_mutex_destroy(&q->mu);
        pthread_cond_destroy(&q->wake);
        pthread_cond_destroy(&q->written);
        free(q->rows);
        free(q->batch);
        free(q->json);
        free(q);
}

bool identity_audit_queue_push(identity_audit_queue *q, int type, int64_t occurred_ms, uint64_t actor_user_id,
                               int actor_role, uint64_t subject_user_id, uint64_t merchant_id, uint64_t terminal_id,
                               uint64_t centre_id, const char *peer, const char *request_id, const char *detail) {
        pthread_mutex_lock(&q->mu);
        if (q->n == AUDIT_QUEUE_MAX || q->stop) {
                pthread_mutex_unlock(&q->mu);
                return false;
        }
        audit_row *r = &q->rows[(q->head + q->n) % AUDIT_QUEUE_MAX];
        r->type = type;
        r->occurred_ms = occurred_ms;
        r->actor_user_id = actor_user_id;
        r->actor_role = actor_role;
        r->subject_user_id = subject_user_id;
        r->merchant_id = merchant_id;
        r->terminal_id = terminal_id;
        r->centre_id = centre_id;
        snprintf(r->peer, sizeof r->peer, "%s", peer);
        snprintf(r->request_id, sizeof r->request_id, "%s", request_id);
        snprintf(r->detail, sizeof r->detail, "%s", detail);
        q->n++;
        q->queued++;
        if (q->n == 1 || q->n >= AUDIT_BATCH)
                pthread_cond_signal(&q->wake);
        pthread_mutex_unlock(&q->mu);
        return true;
}

void identity_audit_queue_sync(identity_audit_queue *q) {
        if (!q)
                return;
        pthread_mutex_lock(&q->mu);
        uint64_t target = q->queued;
        if (q->done < target) {
                q->want_flush = true;
                pthread_cond_broadcast(&q->wake);
                struct timespec ts;
                ts_after(&ts, AUDIT_SYNC_WAIT_MS);
                while (q->done < target && pthread_cond_timedwait(&q->written, &q->mu, &ts) == 0)
                        ;
        }
        pthread_mutex_unlock(&q->mu);
}
