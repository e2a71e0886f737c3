/* sb_auth: tokens, passwords and roles — the one place that knows how sharebuy authenticates.
 *
 * Access tokens are JWTs (RFC 7519) signed with ES256 (ECDSA P-256, SHA-256) by the identity service and verified
 * offline by every service with the public keys (PEM; several may be loaded at once for key rotation, matched by
 * "kid"). Claims: iss "sharebuy-identity", aud "sharebuy", sub, role, mid (merchant), tid (terminal), cid (centre),
 * uid (the person: member / staff id; 0 for a terminal or a service), svc (a service's name for role SERVICE), jti,
 * iat, exp. Passwords are hashed with argon2id (libsodium) at or above OWASP's minimum.
 *
 * Nothing here logs, and no function puts a token, password or key into an error message. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Roles, numbered as sharebuy.common.v1.Role. */
typedef enum sb_role {
        SB_ROLE_NONE = 0,
        SB_ROLE_MEMBER = 1,
        SB_ROLE_MERCHANT_OWNER = 2,
        SB_ROLE_CASHIER = 3,
        SB_ROLE_TERMINAL = 4,
        SB_ROLE_CENTRE_OPERATOR = 5,
        SB_ROLE_ADMIN = 6,
        SB_ROLE_SERVICE = 7,
} sb_role;

/* A set of roles for checks: SB_ROLES(SB_ROLE_CASHIER) | SB_ROLES(SB_ROLE_MERCHANT_OWNER). */
#define SB_ROLES(r) (1u << (unsigned)(r))

/* The audience every sharebuy token carries, and the issuer. */
#define SB_AUTH_AUDIENCE "sharebuy"
#define SB_AUTH_ISSUER "sharebuy-identity"
#define SB_AUTH_TOKEN_MAX 2048   /* longest token accepted or produced, in bytes */

typedef struct sb_claims {
        sb_role role;
        uint64_t uid;            /* member or staff id; 0 for terminals and services */
        uint64_t merchant_id;    /* MERCHANT_OWNER, TERMINAL, CASHIER */
        uint64_t terminal_id;    /* TERMINAL, CASHIER */
        uint64_t centre_id;      /* CENTRE_OPERATOR */
        char sub[64];            /* "member:12", "staff:7", "terminal:3", "service:merchant" */
        char svc[32];            /* SERVICE: the calling service's name ("merchant", "shop") */
        char jti[40];            /* unique token id */
        int64_t iat;             /* issued at, unix seconds */
        int64_t exp;             /* expires at, unix seconds */
} sb_claims;

/* The upper-case name of a role without prefix ("CASHIER"), "NONE" for unknown values. */
const char *sb_role_name(sb_role role);

/* --- Verifying (every service) --- */

typedef struct sb_auth_verifier sb_auth_verifier;

/* Load the public keys from a PEM file holding one or more EC P-256 public keys ("-----BEGIN PUBLIC KEY-----").
 * Each key's kid is the base64url SHA-256 of its DER SubjectPublicKeyInfo, truncated to 16 characters (so signer
 * and verifier agree without configuration). On failure writes a message naming the file and returns a negative
 * errno; *ret set only on success. */
int sb_auth_verifier_load(const char *pem_path, sb_auth_verifier **ret, char *err, size_t err_n);

void sb_auth_verifier_free(sb_auth_verifier *v);

/* Why a token was refused. */
typedef enum sb_auth_error {
        SB_AUTH_OK = 0,
        SB_AUTH_MALFORMED,       /* not a compact JWS, bad base64url or JSON, wrong alg, oversized */
        SB_AUTH_BAD_SIGNATURE,   /* unknown kid or the signature does not verify */
        SB_AUTH_WRONG_AUDIENCE,  /* aud or iss is not sharebuy's */
        SB_AUTH_EXPIRED,         /* exp passed (60 s of clock skew allowed) */
        SB_AUTH_NOT_YET_VALID,   /* iat more than 60 s in the future */
} sb_auth_error;

/* Verify `token` at time now_unix (seconds). On success fills *ret and returns SB_AUTH_OK; otherwise returns the
 * reason and leaves *ret untouched. Thread-safe. */
sb_auth_error sb_auth_verify(const sb_auth_verifier *v, const char *token, int64_t now_unix, sb_claims *ret);

/* A sentence for a person about an error ("the token has expired; sign in again"). */
const char *sb_auth_error_message(sb_auth_error e);

/* --- Signing (identity, and sharebuyctl for service credentials) --- */

typedef struct sb_auth_signer sb_auth_signer;

/* Load an EC P-256 private key (PEM, PKCS#8 or SEC1). */
int sb_auth_signer_load(const char *pem_path, sb_auth_signer **ret, char *err, size_t err_n);

void sb_auth_signer_free(sb_auth_signer *s);

/* The signer's kid (see sb_auth_verifier_load). */
const char *sb_auth_signer_kid(const sb_auth_signer *s);

/* Sign claims into a compact JWT (iss and aud are added; iat/exp/jti taken from claims, a random jti made when it
 * is empty). Writes the token and a NUL into out; returns its length, or -ENOBUFS / -EINVAL. Thread-safe. */
int sb_auth_sign(const sb_auth_signer *s, const sb_claims *claims, char *out, size_t out_n);

/* Make a new P-256 key pair: the private key (PKCS#8 PEM, mode 0600) and the public key (PEM) files. Refuses to
 * overwrite existing files (-EEXIST). */
int sb_auth_keygen(const char *private_pem_path, const char *public_pem_path, char *err, size_t err_n);

/* The public keys as a JWKS JSON document ({"keys":[{"kty":"EC","crv":"P-256","x":..,"y":..,"kid":..,
 * "alg":"ES256","use":"sig"}]}), for GetPublicKeys and standard libraries. Returns the length or -ENOBUFS. */
int sb_auth_verifier_jwks(const sb_auth_verifier *v, char *out, size_t out_n);

/* Sign arbitrary bytes with the signer's key (ECDSA P-256, SHA-256): the raw 64-byte r || s goes into ret_sig. For
 * compact signed formats other than JWT (identity's member codes); such a format must start with bytes no JWT
 * signing input can start with, so a signature can never be taken for the other kind. Returns 0, -ENOMEM or -EIO.
 * Thread-safe. */
int sb_auth_sign_bytes(const sb_auth_signer *s, const void *data, size_t len, unsigned char ret_sig[64]);

/* Whether sig (raw r || s) is a valid signature of data by any key of v. Thread-safe. */
bool sb_auth_verify_bytes(const sb_auth_verifier *v, const void *data, size_t len, const unsigned char sig[64]);

/* --- Passwords --- */

#define SB_AUTH_HASH_MAX 128  /* room for an argon2id encoded hash and its NUL */

/* Hash a password with argon2id (OWASP minimum or above: m ≥ 19 MiB, t ≥ 2, p = 1); the encoded string (with
 * salt and parameters) goes into out. Returns 0, -ENOMEM when the memory limit cannot be met. */
int sb_auth_password_hash(const char *password, char out[SB_AUTH_HASH_MAX]);

/* 0 when password matches the encoded hash, -EPERM when not, -EINVAL for a hash that is not argon2id. Constant
 * time with respect to the password. */
int sb_auth_password_verify(const char *encoded_hash, const char *password);

/* Whether a password is acceptable: 8..128 bytes of valid UTF-8, not all one character class of digits only, not
 * in a short list of the most common passwords. On refusal writes the reason for a person into why. */
bool sb_auth_password_acceptable(const char *password, char *why, size_t why_n);
