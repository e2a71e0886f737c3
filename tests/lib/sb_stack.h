/* sb_test_stack: the real services, started as processes for an integration test.
 *
 * A stack makes a temporary folder with a fresh token-signing key pair, applies the migrations to the test MariaDB
 * (tests/lib/with-mariadb; skips the test with exit 77 when SB_TEST_DB_SOCKET is unset), starts the named service
 * binaries from the build tree on free loopback ports — each with its database password, the public key, a SERVICE
 * token of its own and the addresses of the other services of the stack — and waits until each answers health.
 * Tests then talk to them with real gRPC clients and mint tokens for any role. No mock anywhere.
 *
 * Tests share one MariaDB and may run in parallel: use unique keys and owners, never truncate. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "auth.h"
#include "db.h"
#include "rpc.h"

typedef struct sb_test_stack sb_test_stack;

/* Prepare a stack of the named services (NULL-terminated: {"wallet", "identity", NULL}); nothing starts yet. Ports
 * are reserved for all five services, so peers.<name> points at the right place even for services started later.
 * Aborts on failure; exits 77 without a test database. */
sb_test_stack *sb_test_stack_new(const char *const *services);

/* Add an environment variable for a service's process (e.g. "SB_WALLET_CAP", "972360"), before it starts. */
void sb_test_stack_env(sb_test_stack *st, const char *service, const char *name, const char *value);

/* Start every service of the stack that is not running and wait until each is SERVING (aborts after 30 s, printing
 * the service's log). */
void sb_test_stack_start_all(sb_test_stack *st);

/* sb_test_stack_new + sb_test_stack_start_all. */
sb_test_stack *sb_test_stack_start(const char *const *services);

/* Start one service (again) and wait for it; returns 0, or -1 when it did not become healthy (log printed). */
int sb_test_stack_start_service(sb_test_stack *st, const char *service);

/* Send sig to a running service. With SIGKILL the service is marked stopped at once; with SIGTERM the call waits
 * for the exit and returns its exit status (0 for a graceful stop). */
int sb_test_stack_kill(sb_test_stack *st, const char *service, int sig);

/* "127.0.0.1:PORT" of a service of the stack (started or not). */
const char *sb_test_stack_addr(sb_test_stack *st, const char *service);

/* A client for a service (one per service, shared; thread-safe). */
sb_rpc_client *sb_test_stack_client(sb_test_stack *st, const char *service);

pid_t sb_test_stack_pid(sb_test_stack *st, const char *service);

/* Mint a token for claims with the stack's key (iat/exp default to now / now+900 when 0). Returns its length. */
int sb_test_stack_token(sb_test_stack *st, const sb_claims *claims, char *out, size_t out_n);

/* A token for a role with ids (0 where not needed); a static buffer per role is NOT used: out must hold
 * SB_AUTH_TOKEN_MAX bytes. */
void sb_test_stack_role_token(sb_test_stack *st, sb_role role, uint64_t uid, uint64_t merchant_id,
                              uint64_t terminal_id, uint64_t centre_id, char *out);

/* When sb_test_stack_call prints a failed call to stderr, as "  <call> -> <STATUS> <reason>: <message>". */
typedef enum sb_test_call_print {
        SB_TEST_CALL_QUIET,   /* never */
        SB_TEST_CALL_VERBOSE, /* when TEST_VERBOSE is set */
        SB_TEST_CALL_ALWAYS,  /* always */
} sb_test_call_print;

/* How sb_test_stack_call calls and what it reports; {0} is a call without a token, 20 s, quiet. */
typedef struct sb_test_call_opts {
        int64_t deadline_ms; /* 0 = 20000 */
        const char *bearer;  /* the token, or NULL */
        char *reason;        /* optional, SB_RPC_REASON_MAX bytes: the "sharebuy-reason" trailer ("" when none) */
        char *msg;           /* optional, msg_n bytes: the message ("" on OK) */
        size_t msg_n;
        sb_test_call_print print;
        bool name_service; /* the call is printed as "<service>/<method>", not "<method>" */
} sb_test_call_opts;

/* One call of a service of the stack through its client: method is the name of a method of the service
 * ("PostTransaction"; aborts when the service has none) or a full path ("/sharebuy.wallet.v1.Wallet/GetSupply").
 * Returns the status; on OK the response into *resp, or freed when resp is NULL (*resp untouched otherwise). o may
 * be NULL. Thread-safe. */
sb_status sb_test_stack_call(sb_test_stack *st, const char *service, const char *method, const void *req,
                             const ProtobufCMessageDescriptor *resp_desc, const sb_test_call_opts *o, void **resp);

/* Move sp_units (0.0001 SP) from the unreleased SP into the treasury through Wallet/PostTransaction (a SERVICE
 * adjustment, idempotent on key), so merchants can buy deposits on a ledger whose treasury is empty. Returns the
 * wallet's status. */
sb_status sb_test_stack_stock_treasury(sb_test_stack *st, const char *key, int64_t sp_units);

/* An administrator's connection to the test database (for checks), owned by the stack. */
sb_db *sb_test_stack_admin_db(sb_test_stack *st);

/* The build tree and the stack's folder (keys, logs: <dir>/<service>.log). */
const char *sb_test_stack_build_dir(sb_test_stack *st);
const char *sb_test_stack_dir(sb_test_stack *st);

/* The private and public key files of the stack. */
const char *sb_test_stack_private_key(sb_test_stack *st);
const char *sb_test_stack_public_key(sb_test_stack *st);

/* Run sharebuyctl of the build tree with the test database's admin connection in the environment; returns its exit
 * status and, when out is not NULL, its standard output (malloc'd, caller frees). */
int sb_test_stack_ctl(sb_test_stack *st, char **out, const char *const *args);

/* Stop every running service with SIGTERM; each must exit 0 (a sanitizer report or a crash fails the test). Then
 * free everything and remove the folder (kept when SB_TEST_KEEP=1). */
void sb_test_stack_free(sb_test_stack *st);
