/* Unit tests of services/wallet/wallet_legs.c: leg validation, request and chain hashes, business days. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wallet_legs.h"

#define CHECK(c)                                                                                                     \
        do {                                                                                                         \
                if (!(c)) {                                                                                          \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);                        \
                        abort();                                                                                     \
                }                                                                                                    \
        } while (0)

static wallet_leg member(uint64_t id, int asset, int64_t amount) {
        return (wallet_leg){.ref = {WALLET_OWNER_MEMBER, id, asset}, .amount = amount, .reason = 17};
}

static wallet_leg sys(uint64_t s, int64_t amount) {
        return (wallet_leg){.ref = {WALLET_OWNER_SYSTEM, s, 0}, .amount = amount, .reason = 14};
}

static void test_legs(void) {
        char why[256];
        wallet_leg l[4];

        l[0] = member(1, WALLET_ASSET_SP, -5);
        l[1] = member(2, WALLET_ASSET_SP, 5);
        CHECK(wallet_legs_check(l, 2, false, 0, why, sizeof why) == 0);
        /* Unbalanced: the message names the asset and the sum. */
        l[1].amount = 6;
        CHECK(wallet_legs_check(l, 2, false, 0, why, sizeof why) == -EINVAL);
        CHECK(strstr(why, "SP") && strstr(why, "1 units"));
        /* CV locked and active balance together. */
        l[0] = member(1, WALLET_ASSET_CV_LOCKED, -7);
        l[1] = member(1, WALLET_ASSET_CV_ACTIVE, 7);
        CHECK(wallet_legs_check(l, 2, false, 0, why, sizeof why) == 0);
        /* A system account's asset is filled in, and must match when given. */
        l[0] = sys(WALLET_SYS_CV_ISSUED, -3);
        l[1] = member(9, WALLET_ASSET_CV_ACTIVE, 3);
        CHECK(wallet_legs_check(l, 2, false, 0, why, sizeof why) == 0);
        CHECK(l[0].ref.asset == WALLET_ASSET_CV_LOCKED);
        l[0] = sys(WALLET_SYS_SP_BURNED, -3);
        l[0].ref.asset = WALLET_ASSET_FEN;
        CHECK(wallet_legs_check(l, 2, false, 0, why, sizeof why) == -EINVAL);
        l[0] = sys(99, -3);
        CHECK(wallet_legs_check(l, 2, false, 0, why, sizeof why) == -EINVAL);
        /* Amounts: 0, beyond 10^15, the extremes. */
        int64_t bad[] = {0, INT64_C(1000000000000001), -INT64_C(1000000000000001), INT64_MAX, INT64_MIN};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                l[0] = member(1, WALLET_ASSET_SP, bad[i]);
                l[1] = member(2, WALLET_ASSET_SP, 1);
                CHECK(wallet_legs_check(l, 2, false, 0, why, sizeof why) == -EINVAL);
        }
        l[0] = member(1, WALLET_ASSET_SP, INT64_C(1000000000000000));
        l[1] = member(2, WALLET_ASSET_SP, -INT64_C(1000000000000000));
        CHECK(wallet_legs_check(l, 2, false, 0, why, sizeof why) == 0);
        /* The same account twice; owner id 0; a holder with FEN; an unknown kind; no legs; too many. */
        l[0] = member(1, WALLET_ASSET_SP, -1);
        l[1] = member(1, WALLET_ASSET_SP, 1);
        CHECK(wallet_legs_check(l, 2, false, 0, why, sizeof why) == -EINVAL);
        l[1] = member(0, WALLET_ASSET_SP, 1);
        CHECK(wallet_legs_check(l, 2, false, 0, why, sizeof why) == -EINVAL);
        l[1] = member(2, WALLET_ASSET_FEN, 1);
        CHECK(wallet_legs_check(l, 2, false, 0, why, sizeof why) == -EINVAL);
        l[1] = member(2, WALLET_ASSET_SP, 1);
        l[1].ref.owner_kind = 7;
        CHECK(wallet_legs_check(l, 2, false, 0, why, sizeof why) == -EINVAL);
        l[1] = member(2, WALLET_ASSET_SP, 1);
        l[1].reason = 0;
        CHECK(wallet_legs_check(l, 2, false, 0, why, sizeof why) == -EINVAL);
        CHECK(wallet_legs_check(l, 0, false, 0, why, sizeof why) == -EINVAL);
        static wallet_leg many[WALLET_LEGS_MAX + 1];
        for (size_t i = 0; i < WALLET_LEGS_MAX + 1; i++)
                many[i] = member(i + 1, WALLET_ASSET_SP, i % 2 ? 1 : -1);
        CHECK(wallet_legs_check(many, WALLET_LEGS_MAX + 1, false, 0, why, sizeof why) == -EINVAL);
        CHECK(wallet_legs_check(many, WALLET_LEGS_MAX, false, 0, why, sizeof why) == 0);
        /* The genesis: SP sums to the cap. */
        l[0] = sys(WALLET_SYS_SP_UNRELEASED, 900);
        l[1] = sys(WALLET_SYS_SP_TREASURY, 100);
        CHECK(wallet_legs_check(l, 2, true, 1000, why, sizeof why) == 0);
        CHECK(wallet_legs_check(l, 2, true, 999, why, sizeof why) == -EINVAL);
        CHECK(wallet_legs_check(l, 2, false, 0, why, sizeof why) == -EINVAL);
}

static void fill(wallet_tx *t) {
        memset(t, 0, sizeof *t);
        strcpy(t->scope, "svc");
        strcpy(t->key, "sale:1:abc");
        t->cause_kind = 5;
        strcpy(t->cause_ref, "abc");
        t->cause_merchant = 1;
        strcpy(t->memo, "m");
        t->posted_ms = 1700000000000;
        strcpy(t->business_day, "2023-11-15");
        t->chain_part = 3;
        t->chain_seq = 9;
        t->n_legs = 2;
        t->legs[0] = member(1, WALLET_ASSET_SP, -5);
        t->legs[1] = member(2, WALLET_ASSET_SP, 5);
        t->legs[0].account_id = 1000;
        t->legs[1].account_id = 1003;
        t->legs[0].has_balance_after = t->legs[1].has_balance_after = true;
        t->legs[0].balance_after = 10;
        t->legs[1].balance_after = 5;
}

static void test_hashes(void) {
        static wallet_tx a, b;
        uint8_t h1[WALLET_HASH_BYTES], h2[WALLET_HASH_BYTES];

        fill(&a);
        fill(&b);
        wallet_chain_hash(&a, h1);
        wallet_chain_hash(&b, h2);
        CHECK(memcmp(h1, h2, sizeof h1) == 0);
        /* Every field of the journal row matters. */
        b.legs[1].amount = 6;
        wallet_chain_hash(&b, h2);
        CHECK(memcmp(h1, h2, sizeof h1) != 0);
        fill(&b);
        b.legs[0].balance_after = 11;
        wallet_chain_hash(&b, h2);
        CHECK(memcmp(h1, h2, sizeof h1) != 0);
        fill(&b);
        b.prev_hash[31] = 1;
        wallet_chain_hash(&b, h2);
        CHECK(memcmp(h1, h2, sizeof h1) != 0);
        fill(&b);
        b.chain_seq = 10;
        wallet_chain_hash(&b, h2);
        CHECK(memcmp(h1, h2, sizeof h1) != 0);
        fill(&b);
        strcpy(b.memo, "n");
        wallet_chain_hash(&b, h2);
        CHECK(memcmp(h1, h2, sizeof h1) != 0);
        /* Field boundaries are encoded: moving a character between two fields changes the hash. */
        fill(&a);
        fill(&b);
        strcpy(a.cause_ref, "ab");
        strcpy(a.memo, "cm");
        strcpy(b.cause_ref, "abc");
        strcpy(b.memo, "m");
        wallet_chain_hash(&a, h1);
        wallet_chain_hash(&b, h2);
        CHECK(memcmp(h1, h2, sizeof h1) != 0);

        /* The request hash ignores what the ledger fills in (ids, balances, time, position), not the request. */
        fill(&a);
        fill(&b);
        b.legs[0].balance_after = 99;
        b.chain_seq = 77;
        b.posted_ms = 1;
        b.legs[0].account_id = 5;
        wallet_request_hash(&a, h1);
        wallet_request_hash(&b, h2);
        CHECK(memcmp(h1, h2, sizeof h1) == 0);
        b.legs[0].reason = 18;
        wallet_request_hash(&b, h2);
        CHECK(memcmp(h1, h2, sizeof h1) != 0);

        char hex[65];
        uint8_t z[WALLET_HASH_BYTES] = {0xab, 0x01};
        wallet_hash_hex(z, hex);
        CHECK(strncmp(hex, "ab01", 4) == 0 && strlen(hex) == 64);

        /* Chains and shards: deterministic and spread. */
        unsigned hits[32] = {0};
        for (int i = 0; i < 3200; i++) {
                char k[32];
                snprintf(k, sizeof k, "k%d", i);
                unsigned c = wallet_chain_of("svc", k, 32);
                CHECK(c < 32 && c == wallet_chain_of("svc", k, 32));
                CHECK(wallet_shard_of("svc", k, 16) < 16);
                hits[c]++;
        }
        for (int i = 0; i < 32; i++)
                CHECK(hits[i] > 50 && hits[i] < 150);
}

static void test_days(void) {
        char d[11];
        /* 2024-03-01 13:59:59.999 UTC = 21:59:59.999 in Shanghai: still 2024-03-01. */
        int64_t t = INT64_C(1709301599999);
        CHECK(wallet_business_day(t, 480, 1320, d) == 0 && strcmp(d, "2024-03-01") == 0);
        /* One millisecond later, 22:00: the next business day. */
        CHECK(wallet_business_day(t + 1, 480, 1320, d) == 0 && strcmp(d, "2024-03-02") == 0);
        /* Leap day and year end. */
        CHECK(wallet_business_day(INT64_C(1709164800000), 480, 1320, d) == 0 && strcmp(d, "2024-02-29") == 0);
        CHECK(wallet_business_day(INT64_C(1704031200000), 480, 1320, d) == 0 && strcmp(d, "2024-01-01") == 0);
        CHECK(wallet_business_day(t, 480, 1440, d) == -EINVAL);
        CHECK(wallet_business_day(-1, 480, 1320, d) == -EINVAL);
        int64_t end;
        CHECK(wallet_business_day_end("2024-03-01", 480, 1320, &end) == 0 && end == t + 1);
        CHECK(wallet_day_valid("2024-02-29") && !wallet_day_valid("2023-02-29") && !wallet_day_valid("2024-13-01") &&
              !wallet_day_valid("2024-1-01") && !wallet_day_valid("") && !wallet_day_valid("1999-01-01"));
}

static void test_text(void) {
        CHECK(wallet_key_valid("sale:1:abc", 64));
        CHECK(!wallet_key_valid("", 64) && !wallet_key_valid("a b", 64) && !wallet_key_valid("\x80", 64));
        char k65[66];
        memset(k65, 'x', 65);
        k65[65] = 0;
        CHECK(!wallet_key_valid(k65, 64));
        k65[64] = 0;
        CHECK(wallet_key_valid(k65, 64));
        CHECK(wallet_utf8_valid("", 200) && wallet_utf8_valid("转赠 gift", 7) && !wallet_utf8_valid("转赠 gift", 6));
        CHECK(!wallet_utf8_valid("\xc0\xaf", 10) && !wallet_utf8_valid("\xed\xa0\x80", 10) &&
              !wallet_utf8_valid("a\nb", 10) && !wallet_utf8_valid("\xe8\xbd", 10));
}

int main(void) {
        test_legs();
        test_hashes();
        test_days();
        test_text();
        printf("ok\n");
        return 0;
}
