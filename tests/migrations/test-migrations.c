/* Integration tests of `sharebuyctl migrate` and `db set-passwords`, run in-process through sb_ctl_main(), against
 * the server of tests/lib/with-mariadb. Synthetic migrations live in a temporary folder with their own history
 * schema and test schemas (named after the pid), so that the test can run beside others on the same server; the
 * real migrations/ are applied with the real history, which is safe because they are idempotent. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "db/db.h"
#include "sb_test.h"

typedef struct run_result {
    int rc;
    char *out;
    char *err;
} run_result;

static void run_free(run_result *r) {
    free(r->out);
    free(r->err);
}

/* Runs sharebuyctl with the NULL-terminated arguments and captures its output. */
static run_result run_v(const char *first, va_list ap) {
    char *argv[64];
    int argc = 0;
    argv[argc++] = (char *) "sharebuyctl";
    for (const char *a = first; a; a = va_arg(ap, const char *)) {
        SB_CHECK(argc < 63);
        argv[argc++] = (char *) a;
    }
    argv[argc] = NULL;
    run_result r = {0};
    size_t n_out, n_err;
    FILE *out = open_memstream(&r.out, &n_out);
    FILE *err = open_memstream(&r.err, &n_err);
    SB_CHECK(out && err);
    r.rc = sb_ctl_main(argc, argv, out, err);
    fclose(out);
    fclose(err);
    return r;
}

static run_result run(const char *first, ...) {
    va_list ap;
    va_start(ap, first);
    run_result r = run_v(first, ap);
    va_end(ap);
    return r;
}

/* Runs and checks the exit code, printing the output when it differs. */
static run_result expect(int rc, const char *first, ...) {
    va_list ap;
    va_start(ap, first);
    run_result r = run_v(first, ap);
    va_end(ap);
    if (r.rc != rc)
        fprintf(stderr, "exit %d, wanted %d\n--- out:\n%s--- err:\n%s---\n", r.rc, rc, r.out, r.err);
    SB_CHECK_EQ(r.rc, rc);
    return r;
}

static bool has(const char *haystack, const char *needle) {
    if (!strstr(haystack, needle)) {
        fprintf(stderr, "missing [%s] in:\n%s\n", needle, haystack);
        return false;
    }
    return true;
}

static char tmpdir[256];
static char history[64];
static char schema[64];
static char dir_opt[300];
static char hist_opt[100];

static void write_file(const char *name, const char *fmt, ...) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    SB_CHECK(f);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    SB_CHECK(fclose(f) == 0);
}

static void remove_file(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    SB_CHECK(unlink(path) == 0);
}

static int64_t query_i64(sb_db *db, const char *sql, const char *param) {
    sb_db_stmt *s;
    SB_CHECK_EQ(sb_db_prepare(db, sql, &s), 0);
    if (param)
        SB_CHECK_EQ(sb_db_bind_str(s, 0, param), 0);
    SB_CHECK_EQ(sb_db_execute(s), 0);
    SB_CHECK_EQ(sb_db_fetch(s), 1);
    int64_t v = -1;
    SB_CHECK_EQ(sb_db_col_i64(s, 0, &v), 0);
    SB_CHECK_EQ(sb_db_fetch(s), 0);
    return v;
}

static void exec(sb_db *db, const char *sql) {
    int r = sb_db_exec_text(db, sql, strlen(sql));
    if (r < 0)
        fprintf(stderr, "%s: %s\n", sql, sb_db_errmsg(db));
    SB_CHECK_EQ(r, 0);
}

static void test_usage(void) {
    run_result r = expect(0, "--help", NULL);
    SB_CHECK(has(r.out, "migrate"));
    run_free(&r);
    r = expect(2, NULL);
    run_free(&r);
    r = expect(2, "nope", NULL);
    SB_CHECK(has(r.err, "unknown command"));
    run_free(&r);
    r = expect(0, "migrate", "--help", NULL);
    SB_CHECK(has(r.out, "verify"));
    run_free(&r);
    r = expect(0, "migrate", "up", "--help", NULL);
    SB_CHECK(has(r.out, "Usage: sharebuyctl migrate up"));
    run_free(&r);
    r = expect(0, "db", "set-passwords", "--help", NULL);
    SB_CHECK(has(r.out, "SB_DB_PASSWORD_WALLET"));
    run_free(&r);
    r = expect(2, "migrate", "sideways", NULL);
    run_free(&r);
    r = expect(2, "migrate", "up", "--bogus", NULL);
    run_free(&r);
    r = expect(2, "migrate", "up", "--history-schema", "bad-name;", NULL);
    run_free(&r);
    r = expect(2, "--port", "99999", "migrate", "status", NULL);
    run_free(&r);
    r = expect(2, "migrate", "resolve", "3", NULL);
    run_free(&r);
}

/* The real migrations: applied with the real history; the service accounts see only their own schema. */
static void test_real_migrations(sb_db *admin) {
    const char *dir = getenv("SB_TEST_MIGRATIONS_DIR");
    SB_CHECK(dir);
    char opt[512];
    snprintf(opt, sizeof opt, "--migrations-dir=%s", dir);
    run_result r = expect(0, "migrate", "up", opt, NULL);
    run_free(&r);
    r = expect(0, "migrate", "up", opt, NULL);
    SB_CHECK(has(r.out, "up to date"));
    run_free(&r);
    r = expect(0, "migrate", "verify", opt, NULL);
    run_free(&r);
    r = expect(0, "--json", "migrate", "status", opt, NULL);
    SB_CHECK(has(r.out, "\"name\":\"0001_schemas.sql\",\"state\":\"applied\""));
    run_free(&r);
    SB_CHECK_EQ(query_i64(admin, "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name LIKE ?",
                          "sharebuy\\_%"),
                6); /* five services and sharebuy_admin */

    /* The passwords come from the environment (tests/lib/with-mariadb sets them for every test). */
    if (!getenv("SB_DB_PASSWORD_IDENTITY"))
        setenv("SB_DB_PASSWORD_IDENTITY", "identity-test-password", 0);
    if (!getenv("SB_DB_PASSWORD_WALLET"))
        setenv("SB_DB_PASSWORD_WALLET", "wallet-test-password", 0);
    r = expect(0, "--json", "db", "set-passwords", NULL);
    SB_CHECK(has(r.out, "\"ok\":true"));
    run_free(&r);

    char table_id[128], table_wallet[128], sql[512];
    snprintf(table_id, sizeof table_id, "sharebuy_identity.sbtest_iso_%d", (int) getpid());
    snprintf(table_wallet, sizeof table_wallet, "sharebuy_wallet.sbtest_iso_%d", (int) getpid());
    snprintf(sql, sizeof sql, "CREATE TABLE %s (id INT PRIMARY KEY)", table_id);
    exec(admin, sql);
    snprintf(sql, sizeof sql, "CREATE TABLE %s (id INT PRIMARY KEY)", table_wallet);
    exec(admin, sql);

    sb_db_config cfg;
    sb_test_db_admin_config(&cfg);
    cfg.user = "sb_identity";
    cfg.password = getenv("SB_DB_PASSWORD_IDENTITY");
    cfg.database = "sharebuy_identity";
    sb_db *id;
    char err[512];
    int rc = sb_db_open(&cfg, &id, err, sizeof err);
    if (rc < 0)
        fprintf(stderr, "%s\n", err);
    SB_CHECK_EQ(rc, 0);
    sb_db_stmt *s;
    snprintf(sql, sizeof sql, "INSERT INTO %s VALUES (1)", table_id);
    SB_CHECK_EQ(sb_db_prepare(id, sql, &s), 0);
    SB_CHECK_EQ(sb_db_execute(s), 0);
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM %s", table_wallet);
    SB_CHECK_EQ(sb_db_prepare(id, sql, &s), -EACCES);
    SB_CHECK_EQ(sb_db_errno(id), 1142);
    snprintf(sql, sizeof sql, "DROP TABLE %s", table_id);
    SB_CHECK_EQ(sb_db_exec_text(id, sql, strlen(sql)), -EACCES); /* no DDL for services */
    static const char create[] = "CREATE TABLE sharebuy_identity.sbtest_nope (id INT PRIMARY KEY)";
    SB_CHECK_EQ(sb_db_exec_text(id, create, sizeof create - 1), -EACCES);
    sb_db_close(id);

    /* Over TCP too (the '127.0.0.1' account). */
    if (cfg.port) {
        cfg.host = "127.0.0.1";
        cfg.unix_socket = NULL;
        SB_CHECK_EQ(sb_db_open(&cfg, &id, err, sizeof err), 0);
        snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM %s", table_wallet);
        SB_CHECK_EQ(sb_db_prepare(id, sql, &s), -EACCES);
        sb_db_close(id);
        cfg.host = NULL;
        cfg.unix_socket = getenv("SB_TEST_DB_SOCKET");
    }

    /* A wrong password is refused. */
    cfg.password = "wrong";
    SB_CHECK_EQ(sb_db_open(&cfg, &id, err, sizeof err), -EACCES);

    snprintf(sql, sizeof sql, "DROP TABLE %s", table_id);
    exec(admin, sql);
    snprintf(sql, sizeof sql, "DROP TABLE %s", table_wallet);
    exec(admin, sql);
}

/* Migration 0010 converts the rows of the old per-participant snapshot into blocks at the same positions (runs in
 * any phase go on unchanged) and drops the old table; run again, it converts nothing and fails nowhere. Tested by
 * re-creating the old table with two streams' rows after `migrate up` and running the file's statements again. */
static void test_snapshot_blocks_conversion(sb_db *admin) {
    const char *dir = getenv("SB_TEST_MIGRATIONS_DIR");
    SB_CHECK(dir);
    char path[600];
    snprintf(path, sizeof path, "%s/0010_airdrop_snapshot_blocks.sql", dir);
    FILE *f = fopen(path, "rb");
    SB_CHECK(f);
    static char script[16384];
    size_t len = fread(script, 1, sizeof script, f);
    SB_CHECK(len > 0 && len < sizeof script);
    fclose(f);
    SB_CHECK_EQ(query_i64(admin, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'sharebuy_airdrop'"
                                 " AND table_name = ?", "snapshot"),
                0);
    exec(admin, "CREATE TABLE sharebuy_airdrop.snapshot (business_day CHAR(10) CHARACTER SET ascii NOT NULL,"
                " seq INT UNSIGNED NOT NULL, account_id BIGINT UNSIGNED NOT NULL, owner_kind TINYINT UNSIGNED NOT NULL,"
                " owner_id BIGINT UNSIGNED NOT NULL, cv_units BIGINT NOT NULL, PRIMARY KEY (business_day, seq),"
                " KEY day_account (business_day, account_id)) ENGINE=InnoDB");
    /* Stream 0: 300 participants at seq 0…299; stream 1: 100 at 2^31…; the largest values each field can hold. */
    exec(admin, "INSERT INTO sharebuy_airdrop.snapshot SELECT '2024-12-30', seq - 1, 1000 + 3 * seq, 1, seq, 7 * seq"
                " FROM sharebuy_airdrop.seq_1_to_300");
    exec(admin, "INSERT INTO sharebuy_airdrop.snapshot SELECT '2024-12-30', 2147483647 + seq, 5000 + 3 * seq, 2,"
                " seq, 11 * seq FROM sharebuy_airdrop.seq_1_to_99");
    exec(admin, "INSERT INTO sharebuy_airdrop.snapshot VALUES ('2024-12-30', 2147483747, 18446744073709551615, 255,"
                " 18446744073709551615, 9223372036854775807)");
    unsigned failed = 0;
    SB_CHECK_EQ(sb_db_exec_script(admin, script, len, &failed), 0);
    SB_CHECK_EQ(query_i64(admin, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'sharebuy_airdrop'"
                                 " AND table_name = ?", "snapshot"),
                0);
    /* Blocks at 0 (256), 256 (44) and 2^31 (100), every record in place. */
    SB_CHECK_EQ(query_i64(admin, "SELECT GROUP_CONCAT(seq, '/', n, '/', first_account, '/', last_account ORDER BY seq)"
                                 " = '0/256/1003/1768,256/44/1771/1900,2147483648/100/5003/18446744073709551615'"
                                 " FROM sharebuy_airdrop.snapshot_blocks WHERE business_day = ?", "2024-12-30"),
                1);
    SB_CHECK_EQ(query_i64(admin, "SELECT SUM(cv_sum) = 7 * 300 * 301 / 2 + 11 * 99 * 100 / 2 + 9223372036854775807"
                                 " AND SUM(LENGTH(recs) = 63 * n) = 3 FROM sharebuy_airdrop.snapshot_blocks"
                                 " WHERE business_day = ?", "2024-12-30"),
                1);
    SB_CHECK_EQ(query_i64(admin, "SELECT SUBSTRING(recs, 1, 63) ="
                                 " '#00000000000000001771001000000000000000002570000000000000001799'"
                                 " FROM sharebuy_airdrop.snapshot_blocks WHERE business_day = ? AND seq = 256",
                                 "2024-12-30"),
                1);
    SB_CHECK_EQ(query_i64(admin, "SELECT SUBSTRING(recs, 63 * 99 + 1, 63) ="
                                 " '#18446744073709551615255184467440737095516159223372036854775807'"
                                 " FROM sharebuy_airdrop.snapshot_blocks WHERE business_day = ? AND seq = 2147483648",
                                 "2024-12-30"),
                1);
    /* Again: nothing converted twice, nothing fails. */
    SB_CHECK_EQ(sb_db_exec_script(admin, script, len, &failed), 0);
    SB_CHECK_EQ(query_i64(admin, "SELECT SUM(n) FROM sharebuy_airdrop.snapshot_blocks WHERE business_day = ?",
                          "2024-12-30"),
                400);
    exec(admin, "DELETE FROM sharebuy_airdrop.snapshot_blocks WHERE business_day = '2024-12-30'");
}

static void test_up_status_verify(void) {
    write_file("0001_first.sql",
               "-- the first migration\n"
               "CREATE DATABASE IF NOT EXISTS %s;\n"
               "CREATE TABLE IF NOT EXISTS %s.a (id INT PRIMARY KEY, txt VARCHAR(20));\n",
               schema, schema);
    write_file("0002_second.sql", "INSERT INTO %s.a VALUES (1, 'semi;colon');\n", schema);
    write_file("README.txt", "not a migration\n");

    run_result r = expect(0, "migrate", "status", dir_opt, hist_opt, NULL);
    SB_CHECK(has(r.out, "pending"));
    run_free(&r);
    r = expect(1, "migrate", "verify", dir_opt, hist_opt, NULL);
    SB_CHECK(has(r.err, "2 migrations are pending"));
    run_free(&r);
    r = expect(0, "migrate", "verify", "--allow-pending", dir_opt, hist_opt, NULL);
    run_free(&r);

    r = expect(0, "--json", "migrate", "up", dir_opt, hist_opt, NULL);
    SB_CHECK(has(r.out, "\"ok\":true"));
    SB_CHECK(has(r.out, "\"name\":\"0001_first.sql\",\"statements\":2"));
    SB_CHECK(has(r.out, "\"name\":\"0002_second.sql\",\"statements\":1"));
    run_free(&r);
    r = expect(0, "migrate", "verify", dir_opt, hist_opt, NULL);
    SB_CHECK(has(r.out, "ok: 2 migrations applied"));
    run_free(&r);
    r = expect(0, "migrate", "status", "--json", dir_opt, hist_opt, NULL);
    SB_CHECK(has(r.out, "\"state\":\"applied\""));
    SB_CHECK(!strstr(r.out, "pending"));
    run_free(&r);
    r = expect(0, "migrate", "up", dir_opt, hist_opt, NULL);
    SB_CHECK(has(r.out, "already up to date"));
    run_free(&r);

    /* A badly named file is refused before anything runs. */
    write_file("12_short.sql", "SELECT 1;\n");
    r = expect(1, "migrate", "up", dir_opt, hist_opt, NULL);
    SB_CHECK(has(r.err, "12_short.sql"));
    run_free(&r);
    remove_file("12_short.sql");
}

static void test_edited(void) {
    write_file("0001_first.sql",
               "-- the first migration, edited\n"
               "CREATE DATABASE IF NOT EXISTS %s;\n"
               "CREATE TABLE IF NOT EXISTS %s.a (id INT PRIMARY KEY, txt VARCHAR(20));\n",
               schema, schema);
    write_file("0003_third.sql", "INSERT INTO %s.a VALUES (3, 'three');\n", schema);
    run_result r = expect(1, "migrate", "up", dir_opt, hist_opt, NULL);
    SB_CHECK(has(r.err, "0001_first.sql was edited after it was applied"));
    run_free(&r);
    r = expect(1, "migrate", "verify", "--json", dir_opt, hist_opt, NULL);
    SB_CHECK(has(r.out, "\"ok\":false"));
    SB_CHECK(has(r.out, "0001_first.sql was edited"));
    run_free(&r);
    r = expect(0, "--json", "migrate", "status", dir_opt, hist_opt, NULL);
    SB_CHECK(has(r.out, "\"name\":\"0001_first.sql\",\"state\":\"edited\""));
    run_free(&r);
    /* The third was not applied: nothing runs while a problem stands. */
    r = expect(0, "--json", "migrate", "status", dir_opt, hist_opt, NULL);
    SB_CHECK(has(r.out, "\"name\":\"0003_third.sql\",\"state\":\"pending\""));
    run_free(&r);
    /* The edit only changed a comment: the administrator accepts it. */
    r = expect(0, "migrate", "resolve", "1", "--accept-edit", dir_opt, hist_opt, NULL);
    run_free(&r);
    r = expect(0, "migrate", "up", dir_opt, hist_opt, NULL);
    SB_CHECK(has(r.out, "applied 0003_third.sql"));
    run_free(&r);
    r = expect(0, "migrate", "verify", dir_opt, hist_opt, NULL);
    run_free(&r);

    /* A file removed after it was applied. */
    remove_file("0003_third.sql");
    r = expect(1, "migrate", "verify", dir_opt, hist_opt, NULL);
    SB_CHECK(has(r.err, "0003_third.sql was applied but is missing"));
    run_free(&r);
    write_file("0003_third.sql", "INSERT INTO %s.a VALUES (3, 'three');\n", schema);
}

static void test_failing(sb_db *admin) {
    write_file("0004_fails.sql",
               "CREATE TABLE IF NOT EXISTS %s.b (id INT PRIMARY KEY);\n"
               "\n"
               "INSERT INTO %s.no_such_table\n"
               "  VALUES (1);\n"
               "INSERT INTO %s.b VALUES (4);\n",
               schema, schema, schema);
    run_result r = expect(1, "migrate", "up", dir_opt, hist_opt, NULL);
    SB_CHECK(has(r.err, "0004_fails.sql"));
    SB_CHECK(has(r.err, "statement 2 (line 3: INSERT INTO"));
    SB_CHECK(has(r.err, ".no_such_table"));
    SB_CHECK(has(r.err, "MariaDB error 1146"));
    SB_CHECK(has(r.err, "doesn't exist"));
    run_free(&r);

    /* The history tells the truth: started, one statement of three done, failed. */
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT statements_done * 100 + statements_total * 10 + success FROM %s.schema_migrations "
             "WHERE name = ?",
             history);
    SB_CHECK_EQ(query_i64(admin, sql, "0004_fails.sql"), 130);

    r = expect(0, "--json", "migrate", "status", dir_opt, hist_opt, NULL);
    SB_CHECK(has(r.out, "\"name\":\"0004_fails.sql\",\"state\":\"failed\""));
    SB_CHECK(has(r.out, "half-applied"));
    run_free(&r);
    r = expect(1, "migrate", "up", "--json", dir_opt, hist_opt, NULL);
    SB_CHECK(has(r.out, "0004_fails.sql is half-applied: 1 of 3 statements ran"));
    SB_CHECK(has(r.out, "migrate resolve 4 --applied"));
    run_free(&r);
    r = expect(1, "migrate", "verify", dir_opt, hist_opt, NULL);
    run_free(&r);

    /* The administrator fixes the file and decides to run it again (its first statement is idempotent). */
    write_file("0004_fails.sql",
               "CREATE TABLE IF NOT EXISTS %s.b (id INT PRIMARY KEY);\n"
               "INSERT INTO %s.b VALUES (4);\n",
               schema, schema);
    r = expect(1, "migrate", "resolve", "3", "--retry", dir_opt, hist_opt, NULL);
    SB_CHECK(has(r.err, "not half-applied"));
    run_free(&r);
    r = expect(0, "migrate", "resolve", "4", "--retry", dir_opt, hist_opt, NULL);
    run_free(&r);
    r = expect(0, "migrate", "up", dir_opt, hist_opt, NULL);
    SB_CHECK(has(r.out, "applied 0004_fails.sql: 2 statements"));
    run_free(&r);
    r = expect(0, "migrate", "verify", dir_opt, hist_opt, NULL);
    run_free(&r);

    /* A failure in JSON names the statement. */
    write_file("0005_bad.sql", "SELECT 1;\nSELEKT 2;\n");
    r = expect(1, "--json", "migrate", "up", dir_opt, hist_opt, NULL);
    SB_CHECK(has(r.out, "\"failed\":{\"version\":5,\"name\":\"0005_bad.sql\",\"statement\":2,\"line\":2,"
                        "\"text\":\"SELEKT 2\",\"mysql_errno\":1064"));
    run_free(&r);
    /* Finished by hand: mark it applied. */
    write_file("0005_bad.sql", "SELECT 1;\nSELECT 2;\n");
    r = expect(0, "migrate", "resolve", "5", "--applied", dir_opt, hist_opt, NULL);
    run_free(&r);
    r = expect(0, "migrate", "verify", dir_opt, hist_opt, NULL);
    run_free(&r);

    /* A file that cannot be split is refused before anything is recorded. */
    write_file("0006_unterminated.sql", "SELECT 'abc;\n");
    r = expect(1, "migrate", "up", dir_opt, hist_opt, NULL);
    SB_CHECK(has(r.err, "0006_unterminated.sql: cannot split"));
    run_free(&r);
    r = expect(0, "--json", "migrate", "status", dir_opt, hist_opt, NULL);
    SB_CHECK(has(r.out, "\"name\":\"0006_unterminated.sql\",\"state\":\"pending\""));
    run_free(&r);
    remove_file("0006_unterminated.sql");
}

typedef struct runner {
    run_result r;
} runner;

static void *run_up_thread(void *p) {
    runner *t = p;
    t->r = run("migrate", "up", dir_opt, hist_opt, NULL);
    return NULL;
}

static void test_concurrent(sb_db *admin) {
    write_file("0007_slow.sql", "SELECT SLEEP(3);\n");
    runner a;
    pthread_t ta;
    pthread_create(&ta, NULL, run_up_thread, &a);

    /* Wait until the first runner holds the lock. */
    char lock[128];
    snprintf(lock, sizeof lock, "sharebuy_migrate:%s", history);
    for (int i = 0; i < 500; i++) {
        if (query_i64(admin, "SELECT IS_USED_LOCK(?) IS NOT NULL", lock))
            break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    SB_CHECK_EQ(query_i64(admin, "SELECT IS_USED_LOCK(?) IS NOT NULL", lock), 1);

    /* A second runner that does not wait is turned away with a clear message. */
    run_result r = expect(1, "migrate", "up", "--lock-timeout", "0", dir_opt, hist_opt, NULL);
    SB_CHECK(has(r.err, "another migration runner holds the lock"));
    run_free(&r);
    /* A second runner that waits finds the work done. */
    r = expect(0, "migrate", "up", "--lock-timeout=30", dir_opt, hist_opt, NULL);
    SB_CHECK(has(r.out, "already up to date"));
    run_free(&r);

    pthread_join(ta, NULL);
    if (a.r.rc != 0)
        fprintf(stderr, "first runner: %s%s", a.r.out, a.r.err);
    SB_CHECK_EQ(a.r.rc, 0);
    SB_CHECK(has(a.r.out, "applied 0007_slow.sql"));
    run_free(&a.r);
    r = expect(0, "migrate", "verify", dir_opt, hist_opt, NULL);
    run_free(&r);
}

static void cleanup(sb_db *admin) {
    char sql[256];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", schema);
    exec(admin, sql);
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", history);
    exec(admin, sql);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    SB_CHECK(system(cmd) == 0);
}

int main(void) {
    sb_db_config cfg;
    sb_test_db_admin_config(&cfg); /* skips (77) without a test server */
    /* sharebuyctl reads its connection from the environment, as an administrator's shell would give it. */
    setenv("SB_DB_SOCKET", cfg.unix_socket, 1);
    unsetenv("SB_DB_HOST");
    setenv("SB_DB_ADMIN_USER", cfg.user, 1);
    if (cfg.password)
        setenv("SB_DB_ADMIN_PASSWORD", cfg.password, 1);
    else
        unsetenv("SB_DB_ADMIN_PASSWORD");

    snprintf(tmpdir, sizeof tmpdir, "/tmp/sbtest-migrations.XXXXXX");
    SB_CHECK(mkdtemp(tmpdir));
    snprintf(history, sizeof history, "sbtest_hist_%d", (int) getpid());
    snprintf(schema, sizeof schema, "sbtest_mig_%d", (int) getpid());
    snprintf(dir_opt, sizeof dir_opt, "--migrations-dir=%s", tmpdir);
    snprintf(hist_opt, sizeof hist_opt, "--history-schema=%s", history);

    sb_db *admin = sb_test_db_open_admin();
    test_usage();
    test_real_migrations(admin);
    test_snapshot_blocks_conversion(admin);
    test_up_status_verify();
    test_edited();
    test_failing(admin);
    test_concurrent(admin);
    cleanup(admin);
    sb_db_close(admin);
    printf("ok\n");
    return 0;
}
