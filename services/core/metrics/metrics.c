#include "metrics.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct family {
    char *name;
    char *help;
    sb_metrics_type type;
    size_t n_labels;
    char *label_names[SB_METRICS_LABELS_MAX];
    size_t n_bounds;
    int64_t bounds[SB_METRICS_BUCKETS_MAX];
    unsigned scale_digits;
    sb_metrics_series **series; /* in creation order; sorted only when rendering */
    size_t n_series, cap_series;
} family;

struct sb_metrics_series {
    family *fam;
    sb_metrics_series *next_in_bucket;
    uint64_t hash;
    char *values[SB_METRICS_LABELS_MAX];
    _Atomic uint64_t counter;
    _Atomic int64_t gauge;
    _Atomic int64_t sum;        /* histogram: sum of observations, in sub-units */
    _Atomic uint64_t buckets[]; /* histogram: n_bounds + 1 non-cumulative counts, the last for +Inf */
};

struct sb_metrics_registry {
    /* Guards the family list, every family's series list and the hash table; never the values, which are atomic. */
    pthread_rwlock_t lock;
    family **families;
    size_t n_families, cap_families;
    sb_metrics_series **table; /* chained hash of every series, table_size a power of two */
    size_t table_size;
    size_t n_series, max_series;
    family *rpc_requests, *rpc_errors, *rpc_latency;
    sb_metrics_series *refused;
};

static const int64_t rpc_latency_bounds_us[] = {
    500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
};

static const char *const grpc_code_names[] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

static bool valid_name(const char *s, bool allow_colon) {
    if (!s || !*s)
        return false;
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (allow_colon && c == ':') ||
                  (i > 0 && c >= '0' && c <= '9');
        if (!ok || i >= 200)
            return false;
    }
    return true;
}

/* Prometheus requires label values to be UTF-8; strict check without overlongs, surrogates or > U+10FFFF. */
static bool valid_utf8(const char *str) {
    const unsigned char *s = (const unsigned char *)str;
    while (*s) {
        unsigned char b = *s;
        int need;
        unsigned lo = 0x80, hi = 0xBF;
        if (b < 0x80) {
            s++;
            continue;
        } else if (b >= 0xC2 && b <= 0xDF)
            need = 1;
        else if (b >= 0xE0 && b <= 0xEF) {
            need = 2;
            lo = b == 0xE0 ? 0xA0 : 0x80;
            hi = b == 0xED ? 0x9F : 0xBF;
        } else if (b >= 0xF0 && b <= 0xF4) {
            need = 3;
            lo = b == 0xF0 ? 0x90 : 0x80;
            hi = b == 0xF4 ? 0x8F : 0xBF;
        } else
            return false;
        s++;
        for (int i = 0; i < need; i++, s++) {
            unsigned c = *s;
            if (i == 0 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF))
                return false;
        }
    }
    return true;
}

static void family_free(family *f) {
    if (!f)
        return;
    for (size_t i = 0; i < f->n_series; i++) {
        for (size_t j = 0; j < f->n_labels; j++)
            free(f->series[i]->values[j]);
        free(f->series[i]);
    }
    free(f->series);
    for (size_t j = 0; j < f->n_labels; j++)
        free(f->label_names[j]);
    free(f->name);
    free(f->help);
    free(f);
}

static family *find_family(const sb_metrics_registry *reg, const char *name) {
    for (size_t i = 0; i < reg->n_families; i++)
        if (strcmp(reg->families[i]->name, name) == 0)
            return reg->families[i];
    return NULL;
}

static bool same_desc(const family *f, const sb_metrics_desc *d) {
    if (f->type != d->type || f->n_labels != d->n_labels || strcmp(f->help, d->help ? d->help : "") != 0)
        return false;
    for (size_t i = 0; i < f->n_labels; i++)
        if (strcmp(f->label_names[i], d->label_names[i]) != 0)
            return false;
    if (f->type == SB_METRICS_HISTOGRAM &&
        (f->n_bounds != d->n_bounds || f->scale_digits != d->scale_digits ||
         memcmp(f->bounds, d->bounds, d->n_bounds * sizeof d->bounds[0]) != 0))
        return false;
    return true;
}

static int check_desc(const sb_metrics_desc *d) {
    if (!valid_name(d->name, true) || (unsigned)d->type > SB_METRICS_HISTOGRAM || d->n_labels > SB_METRICS_LABELS_MAX)
        return -EINVAL;
    if (d->help && strchr(d->help, '\n'))
        return -EINVAL;
    for (size_t i = 0; i < d->n_labels; i++) {
        const char *l = d->label_names[i];
        if (!valid_name(l, false) || strncmp(l, "__", 2) == 0 ||
            (d->type == SB_METRICS_HISTOGRAM && strcmp(l, "le") == 0))
            return -EINVAL;
        for (size_t j = 0; j < i; j++)
            if (strcmp(l, d->label_names[j]) == 0)
                return -EINVAL;
    }
    if (d->type == SB_METRICS_HISTOGRAM) {
        if (d->n_bounds == 0 || d->n_bounds > SB_METRICS_BUCKETS_MAX || d->scale_digits > 9)
            return -EINVAL;
        for (size_t i = 1; i < d->n_bounds; i++)
            if (d->bounds[i] <= d->bounds[i - 1])
                return -EINVAL;
    }
    return 0;
}

/* Adds a family; the caller holds the write lock. */
static int add_family_locked(sb_metrics_registry *reg, const sb_metrics_desc *d, family **ret) {
    family *existing = find_family(reg, d->name);
    if (existing) {
        if (!same_desc(existing, d))
            return -EEXIST;
        if (ret)
            *ret = existing;
        return 0;
    }
    if (reg->n_families == reg->cap_families) {
        size_t cap = reg->cap_families ? 2 * reg->cap_families : 16;
        family **p = realloc(reg->families, cap * sizeof *p);
        if (!p)
            return -ENOMEM;
        reg->families = p;
        reg->cap_families = cap;
    }
    family *f = calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    f->type = d->type;
    f->name = strdup(d->name);
    f->help = strdup(d->help ? d->help : "");
    bool oom = !f->name || !f->help;
    for (size_t i = 0; i < d->n_labels; i++) {
        f->label_names[i] = strdup(d->label_names[i]);
        f->n_labels = i + 1;
        oom = oom || !f->label_names[i];
    }
    if (oom) {
        family_free(f);
        return -ENOMEM;
    }
    if (d->type == SB_METRICS_HISTOGRAM) {
        f->n_bounds = d->n_bounds;
        memcpy(f->bounds, d->bounds, d->n_bounds * sizeof d->bounds[0]);
        f->scale_digits = d->scale_digits;
    }
    reg->families[reg->n_families++] = f;
    if (ret)
        *ret = f;
    return 0;
}

int sb_metrics_declare(sb_metrics_registry *reg, const sb_metrics_desc *desc) {
    int r = check_desc(desc);
    if (r < 0)
        return r;
    pthread_rwlock_wrlock(&reg->lock);
    r = add_family_locked(reg, desc, NULL);
    pthread_rwlock_unlock(&reg->lock);
    return r;
}

static uint64_t series_hash(const family *f, const char *const *values) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a over the family's address and the values, each ended by 0xff */
    uintptr_t p = (uintptr_t)f;
    for (size_t i = 0; i < sizeof p; i++) {
        h ^= (p >> (8 * i)) & 0xff;
        h *= 1099511628211ull;
    }
    for (size_t i = 0; i < f->n_labels; i++) {
        for (const unsigned char *s = (const unsigned char *)values[i]; *s; s++) {
            h ^= *s;
            h *= 1099511628211ull;
        }
        h ^= 0xff;
        h *= 1099511628211ull;
    }
    return h;
}

static sb_metrics_series *find_series_locked(const sb_metrics_registry *reg, const family *f,
                                             const char *const *values, uint64_t h) {
    for (sb_metrics_series *s = reg->table[h & (reg->table_size - 1)]; s; s = s->next_in_bucket) {
        if (s->hash != h || s->fam != f)
            continue;
        size_t i = 0;
        while (i < f->n_labels && strcmp(s->values[i], values[i]) == 0)
            i++;
        if (i == f->n_labels)
            return s;
    }
    return NULL;
}

/* Creates a series; the caller holds the write lock. The refused counter itself is created with force. */
static int create_series_locked(sb_metrics_registry *reg, family *f, const char *const *values, uint64_t h,
                                bool force, sb_metrics_series **ret) {
    if (!force && reg->n_series >= reg->max_series)
        return -ENOSPC;
    if (f->n_series == f->cap_series) {
        size_t cap = f->cap_series ? 2 * f->cap_series : 8;
        sb_metrics_series **p = realloc(f->series, cap * sizeof *p);
        if (!p)
            return -ENOMEM;
        f->series = p;
        f->cap_series = cap;
    }
    size_t n_buckets = f->type == SB_METRICS_HISTOGRAM ? f->n_bounds + 1 : 0;
    sb_metrics_series *s = calloc(1, sizeof *s + n_buckets * sizeof s->buckets[0]);
    if (!s)
        return -ENOMEM;
    for (size_t i = 0; i < f->n_labels; i++) {
        s->values[i] = strdup(values[i]);
        if (!s->values[i]) {
            for (size_t j = 0; j < i; j++)
                free(s->values[j]);
            free(s);
            return -ENOMEM;
        }
    }
    s->fam = f;
    s->hash = h;
    size_t b = h & (reg->table_size - 1);
    s->next_in_bucket = reg->table[b];
    reg->table[b] = s;
    f->series[f->n_series++] = s;
    reg->n_series++;
    *ret = s;
    return 0;
}

static int get_series(sb_metrics_registry *reg, family *f, const char *const *values, size_t n_values,
                      sb_metrics_series **ret) {
    if (n_values != f->n_labels)
        return -EINVAL;
    for (size_t i = 0; i < n_values; i++)
        if (!values[i] || strlen(values[i]) > SB_METRICS_LABEL_VALUE_MAX || !valid_utf8(values[i]))
            return -EINVAL;

    uint64_t h = series_hash(f, values);
    pthread_rwlock_rdlock(&reg->lock);
    sb_metrics_series *s = find_series_locked(reg, f, values, h);
    pthread_rwlock_unlock(&reg->lock);
    if (s) {
        *ret = s;
        return 0;
    }

    pthread_rwlock_wrlock(&reg->lock);
    int r = 0;
    s = find_series_locked(reg, f, values, h); /* another thread may have created it meanwhile */
    if (!s)
        r = create_series_locked(reg, f, values, h, false, &s);
    pthread_rwlock_unlock(&reg->lock);
    if (r == -ENOSPC)
        atomic_fetch_add_explicit(&reg->refused->counter, 1, memory_order_relaxed);
    if (r < 0)
        return r;
    *ret = s;
    return 0;
}

static family *lookup_family(sb_metrics_registry *reg, const char *name) {
    pthread_rwlock_rdlock(&reg->lock);
    family *f = find_family(reg, name);
    pthread_rwlock_unlock(&reg->lock);
    return f;
}

int sb_metrics_series_get(sb_metrics_registry *reg, const char *name, const char *const *label_values,
                          size_t n_values, sb_metrics_series **ret) {
    family *f = lookup_family(reg, name);
    if (!f)
        return -ENOENT;
    return get_series(reg, f, label_values, n_values, ret);
}

int sb_metrics_plain(sb_metrics_registry *reg, const char *name, const char *help, sb_metrics_type type,
                     sb_metrics_series **ret) {
    sb_metrics_desc d = {.name = name, .help = help, .type = type};
    int r = sb_metrics_declare(reg, &d);
    if (r < 0)
        return r;
    return sb_metrics_series_get(reg, name, NULL, 0, ret);
}

void sb_metrics_series_add(sb_metrics_series *series, int64_t delta) {
    if (series->fam->type == SB_METRICS_COUNTER) {
        assert(delta >= 0);
        atomic_fetch_add_explicit(&series->counter, (uint64_t)delta, memory_order_relaxed);
    } else {
        assert(series->fam->type == SB_METRICS_GAUGE);
        atomic_fetch_add_explicit(&series->gauge, delta, memory_order_relaxed);
    }
}

void sb_metrics_series_set(sb_metrics_series *series, int64_t value) {
    assert(series->fam->type == SB_METRICS_GAUGE);
    atomic_store_explicit(&series->gauge, value, memory_order_relaxed);
}

void sb_metrics_series_observe(sb_metrics_series *series, int64_t value) {
    const family *f = series->fam;
    assert(f->type == SB_METRICS_HISTOGRAM);
    /* Buckets are few (at most 32), so a linear scan beats a binary search's branches. */
    size_t b = 0;
    while (b < f->n_bounds && value > f->bounds[b])
        b++;
    atomic_fetch_add_explicit(&series->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&series->sum, value, memory_order_relaxed);
}

static int typed_series(sb_metrics_registry *reg, const char *name, sb_metrics_type type, const char *const *values,
                        size_t n_values, sb_metrics_series **ret) {
    family *f = lookup_family(reg, name);
    if (!f)
        return -ENOENT;
    if (f->type != type)
        return -EINVAL;
    return get_series(reg, f, values, n_values, ret);
}

int sb_metrics_counter_add(sb_metrics_registry *reg, const char *name, const char *const *label_values,
                           size_t n_values, uint64_t delta) {
    sb_metrics_series *s;
    int r = typed_series(reg, name, SB_METRICS_COUNTER, label_values, n_values, &s);
    if (r < 0)
        return r;
    atomic_fetch_add_explicit(&s->counter, delta, memory_order_relaxed);
    return 0;
}

int sb_metrics_gauge_set(sb_metrics_registry *reg, const char *name, const char *const *label_values,
                         size_t n_values, int64_t value) {
    sb_metrics_series *s;
    int r = typed_series(reg, name, SB_METRICS_GAUGE, label_values, n_values, &s);
    if (r < 0)
        return r;
    sb_metrics_series_set(s, value);
    return 0;
}

int sb_metrics_gauge_add(sb_metrics_registry *reg, const char *name, const char *const *label_values,
                         size_t n_values, int64_t delta) {
    sb_metrics_series *s;
    int r = typed_series(reg, name, SB_METRICS_GAUGE, label_values, n_values, &s);
    if (r < 0)
        return r;
    sb_metrics_series_add(s, delta);
    return 0;
}

int sb_metrics_histogram_observe(sb_metrics_registry *reg, const char *name, const char *const *label_values,
                                 size_t n_values, int64_t value) {
    sb_metrics_series *s;
    int r = typed_series(reg, name, SB_METRICS_HISTOGRAM, label_values, n_values, &s);
    if (r < 0)
        return r;
    sb_metrics_series_observe(s, value);
    return 0;
}

int sb_metrics_rpc_observe(sb_metrics_registry *reg, const char *method, int grpc_status_code, int64_t latency_us) {
    char num[16];
    const char *code = grpc_code_names[0];
    if (grpc_status_code >= 0 && (size_t)grpc_status_code < sizeof grpc_code_names / sizeof grpc_code_names[0])
        code = grpc_code_names[grpc_status_code];
    else {
        snprintf(num, sizeof num, "%d", grpc_status_code);
        code = num;
    }
    const char *labels[] = {method, code};
    sb_metrics_series *s;

    /* The three families are fixed at creation, so their pointers need no lock. */
    int r = get_series(reg, reg->rpc_requests, labels, 2, &s);
    if (r < 0)
        return r;
    atomic_fetch_add_explicit(&s->counter, 1, memory_order_relaxed);
    if (grpc_status_code != 0) {
        r = get_series(reg, reg->rpc_errors, labels, 2, &s);
        if (r < 0)
            return r;
        atomic_fetch_add_explicit(&s->counter, 1, memory_order_relaxed);
    }
    r = get_series(reg, reg->rpc_latency, labels, 1, &s);
    if (r < 0)
        return r;
    sb_metrics_series_observe(s, latency_us < 0 ? 0 : latency_us);
    return 0;
}

int sb_metrics_registry_new(size_t max_series, sb_metrics_registry **ret) {
    sb_metrics_registry *reg = calloc(1, sizeof *reg);
    if (!reg)
        return -ENOMEM;
    reg->max_series = max_series ? max_series : SB_METRICS_SERIES_DEFAULT;
    reg->table_size = 64;
    while (reg->table_size < reg->max_series && reg->table_size < ((size_t)1 << 20))
        reg->table_size *= 2;
    reg->table = calloc(reg->table_size, sizeof *reg->table);
    if (!reg->table || pthread_rwlock_init(&reg->lock, NULL) != 0) {
        free(reg->table);
        free(reg);
        return -ENOMEM;
    }

    static const char *const method_code[] = {"method", "code"};
    static const char *const method[] = {"method"};
    const sb_metrics_desc descs[] = {
        {.name = "sharebuy_rpc_requests_total", .help = "RPCs finished, by method and status code.",
         .type = SB_METRICS_COUNTER, .label_names = method_code, .n_labels = 2},
        {.name = "sharebuy_rpc_errors_total", .help = "RPCs finished with a status other than OK.",
         .type = SB_METRICS_COUNTER, .label_names = method_code, .n_labels = 2},
        {.name = "sharebuy_rpc_latency_seconds", .help = "Time from the request's arrival to its status, by method.",
         .type = SB_METRICS_HISTOGRAM, .label_names = method, .n_labels = 1, .bounds = rpc_latency_bounds_us,
         .n_bounds = sizeof rpc_latency_bounds_us / sizeof rpc_latency_bounds_us[0], .scale_digits = 6},
        {.name = "sharebuy_metrics_series_refused_total",
         .help = "New label sets refused because the registry's series limit was reached.",
         .type = SB_METRICS_COUNTER},
    };
    family *f[4];
    int r = 0;
    for (size_t i = 0; i < 4 && r == 0; i++)
        r = add_family_locked(reg, &descs[i], &f[i]);
    if (r == 0)
        r = create_series_locked(reg, f[3], NULL, series_hash(f[3], NULL), true, &reg->refused);
    if (r < 0) {
        sb_metrics_registry_free(reg);
        return r;
    }
    reg->n_series = 0; /* the refused counter does not count against the limit */
    reg->rpc_requests = f[0];
    reg->rpc_errors = f[1];
    reg->rpc_latency = f[2];
    *ret = reg;
    return 0;
}

void sb_metrics_registry_free(sb_metrics_registry *reg) {
    if (!reg)
        return;
    for (size_t i = 0; i < reg->n_families; i++)
        family_free(reg->families[i]);
    free(reg->families);
    free(reg->table);
    pthread_rwlock_destroy(&reg->lock);
    free(reg);
}

/* ---- exposition ---- */

/* Formats v / 10^digits as a decimal without trailing zeros ("0.0005", "2.5", "10") into buf. */
static void format_scaled(char *buf, size_t size, int64_t v, unsigned digits) {
    uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    uint64_t div = 1;
    for (unsigned i = 0; i < digits; i++)
        div *= 10;
    uint64_t ip = mag / div, fp = mag % div;
    int n = snprintf(buf, size, "%s%" PRIu64, v < 0 ? "-" : "", ip);
    if (fp == 0 || n < 0 || (size_t)n >= size)
        return;
    char frac[24];
    snprintf(frac, sizeof frac, "%0*" PRIu64, (int)digits, fp);
    size_t fl = strlen(frac);
    while (fl > 0 && frac[fl - 1] == '0')
        fl--;
    snprintf(buf + n, size - (size_t)n, ".%.*s", (int)fl, frac);
}

static void put_escaped(FILE *out, const char *s, bool quote) {
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\\\", out);
        else if (*s == '\n')
            fputs("\\n", out);
        else if (quote && *s == '"')
            fputs("\\\"", out);
        else
            fputc(*s, out);
    }
}

/* Writes {a="x",b="y"} with an optional extra le="..." label; nothing when there are no labels at all. */
static void put_labels(FILE *out, const family *f, const sb_metrics_series *s, const char *le) {
    if (f->n_labels == 0 && !le)
        return;
    fputc('{', out);
    for (size_t i = 0; i < f->n_labels; i++) {
        fprintf(out, "%s%s=\"", i ? "," : "", f->label_names[i]);
        put_escaped(out, s->values[i], true);
        fputc('"', out);
    }
    if (le)
        fprintf(out, "%sle=\"%s\"", f->n_labels ? "," : "", le);
    fputc('}', out);
}

static int compare_series(const void *a, const void *b) {
    const sb_metrics_series *x = *(sb_metrics_series *const *)a, *y = *(sb_metrics_series *const *)b;
    for (size_t i = 0; i < x->fam->n_labels; i++) {
        int c = strcmp(x->values[i], y->values[i]);
        if (c)
            return c;
    }
    return 0;
}

static const char *type_name(sb_metrics_type t) {
    return t == SB_METRICS_COUNTER ? "counter" : t == SB_METRICS_GAUGE ? "gauge" : "histogram";
}

static void render_family(FILE *out, const family *f) {
    if (*f->help) {
        fprintf(out, "# HELP %s ", f->name);
        put_escaped(out, f->help, false);
        fputc('\n', out);
    }
    fprintf(out, "# TYPE %s %s\n", f->name, type_name(f->type));
    /* Sort a copy: the caller holds only the read lock. Without memory for it, print in creation order. */
    sb_metrics_series **sorted = f->n_series ? malloc(f->n_series * sizeof *sorted) : NULL;
    if (sorted) {
        memcpy(sorted, f->series, f->n_series * sizeof *sorted);
        qsort(sorted, f->n_series, sizeof *sorted, compare_series);
    }
    for (size_t i = 0; i < f->n_series; i++) {
        const sb_metrics_series *s = sorted ? sorted[i] : f->series[i];
        if (f->type == SB_METRICS_COUNTER) {
            fputs(f->name, out);
            put_labels(out, f, s, NULL);
            fprintf(out, " %" PRIu64 "\n", atomic_load_explicit(&s->counter, memory_order_relaxed));
        } else if (f->type == SB_METRICS_GAUGE) {
            fputs(f->name, out);
            put_labels(out, f, s, NULL);
            fprintf(out, " %" PRId64 "\n", atomic_load_explicit(&s->gauge, memory_order_relaxed));
        } else {
            /* _count is the +Inf bucket's cumulative value, so the two always agree even under concurrent updates. */
            uint64_t cumulative = 0;
            for (size_t b = 0; b <= f->n_bounds; b++) {
                cumulative += atomic_load_explicit(&s->buckets[b], memory_order_relaxed);
                char le[48];
                if (b < f->n_bounds)
                    format_scaled(le, sizeof le, f->bounds[b], f->scale_digits);
                else
                    snprintf(le, sizeof le, "+Inf");
                fprintf(out, "%s_bucket", f->name);
                put_labels(out, f, s, le);
                fprintf(out, " %" PRIu64 "\n", cumulative);
            }
            fprintf(out, "%s_sum", f->name);
            put_labels(out, f, s, NULL);
            char sum[48];
            format_scaled(sum, sizeof sum, atomic_load_explicit(&s->sum, memory_order_relaxed), f->scale_digits);
            fprintf(out, " %s\n%s_count", sum, f->name);
            put_labels(out, f, s, NULL);
            fprintf(out, " %" PRIu64 "\n", cumulative);
        }
    }
    free(sorted);
}

int sb_metrics_render(sb_metrics_registry *reg, char **ret_text, size_t *ret_len) {
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out)
        return -ENOMEM;
    pthread_rwlock_rdlock(&reg->lock);
    for (size_t i = 0; i < reg->n_families; i++)
        render_family(out, reg->families[i]);
    pthread_rwlock_unlock(&reg->lock);
    bool failed = ferror(out) != 0;
    if (fclose(out) != 0 || failed) {
        free(text);
        return -ENOMEM;
    }
    *ret_text = text;
    *ret_len = len;
    return 0;
}
