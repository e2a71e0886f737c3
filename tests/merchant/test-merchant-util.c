/* Unit tests of the merchant service's pure helpers: licence numbers (GB 32100-2015), phones, ids, text, business
 * days and the integer distance. */
#include <stdio.h>
#include <string.h>

#include "merchant_util.h"
#include "sb_test.h"

static void test_licence(void) {
        /* Published numbers of real companies. */
        SB_CHECK(merchant_licence_valid("91350100M000100Y43"));
        SB_CHECK(merchant_licence_valid("91110000600037341L"));
        SB_CHECK(merchant_licence_valid("91440300708461136T"));
        SB_CHECK(merchant_licence_valid("914403001922038216"));
        /* One character changed, the check character wrong, lower case, letters outside the alphabet. */
        SB_CHECK(!merchant_licence_valid("91350100M000100Y44"));
        SB_CHECK(!merchant_licence_valid("91350100M000100Z43"));
        SB_CHECK(!merchant_licence_valid("91110000600037341l"));
        SB_CHECK(!merchant_licence_valid("9111000060003734IL"));
        SB_CHECK(!merchant_licence_valid("91A10000600037341L")); /* the division code must be digits */
        SB_CHECK(!merchant_licence_valid("91110000600037341"));
        SB_CHECK(!merchant_licence_valid("91110000600037341LL"));
        SB_CHECK(!merchant_licence_valid(""));
        SB_CHECK(!merchant_licence_valid(NULL));
        /* Every check character of the alphabet can be made and verified. */
        char s[19] = "9144030070846113";
        for (char c = '0'; c <= '9'; c++) {
                s[16] = c;
                s[17] = merchant_licence_check_char(s);
                s[18] = '\0';
                SB_CHECK(s[17] != '\0');
                SB_CHECK(merchant_licence_valid(s));
        }
}

static void test_phone_id_text(void) {
        SB_CHECK(merchant_phone_valid("13800138000"));
        SB_CHECK(merchant_phone_valid("19912345678"));
        SB_CHECK(!merchant_phone_valid("12800138000"));
        SB_CHECK(!merchant_phone_valid("1380013800"));
        SB_CHECK(merchant_phone_valid("0769-22345678"));
        SB_CHECK(merchant_phone_valid("010-12345678"));
        SB_CHECK(merchant_phone_valid("07692234567"));
        SB_CHECK(!merchant_phone_valid("0769-22-345678"));
        SB_CHECK(!merchant_phone_valid("769-22345678"));
        SB_CHECK(!merchant_phone_valid("+8613800138000"));
        SB_CHECK(!merchant_phone_valid(NULL));

        SB_CHECK(merchant_id_valid("a"));
        SB_CHECK(merchant_id_valid("550e8400-e29b-41d4-a716-446655440000"));
        SB_CHECK(!merchant_id_valid(""));
        SB_CHECK(!merchant_id_valid("a b"));
        SB_CHECK(!merchant_id_valid("sale:1"));
        char id[70];
        memset(id, 'x', 64);
        id[64] = '\0';
        SB_CHECK(merchant_id_valid(id));
        id[64] = 'x';
        id[65] = '\0';
        SB_CHECK(!merchant_id_valid(id));

        SB_CHECK(merchant_text_valid("东莞市南城区 1 号", 64, true));
        SB_CHECK(merchant_text_valid("", 64, false));
        SB_CHECK(!merchant_text_valid("", 64, true));
        SB_CHECK(!merchant_text_valid("a\nb", 64, true));
        SB_CHECK(!merchant_text_valid("\xc0\xaf", 64, true));   /* overlong */
        SB_CHECK(!merchant_text_valid("\xed\xa0\x80", 64, true)); /* a surrogate */
        SB_CHECK(!merchant_text_valid("\xe4\xb8", 64, true));    /* cut */
        SB_CHECK(merchant_text_valid("店店店", 3, true));
        SB_CHECK(!merchant_text_valid("店店店店", 3, true));
}

static void test_days(void) {
        char d[MERCHANT_DAY_LEN + 1];
        /* 2026-01-01T13:59:59.999Z is 21:59:59.999 in Shanghai: still business day 2026-01-01; a millisecond later
         * the cut-off (22:00) has passed and it is 2026-01-02. */
        int64_t t = INT64_C(1767275999999);
        SB_CHECK_EQ(merchant_business_day(t, 480, 1320, d), 0);
        SB_CHECK(strcmp(d, "2026-01-01") == 0);
        SB_CHECK_EQ(merchant_business_day(t + 1, 480, 1320, d), 0);
        SB_CHECK(strcmp(d, "2026-01-02") == 0);
        int64_t end = 0;
        SB_CHECK_EQ(merchant_business_day_end("2026-01-01", 480, 1320, &end), 0);
        SB_CHECK_EQ(end, t + 1);
        SB_CHECK_EQ(merchant_day_next("2024-02-28", d), 0);
        SB_CHECK(strcmp(d, "2024-02-29") == 0);
        SB_CHECK_EQ(merchant_day_next("2025-12-31", d), 0);
        SB_CHECK(strcmp(d, "2026-01-01") == 0);
        SB_CHECK(!merchant_day_valid("2025-02-29"));
        SB_CHECK(!merchant_day_valid("2025-2-28"));
        SB_CHECK(merchant_business_day(t, 900, 1320, d) < 0);
        SB_CHECK(merchant_business_day(t, 480, 1440, d) < 0);
}

static void test_distance(void) {
        /* 深圳 市民中心 → 南山 (haversine 12 669.96 m) and a 0.3° diagonal in Beijing (42 009.07 m): within 0.1 %. */
        uint32_t a = merchant_distance_m(22543096, 114057865, 22540503, 113934528);
        SB_CHECK(a >= 12657 && a <= 12683);
        uint32_t b = merchant_distance_m(39904200, 116407400, 40204200, 116707400);
        SB_CHECK(b >= 41967 && b <= 42051);
        SB_CHECK_EQ(merchant_distance_m(22543096, 114057865, 22543096, 114057865), 0);
        SB_CHECK_EQ(merchant_distance_m(22543096, 114057865, 22540503, 113934528),
                    merchant_distance_m(22540503, 113934528, 22543096, 114057865));
        /* The box holds every point within the radius. */
        int32_t la0, la1, lo0, lo1;
        merchant_bbox(39904200, 116407400, 50000, &la0, &la1, &lo0, &lo1);
        SB_CHECK(merchant_distance_m(39904200, 116407400, la1, 116407400) >= 50000);
        SB_CHECK(merchant_distance_m(39904200, 116407400, 39904200, lo1) >= 50000);
        SB_CHECK(merchant_distance_m(39904200, 116407400, 39904200, lo0) >= 50000);
        SB_CHECK(la0 < 39904200 && lo0 < 116407400);
        SB_CHECK(merchant_point_in_china(22543096, 114057865));
        SB_CHECK(!merchant_point_in_china(0, 0));
}

int main(void) {
        test_licence();
        test_phone_id_text();
        test_days();
        test_distance();
        printf("ok\n");
        return 0;
}
