#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* The most fields sb_log_kv() takes; the rest are ignored. Bounds the stack it uses. */
#define SB_LOG_KV_MAX 32

/* Closes a truncated line. Space for it (and for a string's closing quote) is always kept free while formatting. */
static const char truncated_tail[] = ",\"truncated\":true}\n";

/* The logger's process-wide state; see log.h for why it exists. svc is written only by sb_log_init(), which runs
 * before threads; level and fd are atomics so they can change while other threads log. */
static struct {
    char svc[64];
    atomic_int min_level;
    atomic_int fd;
} sb_logger = {
    .svc = "unknown",
    .min_level = SB_LOG_INFO,
    .fd = STDERR_FILENO,
};

typedef struct line_writer {
    char *buf;
    size_t len;
    size_t limit; /* content may grow up to here; the tail and a closing quote fit after it */
    bool full;
} line_writer;

static bool put_raw(line_writer *w, const char *s, size_t n) {
    if (w->full || n > w->limit - w->len) {
        w->full = true;
        return false;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    return true;
}

/* Length of the valid UTF-8 sequence starting at s (at most `left` bytes), or 0 when it is not valid. Rejects
 * overlong forms, surrogates and code points above U+10FFFF. *ret_bad_len is how many bytes to replace by U+FFFD
 * when the sequence is invalid: the lead byte plus any continuation bytes that were still acceptable. */
static size_t utf8_valid_len(const unsigned char *s, size_t left, size_t *ret_bad_len) {
    unsigned char b = s[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF; /* range allowed for the second byte */

    if (b >= 0xC2 && b <= 0xDF)
        need = 2;
    else if (b >= 0xE0 && b <= 0xEF) {
        need = 3;
        if (b == 0xE0)
            lo = 0xA0;
        else if (b == 0xED)
            hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        need = 4;
        if (b == 0xF0)
            lo = 0x90;
        else if (b == 0xF4)
            hi = 0x8F;
    } else {
        *ret_bad_len = 1;
        return 0;
    }

    size_t i = 1;
    for (; i < need && i < left; i++) {
        unsigned char c = s[i];
        bool ok = i == 1 ? (c >= lo && c <= hi) : (c >= 0x80 && c <= 0xBF);
        if (!ok)
            break;
    }
    if (i == need)
        return need;
    *ret_bad_len = i;
    return 0;
}

/* Appends s as the inside of a JSON string. Stops (with w->full set) before the first unit that does not fit, so
 * an escape or a UTF-8 sequence is never cut in half. */
static void put_escaped(line_writer *w, const char *str) {
    const unsigned char *s = (const unsigned char *)str;
    size_t left = strlen(str);

    while (left > 0 && !w->full) {
        unsigned char c = s[0];
        char esc[8];
        const char *out = esc;
        size_t out_len, consumed = 1;

        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            out_len = 2;
        } else if (c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f') {
            esc[0] = '\\';
            esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : c == '\b' ? 'b' : 'f';
            out_len = 2;
        } else if (c < 0x20 || c == 0x7F) {
            snprintf(esc, sizeof esc, "\\u%04x", (unsigned)c);
            out_len = 6;
        } else if (c < 0x80) {
            out = (const char *)s;
            out_len = 1;
        } else {
            size_t bad_len = 1;
            size_t n = utf8_valid_len(s, left, &bad_len);
            if (n > 0) {
                out = (const char *)s;
                out_len = n;
                consumed = n;
            } else {
                out = "\\ufffd";
                out_len = 6;
                consumed = bad_len;
            }
        }
        if (!put_raw(w, out, out_len))
            return;
        s += consumed;
        left -= consumed;
    }
}

/* Appends ,"key":"value" (or without the comma for the first pair). A pair that does not fit at all is rolled
 * back; a string value cut short is closed so the line stays valid JSON. */
static void put_pair(line_writer *w, bool first, const char *key, sb_log_value v) {
    if (w->full)
        return;
    size_t save = w->len;
    bool ok = put_raw(w, first ? "\"" : ",\"", first ? 1 : 2);
    if (ok) {
        put_escaped(w, key);
        ok = !w->full && put_raw(w, "\":", 2);
    }
    if (!ok) {
        w->len = save;
        return;
    }

    char num[32];
    switch (v.type) {
    case SB_LOG_T_STR:
        if (!v.s) {
            ok = put_raw(w, "null", 4);
            break;
        }
        if (!put_raw(w, "\"", 1)) {
            ok = false;
            break;
        }
        put_escaped(w, v.s);
        if (put_raw(w, "\"", 1))
            return;
        /* The limit keeps one byte free for this quote, so a value cut short (or one whose quote just missed the
         * limit) still ends as a valid string; the line is marked full either way. */
        w->buf[w->len++] = '"';
        w->full = true;
        return;
    case SB_LOG_T_INT:
        snprintf(num, sizeof num, "%" PRId64, v.i);
        ok = put_raw(w, num, strlen(num));
        break;
    case SB_LOG_T_UINT:
        snprintf(num, sizeof num, "%" PRIu64, v.u);
        ok = put_raw(w, num, strlen(num));
        break;
    case SB_LOG_T_BOOL:
        ok = v.b ? put_raw(w, "true", 4) : put_raw(w, "false", 5);
        break;
    default:
        ok = put_raw(w, "null", 4);
        break;
    }
    if (!ok)
        w->len = save;
}

const char *sb_log_level_name(sb_log_level level) {
    switch (level) {
    case SB_LOG_DEBUG:
        return "debug";
    case SB_LOG_INFO:
        return "info";
    case SB_LOG_WARN:
        return "warn";
    case SB_LOG_ERROR:
        return "error";
    }
    return "error";
}

int sb_log_level_parse(const char *text, sb_log_level *ret_level) {
    static const struct {
        const char *name;
        sb_log_level level;
    } names[] = {
        {"debug", SB_LOG_DEBUG}, {"info", SB_LOG_INFO},   {"warn", SB_LOG_WARN},
        {"warning", SB_LOG_WARN}, {"error", SB_LOG_ERROR},
    };
    if (!text)
        return -EINVAL;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(text, names[i].name) == 0) {
            *ret_level = names[i].level;
            return 0;
        }
    return -EINVAL;
}

size_t sb_log_format(char *buf, size_t size, int64_t ts_ms, sb_log_level level, const char *event, const char *msg,
                     const sb_log_field *fields, size_t n_fields) {
    size_t total = size - 1 < SB_LOG_LINE_MAX ? size - 1 : SB_LOG_LINE_MAX;
    line_writer w = {.buf = buf, .len = 0, .limit = total - (sizeof truncated_tail - 1) - 1};

    int64_t secs = ts_ms >= 0 ? ts_ms / 1000 : (ts_ms - 999) / 1000;
    int ms = (int)(ts_ms - secs * 1000);
    time_t t = (time_t)secs;
    struct tm tm;
    char ts[64];
    if (gmtime_r(&t, &tm))
        snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                 tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
    else
        snprintf(ts, sizeof ts, "invalid");

    put_raw(&w, "{", 1);
    put_pair(&w, true, "ts", SB_LOG_STR(ts));
    put_pair(&w, false, "level", SB_LOG_STR(sb_log_level_name(level)));
    put_pair(&w, false, "svc", SB_LOG_STR(sb_logger.svc));
    put_pair(&w, false, "event", SB_LOG_STR(event ? event : ""));
    put_pair(&w, false, "msg", SB_LOG_STR(msg ? msg : ""));
    for (size_t i = 0; i < n_fields; i++)
        if (fields[i].key)
            put_pair(&w, false, fields[i].key, fields[i].value);

    if (w.full) {
        memcpy(buf + w.len, truncated_tail, sizeof truncated_tail - 1);
        w.len += sizeof truncated_tail - 1;
    } else {
        buf[w.len++] = '}';
        buf[w.len++] = '\n';
    }
    buf[w.len] = '\0';
    return w.len;
}

void sb_log_init(const char *service_name, sb_log_level min_level, int fd) {
    snprintf(sb_logger.svc, sizeof sb_logger.svc, "%s", service_name ? service_name : "unknown");
    atomic_store(&sb_logger.min_level, (int)min_level);
    atomic_store(&sb_logger.fd, fd < 0 ? STDERR_FILENO : fd);
}

void sb_log_set_level(sb_log_level min_level) {
    atomic_store(&sb_logger.min_level, (int)min_level);
}

bool sb_log_enabled(sb_log_level level) {
    return (int)level >= atomic_load_explicit(&sb_logger.min_level, memory_order_relaxed);
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void emit(const char *line, size_t len) {
    int fd = atomic_load_explicit(&sb_logger.fd, memory_order_relaxed);
    /* One write(2) normally carries the whole line; the loop only finishes a write a signal interrupted. */
    while (len > 0) {
        ssize_t n = write(fd, line, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return; /* Nowhere better to report a failing log fd. */
        }
        line += n;
        len -= (size_t)n;
    }
}

void sb_log_fields(sb_log_level level, const char *event, const char *msg, const sb_log_field *fields,
                   size_t n_fields) {
    if (!sb_log_enabled(level))
        return;
    int saved_errno = errno; /* Logging must not disturb the caller's errno. */
    char line[SB_LOG_LINE_MAX + 1];
    size_t len = sb_log_format(line, sizeof line, now_ms(), level, event, msg, fields, n_fields);
    emit(line, len);
    errno = saved_errno;
}

void sb_log(sb_log_level level, const char *event, const char *fmt_msg, ...) {
    if (!sb_log_enabled(level))
        return;
    int saved_errno = errno;
    char msg[SB_LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt_msg);
    vsnprintf(msg, sizeof msg, fmt_msg, ap);
    va_end(ap);
    errno = saved_errno; /* vsnprintf may clobber it; the caller keeps its value, and %m above saw it too. */
    sb_log_fields(level, event, msg, NULL, 0);
}

void sb_log_kv(sb_log_level level, const char *event, const char *msg, ...) {
    if (!sb_log_enabled(level))
        return;
    sb_log_field fields[SB_LOG_KV_MAX];
    size_t n = 0;
    va_list ap;
    va_start(ap, msg);
    for (;;) {
        const char *key = va_arg(ap, const char *);
        if (!key)
            break;
        sb_log_value v = va_arg(ap, sb_log_value);
        if (n < SB_LOG_KV_MAX)
            fields[n++] = (sb_log_field){.key = key, .value = v};
    }
    va_end(ap);
    sb_log_fields(level, event, msg, fields, n);
}
