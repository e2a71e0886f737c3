/* sb_service: the main program every sharebuy service shares.
 *
 * A service describes itself (name, gRPC service descriptor, handlers, default port, its database schema, its own
 * configuration keys) and calls sb_service_main() from main(). That function reads and validates the
 * configuration (file and SB_* environment), sets up the JSON log and the Prometheus endpoint, gives every worker
 * thread its own database connection, serves until SIGTERM or SIGINT, then shuts down gracefully (health goes
 * NOT_SERVING, in-flight calls finish) and returns 0. Every finished call is logged once and counted here, so
 * handlers only return a status and a message. */
#pragma once

#include <stddef.h>

#include "auth.h"
#include "config.h"
#include "db.h"
#include "rpc.h"

typedef struct sb_service_def {
        const char *name;                          /* "wallet": names the log, the config and the db defaults */
        const ProtobufCServiceDescriptor *desc;    /* the gRPC service served */
        const sb_rpc_method *methods;              /* handlers; methods without one answer UNIMPLEMENTED */
        size_t n_methods;
        int default_port;                          /* 50051..50055 */
        int default_metrics_port;                  /* 9151..9155 */
        const sb_config_key *extra_keys;           /* the service's own settings (may be NULL) */
        size_t n_extra_keys;
        /* Optional: build the service's state from the validated configuration before serving. Return 0, or a
         * negative errno with a message in err (the program exits 1 and logs it). The state is what
         * sb_call_service_data() returns in handlers. */
        int (*init)(const sb_config *cfg, void **ret_state, char *err, size_t err_n);
        void (*fini)(void *state);
} sb_service_def;

/* Run the service described by def with the program's arguments:
 *   --config FILE     read settings from FILE (also SB_CONFIG)
 *   --print-config    print the effective settings (secrets masked) and exit
 *   --check-config    validate the settings and exit 0/1
 *   --help
 * Returns the process exit status: 0 after a graceful stop, 1 on a configuration or start-up error, 2 on a usage
 * error. */
int sb_service_main(const sb_service_def *def, int argc, char **argv);

/* The service's metrics registry (exposed on metrics.port), for a service's own families; it exists from before
 * def->init until after def->fini. NULL outside sb_service_main(). */
typedef struct sb_metrics_registry sb_metrics_registry;
sb_metrics_registry *sb_service_metrics(void);

/* The database settings of this service (db.*), for a connection of a service's own thread (the workers' are
 * sb_service_db()); valid from before def->init until after def->fini, NULL outside sb_service_main(). */
const sb_db_config *sb_service_db_config(void);

/* The database connection of the worker running this call, connected (or reconnected) on demand. NULL when the
 * database cannot be reached: the handler answers UNAVAILABLE (sb_service_db_unavailable gives the message). */
sb_db *sb_service_db(sb_call *call);

/* Fail the call with UNAVAILABLE and a message saying the database cannot be reached. */
sb_status sb_service_db_unavailable(sb_call *call);

/* Map a negative sb_db code from a failed operation to a status and message for the caller: -ETIMEDOUT and
 * -EDEADLK become DEADLINE_EXCEEDED / ABORTED, a lost connection UNAVAILABLE, everything else INTERNAL with the
 * request id (the details are logged, never sent). `what` names the operation ("posting the transaction"). */
sb_status sb_service_db_fail(sb_call *call, int code, const char *what);

/* Authenticate the call: verify its bearer token offline with the public keys of auth.public_keys and check that its
 * role is one of `roles` (a mask of SB_ROLES()). On success fills *ret (may be NULL) and returns SB_OK. Otherwise
 * fails the call — UNAUTHENTICATED with reason REASON_TOKEN_MISSING, REASON_TOKEN_INVALID or REASON_TOKEN_EXPIRED,
 * or PERMISSION_DENIED with REASON_ROLE_NOT_ALLOWED naming the role — and returns that status. */
sb_status sb_service_auth(sb_call *call, unsigned roles, sb_claims *ret);

/* This service's own credential (a SERVICE token from auth.service_token) for calls to other services, or NULL. */
const char *sb_service_token(void);

/* The client for another service (identity, wallet, merchant, airdrop, region), from the setting peers.<name>;
 * shared by all workers. NULL for an unknown name. */
sb_rpc_client *sb_service_peer(const char *name);

/* Call a method of another service with this service's credential, the call's remaining deadline (at most
 * deadline_ms) and its request id. Returns the peer's status; msg gets its message. */
sb_status sb_service_call(sb_call *call, const char *peer, const char *path, const ProtobufCMessage *req,
                          const ProtobufCMessageDescriptor *resp_desc, int64_t deadline_ms,
                          ProtobufCMessage **ret_resp, char *msg, size_t msg_n);
