/* sharebuyctl: common options, the table of command groups, and helpers shared by the groups. */
#include "ctl.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

/* The command groups: add a line here (and a declaration in ctl.h) for a new ctl_<group>.c. */
static const sb_ctl_command *const commands[] = {
    &sb_ctl_migrate_command,
    &sb_ctl_db_command,
    &sb_ctl_region_command,
    &sb_ctl_health_command,
    &sb_ctl_auth_command,
    &sb_ctl_ledger_command,
    &sb_ctl_airdrop_command,
    &sb_ctl_admin_command,
    &sb_ctl_member_command,
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])
#define ARGS_MAX 256

#ifndef SB_MIGRATIONS_SRC_DIR
#define SB_MIGRATIONS_SRC_DIR "migrations"
#endif
#ifndef SB_MIGRATIONS_INSTALL_DIR
#define SB_MIGRATIONS_INSTALL_DIR "/usr/local/share/sharebuy/migrations"
#endif
#ifndef SB_BUILD_ROOT
#define SB_BUILD_ROOT ""
#endif

static const char main_help[] =
    "Usage: sharebuyctl [common options] GROUP [SUBCOMMAND] [options]\n"
    "\n"
    "The administrator's tool for every sharebuy service.\n"
    "\n"
    "Common options (anywhere on the line):\n"
    "  --json                 one JSON document on stdout\n"
    "  --socket PATH          MariaDB Unix socket (env SB_DB_SOCKET)\n"
    "  --host HOST            MariaDB TCP host (env SB_DB_HOST, used when no socket is set)\n"
    "  --port N               MariaDB TCP port (env SB_DB_PORT, default 3306)\n"
    "  --user NAME            administrator account (env SB_DB_ADMIN_USER, default root);\n"
    "                         its password only from env SB_DB_ADMIN_PASSWORD\n"
    "  --connect-timeout S    seconds to wait for a connection (default 10)\n"
    "  --migrations-dir DIR   the SQL migrations (env SB_MIGRATIONS_DIR)\n"
    "  -h, --help             this help; `sharebuyctl GROUP --help` for a group\n"
    "\n"
    "Exit codes: 0 success, 1 failure, 2 usage error.\n"
    "\n"
    "Groups:\n";

static void vreport(sb_ctl_ctx *ctx, const char *fmt, va_list ap) {
    vsnprintf(ctx->last_error, sizeof ctx->last_error, fmt, ap);
    fprintf(ctx->err, "sharebuyctl: %s\n", ctx->last_error);
}

int sb_ctl_error(sb_ctl_ctx *ctx, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport(ctx, fmt, ap);
    va_end(ap);
    return SB_CTL_EXIT_FAILURE;
}

int sb_ctl_usage_error(sb_ctl_ctx *ctx, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport(ctx, fmt, ap);
    va_end(ap);
    fprintf(ctx->err, "Try 'sharebuyctl --help'.\n");
    return SB_CTL_EXIT_USAGE;
}

void sb_ctl_json_str(FILE *f, const char *s) {
    if (!s) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
        switch (*p) {
        case '"':
            fputs("\\\"", f);
            break;
        case '\\':
            fputs("\\\\", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        case '\r':
            fputs("\\r", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        default:
            if (*p < 0x20)
                fprintf(f, "\\u%04x", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}

int sb_ctl_parse_uint(const char *s, unsigned long long max, unsigned long long *ret) {
    if (!s || !*s || *s == '-' || *s == '+')
        return -EINVAL;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return -EINVAL;
    *ret = v;
    return 0;
}

int sb_ctl_connect(sb_ctl_ctx *ctx, sb_db **ret) {
    char msg[1024];
    sb_db *db;
    int r = sb_db_open(&ctx->db, &db, msg, sizeof msg);
    if (r < 0) {
        sb_ctl_error(ctx, "%s", msg);
        return r;
    }
    *ret = db;
    return 0;
}

int sb_ctl_dispatch(const char *group, const char *group_help, const sb_ctl_subcommand *subs, size_t n_subs,
                    int argc, char **argv, sb_ctl_ctx *ctx) {
    const char *sub = argc > 1 ? argv[1] : NULL;
    if (!sub || strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        fprintf(ctx->out, "Usage: sharebuyctl %s SUBCOMMAND [options]\n\n%s\n\nSubcommands:\n", group, group_help);
        for (size_t i = 0; i < n_subs; i++) {
            const char *nl = strchr(subs[i].help, '\n');
            int len = nl ? (int) (nl - subs[i].help) : (int) strlen(subs[i].help);
            fprintf(ctx->out, "  %-14s %.*s\n", subs[i].name, len, subs[i].help);
        }
        fprintf(ctx->out, "\nRun 'sharebuyctl %s SUBCOMMAND --help' for more.\n", group);
        return sub ? SB_CTL_EXIT_OK : SB_CTL_EXIT_USAGE;
    }
    for (size_t i = 0; i < n_subs; i++) {
        if (strcmp(sub, subs[i].name) != 0)
            continue;
        for (int a = 2; a < argc; a++) {
            if (strcmp(argv[a], "--") == 0)
                break;
            if (strcmp(argv[a], "--help") == 0 || strcmp(argv[a], "-h") == 0) {
                fprintf(ctx->out, "Usage: sharebuyctl %s %s %s\n\n%s\n", group, subs[i].name, subs[i].usage,
                        subs[i].help);
                return SB_CTL_EXIT_OK;
            }
        }
        return subs[i].run(argc - 1, argv + 1, ctx);
    }
    return sb_ctl_usage_error(ctx, "unknown subcommand '%s %s'", group, sub);
}

/* Picks the default migrations folder: the source tree's when this program runs from the build tree. */
static const char *default_migrations_dir(void) {
    static const char build_root[] = SB_BUILD_ROOT;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0 && sizeof build_root > 1) {
        exe[n] = '\0';
        size_t len = sizeof build_root - 1;
        if (strncmp(exe, build_root, len) == 0 && exe[len] == '/')
            return SB_MIGRATIONS_SRC_DIR;
    }
    return SB_MIGRATIONS_INSTALL_DIR;
}

static const char *env_or(const char *name, const char *fallback) {
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

/* Takes the common options out of argv (in place), applying them to ctx. Returns the new argc, or -1 after a
 * usage error was reported. */
static int take_common_options(int argc, char **argv, sb_ctl_ctx *ctx, bool *ret_help) {
    int out = 1;
    bool host_flag = false, socket_flag = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            while (i < argc)
                argv[out++] = argv[i++];
            break;
        }
        static const char *const with_value[] = {"--socket", "--host", "--port", "--user", "--connect-timeout",
                                                 "--migrations-dir"};
        const char *value = NULL;
        int which = -1;
        for (int k = 0; k < (int) (sizeof with_value / sizeof with_value[0]); k++) {
            size_t len = strlen(with_value[k]);
            if (strncmp(a, with_value[k], len) == 0 && a[len] == '=') {
                which = k;
                value = a + len + 1;
            } else if (strcmp(a, with_value[k]) == 0) {
                if (i + 1 >= argc) {
                    sb_ctl_usage_error(ctx, "option %s needs a value", a);
                    return -1;
                }
                which = k;
                value = argv[++i];
            }
            if (which >= 0)
                break;
        }
        unsigned long long n;
        switch (which) {
        case 0:
            ctx->db.unix_socket = value;
            socket_flag = true;
            break;
        case 1:
            ctx->db.host = value;
            host_flag = true;
            break;
        case 2:
            if (sb_ctl_parse_uint(value, 65535, &n) < 0 || n == 0) {
                sb_ctl_usage_error(ctx, "bad --port: %s", value);
                return -1;
            }
            ctx->db.port = (unsigned) n;
            break;
        case 3:
            ctx->db.user = value;
            break;
        case 4:
            if (sb_ctl_parse_uint(value, 3600, &n) < 0 || n == 0) {
                sb_ctl_usage_error(ctx, "bad --connect-timeout: %s", value);
                return -1;
            }
            ctx->db.connect_timeout_s = (unsigned) n;
            break;
        case 5:
            ctx->migrations_dir = value;
            break;
        default:
            if (strcmp(a, "--json") == 0)
                ctx->json = true;
            else {
                if (out == 1 && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0))
                    *ret_help = true; /* before the group: the program's help */
                argv[out++] = argv[i];
            }
        }
    }
    /* A socket or host given as a flag wins over the environment's. */
    if (host_flag && !socket_flag)
        ctx->db.unix_socket = NULL;
    if (socket_flag && !host_flag)
        ctx->db.host = NULL;
    return out;
}

int sb_ctl_main(int argc, char **argv, FILE *out, FILE *err) {
    sb_ctl_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.out = out;
    ctx.err = err;
    if (argc > ARGS_MAX)
        return sb_ctl_usage_error(&ctx, "too many arguments (more than %d)", ARGS_MAX);
    if (sodium_init() < 0)
        return sb_ctl_error(&ctx, "libsodium cannot start");

    const char *port = getenv("SB_DB_PORT");
    unsigned long long n;
    ctx.db.unix_socket = env_or("SB_DB_SOCKET", NULL);
    ctx.db.host = ctx.db.unix_socket ? NULL : env_or("SB_DB_HOST", NULL);
    if (port && *port && sb_ctl_parse_uint(port, 65535, &n) == 0)
        ctx.db.port = (unsigned) n;
    ctx.db.user = env_or("SB_DB_ADMIN_USER", "root");
    ctx.db.password = getenv("SB_DB_ADMIN_PASSWORD");
    ctx.db.connect_timeout_s = 10;
    /* Migrations may run long statements (an ALTER of a big table): wait up to an hour for an answer. */
    ctx.db.read_timeout_s = 3600;
    ctx.migrations_dir = env_or("SB_MIGRATIONS_DIR", NULL);

    /* Work on a copy: the common options are taken out of it. */
    char *args[ARGS_MAX + 1];
    for (int i = 0; i < argc; i++)
        args[i] = argv[i];
    args[argc] = NULL;
    bool help = false;
    int nargs = take_common_options(argc, args, &ctx, &help);
    if (nargs < 0)
        return SB_CTL_EXIT_USAGE;
    args[nargs] = NULL;
    if (!ctx.migrations_dir)
        ctx.migrations_dir = default_migrations_dir();

    if (help || nargs < 2 || strcmp(args[1], "help") == 0) {
        fputs(main_help, nargs < 2 && !help ? err : out);
        for (size_t i = 0; i < N_COMMANDS; i++)
            fprintf(nargs < 2 && !help ? err : out, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
        return nargs < 2 && !help ? SB_CTL_EXIT_USAGE : SB_CTL_EXIT_OK;
    }
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(args[1], commands[i]->name) == 0)
            return commands[i]->run(nargs - 1, args + 1, &ctx);
    return sb_ctl_usage_error(&ctx, "unknown command '%s'", args[1]);
}
