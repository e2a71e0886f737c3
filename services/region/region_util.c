/* The region service's shared helpers: argument checks, division rows, page tokens, business days. */
#include "region_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int region_refuse(region_refusal *ref, sb_status status, const char *reason, const char *fmt, ...) {
        va_list ap;
        ref->status = status;
        ref->reason = reason;
        va_start(ap, fmt);
        vsnprintf(ref->msg, sizeof ref->msg, fmt, ap);
        va_end(ap);
        return REGION_EREFUSED;
}

sb_status region_tx_status(sb_call *call, int r, const region_refusal *ref, const char *what) {
        if (r == 0)
                return SB_OK;
        if (r == REGION_EREFUSED)
                return sb_call_fail_reason(call, ref->status, ref->reason, "%s", ref->msg);
        return sb_service_db_fail(call, r, what);
}

sb_db *region_db(sb_call *call, sb_status *ret_status) {
        sb_db *db = sb_service_db(call);
        if (!db) {
                *ret_status = sb_service_db_unavailable(call);
                return NULL;
        }
        int64_t left = sb_call_remaining_ms(call);
        /* Statements end before the client gives up; no deadline still gets a limit, so nothing runs forever. */
        uint32_t limit = left > 30000 ? 30000 : left < 1 ? 1 : (uint32_t)left;
        (void)sb_db_set_statement_timeout_ms(db, limit);
        *ret_status = SB_OK;
        return db;
}

int64_t region_now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

sb_status region_text_arg(sb_call *call, const char *s, const char *field, size_t max_chars, bool required) {
        size_t len = s ? strlen(s) : 0;
        if (len == 0) {
                if (required)
                        return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                                   "%s is required", field);
                return SB_OK;
        }
        if (!region_utf8_valid(s, len, max_chars, NULL)) {
                if (region_utf8_valid(s, len, SIZE_MAX, NULL))
                        return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                                   "%s is longer than %zu characters", field, max_chars);
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                           "%s is not valid UTF-8", field);
        }
        for (size_t i = 0; i < len; i++)
                if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
                        return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                                   "%s contains a control character", field);
        return SB_OK;
}

sb_status region_code_arg(sb_call *call, const char *code, const char *field) {
        size_t len = code ? strlen(code) : 0;
        bool ok = len == 6;
        for (size_t i = 0; ok && i < len; i++)
                ok = code[i] >= '0' && code[i] <= '9';
        if (!ok)
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                           "%s must be a 6-digit GB/T 2260 code (e.g. \"441900\")", field);
        return SB_OK;
}

int region_div_from_row(const sb_db_stmt *s, unsigned first, region_div *ret) {
        region_div d = { 0 };
        int64_t level = 0, hc = 0;
        if (sb_db_col_str(s, first, d.code, sizeof d.code) < 0 || sb_db_col_str(s, first + 1, d.name, sizeof d.name) < 0 ||
            sb_db_col_i64(s, first + 2, &level) < 0 || sb_db_col_str(s, first + 4, d.province_code, sizeof d.province_code) < 0 ||
            sb_db_col_str(s, first + 6, d.full_name, sizeof d.full_name) < 0 || sb_db_col_i64(s, first + 7, &hc) < 0)
                return -EIO;
        (void)sb_db_col_str(s, first + 3, d.parent_code, sizeof d.parent_code); /* NULL for a province */
        (void)sb_db_col_str(s, first + 5, d.city_code, sizeof d.city_code);
        d.level = (int)level;
        d.has_children = hc != 0;
        *ret = d;
        return 0;
}

static const char sql_div[] = "SELECT " REGION_DIV_COLUMNS " FROM district d WHERE d.code = ? AND d.retired = 0";

int region_div_load(sb_db *db, const char *code, region_div *ret) {
        sb_db_stmt *s;
        int r = sb_db_prepare(db, sql_div, &s);
        if (r < 0 || (r = sb_db_bind_str(s, 0, code)) < 0 || (r = sb_db_execute(s)) < 0)
                return r;
        region_div d;
        bool found = false;
        while ((r = sb_db_fetch(s)) > 0)
                if (!found && region_div_from_row(s, 0, &d) == 0)
                        found = true;
        if (r < 0)
                return r;
        if (!found)
                return -ENOENT;
        *ret = d;
        return 0;
}

sb_status region_div_arg(sb_call *call, sb_db *db, const char *code, const char *field, region_div *ret) {
        sb_status st = region_code_arg(call, code, field);
        if (st != SB_OK)
                return st;
        int r = region_div_load(db, code, ret);
        if (r == -ENOENT)
                return sb_call_fail_reason(call, SB_NOT_FOUND, "REASON_DISTRICT_UNKNOWN",
                                           "%s %s is not a division of the loaded GB/T 2260 tree", field, code);
        if (r < 0)
                return sb_service_db_fail(call, r, "reading a division");
        return SB_OK;
}

bool region_div_inside(const region_div *d, const char *area_code, int area_level) {
        switch (area_level) {
        case 1:
                return strcmp(d->province_code, area_code) == 0;
        case 2:
                return strcmp(d->city_code, area_code) == 0;
        default:
                return strcmp(d->code, area_code) == 0;
        }
}

int region_code_level(const char *code) {
        if (strcmp(code + 2, "0000") == 0)
                return 1;
        if (strcmp(code + 4, "00") == 0)
                return 2;
        return 3;
}

Sharebuy__Region__V1__District *region_div_msg(sb_call *call, const region_div *d) {
        Sharebuy__Region__V1__District *m = sb_call_alloc(call, sizeof *m);
        sharebuy__region__v1__district__init(m);
        m->code = sb_call_strdup(call, d->code);
        m->name = sb_call_strdup(call, d->name);
        m->level = (Sharebuy__Region__V1__DistrictLevel)d->level;
        m->parent_code = sb_call_strdup(call, d->parent_code);
        m->full_name = sb_call_strdup(call, d->full_name);
        m->has_children = d->has_children;
        return m;
}

/* --- Paging --- */

uint32_t region_page_size(const Sharebuy__Common__V1__PageRequest *p, uint32_t def, uint32_t max) {
        uint32_t n = p ? p->page_size : 0;
        return n == 0 ? def : n > max ? max : n;
}

uint32_t region_hash_str(uint32_t h, const char *s) {
        for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++)
                h = (h ^ *p) * 16777619u;
        return (h ^ 0xff) * 16777619u; /* a separator, so ("ab","c") and ("a","bc") differ */
}

uint32_t region_hash_u64(uint32_t h, uint64_t v) {
        char buf[24];
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
        return region_hash_str(h, buf);
}

/* A token is "<kind>.<filter hash, 8 hex>.<issued unix seconds>.<position in hex>": opaque to clients, checked
 * here. It is not secret: a forged token only moves a client within what it may list anyway. */
char *region_page_token(sb_call *call, char kind, uint32_t filter, const char *key) {
        size_t klen = strlen(key);
        if (klen > 100)
                klen = 100;
        char *t = sb_call_alloc(call, 40 + 2 * klen);
        int n = snprintf(t, 40, "%c.%08x.%lld.", kind, filter, (long long)(region_now_ms() / 1000));
        for (size_t i = 0; i < klen; i++)
                snprintf(t + n + 2 * i, 3, "%02x", (unsigned char)key[i]);
        return t;
}

static int hexval(char c) {
        return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

sb_status region_page_parse(sb_call *call, const Sharebuy__Common__V1__PageRequest *p, char kind, uint32_t filter,
                            char *key, size_t n, bool *ret_has) {
        const char *t = p && p->page_token ? p->page_token : "";
        key[0] = '\0';
        *ret_has = false;
        if (!*t)
                return SB_OK;
        unsigned hash;
        long long issued;
        int used = 0;
        size_t len = strlen(t);
        if (len > REGION_PAGE_TOKEN_MAX_BYTES || t[0] != kind || t[1] != '.' ||
            sscanf(t + 2, "%8x.%lld.%n", &hash, &issued, &used) != 2 || used == 0)
                goto bad;
        if (hash != filter)
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_PAGE_TOKEN_INVALID",
                                           "the page token was made for other filters: repeat the first request's "
                                           "filters, or start again without a token");
        long long now = region_now_ms() / 1000;
        if (issued > now + 60 || now - issued > REGION_PAGE_TOKEN_TTL_S)
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_PAGE_TOKEN_INVALID",
                                           "the page token has expired (24 hours): start again without a token");
        const char *hex = t + 2 + used;
        size_t hl = strlen(hex);
        if (hl % 2 != 0 || hl / 2 >= n)
                goto bad;
        for (size_t i = 0; i < hl / 2; i++) {
                int a = hexval(hex[2 * i]), b = hexval(hex[2 * i + 1]);
                if (a < 0 || b < 0 || (a == 0 && b == 0))
                        goto bad;
                key[i] = (char)(a * 16 + b);
        }
        key[hl / 2] = '\0';
        *ret_has = true;
        return SB_OK;
bad:
        key[0] = '\0';
        return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_PAGE_TOKEN_INVALID",
                                   "the page token is not one this method gave out");
}

Sharebuy__Common__V1__PageInfo *region_page_info(sb_call *call, const char *next_token) {
        Sharebuy__Common__V1__PageInfo *pi = sb_call_alloc(call, sizeof *pi);
        sharebuy__common__v1__page_info__init(pi);
        pi->next_page_token = next_token ? (char *)next_token : (char *)"";
        return pi;
}

/* --- Business days --- */

#define REGION_UTC_OFFSET_MS (8 * 3600 * 1000LL) /* Asia/Shanghai has had no daylight saving since 1991 */

int64_t region_business_day(int64_t unix_ms, int64_t cutoff_minute) {
        int64_t local = unix_ms + REGION_UTC_OFFSET_MS;
        int64_t day = local >= 0 ? local / 86400000 : (local - 86399999) / 86400000;
        int64_t minute = (local - day * 86400000) / 60000;
        return minute >= cutoff_minute ? day + 1 : day;
}

void region_day_format(int64_t day, char out[11]) {
        time_t t = (time_t)(day * 86400);
        struct tm tm;
        gmtime_r(&t, &tm);
        snprintf(out, 11, "%04u-%02u-%02u", (unsigned)(tm.tm_year + 1900) % 10000u, (unsigned)(tm.tm_mon + 1) % 100u,
                 (unsigned)tm.tm_mday % 100u);
}

int region_day_parse(const char *s, int64_t *ret) {
        if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
                return -EINVAL;
        for (int i = 0; i < 10; i++)
                if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
                        return -EINVAL;
        int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
        int m = (s[5] - '0') * 10 + (s[6] - '0');
        int d = (s[8] - '0') * 10 + (s[9] - '0');
        if (y < 2000 || y > 2999 || m < 1 || m > 12 || d < 1 || d > 31)
                return -EINVAL;
        struct tm tm = { .tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d };
        time_t t = timegm(&tm);
        int64_t day = (int64_t)t / 86400;
        char back[11];
        region_day_format(day, back);
        if (strcmp(back, s) != 0) /* 2026-02-30 */
                return -EINVAL;
        *ret = day;
        return 0;
}
