/* identity_util: the pure parts of the identity service — phone numbers, masking, logins, referral codes, pairing
 * codes, the member-code text format, peers. No I/O, no clock, no global state; results written only on success. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IDENTITY_PHONE_LEN 11
#define IDENTITY_REFERRAL_CODE_LEN 8
#define IDENTITY_PAIRING_CODE_LEN 8
#define IDENTITY_LOGIN_MIN 3
#define IDENTITY_LOGIN_MAX 32
#define IDENTITY_MEMBER_CODE_MAX 256     /* the longest member code text accepted */
#define IDENTITY_MEMBER_CODE_PREFIX "SBM1."

/* Whether s is a mainland mobile number: exactly 11 ASCII digits, "1", then 3..9, then 9 digits. */
bool identity_phone_valid(const char *s);

/* The phone with its middle four digits masked ("138****5678") into out (12 bytes). -EINVAL for a bad phone. */
int identity_phone_mask(const char *phone, char out[IDENTITY_PHONE_LEN + 1]);

/* A display name masked for strangers: its first UTF-8 character followed by "*" ("张*"); "*" for an empty or
 * invalid name. Writes at most n bytes (n ≥ 8), always NUL-terminated. */
void identity_name_mask(const char *name, char *out, size_t n);

/* Whether s is valid UTF-8 of 0..max_chars characters (code points), without control characters:
 * C0 controls and DEL are refused, as every text field here is a single line. */
bool identity_text_valid(const char *s, size_t max_chars);

/* Whether s is a staff login: 3..32 characters of [a-z0-9._-]. */
bool identity_login_valid(const char *s);

/* A referral code made from 5 random bytes: 8 characters of an alphabet without look-alikes (no 0/O, 1/I).
 * Writes the code and a NUL into out (9 bytes). */
void identity_referral_code_make(const unsigned char rnd[5], char out[IDENTITY_REFERRAL_CODE_LEN + 1]);

/* Whether s has the shape of a referral code (8 characters of that alphabet, upper case). A lower-case code is
 * accepted by identity_referral_code_normalise(), which upper-cases it into out (9 bytes) or returns -EINVAL. */
bool identity_referral_code_valid(const char *s);
int identity_referral_code_normalise(const char *s, char out[IDENTITY_REFERRAL_CODE_LEN + 1]);

/* A pairing code from 4 random bytes: 8 decimal digits (leading zeros kept), written with a NUL into out. */
void identity_pairing_code_make(const unsigned char rnd[4], char out[IDENTITY_PAIRING_CODE_LEN + 1]);

/* Whether s is exactly 8 ASCII digits. */
bool identity_pairing_code_valid(const char *s);

/* A member code's signed content. */
typedef struct identity_member_code {
        uint64_t member_id;
        int64_t expires_unix_s;
        unsigned char nonce[8];
        bool card;               /* a printed member card: reusable until it expires */
} identity_member_code;

/* The text a member code's signature covers: "SBM1." and the base64url (no padding) of the 25-byte payload. Writes
 * it with a NUL into out and returns its length, or -ENOBUFS. */
int identity_member_code_body(const identity_member_code *c, char *out, size_t n);

/* The whole code: body "." base64url(signature). Returns its length, or -ENOBUFS. */
int identity_member_code_join(const char *body, const unsigned char sig[64], char *out, size_t n);

/* Splits and decodes a code text: on success fills *ret, ret_sig, and *ret_body_len (the length of the signed part
 * at the start of text) and returns 0; -EINVAL when the text is not a member code (wrong prefix, length, base64 or
 * payload size). The signature is not checked here. */
int identity_member_code_parse(const char *text, identity_member_code *ret, unsigned char ret_sig[64],
                               size_t *ret_body_len);

/* The peer's address without its port, for per-address limits: "ipv4:203.0.113.5:51234" → "ipv4:203.0.113.5",
 * "ipv6:[::1]:5000" → "ipv6:[::1]". Writes at most n bytes, always NUL-terminated. */
void identity_peer_host(const char *peer, char *out, size_t n);
