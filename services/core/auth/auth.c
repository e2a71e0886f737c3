/* sb_auth: JWT ES256 tokens (OpenSSL libcrypto), argon2id passwords (libsodium). */
#include "auth.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <pthread.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>

#define MAX_KEYS 8
#define KID_LEN 16
#define CLOCK_SKEW_S 60

/* OWASP's password storage cheat sheet: argon2id with m = 19 MiB, t = 2, p = 1 is the minimum. */
#define PWHASH_OPSLIMIT 2
#define PWHASH_MEMLIMIT ((size_t)19 * 1024 * 1024)

struct key {
        EVP_PKEY *pkey;
        char kid[KID_LEN + 1];
};

/* Verified tokens, by a cryptographic hash of the whole token. An ES256 verification costs ~80 µs of CPU, and on the
 * sale path the same cashier and service tokens arrive over and over (each sale is verified by four services), so
 * a hit saves most of the work. Only valid tokens are stored, keyed by their full BLAKE2b-256 hash: a different or
 * forged token can never hit another token's entry. Time checks (expiry, not yet valid) run on every hit. */
#define CACHE_SLOTS 4096

struct cache_slot {
        bool used;
        unsigned char hash[crypto_generichash_BYTES];
        sb_claims claims;
};

/* Verified signatures of sb_auth_verify_bytes() (member codes), the same way: only good ones, keyed by the
 * BLAKE2b-256 hash of the signed bytes and the signature together. A member card's code is resolved at every sale
 * it pays for, and a QR code twice (the quote, then the sale). */
struct bytes_slot {
        bool used;
        unsigned char hash[crypto_generichash_BYTES];
};

struct sb_auth_verifier {
        struct key keys[MAX_KEYS];
        size_t n;
        pthread_mutex_t cache_mu;
        struct cache_slot *cache;  /* CACHE_SLOTS, direct-mapped */
        struct bytes_slot *bytes_cache; /* CACHE_SLOTS, direct-mapped, under cache_mu */
};

struct sb_auth_signer {
        EVP_PKEY *pkey;
        char kid[KID_LEN + 1];
};

static const char *const role_names[] = {
        "NONE", "MEMBER", "MERCHANT_OWNER", "CASHIER", "TERMINAL", "CENTRE_OPERATOR", "ADMIN", "SERVICE",
};

const char *sb_role_name(sb_role role) {
        if ((unsigned)role >= sizeof role_names / sizeof role_names[0])
                return "NONE";
        return role_names[role];
}

static sb_role role_parse(const char *s) {
        for (unsigned i = 1; i < sizeof role_names / sizeof role_names[0]; i++)
                if (strcmp(role_names[i], s) == 0)
                        return (sb_role)i;
        return SB_ROLE_NONE;
}

static void set_err(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t n, const char *fmt, ...) {
        if (!err || n == 0)
                return;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, n, fmt, ap);
        va_end(ap);
}

static int init_sodium(void) {
        return sodium_init() < 0 ? -EIO : 0;
}

/* base64url without padding of n bytes into out (NUL-terminated). Returns the length or -ENOBUFS. */
static int b64url(const unsigned char *in, size_t n, char *out, size_t out_n) {
        size_t need = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        if (need > out_n)
                return -ENOBUFS;
        sodium_bin2base64(out, out_n, in, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        return (int)strlen(out);
}

static int unb64url(const char *in, size_t in_n, unsigned char *out, size_t out_n, size_t *ret_n) {
        size_t got = 0;
        if (sodium_base642bin(out, out_n, in, in_n, NULL, &got, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
                return -EBADMSG;
        *ret_n = got;
        return 0;
}

static int make_kid(EVP_PKEY *pkey, char kid[KID_LEN + 1]) {
        unsigned char *der = NULL;
        int len = i2d_PUBKEY(pkey, &der);
        if (len <= 0)
                return -EINVAL;
        unsigned char digest[crypto_hash_sha256_BYTES];
        crypto_hash_sha256(digest, der, (unsigned long long)len);
        OPENSSL_free(der);
        char full[64];
        if (b64url(digest, sizeof digest, full, sizeof full) < 0)
                return -ENOBUFS;
        memcpy(kid, full, KID_LEN);
        kid[KID_LEN] = '\0';
        return 0;
}

static bool is_p256(EVP_PKEY *pkey) {
        char group[64] = "";
        size_t len = 0;
        if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC)
                return false;
        if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len))
                return false;
        return strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Keys */

int sb_auth_verifier_load(const char *pem_path, sb_auth_verifier **ret, char *err, size_t err_n) {
        if (init_sodium() < 0) {
                set_err(err, err_n, "libsodium could not start");
                return -EIO;
        }
        if (!pem_path) {
                set_err(err, err_n, "no public key file is configured");
                return -EINVAL;
        }
        BIO *bio = BIO_new_file(pem_path, "r");
        if (!bio) {
                set_err(err, err_n, "cannot open the public key file %s: %s", pem_path, strerror(errno));
                return -ENOENT;
        }
        sb_auth_verifier *v = calloc(1, sizeof *v);
        struct cache_slot *cache = calloc(CACHE_SLOTS, sizeof *cache);
        struct bytes_slot *bytes_cache = calloc(CACHE_SLOTS, sizeof *bytes_cache);
        if (!v || !cache || !bytes_cache) {
                free(v);
                free(cache);
                free(bytes_cache);
                BIO_free(bio);
                return -ENOMEM;
        }
        v->cache = cache;
        v->bytes_cache = bytes_cache;
        pthread_mutex_init(&v->cache_mu, NULL);
        int r = 0;
        for (;;) {
                EVP_PKEY *pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
                if (!pkey)
                        break;
                if (!is_p256(pkey)) {
                        EVP_PKEY_free(pkey);
                        set_err(err, err_n, "%s holds a key that is not an EC P-256 public key", pem_path);
                        r = -EINVAL;
                        break;
                }
                if (v->n == MAX_KEYS) {
                        EVP_PKEY_free(pkey);
                        set_err(err, err_n, "%s holds more than %d keys", pem_path, MAX_KEYS);
                        r = -E2BIG;
                        break;
                }
                v->keys[v->n].pkey = pkey;
                if (make_kid(pkey, v->keys[v->n].kid) < 0) {
                        set_err(err, err_n, "cannot encode a key of %s", pem_path);
                        v->n++;
                        r = -EINVAL;
                        break;
                }
                v->n++;
        }
        BIO_free(bio);
        if (r == 0 && v->n == 0) {
                set_err(err, err_n, "%s holds no PEM public key", pem_path);
                r = -EINVAL;
        }
        if (r < 0) {
                sb_auth_verifier_free(v);
                return r;
        }
        *ret = v;
        return 0;
}

void sb_auth_verifier_free(sb_auth_verifier *v) {
        if (!v)
                return;
        for (size_t i = 0; i < v->n; i++)
                EVP_PKEY_free(v->keys[i].pkey);
        pthread_mutex_destroy(&v->cache_mu);
        free(v->cache);
        free(v->bytes_cache);
        free(v);
}

int sb_auth_signer_load(const char *pem_path, sb_auth_signer **ret, char *err, size_t err_n) {
        if (init_sodium() < 0) {
                set_err(err, err_n, "libsodium could not start");
                return -EIO;
        }
        BIO *bio = BIO_new_file(pem_path, "r");
        if (!bio) {
                set_err(err, err_n, "cannot open the private key file %s: %s", pem_path, strerror(errno));
                return -ENOENT;
        }
        EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
        BIO_free(bio);
        if (!pkey || !is_p256(pkey)) {
                EVP_PKEY_free(pkey);
                set_err(err, err_n, "%s is not an EC P-256 private key in PEM", pem_path);
                return -EINVAL;
        }
        sb_auth_signer *s = calloc(1, sizeof *s);
        if (!s) {
                EVP_PKEY_free(pkey);
                return -ENOMEM;
        }
        s->pkey = pkey;
        if (make_kid(pkey, s->kid) < 0) {
                sb_auth_signer_free(s);
                set_err(err, err_n, "cannot encode the key of %s", pem_path);
                return -EINVAL;
        }
        *ret = s;
        return 0;
}

void sb_auth_signer_free(sb_auth_signer *s) {
        if (!s)
                return;
        EVP_PKEY_free(s->pkey);
        free(s);
}

const char *sb_auth_signer_kid(const sb_auth_signer *s) {
        return s->kid;
}

static int write_pem(const char *path, EVP_PKEY *pkey, bool private_key, char *err, size_t err_n) {
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, private_key ? 0600 : 0644);
        if (fd < 0) {
                int e = errno;
                set_err(err, err_n, "cannot create %s: %s", path, strerror(e));
                return -e;
        }
        FILE *f = fdopen(fd, "w");
        if (!f) {
                close(fd);
                return -errno;
        }
        int ok = private_key ? PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) : PEM_write_PUBKEY(f, pkey);
        if (fclose(f) != 0)
                ok = 0;
        if (!ok) {
                set_err(err, err_n, "cannot write %s", path);
                unlink(path);
                return -EIO;
        }
        return 0;
}

int sb_auth_keygen(const char *private_pem_path, const char *public_pem_path, char *err, size_t err_n) {
        EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        if (!pkey) {
                set_err(err, err_n, "cannot generate a P-256 key");
                return -EIO;
        }
        int r = write_pem(private_pem_path, pkey, true, err, err_n);
        if (r == 0) {
                r = write_pem(public_pem_path, pkey, false, err, err_n);
                if (r < 0)
                        unlink(private_pem_path);
        }
        EVP_PKEY_free(pkey);
        return r;
}

int sb_auth_verifier_jwks(const sb_auth_verifier *v, char *out, size_t out_n) {
        size_t len = 0;
        int w = snprintf(out, out_n, "{\"keys\":[");
        if (w < 0 || (size_t)w >= out_n)
                return -ENOBUFS;
        len = (size_t)w;
        for (size_t i = 0; i < v->n; i++) {
                BIGNUM *x = NULL, *y = NULL;
                unsigned char xb[32], yb[32];
                char xs[64], ys[64];
                if (!EVP_PKEY_get_bn_param(v->keys[i].pkey, OSSL_PKEY_PARAM_EC_PUB_X, &x) ||
                    !EVP_PKEY_get_bn_param(v->keys[i].pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &y) ||
                    BN_bn2binpad(x, xb, 32) != 32 || BN_bn2binpad(y, yb, 32) != 32) {
                        BN_free(x);
                        BN_free(y);
                        return -EINVAL;
                }
                BN_free(x);
                BN_free(y);
                b64url(xb, 32, xs, sizeof xs);
                b64url(yb, 32, ys, sizeof ys);
                w = snprintf(out + len, out_n - len,
                             "%s{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"kid\":\"%s\","
                             "\"alg\":\"ES256\",\"use\":\"sig\"}",
                             i ? "," : "", xs, ys, v->keys[i].kid);
                if (w < 0 || (size_t)w >= out_n - len)
                        return -ENOBUFS;
                len += (size_t)w;
        }
        w = snprintf(out + len, out_n - len, "]}");
        if (w < 0 || (size_t)w >= out_n - len)
                return -ENOBUFS;
        return (int)(len + (size_t)w);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* A small JSON reader for the flat objects a JWT header and our claims are: string and integer members only. */

#define JSON_MAX_MEMBERS 24
#define JSON_STR_MAX 128

struct json_member {
        char key[16];
        bool is_str;
        char str[JSON_STR_MAX];
        int64_t num;
};

struct json_obj {
        struct json_member m[JSON_MAX_MEMBERS];
        size_t n;
};

static void skip_ws(const char **p, const char *end) {
        while (*p < end && (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r'))
                (*p)++;
}

/* A JSON string without escapes other than \" \\ \/ (our tokens never need more; anything else is refused). */
static int json_string(const char **p, const char *end, char *out, size_t out_n) {
        if (*p >= end || **p != '"')
                return -EBADMSG;
        (*p)++;
        size_t n = 0;
        while (*p < end && **p != '"') {
                char c = **p;
                if ((unsigned char)c < 0x20)
                        return -EBADMSG;
                if (c == '\\') {
                        (*p)++;
                        if (*p >= end || (**p != '"' && **p != '\\' && **p != '/'))
                                return -EBADMSG;
                        c = **p;
                }
                if (n + 1 >= out_n)
                        return -EBADMSG;
                out[n++] = c;
                (*p)++;
        }
        if (*p >= end)
                return -EBADMSG;
        (*p)++;
        out[n] = '\0';
        return 0;
}

static int json_parse(const char *s, size_t len, struct json_obj *obj) {
        const char *p = s, *end = s + len;
        obj->n = 0;
        skip_ws(&p, end);
        if (p >= end || *p != '{')
                return -EBADMSG;
        p++;
        skip_ws(&p, end);
        if (p < end && *p == '}') {
                p++;
                goto done;
        }
        for (;;) {
                if (obj->n == JSON_MAX_MEMBERS)
                        return -EBADMSG;
                struct json_member *m = &obj->m[obj->n];
                skip_ws(&p, end);
                if (json_string(&p, end, m->key, sizeof m->key) < 0)
                        return -EBADMSG;
                for (size_t i = 0; i < obj->n; i++)
                        if (strcmp(obj->m[i].key, m->key) == 0)
                                return -EBADMSG; /* a duplicate member is ambiguous: refuse */
                skip_ws(&p, end);
                if (p >= end || *p != ':')
                        return -EBADMSG;
                p++;
                skip_ws(&p, end);
                if (p < end && *p == '"') {
                        m->is_str = true;
                        if (json_string(&p, end, m->str, sizeof m->str) < 0)
                                return -EBADMSG;
                } else {
                        m->is_str = false;
                        bool neg = false;
                        if (p < end && *p == '-') {
                                neg = true;
                                p++;
                        }
                        if (p >= end || !isdigit((unsigned char)*p))
                                return -EBADMSG;
                        uint64_t v = 0;
                        int digits = 0;
                        while (p < end && isdigit((unsigned char)*p)) {
                                if (++digits > 18)
                                        return -EBADMSG;
                                v = v * 10 + (uint64_t)(*p - '0');
                                p++;
                        }
                        m->num = neg ? -(int64_t)v : (int64_t)v;
                }
                obj->n++;
                skip_ws(&p, end);
                if (p < end && *p == ',') {
                        p++;
                        continue;
                }
                if (p < end && *p == '}') {
                        p++;
                        break;
                }
                return -EBADMSG;
        }
done:
        skip_ws(&p, end);
        return p == end ? 0 : -EBADMSG;
}

static const struct json_member *json_get(const struct json_obj *o, const char *key) {
        for (size_t i = 0; i < o->n; i++)
                if (strcmp(o->m[i].key, key) == 0)
                        return &o->m[i];
        return NULL;
}

static const char *json_str(const struct json_obj *o, const char *key) {
        const struct json_member *m = json_get(o, key);
        return m && m->is_str ? m->str : NULL;
}

static bool json_num(const struct json_obj *o, const char *key, int64_t *ret) {
        const struct json_member *m = json_get(o, key);
        if (!m || m->is_str)
                return false;
        *ret = m->num;
        return true;
}

/* Only characters that need no escaping go into our tokens' strings. */
static bool plain_ascii(const char *s) {
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e || *s == '"' || *s == '\\')
                        return false;
        return true;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Signing and verifying */

int sb_auth_sign(const sb_auth_signer *s, const sb_claims *c, char *out, size_t out_n) {
        if (!plain_ascii(c->sub) || !plain_ascii(c->svc) || !plain_ascii(c->jti) || c->role == SB_ROLE_NONE)
                return -EINVAL;
        char jti[40];
        if (c->jti[0]) {
                snprintf(jti, sizeof jti, "%s", c->jti);
        } else {
                unsigned char rnd[16];
                randombytes_buf(rnd, sizeof rnd);
                sodium_bin2hex(jti, sizeof jti, rnd, sizeof rnd);
        }
        char header[128], payload[768];
        int hl = snprintf(header, sizeof header, "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", s->kid);
        int pl = snprintf(payload, sizeof payload,
                          "{\"iss\":\"" SB_AUTH_ISSUER "\",\"aud\":\"" SB_AUTH_AUDIENCE "\",\"sub\":\"%s\","
                          "\"role\":\"%s\",\"uid\":%" PRIu64 ",\"mid\":%" PRIu64 ",\"tid\":%" PRIu64
                          ",\"cid\":%" PRIu64 ",\"svc\":\"%s\",\"jti\":\"%s\",\"iat\":%" PRId64 ",\"exp\":%" PRId64 "}",
                          c->sub, sb_role_name(c->role), c->uid, c->merchant_id, c->terminal_id, c->centre_id, c->svc,
                          jti, c->iat, c->exp);
        if (hl < 0 || (size_t)hl >= sizeof header || pl < 0 || (size_t)pl >= sizeof payload)
                return -EINVAL;
        if (c->uid > INT64_MAX || c->merchant_id > INT64_MAX || c->terminal_id > INT64_MAX ||
            c->centre_id > INT64_MAX)
                return -EINVAL;

        char signing_input[SB_AUTH_TOKEN_MAX];
        int a = b64url((const unsigned char *)header, (size_t)hl, signing_input, sizeof signing_input);
        if (a < 0 || (size_t)a + 2 >= sizeof signing_input)
                return -ENOBUFS;
        signing_input[a] = '.';
        int b = b64url((const unsigned char *)payload, (size_t)pl, signing_input + a + 1,
                       sizeof signing_input - (size_t)a - 1);
        if (b < 0)
                return -ENOBUFS;
        size_t si_len = (size_t)a + 1 + (size_t)b;

        unsigned char der[80];
        size_t der_len = sizeof der;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        if (!ctx)
                return -ENOMEM;
        int ok = EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, s->pkey) == 1 &&
                 EVP_DigestSign(ctx, der, &der_len, (const unsigned char *)signing_input, si_len) == 1;
        EVP_MD_CTX_free(ctx);
        if (!ok)
                return -EIO;
        /* JWS wants the raw 64-byte r || s, not DER. */
        const unsigned char *dp = der;
        ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &dp, (long)der_len);
        if (!sig)
                return -EIO;
        unsigned char raw[64];
        const BIGNUM *r = NULL, *sv = NULL;
        ECDSA_SIG_get0(sig, &r, &sv);
        ok = BN_bn2binpad(r, raw, 32) == 32 && BN_bn2binpad(sv, raw + 32, 32) == 32;
        ECDSA_SIG_free(sig);
        if (!ok)
                return -EIO;
        char sig_b64[128];
        int sl = b64url(raw, sizeof raw, sig_b64, sizeof sig_b64);
        if (sl < 0 || si_len + 1 + (size_t)sl + 1 > out_n)
                return -ENOBUFS;
        memcpy(out, signing_input, si_len);
        out[si_len] = '.';
        memcpy(out + si_len + 1, sig_b64, (size_t)sl + 1);
        return (int)(si_len + 1 + (size_t)sl);
}

static bool verify_sig(EVP_PKEY *pkey, const char *input, size_t input_len, const unsigned char raw[64]) {
        ECDSA_SIG *sig = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(raw, 32, NULL), *s = BN_bin2bn(raw + 32, 32, NULL);
        if (!sig || !r || !s || !ECDSA_SIG_set0(sig, r, s)) {
                ECDSA_SIG_free(sig);
                BN_free(r);
                BN_free(s);
                return false;
        }
        unsigned char *der = NULL;
        int der_len = i2d_ECDSA_SIG(sig, &der);
        ECDSA_SIG_free(sig);
        if (der_len <= 0)
                return false;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        bool ok = ctx && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pkey) == 1 &&
                  EVP_DigestVerify(ctx, der, (size_t)der_len, (const unsigned char *)input, input_len) == 1;
        EVP_MD_CTX_free(ctx);
        OPENSSL_free(der);
        return ok;
}

static bool id_claim(const struct json_obj *o, const char *key, uint64_t *ret) {
        int64_t v = 0;
        if (!json_get(o, key)) {
                *ret = 0;
                return true;
        }
        if (!json_num(o, key, &v) || v < 0)
                return false;
        *ret = (uint64_t)v;
        return true;
}

static sb_auth_error time_check(const sb_claims *c, int64_t now_unix) {
        if (now_unix > c->exp + CLOCK_SKEW_S)
                return SB_AUTH_EXPIRED;
        if (c->iat > now_unix + CLOCK_SKEW_S)
                return SB_AUTH_NOT_YET_VALID;
        return SB_AUTH_OK;
}

static sb_auth_error verify_uncached(const sb_auth_verifier *v, const char *token, size_t len, int64_t now_unix,
                                     sb_claims *ret);

sb_auth_error sb_auth_verify(const sb_auth_verifier *v, const char *token, int64_t now_unix, sb_claims *ret) {
        if (!v || !token)
                return SB_AUTH_MALFORMED;
        size_t len = strnlen(token, SB_AUTH_TOKEN_MAX + 1);
        if (len > SB_AUTH_TOKEN_MAX)
                return SB_AUTH_MALFORMED;
        unsigned char hash[crypto_generichash_BYTES];
        crypto_generichash(hash, sizeof hash, (const unsigned char *)token, len, NULL, 0);
        size_t slot = ((size_t)hash[0] | (size_t)hash[1] << 8 | (size_t)hash[2] << 16) % CACHE_SLOTS;
        struct sb_auth_verifier *mv = (struct sb_auth_verifier *)v;  /* the cache is the only mutable part */
        sb_claims c;
        bool hit = false;
        pthread_mutex_lock(&mv->cache_mu);
        if (mv->cache[slot].used && memcmp(mv->cache[slot].hash, hash, sizeof hash) == 0) {
                c = mv->cache[slot].claims;
                hit = true;
        }
        pthread_mutex_unlock(&mv->cache_mu);
        if (hit) {
                sb_auth_error e = time_check(&c, now_unix);
                if (e == SB_AUTH_OK)
                        *ret = c;
                return e;
        }
        sb_auth_error e = verify_uncached(v, token, len, now_unix, &c);
        if (e != SB_AUTH_OK)
                return e;
        pthread_mutex_lock(&mv->cache_mu);
        mv->cache[slot].used = true;
        memcpy(mv->cache[slot].hash, hash, sizeof hash);
        mv->cache[slot].claims = c;
        pthread_mutex_unlock(&mv->cache_mu);
        *ret = c;
        return SB_AUTH_OK;
}

static sb_auth_error verify_uncached(const sb_auth_verifier *v, const char *token, size_t len, int64_t now_unix,
                                     sb_claims *ret) {
        const char *dot1 = memchr(token, '.', len);
        const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
        if (!dot1 || !dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
                return SB_AUTH_MALFORMED;

        char hjson[256], pjson[1024];
        unsigned char sig[80];
        size_t hn = 0, pn = 0, sn = 0;
        if (unb64url(token, (size_t)(dot1 - token), (unsigned char *)hjson, sizeof hjson - 1, &hn) < 0 ||
            unb64url(dot1 + 1, (size_t)(dot2 - dot1 - 1), (unsigned char *)pjson, sizeof pjson - 1, &pn) < 0 ||
            unb64url(dot2 + 1, len - (size_t)(dot2 + 1 - token), sig, sizeof sig, &sn) < 0 || sn != 64)
                return SB_AUTH_MALFORMED;
        struct json_obj h, p;
        if (json_parse(hjson, hn, &h) < 0 || json_parse(pjson, pn, &p) < 0)
                return SB_AUTH_MALFORMED;
        const char *alg = json_str(&h, "alg"), *kid = json_str(&h, "kid");
        /* The algorithm is fixed: a token naming another one ("none", HS256) is refused before anything else. */
        if (!alg || strcmp(alg, "ES256") != 0 || !kid)
                return SB_AUTH_MALFORMED;
        const struct key *key = NULL;
        for (size_t i = 0; i < v->n; i++)
                if (strcmp(v->keys[i].kid, kid) == 0)
                        key = &v->keys[i];
        if (!key || !verify_sig(key->pkey, token, (size_t)(dot2 - token), sig))
                return SB_AUTH_BAD_SIGNATURE;

        const char *iss = json_str(&p, "iss"), *aud = json_str(&p, "aud"), *sub = json_str(&p, "sub");
        const char *role = json_str(&p, "role"), *jti = json_str(&p, "jti"), *svc = json_str(&p, "svc");
        if (!iss || !aud || strcmp(iss, SB_AUTH_ISSUER) != 0 || strcmp(aud, SB_AUTH_AUDIENCE) != 0)
                return SB_AUTH_WRONG_AUDIENCE;
        sb_claims c;
        memset(&c, 0, sizeof c);
        if (!sub || !role || !jti || !json_num(&p, "iat", &c.iat) || !json_num(&p, "exp", &c.exp))
                return SB_AUTH_MALFORMED;
        c.role = role_parse(role);
        if (c.role == SB_ROLE_NONE || strlen(sub) >= sizeof c.sub || strlen(jti) >= sizeof c.jti ||
            (svc && strlen(svc) >= sizeof c.svc))
                return SB_AUTH_MALFORMED;
        if (!id_claim(&p, "uid", &c.uid) || !id_claim(&p, "mid", &c.merchant_id) ||
            !id_claim(&p, "tid", &c.terminal_id) || !id_claim(&p, "cid", &c.centre_id))
                return SB_AUTH_MALFORMED;
        sb_auth_error te = time_check(&c, now_unix);
        if (te != SB_AUTH_OK)
                return te;
        snprintf(c.sub, sizeof c.sub, "%s", sub);
        snprintf(c.jti, sizeof c.jti, "%s", jti);
        snprintf(c.svc, sizeof c.svc, "%s", svc ? svc : "");
        *ret = c;
        return SB_AUTH_OK;
}

int sb_auth_sign_bytes(const sb_auth_signer *s, const void *data, size_t len, unsigned char ret_sig[64]) {
        unsigned char der[80];
        size_t der_len = sizeof der;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        if (!ctx)
                return -ENOMEM;
        int ok = EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, s->pkey) == 1 &&
                 EVP_DigestSign(ctx, der, &der_len, data, len) == 1;
        EVP_MD_CTX_free(ctx);
        if (!ok)
                return -EIO;
        const unsigned char *dp = der;
        ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &dp, (long)der_len);
        if (!sig)
                return -EIO;
        unsigned char raw[64];
        const BIGNUM *r = NULL, *sv = NULL;
        ECDSA_SIG_get0(sig, &r, &sv);
        ok = BN_bn2binpad(r, raw, 32) == 32 && BN_bn2binpad(sv, raw + 32, 32) == 32;
        ECDSA_SIG_free(sig);
        if (!ok)
                return -EIO;
        memcpy(ret_sig, raw, sizeof raw);
        return 0;
}

bool sb_auth_verify_bytes(const sb_auth_verifier *v, const void *data, size_t len, const unsigned char sig[64]) {
        if (!v)
                return false;
        unsigned char hash[crypto_generichash_BYTES];
        crypto_generichash_state h;
        crypto_generichash_init(&h, NULL, 0, sizeof hash);
        crypto_generichash_update(&h, sig, 64); /* fixed length first: no two (data, sig) pairs hash alike */
        crypto_generichash_update(&h, data, len);
        crypto_generichash_final(&h, hash, sizeof hash);
        size_t slot = ((size_t)hash[0] | (size_t)hash[1] << 8 | (size_t)hash[2] << 16) % CACHE_SLOTS;
        struct sb_auth_verifier *mv = (struct sb_auth_verifier *)v;  /* the cache is the only mutable part */
        pthread_mutex_lock(&mv->cache_mu);
        bool hit = mv->bytes_cache[slot].used && memcmp(mv->bytes_cache[slot].hash, hash, sizeof hash) == 0;
        pthread_mutex_unlock(&mv->cache_mu);
        if (hit)
                return true;
        for (size_t i = 0; i < v->n; i++)
                if (verify_sig(v->keys[i].pkey, data, len, sig)) {
                        pthread_mutex_lock(&mv->cache_mu);
                        mv->bytes_cache[slot].used = true;
                        memcpy(mv->bytes_cache[slot].hash, hash, sizeof hash);
                        pthread_mutex_unlock(&mv->cache_mu);
                        return true;
                }
        return false;
}

const char *sb_auth_error_message(sb_auth_error e) {
        switch (e) {
        case SB_AUTH_OK:
                return "the token is valid";
        case SB_AUTH_MALFORMED:
                return "the token is not a sharebuy token (malformed)";
        case SB_AUTH_BAD_SIGNATURE:
                return "the token's signature is not valid: it was not issued by sharebuy's identity service";
        case SB_AUTH_WRONG_AUDIENCE:
                return "the token was issued for another audience";
        case SB_AUTH_EXPIRED:
                return "the token has expired; sign in again or refresh it";
        case SB_AUTH_NOT_YET_VALID:
                return "the token is not valid yet; check the clock of the machine that issued it";
        }
        return "the token is not valid";
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Passwords */

int sb_auth_password_hash(const char *password, char out[SB_AUTH_HASH_MAX]) {
        if (init_sodium() < 0)
                return -EIO;
        char buf[crypto_pwhash_STRBYTES];
        if (crypto_pwhash_str_alg(buf, password, strlen(password), PWHASH_OPSLIMIT, PWHASH_MEMLIMIT,
                                  crypto_pwhash_ALG_ARGON2ID13) != 0)
                return -ENOMEM;
        snprintf(out, SB_AUTH_HASH_MAX, "%s", buf);
        return 0;
}

int sb_auth_password_verify(const char *encoded_hash, const char *password) {
        if (init_sodium() < 0)
                return -EIO;
        if (strncmp(encoded_hash, "$argon2id$", 10) != 0)
                return -EINVAL;
        return crypto_pwhash_str_verify(encoded_hash, password, strlen(password)) == 0 ? 0 : -EPERM;
}

static bool utf8_valid(const unsigned char *s) {
        while (*s) {
                unsigned c = *s;
                size_t n = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : 9;
                if (n == 9 || (n == 1 && c < 0xC2))
                        return false;
                s++;
                for (size_t i = 0; i < n; i++, s++)
                        if ((*s & 0xC0) != 0x80)
                                return false;
        }
        return true;
}

bool sb_auth_password_acceptable(const char *password, char *why, size_t why_n) {
        static const char *const common[] = {
                "password", "password1", "12345678", "123456789", "1234567890", "qwerty123", "11111111",
                "88888888", "66666666", "00000000", "abc12345", "iloveyou", "a1234567", "qwertyui",
                "1qaz2wsx", "woaini1314", "aa123456", "password123",
        };
        size_t len = strlen(password);
        if (len < 8) {
                set_err(why, why_n, "the password is too short: use at least 8 characters");
                return false;
        }
        if (len > 128) {
                set_err(why, why_n, "the password is too long: use at most 128 bytes");
                return false;
        }
        if (!utf8_valid((const unsigned char *)password)) {
                set_err(why, why_n, "the password is not valid UTF-8 text");
                return false;
        }
        bool letter = false, digit = false, other = false;
        for (const char *p = password; *p; p++) {
                if (isalpha((unsigned char)*p))
                        letter = true;
                else if (isdigit((unsigned char)*p))
                        digit = true;
                else
                        other = true;
        }
        if ((int)letter + (int)digit + (int)other < 2) {
                set_err(why, why_n, "the password is too simple: mix letters with digits or symbols");
                return false;
        }
        for (size_t i = 0; i < sizeof common / sizeof common[0]; i++) {
                if (strcasecmp(password, common[i]) == 0) {
                        set_err(why, why_n, "the password is one of the most common passwords: choose another");
                        return false;
                }
        }
        return true;
}
