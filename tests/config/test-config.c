/* Unit tests of sb_config: defaults, file and environment precedence, every error message, getters and dump. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures;

#define CHECK(cond)                                                                                                   \
    do {                                                                                                              \
        if (!(cond)) {                                                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                                 \
            failures++;                                                                                               \
        }                                                                                                             \
    } while (0)

#define CHECK_STREQ(got, want)                                                                                        \
    do {                                                                                                              \
        const char *g_ = (got), *w_ = (want);                                                                         \
        if (!g_ || strcmp(g_, w_) != 0) {                                                                             \
            fprintf(stderr, "%s:%d: got  [%s]\n%s:%d: want [%s]\n", __FILE__, __LINE__, g_ ? g_ : "(null)",          \
                    __FILE__, __LINE__, w_);                                                                          \
            failures++;                                                                                               \
        }                                                                                                             \
    } while (0)

static const sb_config_key schema[] = {
    {.name = "listen_port", .type = SB_CONFIG_INT, .default_value = "50052", .min = 1, .max = 65535,
     .help = "gRPC port"},
    {.name = "metrics_port", .type = SB_CONFIG_INT, .default_value = "0", .min = 0, .max = 65535,
     .help = "Prometheus port, 0 for none"},
    {.name = "log_level", .type = SB_CONFIG_STRING, .default_value = "info", .help = "debug, info, warn or error"},
    {.name = "db.socket", .type = SB_CONFIG_PATH, .required = true, .help = "MariaDB socket"},
    {.name = "db.user", .type = SB_CONFIG_STRING, .default_value = "sharebuy_wallet", .min = 1, .max = 32,
     .help = "MariaDB user"},
    {.name = "db.password", .type = SB_CONFIG_STRING, .secret = true, .help = "MariaDB password"},
    {.name = "db.timeout", .type = SB_CONFIG_DURATION_MS, .default_value = "5s", .min = 100, .max = 60000,
     .help = "query timeout"},
    {.name = "tls.enabled", .type = SB_CONFIG_BOOL, .default_value = "false", .help = "serve TLS"},
    {.name = "tls.cert", .type = SB_CONFIG_PATH, .help = "certificate file"},
};
enum { N_KEYS = sizeof schema / sizeof schema[0] };

static char tmpdir[] = "/tmp/test-config-XXXXXX";

/* Writes text to a new file in the test's directory and returns its path (static storage, one at a time). */
static const char *write_file(const char *text) {
    static char path[256];
    static int counter;
    snprintf(path, sizeof path, "%s/c%d.conf", tmpdir, ++counter);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror("fopen");
        exit(1);
    }
    fputs(text, f);
    fclose(f);
    return path;
}

/* Loads and expects failure with exactly the given message (with "@" replaced by the file's path). */
static void expect_error(const char *file_text, char **envp, int want_r, const char *want_msg) {
    const char *path = file_text ? write_file(file_text) : NULL;
    sb_config *cfg = (sb_config *)(uintptr_t)0x1;
    char err[4096];
    int r = sb_config_load(schema, N_KEYS, path, envp, &cfg, err, sizeof err);
    CHECK(r == want_r);
    CHECK(cfg == (sb_config *)(uintptr_t)0x1);

    char want[4096];
    size_t o = 0;
    for (const char *p = want_msg; *p && o < sizeof want - 300; p++) {
        if (*p == '@' && path)
            o += (size_t)snprintf(want + o, sizeof want - o, "%s", path);
        else
            want[o++] = *p;
    }
    want[o] = '\0';
    CHECK_STREQ(err, want);
}

static char *env_socket[] = {"SB_DB_SOCKET=/run/mysqld/mysqld.sock", NULL};

static void test_defaults_and_env_only(void) {
    sb_config *cfg = NULL;
    char err[1024];
    CHECK(sb_config_load(schema, N_KEYS, NULL, env_socket, &cfg, err, sizeof err) == 0);
    if (!cfg)
        return;
    CHECK(sb_config_int(cfg, "listen_port") == 50052);
    CHECK(sb_config_int(cfg, "db.timeout") == 5000);
    CHECK(sb_config_bool(cfg, "tls.enabled") == false);
    CHECK_STREQ(sb_config_str(cfg, "db.socket"), "/run/mysqld/mysqld.sock");
    CHECK(sb_config_str(cfg, "db.password") == NULL);
    CHECK(!sb_config_is_set(cfg, "tls.cert"));
    CHECK(sb_config_is_set(cfg, "listen_port"));
    CHECK_STREQ(sb_config_source(cfg, "listen_port"), "default");
    CHECK_STREQ(sb_config_source(cfg, "db.socket"), "env SB_DB_SOCKET");
    CHECK_STREQ(sb_config_source(cfg, "tls.cert"), "unset");
    sb_config_free(cfg);
}

static void test_file_and_env_precedence(void) {
    const char *path = write_file("# wallet settings\n"
                                  "\n"
                                  "listen_port = 6000\n"
                                  "  metrics_port=9100  \r\n"
                                  "log_level = debug # not a comment\n"
                                  "[db]\n"
                                  "socket = /file/socket\n"
                                  "password = \"  p#ss \\\"word\\\\  \"\n"
                                  "timeout = 250ms\n"
                                  "[ tls ]\n"
                                  "enabled = yes\n"
                                  "cert = /etc/sharebuy/cert.pem\n"
                                  "[]\n"
                                  "db.user = alice\n");
    char *envp[] = {"PATH=/usr/bin",
                    "SB_LISTEN_PORT=7000",
                    "SB_DB_TIMEOUT=45s",
                    "SB_TLS_ENABLED=off",
                    "SB_UNRELATED_THING=whatever",
                    "SB_LISTEN_PORTX=1",
                    NULL};
    sb_config *cfg = NULL;
    char err[1024] = "";
    int r = sb_config_load(schema, N_KEYS, path, envp, &cfg, err, sizeof err);
    CHECK(r == 0);
    if (r != 0) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    CHECK(sb_config_int(cfg, "listen_port") == 7000); /* env beats file */
    CHECK(sb_config_int(cfg, "metrics_port") == 9100);
    CHECK_STREQ(sb_config_str(cfg, "log_level"), "debug # not a comment");
    CHECK_STREQ(sb_config_str(cfg, "db.socket"), "/file/socket");
    CHECK_STREQ(sb_config_str(cfg, "db.password"), "  p#ss \"word\\  ");
    CHECK(sb_config_int(cfg, "db.timeout") == 45000);
    CHECK(sb_config_bool(cfg, "tls.enabled") == false);
    CHECK_STREQ(sb_config_str(cfg, "tls.cert"), "/etc/sharebuy/cert.pem");
    CHECK_STREQ(sb_config_str(cfg, "db.user"), "alice");

    char src[300];
    snprintf(src, sizeof src, "%s:4", path);
    CHECK_STREQ(sb_config_source(cfg, "metrics_port"), src);
    CHECK_STREQ(sb_config_source(cfg, "listen_port"), "env SB_LISTEN_PORT");

    /* The dump masks the secret, says where each value came from, and loads back to the same values. */
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    CHECK(sb_config_dump(cfg, mem) == 0);
    fclose(mem);
    char want[2048];
    snprintf(want, sizeof want,
             "# gRPC port (integer, from env SB_LISTEN_PORT)\n"
             "listen_port = 7000\n"
             "# Prometheus port, 0 for none (integer, from %s:4)\n"
             "metrics_port = 9100\n"
             "# debug, info, warn or error (string, from %s:5)\n"
             "log_level = debug # not a comment\n"
             "# MariaDB socket (path, from %s:7)\n"
             "db.socket = /file/socket\n"
             "# MariaDB user (string, from %s:14)\n"
             "db.user = alice\n"
             "# MariaDB password (string, from %s:8)\n"
             "db.password = ********\n"
             "# query timeout (duration, from env SB_DB_TIMEOUT)\n"
             "db.timeout = 45s\n"
             "# serve TLS (boolean, from env SB_TLS_ENABLED)\n"
             "tls.enabled = off\n"
             "# certificate file (path, from %s:12)\n"
             "tls.cert = /etc/sharebuy/cert.pem\n",
             path, path, path, path, path, path);
    CHECK_STREQ(text, want);
    CHECK(strstr(text, "p#ss") == NULL);

    /* Round trip: the dump (with the password line replaced by a quoted one) loads back. */
    sb_config *again = NULL;
    const char *dumped = write_file(text);
    CHECK(sb_config_load(schema, N_KEYS, dumped, NULL, &again, err, sizeof err) == 0);
    if (again) {
        CHECK(sb_config_int(again, "db.timeout") == 45000);
        CHECK_STREQ(sb_config_str(again, "log_level"), "debug # not a comment");
        sb_config_free(again);
    }
    free(text);
    sb_config_free(cfg);

    /* An unset key is dumped commented out, and values needing quotes are quoted. */
    char *envp2[] = {"SB_DB_SOCKET= /spaced ", "SB_LOG_LEVEL=", NULL};
    CHECK(sb_config_load(schema, N_KEYS, NULL, envp2, &cfg, err, sizeof err) == 0);
    mem = open_memstream(&text, &len);
    CHECK(sb_config_dump(cfg, mem) == 0);
    fclose(mem);
    CHECK(strstr(text, "\ndb.socket = \" /spaced \"\n") != NULL);
    CHECK(strstr(text, "\nlog_level = \"\"\n") != NULL);
    CHECK(strstr(text, "\n# tls.cert =\n") != NULL);
    CHECK(strstr(text, "# certificate file (path, unset)\n") != NULL);
    free(text);
    sb_config_free(cfg);
}

static void test_errors(void) {
    /* Unknown keys: a typo, a key missing its section, and one with no close match. */
    expect_error("db.sockt = /x\n", env_socket, -EINVAL, "@:1: unknown key \"db.sockt\" (did you mean \"db.socket\"?)");
    expect_error("socket = /x\n", env_socket, -EINVAL, "@:1: unknown key \"socket\" (did you mean \"db.socket\"?)");
    expect_error("[db]\nsokcet = /x\n", NULL, -EINVAL,
                 "@:2: unknown key \"db.sokcet\" (did you mean \"db.socket\"?)\n"
                 "db.socket: required but not set (set it in the config file or in env SB_DB_SOCKET)");
    expect_error("colour = blue\n", env_socket, -EINVAL, "@:1: unknown key \"colour\"");
    expect_error("Listen_Port = 1\n", env_socket, -EINVAL,
                 "@:1: unknown key \"Listen_Port\" (did you mean \"listen_port\"?)");

    /* Bad values, from the file and from the environment. */
    expect_error("listen_port = 12ab\n", env_socket, -EINVAL, "@:1: listen_port: \"12ab\" is not a valid integer");
    expect_error("listen_port = 99999999999999999999\n", env_socket, -EINVAL,
                 "@:1: listen_port: \"99999999999999999999\" is not a valid integer");
    expect_error("listen_port = 70000\n", env_socket, -EINVAL, "@:1: listen_port: 70000 is out of range [1, 65535]");
    expect_error(NULL, (char *[]){"SB_DB_SOCKET=/s", "SB_LISTEN_PORT=0", NULL}, -EINVAL,
                 "env SB_LISTEN_PORT: listen_port: 0 is out of range [1, 65535]");
    expect_error(NULL, (char *[]){"SB_DB_SOCKET=/s", "SB_LISTEN_PORT=", NULL}, -EINVAL,
                 "env SB_LISTEN_PORT: listen_port: \"\" is not a valid integer");
    expect_error("[tls]\nenabled = maybe\n", env_socket, -EINVAL,
                 "@:2: tls.enabled: \"maybe\" is not a valid boolean (true/false, yes/no, on/off, 1/0)");
    expect_error("db.timeout = 1.5s\n", env_socket, -EINVAL,
                 "@:1: db.timeout: \"1.5s\" is not a valid duration (an integer with unit ms, s, m or h)");
    expect_error("db.timeout = 2h\n", env_socket, -EINVAL, "@:1: db.timeout: 2h is out of range [100ms, 60000ms]");
    expect_error("db.socket = \"\"\n", NULL, -EINVAL, "@:1: db.socket: the path is empty");
    expect_error("db.user = \"\"\n", env_socket, -EINVAL, "@:1: db.user: too short (0 bytes, at least 1)");
    expect_error("db.user = abcdefghijklmnopqrstuvwxyz0123456789\n", env_socket, -EINVAL,
                 "@:1: db.user: too long (36 bytes, at most 32)");
    expect_error(NULL, (char *[]){"SB_DB_SOCKET=/a\nb", NULL}, -EINVAL,
                 "env SB_DB_SOCKET: db.socket: value contains control characters");

    /* A secret's value is never echoed, even when it is wrong. */
    static const sb_config_key secret_schema[] = {
        {.name = "pin", .type = SB_CONFIG_INT, .secret = true, .min = 0, .max = 9999},
    };
    char err[1024];
    sb_config *cfg = NULL;
    CHECK(sb_config_load(secret_schema, 1, NULL, (char *[]){"SB_PIN=12345x", NULL}, &cfg, err, sizeof err) ==
          -EINVAL);
    CHECK_STREQ(err, "env SB_PIN: pin: \"(secret)\" is not a valid integer");
    CHECK(sb_config_load(secret_schema, 1, NULL, (char *[]){"SB_PIN=123456", NULL}, &cfg, err, sizeof err) ==
          -EINVAL);
    CHECK_STREQ(err, "env SB_PIN: pin: (secret) is out of range [0, 9999]");

    /* Missing required key. */
    expect_error(NULL, NULL, -EINVAL,
                 "db.socket: required but not set (set it in the config file or in env SB_DB_SOCKET)");

    /* Syntax. */
    expect_error("listen_port 5\n", env_socket, -EINVAL, "@:1: expected \"key = value\" or \"[section]\"");
    expect_error("[db\n", env_socket, -EINVAL, "@:1: a section must look like [name]");
    expect_error("[D B]\nsocket = /x\n", env_socket, -EINVAL, "@:1: invalid section name \"D B\" (use [a-z0-9_.-])");
    expect_error("db.password = \"abc\n", env_socket, -EINVAL, "@:1: db.password: unterminated quoted value");
    expect_error("db.password = \"abc\"def\"\n", env_socket, -EINVAL, "@:1: db.password: unterminated quoted value");
    expect_error("listen_port = 1\n\nlisten_port = 2\n", env_socket, -EINVAL,
                 "@:3: listen_port is set twice (first at line 1)");
    static char long_line[SB_CONFIG_VALUE_MAX + 100];
    memset(long_line, 'a', sizeof long_line - 2);
    memcpy(long_line, "log_level = ", 12);
    long_line[sizeof long_line - 2] = '\n';
    expect_error(long_line, env_socket, -EINVAL, "@:1: line too long (more than 4096 bytes)");

    /* Every problem is reported at once, in order: the file's syntax and keys, then each key's value in schema
     * order. */
    expect_error("listen_port = x\nbogus = 1\n[tls]\nenabled = 2\n", NULL, -EINVAL,
                 "@:2: unknown key \"bogus\"\n"
                 "@:1: listen_port: \"x\" is not a valid integer\n"
                 "db.socket: required but not set (set it in the config file or in env SB_DB_SOCKET)\n"
                 "@:4: tls.enabled: \"2\" is not a valid boolean (true/false, yes/no, on/off, 1/0)");

    /* A missing file is an errno error. */
    cfg = NULL;
    CHECK(sb_config_load(schema, N_KEYS, "/nonexistent/wallet.conf", env_socket, &cfg, err, sizeof err) == -ENOENT);
    CHECK_STREQ(err, "cannot open config file \"/nonexistent/wallet.conf\": No such file or directory");
    CHECK(cfg == NULL);

    /* A small error buffer is cut but stays terminated; a NULL buffer is allowed. */
    char tiny[10];
    CHECK(sb_config_load(schema, N_KEYS, NULL, NULL, &cfg, tiny, sizeof tiny) == -EINVAL);
    CHECK_STREQ(tiny, "db.socket");
    CHECK(sb_config_load(schema, N_KEYS, NULL, NULL, &cfg, NULL, 0) == -EINVAL);
}

static void test_schema_errors(void) {
    char err[1024];
    sb_config *cfg = NULL;
    static const sb_config_key dup[] = {{.name = "a", .type = SB_CONFIG_INT}, {.name = "a", .type = SB_CONFIG_BOOL}};
    CHECK(sb_config_load(dup, 2, NULL, NULL, &cfg, err, sizeof err) == -EINVAL);
    CHECK_STREQ(err, "schema: a: declared twice");
    static const sb_config_key bad[] = {{.name = "Bad Name", .type = SB_CONFIG_INT},
                                        {.name = "r", .type = SB_CONFIG_INT, .min = 5, .max = 1}};
    CHECK(sb_config_load(bad, 2, NULL, NULL, &cfg, err, sizeof err) == -EINVAL);
    CHECK_STREQ(err, "schema: key 0: invalid name \"Bad Name\" (use [a-z0-9_.-])\nschema: r: min 5 is above max 1");
    static const sb_config_key bad_default[] = {{.name = "n", .type = SB_CONFIG_INT, .default_value = "ten"}};
    CHECK(sb_config_load(bad_default, 1, NULL, NULL, &cfg, err, sizeof err) == -EINVAL);
    CHECK_STREQ(err, "default: n: \"ten\" is not a valid integer");
    CHECK(cfg == NULL);
}

static void test_values(void) {
    static const sb_config_key k[] = {
        {.name = "i", .type = SB_CONFIG_INT},
        {.name = "d", .type = SB_CONFIG_DURATION_MS},
        {.name = "b", .type = SB_CONFIG_BOOL},
    };
    static const struct {
        const char *i, *d, *b;
        int64_t want_i, want_d;
        bool want_b;
    } cases[] = {
        {"-9223372036854775808", "0", "TRUE", INT64_MIN, 0, true},
        {"+42", "1500", "No", 42, 1500, false},
        {"9223372036854775807", "3s", "1", INT64_MAX, 3000, true},
        {"0", "7m", "off", 0, 420000, false},
        {"-1", "1h", "on", -1, 3600000, true},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char ei[64], ed[64], eb[64];
        snprintf(ei, sizeof ei, "SB_I=%s", cases[c].i);
        snprintf(ed, sizeof ed, "SB_D=%s", cases[c].d);
        snprintf(eb, sizeof eb, "SB_B=%s", cases[c].b);
        char *envp[] = {ei, ed, eb, NULL};
        sb_config *cfg = NULL;
        char err[256];
        CHECK(sb_config_load(k, 3, NULL, envp, &cfg, err, sizeof err) == 0);
        if (!cfg)
            continue;
        CHECK(sb_config_int(cfg, "i") == cases[c].want_i);
        CHECK(sb_config_int(cfg, "d") == cases[c].want_d);
        CHECK(sb_config_bool(cfg, "b") == cases[c].want_b);
        sb_config_free(cfg);
    }
    const char *bad_int[] = {" 1", "1 ", "0x10", "", "-", "9223372036854775808"};
    const char *bad_dur[] = {"-1s", "1 s", "s", "1d", "99999999999999999h"};
    for (size_t c = 0; c < sizeof bad_int / sizeof bad_int[0]; c++) {
        char e[64];
        snprintf(e, sizeof e, "SB_I=%s", bad_int[c]);
        sb_config *cfg = NULL;
        CHECK(sb_config_load(k, 3, NULL, (char *[]){e, NULL}, &cfg, NULL, 0) == -EINVAL);
    }
    for (size_t c = 0; c < sizeof bad_dur / sizeof bad_dur[0]; c++) {
        char e[64];
        snprintf(e, sizeof e, "SB_D=%s", bad_dur[c]);
        sb_config *cfg = NULL;
        CHECK(sb_config_load(k, 3, NULL, (char *[]){e, NULL}, &cfg, NULL, 0) == -EINVAL);
    }

    char name[32];
    CHECK(sb_config_env_name("db.socket", name, sizeof name) == 0);
    CHECK_STREQ(name, "SB_DB_SOCKET");
    CHECK(sb_config_env_name("rpc.max-message_bytes", name, sizeof name) == 0);
    CHECK_STREQ(name, "SB_RPC_MAX_MESSAGE_BYTES");
    CHECK(sb_config_env_name("a.very.long.key.name.indeed", name, 16) == -ENAMETOOLONG);
}

int main(void) {
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_defaults_and_env_only();
    test_file_and_env_precedence();
    test_errors();
    test_schema_errors();
    test_values();

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("ok\n");
    return 0;
}
