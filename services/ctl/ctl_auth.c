/* sharebuyctl auth: the token-signing keys and service credentials. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth.h"
#include "ctl.h"

static int parse_u64(const char *s, uint64_t *ret) {
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || !end || *end || s[0] == '-' || s[0] == '\0')
                return -EINVAL;
        *ret = v;
        return 0;
}

static int run_keygen(int argc, char **argv, sb_ctl_ctx *ctx) {
        const char *priv = NULL, *pub = NULL;
        for (int i = 1; i < argc; i++) {
                if (i + 1 < argc && strcmp(argv[i], "--private") == 0)
                        priv = argv[++i];
                else if (i + 1 < argc && strcmp(argv[i], "--public") == 0)
                        pub = argv[++i];
                else
                        return sb_ctl_usage_error(ctx, "auth keygen: unknown argument %s", argv[i]);
        }
        if (!priv || !pub)
                return sb_ctl_usage_error(ctx, "auth keygen needs --private FILE and --public FILE");
        char err[512];
        if (sb_auth_keygen(priv, pub, err, sizeof err) < 0)
                return sb_ctl_error(ctx, "%s", err);
        sb_auth_signer *s = NULL;
        if (sb_auth_signer_load(priv, &s, err, sizeof err) < 0)
                return sb_ctl_error(ctx, "%s", err);
        if (ctx->json)
                fprintf(ctx->out, "{\"private\":\"%s\",\"public\":\"%s\",\"kid\":\"%s\"}\n", priv, pub,
                        sb_auth_signer_kid(s));
        else
                fprintf(ctx->out, "made key %s: private %s (keep it on identity's machine), public %s\n",
                        sb_auth_signer_kid(s), priv, pub);
        sb_auth_signer_free(s);
        return SB_CTL_EXIT_OK;
}

/* Parse "30s", "15m", "12h", "365d" into seconds. */
static int parse_ttl(const char *s, int64_t *ret) {
        char *end = NULL;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno || v <= 0 || !end)
                return -EINVAL;
        int64_t mul = *end == 's' ? 1 : *end == 'm' ? 60 : *end == 'h' ? 3600 : *end == 'd' ? 86400 : 0;
        if (!mul || end[1] != '\0' || v > 3650LL * 86400 / mul)
                return -EINVAL;
        *ret = (int64_t)v * mul;
        return 0;
}

static int run_token(int argc, char **argv, sb_ctl_ctx *ctx) {
        const char *priv = NULL, *role = NULL, *service = NULL;
        int64_t ttl = 900;
        sb_claims c;
        memset(&c, 0, sizeof c);
        bool is_service = strcmp(argv[0], "service-token") == 0;
        if (is_service)
                ttl = 365 * 86400;
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];
                const char *v = i + 1 < argc ? argv[i + 1] : NULL;
                int r = 0;
                if (!v)
                        return sb_ctl_usage_error(ctx, "auth %s: %s needs a value", argv[0], a);
                if (strcmp(a, "--private") == 0)
                        priv = v;
                else if (strcmp(a, "--service") == 0 && is_service)
                        service = v;
                else if (strcmp(a, "--role") == 0 && !is_service)
                        role = v;
                else if (strcmp(a, "--ttl") == 0)
                        r = parse_ttl(v, &ttl);
                else if (strcmp(a, "--uid") == 0 && !is_service)
                        r = parse_u64(v, &c.uid);
                else if (strcmp(a, "--merchant") == 0 && !is_service)
                        r = parse_u64(v, &c.merchant_id);
                else if (strcmp(a, "--terminal") == 0 && !is_service)
                        r = parse_u64(v, &c.terminal_id);
                else if (strcmp(a, "--centre") == 0 && !is_service)
                        r = parse_u64(v, &c.centre_id);
                else
                        return sb_ctl_usage_error(ctx, "auth %s: unknown argument %s", argv[0], a);
                if (r < 0)
                        return sb_ctl_usage_error(ctx, "auth %s: bad value for %s: %s", argv[0], a, v);
                i++;
        }
        if (!priv)
                return sb_ctl_usage_error(ctx, "auth %s needs --private FILE (identity's signing key)", argv[0]);
        if (is_service) {
                if (!service || !*service || strlen(service) >= sizeof c.svc)
                        return sb_ctl_usage_error(ctx, "auth service-token needs --service NAME (e.g. merchant)");
                c.role = SB_ROLE_SERVICE;
                snprintf(c.svc, sizeof c.svc, "%s", service);
                snprintf(c.sub, sizeof c.sub, "service:%s", service);
        } else {
                static const char *const names[] = { "MEMBER", "MERCHANT_OWNER", "CASHIER", "TERMINAL",
                                                     "CENTRE_OPERATOR", "ADMIN" };
                for (unsigned i = 0; role && i < sizeof names / sizeof names[0]; i++)
                        if (strcasecmp(role, names[i]) == 0)
                                c.role = (sb_role)(i + 1);
                if (c.role == SB_ROLE_NONE)
                        return sb_ctl_usage_error(ctx, "auth token needs --role MEMBER|MERCHANT_OWNER|CASHIER|"
                                                       "TERMINAL|CENTRE_OPERATOR|ADMIN");
                snprintf(c.sub, sizeof c.sub, "ctl:%s:%" PRIu64, sb_role_name(c.role), c.uid);
        }
        c.iat = (int64_t)time(NULL);
        c.exp = c.iat + ttl;
        char err[512];
        sb_auth_signer *s = NULL;
        if (sb_auth_signer_load(priv, &s, err, sizeof err) < 0)
                return sb_ctl_error(ctx, "%s", err);
        char tok[SB_AUTH_TOKEN_MAX];
        int n = sb_auth_sign(s, &c, tok, sizeof tok);
        sb_auth_signer_free(s);
        if (n < 0)
                return sb_ctl_error(ctx, "cannot sign the token: %s", strerror(-n));
        if (ctx->json)
                fprintf(ctx->out, "{\"token\":\"%s\",\"expires_unix\":%" PRId64 "}\n", tok, c.exp);
        else
                fprintf(ctx->out, "%s\n", tok);
        return SB_CTL_EXIT_OK;
}

static const sb_ctl_subcommand auth_subs[] = {
        { "keygen", "--private FILE --public FILE",
          "Make a new ES256 (P-256) token-signing key pair. The private key (mode 0600) stays with identity; the "
          "public key file goes to every service (auth.public_keys). Never overwrites a file.",
          run_keygen },
        { "service-token", "--private FILE --service NAME [--ttl 365d]",
          "Mint the SERVICE credential a service uses to call the others (auth.service_token).", run_token },
        { "token", "--private FILE --role ROLE [--uid N] [--merchant N] [--terminal N] [--centre N] [--ttl 15m]",
          "Mint an access token for an operator task or a test (for example the first ADMIN before identity "
          "exists).",
          run_token },
};

static int run_auth(int argc, char **argv, sb_ctl_ctx *ctx) {
        return sb_ctl_dispatch("auth", "Token-signing keys and credentials.", auth_subs,
                               sizeof auth_subs / sizeof auth_subs[0], argc, argv, ctx);
}

const sb_ctl_command sb_ctl_auth_command = {
        .name = "auth",
        .summary = "token-signing keys, service credentials, operator tokens",
        .run = run_auth,
};
