/* sb_log: one JSON object per line per event.
 *
 *     {"ts":"2026-11-22T01:40:21.123Z","level":"info","svc":"wallet","event":"rpc","msg":"...","method":"..."}
 *
 * Every string (message, field names, field values) is JSON-escaped: quotes, backslashes and control characters
 * are escaped, and bytes that are not valid UTF-8 are replaced by U+FFFD, so a line always parses. A line is at
 * most SB_LOG_LINE_MAX bytes including its newline; a longer event is cut and ends with "truncated":true.
 *
 * Global state: the logger is the one piece of process-wide state in the runtime (service name, minimum level and
 * output fd), because every layer may log and threading a logger through every call would buy nothing. It is set
 * once by sb_log_init() before threads start; the level and fd are atomics so they may also be changed later.
 * Each line is formatted on the caller's stack and written with a single write(2), so lines from concurrent threads
 * never interleave (a line fits in PIPE_BUF, so this holds for pipes too).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest line written, newline included. Equal to Linux's PIPE_BUF so writes to a pipe are atomic. */
#define SB_LOG_LINE_MAX 4096

typedef enum sb_log_level {
    SB_LOG_DEBUG = 0,
    SB_LOG_INFO = 1,
    SB_LOG_WARN = 2,
    SB_LOG_ERROR = 3,
} sb_log_level;

typedef enum sb_log_value_type {
    SB_LOG_T_STR,
    SB_LOG_T_INT,
    SB_LOG_T_UINT,
    SB_LOG_T_BOOL,
} sb_log_value_type;

/* A field value, made with the SB_LOG_* macros below. A NULL string is written as JSON null. */
typedef struct sb_log_value {
    sb_log_value_type type;
    union {
        const char *s;
        int64_t i;
        uint64_t u;
        bool b;
    };
} sb_log_value;

#define SB_LOG_STR(x) ((sb_log_value){.type = SB_LOG_T_STR, .s = (x)})
#define SB_LOG_INT(x) ((sb_log_value){.type = SB_LOG_T_INT, .i = (int64_t)(x)})
#define SB_LOG_UINT(x) ((sb_log_value){.type = SB_LOG_T_UINT, .u = (uint64_t)(x)})
#define SB_LOG_BOOL(x) ((sb_log_value){.type = SB_LOG_T_BOOL, .b = (x)})

/* One structured field for sb_log_fields(). */
typedef struct sb_log_field {
    const char *key;
    sb_log_value value;
} sb_log_field;

/* Sets the process-wide logger: the service name written as "svc" (copied; at most 63 bytes are kept), the least
 * severe level that is written, and the fd lines go to (a negative fd means stderr). Call it once at start, before
 * threads; until then the logger writes level info and above to stderr with svc "unknown". The fd is not owned:
 * the caller keeps it open while logging and closes it. */
void sb_log_init(const char *service_name, sb_log_level min_level, int fd);

/* Changes the minimum level at run time; safe from any thread. */
void sb_log_set_level(sb_log_level min_level);

/* Whether an event at this level would be written; use it to skip expensive field preparation. */
bool sb_log_enabled(sb_log_level level);

/* Logs one event with a printf-style message and no extra fields. event is a short stable name ("rpc", "start",
 * "db_retry") that tools can filter on. Never fails visibly: a failed write is dropped, because there is nowhere
 * better to report it. */
void sb_log(sb_log_level level, const char *event, const char *fmt_msg, ...) __attribute__((format(printf, 3, 4)));

/* Logs one event with structured fields: after msg (a plain string, not a format) come pairs of a key
 * (const char *) and an sb_log_value made by SB_LOG_STR/INT/UINT/BOOL, ended by a NULL key:
 *     sb_log_kv(SB_LOG_INFO, "rpc", "call done", "method", SB_LOG_STR(m), "status", SB_LOG_INT(s), NULL);
 * Keys should not repeat the fixed ones (ts, level, svc, event, msg). */
void sb_log_kv(sb_log_level level, const char *event, const char *msg, ...);

/* Like sb_log_kv() with the fields in an array of n_fields entries. */
void sb_log_fields(sb_log_level level, const char *event, const char *msg, const sb_log_field *fields,
                   size_t n_fields);

/* Formats one line exactly as the logger would (timestamp from ts_ms, milliseconds since the Unix epoch) into buf
 * of size bytes, newline included, and returns its length (no NUL counted; buf is NUL-terminated). Writes nothing
 * to any fd and ignores the minimum level. size must be at least 256; at most SB_LOG_LINE_MAX bytes are used. */
size_t sb_log_format(char *buf, size_t size, int64_t ts_ms, sb_log_level level, const char *event, const char *msg,
                     const sb_log_field *fields, size_t n_fields);

/* Parses "debug", "info", "warn"/"warning" or "error" (any case) into *ret_level. Returns 0, or -EINVAL for any
 * other text (then *ret_level is untouched). */
int sb_log_level_parse(const char *text, sb_log_level *ret_level);

/* The lower-case name of a level ("debug", "info", "warn", "error"). */
const char *sb_log_level_name(sb_log_level level);
