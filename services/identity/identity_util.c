/* identity_util: phone numbers, masking, logins, codes; no I/O. */
#include "identity_util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

/* 32 symbols: digits 2..9 and the letters without I and O (which look like 1 and 0, also left out), so a code
 * typed from a poster survives. */
static const char referral_alphabet[] = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ";

bool identity_phone_valid(const char *s) {
        if (!s || strnlen(s, IDENTITY_PHONE_LEN + 1) != IDENTITY_PHONE_LEN)
                return false;
        for (size_t i = 0; i < IDENTITY_PHONE_LEN; i++)
                if (s[i] < '0' || s[i] > '9')
                        return false;
        return s[0] == '1' && s[1] >= '3' && s[1] <= '9';
}

int identity_phone_mask(const char *phone, char out[IDENTITY_PHONE_LEN + 1]) {
        if (!identity_phone_valid(phone))
                return -EINVAL;
        memcpy(out, phone, 3);
        memcpy(out + 3, "****", 4);
        memcpy(out + 7, phone + 7, 4);
        out[IDENTITY_PHONE_LEN] = '\0';
        return 0;
}

/* The length of the UTF-8 sequence starting at s (1..4), or 0 when it is not valid (overlong forms, surrogates and
 * code points above U+10FFFF included). */
static size_t utf8_seq(const unsigned char *s) {
        unsigned char c = s[0];
        if (c < 0x80)
                return 1;
        if (c >= 0xC2 && c <= 0xDF)
                return (s[1] & 0xC0) == 0x80 ? 2 : 0;
        if (c >= 0xE0 && c <= 0xEF) {
                if ((s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
                        return 0;
                if (c == 0xE0 && s[1] < 0xA0)
                        return 0;
                if (c == 0xED && s[1] >= 0xA0)
                        return 0;
                return 3;
        }
        if (c >= 0xF0 && c <= 0xF4) {
                if ((s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
                        return 0;
                if (c == 0xF0 && s[1] < 0x90)
                        return 0;
                if (c == 0xF4 && s[1] >= 0x90)
                        return 0;
                return 4;
        }
        return 0;
}

void identity_name_mask(const char *name, char *out, size_t n) {
        size_t k = name && name[0] ? utf8_seq((const unsigned char *)name) : 0;
        if (k == 0 || (unsigned char)name[0] < 0x20 || k + 2 > n) {
                snprintf(out, n, "*");
                return;
        }
        memcpy(out, name, k);
        out[k] = '*';
        out[k + 1] = '\0';
}

bool identity_text_valid(const char *s, size_t max_chars) {
        if (!s)
                return true;
        const unsigned char *p = (const unsigned char *)s;
        size_t chars = 0;
        while (*p) {
                if (*p < 0x20 || *p == 0x7F)
                        return false;
                size_t k = utf8_seq(p);
                if (k == 0)
                        return false;
                p += k;
                if (++chars > max_chars)
                        return false;
        }
        return true;
}

bool identity_login_valid(const char *s) {
        if (!s)
                return false;
        size_t n = strnlen(s, IDENTITY_LOGIN_MAX + 1);
        if (n < IDENTITY_LOGIN_MIN || n > IDENTITY_LOGIN_MAX)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
                        return false;
        }
        return true;
}

void identity_referral_code_make(const unsigned char rnd[5], char out[IDENTITY_REFERRAL_CODE_LEN + 1]) {
        /* 40 random bits, 5 per symbol. */
        uint64_t v = 0;
        for (int i = 0; i < 5; i++)
                v = v << 8 | rnd[i];
        for (int i = IDENTITY_REFERRAL_CODE_LEN - 1; i >= 0; i--) {
                out[i] = referral_alphabet[v & 31];
                v >>= 5;
        }
        out[IDENTITY_REFERRAL_CODE_LEN] = '\0';
}

bool identity_referral_code_valid(const char *s) {
        if (!s || strnlen(s, IDENTITY_REFERRAL_CODE_LEN + 1) != IDENTITY_REFERRAL_CODE_LEN)
                return false;
        for (size_t i = 0; i < IDENTITY_REFERRAL_CODE_LEN; i++)
                if (!strchr(referral_alphabet, s[i]) || s[i] == '\0')
                        return false;
        return true;
}

int identity_referral_code_normalise(const char *s, char out[IDENTITY_REFERRAL_CODE_LEN + 1]) {
        if (!s || strnlen(s, IDENTITY_REFERRAL_CODE_LEN + 1) != IDENTITY_REFERRAL_CODE_LEN)
                return -EINVAL;
        char tmp[IDENTITY_REFERRAL_CODE_LEN + 1];
        for (size_t i = 0; i < IDENTITY_REFERRAL_CODE_LEN; i++)
                tmp[i] = (s[i] >= 'a' && s[i] <= 'z') ? (char)(s[i] - 'a' + 'A') : s[i];
        tmp[IDENTITY_REFERRAL_CODE_LEN] = '\0';
        if (!identity_referral_code_valid(tmp))
                return -EINVAL;
        memcpy(out, tmp, sizeof tmp);
        return 0;
}

void identity_pairing_code_make(const unsigned char rnd[4], char out[IDENTITY_PAIRING_CODE_LEN + 1]) {
        uint32_t v = (uint32_t)rnd[0] << 24 | (uint32_t)rnd[1] << 16 | (uint32_t)rnd[2] << 8 | rnd[3];
        /* 2^32 mod 10^8 makes the lowest values slightly likelier; irrelevant for a 10-minute, rate-limited code. */
        snprintf(out, IDENTITY_PAIRING_CODE_LEN + 1, "%08u", (unsigned)(v % 100000000u));
}

bool identity_pairing_code_valid(const char *s) {
        if (!s || strnlen(s, IDENTITY_PAIRING_CODE_LEN + 1) != IDENTITY_PAIRING_CODE_LEN)
                return false;
        for (size_t i = 0; i < IDENTITY_PAIRING_CODE_LEN; i++)
                if (s[i] < '0' || s[i] > '9')
                        return false;
        return true;
}

#define CODE_PAYLOAD 25
#define CODE_PAYLOAD_B64 34
#define CODE_SIG_B64 86

static void put_u64(unsigned char *p, uint64_t v) {
        for (int i = 7; i >= 0; i--) {
                p[i] = (unsigned char)(v & 0xFF);
                v >>= 8;
        }
}

static uint64_t get_u64(const unsigned char *p) {
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
                v = v << 8 | p[i];
        return v;
}

int identity_member_code_body(const identity_member_code *c, char *out, size_t n) {
        unsigned char p[CODE_PAYLOAD];
        put_u64(p, c->member_id);
        put_u64(p + 8, (uint64_t)c->expires_unix_s);
        memcpy(p + 16, c->nonce, 8);
        p[24] = c->card ? 1 : 0;
        size_t pre = strlen(IDENTITY_MEMBER_CODE_PREFIX);
        if (n < pre + CODE_PAYLOAD_B64 + 1)
                return -ENOBUFS;
        memcpy(out, IDENTITY_MEMBER_CODE_PREFIX, pre);
        sodium_bin2base64(out + pre, n - pre, p, sizeof p, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        return (int)strlen(out);
}

int identity_member_code_join(const char *body, const unsigned char sig[64], char *out, size_t n) {
        size_t bl = strlen(body);
        if (n < bl + 1 + CODE_SIG_B64 + 1)
                return -ENOBUFS;
        memcpy(out, body, bl);
        out[bl] = '.';
        sodium_bin2base64(out + bl + 1, n - bl - 1, sig, 64, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        return (int)strlen(out);
}

int identity_member_code_parse(const char *text, identity_member_code *ret, unsigned char ret_sig[64],
                               size_t *ret_body_len) {
        size_t pre = strlen(IDENTITY_MEMBER_CODE_PREFIX);
        size_t len = strnlen(text, IDENTITY_MEMBER_CODE_MAX + 1);
        if (len != pre + CODE_PAYLOAD_B64 + 1 + CODE_SIG_B64 || strncmp(text, IDENTITY_MEMBER_CODE_PREFIX, pre) != 0 ||
            text[pre + CODE_PAYLOAD_B64] != '.')
                return -EINVAL;
        unsigned char p[CODE_PAYLOAD + 2], sig[66];
        size_t pn = 0, sn = 0;
        if (sodium_base642bin(p, sizeof p, text + pre, CODE_PAYLOAD_B64, NULL, &pn, NULL,
                              sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
            pn != CODE_PAYLOAD)
                return -EINVAL;
        if (sodium_base642bin(sig, sizeof sig, text + pre + CODE_PAYLOAD_B64 + 1, CODE_SIG_B64, NULL, &sn, NULL,
                              sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
            sn != 64)
                return -EINVAL;
        if (p[24] > 1 || get_u64(p) == 0 || get_u64(p + 8) > INT64_MAX)
                return -EINVAL;
        identity_member_code c = {
                .member_id = get_u64(p),
                .expires_unix_s = (int64_t)get_u64(p + 8),
                .card = p[24] == 1,
        };
        memcpy(c.nonce, p + 16, 8);
        *ret = c;
        memcpy(ret_sig, sig, 64);
        *ret_body_len = pre + CODE_PAYLOAD_B64;
        return 0;
}

void identity_peer_host(const char *peer, char *out, size_t n) {
        snprintf(out, n, "%s", peer ? peer : "");
        char *colon = strrchr(out, ':');
        char *first = strchr(out, ':');
        /* Keep "ipv4:" / "ipv6:" / "unix:"; drop the last ":port" when there is one beyond the scheme. */
        if (colon && first && colon != first && strncmp(out, "unix:", 5) != 0)
                *colon = '\0';
}
