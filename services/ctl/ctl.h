/* sharebuyctl: the administrator's tool for every service.
 *
 * The program is this library plus a thin main.c, so tests run the real commands in-process. A command group
 * (migrate, db, and later ledger, airdrop, member, region ...) lives in its own file ctl_<group>.c, defines one
 * `const sb_ctl_command sb_ctl_<group>_command`, and is listed once in the table in ctl.c (and declared below).
 *
 * Command line:  sharebuyctl [common options] GROUP [SUBCOMMAND] [options]
 * Common options are accepted anywhere before "--" and removed before a group sees its arguments:
 *   --json                 machine-readable output (one JSON document on stdout)
 *   --socket PATH          Unix socket             (env SB_DB_SOCKET)
 *   --host HOST            TCP host; wins over the socket when given as a flag (env SB_DB_HOST, used when no
 *                          socket is set)
 *   --port N               TCP port                (env SB_DB_PORT, default 3306)
 *   --user NAME            administrator account   (env SB_DB_ADMIN_USER, default root)
 *                          the password only from the environment: SB_DB_ADMIN_PASSWORD
 *   --connect-timeout S    seconds (default 10)
 *   --migrations-dir DIR   (env SB_MIGRATIONS_DIR; default: the source tree's migrations/ when run from the
 *                          build tree, else the installed <datadir>/sharebuy/migrations)
 * Exit codes: SB_CTL_EXIT_OK, SB_CTL_EXIT_FAILURE, SB_CTL_EXIT_USAGE. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "db/db.h"

enum {
    SB_CTL_EXIT_OK = 0,
    SB_CTL_EXIT_FAILURE = 1,
    SB_CTL_EXIT_USAGE = 2,
};

#define SB_CTL_ERROR_SIZE 2048

typedef struct sb_ctl_ctx {
    FILE *out;                  /* results (text, or the JSON document) */
    FILE *err;                  /* human-readable errors and progress */
    bool json;
    sb_db_config db;            /* the administrator's connection, from flags and environment */
    const char *migrations_dir;
    char last_error[SB_CTL_ERROR_SIZE]; /* the last message given to sb_ctl_error(), for JSON output */
} sb_ctl_ctx;

typedef struct sb_ctl_command {
    const char *name;    /* the group's word on the command line, e.g. "migrate" */
    const char *summary; /* one line for `sharebuyctl --help` */
    /* Runs the group. argv[0] is the group's name; the common options are already removed and applied to ctx.
     * Returns an exit code. */
    int (*run)(int argc, char **argv, sb_ctl_ctx *ctx);
} sb_ctl_command;

/* A subcommand of a group, for sb_ctl_dispatch(). */
typedef struct sb_ctl_subcommand {
    const char *name;    /* e.g. "up" */
    const char *usage;   /* the argument synopsis after "sharebuyctl GROUP NAME", e.g. "[--lock-timeout S]" */
    const char *help;    /* a paragraph for `sharebuyctl GROUP NAME --help` (its first line is the summary) */
    /* argv[0] is the subcommand's name. Returns an exit code. */
    int (*run)(int argc, char **argv, sb_ctl_ctx *ctx);
} sb_ctl_subcommand;

/* The command groups. */
extern const sb_ctl_command sb_ctl_migrate_command;
extern const sb_ctl_command sb_ctl_db_command;
extern const sb_ctl_command sb_ctl_region_command;
extern const sb_ctl_command sb_ctl_health_command;
extern const sb_ctl_command sb_ctl_auth_command;
extern const sb_ctl_command sb_ctl_ledger_command;
extern const sb_ctl_command sb_ctl_airdrop_command;
extern const sb_ctl_command sb_ctl_admin_command;
extern const sb_ctl_command sb_ctl_member_command;

/* Runs sharebuyctl with argv (argv[0] is the program name), writing to out and err. Reads the environment for
 * defaults. Returns the exit code. Thread-safe as long as the environment does not change meanwhile. */
int sb_ctl_main(int argc, char **argv, FILE *out, FILE *err);

/* For a group's run(): finds argv[1] in subs and runs it; answers --help / help for the group and for each
 * subcommand (`GROUP SUB --help`) on ctx->out. Unknown or missing subcommands are usage errors. */
int sb_ctl_dispatch(const char *group, const char *group_help, const sb_ctl_subcommand *subs, size_t n_subs,
                    int argc, char **argv, sb_ctl_ctx *ctx);

/* Prints "sharebuyctl: <message>" on ctx->err and keeps the message in ctx->last_error. Returns
 * SB_CTL_EXIT_FAILURE, so that `return sb_ctl_error(ctx, ...)` reads naturally. */
int sb_ctl_error(sb_ctl_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Like sb_ctl_error() for a bad command line; returns SB_CTL_EXIT_USAGE. */
int sb_ctl_usage_error(sb_ctl_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Opens the administrator's connection described by ctx->db. On failure reports through sb_ctl_error() and
 * returns a negative code; *ret is written only on success. */
int sb_ctl_connect(sb_ctl_ctx *ctx, sb_db **ret);

/* Gives each service account (sb_identity, sb_wallet, sb_merchant, sb_airdrop, sb_region, at 'localhost' and
 * '127.0.0.1') the password in SB_DB_PASSWORD_IDENTITY, _WALLET, _MERCHANT, _AIRDROP, _REGION and unlocks it,
 * skipping the services whose variable is unset (an error instead when require_all). The password reaches the
 * server only as a bound parameter (the server hashes it; the hash, checked to be hex, goes into ALTER USER).
 * Reports failures through sb_ctl_error() and returns a negative code; on success *ret_count is the number of
 * services set. */
int sb_ctl_db_set_passwords(sb_ctl_ctx *ctx, sb_db *db, bool require_all, unsigned *ret_count);

/* Writes s as a JSON string (with quotes and escapes) to f; NULL is written as null. */
void sb_ctl_json_str(FILE *f, const char *s);

/* Parses a whole non-negative decimal number no larger than max. Returns 0 or -EINVAL. */
int sb_ctl_parse_uint(const char *s, unsigned long long max, unsigned long long *ret);
