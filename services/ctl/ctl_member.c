/* sharebuyctl member: a member's printed card — a reusable member code rendered as a PNG file. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "auth.h"
#include "ctl.h"
#include "identity_qr.h"
#include "identity_util.h"

static int parse_days(const char *s, int64_t *ret) {
        char *end = NULL;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno || v <= 0 || !end || (strcmp(end, "d") != 0 && *end != '\0') || v > 365)
                return -EINVAL;
        *ret = v;
        return 0;
}

static int run_card(int argc, char **argv, sb_ctl_ctx *ctx) {
        const char *out = NULL, *key = getenv("SB_AUTH_SIGNING_KEY");
        unsigned long long member = 0, px = 8;
        int64_t days = 365;
        for (int i = 1; i < argc; i++) {
                const char *v = i + 1 < argc ? argv[i + 1] : NULL;
                if (!v)
                        return sb_ctl_usage_error(ctx, "member card: %s needs a value", argv[i]);
                int r = 0;
                if (strcmp(argv[i], "--member") == 0)
                        r = sb_ctl_parse_uint(v, INT64_MAX, &member);
                else if (strcmp(argv[i], "--out") == 0)
                        out = v;
                else if (strcmp(argv[i], "--private") == 0)
                        key = v;
                else if (strcmp(argv[i], "--module-px") == 0)
                        r = sb_ctl_parse_uint(v, IDENTITY_QR_MODULE_PX_MAX, &px);
                else if (strcmp(argv[i], "--days") == 0)
                        r = parse_days(v, &days);
                else
                        return sb_ctl_usage_error(ctx, "member card: unknown argument %s", argv[i]);
                if (r < 0 || (strcmp(argv[i], "--module-px") == 0 && px == 0))
                        return sb_ctl_usage_error(ctx, "member card: bad value for %s: %s", argv[i], v);
                i++;
        }
        if (!member || !out)
                return sb_ctl_usage_error(ctx, "member card needs --member ID and --out FILE.png");
        if (!key)
                return sb_ctl_usage_error(ctx, "member card needs identity's signing key: --private FILE or "
                                               "SB_AUTH_SIGNING_KEY");
        if (sodium_init() < 0)
                return sb_ctl_error(ctx, "libsodium failed to initialise");
        char err[512];
        sb_auth_signer *signer = NULL;
        if (sb_auth_signer_load(key, &signer, err, sizeof err) < 0)
                return sb_ctl_error(ctx, "%s", err);
        sb_db *db = NULL;
        if (sb_ctl_connect(ctx, &db) < 0) {
                sb_auth_signer_free(signer);
                return SB_CTL_EXIT_FAILURE;
        }
        int rc = SB_CTL_EXIT_FAILURE;
        unsigned char *png = NULL;
        size_t png_len = 0;
        sb_db_stmt *s = NULL;
        int r = sb_db_prepare(db, "SELECT disabled FROM sharebuy_identity.users WHERE user_id = ? AND kind = 1", &s);
        if (r == 0) {
                sb_db_bind_u64(s, 0, member);
                r = sb_db_execute(s);
        }
        if (r == 0)
                r = sb_db_fetch(s);
        if (r <= 0) {
                rc = r == 0 ? sb_ctl_error(ctx, "no member with id %llu", member)
                            : sb_ctl_error(ctx, "cannot read the member: %s", sb_db_errmsg(db));
                goto out;
        }
        while (sb_db_fetch(s) == 1) {
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        identity_member_code mc = { .member_id = member, .card = true, .expires_unix_s = ts.tv_sec + days * 86400 };
        randombytes_buf(mc.nonce, sizeof mc.nonce);
        r = sb_db_prepare(db,
                          "INSERT INTO sharebuy_identity.member_codes (nonce, member_id, card, issued_ms, expires_ms) "
                          "VALUES (?,?,1,?,?)",
                          &s);
        if (r == 0) {
                sb_db_bind_blob(s, 0, mc.nonce, sizeof mc.nonce);
                sb_db_bind_u64(s, 1, member);
                sb_db_bind_i64(s, 2, now_ms);
                sb_db_bind_i64(s, 3, mc.expires_unix_s * 1000);
                r = sb_db_execute(s);
        }
        if (r < 0) {
                sb_ctl_error(ctx, "cannot record the card: %s", sb_db_errmsg(db));
                goto out;
        }
        char body[128], code[IDENTITY_MEMBER_CODE_MAX + 1];
        unsigned char sig[64];
        if (identity_member_code_body(&mc, body, sizeof body) < 0 ||
            sb_auth_sign_bytes(signer, body, strlen(body), sig) < 0 ||
            identity_member_code_join(body, sig, code, sizeof code) < 0) {
                sb_ctl_error(ctx, "cannot sign the member code");
                goto out;
        }
        if ((r = identity_qr_png(code, (unsigned)px, &png, &png_len)) < 0) {
                sb_ctl_error(ctx, "cannot render the QR code: %s", strerror(-r));
                goto out;
        }
        FILE *f = fopen(out, "wb");
        if (!f || fwrite(png, 1, png_len, f) != png_len || fclose(f) != 0) {
                sb_ctl_error(ctx, "cannot write %s: %s", out, strerror(errno));
                goto out;
        }
        /* The code itself is a credential for the till: print only where it went and until when. */
        if (ctx->json)
                fprintf(ctx->out, "{\"member_id\":%llu,\"file\":", member);
        if (ctx->json) {
                sb_ctl_json_str(ctx->out, out);
                fprintf(ctx->out, ",\"expires_unix_ms\":%" PRId64 "}\n", mc.expires_unix_s * 1000);
        } else {
                fprintf(ctx->out, "wrote the member card of member %llu to %s (valid %" PRId64 " days)\n", member, out,
                        days);
        }
        rc = SB_CTL_EXIT_OK;
out:
        free(png);
        sb_db_close(db);
        sb_auth_signer_free(signer);
        return rc;
}

static const sb_ctl_subcommand member_subs[] = {
        { "card", "--member ID --out FILE.png [--days N (1..365, default 365)] [--module-px N] [--private KEY.pem]",
          "Print a member's card: a reusable member code (valid until it expires) as a QR code in a PNG file, for "
          "a member without a smartphone. Signed with identity's key (--private or SB_AUTH_SIGNING_KEY).",
          run_card },
};

static int run_member(int argc, char **argv, sb_ctl_ctx *ctx) {
        return sb_ctl_dispatch("member", "Members.", member_subs, sizeof member_subs / sizeof member_subs[0], argc,
                               argv, ctx);
}

const sb_ctl_command sb_ctl_member_command = {
        .name = "member",
        .summary = "members: print a member card (QR PNG)",
        .run = run_member,
};
