/* sb_rpc: a unary gRPC server and client on the gRPC C core (libgrpc 1.51, core 29).
 *
 * How the server works. Every method is registered with the core and a few requests are armed for each of them
 * (grpc_server_request_registered_call) plus a few for unregistered paths (grpc_server_request_call). Worker
 * threads all poll one completion queue. When an armed request completes, the worker re-arms one request for the
 * same method first (so the method is never left without one), then runs the handler to the end, packs the
 * response and starts one batch that sends everything and waits for the close. When that batch completes, the
 * call's memory is released. The tags on the queue are small structs whose first member says what they are. */
#include "rpc.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>
#pragma GCC diagnostic pop

#include "grpc/health/v1/health.pb-c.h"

#define DEFAULT_MAX_BYTES ((size_t)4 << 20)
#define ARMED_UNKNOWN 4
#define MAX_WORKERS 256
#define MAX_METHODS 512
#define REQUEST_ID_MAX 64

enum tag_kind {
        TAG_NEW_CALL,     /* an armed request of a registered method became a call */
        TAG_NEW_UNKNOWN,  /* an armed request for unregistered paths became a call */
        TAG_REPLY,        /* the reply batch of a call completed */
        TAG_WATCH_SEND,   /* a send batch of a health watcher completed */
        TAG_WATCH_CLOSE,  /* the close of a health watcher's call arrived */
        TAG_SHUTDOWN,     /* grpc_server_shutdown_and_notify finished */
};

struct tag {
        enum tag_kind kind;
};

struct method_reg {
        char *path;
        const ProtobufCMethodDescriptor *md;
        sb_rpc_handler fn;        /* NULL: answered UNIMPLEMENTED */
        void *service_data;
        void *core_handle;        /* from grpc_server_register_method */
        bool is_watch;            /* grpc.health.v1.Health/Watch: server streaming, handled here */
};

struct armed {
        struct tag tag;           /* TAG_NEW_CALL or TAG_NEW_UNKNOWN */
        struct method_reg *m;     /* NULL for unknown paths */
        grpc_call *call;
        gpr_timespec deadline;
        grpc_metadata_array md;
        grpc_byte_buffer *payload;
        grpc_call_details details; /* unknown paths only */
};

struct chunk {
        struct chunk *next;
        max_align_t data[];
};

struct sb_call {
        struct tag tag;           /* TAG_REPLY */
        sb_rpc_server *srv;
        struct method_reg *m;
        char *path;
        grpc_call *call;
        gpr_timespec deadline;
        grpc_metadata_array md;
        grpc_byte_buffer *resp_bb;
        grpc_slice details;
        int cancelled;
        sb_status code;
        char message[SB_RPC_MESSAGE_MAX];
        const char *reason;       /* static; sent as trailing metadata "sharebuy-reason" on failure */
        grpc_metadata trailer;
        const char *bearer;
        const char *request_id;
        char *peer;               /* gpr_malloc'd by the core */
        struct chunk *chunks;
        struct timespec start;
};

struct watcher {
        struct tag send_tag;      /* TAG_WATCH_SEND */
        struct tag close_tag;     /* TAG_WATCH_CLOSE */
        grpc_call *call;
        grpc_metadata_array md;
        grpc_byte_buffer *bbs[2];
        grpc_slice details;
        bool has_details;
        int cancelled;
        int pending;              /* batches not yet completed; freed at 0 */
        bool finished;            /* the status was sent */
        char service[128];
        struct watcher *next;
};

struct sb_rpc_server {
        sb_rpc_server_config cfg;
        char *bind;
        grpc_server *server;
        grpc_completion_queue *cq;
        struct method_reg *methods;
        size_t n_methods;
        char **service_names;
        size_t n_services;
        int port;
        int armed_per_method;
        pthread_t *threads;
        int n_threads;

        pthread_mutex_t mu;       /* guards the fields below */
        pthread_cond_t cond;
        bool started;
        bool serving;
        bool shutting_down;       /* no request is armed once this is set */
        bool shutdown_done;
        bool stopped;
        int in_flight;            /* calls taken and not yet closed (replies and watchers) */
        struct watcher *watchers;
        struct tag shutdown_tag;  /* TAG_SHUTDOWN */
};

static _Thread_local void *tl_worker_state;
static unsigned process_id;  /* for request ids; set by sb_rpc_init() */
static atomic_uint_fast64_t request_counter;

static const char *const status_names[] = {
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
        "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
        "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
};

const char *sb_status_name(int code) {
        if (code < 0 || (size_t)code >= sizeof status_names / sizeof status_names[0])
                return "UNKNOWN_STATUS";
        return status_names[code];
}

static void *xcalloc(size_t n, size_t size) {
        void *p = calloc(n, size);
        if (!p)
                abort();
        return p;
}

static char *xstrdup(const char *s) {
        char *p = strdup(s);
        if (!p)
                abort();
        return p;
}

static void set_err(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t n, const char *fmt, ...) {
        if (!err || n == 0)
                return;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, n, fmt, ap);
        va_end(ap);
}

/* Cut a NUL-terminated string so that it does not end inside a UTF-8 sequence (after truncation by snprintf). */
static void utf8_trim_tail(char *s) {
        size_t len = strlen(s);
        if (len == 0)
                return;
        size_t j = len - 1;
        while (j > 0 && ((unsigned char)s[j] & 0xC0) == 0x80)
                j--;
        unsigned char lead = (unsigned char)s[j];
        size_t want = lead < 0x80 ? 1 : (lead & 0xE0) == 0xC0 ? 2 : (lead & 0xF0) == 0xE0 ? 3 : 4;
        if (j + want > len)
                s[j] = '\0';
}

static int64_t elapsed_us(const struct timespec *since) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        return (int64_t)(now.tv_sec - since->tv_sec) * 1000000 + (now.tv_nsec - since->tv_nsec) / 1000;
}

static void sleep_ms(int64_t ms) {
        if (ms <= 0)
                return;
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static char *read_file(const char *path, char *err, size_t err_n) {
        FILE *f = fopen(path, "rb");
        if (!f) {
                set_err(err, err_n, "cannot open %s: %s", path, strerror(errno));
                return NULL;
        }
        size_t cap = 4096, len = 0;
        char *buf = xcalloc(1, cap);
        for (;;) {
                if (len + 1 >= cap) {
                        if (cap >= ((size_t)1 << 20)) {
                                set_err(err, err_n, "%s is larger than 1 MiB: not a PEM file", path);
                                fclose(f);
                                free(buf);
                                return NULL;
                        }
                        cap *= 2;
                        char *nb = realloc(buf, cap);
                        if (!nb)
                                abort();
                        buf = nb;
                }
                size_t got = fread(buf + len, 1, cap - len - 1, f);
                if (got == 0)
                        break;
                len += got;
        }
        bool bad = ferror(f);
        fclose(f);
        if (bad) {
                set_err(err, err_n, "cannot read %s", path);
                free(buf);
                return NULL;
        }
        buf[len] = '\0';
        return buf;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Process-wide */

int sb_rpc_init(void) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        process_id = (unsigned)getpid();
        grpc_init();
        return 0;
}

static void (*core_log_fn)(int, const char *, int, const char *);

static void core_log_bridge(gpr_log_func_args *args) {
        void (*fn)(int, const char *, int, const char *) = core_log_fn;
        if (fn)
                fn((int)args->severity, args->file, args->line, args->message);
        else
                fprintf(stderr, "grpc %s %s:%d: %s\n", gpr_log_severity_string(args->severity), args->file,
                        args->line, args->message);
}

void sb_rpc_set_core_log(void (*fn)(int severity, const char *file, int line, const char *message)) {
        core_log_fn = fn;
        gpr_set_log_function(core_log_bridge);
}

void sb_rpc_shutdown(void) {
        grpc_shutdown();
}

int sb_rpc_wait_signal(void) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGHUP);
        int sig = 0;
        while (sigwait(&set, &sig) != 0)
                ;
        return sig;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Call context */

sb_status sb_call_fail(sb_call *call, sb_status code, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(call->message, sizeof call->message, fmt, ap);
        va_end(ap);
        utf8_trim_tail(call->message);
        call->code = code;
        return code;
}

sb_status sb_call_fail_reason(sb_call *call, sb_status code, const char *reason, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(call->message, sizeof call->message, fmt, ap);
        va_end(ap);
        utf8_trim_tail(call->message);
        call->code = code;
        call->reason = reason;
        return code;
}

const char *sb_call_bearer(const sb_call *call) {
        return call->bearer;
}

const char *sb_call_request_id(const sb_call *call) {
        return call->request_id;
}

const char *sb_call_peer(const sb_call *call) {
        /* Asked for lazily: the core allocates the string, and most calls never need it. */
        sb_call *c = (sb_call *)call;
        if (!c->peer && c->call)
                c->peer = grpc_call_get_peer(c->call);
        return c->peer ? c->peer : "unknown";
}

const char *sb_call_method(const sb_call *call) {
        return call->path;
}

void *sb_call_worker(const sb_call *call) {
        (void)call;
        return tl_worker_state;
}

void *sb_call_service_data(const sb_call *call) {
        return call->m ? call->m->service_data : NULL;
}

int64_t sb_call_remaining_ms(const sb_call *call) {
        if (gpr_time_cmp(call->deadline, gpr_inf_future(call->deadline.clock_type)) == 0)
                return INT64_MAX;
        gpr_timespec left = gpr_time_sub(call->deadline, gpr_now(call->deadline.clock_type));
        int64_t ms = (int64_t)left.tv_sec * 1000 + left.tv_nsec / 1000000;
        return ms < 0 ? 0 : ms;
}

void *sb_call_alloc(sb_call *call, size_t size) {
        if (size > SIZE_MAX - sizeof(struct chunk))
                abort();
        struct chunk *c = xcalloc(1, sizeof *c + size);
        c->next = call->chunks;
        call->chunks = c;
        return c->data;
}

char *sb_call_strdup(sb_call *call, const char *s) {
        size_t n = strlen(s) + 1;
        char *p = sb_call_alloc(call, n);
        memcpy(p, s, n);
        return p;
}

char *sb_call_printf(sb_call *call, const char *fmt, ...) {
        char small[256];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(small, sizeof small, fmt, ap);
        va_end(ap);
        if (n < 0)
                abort();
        char *p = sb_call_alloc(call, (size_t)n + 1);
        if ((size_t)n < sizeof small) {
                memcpy(p, small, (size_t)n + 1);
                return p;
        }
        va_start(ap, fmt);
        vsnprintf(p, (size_t)n + 1, fmt, ap);
        va_end(ap);
        return p;
}

static bool slice_eq_str(grpc_slice s, const char *str) {
        size_t n = strlen(str);
        return GRPC_SLICE_LENGTH(s) == n && memcmp(GRPC_SLICE_START_PTR(s), str, n) == 0;
}

static const char *md_lookup(sb_call *call, const char *key) {
        for (size_t i = 0; i < call->md.count; i++) {
                if (!slice_eq_str(call->md.metadata[i].key, key))
                        continue;
                grpc_slice v = call->md.metadata[i].value;
                size_t n = GRPC_SLICE_LENGTH(v);
                char *s = sb_call_alloc(call, n + 1);
                memcpy(s, GRPC_SLICE_START_PTR(v), n);
                return s;
        }
        return NULL;
}

const char *sb_call_metadata(const sb_call *call, const char *key) {
        size_t kl = strlen(key);
        if (kl >= 4 && strcmp(key + kl - 4, "-bin") == 0)
                return NULL;
        return md_lookup((sb_call *)call, key);
}

static bool request_id_ok(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > REQUEST_ID_MAX)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                      c == '_' || c == '.' || c == ':'))
                        return false;
        }
        return true;
}

static void call_read_metadata(sb_call *call) {
        const char *auth = md_lookup(call, "authorization");
        if (auth && strncasecmp(auth, "Bearer ", 7) == 0) {
                const char *t = auth + 7;
                while (*t == ' ')
                        t++;
                if (*t)
                        call->bearer = t;
        }
        const char *rid = md_lookup(call, "x-request-id");
        if (rid && request_id_ok(rid)) {
                call->request_id = rid;
        } else {
                uint64_t n = atomic_fetch_add(&request_counter, 1) + 1;
                char *id = sb_call_alloc(call, 32);
                snprintf(id, 32, "%08x-%012llx", process_id, (unsigned long long)n);
                call->request_id = id;
        }
}

static void call_free(sb_call *call) {
        struct chunk *c = call->chunks;
        while (c) {
                struct chunk *next = c->next;
                free(c);
                c = next;
        }
        if (call->call)
                grpc_call_unref(call->call);
        grpc_metadata_array_destroy(&call->md);
        if (call->resp_bb)
                grpc_byte_buffer_destroy(call->resp_bb);
        grpc_slice_unref(call->details);
        if (call->peer)
                gpr_free(call->peer);
        free(call->path);
        free(call);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Server: arming requests */

/* Arm one request for method m (NULL: the unknown-path catcher). Never after shutdown began. */
static void arm(sb_rpc_server *srv, struct method_reg *m) {
        struct armed *a = xcalloc(1, sizeof *a);
        a->m = m;
        grpc_metadata_array_init(&a->md);
        pthread_mutex_lock(&srv->mu);
        if (srv->shutting_down) {
                pthread_mutex_unlock(&srv->mu);
                grpc_metadata_array_destroy(&a->md);
                free(a);
                return;
        }
        grpc_call_error e;
        if (m) {
                a->tag.kind = TAG_NEW_CALL;
                e = grpc_server_request_registered_call(srv->server, m->core_handle, &a->call, &a->deadline, &a->md,
                                                        &a->payload, srv->cq, srv->cq, &a->tag);
        } else {
                a->tag.kind = TAG_NEW_UNKNOWN;
                grpc_call_details_init(&a->details);
                e = grpc_server_request_call(srv->server, &a->call, &a->details, &a->md, srv->cq, srv->cq, &a->tag);
        }
        pthread_mutex_unlock(&srv->mu);
        /* An error here is a programming error (wrong queue or method handle), not an operating condition. */
        if (e != GRPC_CALL_OK)
                abort();
}

static void armed_free(struct armed *a) {
        if (a->call)
                grpc_call_unref(a->call);
        grpc_metadata_array_destroy(&a->md);
        if (a->payload)
                grpc_byte_buffer_destroy(a->payload);
        if (!a->m)
                grpc_call_details_destroy(&a->details);
        free(a);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Server: replying */

/* A call this server took has closed: the stop sequence waits for the count to reach zero. */
static void call_closed(sb_rpc_server *srv) {
        pthread_mutex_lock(&srv->mu);
        if (--srv->in_flight == 0)
                pthread_cond_broadcast(&srv->cond);
        pthread_mutex_unlock(&srv->mu);
}

static void reply(sb_call *call) {
        sb_rpc_server *srv = call->srv;
        if (call->code != SB_OK && call->message[0] == '\0')
                snprintf(call->message, sizeof call->message, "%s", sb_status_name((int)call->code));
        if (call->code == SB_OK)
                call->message[0] = '\0';
        call->details = grpc_slice_from_copied_string(call->message);

        grpc_op ops[4];
        memset(ops, 0, sizeof ops);
        size_t n = 0;
        ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
        n++;
        if (call->code == SB_OK && call->resp_bb) {
                ops[n].op = GRPC_OP_SEND_MESSAGE;
                ops[n].data.send_message.send_message = call->resp_bb;
                n++;
        }
        ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
        if (call->code != SB_OK && call->reason) {
                call->trailer.key = grpc_slice_from_static_string("sharebuy-reason");
                call->trailer.value = grpc_slice_from_static_string(call->reason);
                ops[n].data.send_status_from_server.trailing_metadata_count = 1;
                ops[n].data.send_status_from_server.trailing_metadata = &call->trailer;
        }
        ops[n].data.send_status_from_server.status = (grpc_status_code)call->code;
        ops[n].data.send_status_from_server.status_details = &call->details;
        n++;
        ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
        ops[n].data.recv_close_on_server.cancelled = &call->cancelled;
        n++;

        if (srv->cfg.done_hook)
                srv->cfg.done_hook(srv->cfg.done_arg, call, call->path, call->code, call->message,
                                   elapsed_us(&call->start));

        call->tag.kind = TAG_REPLY;
        grpc_call_error e = grpc_call_start_batch(call->call, ops, n, &call->tag, NULL);
        if (e != GRPC_CALL_OK) {
                call_free(call);  /* the call is already dead (cancelled); nothing will complete */
                call_closed(srv);
        }
}

static sb_call *call_new(sb_rpc_server *srv, struct armed *a) {
        sb_call *call = xcalloc(1, sizeof *call);
        clock_gettime(CLOCK_MONOTONIC, &call->start);
        call->srv = srv;
        call->m = a->m;
        call->call = a->call;
        a->call = NULL;
        call->md = a->md;
        grpc_metadata_array_init(&a->md);
        call->details = grpc_empty_slice();
        if (a->m) {
                call->deadline = a->deadline;
                call->path = xstrdup(a->m->path);
        } else {
                call->deadline = a->details.deadline;
                size_t n = GRPC_SLICE_LENGTH(a->details.method);
                call->path = xcalloc(1, n + 1);
                memcpy(call->path, GRPC_SLICE_START_PTR(a->details.method), n);
        }
        call_read_metadata(call);
        return call;
}

static ProtobufCMessage *unpack_payload(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *desc) {
        grpc_byte_buffer_reader reader;
        if (!grpc_byte_buffer_reader_init(&reader, bb))
                return NULL;
        grpc_slice s = grpc_byte_buffer_reader_readall(&reader);
        grpc_byte_buffer_reader_destroy(&reader);
        ProtobufCMessage *msg = protobuf_c_message_unpack(desc, NULL, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));
        grpc_slice_unref(s);
        return msg;
}

static grpc_byte_buffer *pack_message(const ProtobufCMessage *msg) {
        size_t len = protobuf_c_message_get_packed_size(msg);
        grpc_slice s = grpc_slice_malloc(len);
        protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(s));
        grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
        grpc_slice_unref(s);
        return bb;
}

static void handle_watch(sb_rpc_server *srv, struct armed *a);

static void on_new_call(sb_rpc_server *srv, struct armed *a, bool ok) {
        if (!ok) {
                /* The server is shutting down: the armed request was withdrawn. */
                armed_free(a);
                return;
        }
        arm(srv, a->m);
        pthread_mutex_lock(&srv->mu);
        srv->in_flight++;
        pthread_mutex_unlock(&srv->mu);
        if (a->m && a->m->is_watch) {
                handle_watch(srv, a);
                return;
        }
        sb_call *call = call_new(srv, a);
        grpc_byte_buffer *payload = a->payload;
        a->payload = NULL;
        armed_free(a);

        struct method_reg *m = call->m;
        if (!m) {
                sb_call_fail(call, SB_UNIMPLEMENTED, "unknown method %s: this server does not serve it", call->path);
        } else if (!m->fn) {
                sb_call_fail(call, SB_UNIMPLEMENTED, "%s is part of the v1 API but not implemented by this release",
                             call->path);
        } else if (sb_call_remaining_ms(call) == 0) {
                sb_call_fail(call, SB_DEADLINE_EXCEEDED, "the deadline passed before %s could start", call->path);
        } else if (!payload) {
                sb_call_fail(call, SB_INVALID_ARGUMENT, "the request carries no message");
        } else {
                ProtobufCMessage *req = unpack_payload(payload, m->md->input);
                if (!req) {
                        sb_call_fail(call, SB_INVALID_ARGUMENT, "the request is not a valid %s message",
                                     m->md->input->name);
                } else {
                        ProtobufCMessage *resp = xcalloc(1, m->md->output->sizeof_message);
                        protobuf_c_message_init(m->md->output, resp);
                        call->code = SB_OK;
                        sb_status code = m->fn(call, req, resp);
                        if (code != SB_OK && call->code != code) {
                                /* The handler returned a status without sb_call_fail(): keep the code. */
                                call->code = code;
                                call->message[0] = '\0';
                                call->reason = NULL;
                        }
                        if (code == SB_OK) {
                                size_t max = srv->cfg.max_response_bytes;
                                size_t len = protobuf_c_message_get_packed_size(resp);
                                if (len > max)
                                        sb_call_fail(call, SB_RESOURCE_EXHAUSTED,
                                                     "the response (%zu bytes) exceeds this server's limit of %zu "
                                                     "bytes; ask for a smaller page",
                                                     len, max);
                                else
                                        call->resp_bb = pack_message(resp);
                        }
                        /* The packed copy is all the reply needs: the handler's memory can go now. Messages the
                         * handler built are owned by it (arena or static), so free only the top struct. */
                        free(resp);
                        protobuf_c_message_free_unpacked(req, NULL);
                }
        }
        if (payload)
                grpc_byte_buffer_destroy(payload);
        reply(call);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Health */

static bool serves_service(sb_rpc_server *srv, const char *name) {
        if (name[0] == '\0')
                return true;
        for (size_t i = 0; i < srv->n_services; i++)
                if (strcmp(srv->service_names[i], name) == 0)
                        return true;
        return false;
}

static sb_status health_check(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Grpc__Health__V1__HealthCheckRequest *req = (const Grpc__Health__V1__HealthCheckRequest *)req_;
        Grpc__Health__V1__HealthCheckResponse *resp = (Grpc__Health__V1__HealthCheckResponse *)resp_;
        sb_rpc_server *srv = sb_call_service_data(call);
        const char *name = req->service ? req->service : "";
        if (!serves_service(srv, name))
                return sb_call_fail(call, SB_NOT_FOUND, "this server does not serve %.120s", name);
        pthread_mutex_lock(&srv->mu);
        bool serving = srv->serving;
        pthread_mutex_unlock(&srv->mu);
        resp->status = serving ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                               : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
        return SB_OK;
}

static grpc_byte_buffer *health_message(int status) {
        Grpc__Health__V1__HealthCheckResponse r = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
        r.status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)status;
        return pack_message(&r.base);
}

static int watcher_status(sb_rpc_server *srv, struct watcher *w) {
        if (!serves_service(srv, w->service))
                return GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN;
        return srv->serving ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                            : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
}

static void watcher_free(struct watcher *w) {
        grpc_call_unref(w->call);
        grpc_metadata_array_destroy(&w->md);
        for (int i = 0; i < 2; i++)
                if (w->bbs[i])
                        grpc_byte_buffer_destroy(w->bbs[i]);
        if (w->has_details)
                grpc_slice_unref(w->details);
        free(w);
}

/* Send the final NOT_SERVING message and an OK status to a watcher. Called with srv->mu held. */
static void watcher_finish_locked(sb_rpc_server *srv, struct watcher *w) {
        if (w->finished)
                return;
        w->finished = true;
        w->bbs[1] = health_message(watcher_status(srv, w));
        w->details = grpc_slice_from_static_string("the server is shutting down");
        w->has_details = true;
        grpc_op ops[2];
        memset(ops, 0, sizeof ops);
        ops[0].op = GRPC_OP_SEND_MESSAGE;
        ops[0].data.send_message.send_message = w->bbs[1];
        ops[1].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
        ops[1].data.send_status_from_server.status = GRPC_STATUS_OK;
        ops[1].data.send_status_from_server.status_details = &w->details;
        w->pending++;
        if (grpc_call_start_batch(w->call, ops, 2, &w->send_tag, NULL) == GRPC_CALL_OK)
                return;
        /* The first message is still on its way: end the stream with the status alone. */
        if (grpc_call_start_batch(w->call, ops + 1, 1, &w->send_tag, NULL) != GRPC_CALL_OK)
                w->pending--;
}

static void handle_watch(sb_rpc_server *srv, struct armed *a) {
        struct watcher *w = xcalloc(1, sizeof *w);
        w->send_tag.kind = TAG_WATCH_SEND;
        w->close_tag.kind = TAG_WATCH_CLOSE;
        w->call = a->call;
        a->call = NULL;
        w->md = a->md;
        grpc_metadata_array_init(&a->md);
        if (a->payload) {
                Grpc__Health__V1__HealthCheckRequest *req = (Grpc__Health__V1__HealthCheckRequest *)unpack_payload(
                        a->payload, &grpc__health__v1__health_check_request__descriptor);
                if (req) {
                        snprintf(w->service, sizeof w->service, "%s", req->service ? req->service : "");
                        protobuf_c_message_free_unpacked(&req->base, NULL);
                }
        }
        armed_free(a);

        pthread_mutex_lock(&srv->mu);
        grpc_op ops[2];
        memset(ops, 0, sizeof ops);
        ops[0].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
        ops[0].data.recv_close_on_server.cancelled = &w->cancelled;
        if (grpc_call_start_batch(w->call, ops, 1, &w->close_tag, NULL) != GRPC_CALL_OK) {
                pthread_mutex_unlock(&srv->mu);
                watcher_free(w);
                call_closed(srv);
                return;
        }
        w->pending = 1;
        w->bbs[0] = health_message(watcher_status(srv, w));
        memset(ops, 0, sizeof ops);
        ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
        ops[1].op = GRPC_OP_SEND_MESSAGE;
        ops[1].data.send_message.send_message = w->bbs[0];
        if (grpc_call_start_batch(w->call, ops, 2, &w->send_tag, NULL) == GRPC_CALL_OK)
                w->pending++;
        w->next = srv->watchers;
        srv->watchers = w;
        if (!srv->serving)
                watcher_finish_locked(srv, w);
        pthread_mutex_unlock(&srv->mu);
}

static void on_watch_event(sb_rpc_server *srv, struct watcher *w) {
        pthread_mutex_lock(&srv->mu);
        if (--w->pending > 0) {
                pthread_mutex_unlock(&srv->mu);
                return;
        }
        for (struct watcher **p = &srv->watchers; *p; p = &(*p)->next) {
                if (*p == w) {
                        *p = w->next;
                        break;
                }
        }
        pthread_mutex_unlock(&srv->mu);
        watcher_free(w);
        call_closed(srv);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Server: workers and lifecycle */

#define CONTAINER_OF(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

struct worker_arg {
        sb_rpc_server *srv;
        int index;
};

static void *worker_main(void *arg_) {
        struct worker_arg *arg = arg_;
        sb_rpc_server *srv = arg->srv;
        int index = arg->index;
        free(arg);
        if (srv->cfg.worker_init)
                tl_worker_state = srv->cfg.worker_init(srv->cfg.worker_arg, index);
        for (;;) {
                grpc_event ev = grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
                if (ev.type == GRPC_QUEUE_SHUTDOWN)
                        break;
                if (ev.type != GRPC_OP_COMPLETE)
                        continue;
                struct tag *t = ev.tag;
                switch (t->kind) {
                case TAG_NEW_CALL:
                case TAG_NEW_UNKNOWN:
                        on_new_call(srv, (struct armed *)(void *)t, ev.success != 0);
                        break;
                case TAG_REPLY:
                        call_free((sb_call *)(void *)t);
                        call_closed(srv);
                        break;
                case TAG_WATCH_SEND:
                        on_watch_event(srv, CONTAINER_OF(t, struct watcher, send_tag));
                        break;
                case TAG_WATCH_CLOSE:
                        on_watch_event(srv, CONTAINER_OF(t, struct watcher, close_tag));
                        break;
                case TAG_SHUTDOWN:
                        pthread_mutex_lock(&srv->mu);
                        srv->shutdown_done = true;
                        pthread_cond_broadcast(&srv->cond);
                        pthread_mutex_unlock(&srv->mu);
                        break;
                }
        }
        if (srv->cfg.worker_fini)
                srv->cfg.worker_fini(srv->cfg.worker_arg, tl_worker_state);
        tl_worker_state = NULL;
        return NULL;
}

int sb_rpc_server_new(const sb_rpc_server_config *cfg, sb_rpc_server **ret, char *err, size_t err_n) {
        if (!cfg || !cfg->bind || !ret) {
                set_err(err, err_n, "the server needs an address to bind");
                return -EINVAL;
        }
        if (cfg->workers < 1 || cfg->workers > MAX_WORKERS) {
                set_err(err, err_n, "workers must be between 1 and %d, not %d", MAX_WORKERS, cfg->workers);
                return -EINVAL;
        }
        if ((cfg->tls_cert_path == NULL) != (cfg->tls_key_path == NULL)) {
                set_err(err, err_n, "TLS needs both a certificate and a key file");
                return -EINVAL;
        }
        sb_rpc_server *srv = xcalloc(1, sizeof *srv);
        srv->cfg = *cfg;
        srv->bind = xstrdup(cfg->bind);
        srv->cfg.bind = srv->bind;
        if (srv->cfg.max_request_bytes == 0)
                srv->cfg.max_request_bytes = DEFAULT_MAX_BYTES;
        if (srv->cfg.max_response_bytes == 0)
                srv->cfg.max_response_bytes = DEFAULT_MAX_BYTES;
        srv->armed_per_method = cfg->workers < 4 ? 4 : cfg->workers > 16 ? 16 : cfg->workers;
        pthread_mutex_init(&srv->mu, NULL);
        pthread_cond_init(&srv->cond, NULL);
        srv->shutdown_tag.kind = TAG_SHUTDOWN;
        srv->methods = xcalloc(MAX_METHODS, sizeof *srv->methods);

        grpc_arg args[3];
        memset(args, 0, sizeof args);
        args[0].type = GRPC_ARG_INTEGER;
        args[0].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
        args[0].value.integer = srv->cfg.max_request_bytes > INT32_MAX ? INT32_MAX : (int)srv->cfg.max_request_bytes;
        args[1].type = GRPC_ARG_INTEGER;
        args[1].key = (char *)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
        args[1].value.integer =
                srv->cfg.max_response_bytes > INT32_MAX ? INT32_MAX : (int)srv->cfg.max_response_bytes;
        /* The core sets SO_REUSEPORT by default: two services configured on one port would then share it silently.
         * A port conflict must be a start-up error instead. */
        args[2].type = GRPC_ARG_INTEGER;
        args[2].key = (char *)GRPC_ARG_ALLOW_REUSEPORT;
        args[2].value.integer = 0;
        grpc_channel_args chargs = { .num_args = 3, .args = args };
        srv->server = grpc_server_create(&chargs, NULL);
        srv->cq = grpc_completion_queue_create_for_next(NULL);
        grpc_server_register_completion_queue(srv->server, srv->cq, NULL);

        static const sb_rpc_method health_methods[] = { { "Check", health_check } };
        int r = sb_rpc_server_add_service(srv, &grpc__health__v1__health__descriptor, health_methods, 1, srv);
        if (r < 0)
                abort();
        *ret = srv;
        return 0;
}

int sb_rpc_server_add_service(sb_rpc_server *srv, const ProtobufCServiceDescriptor *desc,
                              const sb_rpc_method *methods, size_t n_methods, void *service_data) {
        if (srv->started)
                return -EBUSY;
        for (size_t i = 0; i < n_methods; i++) {
                bool found = false;
                for (unsigned j = 0; j < desc->n_methods; j++)
                        found = found || strcmp(desc->methods[j].name, methods[i].name) == 0;
                if (!found)
                        return -EINVAL;
        }
        if (srv->n_methods + desc->n_methods > MAX_METHODS)
                return -E2BIG;
        bool is_health = desc == &grpc__health__v1__health__descriptor;
        for (unsigned j = 0; j < desc->n_methods; j++) {
                struct method_reg *m = &srv->methods[srv->n_methods++];
                size_t n = strlen(desc->name) + strlen(desc->methods[j].name) + 3;
                m->path = xcalloc(1, n);
                snprintf(m->path, n, "/%s/%s", desc->name, desc->methods[j].name);
                m->md = &desc->methods[j];
                m->service_data = service_data;
                m->is_watch = is_health && strcmp(desc->methods[j].name, "Watch") == 0;
                for (size_t i = 0; i < n_methods; i++)
                        if (strcmp(methods[i].name, desc->methods[j].name) == 0)
                                m->fn = methods[i].fn;
                m->core_handle = grpc_server_register_method(srv->server, m->path, NULL,
                                                             GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
        }
        char **names = realloc(srv->service_names, (srv->n_services + 1) * sizeof *names);
        if (!names)
                abort();
        srv->service_names = names;
        srv->service_names[srv->n_services++] = xstrdup(desc->name);
        return 0;
}

static grpc_server_credentials *server_credentials(const sb_rpc_server_config *cfg, char *err, size_t err_n) {
        if (!cfg->tls_cert_path)
                return grpc_insecure_server_credentials_create();
        char *cert = read_file(cfg->tls_cert_path, err, err_n);
        char *key = cert ? read_file(cfg->tls_key_path, err, err_n) : NULL;
        char *ca = key && cfg->tls_client_ca_path ? read_file(cfg->tls_client_ca_path, err, err_n) : NULL;
        grpc_server_credentials *creds = NULL;
        if (cert && key && (ca || !cfg->tls_client_ca_path)) {
                grpc_ssl_pem_key_cert_pair pair = { .private_key = key, .cert_chain = cert };
                creds = grpc_ssl_server_credentials_create_ex(
                        ca, &pair, 1,
                        ca ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                           : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
                        NULL);
                if (!creds)
                        set_err(err, err_n, "the TLS certificate or key is not usable");
        }
        free(cert);
        if (key)
                explicit_bzero(key, strlen(key));
        free(key);
        free(ca);
        return creds;
}

int sb_rpc_server_start(sb_rpc_server *srv, char *err, size_t err_n) {
        if (srv->started)
                return -EALREADY;
        grpc_server_credentials *creds = server_credentials(&srv->cfg, err, err_n);
        if (!creds)
                return -EINVAL;
        srv->port = grpc_server_add_http2_port(srv->server, srv->bind, creds);
        grpc_server_credentials_release(creds);
        if (srv->port <= 0) {
                set_err(err, err_n, "cannot listen on %s (address in use or not valid)", srv->bind);
                srv->port = 0;
                return -EADDRINUSE;
        }
        grpc_server_start(srv->server);
        srv->started = true;
        srv->serving = true;
        for (size_t i = 0; i < srv->n_methods; i++)
                for (int k = 0; k < srv->armed_per_method; k++)
                        arm(srv, &srv->methods[i]);
        for (int k = 0; k < ARMED_UNKNOWN; k++)
                arm(srv, NULL);
        srv->threads = xcalloc((size_t)srv->cfg.workers, sizeof *srv->threads);
        for (int i = 0; i < srv->cfg.workers; i++) {
                struct worker_arg *wa = xcalloc(1, sizeof *wa);
                wa->srv = srv;
                wa->index = i;
                int r = pthread_create(&srv->threads[i], NULL, worker_main, wa);
                if (r != 0) {
                        free(wa);
                        set_err(err, err_n, "cannot start worker threads: %s", strerror(r));
                        srv->n_threads = i;
                        sb_rpc_server_stop(srv);
                        return -r;
                }
                srv->n_threads = i + 1;
        }
        return 0;
}

int sb_rpc_server_port(const sb_rpc_server *srv) {
        return srv->port;
}

void sb_rpc_server_stop(sb_rpc_server *srv) {
        pthread_mutex_lock(&srv->mu);
        if (!srv->started || srv->stopped) {
                pthread_mutex_unlock(&srv->mu);
                return;
        }
        srv->stopped = true;
        srv->serving = false;
        for (struct watcher *w = srv->watchers; w; w = w->next)
                watcher_finish_locked(srv, w);
        pthread_mutex_unlock(&srv->mu);

        /* Load balancers and watchers see NOT_SERVING while calls are still accepted. */
        sleep_ms(srv->cfg.drain_ms);

        pthread_mutex_lock(&srv->mu);
        srv->shutting_down = true;
        pthread_mutex_unlock(&srv->mu);
        grpc_server_shutdown_and_notify(srv->server, srv->cq, &srv->shutdown_tag);

        /* The core completes the shutdown only when every connection is gone, and idle client connections can
         * take seconds to close. What we promise is narrower: calls already taken finish. So wait (at most
         * grace_ms) for those, then cancel whatever is left, which also lets the core drop idle connections. */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        int64_t grace = srv->cfg.grace_ms > 0 ? srv->cfg.grace_ms : 0;
        until.tv_sec += grace / 1000;
        until.tv_nsec += (grace % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000;
        }
        pthread_mutex_lock(&srv->mu);
        while (!srv->shutdown_done && srv->in_flight > 0 && srv->n_threads > 0) {
                if (pthread_cond_timedwait(&srv->cond, &srv->mu, &until) == ETIMEDOUT)
                        break;
        }
        pthread_mutex_unlock(&srv->mu);
        grpc_server_cancel_all_calls(srv->server);
        pthread_mutex_lock(&srv->mu);
        while (!srv->shutdown_done && srv->n_threads > 0)
                pthread_cond_wait(&srv->cond, &srv->mu);
        pthread_mutex_unlock(&srv->mu);
        if (srv->n_threads == 0) {
                /* No worker ever ran (start failed): drain the queue here. */
                for (;;) {
                        grpc_event ev = grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
                        if (ev.type == GRPC_OP_COMPLETE && ev.tag == &srv->shutdown_tag)
                                break;
                        if (ev.type == GRPC_OP_COMPLETE)
                                armed_free((struct armed *)ev.tag);
                }
        }
        grpc_completion_queue_shutdown(srv->cq);
        for (int i = 0; i < srv->n_threads; i++)
                pthread_join(srv->threads[i], NULL);
        if (srv->n_threads == 0) {
                for (;;) {
                        grpc_event ev = grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
                        if (ev.type == GRPC_QUEUE_SHUTDOWN)
                                break;
                }
        }
}

void sb_rpc_server_free(sb_rpc_server *srv) {
        if (!srv)
                return;
        if (srv->started)
                sb_rpc_server_stop(srv);
        else {
                grpc_server_shutdown_and_notify(srv->server, srv->cq, &srv->shutdown_tag);
                grpc_server_cancel_all_calls(srv->server);
                grpc_completion_queue_shutdown(srv->cq);
                for (;;) {
                        grpc_event ev = grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
                        if (ev.type == GRPC_QUEUE_SHUTDOWN)
                                break;
                }
        }
        grpc_server_destroy(srv->server);
        grpc_completion_queue_destroy(srv->cq);
        for (size_t i = 0; i < srv->n_methods; i++)
                free(srv->methods[i].path);
        free(srv->methods);
        for (size_t i = 0; i < srv->n_services; i++)
                free(srv->service_names[i]);
        free(srv->service_names);
        free(srv->threads);
        free(srv->bind);
        pthread_mutex_destroy(&srv->mu);
        pthread_cond_destroy(&srv->cond);
        free(srv);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Client */

struct sb_rpc_client {
        grpc_channel *channel;
        int max_attempts;
        size_t max_response_bytes;
};

int sb_rpc_client_new(const sb_rpc_client_config *cfg, sb_rpc_client **ret, char *err, size_t err_n) {
        if (!cfg || !cfg->target || !ret) {
                set_err(err, err_n, "the client needs a target address");
                return -EINVAL;
        }
        sb_rpc_client *c = xcalloc(1, sizeof *c);
        c->max_attempts = cfg->max_attempts > 0 ? cfg->max_attempts : 7;
        c->max_response_bytes = cfg->max_response_bytes ? cfg->max_response_bytes : DEFAULT_MAX_BYTES;
        grpc_channel_credentials *creds;
        if (cfg->tls_ca_path) {
                char *ca = read_file(cfg->tls_ca_path, err, err_n);
                if (!ca) {
                        free(c);
                        return -EINVAL;
                }
                creds = grpc_ssl_credentials_create(ca, NULL, NULL, NULL);
                free(ca);
        } else {
                creds = grpc_insecure_credentials_create();
        }
        grpc_arg args[6];
        memset(args, 0, sizeof args);
        size_t n = 0;
        /* A failed connection asks the resolver again, and the DNS resolver waits 30 s between resolutions by
         * default; our targets are fixed addresses, so let it answer at once. */
        args[n].type = GRPC_ARG_INTEGER;
        args[n].key = (char *)GRPC_ARG_DNS_MIN_TIME_BETWEEN_RESOLUTIONS_MS;
        args[n].value.integer = 100;
        n++;
        /* Peers are other services on a private network: after one restarts, reconnect within a second instead
         * of the core's default backoff (1 s growing to 120 s), during which every call fails UNAVAILABLE. */
        static const char *const backoff_keys[] = { GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
                                                     GRPC_ARG_MIN_RECONNECT_BACKOFF_MS,
                                                     GRPC_ARG_MAX_RECONNECT_BACKOFF_MS };
        static const int backoff_ms[] = { 100, 100, 1000 };
        for (size_t i = 0; i < 3; i++) {
                args[n].type = GRPC_ARG_INTEGER;
                args[n].key = (char *)backoff_keys[i];
                args[n].value.integer = backoff_ms[i];
                n++;
        }
        args[n].type = GRPC_ARG_INTEGER;
        args[n].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
        args[n].value.integer = c->max_response_bytes > INT32_MAX ? INT32_MAX : (int)c->max_response_bytes;
        n++;
        if (cfg->tls_override_host) {
                args[n].type = GRPC_ARG_STRING;
                args[n].key = (char *)GRPC_SSL_TARGET_NAME_OVERRIDE_ARG;
                args[n].value.string = (char *)cfg->tls_override_host;
                n++;
        }
        grpc_channel_args chargs = { .num_args = n, .args = args };
        c->channel = grpc_channel_create(cfg->target, creds, &chargs);
        grpc_channel_credentials_release(creds);
        if (!c->channel) {
                set_err(err, err_n, "cannot create a channel to %s", cfg->target);
                free(c);
                return -EINVAL;
        }
        *ret = c;
        return 0;
}

void sb_rpc_client_free(sb_rpc_client *c) {
        if (!c)
                return;
        grpc_channel_destroy(c->channel);
        free(c);
}

static sb_status client_attempt(sb_rpc_client *c, const char *path, grpc_slice req_slice,
                                const ProtobufCMessageDescriptor *resp_desc, const sb_rpc_call_opts *opts,
                                gpr_timespec deadline, ProtobufCMessage **ret_resp, char *msg, size_t msg_n) {
        grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
        grpc_slice method = grpc_slice_from_static_string(path);
        grpc_call *call =
                grpc_channel_create_call(c->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method, NULL, deadline, NULL);

        grpc_metadata md[2];
        memset(md, 0, sizeof md);
        size_t n_md = 0;
        char auth[4096];
        if (opts->bearer) {
                snprintf(auth, sizeof auth, "Bearer %s", opts->bearer);
                md[n_md].key = grpc_slice_from_static_string("authorization");
                md[n_md].value = grpc_slice_from_copied_string(auth);
                n_md++;
        }
        if (opts->request_id) {
                md[n_md].key = grpc_slice_from_static_string("x-request-id");
                md[n_md].value = grpc_slice_from_copied_string(opts->request_id);
                n_md++;
        }
        grpc_slice_ref(req_slice);
        grpc_byte_buffer *send_bb = grpc_raw_byte_buffer_create(&req_slice, 1);
        grpc_slice_unref(req_slice);
        grpc_byte_buffer *recv_bb = NULL;
        grpc_metadata_array initial_md, trailing_md;
        grpc_metadata_array_init(&initial_md);
        grpc_metadata_array_init(&trailing_md);
        grpc_status_code status = GRPC_STATUS_UNKNOWN;
        grpc_slice details = grpc_empty_slice();

        grpc_op ops[6];
        memset(ops, 0, sizeof ops);
        ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
        ops[0].data.send_initial_metadata.count = n_md;
        ops[0].data.send_initial_metadata.metadata = md;
        ops[1].op = GRPC_OP_SEND_MESSAGE;
        ops[1].data.send_message.send_message = send_bb;
        ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
        ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
        ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial_md;
        ops[4].op = GRPC_OP_RECV_MESSAGE;
        ops[4].data.recv_message.recv_message = &recv_bb;
        ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
        ops[5].data.recv_status_on_client.trailing_metadata = &trailing_md;
        ops[5].data.recv_status_on_client.status = &status;
        ops[5].data.recv_status_on_client.status_details = &details;

        sb_status result;
        int tag_storage;
        if (grpc_call_start_batch(call, ops, 6, &tag_storage, NULL) != GRPC_CALL_OK) {
                snprintf(msg, msg_n, "cannot start the call to %s", path);
                result = SB_INTERNAL;
        } else {
                grpc_completion_queue_pluck(cq, &tag_storage, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
                result = (sb_status)status;
                if (opts->ret_reason) {
                        opts->ret_reason[0] = '\0';
                        for (size_t i = 0; i < trailing_md.count; i++) {
                                if (!slice_eq_str(trailing_md.metadata[i].key, "sharebuy-reason"))
                                        continue;
                                size_t rl = GRPC_SLICE_LENGTH(trailing_md.metadata[i].value);
                                if (rl >= SB_RPC_REASON_MAX)
                                        rl = SB_RPC_REASON_MAX - 1;
                                memcpy(opts->ret_reason, GRPC_SLICE_START_PTR(trailing_md.metadata[i].value), rl);
                                opts->ret_reason[rl] = '\0';
                        }
                }
                size_t dl = GRPC_SLICE_LENGTH(details);
                if (msg && msg_n > 0) {
                        size_t k = dl < msg_n - 1 ? dl : msg_n - 1;
                        memcpy(msg, GRPC_SLICE_START_PTR(details), k);
                        msg[k] = '\0';
                        utf8_trim_tail(msg);
                }
                if (result == SB_OK) {
                        ProtobufCMessage *resp = recv_bb ? unpack_payload(recv_bb, resp_desc) : NULL;
                        if (!resp) {
                                snprintf(msg, msg_n, "%s answered OK without a valid %s message", path,
                                         resp_desc->name);
                                result = SB_INTERNAL;
                        } else {
                                *ret_resp = resp;
                        }
                }
        }
        for (size_t i = 0; i < n_md; i++)
                grpc_slice_unref(md[i].value);
        grpc_byte_buffer_destroy(send_bb);
        if (recv_bb)
                grpc_byte_buffer_destroy(recv_bb);
        grpc_metadata_array_destroy(&initial_md);
        grpc_metadata_array_destroy(&trailing_md);
        grpc_slice_unref(details);
        grpc_call_unref(call);
        grpc_completion_queue_shutdown(cq);
        while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
               GRPC_QUEUE_SHUTDOWN)
                ;
        grpc_completion_queue_destroy(cq);
        return result;
}

sb_status sb_rpc_client_call(sb_rpc_client *c, const char *path, const ProtobufCMessage *req,
                             const ProtobufCMessageDescriptor *resp_desc, const sb_rpc_call_opts *opts_,
                             ProtobufCMessage **ret_resp, char *msg, size_t msg_n) {
        static const sb_rpc_call_opts no_opts = { 0 };
        const sb_rpc_call_opts *opts = opts_ ? opts_ : &no_opts;
        char scratch[8];
        if (!msg || msg_n == 0) {
                msg = scratch;
                msg_n = sizeof scratch;
        }
        msg[0] = '\0';
        int64_t deadline_ms = opts->deadline_ms > 0 ? opts->deadline_ms : 5000;
        gpr_timespec deadline =
                gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(deadline_ms, GPR_TIMESPAN));
        size_t len = protobuf_c_message_get_packed_size(req);
        grpc_slice req_slice = grpc_slice_malloc(len);
        protobuf_c_message_pack(req, GRPC_SLICE_START_PTR(req_slice));

        sb_status st = SB_UNAVAILABLE;
        int64_t backoff_ms = 25;
        for (int attempt = 1; attempt <= c->max_attempts; attempt++) {
                st = client_attempt(c, path, req_slice, resp_desc, opts, deadline, ret_resp, msg, msg_n);
                if (st != SB_UNAVAILABLE || attempt == c->max_attempts)
                        break;
                gpr_timespec left = gpr_time_sub(deadline, gpr_now(GPR_CLOCK_MONOTONIC));
                int64_t left_ms = (int64_t)left.tv_sec * 1000 + left.tv_nsec / 1000000;
                if (left_ms <= backoff_ms)
                        break;
                sleep_ms(backoff_ms);
                /* 25, 50, 100, 200, 400, 500 ms: with the default 7 attempts the retries span ~1.3 s, more than
                 * one whole reconnect backoff of the channel (at most 1 s, ±20 % jitter), so a peer that is back
                 * is reached even when the channel had just started a long wait before its next try. */
                backoff_ms = backoff_ms * 2 > 500 ? 500 : backoff_ms * 2;
        }
        grpc_slice_unref(req_slice);
        return st;
}

int sb_rpc_method_path(const ProtobufCServiceDescriptor *desc, const char *method, char *buf, size_t n) {
        for (unsigned j = 0; j < desc->n_methods; j++) {
                if (strcmp(desc->methods[j].name, method) != 0)
                        continue;
                int w = snprintf(buf, n, "/%s/%s", desc->name, method);
                return w < 0 || (size_t)w >= n ? -ENOSPC : 0;
        }
        return -ENOENT;
}
