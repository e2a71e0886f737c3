/* Tests of services/core/auth: JWT ES256 with real keys, tampering, expiry, passwords. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"

static int failures;

#define CHECK(cond)                                                                                                   \
        do {                                                                                                          \
                if (!(cond)) {                                                                                        \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                      \
                        failures++;                                                                                   \
                }                                                                                                     \
        } while (0)

static char dir[64];

static void path(char *buf, size_t n, const char *name) {
        snprintf(buf, n, "%s/%s", dir, name);
}

static sb_claims cashier_claims(int64_t now) {
        sb_claims c;
        memset(&c, 0, sizeof c);
        c.role = SB_ROLE_CASHIER;
        c.uid = 41;
        c.merchant_id = 7;
        c.terminal_id = 3;
        snprintf(c.sub, sizeof c.sub, "staff:41");
        c.iat = now;
        c.exp = now + 900;
        return c;
}

/* Replace one character of the token's part `part` (0 header, 1 payload, 2 signature) with another. */
static void tamper(char *tok, int part) {
        char *p = tok;
        for (int i = 0; i < part; i++)
                p = strchr(p, '.') + 1;
        p[2] = p[2] == 'A' ? 'B' : 'A';
}

static void test_sign_verify(void) {
        char priv[128], pub[128], priv2[128], pub2[128], both[128], err[256];
        path(priv, sizeof priv, "k1.pem");
        path(pub, sizeof pub, "k1.pub");
        path(priv2, sizeof priv2, "k2.pem");
        path(pub2, sizeof pub2, "k2.pub");
        CHECK(sb_auth_keygen(priv, pub, err, sizeof err) == 0);
        CHECK(sb_auth_keygen(priv2, pub2, err, sizeof err) == 0);
        CHECK(sb_auth_keygen(priv, pub, err, sizeof err) == -EEXIST);  /* never overwrites a key */
        CHECK(access(priv, R_OK) == 0);

        sb_auth_signer *s1 = NULL, *s2 = NULL;
        sb_auth_verifier *v1 = NULL, *v12 = NULL;
        CHECK(sb_auth_signer_load(priv, &s1, err, sizeof err) == 0);
        CHECK(sb_auth_signer_load(priv2, &s2, err, sizeof err) == 0);
        CHECK(sb_auth_verifier_load(pub, &v1, err, sizeof err) == 0);
        /* Rotation: one file with both public keys verifies tokens of either. */
        path(both, sizeof both, "both.pub");
        char cmd[512];
        snprintf(cmd, sizeof cmd, "cat %s %s > %s", pub, pub2, both);
        CHECK(system(cmd) == 0);
        CHECK(sb_auth_verifier_load(both, &v12, err, sizeof err) == 0);
        if (!s1 || !s2 || !v1 || !v12)
                return;

        int64_t now = time(NULL);
        sb_claims c = cashier_claims(now);
        char tok[SB_AUTH_TOKEN_MAX];
        int n = sb_auth_sign(s1, &c, tok, sizeof tok);
        CHECK(n > 0 && (size_t)n == strlen(tok));

        sb_claims got;
        CHECK(sb_auth_verify(v1, tok, now, &got) == SB_AUTH_OK);
        CHECK(got.role == SB_ROLE_CASHIER && got.uid == 41 && got.merchant_id == 7 && got.terminal_id == 3);
        CHECK(strcmp(got.sub, "staff:41") == 0 && strlen(got.jti) == 32 && got.exp == now + 900);
        CHECK(sb_auth_verify(v12, tok, now, &got) == SB_AUTH_OK);

        /* Signed by the other key: unknown kid for v1, fine for v12. */
        char tok2[SB_AUTH_TOKEN_MAX];
        CHECK(sb_auth_sign(s2, &c, tok2, sizeof tok2) > 0);
        CHECK(sb_auth_verify(v1, tok2, now, &got) == SB_AUTH_BAD_SIGNATURE);
        CHECK(sb_auth_verify(v12, tok2, now, &got) == SB_AUTH_OK);

        /* Expiry with 60 s of skew; a token from the future. */
        CHECK(sb_auth_verify(v1, tok, now + 900 + 61, &got) == SB_AUTH_EXPIRED);
        CHECK(sb_auth_verify(v1, tok, now + 900 + 59, &got) == SB_AUTH_OK);
        CHECK(sb_auth_verify(v1, tok, now - 120, &got) == SB_AUTH_NOT_YET_VALID);

        /* Tampering with any part breaks it. */
        for (int part = 0; part < 3; part++) {
                char t[SB_AUTH_TOKEN_MAX];
                snprintf(t, sizeof t, "%s", tok);
                tamper(t, part);
                sb_auth_error e = sb_auth_verify(v1, t, now, &got);
                CHECK(e == SB_AUTH_BAD_SIGNATURE || e == SB_AUTH_MALFORMED);
        }
        /* A payload swapped in from another token (role escalation) fails the signature. */
        sb_claims admin = c;
        admin.role = SB_ROLE_ADMIN;
        char tok3[SB_AUTH_TOKEN_MAX];
        CHECK(sb_auth_sign(s2, &admin, tok3, sizeof tok3) > 0);
        char forged[SB_AUTH_TOKEN_MAX];
        const char *p1 = strchr(tok, '.'), *p2 = strchr(p1 + 1, '.');
        const char *q1 = strchr(tok3, '.'), *q2 = strchr(q1 + 1, '.');
        snprintf(forged, sizeof forged, "%.*s%.*s%s", (int)(p1 - tok), tok, (int)(q2 - q1), q1, p2);
        CHECK(sb_auth_verify(v1, forged, now, &got) == SB_AUTH_BAD_SIGNATURE);

        /* alg "none" and garbage are malformed. */
        char none[512], hdr[128];
        const char *h = "{\"alg\":\"none\",\"typ\":\"JWT\"}";
        sodium_bin2base64(hdr, sizeof hdr, (const unsigned char *)h, strlen(h),
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        snprintf(none, sizeof none, "%s%.*s.", hdr, (int)(p2 - p1), p1);
        CHECK(sb_auth_verify(v1, none, now, &got) == SB_AUTH_MALFORMED);
        CHECK(sb_auth_verify(v1, "", now, &got) == SB_AUTH_MALFORMED);
        CHECK(sb_auth_verify(v1, "a.b.c", now, &got) == SB_AUTH_MALFORMED);
        CHECK(sb_auth_verify(v1, "a.b.c.d", now, &got) == SB_AUTH_MALFORMED);
        char *huge = malloc(SB_AUTH_TOKEN_MAX + 10);
        memset(huge, 'a', SB_AUTH_TOKEN_MAX + 9);
        huge[SB_AUTH_TOKEN_MAX + 9] = '\0';
        CHECK(sb_auth_verify(v1, huge, now, &got) == SB_AUTH_MALFORMED);
        free(huge);

        /* Claims that cannot be written safely are refused. */
        sb_claims bad = c;
        snprintf(bad.sub, sizeof bad.sub, "staff\"41");
        CHECK(sb_auth_sign(s1, &bad, tok3, sizeof tok3) == -EINVAL);
        bad = c;
        bad.role = SB_ROLE_NONE;
        CHECK(sb_auth_sign(s1, &bad, tok3, sizeof tok3) == -EINVAL);
        CHECK(sb_auth_sign(s1, &c, tok3, 20) == -ENOBUFS);

        /* JWKS lists both keys with their kids. */
        char jwks[2048];
        CHECK(sb_auth_verifier_jwks(v12, jwks, sizeof jwks) > 0);
        CHECK(strstr(jwks, sb_auth_signer_kid(s1)) && strstr(jwks, sb_auth_signer_kid(s2)));
        CHECK(strstr(jwks, "\"crv\":\"P-256\"") != NULL);

        /* Loading errors name the file. */
        sb_auth_verifier *none_v = NULL;
        CHECK(sb_auth_verifier_load("/nonexistent.pub", &none_v, err, sizeof err) < 0);
        CHECK(strstr(err, "/nonexistent.pub") != NULL && none_v == NULL);
        CHECK(sb_auth_verifier_load(priv, &none_v, err, sizeof err) < 0); /* a private key is not a public key */

        sb_auth_signer_free(s1);
        sb_auth_signer_free(s2);
        sb_auth_verifier_free(v1);
        sb_auth_verifier_free(v12);
        CHECK(strcmp(sb_role_name(SB_ROLE_CENTRE_OPERATOR), "CENTRE_OPERATOR") == 0);
}

/* The verification cache: many threads verify a few tokens over and over (each hit must give the same claims), a
 * tampered copy of a cached token still fails, and time checks apply to cached entries. */
struct cache_arg {
        sb_auth_verifier *v;
        char toks[8][SB_AUTH_TOKEN_MAX];
        int64_t now;
        int bad;
};

static void *cache_main(void *arg_) {
        struct cache_arg *a = arg_;
        for (int i = 0; i < 4000; i++) {
                sb_claims got;
                int k = i % 8;
                if (sb_auth_verify(a->v, a->toks[k], a->now, &got) != SB_AUTH_OK || got.uid != (uint64_t)(100 + k))
                        __atomic_add_fetch(&a->bad, 1, __ATOMIC_RELAXED);
        }
        return NULL;
}

static void test_cache(void) {
        char priv[128], pub[128], err[256];
        path(priv, sizeof priv, "c.pem");
        path(pub, sizeof pub, "c.pub");
        sb_auth_signer *s = NULL;
        struct cache_arg a = { .now = time(NULL) };
        CHECK(sb_auth_keygen(priv, pub, err, sizeof err) == 0);
        CHECK(sb_auth_signer_load(priv, &s, err, sizeof err) == 0);
        CHECK(sb_auth_verifier_load(pub, &a.v, err, sizeof err) == 0);
        if (!s || !a.v)
                return;
        for (int k = 0; k < 8; k++) {
                sb_claims c = cashier_claims(a.now);
                c.uid = (uint64_t)(100 + k);
                CHECK(sb_auth_sign(s, &c, a.toks[k], sizeof a.toks[k]) > 0);
        }
        pthread_t th[4];
        for (int i = 0; i < 4; i++)
                pthread_create(&th[i], NULL, cache_main, &a);
        for (int i = 0; i < 4; i++)
                pthread_join(th[i], NULL);
        CHECK(a.bad == 0);
        sb_claims got;
        char t[SB_AUTH_TOKEN_MAX];
        snprintf(t, sizeof t, "%s", a.toks[3]);
        tamper(t, 2);
        CHECK(sb_auth_verify(a.v, t, a.now, &got) != SB_AUTH_OK);
        CHECK(sb_auth_verify(a.v, a.toks[3], a.now + 2000, &got) == SB_AUTH_EXPIRED);
        CHECK(sb_auth_verify(a.v, a.toks[3], a.now - 200, &got) == SB_AUTH_NOT_YET_VALID);
        CHECK(sb_auth_verify(a.v, a.toks[3], a.now, &got) == SB_AUTH_OK && got.uid == 103);
        sb_auth_signer_free(s);
        sb_auth_verifier_free(a.v);
}

/* Signed bytes (member codes): good signatures verify, again from the cache; a cached signature does not make other
 * bytes, a changed signature or another key's verifier pass. */
static void test_bytes(void) {
        char priv[128], pub[128], priv2[128], pub2[128], err[256];
        path(priv, sizeof priv, "b.pem");
        path(pub, sizeof pub, "b.pub");
        path(priv2, sizeof priv2, "b2.pem");
        path(pub2, sizeof pub2, "b2.pub");
        sb_auth_signer *s = NULL;
        sb_auth_verifier *v = NULL, *v2 = NULL;
        CHECK(sb_auth_keygen(priv, pub, err, sizeof err) == 0);
        CHECK(sb_auth_keygen(priv2, pub2, err, sizeof err) == 0);
        CHECK(sb_auth_signer_load(priv, &s, err, sizeof err) == 0);
        CHECK(sb_auth_verifier_load(pub, &v, err, sizeof err) == 0);
        CHECK(sb_auth_verifier_load(pub2, &v2, err, sizeof err) == 0);
        if (!s || !v || !v2)
                return;
        const char *body = "SBM1.42.1767225600.card";
        unsigned char sig[64], bad[64];
        CHECK(sb_auth_sign_bytes(s, body, strlen(body), sig) == 0);
        for (int i = 0; i < 3; i++) /* the first verifies, the others hit the cache */
                CHECK(sb_auth_verify_bytes(v, body, strlen(body), sig));
        CHECK(!sb_auth_verify_bytes(v, body, strlen(body) - 1, sig)); /* other bytes, same signature */
        CHECK(!sb_auth_verify_bytes(v, "SBM1.43.1767225600.card", strlen(body), sig));
        memcpy(bad, sig, sizeof bad);
        bad[10] ^= 1;
        CHECK(!sb_auth_verify_bytes(v, body, strlen(body), bad));
        CHECK(!sb_auth_verify_bytes(v, body, strlen(body), bad)); /* a failure is never cached as good */
        CHECK(!sb_auth_verify_bytes(v2, body, strlen(body), sig));  /* another key's verifier has its own cache */
        CHECK(sb_auth_verify_bytes(v, body, strlen(body), sig));
        sb_auth_signer_free(s);
        sb_auth_verifier_free(v);
        sb_auth_verifier_free(v2);
}

static void test_passwords(void) {
        char h[SB_AUTH_HASH_MAX], h2[SB_AUTH_HASH_MAX];
        CHECK(sb_auth_password_hash("correct horse 9", h) == 0);
        CHECK(strncmp(h, "$argon2id$v=19$m=19456,t=2,p=1$", 31) == 0);
        CHECK(sb_auth_password_verify(h, "correct horse 9") == 0);
        CHECK(sb_auth_password_verify(h, "correct horse 8") == -EPERM);
        CHECK(sb_auth_password_hash("correct horse 9", h2) == 0);
        CHECK(strcmp(h, h2) != 0); /* salted */
        CHECK(sb_auth_password_verify("$2y$10$abcdefghijklmnopqrstuv", "x") == -EINVAL);

        char why[128];
        CHECK(!sb_auth_password_acceptable("short1", why, sizeof why) && strstr(why, "short"));
        CHECK(!sb_auth_password_acceptable("12345678", why, sizeof why));
        CHECK(!sb_auth_password_acceptable("abcdefgh", why, sizeof why) && strstr(why, "simple"));
        CHECK(!sb_auth_password_acceptable("Password1", why, sizeof why) && strstr(why, "common"));
        CHECK(!sb_auth_password_acceptable("abc\xff\xfe" "1234", why, sizeof why) && strstr(why, "UTF-8"));
        CHECK(sb_auth_password_acceptable("绿色积分2026", why, sizeof why));
        CHECK(sb_auth_password_acceptable("till-42-open", why, sizeof why));
}

int main(void) {
        snprintf(dir, sizeof dir, "/tmp/sb-auth-XXXXXX");
        if (!mkdtemp(dir))
                return 1;
        test_sign_verify();
        test_cache();
        test_bytes();
        test_passwords();
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0)
                failures++;
        if (failures) {
                fprintf(stderr, "%d check(s) failed\n", failures);
                return 1;
        }
        printf("auth: all checks passed\n");
        return 0;
}
