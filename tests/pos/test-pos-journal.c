/* The offline journal: durability across reopen, a torn last record, a corrupted checksum, status rules,
 * compaction, and a crash between "server recorded" and "journal marked" (the sale is sent again). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pos-check.h"
#include "pos-journal.h"

static char dir[] = "/tmp/test-pos-journal.XXXXXX";
static char path[256];

static pos_journal *reopen(pos_journal *j, pos_journal_stats *st) {
        pos_journal_close(j);
        pos_journal *n = NULL;
        CHECK_EQ(pos_journal_open(path, &n, st), 0);
        return n;
}

static off_t file_size(void) {
        struct stat s;
        CHECK(stat(path, &s) == 0);
        return s.st_size;
}

static void append_raw(const char *bytes, size_t n) {
        int fd = open(path, O_WRONLY | O_APPEND);
        CHECK(fd >= 0);
        CHECK(write(fd, bytes, n) == (ssize_t) n);
        close(fd);
}

static void test_basic(void) {
        pos_journal *j = NULL;
        pos_journal_stats st;
        CHECK_EQ(pos_journal_open(path, &j, &st), 0);
        CHECK_EQ(st.records, 0);
        CHECK_EQ(pos_journal_append_sale(j, "sale-1", "CODE.1", 8800, 1000, false), 0);
        CHECK_EQ(pos_journal_append_sale(j, "sale-2", "CODE.2", 100, 2000, true), 0);
        CHECK_EQ(pos_journal_append_sale(j, "sale-3", "CODE.3", 5, 3000, true), 0);
        CHECK_EQ(pos_journal_append_sale(j, "sale-1", "CODE.X", 1, 1, false), -EEXIST);
        CHECK_EQ(pos_journal_append_sale(j, "bad id", "CODE", 1, 1, false), -EINVAL);
        CHECK_EQ(pos_journal_append_sale(j, "s4", "has space", 1, 1, false), -EINVAL);
        CHECK_EQ(pos_journal_append_sale(j, "s4", "CODE", 0, 1, false), -EINVAL);
        CHECK_EQ(pos_journal_mark(j, "sale-1", POS_SALE_SENT, 1500, NULL, 88000, 4400), 0);
        CHECK_EQ(pos_journal_mark(j, "sale-2", POS_SALE_FAILED, 2500, "REASON_MEMBER_CODE_EXPIRED", 0, 0), 0);
        /* Marking again with the same status is a no-op; a final status never changes; QUEUED is not a mark. */
        CHECK_EQ(pos_journal_mark(j, "sale-1", POS_SALE_SENT, 9999, NULL, 1, 1), 0);
        CHECK_EQ(pos_journal_mark(j, "sale-1", POS_SALE_FAILED, 9999, "REASON_X", 0, 0), -EINVAL);
        CHECK_EQ(pos_journal_mark(j, "sale-3", POS_SALE_QUEUED, 9999, NULL, 0, 0), -EINVAL);
        CHECK_EQ(pos_journal_mark(j, "nope", POS_SALE_SENT, 9999, NULL, 0, 0), -ENOENT);

        j = reopen(j, &st);
        CHECK_EQ(st.records, 5);
        CHECK_EQ(st.bad_records, 0);
        CHECK_EQ(st.torn_bytes, 0);
        CHECK_EQ(pos_journal_count(j), 3);
        pos_journal_sale s;
        CHECK_EQ(pos_journal_find(j, "sale-1", &s), 0);
        CHECK_EQ(s.status, POS_SALE_SENT);
        CHECK_EQ(s.member_cv_units, 88000);
        CHECK_EQ(s.deposit_sp_units, 4400);
        CHECK_EQ(s.spend_fen, 8800);
        CHECK(!s.offline);
        CHECK_EQ(pos_journal_find(j, "sale-2", &s), 0);
        CHECK_EQ(s.status, POS_SALE_FAILED);
        CHECK(strcmp(s.reason, "REASON_MEMBER_CODE_EXPIRED") == 0);
        CHECK(s.offline);
        CHECK_EQ(pos_journal_next_queued(j, &s), 0);
        CHECK(strcmp(s.sale_id, "sale-3") == 0);
        CHECK(strcmp(s.member_code, "CODE.3") == 0);
        CHECK_EQ(s.captured_unix_ms, 3000);
        pos_journal_close(j);
}

/* A crash in the middle of a write leaves a last line without its newline: it is cut off, the rest is intact, and
 * the next append starts on a clean line. */
static void test_torn_tail(void) {
        off_t before = file_size();
        append_raw("PJ1 0badf00d S sale-9 100 1 0 COD", 33);
        pos_journal *j = NULL;
        pos_journal_stats st;
        CHECK_EQ(pos_journal_open(path, &j, &st), 0);
        CHECK_EQ(st.torn_bytes, 33);
        CHECK_EQ(st.bad_records, 0);
        CHECK_EQ(file_size(), before);
        CHECK_EQ(pos_journal_count(j), 3);
        pos_journal_sale s;
        CHECK_EQ(pos_journal_find(j, "sale-9", &s), -ENOENT);
        CHECK_EQ(pos_journal_append_sale(j, "sale-4", "CODE.4", 400, 4000, true), 0);
        j = reopen(j, &st);
        CHECK_EQ(st.torn_bytes, 0);
        CHECK_EQ(st.bad_records, 0);
        CHECK_EQ(pos_journal_count(j), 4);
        pos_journal_close(j);
}

/* A flipped byte inside a record: that record is skipped and counted, the ones after it still count. */
static void test_corrupted_checksum(void) {
        char *buf = NULL;
        size_t n = 0;
        FILE *f = fopen(path, "r");
        CHECK(f);
        CHECK(getdelim(&buf, &n, '\0', f) > 0);
        fclose(f);
        /* The line of sale-2 ("S sale-2 100 ..."): change its amount without fixing the checksum. */
        char *p = strstr(buf, "S sale-2 100 ");
        CHECK(p);
        p[9] = '9';
        f = fopen(path, "w");
        CHECK(f);
        fputs(buf, f);
        fclose(f);
        free(buf);
        pos_journal *j = NULL;
        pos_journal_stats st;
        CHECK_EQ(pos_journal_open(path, &j, &st), 0);
        /* The sale record is gone, and its mark (naming an unknown sale) is refused too. */
        CHECK_EQ(st.bad_records, 2);
        pos_journal_sale s;
        CHECK_EQ(pos_journal_find(j, "sale-2", &s), -ENOENT);
        CHECK_EQ(pos_journal_find(j, "sale-3", &s), 0);
        CHECK_EQ(pos_journal_find(j, "sale-4", &s), 0);
        CHECK_EQ(s.status, POS_SALE_QUEUED);
        pos_journal_close(j);
}

/* The crash case of replay: the server recorded sale-3, the terminal died before writing "sent". On restart the
 * sale is still queued, so it is sent again with the same sale id — RecordSale returns the first receipt
 * (replayed) and the journal is marked once. */
static void test_replay_after_crash(void) {
        pos_journal *j = NULL;
        pos_journal_stats st;
        CHECK_EQ(pos_journal_open(path, &j, &st), 0);
        pos_journal_sale s;
        CHECK_EQ(pos_journal_next_queued(j, &s), 0);
        CHECK(strcmp(s.sale_id, "sale-3") == 0);
        /* "Server recorded it" — and the process dies here: close without marking. */
        pos_journal_close(j);
        CHECK_EQ(pos_journal_open(path, &j, &st), 0);
        CHECK_EQ(pos_journal_next_queued(j, &s), 0);
        CHECK(strcmp(s.sale_id, "sale-3") == 0); /* same id again: idempotent at the server */
        CHECK_EQ(pos_journal_mark(j, "sale-3", POS_SALE_SENT, 5000, NULL, 50, 25), 0);
        CHECK_EQ(pos_journal_mark(j, "sale-3", POS_SALE_SENT, 5001, NULL, 50, 25), 0);
        CHECK_EQ(pos_journal_count_status(j, POS_SALE_SENT), 2);
        j = reopen(j, &st);
        CHECK_EQ(pos_journal_count_status(j, POS_SALE_SENT), 2);
        CHECK_EQ(pos_journal_count_status(j, POS_SALE_QUEUED), 1);
        pos_journal_close(j);
}

static void test_compact(void) {
        pos_journal *j = NULL;
        pos_journal_stats st;
        CHECK_EQ(pos_journal_open(path, &j, &st), 0);
        size_t before = pos_journal_count(j);
        /* Drops the sent sales captured before 3500 (sale-1, sale-3); the queued sale-4 stays. */
        CHECK_EQ(pos_journal_compact(j, 3500), 2);
        CHECK_EQ(pos_journal_count(j), before - 2);
        CHECK_EQ(pos_journal_append_sale(j, "sale-5", "CODE.5", 500, 6000, false), 0);
        j = reopen(j, &st);
        CHECK_EQ(st.bad_records, 0);
        CHECK_EQ(pos_journal_count(j), before - 1);
        pos_journal_sale s;
        CHECK_EQ(pos_journal_find(j, "sale-4", &s), 0);
        CHECK_EQ(pos_journal_find(j, "sale-5", &s), 0);
        CHECK_EQ(pos_journal_find(j, "sale-1", &s), -ENOENT);
        pos_journal_close(j);
}

static void test_queue_limit_and_ids(void) {
        char p2[300];
        snprintf(p2, sizeof p2, "%s/limit.log", dir);
        pos_journal *j = NULL;
        CHECK_EQ(pos_journal_open(p2, &j, NULL), 0);
        char id[37], prev[37] = "";
        for (int i = 0; i < POS_JOURNAL_MAX_QUEUED; i++) {
                CHECK_EQ(pos_sale_id_new(id), 0);
                CHECK(pos_sale_id_valid(id));
                CHECK(strlen(id) == 36 && id[14] == '4');
                CHECK(strcmp(id, prev) != 0);
                memcpy(prev, id, sizeof id);
                CHECK_EQ(pos_journal_append_sale(j, id, "C", 1, i, true), 0);
        }
        CHECK_EQ(pos_sale_id_new(id), 0);
        CHECK_EQ(pos_journal_append_sale(j, id, "C", 1, 0, true), -ENOSPC);
        pos_journal_close(j);
        /* CRC-32 check value of "123456789". */
        CHECK_EQ(pos_crc32("123456789", 9), 0xCBF43926u);
        unlink(p2);
}

int main(void) {
        CHECK(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/journal.log", dir);
        test_basic();
        test_torn_tail();
        test_corrupted_checksum();
        test_replay_after_crash();
        test_compact();
        test_queue_limit_and_ids();
        unlink(path);
        rmdir(dir);
        printf("ok\n");
        return 0;
}
