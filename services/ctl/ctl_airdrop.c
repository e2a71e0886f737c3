/* sharebuyctl airdrop: start (or resume) a day's airdrop run through the airdrop service and follow its progress. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "ctl.h"
#include "rpc.h"
#include "sharebuy/airdrop/v1/airdrop.pb-c.h"

static const char run_help[] =
        "Start the airdrop run of business day D (or the next day to run), or resume it, and follow it until it\n"
        "completes: a progress bar on stderr, the run's totals and timings on stdout (--json: one JSON document).\n"
        "A day already completed is reported unchanged (replayed). Days run in order and only after their release\n"
        "time; the service refuses others with the reason.\n"
        "\n"
        "Options:\n"
        "  --day YYYY-MM-DD     the business day (default: the next day to run)\n"
        "  --target HOST:PORT   the airdrop service (default 127.0.0.1:50054)\n"
        "  --token TOKEN        an ADMIN access token (default: env SB_ADMIN_TOKEN)\n"
        "  --private FILE       or mint a short ADMIN token with identity's signing key\n"
        "  --no-wait            start it and return at once\n"
        "  --timeout-s N        give up following after N seconds (default 3600; the run goes on)\n";

static int64_t mono_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void progress_bar(FILE *f, const Sharebuy__Airdrop__V1__Run *r) {
        unsigned total = r->chunks_total, done = r->chunks_done, width = 40;
        unsigned fill = total ? (unsigned) ((uint64_t) done * width / total) : 0;
        char bar[64];
        for (unsigned i = 0; i < width; i++)
                bar[i] = i < fill ? '#' : '.';
        bar[width] = '\0';
        fprintf(f, "\r%s [%s] %u/%u chunks, %" PRIu64 "/%" PRIu64 " accounts", r->business_day, bar, done, total,
                r->accounts_done, r->account_count);
        fflush(f);
}

static void print_run(sb_ctl_ctx *ctx, const Sharebuy__Airdrop__V1__Run *r, bool replayed) {
        static const char *const status[] = {"UNSPECIFIED", "RUNNING", "COMPLETED", "INTERRUPTED"};
        const char *s = (unsigned) r->status < 4 ? status[r->status] : "?";
        if (ctx->json) {
                fprintf(ctx->out,
                        "{\"business_day\":\"%s\",\"status\":\"%s\",\"replayed\":%s,\"release_sp_units\":%" PRId64
                        ",\"allotted_sp_units\":%" PRId64 ",\"cut_sp_units\":%" PRId64 ",\"cost_cv_units\":%" PRId64
                        ",\"price_micro_yuan\":%" PRId64 ",\"account_count\":%" PRIu64
                        ",\"total_active_cv_units\":%" PRId64 ",\"chunks_done\":%u,\"chunks_total\":%u"
                        ",\"started_unix_ms\":%" PRId64 ",\"finished_unix_ms\":%" PRId64 ",\"duration_ms\":%" PRId64
                        ",\"resumes\":%u}\n",
                        r->business_day, s, replayed ? "true" : "false", r->release_sp_units, r->allotted_sp_units,
                        r->cut_sp_units, r->cost_cv_units, r->price_micro_yuan, r->account_count,
                        r->total_active_cv_units, r->chunks_done, r->chunks_total, r->started_unix_ms,
                        r->finished_unix_ms, r->duration_ms, r->resumes);
                return;
        }
        fprintf(ctx->out,
                "%s %s%s: released %" PRId64 " SP units to %" PRIu64 " accounts (cut %" PRId64 ", CV cost %" PRId64
                ") at %" PRId64 " micro-yuan/SP, %u chunks, %" PRId64 " ms, %u resumes\n",
                r->business_day, s, replayed ? " (already)" : "", r->allotted_sp_units, r->account_count,
                r->cut_sp_units, r->cost_cv_units, r->price_micro_yuan, r->chunks_total, r->duration_ms, r->resumes);
}

static int cmd_run(int argc, char **argv, sb_ctl_ctx *ctx) {
        const char *day = "", *target = "127.0.0.1:50054", *token = getenv("SB_ADMIN_TOKEN"), *priv = NULL;
        bool wait = true;
        unsigned long long timeout_s = 3600;
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
                if (strcmp(a, "--no-wait") == 0) {
                        wait = false;
                        continue;
                }
                if (!v)
                        return sb_ctl_usage_error(ctx, "airdrop run: %s needs a value (try --help)", a);
                if (strcmp(a, "--day") == 0)
                        day = v;
                else if (strcmp(a, "--target") == 0)
                        target = v;
                else if (strcmp(a, "--token") == 0)
                        token = v;
                else if (strcmp(a, "--private") == 0)
                        priv = v;
                else if (strcmp(a, "--timeout-s") == 0) {
                        if (sb_ctl_parse_uint(v, 86400 * 7, &timeout_s) < 0 || timeout_s == 0)
                                return sb_ctl_usage_error(ctx, "airdrop run: --timeout-s takes 1..604800");
                } else
                        return sb_ctl_usage_error(ctx, "airdrop run: unknown argument %s (try --help)", a);
                i++;
        }
        char minted[SB_AUTH_TOKEN_MAX];
        if (priv) {
                char err[512];
                sb_auth_signer *s = NULL;
                if (sb_auth_signer_load(priv, &s, err, sizeof err) < 0)
                        return sb_ctl_error(ctx, "airdrop run: %s", err);
                sb_claims c;
                memset(&c, 0, sizeof c);
                c.role = SB_ROLE_ADMIN;
                snprintf(c.sub, sizeof c.sub, "ctl:ADMIN:0");
                c.iat = (int64_t) time(NULL);
                c.exp = c.iat + (int64_t) timeout_s + 600;
                int n = sb_auth_sign(s, &c, minted, sizeof minted);
                sb_auth_signer_free(s);
                if (n < 0)
                        return sb_ctl_error(ctx, "airdrop run: cannot sign a token");
                token = minted;
        }
        if (!token || !*token)
                return sb_ctl_usage_error(ctx, "airdrop run needs an ADMIN token: --token, SB_ADMIN_TOKEN or --private");

        sb_rpc_init();
        sb_rpc_client *cli = NULL;
        char err[256];
        sb_rpc_client_config cc = {.target = target};
        if (sb_rpc_client_new(&cc, &cli, err, sizeof err) < 0) {
                sb_rpc_shutdown();
                return sb_ctl_error(ctx, "airdrop run: %s", err);
        }
        int rc = SB_CTL_EXIT_OK;
        char msg[SB_RPC_MESSAGE_MAX], reason[SB_RPC_REASON_MAX] = "";
        sb_rpc_call_opts o = {.deadline_ms = 30000, .bearer = token, .ret_reason = reason};
        Sharebuy__Airdrop__V1__RunDayRequest req = SHAREBUY__AIRDROP__V1__RUN_DAY_REQUEST__INIT;
        req.business_day = (char *) day;
        ProtobufCMessage *out = NULL;
        sb_status st = sb_rpc_client_call(cli, "/sharebuy.airdrop.v1.Airdrop/RunDay", &req.base,
                                          &sharebuy__airdrop__v1__run_day_response__descriptor, &o, &out, msg,
                                          sizeof msg);
        if (st != SB_OK) {
                rc = sb_ctl_error(ctx, "airdrop run: %s%s%s: %s", sb_status_name(st), *reason ? " " : "", reason, msg);
                goto done;
        }
        Sharebuy__Airdrop__V1__RunDayResponse *resp = (void *) out;
        bool replayed = resp->replayed;
        char the_day[16];
        snprintf(the_day, sizeof the_day, "%s", resp->run->business_day);
        Sharebuy__Airdrop__V1__Run *run = resp->run;
        int64_t t0 = mono_ms();
        bool tty = isatty(fileno(ctx->err));
        while (wait && run->status != SHAREBUY__AIRDROP__V1__RUN_STATUS__RUN_STATUS_COMPLETED) {
                if (mono_ms() - t0 > (int64_t) timeout_s * 1000) {
                        rc = sb_ctl_error(ctx, "airdrop run: %s still running after %llu s (it goes on; see GetRun)",
                                          the_day, timeout_s);
                        break;
                }
                if (tty)
                        progress_bar(ctx->err, run);
                usleep(200000);
                Sharebuy__Airdrop__V1__GetRunRequest g = SHAREBUY__AIRDROP__V1__GET_RUN_REQUEST__INIT;
                g.business_day = the_day;
                ProtobufCMessage *gout = NULL;
                st = sb_rpc_client_call(cli, "/sharebuy.airdrop.v1.Airdrop/GetRun", &g.base,
                                        &sharebuy__airdrop__v1__run__descriptor, &o, &gout, msg, sizeof msg);
                if (st != SB_OK)
                        continue; /* the service may be restarting; the run resumes there */
                if (run != resp->run)
                        protobuf_c_message_free_unpacked(&run->base, NULL);
                run = (void *) gout;
        }
        if (tty && wait) {
                progress_bar(ctx->err, run);
                fputc('\n', ctx->err);
        }
        if (rc == SB_CTL_EXIT_OK)
                print_run(ctx, run, replayed);
        if (run != resp->run)
                protobuf_c_message_free_unpacked(&run->base, NULL);
        protobuf_c_message_free_unpacked(out, NULL);
done:
        sb_rpc_client_free(cli);
        sb_rpc_shutdown();
        return rc;
}

static const sb_ctl_subcommand subs[] = {
        {"run", "[--day YYYY-MM-DD] [--target HOST:PORT] [--token T | --private FILE] [--no-wait] [--timeout-s N]",
         run_help, cmd_run},
};

static int run_airdrop(int argc, char **argv, sb_ctl_ctx *ctx) {
        return sb_ctl_dispatch("airdrop", "The daily airdrop: run a day (admin).", subs, sizeof subs / sizeof subs[0],
                               argc, argv, ctx);
}

const sb_ctl_command sb_ctl_airdrop_command = {
        .name = "airdrop",
        .summary = "run a day's airdrop and follow its progress",
        .run = run_airdrop,
};
