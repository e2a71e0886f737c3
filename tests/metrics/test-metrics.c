/* Unit tests of sb_metrics: exact exposition text, argument errors, the series limit, concurrent updates, and the
 * /metrics server over a real loopback socket (including slow, oversized and malformed requests). */
#include "metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
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
            fprintf(stderr, "%s:%d: got:\n%s\n%s:%d: want:\n%s\n", __FILE__, __LINE__, g_ ? g_ : "(null)", __FILE__, \
                    __LINE__, w_);                                                                                    \
            failures++;                                                                                               \
        }                                                                                                             \
    } while (0)

static const char *const rpc_bounds[] = {"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
                                         "0.1",    "0.25",  "0.5",    "1",     "2.5",  "5",     "10"};

/* Appends the lines of one sharebuy_rpc_latency_seconds series: cumulative counts for each bound, then +Inf. */
static size_t append_latency(char *buf, size_t o, size_t size, const char *method, const int *cumulative,
                             int count, const char *sum) {
    for (size_t i = 0; i < 14; i++)
        o += (size_t)snprintf(buf + o, size - o, "sharebuy_rpc_latency_seconds_bucket{method=\"%s\",le=\"%s\"} %d\n",
                              method, rpc_bounds[i], cumulative[i]);
    o += (size_t)snprintf(buf + o, size - o,
                          "sharebuy_rpc_latency_seconds_bucket{method=\"%s\",le=\"+Inf\"} %d\n"
                          "sharebuy_rpc_latency_seconds_sum{method=\"%s\"} %s\n"
                          "sharebuy_rpc_latency_seconds_count{method=\"%s\"} %d\n",
                          method, count, method, sum, method, count);
    return o;
}

static sb_metrics_registry *small_registry(void) {
    sb_metrics_registry *reg = NULL;
    CHECK(sb_metrics_registry_new(0, &reg) == 0);
    const char *m = "/sharebuy.wallet.v1.Wallet/GetBalance";
    CHECK(sb_metrics_rpc_observe(reg, m, 0, 1200) == 0);
    CHECK(sb_metrics_rpc_observe(reg, m, 5, 300) == 0);
    CHECK(sb_metrics_rpc_observe(reg, m, 0, 500) == 0); /* a bound is inclusive: le="0.0005" */
    CHECK(sb_metrics_rpc_observe(reg, "/a.B/C", 99, 20000000) == 0);

    static const char *const run[] = {"run"};
    CHECK(sb_metrics_declare(reg, &(sb_metrics_desc){.name = "sharebuy_airdrop_progress_ppm",
                                                     .help = "Progress of the running airdrop, parts per million.",
                                                     .type = SB_METRICS_GAUGE, .label_names = run, .n_labels = 1}) ==
          0);
    CHECK(sb_metrics_gauge_set(reg, "sharebuy_airdrop_progress_ppm", (const char *[]){"2026-11-22"}, 1, 400000) == 0);
    CHECK(sb_metrics_gauge_add(reg, "sharebuy_airdrop_progress_ppm", (const char *[]){"2026-11-22"}, 1, 20000) == 0);
    CHECK(sb_metrics_gauge_set(reg, "sharebuy_airdrop_progress_ppm", (const char *[]){"2026-11-21"}, 1, -7) == 0);

    static const char *const kind[] = {"kind"};
    CHECK(sb_metrics_declare(reg, &(sb_metrics_desc){.name = "test_events_total",
                                                     .help = "A help with \\ backslash",
                                                     .type = SB_METRICS_COUNTER, .label_names = kind,
                                                     .n_labels = 1}) == 0);
    CHECK(sb_metrics_counter_add(reg, "test_events_total", (const char *[]){"a\"b\\c\nd"}, 1, 2) == 0);
    CHECK(sb_metrics_counter_add(reg, "test_events_total", (const char *[]){"a\"b\\c\nd"}, 1, 1) == 0);

    static const int64_t bounds[] = {-1000, 0, 1500};
    CHECK(sb_metrics_declare(reg, &(sb_metrics_desc){.name = "test_offset_seconds", .type = SB_METRICS_HISTOGRAM,
                                                     .bounds = bounds, .n_bounds = 3, .scale_digits = 3}) == 0);
    CHECK(sb_metrics_histogram_observe(reg, "test_offset_seconds", NULL, 0, -2500) == 0);
    CHECK(sb_metrics_histogram_observe(reg, "test_offset_seconds", NULL, 0, 1000) == 0);
    return reg;
}

static char *expected_small_text(void) {
    static char want[16384];
    size_t o = 0, size = sizeof want;
    o += (size_t)snprintf(
        want + o, size - o,
        "# HELP sharebuy_rpc_requests_total RPCs finished, by method and status code.\n"
        "# TYPE sharebuy_rpc_requests_total counter\n"
        "sharebuy_rpc_requests_total{method=\"/a.B/C\",code=\"99\"} 1\n"
        "sharebuy_rpc_requests_total{method=\"/sharebuy.wallet.v1.Wallet/GetBalance\",code=\"NOT_FOUND\"} 1\n"
        "sharebuy_rpc_requests_total{method=\"/sharebuy.wallet.v1.Wallet/GetBalance\",code=\"OK\"} 2\n"
        "# HELP sharebuy_rpc_errors_total RPCs finished with a status other than OK.\n"
        "# TYPE sharebuy_rpc_errors_total counter\n"
        "sharebuy_rpc_errors_total{method=\"/a.B/C\",code=\"99\"} 1\n"
        "sharebuy_rpc_errors_total{method=\"/sharebuy.wallet.v1.Wallet/GetBalance\",code=\"NOT_FOUND\"} 1\n"
        "# HELP sharebuy_rpc_latency_seconds Time from the request's arrival to its status, by method.\n"
        "# TYPE sharebuy_rpc_latency_seconds histogram\n");
    o = append_latency(want, o, size, "/a.B/C", (const int[14]){0}, 1, "20");
    o = append_latency(want, o, size, "/sharebuy.wallet.v1.Wallet/GetBalance",
                       (const int[14]){2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3}, 3, "0.002");
    o += (size_t)snprintf(want + o, size - o,
                          "# HELP sharebuy_metrics_series_refused_total New label sets refused because the "
                          "registry's series limit was reached.\n"
                          "# TYPE sharebuy_metrics_series_refused_total counter\n"
                          "sharebuy_metrics_series_refused_total 0\n"
                          "# HELP sharebuy_airdrop_progress_ppm Progress of the running airdrop, parts per million.\n"
                          "# TYPE sharebuy_airdrop_progress_ppm gauge\n"
                          "sharebuy_airdrop_progress_ppm{run=\"2026-11-21\"} -7\n"
                          "sharebuy_airdrop_progress_ppm{run=\"2026-11-22\"} 420000\n"
                          "# HELP test_events_total A help with \\\\ backslash\n"
                          "# TYPE test_events_total counter\n"
                          "test_events_total{kind=\"a\\\"b\\\\c\\nd\"} 3\n"
                          "# TYPE test_offset_seconds histogram\n"
                          "test_offset_seconds_bucket{le=\"-1\"} 1\n"
                          "test_offset_seconds_bucket{le=\"0\"} 1\n"
                          "test_offset_seconds_bucket{le=\"1.5\"} 2\n"
                          "test_offset_seconds_bucket{le=\"+Inf\"} 2\n"
                          "test_offset_seconds_sum -1.5\n"
                          "test_offset_seconds_count 2\n");
    return want;
}

static void test_exposition_exact(void) {
    sb_metrics_registry *reg = small_registry();
    char *text = NULL;
    size_t len = 0;
    CHECK(sb_metrics_render(reg, &text, &len) == 0);
    CHECK_STREQ(text, expected_small_text());
    CHECK(text && len == strlen(text));
    free(text);
    sb_metrics_registry_free(reg);
}

/* A plain (label-free) family in one call: declared once, the same series again, refused names leave *ret alone. */
static void test_plain(void) {
    sb_metrics_registry *reg = NULL;
    CHECK(sb_metrics_registry_new(0, &reg) == 0);
    sb_metrics_series *a = NULL, *b = NULL, *keep = (sb_metrics_series *) &reg;
    CHECK(sb_metrics_plain(reg, "test_plain_total", "plain counts", SB_METRICS_COUNTER, &a) == 0 && a);
    CHECK(sb_metrics_plain(reg, "test_plain_total", "plain counts", SB_METRICS_COUNTER, &b) == 0 && b == a);
    CHECK(sb_metrics_plain(reg, "test_plain_total", "other help", SB_METRICS_COUNTER, &keep) == -EEXIST);
    CHECK(sb_metrics_plain(reg, "1bad", NULL, SB_METRICS_GAUGE, &keep) == -EINVAL);
    CHECK(keep == (sb_metrics_series *) &reg);
    sb_metrics_series_add(a, 3);
    char *text = NULL;
    size_t len = 0;
    CHECK(sb_metrics_render(reg, &text, &len) == 0);
    CHECK(text && strstr(text, "\ntest_plain_total 3\n"));
    free(text);
    sb_metrics_registry_free(reg);
}

static void test_errors(void) {
    sb_metrics_registry *reg = NULL;
    CHECK(sb_metrics_registry_new(3, &reg) == 0);
    static const char *const l1[] = {"a"}, *const dup[] = {"a", "a"}, *const le[] = {"le"}, *const dunder[] = {"__x"},
                             *const bad[] = {"1x"};
    static const int64_t b_ok[] = {1, 2}, b_bad[] = {2, 2};

    CHECK(sb_metrics_declare(reg, &(sb_metrics_desc){.name = "1bad", .type = SB_METRICS_COUNTER}) == -EINVAL);
    CHECK(sb_metrics_declare(reg, &(sb_metrics_desc){.name = "a-b", .type = SB_METRICS_COUNTER}) == -EINVAL);
    CHECK(sb_metrics_declare(reg, &(sb_metrics_desc){.name = "ok", .help = "two\nlines", .type = SB_METRICS_GAUGE}) ==
          -EINVAL);
    CHECK(sb_metrics_declare(reg, &(sb_metrics_desc){.name = "ok", .type = SB_METRICS_GAUGE, .label_names = dup,
                                                     .n_labels = 2}) == -EINVAL);
    CHECK(sb_metrics_declare(reg, &(sb_metrics_desc){.name = "ok", .type = SB_METRICS_GAUGE, .label_names = dunder,
                                                     .n_labels = 1}) == -EINVAL);
    CHECK(sb_metrics_declare(reg, &(sb_metrics_desc){.name = "ok", .type = SB_METRICS_GAUGE, .label_names = bad,
                                                     .n_labels = 1}) == -EINVAL);
    CHECK(sb_metrics_declare(reg, &(sb_metrics_desc){.name = "h", .type = SB_METRICS_HISTOGRAM, .label_names = le,
                                                     .n_labels = 1, .bounds = b_ok, .n_bounds = 2}) == -EINVAL);
    CHECK(sb_metrics_declare(reg, &(sb_metrics_desc){.name = "h", .type = SB_METRICS_HISTOGRAM, .bounds = b_bad,
                                                     .n_bounds = 2}) == -EINVAL);
    CHECK(sb_metrics_declare(reg, &(sb_metrics_desc){.name = "h", .type = SB_METRICS_HISTOGRAM, .bounds = b_ok,
                                                     .n_bounds = 0}) == -EINVAL);
    CHECK(sb_metrics_declare(reg, &(sb_metrics_desc){.name = "h", .type = SB_METRICS_HISTOGRAM, .bounds = b_ok,
                                                     .n_bounds = 2, .scale_digits = 10}) == -EINVAL);

    sb_metrics_desc g = {.name = "g", .help = "h", .type = SB_METRICS_GAUGE, .label_names = l1, .n_labels = 1};
    CHECK(sb_metrics_declare(reg, &g) == 0);
    CHECK(sb_metrics_declare(reg, &g) == 0); /* identical: fine */
    g.help = "other";
    CHECK(sb_metrics_declare(reg, &g) == -EEXIST);
    CHECK(sb_metrics_declare(reg, &(sb_metrics_desc){.name = "sharebuy_rpc_errors_total",
                                                     .type = SB_METRICS_GAUGE}) == -EEXIST);

    CHECK(sb_metrics_gauge_set(reg, "nope", l1, 1, 1) == -ENOENT);
    CHECK(sb_metrics_counter_add(reg, "g", l1, 1, 1) == -EINVAL);          /* wrong type */
    CHECK(sb_metrics_gauge_set(reg, "g", NULL, 0, 1) == -EINVAL);          /* wrong label count */
    CHECK(sb_metrics_gauge_set(reg, "g", (const char *[]){NULL}, 1, 1) == -EINVAL);
    CHECK(sb_metrics_gauge_set(reg, "g", (const char *[]){"\xff"}, 1, 1) == -EINVAL); /* not UTF-8 */
    CHECK(sb_metrics_gauge_set(reg, "g", (const char *[]){"\xe4\xb8\xad"}, 1, 1) == 0); /* UTF-8 is fine */
    static char long_value[SB_METRICS_LABEL_VALUE_MAX + 2];
    memset(long_value, 'v', sizeof long_value - 1);
    CHECK(sb_metrics_gauge_set(reg, "g", (const char *[]){long_value}, 1, 1) == -EINVAL);
    CHECK(sb_metrics_rpc_observe(reg, NULL, 0, 1) == -EINVAL);

    /* The limit is 3 series; one is used. Two more fit, the next is refused and counted; old ones keep working. */
    CHECK(sb_metrics_gauge_set(reg, "g", (const char *[]){"2"}, 1, 1) == 0);
    CHECK(sb_metrics_gauge_set(reg, "g", (const char *[]){"3"}, 1, 1) == 0);
    CHECK(sb_metrics_gauge_set(reg, "g", (const char *[]){"4"}, 1, 1) == -ENOSPC);
    CHECK(sb_metrics_rpc_observe(reg, "/x/Y", 0, 1) == -ENOSPC);
    CHECK(sb_metrics_gauge_set(reg, "g", (const char *[]){"3"}, 1, 9) == 0);

    sb_metrics_series *s = NULL;
    CHECK(sb_metrics_series_get(reg, "g", (const char *[]){"2"}, 1, &s) == 0 && s);
    if (s)
        sb_metrics_series_add(s, 5);
    char *text = NULL;
    size_t len;
    CHECK(sb_metrics_render(reg, &text, &len) == 0);
    CHECK(text && strstr(text, "\nsharebuy_metrics_series_refused_total 2\n"));
    CHECK(text && strstr(text, "# HELP g h\n# TYPE g gauge\ng{a=\"2\"} 6\ng{a=\"3\"} 9\ng{a=\"\xe4\xb8\xad\"} 1\n"));
    CHECK(text && !strstr(text, "/x/Y"));
    free(text);
    sb_metrics_registry_free(reg);
    sb_metrics_registry_free(NULL);
}

/* ---- concurrency ---- */

enum { THREADS = 8, ITERATIONS = 20000 };

static void *hammer(void *arg) {
    sb_metrics_registry *reg = arg;
    static const char *const methods[] = {"/s.v1.S/A", "/s.v1.S/B", "/s.v1.S/C"};
    for (int i = 0; i < ITERATIONS; i++) {
        sb_metrics_rpc_observe(reg, methods[i % 3], i % 4 == 0 ? 14 : 0, i % 2000);
        sb_metrics_counter_add(reg, "test_hits_total", (const char *[]){i % 2 ? "odd" : "even"}, 1, 3);
        char shard[16];
        snprintf(shard, sizeof shard, "s%d", i % 50); /* creating series races with finding them */
        sb_metrics_gauge_add(reg, "test_shard", (const char *[]){shard}, 1, 1);
    }
    return NULL;
}

static void *renderer(void *arg) {
    sb_metrics_registry *reg = arg;
    for (int i = 0; i < 50; i++) {
        char *text;
        size_t len;
        if (sb_metrics_render(reg, &text, &len) == 0)
            free(text);
    }
    return NULL;
}

static uint64_t value_of(const char *text, const char *series_prefix) {
    const char *p = strstr(text, series_prefix);
    return p ? strtoull(p + strlen(series_prefix), NULL, 10) : 0;
}

static void test_concurrent_counters(void) {
    sb_metrics_registry *reg = NULL;
    CHECK(sb_metrics_registry_new(0, &reg) == 0);
    static const char *const kind[] = {"kind"}, *const shard[] = {"shard"};
    CHECK(sb_metrics_declare(reg, &(sb_metrics_desc){.name = "test_hits_total", .type = SB_METRICS_COUNTER,
                                                     .label_names = kind, .n_labels = 1}) == 0);
    CHECK(sb_metrics_declare(reg, &(sb_metrics_desc){.name = "test_shard", .type = SB_METRICS_GAUGE,
                                                     .label_names = shard, .n_labels = 1}) == 0);
    pthread_t t[THREADS + 1];
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, hammer, reg) == 0);
    CHECK(pthread_create(&t[THREADS], NULL, renderer, reg) == 0);
    for (int i = 0; i <= THREADS; i++)
        pthread_join(t[i], NULL);

    char *text = NULL;
    size_t len;
    CHECK(sb_metrics_render(reg, &text, &len) == 0);
    if (!text)
        return;
    const uint64_t total = (uint64_t)THREADS * ITERATIONS;
    CHECK(value_of(text, "test_hits_total{kind=\"even\"} ") == total / 2 * 3);
    CHECK(value_of(text, "test_hits_total{kind=\"odd\"} ") == total / 2 * 3);
    uint64_t requests = 0, errors = 0, counted = 0;
    static const char *const methods[] = {"/s.v1.S/A", "/s.v1.S/B", "/s.v1.S/C"};
    for (int m = 0; m < 3; m++) {
        char key[128];
        snprintf(key, sizeof key, "sharebuy_rpc_requests_total{method=\"%s\",code=\"OK\"} ", methods[m]);
        requests += value_of(text, key);
        snprintf(key, sizeof key, "sharebuy_rpc_requests_total{method=\"%s\",code=\"UNAVAILABLE\"} ", methods[m]);
        requests += value_of(text, key);
        snprintf(key, sizeof key, "sharebuy_rpc_errors_total{method=\"%s\",code=\"UNAVAILABLE\"} ", methods[m]);
        errors += value_of(text, key);
        snprintf(key, sizeof key, "sharebuy_rpc_latency_seconds_count{method=\"%s\"} ", methods[m]);
        counted += value_of(text, key);
    }
    CHECK(requests == total);
    CHECK(errors == total / 4);
    CHECK(counted == total);
    uint64_t shards = 0;
    for (int i = 0; i < 50; i++) {
        char key[64];
        snprintf(key, sizeof key, "test_shard{shard=\"s%d\"} ", i);
        shards += value_of(text, key);
    }
    CHECK(shards == total);
    free(text);
    sb_metrics_registry_free(reg);
}

/* ---- HTTP ---- */

static int connect_to(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 12};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads until the server closes; returns a malloc'd NUL-terminated response. */
static char *read_all(int fd) {
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 1 == cap)
            buf = realloc(buf, cap *= 2);
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    return buf;
}

static char *http_exchange(int port, const char *request, size_t request_len) {
    int fd = connect_to(port);
    if (fd < 0)
        return strdup("");
    send(fd, request, request_len, MSG_NOSIGNAL);
    char *resp = read_all(fd);
    close(fd);
    return resp;
}

static char *http(int port, const char *request) {
    return http_exchange(port, request, strlen(request));
}

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_http(void) {
    sb_metrics_registry *reg = small_registry();
    sb_metrics_http *srv = NULL;
    char err[256] = "";
    int r = sb_metrics_http_start(reg, "127.0.0.1", 0, &srv, err, sizeof err);
    CHECK(r == 0);
    if (r < 0) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    int port = sb_metrics_http_port(srv);
    CHECK(port > 0);

    char *resp = http(port, "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n");
    char head[512];
    snprintf(head, sizeof head,
             "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: %zu\r\n"
             "Connection: close\r\n\r\n",
             strlen(expected_small_text()));
    CHECK(strncmp(resp, head, strlen(head)) == 0);
    CHECK_STREQ(resp + (strlen(resp) >= strlen(head) ? strlen(head) : 0), expected_small_text());
    free(resp);

    resp = http(port, "GET /metrics?x=1 HTTP/1.0\n\n"); /* bare LF and a query string are accepted */
    CHECK(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) == 0);
    free(resp);

    resp = http(port, "HEAD /metrics HTTP/1.1\r\n\r\n");
    CHECK(strncmp(resp, head, strlen(head)) == 0 && strlen(resp) == strlen(head));
    free(resp);

    resp = http(port, "GET / HTTP/1.1\r\n\r\n");
    CHECK(strncmp(resp, "HTTP/1.1 404 Not Found\r\n", 24) == 0);
    free(resp);
    resp = http(port, "GET /metricsx HTTP/1.1\r\n\r\n");
    CHECK(strncmp(resp, "HTTP/1.1 404 Not Found\r\n", 24) == 0);
    free(resp);

    resp = http(port, "POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
    CHECK(strncmp(resp, "HTTP/1.1 405 Method Not Allowed\r\n", 33) == 0);
    CHECK(strstr(resp, "\r\nAllow: GET, HEAD\r\n") != NULL);
    free(resp);

    resp = http(port, "garbage\r\n\r\n");
    CHECK(strncmp(resp, "HTTP/1.1 400 Bad Request\r\n", 26) == 0);
    free(resp);
    resp = http(port, "GET /metrics HTTP/1.1 extra\r\n\r\n");
    CHECK(strncmp(resp, "HTTP/1.1 400 Bad Request\r\n", 26) == 0);
    free(resp);

    /* Oversized: 20 KiB of header without an end. */
    static char big[20000];
    memcpy(big, "GET /metrics HTTP/1.1\r\nX: ", 26);
    memset(big + 26, 'a', sizeof big - 26);
    resp = http_exchange(port, big, sizeof big);
    CHECK(strncmp(resp, "HTTP/1.1 431 ", 13) == 0);
    free(resp);

    /* Slow and idle clients: more than the server serves at once, each sending half a request. A real scrape still
     * gets its answer once their time runs out, and the server closes them itself. */
    enum { IDLE = 20 };
    int idle[IDLE];
    for (int i = 0; i < IDLE; i++) {
        idle[i] = connect_to(port);
        CHECK(idle[i] >= 0);
        if (idle[i] >= 0)
            send(idle[i], "GET /met", 8, MSG_NOSIGNAL);
    }
    int64_t t0 = mono_ms();
    resp = http(port, "GET /metrics HTTP/1.1\r\n\r\n");
    int64_t waited = mono_ms() - t0;
    CHECK(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) == 0);
    CHECK(waited < 11000);
    free(resp);
    for (int i = 0; i < IDLE; i++) {
        if (idle[i] < 0)
            continue;
        char b;
        CHECK(recv(idle[i], &b, 1, 0) == 0); /* closed by the server's deadline, not our 12 s receive timeout */
        close(idle[i]);
    }

    /* A second server on the same port fails with a message. */
    sb_metrics_http *other = NULL;
    r = sb_metrics_http_start(reg, "127.0.0.1", port, &other, err, sizeof err);
    CHECK(r == -EADDRINUSE && other == NULL);
    CHECK(strstr(err, "bind") != NULL);
    r = sb_metrics_http_start(reg, "localhost", 0, &other, err, sizeof err);
    CHECK(r == -EINVAL && strstr(err, "\"localhost\" is not a numeric IP address") != NULL);

    sb_metrics_http_stop(srv);
    CHECK(connect_to(port) < 0); /* the listener is gone */
    sb_metrics_http_stop(NULL);
    sb_metrics_registry_free(reg);
}

int main(void) {
    test_exposition_exact();
    test_errors();
    test_plain();
    test_concurrent_counters();
    test_http();
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("ok\n");
    return 0;
}
