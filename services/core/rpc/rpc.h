/* sb_rpc: the only module that knows the gRPC C core API.
 *
 * A server is built from protobuf-c service descriptors: every method of every added service is registered with the
 * core, calls to methods without a handler and to paths nobody registered are answered UNIMPLEMENTED at once, and
 * the standard grpc.health.v1.Health service (Check and Watch) is always served. A pool of worker threads polls
 * one completion queue and runs the handlers; a handler is a plain C function: request in, response out, a status
 * and a human-readable message back.
 *
 * The client side is a channel with deadlines and bounded retries of UNAVAILABLE, for calls between services.
 *
 * Nothing here logs: the server reports every finished call to an optional hook, and the caller logs and counts.
 */
#pragma once

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The gRPC status codes, numbered as on the wire. */
typedef enum sb_status {
        SB_OK = 0,
        SB_CANCELLED = 1,
        SB_UNKNOWN = 2,
        SB_INVALID_ARGUMENT = 3,
        SB_DEADLINE_EXCEEDED = 4,
        SB_NOT_FOUND = 5,
        SB_ALREADY_EXISTS = 6,
        SB_PERMISSION_DENIED = 7,
        SB_RESOURCE_EXHAUSTED = 8,
        SB_FAILED_PRECONDITION = 9,
        SB_ABORTED = 10,
        SB_OUT_OF_RANGE = 11,
        SB_UNIMPLEMENTED = 12,
        SB_INTERNAL = 13,
        SB_UNAVAILABLE = 14,
        SB_DATA_LOSS = 15,
        SB_UNAUTHENTICATED = 16,
} sb_status;

/* The canonical upper-case name of a status ("NOT_FOUND"); "UNKNOWN_STATUS" for a number outside the table. */
const char *sb_status_name(int code);

/* The longest status message a handler can set; longer ones are cut on a UTF-8 boundary. */
#define SB_RPC_MESSAGE_MAX 512

typedef struct sb_call sb_call;
typedef struct sb_rpc_server sb_rpc_server;
typedef struct sb_rpc_client sb_rpc_client;

/* A handler. `req` is the unpacked request (never NULL: a client that sent no message gets INVALID_ARGUMENT before
 * the handler runs). `resp` is an initialised, empty message of the method's output type, owned by the runtime:
 * the handler fills its fields with memory that lives until the reply is sent — static strings, the request's own
 * memory, or sb_call_alloc(). Return SB_OK, or the value of sb_call_fail(). The response is sent only on SB_OK. */
typedef sb_status (*sb_rpc_handler)(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);

typedef struct sb_rpc_method {
        const char *name;  /* the method's name in the service descriptor, e.g. "PostTransaction" */
        sb_rpc_handler fn;
} sb_rpc_method;

/* Called once per finished call, on a worker thread, after the reply was handed to the core: for logging and
 * metrics. `method` is the full path; `message` is "" on success. */
typedef void (*sb_rpc_done_hook)(void *arg, const sb_call *call, const char *method, sb_status code,
                                 const char *message, int64_t latency_us);

typedef struct sb_rpc_server_config {
        const char *bind;               /* "127.0.0.1:50052"; port 0 picks a free port (see sb_rpc_server_port) */
        int workers;                    /* worker threads, 1..256; handlers may block (database calls) */
        size_t max_request_bytes;       /* larger requests get RESOURCE_EXHAUSTED from the core; 0 = 4 MiB */
        size_t max_response_bytes;      /* a larger response becomes RESOURCE_EXHAUSTED; 0 = 4 MiB */
        const char *tls_cert_path;      /* PEM certificate chain; with tls_key_path turns TLS on */
        const char *tls_key_path;       /* PEM private key */
        const char *tls_client_ca_path; /* optional: require client certificates signed by this CA */
        int64_t drain_ms;               /* on shutdown: health says NOT_SERVING this long before refusing calls */
        int64_t grace_ms;               /* then in-flight calls get this long to finish before being cancelled */
        /* Per-worker state (a database connection): created on the worker thread before it takes calls, passed
         * to handlers by sb_call_worker(), destroyed on the same thread when it ends. Optional. A NULL return
         * from worker_init is allowed (the handler sees NULL and answers UNAVAILABLE if it needs the state). */
        void *(*worker_init)(void *arg, int index);
        void (*worker_fini)(void *arg, void *state);
        void *worker_arg;
        sb_rpc_done_hook done_hook;
        void *done_arg;
} sb_rpc_server_config;

/* Start the gRPC library for this process and block SIGTERM, SIGINT and SIGHUP in the calling thread, so that
 * every thread created afterwards (the core's and ours) inherits the mask and sb_rpc_wait_signal() alone receives
 * them. Call once from main() before creating threads. Returns 0. */
int sb_rpc_init(void);

/* Send the gRPC core's own log lines (severity 0 debug, 1 info, 2 error) to fn instead of stderr, so that a service
 * writes one format only. Call after sb_rpc_init(); fn must be thread-safe. NULL restores the core's default. */
void sb_rpc_set_core_log(void (*fn)(int severity, const char *file, int line, const char *message));

/* Undo sb_rpc_init() once every server and client is freed. */
void sb_rpc_shutdown(void);

/* Wait for SIGTERM, SIGINT or SIGHUP (blocked by sb_rpc_init) and return its number. */
int sb_rpc_wait_signal(void);

/* Create a server. Nothing listens until sb_rpc_server_start(). On failure writes a message into err and returns a
 * negative errno. *ret is set only on success; free with sb_rpc_server_free(). */
int sb_rpc_server_new(const sb_rpc_server_config *cfg, sb_rpc_server **ret, char *err, size_t err_n);

/* Register every method of `desc`; `methods` names the handlers for some of them (the rest answer UNIMPLEMENTED).
 * `service_data` is what sb_call_service_data() returns in these handlers. -EINVAL when a handler names a method
 * the descriptor lacks, -EBUSY after start. The descriptor must outlive the server. */
int sb_rpc_server_add_service(sb_rpc_server *srv, const ProtobufCServiceDescriptor *desc,
                              const sb_rpc_method *methods, size_t n_methods, void *service_data);

/* Bind, start the workers and start serving (health SERVING). On failure (port taken, unreadable certificate)
 * writes a message into err and returns a negative errno. */
int sb_rpc_server_start(sb_rpc_server *srv, char *err, size_t err_n);

/* The port actually bound (useful with port 0); 0 before start. */
int sb_rpc_server_port(const sb_rpc_server *srv);

/* Graceful stop: health goes NOT_SERVING (watchers are told), after drain_ms new calls are refused, in-flight
 * calls get grace_ms to finish, then the rest is cancelled and the workers end. Safe to call once from any thread
 * that is not a worker; returns when everything has stopped. */
void sb_rpc_server_stop(sb_rpc_server *srv);

/* Stop (if running) and free. NULL is allowed. */
void sb_rpc_server_free(sb_rpc_server *srv);

/* --- Inside a handler --- */

/* Record a failure status and a message for a person (printf format), and return `code` for the handler to return.
 * The message travels as the grpc-message trailer; never put secrets in it. */
sb_status sb_call_fail(sb_call *call, sb_status code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Attach a machine-readable reason to the failure being returned, sent as the trailing metadata entry
 * "sharebuy-reason: <reason>" (a name of sharebuy.common.v1.ErrorReason, e.g. "REASON_TOKEN_EXPIRED"), so clients
 * can show their own words. `reason` must be a static string. Returns `code` for chaining:
 *     return sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_DEPOSIT_TOO_SMALL", "the deposit ...");  */
sb_status sb_call_fail_reason(sb_call *call, sb_status code, const char *reason, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/* The bearer token from "authorization: Bearer <token>", or NULL when the call carries none. */
const char *sb_call_bearer(const sb_call *call);

/* The request id: the caller's "x-request-id" if it sent a sane one, else one made up for this call. Never NULL. */
const char *sb_call_request_id(const sb_call *call);

/* The value of a request metadata key (lower case), or NULL. Binary ("-bin") values are not returned. */
const char *sb_call_metadata(const sb_call *call, const char *key);

/* The peer's address as the core reports it ("ipv4:127.0.0.1:53412"). Never NULL. */
const char *sb_call_peer(const sb_call *call);

/* The full method path, "/sharebuy.wallet.v1.Wallet/PostTransaction". */
const char *sb_call_method(const sb_call *call);

/* Milliseconds left before the client's deadline (at least 0), or INT64_MAX when it set none. Handlers pass this
 * down (database statement limits, calls to other services) and stop early when it reaches 0. */
int64_t sb_call_remaining_ms(const sb_call *call);

/* The state worker_init() made for the worker running this call, and the service_data of its service. */
void *sb_call_worker(const sb_call *call);
void *sb_call_service_data(const sb_call *call);

/* Zeroed memory that lives until the reply is sent; aborts on exhaustion of the process's memory, as malloc
 * failures are not an operating error we can recover from inside a call. */
void *sb_call_alloc(sb_call *call, size_t size);
char *sb_call_strdup(sb_call *call, const char *s);
char *sb_call_printf(sb_call *call, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* --- Client --- */

typedef struct sb_rpc_client_config {
        const char *target;        /* "127.0.0.1:50052" */
        const char *tls_ca_path;   /* PEM roots: turns TLS on */
        const char *tls_override_host; /* optional: the name to check in the server's certificate */
        int max_attempts;          /* attempts per call when the answer is UNAVAILABLE; 0 = 7 (~1.3 s of retries) */
        size_t max_response_bytes; /* 0 = 4 MiB */
} sb_rpc_client_config;

typedef struct sb_rpc_call_opts {
        int64_t deadline_ms;       /* per call, covering all attempts; 0 = 5000 */
        const char *bearer;        /* sent as "authorization: Bearer ..." when not NULL */
        const char *request_id;    /* sent as "x-request-id" when not NULL */
        char *ret_reason;          /* optional: receives the "sharebuy-reason" of a failure ("" when none); at
                                    * least SB_RPC_REASON_MAX bytes */
} sb_rpc_call_opts;

/* Create a channel. Connection happens lazily. *ret set on success only. */
int sb_rpc_client_new(const sb_rpc_client_config *cfg, sb_rpc_client **ret, char *err, size_t err_n);

void sb_rpc_client_free(sb_rpc_client *c);

/* The longest reason a client call reports. */
#define SB_RPC_REASON_MAX 64

/* One unary call to `path` ("/pkg.Service/Method"). Retries UNAVAILABLE with exponential backoff while attempts and
 * the deadline last. Returns the final status; on SB_OK *ret_resp is the unpacked response (free with
 * protobuf_c_message_free_unpacked(*ret_resp, NULL)); otherwise msg holds the server's or the library's message.
 * Thread-safe: one client serves many threads. */
sb_status sb_rpc_client_call(sb_rpc_client *c, const char *path, const ProtobufCMessage *req,
                             const ProtobufCMessageDescriptor *resp_desc, const sb_rpc_call_opts *opts,
                             ProtobufCMessage **ret_resp, char *msg, size_t msg_n);

/* Write "/<service>/<method>" into buf. -ENOENT when the descriptor has no such method, -ENOSPC when buf is short. */
int sb_rpc_method_path(const ProtobufCServiceDescriptor *desc, const char *method, char *buf, size_t n);
