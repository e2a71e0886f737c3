/* sharebuyctl db: database administration beyond migrations. Now: the service accounts' passwords. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

typedef struct service_account {
    const char *user;
    const char *env;
} service_account;

/* The accounts made by migrations/0001_schemas.sql. */
static const service_account accounts[] = {
    {"sb_identity", "SB_DB_PASSWORD_IDENTITY"}, {"sb_wallet", "SB_DB_PASSWORD_WALLET"},
    {"sb_merchant", "SB_DB_PASSWORD_MERCHANT"}, {"sb_airdrop", "SB_DB_PASSWORD_AIRDROP"},
    {"sb_region", "SB_DB_PASSWORD_REGION"},
};
static const char *const account_hosts[] = {"localhost", "127.0.0.1"};

#define N_ACCOUNTS (sizeof accounts / sizeof accounts[0])
#define PASSWORD_MAX 256

/* A mysql_native_password hash: '*' and 40 upper-case hex digits. Checked before it goes into SQL text. */
static bool valid_hash(const char *h) {
    if (strlen(h) != 41 || h[0] != '*')
        return false;
    for (int i = 1; i < 41; i++)
        if (!isxdigit((unsigned char) h[i]) || islower((unsigned char) h[i]))
            return false;
    return true;
}

static int set_one(sb_ctl_ctx *ctx, sb_db *db, const service_account *a, const char *password) {
    sb_db_stmt *s;
    char hash[64];
    /* The server hashes the password, so it travels only as a bound parameter and never sits in SQL text or in
     * the server's logs. */
    if (sb_db_prepare(db, "SELECT PASSWORD(?)", &s) < 0 || sb_db_bind_str(s, 0, password) < 0 ||
        sb_db_execute(s) < 0 || sb_db_fetch(s) != 1)
        return sb_ctl_error(ctx, "cannot hash the password of %s: %s", a->user, sb_db_errmsg(db)), -EIO;
    int r = sb_db_col_str(s, 0, hash, sizeof hash);
    while (sb_db_fetch(s) == 1) {
    }
    if (r < 0 || !valid_hash(hash))
        return sb_ctl_error(ctx, "the server made an unexpected password hash for %s", a->user), -EIO;
    for (size_t h = 0; h < sizeof account_hosts / sizeof account_hosts[0]; h++) {
        if (sb_db_prepare(db, "SELECT COUNT(*) FROM mysql.user WHERE user = ? AND host = ?", &s) < 0 ||
            sb_db_bind_str(s, 0, a->user) < 0 || sb_db_bind_str(s, 1, account_hosts[h]) < 0 ||
            sb_db_execute(s) < 0 || sb_db_fetch(s) != 1)
            return sb_ctl_error(ctx, "cannot look up %s: %s", a->user, sb_db_errmsg(db)), -EIO;
        int64_t n = 0;
        sb_db_col_i64(s, 0, &n);
        while (sb_db_fetch(s) == 1) {
        }
        if (n == 0)
            return sb_ctl_error(ctx, "account '%s'@'%s' does not exist: run `sharebuyctl migrate up` first", a->user,
                                account_hosts[h]),
                   -ENOENT;
        /* Account names are constants of this file; the hash was checked above. */
        char sql[256];
        snprintf(sql, sizeof sql, "ALTER USER '%s'@'%s' IDENTIFIED BY PASSWORD '%s' ACCOUNT UNLOCK", a->user,
                 account_hosts[h], hash);
        if (sb_db_exec_text(db, sql, strlen(sql)) < 0)
            return sb_ctl_error(ctx, "cannot set the password of '%s'@'%s': %s", a->user, account_hosts[h],
                                sb_db_errmsg(db)),
                   -EIO;
    }
    return 0;
}

int sb_ctl_db_set_passwords(sb_ctl_ctx *ctx, sb_db *db, bool require_all, unsigned *ret_count) {
    unsigned count = 0;
    for (size_t i = 0; i < N_ACCOUNTS; i++) {
        const char *pw = getenv(accounts[i].env);
        if (!pw || !*pw) {
            if (require_all)
                return sb_ctl_error(ctx, "%s is not set", accounts[i].env), -EINVAL;
            continue;
        }
        if (strlen(pw) > PASSWORD_MAX)
            return sb_ctl_error(ctx, "%s is longer than %d bytes", accounts[i].env, PASSWORD_MAX), -EINVAL;
        int r = set_one(ctx, db, &accounts[i], pw);
        if (r < 0)
            return r;
        count++;
    }
    *ret_count = count;
    return 0;
}

static int cmd_set_passwords(int argc, char **argv, sb_ctl_ctx *ctx) {
    bool require_all = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--all") == 0)
            require_all = true;
        else
            return sb_ctl_usage_error(ctx, "unexpected argument '%s' for db set-passwords", argv[i]);
    }
    sb_db *db;
    unsigned count = 0;
    int r = sb_ctl_connect(ctx, &db);
    if (r == 0) {
        r = sb_ctl_db_set_passwords(ctx, db, require_all, &count);
        sb_db_close(db);
    }
    if (r == 0 && count == 0) {
        sb_ctl_error(ctx, "no SB_DB_PASSWORD_<SERVICE> variable is set: nothing to do");
        r = -EINVAL;
    }
    if (ctx->json) {
        fprintf(ctx->out, "{\"ok\":%s,\"accounts_set\":%u", r == 0 ? "true" : "false", count);
        if (r < 0) {
            fputs(",\"error\":", ctx->out);
            sb_ctl_json_str(ctx->out, ctx->last_error);
        }
        fputs("}\n", ctx->out);
    } else if (r == 0) {
        fprintf(ctx->out, "set the passwords of %u service account%s\n", count, count == 1 ? "" : "s");
    }
    return r == 0 ? SB_CTL_EXIT_OK : SB_CTL_EXIT_FAILURE;
}

static const sb_ctl_subcommand subcommands[] = {
    {"set-passwords", "[--all]",
     "Set the service accounts' passwords from the environment and unlock them.\n"
     "\n"
     "Migrations create the accounts sb_identity, sb_wallet, sb_merchant, sb_airdrop and sb_region locked and\n"
     "without a password, so that no password is ever committed. This command reads SB_DB_PASSWORD_IDENTITY,\n"
     "SB_DB_PASSWORD_WALLET, SB_DB_PASSWORD_MERCHANT, SB_DB_PASSWORD_AIRDROP and SB_DB_PASSWORD_REGION, and\n"
     "sets each one that is present (--all: each one must be present). Running it again changes the passwords.\n"
     "`sharebuyctl migrate up` runs it too.\n",
     cmd_set_passwords},
};

static int run_db(int argc, char **argv, sb_ctl_ctx *ctx) {
    return sb_ctl_dispatch("db", "Database administration: the service accounts.", subcommands,
                           sizeof subcommands / sizeof subcommands[0], argc, argv, ctx);
}

const sb_ctl_command sb_ctl_db_command = {
    .name = "db",
    .summary = "database administration (set-passwords)",
    .run = run_db,
};
