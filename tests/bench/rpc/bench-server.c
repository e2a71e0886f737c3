/* bench-server: grpc.health.v1.Health and nothing else, served by our runtime (services/core/rpc).
 *
 * Used by tests/bench/rpc-bench (the trivial unary RPC: Health/Check) and by tests/interop/run --self-test (the
 * interop checks without a database). Usage:
 *
 *     bench-server PORT [WORKERS [MAX_REQUEST_BYTES]]
 *
 * PORT 0 picks a free port. WORKERS defaults to the number of CPUs; MAX_REQUEST_BYTES to 1 MiB, the services'
 * default. Prints "listening on 127.0.0.1:PORT" on stdout once it serves, exits 0 on SIGTERM or SIGINT. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "rpc.h"

static long parse_arg(const char *s, const char *what, long min, long max) {
        char *end = NULL;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
                fprintf(stderr, "bench-server: %s must be a number from %ld to %ld, not \"%s\"\n", what, min, max,
                        s);
                exit(2);
        }
        return v;
}

int main(int argc, char **argv) {
        if (argc < 2 || argc > 4) {
                fprintf(stderr, "usage: %s PORT [WORKERS [MAX_REQUEST_BYTES]]\n", argv[0]);
                return 2;
        }
        int port = (int)parse_arg(argv[1], "PORT", 0, 65535);
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        int workers = argc > 2 ? (int)parse_arg(argv[2], "WORKERS", 1, 256) : (int)(ncpu > 0 ? ncpu : 1);
        size_t max_req = argc > 3 ? (size_t)parse_arg(argv[3], "MAX_REQUEST_BYTES", 1024, INT_MAX) : (size_t)1 << 20;

        sb_rpc_init();
        char bind[64];
        snprintf(bind, sizeof bind, "127.0.0.1:%d", port);
        sb_rpc_server_config cfg = {
                .bind = bind,
                .workers = workers,
                .max_request_bytes = max_req,
                .drain_ms = 0,
                .grace_ms = 1000,
        };
        char err[256] = "";
        sb_rpc_server *srv = NULL;
        if (sb_rpc_server_new(&cfg, &srv, err, sizeof err) < 0 || sb_rpc_server_start(srv, err, sizeof err) < 0) {
                fprintf(stderr, "bench-server: %s\n", err);
                sb_rpc_server_free(srv);
                sb_rpc_shutdown();
                return 1;
        }
        printf("listening on 127.0.0.1:%d (%d workers)\n", sb_rpc_server_port(srv), workers);
        fflush(stdout);
        int sig = sb_rpc_wait_signal();
        fprintf(stderr, "bench-server: signal %d, stopping\n", sig);
        sb_rpc_server_free(srv);
        sb_rpc_shutdown();
        return 0;
}
