/* sharebuyctl health: ask a service for its grpc.health.v1 status. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "grpc/health/v1/health.pb-c.h"
#include "rpc.h"

static const char health_help[] =
        "Ask a sharebuy service (or any gRPC server) for its health.\n"
        "\n"
        "  --target HOST:PORT   the server (default 127.0.0.1:50051)\n"
        "  --service NAME       a service name to check, e.g. sharebuy.wallet.v1.Wallet (default: the server)\n"
        "  --tls-ca FILE        PEM roots: talk TLS\n"
        "  --timeout-ms N       deadline (default 2000)\n"
        "\n"
        "Prints SERVING / NOT_SERVING and exits 0 only when SERVING.";

static int run_health(int argc, char **argv, sb_ctl_ctx *ctx) {
        const char *target = "127.0.0.1:50051", *service = "", *ca = NULL;
        long timeout_ms = 2000;
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];
                if (i + 1 < argc && strcmp(a, "--target") == 0)
                        target = argv[++i];
                else if (i + 1 < argc && strcmp(a, "--service") == 0)
                        service = argv[++i];
                else if (i + 1 < argc && strcmp(a, "--tls-ca") == 0)
                        ca = argv[++i];
                else if (i + 1 < argc && strcmp(a, "--timeout-ms") == 0) {
                        char *end = NULL;
                        timeout_ms = strtol(argv[++i], &end, 10);
                        if (!end || *end || timeout_ms <= 0 || timeout_ms > 600000)
                                return sb_ctl_usage_error(ctx, "--timeout-ms takes 1..600000");
                } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
                        fprintf(ctx->out, "Usage: sharebuyctl health [--target HOST:PORT] [--service NAME] "
                                          "[--tls-ca FILE] [--timeout-ms N]\n\n%s\n",
                                health_help);
                        return SB_CTL_EXIT_OK;
                } else
                        return sb_ctl_usage_error(ctx, "health: unknown argument %s (try --help)", a);
        }
        sb_rpc_init();
        sb_rpc_client *c = NULL;
        char err[256];
        sb_rpc_client_config cfg = { .target = target, .tls_ca_path = ca, .max_attempts = 1 };
        if (sb_rpc_client_new(&cfg, &c, err, sizeof err) < 0) {
                sb_rpc_shutdown();
                return sb_ctl_error(ctx, "%s", err);
        }
        Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
        req.service = (char *)service;
        ProtobufCMessage *resp = NULL;
        sb_rpc_call_opts opts = { .deadline_ms = timeout_ms };
        char msg[512];
        sb_status st = sb_rpc_client_call(c, "/grpc.health.v1.Health/Check", &req.base,
                                          &grpc__health__v1__health_check_response__descriptor, &opts, &resp, msg,
                                          sizeof msg);
        int rc;
        if (st != SB_OK) {
                rc = sb_ctl_error(ctx, "%s: %s: %s", target, sb_status_name((int)st), msg);
                if (ctx->json)
                        fprintf(ctx->out, "{\"target\":\"%s\",\"status\":\"%s\"}\n", target,
                                sb_status_name((int)st));
        } else {
                int s = (int)((Grpc__Health__V1__HealthCheckResponse *)resp)->status;
                const char *name = s == 1 ? "SERVING" : s == 2 ? "NOT_SERVING" : "UNKNOWN";
                if (ctx->json)
                        fprintf(ctx->out, "{\"target\":\"%s\",\"status\":\"%s\"}\n", target, name);
                else
                        fprintf(ctx->out, "%s %s\n", target, name);
                rc = s == 1 ? SB_CTL_EXIT_OK : SB_CTL_EXIT_FAILURE;
                protobuf_c_message_free_unpacked(resp, NULL);
        }
        sb_rpc_client_free(c);
        sb_rpc_shutdown();
        return rc;
}

const sb_ctl_command sb_ctl_health_command = {
        .name = "health",
        .summary = "ask a service whether it is SERVING",
        .run = run_health,
};
