/* Terminal state persistence, addresses, spend-field parsing and keypad, error words. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pos-check.h"
#include "pos-errors.h"
#include "pos-money.h"
#include "pos-state.h"

static void test_state(void) {
        char dir[] = "/tmp/test-pos-state.XXXXXX";
        CHECK(mkdtemp(dir));
        char path[256];
        snprintf(path, sizeof path, "%s/terminal.conf", dir);
        pos_state st;
        CHECK_EQ(pos_state_load(path, &st), -ENOENT);
        memset(&st, 0, sizeof st);
        snprintf(st.server, sizeof st.server, "127.0.0.1:50051");
        snprintf(st.merchant_server, sizeof st.merchant_server, "127.0.0.1:50053");
        st.terminal_id = 7;
        st.merchant_id = 18446744073709551615ull;
        snprintf(st.merchant_name, sizeof st.merchant_name, "好邻居便利店 = 1");
        snprintf(st.terminal_label, sizeof st.terminal_label, "收银台 1");
        snprintf(st.terminal_refresh, sizeof st.terminal_refresh, "rt-abc");
        CHECK(pos_state_paired(&st));
        CHECK_EQ(pos_state_save(path, &st), 0);
        struct stat sb;
        CHECK(stat(path, &sb) == 0);
        CHECK_EQ(sb.st_mode & 0777, 0600);
        pos_state back;
        CHECK_EQ(pos_state_load(path, &back), 0);
        CHECK(memcmp(&st, &back, sizeof st) == 0);
        /* A value with a newline could forge a key: refused. */
        snprintf(st.merchant_name, sizeof st.merchant_name, "x\nterminal_id=9");
        CHECK_EQ(pos_state_save(path, &st), -EINVAL);
        FILE *f = fopen(path, "a");
        fputs("unknown_key=1\n", f);
        fclose(f);
        CHECK_EQ(pos_state_load(path, &back), -EBADMSG);
        f = fopen(path, "w");
        fputs("terminal_id=-1\n", f);
        fclose(f);
        CHECK_EQ(pos_state_load(path, &back), -EBADMSG);
        unlink(path);
        rmdir(dir);

        CHECK(pos_address_valid("127.0.0.1:50051"));
        CHECK(pos_address_valid("pos.example.cn:443"));
        CHECK(pos_address_valid("[::1]:50051"));
        CHECK(!pos_address_valid("127.0.0.1"));
        CHECK(!pos_address_valid("http://x:1"));
        CHECK(!pos_address_valid("host:0"));
        CHECK(!pos_address_valid("host:65536"));
        CHECK(!pos_address_valid("host :1"));
        CHECK(!pos_address_valid(":1"));
}

static void test_spend(void) {
        int64_t fen = -1;
        CHECK_EQ(pos_spend_parse("88", &fen), 0);
        CHECK_EQ(fen, 8800);
        CHECK_EQ(pos_spend_parse("88.5", &fen), 0);
        CHECK_EQ(fen, 8850);
        CHECK_EQ(pos_spend_parse(" ¥12.34 ", &fen), 0);
        CHECK_EQ(fen, 1234);
        CHECK_EQ(pos_spend_parse("￥0.01", &fen), 0);
        CHECK_EQ(fen, 1);
        CHECK_EQ(pos_spend_parse("12.", &fen), 0);
        CHECK_EQ(fen, 1200);
        CHECK_EQ(pos_spend_parse("1000000.00", &fen), 0);
        CHECK_EQ(fen, POS_SPEND_MAX_FEN);
        fen = 77;
        CHECK_EQ(pos_spend_parse("1000000.01", &fen), -ERANGE);
        CHECK_EQ(pos_spend_parse("0", &fen), -ERANGE);
        CHECK_EQ(pos_spend_parse("0.00", &fen), -ERANGE);
        CHECK_EQ(pos_spend_parse("99999999999999999999", &fen), -ERANGE);
        CHECK_EQ(pos_spend_parse("-5", &fen), -EINVAL);
        CHECK_EQ(pos_spend_parse("1.234", &fen), -EINVAL);
        CHECK_EQ(pos_spend_parse("1e3", &fen), -EINVAL);
        CHECK_EQ(pos_spend_parse("", &fen), -EINVAL);
        CHECK_EQ(pos_spend_parse(".5", &fen), -EINVAL);
        CHECK_EQ(pos_spend_parse("1,000", &fen), -EINVAL);
        CHECK_EQ(pos_spend_parse(NULL, &fen), -EINVAL);
        CHECK_EQ(fen, 77); /* never written on failure */

        char b[POS_SPEND_TEXT_MAX] = "";
        CHECK(pos_spend_key(b, sizeof b, "."));
        CHECK(strcmp(b, "0.") == 0);
        CHECK(pos_spend_key(b, sizeof b, "5"));
        CHECK(pos_spend_key(b, sizeof b, "0"));
        CHECK(!pos_spend_key(b, sizeof b, "1")); /* a third decimal */
        CHECK(!pos_spend_key(b, sizeof b, "."));
        CHECK(strcmp(b, "0.50") == 0);
        CHECK(pos_spend_key(b, sizeof b, "CLEAR"));
        CHECK(pos_spend_key(b, sizeof b, "0"));
        CHECK(!pos_spend_key(b, sizeof b, "0")); /* "00" */
        CHECK(!pos_spend_key(b, sizeof b, "7")); /* "07" */
        CHECK(pos_spend_key(b, sizeof b, "BACK"));
        CHECK(pos_spend_key(b, sizeof b, "8"));
        CHECK(pos_spend_key(b, sizeof b, "8"));
        CHECK(pos_spend_key(b, sizeof b, "00"));
        CHECK(strcmp(b, "8800") == 0);
        CHECK(pos_spend_key(b, sizeof b, "00"));
        CHECK(!pos_spend_key(b, sizeof b, "0")); /* 8 800 000 yuan > max */
        CHECK(strcmp(b, "880000") == 0);
        CHECK(!pos_spend_key(b, sizeof b, "x"));
        CHECK(!pos_spend_key(b, sizeof b, "-"));

        char out[40];
        pos_format_yuan(8800, out, sizeof out);
        CHECK(strcmp(out, "¥88.00") == 0);
        pos_format_yuan(-50, out, sizeof out);
        CHECK(strcmp(out, "-¥0.50") == 0);
        pos_format_units(88800, out, sizeof out);
        CHECK(strcmp(out, "8.88") == 0);
}

static void test_errors(void) {
        pos_error e;
        pos_error_set(&e, SB_FAILED_PRECONDITION, "REASON_MEMBER_CODE_EXPIRED", "code expired");
        CHECK_EQ(pos_error_place(&e), POS_PLACE_MEMBER_CODE);
        CHECK(strstr(pos_error_text(&e), "expired"));
        CHECK(!pos_error_offline(&e));
        pos_error_set(&e, SB_FAILED_PRECONDITION, "REASON_DEPOSIT_INSUFFICIENT", "");
        CHECK_EQ(pos_error_place(&e), POS_PLACE_DEPOSIT);
        pos_error_set(&e, SB_FAILED_PRECONDITION, "REASON_MERCHANT_SUSPENDED", "");
        CHECK_EQ(pos_error_place(&e), POS_PLACE_MERCHANT);
        pos_error_set(&e, SB_UNAVAILABLE, NULL, "connection refused");
        CHECK(pos_error_offline(&e));
        CHECK_EQ(pos_error_place(&e), POS_PLACE_CONNECTION);
        CHECK(strstr(pos_error_text(&e), "No connection"));
        /* An unknown reason counts as none: the status decides. */
        pos_error_set(&e, SB_UNAUTHENTICATED, "REASON_FROM_THE_FUTURE", "");
        CHECK_EQ(pos_error_place(&e), POS_PLACE_SESSION);
        pos_error_clear(&e);
        CHECK_EQ(e.status, SB_OK);
}

int main(void) {
        test_state();
        test_spend();
        test_errors();
        printf("ok\n");
        return 0;
}
