/* Unit tests of sb_log: exact formatting, JSON escaping, truncation, levels, and whole lines under concurrency. */
#include "log.h"

#include <errno.h>
#include <pthread.h>
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
        if (strcmp((got), (want)) != 0) {                                                                             \
            fprintf(stderr, "%s:%d: got  %s\n%s:%d: want %s\n", __FILE__, __LINE__, (got), __FILE__, __LINE__,       \
                    (want));                                                                                          \
            failures++;                                                                                               \
        }                                                                                                             \
    } while (0)

/* ---- a tiny strict JSON checker: one object per line, strings must be valid UTF-8 without raw controls ---- */

typedef struct json_cursor {
    const unsigned char *p;
    const unsigned char *end;
} json_cursor;

static bool json_value(json_cursor *c, int depth);

static void json_ws(json_cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static bool json_string(json_cursor *c) {
    if (c->p >= c->end || *c->p != '"')
        return false;
    c->p++;
    while (c->p < c->end) {
        unsigned char b = *c->p;
        if (b == '"') {
            c->p++;
            return true;
        }
        if (b < 0x20)
            return false;
        if (b == '\\') {
            c->p++;
            if (c->p >= c->end)
                return false;
            unsigned char e = *c->p++;
            if (e == 'u') {
                for (int i = 0; i < 4; i++, c->p++)
                    if (c->p >= c->end || !strchr("0123456789abcdefABCDEF", *c->p) || *c->p == 0)
                        return false;
            } else if (!strchr("\"\\/bfnrt", e) || e == 0)
                return false;
            continue;
        }
        if (b < 0x80) {
            c->p++;
            continue;
        }
        /* Strict UTF-8: no overlongs, no surrogates, nothing above U+10FFFF. */
        int need;
        unsigned lo = 0x80, hi = 0xBF;
        if (b >= 0xC2 && b <= 0xDF)
            need = 1;
        else if (b >= 0xE0 && b <= 0xEF) {
            need = 2;
            if (b == 0xE0)
                lo = 0xA0;
            if (b == 0xED)
                hi = 0x9F;
        } else if (b >= 0xF0 && b <= 0xF4) {
            need = 3;
            if (b == 0xF0)
                lo = 0x90;
            if (b == 0xF4)
                hi = 0x8F;
        } else
            return false;
        c->p++;
        for (int i = 0; i < need; i++, c->p++) {
            if (c->p >= c->end)
                return false;
            unsigned x = *c->p;
            if (i == 0 ? (x < lo || x > hi) : (x < 0x80 || x > 0xBF))
                return false;
        }
    }
    return false;
}

static bool json_number(json_cursor *c) {
    const unsigned char *start = c->p;
    if (c->p < c->end && *c->p == '-')
        c->p++;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
        c->p++;
    return c->p > start && c->p[-1] != '-';
}

static bool json_lit(json_cursor *c, const char *lit) {
    size_t n = strlen(lit);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0)
        return false;
    c->p += n;
    return true;
}

static bool json_object(json_cursor *c, int depth) {
    if (c->p >= c->end || *c->p != '{')
        return false;
    c->p++;
    json_ws(c);
    if (c->p < c->end && *c->p == '}') {
        c->p++;
        return true;
    }
    for (;;) {
        json_ws(c);
        if (!json_string(c))
            return false;
        json_ws(c);
        if (c->p >= c->end || *c->p != ':')
            return false;
        c->p++;
        json_ws(c);
        if (!json_value(c, depth + 1))
            return false;
        json_ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        if (c->p < c->end && *c->p == '}') {
            c->p++;
            return true;
        }
        return false;
    }
}

static bool json_value(json_cursor *c, int depth) {
    if (depth > 8 || c->p >= c->end)
        return false;
    switch (*c->p) {
    case '{':
        return json_object(c, depth);
    case '"':
        return json_string(c);
    case 't':
        return json_lit(c, "true");
    case 'f':
        return json_lit(c, "false");
    case 'n':
        return json_lit(c, "null");
    default:
        return json_number(c);
    }
}

/* A log line is valid when it is exactly one JSON object followed by one newline and fits SB_LOG_LINE_MAX. */
static bool valid_line(const char *line, size_t len) {
    if (len == 0 || len > SB_LOG_LINE_MAX || line[len - 1] != '\n' || memchr(line, '\n', len - 1))
        return false;
    json_cursor c = {(const unsigned char *)line, (const unsigned char *)line + len - 1};
    return json_object(&c, 0) && c.p == c.end;
}

/* ---- tests ---- */

static const int64_t ts_example = 1795311621123; /* 2026-11-22T01:40:21.123Z */

static void test_format_exact(void) {
    char buf[SB_LOG_LINE_MAX + 1];
    sb_log_field fields[] = {
        {"method", SB_LOG_STR("/sharebuy.wallet.v1.Wallet/Transfer")},
        {"status", SB_LOG_INT(-5)},
        {"bytes", SB_LOG_UINT(18446744073709551615u)},
        {"retry", SB_LOG_BOOL(true)},
        {"ok", SB_LOG_BOOL(false)},
        {"peer", SB_LOG_STR(NULL)},
    };
    size_t len = sb_log_format(buf, sizeof buf, ts_example, SB_LOG_INFO, "rpc", "call done", fields, 6);
    CHECK_STREQ(buf, "{\"ts\":\"2026-11-22T01:40:21.123Z\",\"level\":\"info\",\"svc\":\"wallet\",\"event\":\"rpc\","
                     "\"msg\":\"call done\",\"method\":\"/sharebuy.wallet.v1.Wallet/Transfer\",\"status\":-5,"
                     "\"bytes\":18446744073709551615,\"retry\":true,\"ok\":false,\"peer\":null}\n");
    CHECK(len == strlen(buf));
    CHECK(valid_line(buf, len));

    len = sb_log_format(buf, sizeof buf, 0, SB_LOG_ERROR, NULL, NULL, NULL, 0);
    CHECK_STREQ(buf, "{\"ts\":\"1970-01-01T00:00:00.000Z\",\"level\":\"error\",\"svc\":\"wallet\",\"event\":\"\","
                     "\"msg\":\"\"}\n");
}

static void test_escaping(void) {
    static const struct {
        const char *in;
        const char *out;
    } cases[] = {
        {"plain", "plain"},
        {"quote\" back\\slash /", "quote\\\" back\\\\slash /"},
        {"nl\n cr\r tab\t bs\b ff\f", "nl\\n cr\\r tab\\t bs\\b ff\\f"},
        {"\x01\x1f\x7f", "\\u0001\\u001f\\u007f"},
        {"caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80"}, /* valid UTF-8 */
        {"bad\xff", "bad\\ufffd"},
        {"\xc3\x28", "\\ufffd("},                /* lead byte followed by ASCII */
        {"\xc0\xaf", "\\ufffd\\ufffd"},          /* overlong '/' */
        {"\xed\xa0\x80", "\\ufffd\\ufffd\\ufffd"}, /* surrogate U+D800 */
        {"\xf4\x90\x80\x80", "\\ufffd\\ufffd\\ufffd\\ufffd"}, /* above U+10FFFF */
        {"end\xe4\xb8", "end\\ufffd"},           /* sequence cut by the end of the string */
        {"\x80x", "\\ufffdx"},                   /* lone continuation byte */
    };
    char buf[SB_LOG_LINE_MAX + 1], want[1024];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sb_log_field f = {cases[i].in, SB_LOG_STR(cases[i].in)};
        size_t len = sb_log_format(buf, sizeof buf, ts_example, SB_LOG_WARN, cases[i].in, cases[i].in, &f, 1);
        snprintf(want, sizeof want,
                 "{\"ts\":\"2026-11-22T01:40:21.123Z\",\"level\":\"warn\",\"svc\":\"wallet\",\"event\":\"%s\","
                 "\"msg\":\"%s\",\"%s\":\"%s\"}\n",
                 cases[i].out, cases[i].out, cases[i].out, cases[i].out);
        CHECK_STREQ(buf, want);
        CHECK(valid_line(buf, len));
    }
}

static void test_truncation(void) {
    char buf[SB_LOG_LINE_MAX + 1];
    static char big[10000];
    static const char tail[] = ",\"truncated\":true}\n";

    memset(big, 'x', sizeof big - 1);
    size_t len = sb_log_format(buf, sizeof buf, ts_example, SB_LOG_INFO, "e", big, NULL, 0);
    CHECK(len <= SB_LOG_LINE_MAX);
    CHECK(len > SB_LOG_LINE_MAX - 64);
    CHECK(len >= sizeof tail && strcmp(buf + len - (sizeof tail - 1), tail) == 0);
    CHECK(valid_line(buf, len));

    /* Escapes and multi-byte characters are never split by the cut. */
    for (size_t fill = 0; fill < 8; fill++) {
        size_t i = 0;
        for (; i < fill; i++)
            big[i] = 'a';
        for (; i + 4 < sizeof big; i += 4)
            memcpy(big + i, (i / 4) % 2 ? "\x01\"\xe4\xb8" : "\xf0\x9f\x98\x80", 4);
        big[i] = '\0';
        len = sb_log_format(buf, sizeof buf, ts_example, SB_LOG_INFO, "e", "m", (sb_log_field[]){{"k", SB_LOG_STR(big)}},
                            1);
        CHECK(valid_line(buf, len));
        CHECK(strstr(buf, "\"truncated\":true}\n") != NULL);
    }

    /* Every length around the limit, so that each piece (a value, its closing quote, the next key) in turn is
     * the one that just fits or just misses. */
    for (size_t n = SB_LOG_LINE_MAX - 200; n < SB_LOG_LINE_MAX + 10; n++) {
        memset(big, 'z', n);
        big[n] = '\0';
        len = sb_log_format(buf, sizeof buf, ts_example, SB_LOG_INFO, "e", big,
                            (sb_log_field[]){{"k", SB_LOG_STR("v")}, {"n", SB_LOG_INT(12345)}}, 2);
        CHECK(valid_line(buf, len));
        sb_log_field f = {"k", SB_LOG_STR(big + 150)};
        len = sb_log_format(buf, sizeof buf, ts_example, SB_LOG_INFO, "e", "m", &f, 1);
        CHECK(valid_line(buf, len));
        len = sb_log_format(buf, sizeof buf, ts_example, SB_LOG_INFO, "e", big + 100,
                            (sb_log_field[]){{"k", SB_LOG_STR("\x01")}, {"b", SB_LOG_BOOL(false)}}, 2);
        CHECK(valid_line(buf, len));
    }

    /* A field that cannot fit at all is dropped whole; a short buffer is honoured. */
    memset(big, 'y', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    char small[256];
    len = sb_log_format(small, sizeof small, ts_example, SB_LOG_INFO, "e", "m",
                        (sb_log_field[]){{big, SB_LOG_INT(1)}, {"n", SB_LOG_INT(2)}}, 2);
    CHECK(len < sizeof small);
    CHECK(valid_line(small, len));
    CHECK_STREQ(small, "{\"ts\":\"2026-11-22T01:40:21.123Z\",\"level\":\"info\",\"svc\":\"wallet\",\"event\":\"e\","
                       "\"msg\":\"m\",\"truncated\":true}\n");
}

static void test_fuzz_always_valid(void) {
    char buf[SB_LOG_LINE_MAX + 1];
    static char s1[6000], s2[6000];
    unsigned seed = 12345;
    for (int round = 0; round < 3000; round++) {
        size_t n1 = (size_t)rand_r(&seed) % (round % 10 == 0 ? sizeof s1 - 1 : 64);
        size_t n2 = (size_t)rand_r(&seed) % (round % 7 == 0 ? sizeof s2 - 1 : 64);
        for (size_t i = 0; i < n1; i++)
            s1[i] = (char)(1 + rand_r(&seed) % 255);
        for (size_t i = 0; i < n2; i++)
            s2[i] = (char)(1 + rand_r(&seed) % 255);
        s1[n1] = s2[n2] = '\0';
        sb_log_field f[] = {{s1, SB_LOG_STR(s2)}, {"n", SB_LOG_INT(round)}};
        size_t len = sb_log_format(buf, sizeof buf, ts_example, SB_LOG_DEBUG, s2, s1, f, 2);
        if (!valid_line(buf, len)) {
            fprintf(stderr, "invalid line in round %d: %s\n", round, buf);
            failures++;
            return;
        }
    }
}

static void test_levels(void) {
    sb_log_level l = SB_LOG_ERROR;
    CHECK(sb_log_level_parse("debug", &l) == 0 && l == SB_LOG_DEBUG);
    CHECK(sb_log_level_parse("INFO", &l) == 0 && l == SB_LOG_INFO);
    CHECK(sb_log_level_parse("Warn", &l) == 0 && l == SB_LOG_WARN);
    CHECK(sb_log_level_parse("warning", &l) == 0 && l == SB_LOG_WARN);
    CHECK(sb_log_level_parse("error", &l) == 0 && l == SB_LOG_ERROR);
    l = SB_LOG_INFO;
    CHECK(sb_log_level_parse("verbose", &l) == -EINVAL && l == SB_LOG_INFO);
    CHECK(sb_log_level_parse("", &l) == -EINVAL);
    CHECK(sb_log_level_parse(NULL, &l) == -EINVAL);
    CHECK_STREQ(sb_log_level_name(SB_LOG_WARN), "warn");

    int fds[2];
    CHECK(pipe(fds) == 0);
    sb_log_init("wallet", SB_LOG_WARN, fds[1]);
    CHECK(!sb_log_enabled(SB_LOG_INFO));
    CHECK(sb_log_enabled(SB_LOG_ERROR));
    sb_log(SB_LOG_INFO, "skipped", "not written");
    errno = EBADF;
    sb_log(SB_LOG_ERROR, "written", "n=%d s=%s", 42, "q\"");
    CHECK(errno == EBADF);
    sb_log_kv(SB_LOG_WARN, "kv", "with fields", "method", SB_LOG_STR("M"), "code", SB_LOG_INT(5), NULL);
    sb_log_set_level(SB_LOG_DEBUG);
    sb_log(SB_LOG_DEBUG, "dbg", "now on");
    close(fds[1]);

    char out[4 * SB_LOG_LINE_MAX];
    size_t got = 0;
    ssize_t n;
    while ((n = read(fds[0], out + got, sizeof out - 1 - got)) > 0)
        got += (size_t)n;
    out[got] = '\0';
    close(fds[0]);

    /* Skip each line's timestamp (checked exactly in test_format_exact) and compare the rest. */
    const char *want[] = {
        "\"level\":\"error\",\"svc\":\"wallet\",\"event\":\"written\",\"msg\":\"n=42 s=q\\\"\"}",
        "\"level\":\"warn\",\"svc\":\"wallet\",\"event\":\"kv\",\"msg\":\"with fields\",\"method\":\"M\",\"code\":5}",
        "\"level\":\"debug\",\"svc\":\"wallet\",\"event\":\"dbg\",\"msg\":\"now on\"}",
    };
    char *save = NULL;
    size_t i = 0;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save), i++) {
        CHECK(strncmp(line, "{\"ts\":\"", 7) == 0 && strlen(line) > 33 && line[30] == 'Z' && line[32] == ',');
        if (i < 3 && strlen(line) > 33)
            CHECK_STREQ(line + 33, want[i]);
    }
    CHECK(i == 3);
}

/* ---- concurrency: many threads write long lines into one pipe; every line read back must be whole ---- */

enum { THREADS = 8, LINES_PER_THREAD = 1500 };

static void *writer_thread(void *arg) {
    int id = (int)(intptr_t)arg;
    static const char pattern[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    char msg[3000];
    for (int i = 0; i < LINES_PER_THREAD; i++) {
        size_t n = (size_t)(i * 37 + id * 101) % (sizeof msg - 1);
        for (size_t j = 0; j < n; j++)
            msg[j] = pattern[(j + (size_t)id) % (sizeof pattern - 1)];
        msg[n] = '\0';
        sb_log_kv(SB_LOG_INFO, "spam", msg, "thread", SB_LOG_INT(id), "seq", SB_LOG_INT(i), NULL);
    }
    return NULL;
}

typedef struct reader_state {
    int fd;
    int lines;
    int bad;
    int seen[THREADS];
} reader_state;

static void *reader_thread(void *arg) {
    reader_state *r = arg;
    static char buf[1 << 16];
    size_t have = 0;
    for (;;) {
        ssize_t n = read(r->fd, buf + have, sizeof buf - have);
        if (n <= 0)
            break;
        have += (size_t)n;
        char *start = buf;
        char *nl;
        while ((nl = memchr(start, '\n', have - (size_t)(start - buf)))) {
            size_t len = (size_t)(nl - start) + 1;
            r->lines++;
            int id = -1, seq = -1;
            const char *t = strstr(start, "\"thread\":");
            if (!valid_line(start, len) || !t || sscanf(t, "\"thread\":%d,\"seq\":%d", &id, &seq) != 2 || id < 0 ||
                id >= THREADS || seq != r->seen[id])
                r->bad++;
            else
                r->seen[id]++;
            start = nl + 1;
        }
        have -= (size_t)(start - buf);
        memmove(buf, start, have);
    }
    if (have)
        r->bad++;
    return NULL;
}

static void test_concurrent_whole_lines(void) {
    int fds[2];
    CHECK(pipe(fds) == 0);
    sb_log_init("wallet", SB_LOG_DEBUG, fds[1]);
    reader_state r = {.fd = fds[0]};
    pthread_t reader, writers[THREADS];
    CHECK(pthread_create(&reader, NULL, reader_thread, &r) == 0);
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_create(&writers[i], NULL, writer_thread, (void *)(intptr_t)i) == 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(writers[i], NULL);
    sb_log_init("wallet", SB_LOG_DEBUG, STDERR_FILENO);
    close(fds[1]);
    pthread_join(reader, NULL);
    close(fds[0]);
    CHECK(r.lines == THREADS * LINES_PER_THREAD);
    CHECK(r.bad == 0);
}

int main(void) {
    sb_log_init("wallet", SB_LOG_DEBUG, -1);
    test_format_exact();
    test_escaping();
    test_truncation();
    test_fuzz_always_valid();
    test_levels();
    test_concurrent_whole_lines();
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("ok\n");
    return 0;
}
