/* The division tree: GetDistrict, ListChildren, SearchDistricts. Anyone may call them; no token needed. */
#include "region_internal.h"

#include <string.h>

sb_status region_get_district(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Region__V1__GetDistrictRequest *req = (const void *)req_;
        Sharebuy__Region__V1__District *resp = (void *)resp_;
        sb_status st = region_code_arg(call, req->code, "code");
        if (st != SB_OK)
                return st;
        sb_db *db = region_db(call, &st);
        if (!db)
                return st;
        region_div d;
        if ((st = region_div_arg(call, db, req->code, "code", &d)) != SB_OK)
                return st;
        Sharebuy__Region__V1__District *m = region_div_msg(call, &d);
        m->base = resp->base;
        *resp = *m;
        return SB_OK;
}

#define CHILDREN_DEFAULT 100
#define CHILDREN_MAX 1000

/* The provinces when parent is '', ordered by code, after the page position. */
static const char sql_children[] =
        "SELECT " REGION_DIV_COLUMNS " FROM district d"
        " WHERE d.retired = 0 AND ((? = '' AND d.parent_code IS NULL) OR d.parent_code = ?) AND d.code > ?"
        " ORDER BY d.code LIMIT ?";

/* Reads up to `limit` rows (one more than the page, to know whether another page follows). */
static int collect(sb_db_stmt *s, sb_call *call, Sharebuy__Region__V1__District ***ret, size_t limit, size_t *ret_n,
                   bool *ret_more, char *last_key, size_t key_n, bool exact_prefix, const char *query) {
        Sharebuy__Region__V1__District **v = sb_call_alloc(call, (limit ? limit : 1) * sizeof *v);
        size_t n = 0;
        bool more = false;
        int r;
        while ((r = sb_db_fetch(s)) > 0) {
                region_div d;
                if (n == limit) {
                        more = true;
                        continue;
                }
                if (region_div_from_row(s, 0, &d) < 0)
                        continue;
                v[n++] = region_div_msg(call, &d);
                if (exact_prefix)
                        snprintf(last_key, key_n, "%c%s", strcmp(d.name, query) == 0 ? 'E' : 'N', d.code);
                else
                        snprintf(last_key, key_n, "%s", d.code);
        }
        if (r < 0)
                return r;
        *ret = v;
        *ret_n = n;
        *ret_more = more;
        return 0;
}

sb_status region_list_children(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Region__V1__ListChildrenRequest *req = (const void *)req_;
        Sharebuy__Region__V1__ListChildrenResponse *resp = (void *)resp_;
        const char *parent = req->parent_code ? req->parent_code : "";
        sb_status st;
        if (*parent && (st = region_code_arg(call, parent, "parent_code")) != SB_OK)
                return st;
        uint32_t size = region_page_size(req->page, CHILDREN_DEFAULT, CHILDREN_MAX);
        uint32_t filter = region_hash_str(REGION_HASH_INIT, parent);
        char after[16];
        bool has;
        if ((st = region_page_parse(call, req->page, 'C', filter, after, sizeof after, &has)) != SB_OK)
                return st;
        sb_db *db = region_db(call, &st);
        if (!db)
                return st;
        region_div pd;
        if (*parent && (st = region_div_arg(call, db, parent, "parent_code", &pd)) != SB_OK)
                return st;
        sb_db_stmt *s;
        int r = sb_db_prepare(db, sql_children, &s);
        if (r == 0 && (r = sb_db_bind_str(s, 0, parent)) == 0 && (r = sb_db_bind_str(s, 1, parent)) == 0 &&
            (r = sb_db_bind_str(s, 2, after)) == 0 && (r = sb_db_bind_u64(s, 3, (uint64_t)size + 1)) == 0)
                r = sb_db_execute(s);
        char last[16] = "";
        bool more = false;
        if (r == 0)
                r = collect(s, call, &resp->districts, size, &resp->n_districts, &more, last, sizeof last, false, "");
        if (r < 0)
                return sb_service_db_fail(call, r, "listing divisions");
        resp->page = region_page_info(call, more ? region_page_token(call, 'C', filter, last) : "");
        return SB_OK;
}

#define SEARCH_DEFAULT 20
#define SEARCH_MAX 100

/* Names containing the query (LIKE with its wildcards escaped), exact names first, then by code. The page position
 * is (last row exact?, its code): le < 0 means the first page. */
static const char sql_search[] =
        "SELECT " REGION_DIV_COLUMNS " FROM district d"
        " WHERE d.retired = 0 AND d.name LIKE CONCAT('%', ?, '%') ESCAPE '!'"
        "   AND (? = 0 OR d.level = ?)"
        "   AND (? = '' OR d.code = ? OR (? = 1 AND d.province_code = ?) OR (? = 2 AND d.city_code = ?))"
        "   AND (? < 0 OR (? = 1 AND (d.name <> ? OR d.code > ?)) OR (? = 0 AND d.name <> ? AND d.code > ?))"
        " ORDER BY (d.name = ?) DESC, d.code LIMIT ?";

sb_status region_search_districts(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Region__V1__SearchDistrictsRequest *req = (const void *)req_;
        Sharebuy__Region__V1__SearchDistrictsResponse *resp = (void *)resp_;
        const char *q = req->query ? req->query : "";
        const char *under = req->under_code ? req->under_code : "";
        sb_status st = region_text_arg(call, q, "query", REGION_SEARCH_MAX_CHARS, true);
        if (st != SB_OK)
                return st;
        if (*under && (st = region_code_arg(call, under, "under_code")) != SB_OK)
                return st;
        int level = (int)req->level;
        if (level < 0 || level > 3)
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                           "level must be UNSPECIFIED, PROVINCE, CITY or DISTRICT");
        uint32_t size = region_page_size(req->page, SEARCH_DEFAULT, SEARCH_MAX);
        uint32_t filter = region_hash_u64(region_hash_str(region_hash_str(REGION_HASH_INIT, q), under), (uint64_t)level);
        char key[16];
        bool has;
        if ((st = region_page_parse(call, req->page, 'S', filter, key, sizeof key, &has)) != SB_OK)
                return st;
        int64_t le = -1;
        const char *lc = "";
        if (has) {
                if ((key[0] != 'E' && key[0] != 'N') || strlen(key) != 7)
                        return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_PAGE_TOKEN_INVALID",
                                                   "the page token is not one this method gave out");
                le = key[0] == 'E';
                lc = key + 1;
        }
        /* Escape the LIKE wildcards with '!' so that "100%" finds a literal percent sign. */
        size_t qlen = strlen(q);
        char *esc = sb_call_alloc(call, 2 * qlen + 1);
        for (size_t i = 0, j = 0; i < qlen; i++) {
                if (q[i] == '%' || q[i] == '_' || q[i] == '!')
                        esc[j++] = '!';
                esc[j++] = q[i];
        }
        sb_db *db = region_db(call, &st);
        if (!db)
                return st;
        region_div ud;
        int ulevel = 0;
        if (*under) {
                if ((st = region_div_arg(call, db, under, "under_code", &ud)) != SB_OK)
                        return st;
                ulevel = ud.level;
        }
        sb_db_stmt *s;
        int r = sb_db_prepare(db, sql_search, &s);
        unsigned i = 0;
        if (r == 0 && (r = sb_db_bind_str(s, i++, esc)) == 0 && (r = sb_db_bind_i64(s, i++, level)) == 0 &&
            (r = sb_db_bind_i64(s, i++, level)) == 0 && (r = sb_db_bind_str(s, i++, under)) == 0 &&
            (r = sb_db_bind_str(s, i++, under)) == 0 && (r = sb_db_bind_i64(s, i++, ulevel)) == 0 &&
            (r = sb_db_bind_str(s, i++, under)) == 0 && (r = sb_db_bind_i64(s, i++, ulevel)) == 0 &&
            (r = sb_db_bind_str(s, i++, under)) == 0 && (r = sb_db_bind_i64(s, i++, le)) == 0 &&
            (r = sb_db_bind_i64(s, i++, le)) == 0 && (r = sb_db_bind_str(s, i++, q)) == 0 &&
            (r = sb_db_bind_str(s, i++, lc)) == 0 && (r = sb_db_bind_i64(s, i++, le)) == 0 &&
            (r = sb_db_bind_str(s, i++, q)) == 0 && (r = sb_db_bind_str(s, i++, lc)) == 0 &&
            (r = sb_db_bind_str(s, i++, q)) == 0 && (r = sb_db_bind_u64(s, i++, (uint64_t)size + 1)) == 0)
                r = sb_db_execute(s);
        char last[16] = "";
        bool more = false;
        if (r == 0)
                r = collect(s, call, &resp->districts, size, &resp->n_districts, &more, last, sizeof last, true, q);
        if (r < 0)
                return sb_service_db_fail(call, r, "searching divisions");
        resp->page = region_page_info(call, more ? region_page_token(call, 'S', filter, last) : "");
        return SB_OK;
}
