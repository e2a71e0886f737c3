/* sb_metrics: counters, gauges and histograms with labels, exposed in the Prometheus text format 0.0.4.
 *
 * A registry holds metric families declared up front (name, help, type, label names, histogram buckets) and, for
 * each, the series (one per distinct set of label values) created on first use. Updates are lock-free atomic
 * operations on the series; finding a series takes a read lock, creating one a write lock. The number of series is
 * bounded: beyond the registry's limit a new label set is refused with -ENOSPC (and counted in
 * sharebuy_metrics_series_refused_total) so a client cannot exhaust memory by sending new method names.
 *
 * Values are integers. A histogram's bounds and observations are integers in a fixed sub-unit given by
 * scale_digits (6: microseconds of a metric exposed in seconds), and only the exposition prints them as decimals.
 *
 * Every registry predeclares the RPC families fed by sb_metrics_rpc_observe():
 *     sharebuy_rpc_requests_total{method,code}   counter
 *     sharebuy_rpc_errors_total{method,code}     counter, calls whose status is not OK
 *     sharebuy_rpc_latency_seconds{method}       histogram, buckets 0.0005 s .. 10 s
 * where code is the gRPC status name ("OK", "NOT_FOUND", ...).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SB_METRICS_LABELS_MAX 4          /* label names per family */
#define SB_METRICS_BUCKETS_MAX 32        /* finite bucket bounds per histogram (+Inf is implicit) */
#define SB_METRICS_LABEL_VALUE_MAX 256   /* bytes in one label value */
#define SB_METRICS_SERIES_DEFAULT 10000  /* series limit when sb_metrics_registry_new() is given 0 */

typedef enum sb_metrics_type {
    SB_METRICS_COUNTER,
    SB_METRICS_GAUGE,
    SB_METRICS_HISTOGRAM,
} sb_metrics_type;

typedef struct sb_metrics_desc {
    const char *name;               /* [a-zA-Z_:][a-zA-Z0-9_:]* */
    const char *help;               /* one line; may be NULL */
    sb_metrics_type type;
    const char *const *label_names; /* n_labels names, [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__", not "le" */
    size_t n_labels;
    const int64_t *bounds;          /* histogram only: n_bounds strictly increasing upper bounds, in sub-units */
    size_t n_bounds;
    unsigned scale_digits;          /* histogram only: sub-units per exposed unit are 10^scale_digits (at most 9) */
} sb_metrics_desc;

typedef struct sb_metrics_registry sb_metrics_registry;
typedef struct sb_metrics_series sb_metrics_series;
typedef struct sb_metrics_http sb_metrics_http;

/* Creates a registry with the RPC families declared, holding at most max_series series (0 for
 * SB_METRICS_SERIES_DEFAULT). Returns 0 and the registry in *ret, or -ENOMEM. Free it with
 * sb_metrics_registry_free() after stopping any HTTP server that serves it. */
int sb_metrics_registry_new(size_t max_series, sb_metrics_registry **ret);

/* Frees the registry, its families and series; NULL is allowed. No other thread may be using it. */
void sb_metrics_registry_free(sb_metrics_registry *reg);

/* Declares a family; the description is copied. Declaring the same name again with an identical description
 * returns 0; with a different one, -EEXIST. Returns -EINVAL for an invalid name, label name, bucket list or scale,
 * -ENOMEM when out of memory. Safe from any thread, but meant for start-up. */
int sb_metrics_declare(sb_metrics_registry *reg, const sb_metrics_desc *desc);

/* Finds or creates the series of family name for label_values (n_values of them, in the family's label order) and
 * stores it in *ret; the series lives as long as the registry, so hot paths can keep it. Returns -ENOENT when the
 * family is not declared, -EINVAL when n_values differs from the family's label count or a value is longer than
 * SB_METRICS_LABEL_VALUE_MAX or not valid UTF-8, -ENOSPC when the series limit is reached, -ENOMEM. */
int sb_metrics_series_get(sb_metrics_registry *reg, const char *name, const char *const *label_values,
                          size_t n_values, sb_metrics_series **ret);

/* Declares a family without labels of the given type (a counter or a gauge) and stores its one series in *ret: what
 * a service keeps for a plain count. Returns what sb_metrics_declare() or sb_metrics_series_get() return; *ret is
 * untouched on failure. */
int sb_metrics_plain(sb_metrics_registry *reg, const char *name, const char *help, sb_metrics_type type,
                     sb_metrics_series **ret);

/* Adds delta to a counter (delta must be >= 0) or a gauge. Lock-free. Asserts on a histogram series. */
void sb_metrics_series_add(sb_metrics_series *series, int64_t delta);

/* Sets a gauge. Lock-free. Asserts on any other type. */
void sb_metrics_series_set(sb_metrics_series *series, int64_t value);

/* Records one observation (in the histogram's sub-units) into a histogram. Lock-free. Asserts on other types. */
void sb_metrics_series_observe(sb_metrics_series *series, int64_t value);

/* sb_metrics_series_get() then add, set or observe. They return what sb_metrics_series_get() returns, and -EINVAL
 * when the family has another type (or for a negative counter delta); nothing is recorded on failure. */
int sb_metrics_counter_add(sb_metrics_registry *reg, const char *name, const char *const *label_values,
                           size_t n_values, uint64_t delta);
int sb_metrics_gauge_set(sb_metrics_registry *reg, const char *name, const char *const *label_values,
                         size_t n_values, int64_t value);
int sb_metrics_gauge_add(sb_metrics_registry *reg, const char *name, const char *const *label_values,
                         size_t n_values, int64_t delta);
int sb_metrics_histogram_observe(sb_metrics_registry *reg, const char *name, const char *const *label_values,
                                 size_t n_values, int64_t value);

/* Records one finished RPC: counts it in sharebuy_rpc_requests_total{method,code}, also in
 * sharebuy_rpc_errors_total when grpc_status_code is not 0, and observes latency_us (negative counts as 0) in
 * sharebuy_rpc_latency_seconds{method}. Codes outside 0..16 are labelled with their number. Returns 0, or the
 * first error of the lookups (-EINVAL, -ENOSPC, -ENOMEM); the caller normally ignores it. */
int sb_metrics_rpc_observe(sb_metrics_registry *reg, const char *method, int grpc_status_code, int64_t latency_us);

/* Renders the registry in the Prometheus text format 0.0.4: families in declaration order, each with # HELP (when
 * it has help) and # TYPE, its series sorted by label values. Returns 0 with a NUL-terminated malloc'd text in
 * *ret_text (the caller frees it) and its length in *ret_len, or -ENOMEM. */
int sb_metrics_render(sb_metrics_registry *reg, char **ret_text, size_t *ret_len);

/* Starts an HTTP/1.1 server on its own thread, listening on bind_addr (a numeric IPv4 or IPv6 address such as
 * "127.0.0.1", "0.0.0.0" or "::") and port (0 for an ephemeral port; see sb_metrics_http_port()). It answers
 * GET and HEAD of /metrics with 200 and the rendered registry, other paths with 404, other methods with 405, and
 * malformed requests with 400; oversized requests get 431. Every connection has a time limit and a bounded buffer,
 * a bounded number are served at once, and each response closes its connection. The thread blocks all signals.
 * Returns 0 and the server in *ret, or a negative errno with a message in err (size err_size), e.g. -EADDRINUSE.
 * The registry must outlive the server. */
int sb_metrics_http_start(sb_metrics_registry *reg, const char *bind_addr, int port, sb_metrics_http **ret,
                          char *err, size_t err_size);

/* The port the server is bound to (useful after asking for port 0). */
int sb_metrics_http_port(const sb_metrics_http *http);

/* Stops the server: wakes its thread, waits for it, closes every connection and frees it. NULL is allowed. */
void sb_metrics_http_stop(sb_metrics_http *http);
