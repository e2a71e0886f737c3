/* sharebuyctl ledger: checks of the wallet's ledger, run with the administrator's connection and the same code the
 * wallet's VerifyLedger RPC runs (services/wallet/wallet_ledger.c). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "wallet_ledger.h"

static const char verify_help[] =
    "Verify the wallet's ledger: recompute every hash chain of the journal, check every transaction balances per\n"
    "asset, every stored balance equals the sum of its entries, no holder (nor the treasury or the unreleased SP) is\n"
    "negative, and SP is conserved (all SP accounts sum to the cap). Read-only, in one consistent snapshot, so it is\n"
    "safe while the services post. Exit 0 when the ledger is sound, 1 when a check fails (each problem is printed).\n"
    "\n"
    "Options:\n"
    "  --from-tx ID   check the hash chains from transaction ID on (default: from the genesis)\n";

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int cmd_verify(int argc, char **argv, sb_ctl_ctx *ctx) {
    unsigned long long from = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--from-tx") == 0 && i + 1 < argc) {
            if (sb_ctl_parse_uint(argv[++i], UINT64_MAX, &from) < 0)
                return sb_ctl_usage_error(ctx, "ledger verify: --from-tx wants a transaction id");
        } else
            return sb_ctl_usage_error(ctx, "ledger verify: unknown argument \"%s\"", argv[i]);
    }
    sb_db *db;
    if (sb_ctl_connect(ctx, &db) < 0)
        return SB_CTL_EXIT_FAILURE;
    static const char use[] = "USE sharebuy_wallet";
    int r = sb_db_exec_text(db, use, sizeof use - 1);
    if (r < 0) {
        int rc = sb_ctl_error(ctx, "ledger verify: cannot use the schema sharebuy_wallet: %s", sb_db_errmsg(db));
        sb_db_close(db);
        return rc;
    }
    wallet_verify_report *rep = calloc(1, sizeof *rep);
    if (!rep) {
        sb_db_close(db);
        return sb_ctl_error(ctx, "ledger verify: out of memory");
    }
    int64_t t0 = mono_ms();
    r = wallet_ledger_verify(db, from, rep);
    int64_t took = mono_ms() - t0;
    if (r < 0) {
        int rc = sb_ctl_error(ctx, "ledger verify: the database failed: %s", sb_db_errmsg(db));
        free(rep);
        sb_db_close(db);
        return rc;
    }
    char hex[2 * WALLET_HASH_BYTES + 1];
    wallet_hash_hex(rep->last_hash, hex);
    const wallet_supply *su = &rep->supply;
    if (ctx->json) {
        fprintf(ctx->out, "{\"ok\":%s,\"problems\":[", rep->ok ? "true" : "false");
        for (size_t i = 0; i < rep->n_problems; i++) {
            if (i)
                fputc(',', ctx->out);
            sb_ctl_json_str(ctx->out, rep->problems[i]);
        }
        fprintf(ctx->out,
                "],\"transactions_checked\":%" PRIu64 ",\"accounts_checked\":%" PRIu64
                ",\"last_transaction_id\":%" PRIu64 ",\"last_chain_hash_hex\":\"%s\",\"supply\":{\"cap_sp_units\":%" PRId64
                ",\"unreleased_sp_units\":%" PRId64 ",\"treasury_sp_units\":%" PRId64 ",\"held_sp_units\":%" PRId64
                ",\"burned_sp_units\":%" PRId64 ",\"backing_pool_fen\":%" PRId64 "},\"duration_ms\":%" PRId64 "}\n",
                rep->transactions_checked, rep->accounts_checked, rep->last_tx_id, hex, su->cap, su->unreleased,
                su->treasury, su->held, su->burned, su->pool_fen, took);
    } else {
        for (size_t i = 0; i < rep->n_problems; i++)
            fprintf(ctx->out, "PROBLEM: %s\n", rep->problems[i]);
        fprintf(ctx->out,
                "%s: %" PRIu64 " transactions and %" PRIu64 " accounts checked in %" PRId64 " ms\n"
                "supply: cap %" PRId64 " = unreleased %" PRId64 " + treasury %" PRId64 " + held %" PRId64
                " + burned %" PRId64 " (0.0001 SP); backing pool %" PRId64 " fen\n",
                rep->ok ? "ledger OK" : "LEDGER BROKEN", rep->transactions_checked, rep->accounts_checked, took,
                su->cap, su->unreleased, su->treasury, su->held, su->burned, su->pool_fen);
        if (!rep->ok)
            snprintf(ctx->last_error, sizeof ctx->last_error, "the ledger failed %zu check(s)", rep->n_problems);
    }
    bool ok = rep->ok;
    free(rep);
    sb_db_close(db);
    return ok ? SB_CTL_EXIT_OK : SB_CTL_EXIT_FAILURE;
}

static const sb_ctl_subcommand ledger_subs[] = {
    {"verify", "[--from-tx ID]", verify_help, cmd_verify},
};

static int run_ledger(int argc, char **argv, sb_ctl_ctx *ctx) {
    return sb_ctl_dispatch("ledger", "Checks of the wallet's ledger.\n", ledger_subs,
                           sizeof ledger_subs / sizeof ledger_subs[0], argc, argv, ctx);
}

const sb_ctl_command sb_ctl_ledger_command = {
    .name = "ledger",
    .summary = "checks of the wallet's ledger (verify)",
    .run = run_ledger,
};
