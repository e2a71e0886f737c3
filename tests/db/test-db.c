/* Integration tests of services/core/db against a real MariaDB (tests/lib/with-mariadb). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "db/db.h"
#include "sb_test.h"

static void exec(sb_db *db, const char *sql) {
    int r = sb_db_exec_text(db, sql, strlen(sql));
    if (r < 0)
        fprintf(stderr, "%s: %s\n", sql, sb_db_errmsg(db));
    SB_CHECK_EQ(r, 0);
}

static int64_t query_i64(sb_db *db, const char *sql) {
    sb_db_stmt *s;
    SB_CHECK_EQ(sb_db_prepare(db, sql, &s), 0);
    SB_CHECK_EQ(sb_db_execute(s), 0);
    SB_CHECK_EQ(sb_db_fetch(s), 1);
    int64_t v = 0;
    SB_CHECK_EQ(sb_db_col_i64(s, 0, &v), 0);
    SB_CHECK_EQ(sb_db_fetch(s), 0);
    return v;
}

static void setup_schema(sb_db *db) {
    exec(db, "DROP DATABASE IF EXISTS sbtest_db");
    exec(db, "CREATE DATABASE sbtest_db CHARACTER SET utf8mb4");
    exec(db, "CREATE TABLE sbtest_db.t ("
             " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
             " name VARCHAR(100) NOT NULL UNIQUE,"
             " amount BIGINT NOT NULL,"
             " big BIGINT UNSIGNED NULL,"
             " data VARBINARY(64) NULL,"
             " note TEXT NULL,"
             " at DATETIME(6) NOT NULL DEFAULT '2024-01-02 03:04:05.000006'"
             ") ENGINE=InnoDB");
    exec(db, "CREATE TABLE sbtest_db.acct (id INT NOT NULL PRIMARY KEY, v BIGINT NOT NULL) ENGINE=InnoDB");
    exec(db, "INSERT INTO sbtest_db.acct VALUES (1, 0), (2, 0)");
}

static const char *const insert_sql = "INSERT INTO sbtest_db.t (name, amount, big, data, note) VALUES (?, ?, ?, ?, ?)";

static void test_prepared(sb_db *db) {
    sb_db_stmt *s, *s2;
    SB_CHECK_EQ(sb_db_prepare(db, insert_sql, &s), 0);
    SB_CHECK_EQ(sb_db_prepare(db, insert_sql, &s2), 0);
    SB_CHECK(s == s2); /* the cache gives the same handle for the same text */

    static const unsigned char bytes[5] = {0, 1, 0, 255, 7};
    char long_note[3000];
    memset(long_note, 'x', sizeof long_note - 1);
    long_note[sizeof long_note - 1] = '\0';

    SB_CHECK_EQ(sb_db_bind_str(s, 0, "alice"), 0);
    SB_CHECK_EQ(sb_db_bind_i64(s, 1, -12345678901234LL), 0);
    SB_CHECK_EQ(sb_db_bind_u64(s, 2, UINT64_MAX), 0);
    SB_CHECK_EQ(sb_db_bind_blob(s, 3, bytes, sizeof bytes), 0);
    SB_CHECK_EQ(sb_db_bind_str(s, 4, "quote ' and \\ and ; -- not a comment"), 0);
    SB_CHECK_EQ(sb_db_bind_i64(s, 5, 1), -EINVAL); /* out of range */
    SB_CHECK_EQ(sb_db_execute(s), 0);
    SB_CHECK_EQ(sb_db_affected_rows(s), 1);
    uint64_t alice_id = sb_db_insert_id(s);
    SB_CHECK(alice_id > 0);

    SB_CHECK_EQ(sb_db_bind_str(s, 0, "bob"), 0);
    SB_CHECK_EQ(sb_db_bind_i64(s, 1, 42), 0);
    SB_CHECK_EQ(sb_db_bind_null(s, 2), 0);
    SB_CHECK_EQ(sb_db_bind_null(s, 3), 0);
    SB_CHECK_EQ(sb_db_bind_str(s, 4, long_note), 0);
    SB_CHECK_EQ(sb_db_execute(s), 0);
    SB_CHECK_EQ(sb_db_insert_id(s), alice_id + 1);

    /* Unicode text survives the round trip. */
    SB_CHECK_EQ(sb_db_prepare(db, insert_sql, &s), 0);
    SB_CHECK_EQ(sb_db_bind_str(s, 0, "张三 🙂"), 0);
    SB_CHECK_EQ(sb_db_bind_i64(s, 1, 0), 0);
    SB_CHECK_EQ(sb_db_execute(s), 0);

    SB_CHECK_EQ(sb_db_prepare(db, "SELECT id, name, amount, big, data, note, at FROM sbtest_db.t WHERE id >= ? ORDER BY id", &s), 0);
    SB_CHECK_EQ(sb_db_column_count(s), 7);
    SB_CHECK_EQ(sb_db_bind_u64(s, 0, alice_id), 0);
    SB_CHECK_EQ(sb_db_execute(s), 0);

    char buf[4096];
    int64_t i64;
    uint64_t u64;
    size_t len;
    SB_CHECK_EQ(sb_db_fetch(s), 1);
    SB_CHECK_EQ(sb_db_col_u64(s, 0, &u64), 0);
    SB_CHECK_EQ(u64, alice_id);
    SB_CHECK_EQ(sb_db_col_str(s, 1, buf, sizeof buf), 5);
    SB_CHECK(strcmp(buf, "alice") == 0);
    SB_CHECK_EQ(sb_db_col_str(s, 1, buf, 5), -ENOBUFS);
    SB_CHECK_EQ(sb_db_col_i64(s, 2, &i64), 0);
    SB_CHECK_EQ(i64, -12345678901234LL);
    SB_CHECK_EQ(sb_db_col_u64(s, 3, &u64), 0);
    SB_CHECK(u64 == UINT64_MAX);
    SB_CHECK_EQ(sb_db_col_i64(s, 3, &i64), -ERANGE);
    SB_CHECK_EQ(sb_db_col_blob(s, 4, buf, sizeof buf), 5);
    SB_CHECK(memcmp(buf, bytes, 5) == 0);
    const void *data = sb_db_col_data(s, 4, &len);
    SB_CHECK(data && len == 5);
    SB_CHECK_EQ(sb_db_col_str(s, 5, buf, sizeof buf), (int) strlen("quote ' and \\ and ; -- not a comment"));
    SB_CHECK(strcmp(buf, "quote ' and \\ and ; -- not a comment") == 0);
    SB_CHECK_EQ(sb_db_col_str(s, 6, buf, sizeof buf), 26);
    SB_CHECK(strcmp(buf, "2024-01-02 03:04:05.000006") == 0);

    SB_CHECK_EQ(sb_db_fetch(s), 1);
    SB_CHECK(sb_db_col_is_null(s, 3));
    SB_CHECK_EQ(sb_db_col_u64(s, 3, &u64), -ENODATA);
    SB_CHECK_EQ(sb_db_col_str(s, 4, buf, sizeof buf), -ENODATA);
    SB_CHECK(sb_db_col_data(s, 4, &len) == NULL);
    SB_CHECK_EQ(sb_db_col_str(s, 5, buf, sizeof buf), (int) strlen(long_note));
    SB_CHECK(strcmp(buf, long_note) == 0);

    SB_CHECK_EQ(sb_db_fetch(s), 1);
    SB_CHECK_EQ(sb_db_col_str(s, 1, buf, sizeof buf), (int) strlen("张三 🙂"));
    SB_CHECK(strcmp(buf, "张三 🙂") == 0);
    SB_CHECK_EQ(sb_db_fetch(s), 0);
    SB_CHECK_EQ(sb_db_fetch(s), 0);

    /* SUM() of a BIGINT is a DECIMAL: col_i64 converts whole numbers. */
    SB_CHECK_EQ(query_i64(db, "SELECT SUM(amount) FROM sbtest_db.t"), -12345678901234LL + 42);
    SB_CHECK_EQ(query_i64(db, "SELECT CAST(7 AS DECIMAL(10,2))"), 7);
    SB_CHECK_EQ(sb_db_prepare(db, "SELECT CAST(7.5 AS DECIMAL(10,2)), 'abc'", &s), 0);
    SB_CHECK_EQ(sb_db_execute(s), 0);
    SB_CHECK_EQ(sb_db_fetch(s), 1);
    SB_CHECK_EQ(sb_db_col_i64(s, 0, &i64), -ERANGE);
    SB_CHECK_EQ(sb_db_col_i64(s, 1, &i64), -EINVAL);
    SB_CHECK_EQ(sb_db_fetch(s), 0);

    /* Re-preparing a statement with a pending result releases it. */
    SB_CHECK_EQ(sb_db_prepare(db, "SELECT id FROM sbtest_db.t ORDER BY id", &s), 0);
    SB_CHECK_EQ(sb_db_execute(s), 0);
    SB_CHECK_EQ(sb_db_fetch(s), 1);
    SB_CHECK_EQ(sb_db_prepare(db, "SELECT id FROM sbtest_db.t ORDER BY id", &s), 0);
    SB_CHECK_EQ(sb_db_execute(s), 0);
    int rows = 0;
    while (sb_db_fetch(s) == 1)
        rows++;
    SB_CHECK_EQ(rows, 3);

    /* An UPDATE reports rows changed. */
    SB_CHECK_EQ(sb_db_prepare(db, "UPDATE sbtest_db.t SET amount = amount WHERE id > 0", &s), 0);
    SB_CHECK_EQ(sb_db_execute(s), 0);
    SB_CHECK_EQ(sb_db_affected_rows(s), 0);
}

static void test_errors(sb_db *db) {
    sb_db_stmt *s;
    SB_CHECK_EQ(sb_db_prepare(db, insert_sql, &s), 0);
    SB_CHECK_EQ(sb_db_bind_str(s, 0, "alice"), 0);
    SB_CHECK_EQ(sb_db_bind_i64(s, 1, 1), 0);
    SB_CHECK_EQ(sb_db_execute(s), -EEXIST);
    SB_CHECK_EQ(sb_db_errno(db), 1062);
    SB_CHECK(strstr(sb_db_errmsg(db), "Duplicate entry") != NULL);

    SB_CHECK_EQ(sb_db_prepare(db, "SELECT * FROM sbtest_db.no_such_table", &s), -ENOENT);
    SB_CHECK_EQ(sb_db_errno(db), 1146);
    SB_CHECK_EQ(sb_db_prepare(db, "SELEKT 1", &s), -EIO);
    SB_CHECK_EQ(sb_db_errno(db), 1064);
    /* A failed prepare is not cached; a good one afterwards works and clears the error. */
    SB_CHECK_EQ(query_i64(db, "SELECT 1"), 1);
    SB_CHECK_EQ(sb_db_errno(db), 0);
}

static void test_statement_timeout(sb_db *db) {
    SB_CHECK_EQ(sb_db_set_statement_timeout_ms(db, 200), 0);
    SB_CHECK_EQ(query_i64(db, "SELECT @@max_statement_time * 1000"), 200);
    sb_db_stmt *s;
    /* A query that reads rows for a long time. */
    SB_CHECK_EQ(sb_db_prepare(db, "SELECT SUM(a.seq * b.seq) FROM sbtest_db.seq_1_to_100000 a, sbtest_db.seq_1_to_100000 b", &s), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    SB_CHECK_EQ(sb_db_execute(s), -ETIMEDOUT);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    SB_CHECK(t1.tv_sec - t0.tv_sec < 5);
    SB_CHECK_EQ(sb_db_errno(db), 1969);
    SB_CHECK_EQ(sb_db_set_statement_timeout_ms(db, 0), 0);
    SB_CHECK_EQ(query_i64(db, "SELECT @@max_statement_time"), 0);
}

static void test_cache_limit(sb_db_config *cfg) {
    sb_db *db;
    char err[256];
    SB_CHECK_EQ(sb_db_open(cfg, &db, err, sizeof err), 0);
    char sql[64];
    for (int i = 0; i < SB_DB_STMT_CACHE_MAX; i++) {
        snprintf(sql, sizeof sql, "SELECT %d", i);
        sb_db_stmt *s;
        SB_CHECK_EQ(sb_db_prepare(db, sql, &s), 0);
    }
    sb_db_stmt *s;
    SB_CHECK_EQ(sb_db_prepare(db, "SELECT 'one too many'", &s), -ENOSPC);
    SB_CHECK_EQ(sb_db_prepare(db, "SELECT 7", &s), 0); /* cached texts still work */
    SB_CHECK_EQ(sb_db_execute(s), 0);
    SB_CHECK_EQ(sb_db_fetch(s), 1);
    sb_db_close(db);
}

typedef struct tx_arg {
    int64_t add;
    int fail_with;
    int calls;
} tx_arg;

static int tx_add(sb_db *db, void *p) {
    tx_arg *a = p;
    a->calls++;
    sb_db_stmt *s;
    int r = sb_db_prepare(db, "UPDATE sbtest_db.acct SET v = v + ? WHERE id = 1", &s);
    if (r < 0)
        return r;
    sb_db_bind_i64(s, 0, a->add);
    r = sb_db_execute(s);
    if (r < 0)
        return r;
    return a->fail_with;
}

static void test_tx(sb_db *db) {
    int64_t before = query_i64(db, "SELECT v FROM sbtest_db.acct WHERE id = 1");
    tx_arg a = {.add = 5};
    SB_CHECK_EQ(sb_db_tx(db, tx_add, &a), 0);
    SB_CHECK_EQ(a.calls, 1);
    SB_CHECK_EQ(query_i64(db, "SELECT v FROM sbtest_db.acct WHERE id = 1"), before + 5);
    tx_arg b = {.add = 100, .fail_with = -EPERM};
    SB_CHECK_EQ(sb_db_tx(db, tx_add, &b), -EPERM);
    SB_CHECK_EQ(b.calls, 1); /* an error of fn's own is not retried */
    SB_CHECK_EQ(query_i64(db, "SELECT v FROM sbtest_db.acct WHERE id = 1"), before + 5);
    SB_CHECK(!sb_db_in_tx(db));
}

/* Two transactions that lock rows 1 and 2 in opposite orders: InnoDB kills one with a deadlock (1213) and
 * sb_db_tx runs it again, so both commit. */
typedef struct deadlock_arg {
    sb_db *db;
    int first, second;
    pthread_barrier_t *barrier;
    int calls;
    int result;
} deadlock_arg;

static int deadlock_fn(sb_db *db, void *p) {
    deadlock_arg *a = p;
    a->calls++;
    sb_db_stmt *s;
    int r = sb_db_prepare(db, "UPDATE sbtest_db.acct SET v = v + 1 WHERE id = ?", &s);
    if (r < 0)
        return r;
    sb_db_bind_i64(s, 0, a->first);
    r = sb_db_execute(s);
    if (r < 0)
        return r;
    if (a->calls == 1)
        pthread_barrier_wait(a->barrier); /* both hold their first row now */
    sb_db_bind_i64(s, 0, a->second);
    return sb_db_execute(s);
}

static void *deadlock_thread(void *p) {
    deadlock_arg *a = p;
    a->result = sb_db_tx(a->db, deadlock_fn, a);
    return NULL;
}

static void test_deadlock_retry(sb_db *db, sb_db_config *cfg) {
    sb_db *db2;
    char err[256];
    SB_CHECK_EQ(sb_db_open(cfg, &db2, err, sizeof err), 0);
    exec(db, "UPDATE sbtest_db.acct SET v = 0");
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, 2);
    deadlock_arg a = {.db = db, .first = 1, .second = 2, .barrier = &barrier};
    deadlock_arg b = {.db = db2, .first = 2, .second = 1, .barrier = &barrier};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, deadlock_thread, &a);
    pthread_create(&tb, NULL, deadlock_thread, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    pthread_barrier_destroy(&barrier);
    SB_CHECK_EQ(a.result, 0);
    SB_CHECK_EQ(b.result, 0);
    SB_CHECK(a.calls + b.calls >= 3); /* the victim ran again */
    SB_CHECK_EQ(query_i64(db, "SELECT v FROM sbtest_db.acct WHERE id = 1"), 2);
    SB_CHECK_EQ(query_i64(db, "SELECT v FROM sbtest_db.acct WHERE id = 2"), 2);
    sb_db_close(db2);
}

static void kill_connection(sb_db *admin, uint64_t id) {
    sb_db_stmt *s;
    SB_CHECK(id > 0);
    SB_CHECK_EQ(sb_db_prepare(admin, "KILL CONNECTION ?", &s), 0);
    SB_CHECK_EQ(sb_db_bind_u64(s, 0, id), 0);
    SB_CHECK_EQ(sb_db_execute(s), 0);
    /* KILL returns before the victim's thread is gone; wait until it is. */
    SB_CHECK_EQ(sb_db_prepare(admin, "SELECT COUNT(*) FROM information_schema.processlist WHERE id = ?", &s), 0);
    for (int i = 0; i < 200; i++) {
        SB_CHECK_EQ(sb_db_bind_u64(s, 0, id), 0);
        SB_CHECK_EQ(sb_db_execute(s), 0);
        SB_CHECK_EQ(sb_db_fetch(s), 1);
        int64_t n = -1;
        SB_CHECK_EQ(sb_db_col_i64(s, 0, &n), 0);
        SB_CHECK_EQ(sb_db_fetch(s), 0);
        if (n == 0)
            return;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    SB_CHECK(!"the killed connection did not go away");
}

/* Kills its own connection in the middle of the first attempt. */
typedef struct kill_mid {
    sb_db *admin;
    int calls;
} kill_mid;

static int kill_mid_fn(sb_db *db, void *p) {
    kill_mid *km = p;
    km->calls++;
    sb_db_stmt *s;
    int r = sb_db_prepare(db, "UPDATE sbtest_db.acct SET v = v + 1 WHERE id = 1", &s);
    if (r < 0)
        return r;
    r = sb_db_execute(s);
    if (r < 0)
        return r;
    if (km->calls == 1)
        kill_connection(km->admin, sb_db_connection_id(db));
    r = sb_db_prepare(db, "SELECT v FROM sbtest_db.acct WHERE id = 1", &s);
    if (r < 0)
        return r;
    r = sb_db_execute(s);
    if (r < 0)
        return r;
    while ((r = sb_db_fetch(s)) == 1) {
    }
    return r;
}

static void test_reconnect(sb_db *admin, sb_db_config *cfg) {
    sb_db *db;
    char err[256];
    SB_CHECK_EQ(sb_db_open(cfg, &db, err, sizeof err), 0);
    SB_CHECK_EQ(sb_db_set_statement_timeout_ms(db, 5000), 0);
    SB_CHECK_EQ(query_i64(db, "SELECT 1"), 1);
    SB_CHECK_EQ(sb_db_reconnects(db), 0);

    /* A query after the connection died: reconnects, prepares again, runs again, transparently. */
    uint64_t id1 = sb_db_connection_id(db);
    kill_connection(admin, id1);
    SB_CHECK_EQ(query_i64(db, "SELECT 1"), 1);
    SB_CHECK_EQ(sb_db_reconnects(db), 1);
    SB_CHECK(sb_db_connection_id(db) != id1);
    /* Session settings are restored on the new connection. */
    SB_CHECK_EQ(query_i64(db, "SELECT @@max_statement_time * 1000"), 5000);

    /* A transaction after the connection died: run again on a new connection. */
    int64_t before = query_i64(db, "SELECT v FROM sbtest_db.acct WHERE id = 1");
    kill_connection(admin, sb_db_connection_id(db));
    tx_arg a = {.add = 3};
    SB_CHECK_EQ(sb_db_tx(db, tx_add, &a), 0);
    SB_CHECK_EQ(sb_db_reconnects(db), 2);
    SB_CHECK_EQ(query_i64(db, "SELECT v FROM sbtest_db.acct WHERE id = 1"), before + 3);

    /* A connection killed in the middle of a transaction: the transaction is rolled back by the server and run
     * again whole. */
    before = query_i64(db, "SELECT v FROM sbtest_db.acct WHERE id = 1");
    kill_mid km = {admin, 0};
    SB_CHECK_EQ(sb_db_tx(db, kill_mid_fn, &km), 0);
    SB_CHECK_EQ(km.calls, 2);
    SB_CHECK_EQ(query_i64(db, "SELECT v FROM sbtest_db.acct WHERE id = 1"), before + 1);

    /* A write outside a transaction after the connection died: ambiguous, reported as such; the next works. */
    sb_db_stmt *s;
    SB_CHECK_EQ(sb_db_prepare(db, "UPDATE sbtest_db.acct SET v = v + 1 WHERE id = 2", &s), 0);
    kill_connection(admin, sb_db_connection_id(db));
    SB_CHECK_EQ(sb_db_execute(s), SB_DB_EUNKNOWN_COMMIT);
    SB_CHECK_EQ(sb_db_execute(s), 0);
    SB_CHECK_EQ(sb_db_affected_rows(s), 1);
    sb_db_close(db);
}

static void test_script(sb_db *db) {
    static const char script[] =
        "-- a comment line\n"
        "CREATE TABLE sbtest_db.s (id INT PRIMARY KEY, txt VARCHAR(50)); # trailing comment\n"
        "/* block ; comment */ INSERT INTO sbtest_db.s VALUES (1, 'a;b'), (2, \"c';d\"), (3, 'e\\'f');;\n"
        "DELIMITER //\n"
        "CREATE PROCEDURE sbtest_db.p() BEGIN SELECT 1; SELECT 2; END//\n"
        "DELIMITER ;\n"
        "INSERT INTO sbtest_db.s VALUES (4, '--x')\n";
    const char *pos = script, *end = script + sizeof script - 1;
    char delim[16] = ";";
    const char *sql;
    size_t len;
    const char *want[] = {
        "CREATE TABLE sbtest_db.s (id INT PRIMARY KEY, txt VARCHAR(50))",
        "INSERT INTO sbtest_db.s VALUES (1, 'a;b'), (2, \"c';d\"), (3, 'e\\'f')",
        "CREATE PROCEDURE sbtest_db.p() BEGIN SELECT 1; SELECT 2; END",
        "INSERT INTO sbtest_db.s VALUES (4, '--x')",
    };
    for (unsigned i = 0; i < 4; i++) {
        SB_CHECK_EQ(sb_db_script_next(&pos, end, delim, sizeof delim, &sql, &len), 1);
        if (len != strlen(want[i]) || memcmp(sql, want[i], len) != 0)
            fprintf(stderr, "statement %u: got [%.*s]\n", i + 1, (int) len, sql);
        SB_CHECK(len == strlen(want[i]) && memcmp(sql, want[i], len) == 0);
    }
    SB_CHECK_EQ(sb_db_script_next(&pos, end, delim, sizeof delim, &sql, &len), 0);

    unsigned failed = 99;
    SB_CHECK_EQ(sb_db_exec_script(db, script, sizeof script - 1, &failed), 0);
    SB_CHECK_EQ(query_i64(db, "SELECT COUNT(*) FROM sbtest_db.s"), 4);
    static const char bad[] = "SELECT 1; SELECT 2;\nSELECT * FROM sbtest_db.nope; SELECT 4";
    SB_CHECK_EQ(sb_db_exec_script(db, bad, sizeof bad - 1, &failed), -ENOENT);
    SB_CHECK_EQ(failed, 3);
    static const char unterminated[] = "SELECT 1; SELECT 'abc";
    SB_CHECK_EQ(sb_db_exec_script(db, unterminated, sizeof unterminated - 1, &failed), -EINVAL);
    SB_CHECK_EQ(failed, 0);
}

typedef struct bulk_dup_ctx {
    int64_t *a;
    uint64_t *b;
    int r;
} bulk_dup_ctx;

static int bulk_dup_fn(sb_db *db, void *arg) {
    bulk_dup_ctx *c = arg;
    sb_db_stmt *s;
    int r = sb_db_prepare(db, "INSERT INTO sbtest_db.bulk (a, b) VALUES (?, ?)", &s);
    if (r < 0)
        return r;
    sb_db_bulk_col cols[2] = {{.i64 = c->a}, {.u64 = c->b}};
    c->r = sb_db_execute_bulk(s, 3, cols, 2);
    return c->r;
}

static void test_bulk(sb_db *db) {
    exec(db, "CREATE TABLE sbtest_db.bulk (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, a BIGINT NOT NULL UNIQUE,"
             " b BIGINT UNSIGNED NULL) ENGINE=InnoDB");
    enum { N = 5000 };
    static int64_t a[N];
    static uint64_t b[N];
    static uint8_t null[N];
    int64_t sum_a = 0;
    for (int i = 0; i < N; i++) {
        a[i] = (int64_t) (N - i) * 7 - 20000; /* decreasing, some negative */
        b[i] = UINT64_MAX - (uint64_t) i;
        null[i] = i % 10 == 3;
        sum_a += a[i];
    }
    sb_db_stmt *s;
    SB_CHECK_EQ(sb_db_prepare(db, "INSERT INTO sbtest_db.bulk (a, b) VALUES (?, ?)", &s), 0);
    sb_db_bulk_col cols[2] = {{.i64 = a}, {.u64 = b, .null = null}};
    SB_CHECK_EQ(sb_db_execute_bulk(s, N, cols, 2), 0);
    SB_CHECK_EQ(sb_db_affected_rows(s), N);
    SB_CHECK_EQ(query_i64(db, "SELECT COUNT(*) FROM sbtest_db.bulk"), N);
    SB_CHECK_EQ(query_i64(db, "SELECT SUM(a) FROM sbtest_db.bulk"), sum_a);
    SB_CHECK_EQ(query_i64(db, "SELECT COUNT(*) FROM sbtest_db.bulk WHERE b IS NULL"), N / 10);
    SB_CHECK_EQ(query_i64(db, "SELECT COUNT(*) FROM sbtest_db.bulk WHERE b = 18446744073709551615"), 1);
    /* The rows arrive in their order: ids follow the rows (a decreases along them). */
    SB_CHECK_EQ(query_i64(db, "SELECT COUNT(*) FROM (SELECT a, LAG(a) OVER (ORDER BY id) AS p FROM sbtest_db.bulk) x"
                              " WHERE p <= a"),
                0);
    /* The same statement executes singly afterwards. */
    SB_CHECK_EQ(sb_db_prepare(db, "INSERT INTO sbtest_db.bulk (a, b) VALUES (?, ?)", &s), 0);
    SB_CHECK_EQ(sb_db_bind_i64(s, 0, 1000000), 0);
    SB_CHECK_EQ(sb_db_execute(s), 0);
    SB_CHECK_EQ(sb_db_affected_rows(s), 1);
    SB_CHECK_EQ(query_i64(db, "SELECT COUNT(*) FROM sbtest_db.bulk WHERE a = 1000000 AND b IS NULL"), 1);

    /* A duplicate in the third row, inside a transaction: nothing of it stays. */
    int64_t da[3] = {2000001, 2000002, a[17]};
    uint64_t db_[3] = {1, 2, 3};
    bulk_dup_ctx c = {.a = da, .b = db_};
    SB_CHECK_EQ(sb_db_tx(db, bulk_dup_fn, &c), -EEXIST);
    SB_CHECK_EQ(c.r, -EEXIST);
    SB_CHECK_EQ(sb_db_errno(db), 1062);
    SB_CHECK_EQ(query_i64(db, "SELECT COUNT(*) FROM sbtest_db.bulk WHERE a > 2000000"), 0);

    /* Refusals. */
    SB_CHECK_EQ(sb_db_prepare(db, "INSERT INTO sbtest_db.bulk (a, b) VALUES (?, ?)", &s), 0);
    SB_CHECK_EQ(sb_db_execute_bulk(s, 0, cols, 2), -EINVAL);
    SB_CHECK_EQ(sb_db_execute_bulk(s, N, cols, 1), -EINVAL);
    sb_db_bulk_col both[2] = {{.i64 = a, .u64 = b}, {.u64 = b}};
    SB_CHECK_EQ(sb_db_execute_bulk(s, N, both, 2), -EINVAL);
    uint8_t bad[3] = {0, 2, 0};
    sb_db_bulk_col badnull[2] = {{.i64 = da}, {.u64 = db_, .null = bad}};
    SB_CHECK_EQ(sb_db_execute_bulk(s, 3, badnull, 2), -EINVAL);
    SB_CHECK_EQ(sb_db_prepare(db, "SELECT a FROM sbtest_db.bulk WHERE a = ?", &s), 0);
    SB_CHECK_EQ(sb_db_execute_bulk(s, 1, cols, 1), -EINVAL);
    SB_CHECK_EQ(query_i64(db, "SELECT COUNT(*) FROM sbtest_db.bulk"), N + 1);
}

int main(void) {
    sb_db_config cfg;
    sb_test_db_admin_config(&cfg);
    sb_db *db = sb_test_db_open_admin();
    setup_schema(db);
    test_prepared(db);
    test_errors(db);
    test_statement_timeout(db);
    test_cache_limit(&cfg);
    test_tx(db);
    test_deadlock_retry(db, &cfg);
    test_reconnect(db, &cfg);
    test_script(db);
    test_bulk(db);
    exec(db, "DROP DATABASE sbtest_db");
    sb_db_close(db);
    printf("ok\n");
    return 0;
}
