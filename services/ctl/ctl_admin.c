/* sharebuyctl admin: the first platform administrator, written straight into identity's tables (identity may not
 * be running yet, and nobody holds an ADMIN token before this). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "ctl.h"
#include "identity_util.h"

static int read_password(sb_ctl_ctx *ctx, char *out, size_t n) {
        const char *env = getenv("SB_ADMIN_PASSWORD");
        if (env && *env) {
                if (strlen(env) >= n)
                        return -EINVAL;
                snprintf(out, n, "%s", env);
                return 0;
        }
        if (!fgets(out, (int)n, stdin))
                return -EINVAL;
        out[strcspn(out, "\r\n")] = '\0';
        (void)ctx;
        return 0;
}

static int run_create(int argc, char **argv, sb_ctl_ctx *ctx) {
        const char *login = NULL, *phone = NULL, *name = "";
        for (int i = 1; i < argc; i++) {
                const char *v = i + 1 < argc ? argv[i + 1] : NULL;
                if (!v)
                        return sb_ctl_usage_error(ctx, "admin create: %s needs a value", argv[i]);
                if (strcmp(argv[i], "--login") == 0)
                        login = v;
                else if (strcmp(argv[i], "--phone") == 0)
                        phone = v;
                else if (strcmp(argv[i], "--name") == 0)
                        name = v;
                else
                        return sb_ctl_usage_error(ctx, "admin create: unknown argument %s", argv[i]);
                i++;
        }
        if (!login && !phone)
                return sb_ctl_usage_error(ctx, "admin create needs --login LOGIN or --phone PHONE");
        if (login && !identity_login_valid(login))
                return sb_ctl_usage_error(ctx, "--login: 3 to 32 characters of a-z, 0-9, '.', '_' and '-'");
        if (phone && !identity_phone_valid(phone))
                return sb_ctl_usage_error(ctx, "--phone: a mainland mobile number of 11 digits, 1[3-9]xxxxxxxxx");
        if (!identity_text_valid(name, 32))
                return sb_ctl_usage_error(ctx, "--name: at most 32 characters of UTF-8 text");
        char password[256], why[160], hash[SB_AUTH_HASH_MAX];
        if (read_password(ctx, password, sizeof password) < 0)
                return sb_ctl_error(ctx, "no password: set SB_ADMIN_PASSWORD or give it on standard input");
        if (!sb_auth_password_acceptable(password, why, sizeof why))
                return sb_ctl_error(ctx, "the password is not acceptable: %s", why);
        int r = sb_auth_password_hash(password, hash);
        memset(password, 0, sizeof password);
        if (r < 0)
                return sb_ctl_error(ctx, "cannot hash the password (not enough memory for argon2id)");
        sb_db *db = NULL;
        if (sb_ctl_connect(ctx, &db) < 0)
                return SB_CTL_EXIT_FAILURE;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        sb_db_stmt *s = NULL;
        uint64_t uid = 0;
        r = sb_db_exec_text(db, "BEGIN", 5);
        if (r == 0)
                r = sb_db_prepare(db,
                                  "INSERT INTO sharebuy_identity.users (kind, phone, login, login_merchant_id, "
                                  "display_name, password_hash, created_ms) VALUES (2,?,?,0,?,?,?)",
                                  &s);
        if (r == 0) {
                sb_db_bind_str(s, 0, phone);
                sb_db_bind_str(s, 1, login);
                sb_db_bind_str(s, 2, name);
                sb_db_bind_str(s, 3, hash);
                sb_db_bind_i64(s, 4, now);
                r = sb_db_execute(s);
                uid = r == 0 ? sb_db_insert_id(s) : 0;
        }
        if (r == 0)
                r = sb_db_prepare(db,
                                  "INSERT INTO sharebuy_identity.grants (user_id, role, merchant_id, centre_id, "
                                  "granted_ms) VALUES (?,6,0,0,?)",
                                  &s);
        if (r == 0) {
                sb_db_bind_u64(s, 0, uid);
                sb_db_bind_i64(s, 1, now);
                r = sb_db_execute(s);
        }
        if (r == 0)
                r = sb_db_prepare(db,
                                  "INSERT INTO sharebuy_identity.audit_events (type, occurred_ms, subject_user_id, "
                                  "peer, detail) VALUES (8, ?, ?, 'sharebuyctl', 'first admin created with "
                                  "sharebuyctl admin create')",
                                  &s);
        if (r == 0) {
                sb_db_bind_i64(s, 0, now);
                sb_db_bind_u64(s, 1, uid);
                r = sb_db_execute(s);
        }
        if (r == 0)
                r = sb_db_exec_text(db, "COMMIT", 6);
        if (r < 0) {
                (void)sb_db_exec_text(db, "ROLLBACK", 8);
                int code = r;
                const char *msg = sb_db_errmsg(db);
                char m[256];
                snprintf(m, sizeof m, "%s", msg);
                sb_db_close(db);
                if (code == -EEXIST)
                        return sb_ctl_error(ctx, "the %s is taken already", login ? "login" : "phone number");
                return sb_ctl_error(ctx, "cannot create the admin: %s", m);
        }
        sb_db_close(db);
        if (ctx->json)
                fprintf(ctx->out, "{\"user_id\":%" PRIu64 "}\n", uid);
        else
                fprintf(ctx->out, "created admin %" PRIu64 " (%s); sign in with SignIn and role ADMIN\n", uid,
                        login ? login : phone);
        return SB_CTL_EXIT_OK;
}

static const sb_ctl_subcommand admin_subs[] = {
        { "create", "(--login LOGIN | --phone PHONE) [--name NAME]",
          "Create a platform administrator (the first one: later ones with Identity/CreateStaff). The password is "
          "read from SB_ADMIN_PASSWORD, else from the first line of standard input; it must pass the password "
          "policy and is stored as an argon2id hash only.",
          run_create },
};

static int run_admin(int argc, char **argv, sb_ctl_ctx *ctx) {
        return sb_ctl_dispatch("admin", "Platform administrators.", admin_subs,
                               sizeof admin_subs / sizeof admin_subs[0], argc, argv, ctx);
}

const sb_ctl_command sb_ctl_admin_command = {
        .name = "admin",
        .summary = "create the first platform administrator",
        .run = run_admin,
};
