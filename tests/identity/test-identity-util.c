/* The pure parts of identity: phone numbers, masking, logins, referral and pairing codes, the member-code format,
 * peers, QR rendering. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "identity_qr.h"
#include "identity_util.h"
#include "sb_test.h"

static void test_phone(void) {
        SB_CHECK(identity_phone_valid("13800138000"));
        SB_CHECK(identity_phone_valid("19912345678"));
        SB_CHECK(!identity_phone_valid("12800138000")); /* second digit 2 */
        SB_CHECK(!identity_phone_valid("23800138000"));
        SB_CHECK(!identity_phone_valid("1380013800"));
        SB_CHECK(!identity_phone_valid("138001380000"));
        SB_CHECK(!identity_phone_valid("1380013800a"));
        SB_CHECK(!identity_phone_valid("+8613800138"));
        SB_CHECK(!identity_phone_valid(""));
        SB_CHECK(!identity_phone_valid(NULL));
        char m[12];
        SB_CHECK_EQ(identity_phone_mask("13812345678", m), 0);
        SB_CHECK(strcmp(m, "138****5678") == 0);
        SB_CHECK(identity_phone_mask("bad", m) < 0);
}

static void test_names(void) {
        char out[16];
        identity_name_mask("张三丰", out, sizeof out);
        SB_CHECK(strcmp(out, "张*") == 0);
        identity_name_mask("Li", out, sizeof out);
        SB_CHECK(strcmp(out, "L*") == 0);
        identity_name_mask("", out, sizeof out);
        SB_CHECK(strcmp(out, "*") == 0);
        identity_name_mask("\xff\xfe", out, sizeof out);
        SB_CHECK(strcmp(out, "*") == 0);
        SB_CHECK(identity_text_valid("张三", 2));
        SB_CHECK(!identity_text_valid("张三", 1));
        SB_CHECK(!identity_text_valid("a\xc0\xafz", 10)); /* overlong */
        SB_CHECK(!identity_text_valid("\xed\xa0\x80", 10)); /* surrogate */
        SB_CHECK(!identity_text_valid("a\nb", 10));
        SB_CHECK(identity_text_valid("", 0));
        SB_CHECK(identity_login_valid("cashier.01"));
        SB_CHECK(!identity_login_valid("ab"));
        SB_CHECK(!identity_login_valid("Admin"));
        SB_CHECK(!identity_login_valid("a b c"));
        SB_CHECK(!identity_login_valid("abcdefghijklmnopqrstuvwxyz0123456"));
}

static void test_codes(void) {
        for (int i = 0; i < 1000; i++) {
                unsigned char rnd[5];
                char code[9], norm[9];
                randombytes_buf(rnd, sizeof rnd);
                identity_referral_code_make(rnd, code);
                SB_CHECK(identity_referral_code_valid(code));
                SB_CHECK(!strpbrk(code, "01IO"));
                for (int k = 0; k < 8; k++)
                        norm[k] = (char)(code[k] >= 'A' && code[k] <= 'Z' ? code[k] - 'A' + 'a' : code[k]);
                norm[8] = '\0';
                char back[9];
                SB_CHECK_EQ(identity_referral_code_normalise(norm, back), 0);
                SB_CHECK(strcmp(back, code) == 0);
                unsigned char r4[4];
                char pc[9];
                randombytes_buf(r4, sizeof r4);
                identity_pairing_code_make(r4, pc);
                SB_CHECK(identity_pairing_code_valid(pc));
        }
        SB_CHECK(!identity_referral_code_valid("ABCDEFG0"));
        SB_CHECK(!identity_referral_code_valid("ABCDEFG"));
        SB_CHECK(!identity_pairing_code_valid("1234567a"));
        SB_CHECK(!identity_pairing_code_valid("123456789"));
        unsigned char z[4] = { 0, 0, 0, 7 };
        char pc[9];
        identity_pairing_code_make(z, pc);
        SB_CHECK(strcmp(pc, "00000007") == 0);
}

static void test_member_code(void) {
        identity_member_code c = { .member_id = 123456789, .expires_unix_s = 1900000000, .card = true };
        memcpy(c.nonce, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
        char body[128], text[300];
        unsigned char sig[64];
        for (int i = 0; i < 64; i++)
                sig[i] = (unsigned char)i;
        int n = identity_member_code_body(&c, body, sizeof body);
        SB_CHECK(n > 0 && strncmp(body, IDENTITY_MEMBER_CODE_PREFIX, 5) == 0);
        n = identity_member_code_join(body, sig, text, sizeof text);
        SB_CHECK(n > 0 && n <= IDENTITY_MEMBER_CODE_MAX);
        identity_member_code back;
        unsigned char sig2[64];
        size_t body_len = 0;
        SB_CHECK_EQ(identity_member_code_parse(text, &back, sig2, &body_len), 0);
        SB_CHECK_EQ(back.member_id, c.member_id);
        SB_CHECK_EQ(back.expires_unix_s, c.expires_unix_s);
        SB_CHECK(back.card && memcmp(back.nonce, c.nonce, 8) == 0 && memcmp(sig, sig2, 64) == 0);
        SB_CHECK_EQ(body_len, strlen(body));
        /* Malformed: wrong prefix, truncated, a JWT. */
        text[0] = 'X';
        SB_CHECK(identity_member_code_parse(text, &back, sig2, &body_len) < 0);
        SB_CHECK(identity_member_code_parse("SBM1.abc.def", &back, sig2, &body_len) < 0);
        SB_CHECK(identity_member_code_parse("eyJhbGciOiJFUzI1NiJ9.e30.sig", &back, sig2, &body_len) < 0);
        SB_CHECK(identity_member_code_body(&c, body, 10) < 0);
}

static void test_peer(void) {
        char out[64];
        identity_peer_host("ipv4:203.0.113.5:51234", out, sizeof out);
        SB_CHECK(strcmp(out, "ipv4:203.0.113.5") == 0);
        identity_peer_host("ipv6:[::1]:5000", out, sizeof out);
        SB_CHECK(strcmp(out, "ipv6:[::1]") == 0);
        identity_peer_host("unix:/tmp/x", out, sizeof out);
        SB_CHECK(strcmp(out, "unix:/tmp/x") == 0);
}

static void test_qr(void) {
        unsigned char *png = NULL;
        size_t len = 0;
        SB_CHECK_EQ(identity_qr_png("hello", 4, &png, &len), 0);
        SB_CHECK(len > 8 && memcmp(png, "\x89PNG\r\n\x1a\n", 8) == 0);
        free(png);
        char *svg = NULL;
        SB_CHECK_EQ(identity_qr_svg("hello", &svg), 0);
        SB_CHECK(strstr(svg, "<svg") && strstr(svg, "</svg>"));
        free(svg);
        SB_CHECK(identity_qr_png("hello", 0, &png, &len) < 0);
        SB_CHECK(identity_qr_png("hello", 33, &png, &len) < 0);
        SB_CHECK(identity_qr_png("", 4, &png, &len) < 0);
}

int main(void) {
        SB_CHECK(sodium_init() >= 0);
        test_phone();
        test_names();
        test_codes();
        test_member_code();
        test_peer();
        test_qr();
        printf("identity-util: all checks passed\n");
        return 0;
}
