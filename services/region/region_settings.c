/* Per-region economic settings: the platform defaults (code "") overridden by a province's, then a city's
 * overrides. Every change is a new full version of the overrides at one code, with who, when, why and the business
 * day it takes effect; versions are never changed, so the history is the table itself. */
#include "region_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "economy.h"

#define SETTINGS_KEYS_MAX 32   /* keys per set/clear list */
#define HISTORY_DEFAULT 50
#define HISTORY_MAX 500
#define DESCENDANTS_MAX 4096   /* codes with overrides checked when an ancestor changes */

/* Settings of the API that the economy library does not hold. */
typedef struct region_extra {
        int64_t deposit_warning_fen;
        int64_t member_code_ttl_seconds;
        int64_t offline_sale_grace_seconds;
        int64_t sale_max_spend_fen;
} region_extra;

static const region_extra extra_defaults = {
        .deposit_warning_fen = 100000,
        .member_code_ttl_seconds = 120,
        .offline_sale_grace_seconds = 0,
        .sale_max_spend_fen = 10000000,
};

/* One overridable key: its API name, where it lives, and the range a value must have before the validator runs
 * (the proto field's type, or the extra setting's own limits). */
typedef struct setting_key {
        const char *name;
        bool extra;
        size_t off;
        int64_t min, max;
} setting_key;

#define ECON(n, f, ...) { n, false, offsetof(sb_econ_settings, f), __VA_ARGS__ }
#define EXTRA(n, f, ...) { n, true, offsetof(region_extra, f), __VA_ARGS__ }
#define I32 INT32_MIN, INT32_MAX
#define I64 INT64_MIN, INT64_MAX

static const setting_key keys[] = {
        ECON("register_bonus_cv_units", register_bonus_cv, I64),
        ECON("referral_bonus_cv_units", referral_bonus_cv, I64),
        ECON("member_cv_multiplier", member_cv_multiplier, I32),
        ECON("merchant_cv_multiplier", merchant_cv_multiplier, I32),
        ECON("concession_min_bp", concession_min_bp, I32),
        ECON("concession_max_bp", concession_max_bp, I32),
        ECON("concession_default_bp", concession_default_bp, I32),
        ECON("deposit_min_fen", deposit_min_fen, I64),
        EXTRA("deposit_warning_fen", deposit_warning_fen, 0, INT64_C(10000000000)),
        ECON("referral_sp_share_bp", referral_sp_share_bp, I32),
        ECON("merchant_referral_sp_share_bp", merchant_referral_sp_share_bp, I32),
        ECON("centre_sp_share_bp", centre_sp_share_bp, I32),
        ECON("parent_centre_sp_share_bp", parent_centre_sp_share_bp, I32),
        ECON("referral_cv_share_bp", referral_cv_share_bp, I32),
        ECON("referral_l2_sp_share_bp", referral2_sp_share_bp, I32),
        ECON("referral_l2_cv_share_bp", referral2_cv_share_bp, I32),
        EXTRA("member_code_ttl_seconds", member_code_ttl_seconds, 10, 3600),
        EXTRA("offline_sale_grace_seconds", offline_sale_grace_seconds, 0, 7 * 86400),
        EXTRA("sale_max_spend_fen", sale_max_spend_fen, 1, INT64_C(10000000000)),
};
#define N_KEYS (sizeof keys / sizeof keys[0])

static int key_index(const char *name) {
        for (size_t i = 0; i < N_KEYS; i++)
                if (strcmp(keys[i].name, name) == 0)
                        return (int)i;
        return -1;
}

/* The overrides stored at one code. */
typedef struct overrides {
        bool has[N_KEYS];
        int64_t val[N_KEYS];
        bool packs_set;
        size_t n_packs;
        sb_econ_pack packs[SB_ECON_MAX_PACKS];
} overrides;

typedef struct effective {
        sb_econ_settings econ;
        region_extra extra;
} effective;

static void apply(effective *e, const overrides *o) {
        for (size_t i = 0; i < N_KEYS; i++) {
                if (!o->has[i])
                        continue;
                char *base = keys[i].extra ? (char *)&e->extra : (char *)&e->econ;
                memcpy(base + keys[i].off, &o->val[i], sizeof(int64_t));
        }
        if (o->packs_set) {
                e->econ.n_packs = o->n_packs;
                memcpy(e->econ.packs, o->packs, sizeof o->packs);
        }
}

static effective defaults(void) {
        effective e = { .econ = sb_econ_settings_default(), .extra = extra_defaults };
        return e;
}

/* The validator of economics.md plus the extra settings' own rule. 0 or -EINVAL with why. */
static int validate(const effective *e, char *why, size_t n) {
        int r = sb_econ_settings_validate(&e->econ, why, n);
        if (r < 0)
                return r;
        if (e->extra.deposit_warning_fen < e->econ.deposit_min_fen) {
                snprintf(why, n, "deposit_warning_fen (%" PRId64 ") must not be below deposit_min_fen (%" PRId64 ")",
                         e->extra.deposit_warning_fen, e->econ.deposit_min_fen);
                return -EINVAL;
        }
        return 0;
}

/* Text forms stored in settings_version: "key=value\n" lines and "price:cv\n" lines. Unknown keys (from a newer
 * release) are skipped when reading. */
static void overrides_format(const overrides *o, char *ov, size_t ov_n, char *pk, size_t pk_n) {
        size_t len = 0;
        ov[0] = pk[0] = '\0';
        for (size_t i = 0; i < N_KEYS && len < ov_n; i++)
                if (o->has[i])
                        len += (size_t)snprintf(ov + len, ov_n - len, "%s=%" PRId64 "\n", keys[i].name, o->val[i]);
        len = 0;
        for (size_t i = 0; o->packs_set && i < o->n_packs && len < pk_n; i++)
                len += (size_t)snprintf(pk + len, pk_n - len, "%" PRId64 ":%" PRId64 "\n", o->packs[i].price_fen,
                                        o->packs[i].cv);
}

static void overrides_parse(const char *ov, bool packs_set, const char *pk, overrides *ret) {
        overrides o;
        memset(&o, 0, sizeof o);
        for (const char *p = ov; *p;) {
                const char *nl = strchr(p, '\n');
                size_t len = nl ? (size_t)(nl - p) : strlen(p);
                char line[96];
                if (len < sizeof line) {
                        memcpy(line, p, len);
                        line[len] = '\0';
                        char *eq = strchr(line, '=');
                        if (eq) {
                                *eq = '\0';
                                int k = key_index(line);
                                if (k >= 0) {
                                        o.has[k] = true;
                                        o.val[k] = strtoll(eq + 1, NULL, 10);
                                }
                        }
                }
                p += len + (nl ? 1 : 0);
        }
        o.packs_set = packs_set;
        for (const char *p = pk; packs_set && *p && o.n_packs < SB_ECON_MAX_PACKS;) {
                long long price, cv;
                int used = 0;
                if (sscanf(p, "%lld:%lld\n%n", &price, &cv, &used) < 2 || used == 0)
                        break;
                o.packs[o.n_packs].price_fen = price;
                o.packs[o.n_packs].cv = cv;
                o.n_packs++;
                p += used;
        }
        *ret = o;
}

/* The newest version at code in force on `day` (day < 0: the newest of all). 0 with *ret_found. */
static const char sql_version_at[] =
        "SELECT revision, effective_day, overrides, packs_set, packs FROM settings_version"
        " WHERE region_code = ? AND effective_day <= FROM_DAYS(? + 719528) ORDER BY revision DESC LIMIT 1";
static const char sql_version_after[] =
        "SELECT revision, TO_DAYS(effective_day) - 719528, overrides, packs_set, packs FROM settings_version"
        " WHERE region_code = ? AND effective_day > FROM_DAYS(? + 719528) ORDER BY revision DESC LIMIT 1";

static int load_version(sb_db *db, const char *sql, const char *code, int64_t day, overrides *ret, bool *ret_found,
                        uint64_t *ret_rev, int64_t *ret_day) {
        sb_db_stmt *s;
        int r = sb_db_prepare(db, sql, &s);
        if (r < 0 || (r = sb_db_bind_str(s, 0, code)) < 0 || (r = sb_db_bind_i64(s, 1, day)) < 0 ||
            (r = sb_db_execute(s)) < 0)
                return r;
        *ret_found = false;
        while ((r = sb_db_fetch(s)) > 0) {
                if (*ret_found)
                        continue;
                char ov[4096] = "", pk[1024] = "";
                int64_t ps = 0;
                (void)sb_db_col_u64(s, 0, ret_rev);
                if (ret_day)
                        (void)sb_db_col_i64(s, 1, ret_day);
                (void)sb_db_col_str(s, 2, ov, sizeof ov);
                (void)sb_db_col_i64(s, 3, &ps);
                (void)sb_db_col_str(s, 4, pk, sizeof pk);
                overrides_parse(ov, ps != 0, pk, ret);
                *ret_found = true;
        }
        return r;
}

/* The codes whose overrides apply to a division, most general first: "", province, city (for a city or a
 * district). Returns the count. */
static size_t chain_codes(const region_div *d, const char *out[3]) {
        size_t n = 0;
        out[n++] = "";
        if (!d)
                return n;
        out[n++] = d->province_code;
        if (d->level >= 2)
                out[n++] = d->city_code;
        return n;
}

static uint32_t proto_i32(int64_t v) {
        return (uint32_t)v;
}

static Sharebuy__Region__V1__EconomySettings *settings_msg(sb_call *call, const effective *e) {
        Sharebuy__Region__V1__EconomySettings *m = sb_call_alloc(call, sizeof *m);
        sharebuy__region__v1__economy_settings__init(m);
        const sb_econ_settings *s = &e->econ;
        m->register_bonus_cv_units = s->register_bonus_cv;
        m->referral_bonus_cv_units = s->referral_bonus_cv;
        m->member_cv_multiplier = (int32_t)proto_i32(s->member_cv_multiplier);
        m->merchant_cv_multiplier = (int32_t)proto_i32(s->merchant_cv_multiplier);
        m->concession_min_bp = (int32_t)proto_i32(s->concession_min_bp);
        m->concession_max_bp = (int32_t)proto_i32(s->concession_max_bp);
        m->concession_default_bp = (int32_t)proto_i32(s->concession_default_bp);
        m->deposit_min_fen = s->deposit_min_fen;
        m->deposit_warning_fen = e->extra.deposit_warning_fen;
        m->referral_sp_share_bp = (int32_t)proto_i32(s->referral_sp_share_bp);
        m->merchant_referral_sp_share_bp = (int32_t)proto_i32(s->merchant_referral_sp_share_bp);
        m->centre_sp_share_bp = (int32_t)proto_i32(s->centre_sp_share_bp);
        m->parent_centre_sp_share_bp = (int32_t)proto_i32(s->parent_centre_sp_share_bp);
        m->referral_cv_share_bp = (int32_t)proto_i32(s->referral_cv_share_bp);
        m->referral_l2_sp_share_bp = (int32_t)proto_i32(s->referral2_sp_share_bp);
        m->referral_l2_cv_share_bp = (int32_t)proto_i32(s->referral2_cv_share_bp);
        m->member_code_ttl_seconds = (uint32_t)e->extra.member_code_ttl_seconds;
        m->offline_sale_grace_seconds = (uint32_t)e->extra.offline_sale_grace_seconds;
        m->sale_max_spend_fen = e->extra.sale_max_spend_fen;
        m->n_activation_packs = s->n_packs;
        m->activation_packs = sb_call_alloc(call, (s->n_packs ? s->n_packs : 1) * sizeof *m->activation_packs);
        for (size_t i = 0; i < s->n_packs; i++) {
                Sharebuy__Common__V1__ActivationPack *p = sb_call_alloc(call, sizeof *p);
                sharebuy__common__v1__activation_pack__init(p);
                p->price_fen = s->packs[i].price_fen;
                p->cv_units = s->packs[i].cv;
                m->activation_packs[i] = p;
        }
        return m;
}

static void values_msg(sb_call *call, const overrides *o, Sharebuy__Region__V1__SettingValue ***ret, size_t *ret_n) {
        Sharebuy__Region__V1__SettingValue **v = sb_call_alloc(call, N_KEYS * sizeof *v);
        size_t n = 0;
        for (size_t i = 0; i < N_KEYS; i++) {
                if (!o->has[i])
                        continue;
                Sharebuy__Region__V1__SettingValue *sv = sb_call_alloc(call, sizeof *sv);
                sharebuy__region__v1__setting_value__init(sv);
                sv->key = (char *)keys[i].name;
                sv->value = o->val[i];
                v[n++] = sv;
        }
        *ret = v;
        *ret_n = n;
}

static void packs_msg(sb_call *call, const overrides *o, Sharebuy__Common__V1__ActivationPack ***ret, size_t *ret_n) {
        size_t n = o->packs_set ? o->n_packs : 0;
        Sharebuy__Common__V1__ActivationPack **v = sb_call_alloc(call, (n ? n : 1) * sizeof *v);
        for (size_t i = 0; i < n; i++) {
                v[i] = sb_call_alloc(call, sizeof *v[i]);
                sharebuy__common__v1__activation_pack__init(v[i]);
                v[i]->price_fen = o->packs[i].price_fen;
                v[i]->cv_units = o->packs[i].cv;
        }
        *ret = v;
        *ret_n = n;
}

static int64_t today(void) {
        return region_business_day(region_now_ms(), sb_econ_settings_default().release_minute_of_day);
}

/* Fills a RegionSettings for code (d NULL for the platform defaults) as of `day`. */
static int fill_settings(sb_call *call, sb_db *db, const char *code, const region_div *d, int64_t day,
                         Sharebuy__Region__V1__RegionSettings *resp) {
        const char *chain[3];
        size_t n = chain_codes(d && d->level <= 3 ? d : NULL, chain);
        effective e = defaults(), sched = defaults();
        overrides at_code;
        memset(&at_code, 0, sizeof at_code);
        resp->inherited_from_codes = sb_call_alloc(call, 3 * sizeof(char *));
        bool any_sched = false;
        int64_t sched_day = -1;
        for (size_t i = 0; i < n; i++) {
                overrides o;
                bool found;
                uint64_t rev = 0;
                int r = load_version(db, sql_version_at, chain[i], day, &o, &found, &rev, NULL);
                if (r < 0)
                        return r;
                if (found) {
                        apply(&e, &o);
                        if (strcmp(chain[i], code) == 0)
                                at_code = o;
                }
                /* The scheduled state: every chain code's newest version, whatever its day. */
                overrides later;
                bool later_found;
                int64_t later_day = -1;
                r = load_version(db, sql_version_after, chain[i], day, &later, &later_found, &rev, &later_day);
                if (r < 0)
                        return r;
                if (later_found) {
                        apply(&sched, &later);
                        any_sched = true;
                        if (later_day > sched_day)
                                sched_day = later_day;
                } else if (found) {
                        apply(&sched, &o);
                }
        }
        /* Most specific first, ending with "". */
        for (size_t i = n; i-- > 0;)
                resp->inherited_from_codes[resp->n_inherited_from_codes++] = sb_call_strdup(call, chain[i]);
        resp->region_code = sb_call_strdup(call, code);
        resp->effective = settings_msg(call, &e);
        values_msg(call, &at_code, &resp->overrides, &resp->n_overrides);
        packs_msg(call, &at_code, &resp->pack_overrides, &resp->n_pack_overrides);
        char buf[11];
        region_day_format(day, buf);
        resp->business_day = sb_call_strdup(call, buf);
        if (any_sched) {
                resp->scheduled = settings_msg(call, &sched);
                region_day_format(sched_day, buf);
                resp->scheduled_business_day = sb_call_strdup(call, buf);
        }
        static const char sql_head[] = "SELECT revision FROM settings_head WHERE region_code = ?";
        sb_db_stmt *s;
        int r = sb_db_prepare(db, sql_head, &s);
        if (r < 0 || (r = sb_db_bind_str(s, 0, code)) < 0 || (r = sb_db_execute(s)) < 0)
                return r;
        while ((r = sb_db_fetch(s)) > 0)
                (void)sb_db_col_u64(s, 0, &resp->revision);
        return r;
}

#define ANY_ROLE                                                                                                   \
        (SB_ROLES(SB_ROLE_MEMBER) | SB_ROLES(SB_ROLE_MERCHANT_OWNER) | SB_ROLES(SB_ROLE_CASHIER) |                 \
         SB_ROLES(SB_ROLE_TERMINAL) | SB_ROLES(SB_ROLE_CENTRE_OPERATOR) | SB_ROLES(SB_ROLE_ADMIN) |                \
         SB_ROLES(SB_ROLE_SERVICE))

sb_status region_get_settings(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Region__V1__GetRegionSettingsRequest *req = (const void *)req_;
        Sharebuy__Region__V1__RegionSettings *resp = (void *)resp_;
        sb_status st = sb_service_auth(call, ANY_ROLE, NULL);
        if (st != SB_OK)
                return st;
        const char *code = req->region_code ? req->region_code : "";
        if (*code && (st = region_code_arg(call, code, "region_code")) != SB_OK)
                return st;
        int64_t day = today();
        if (req->business_day && *req->business_day && region_day_parse(req->business_day, &day) < 0)
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                           "business_day must be a date \"YYYY-MM-DD\"");
        sb_db *db = region_db(call, &st);
        if (!db)
                return st;
        region_div d;
        if (*code && (st = region_div_arg(call, db, code, "region_code", &d)) != SB_OK)
                return st;
        int r = fill_settings(call, db, code, *code ? &d : NULL, day, resp);
        if (r < 0)
                return sb_service_db_fail(call, r, "reading the settings");
        return SB_OK;
}

/* --- SetRegionSettings --- */

typedef struct set_job {
        const Sharebuy__Region__V1__SetRegionSettingsRequest *req;
        const char *code;
        int64_t effective_day;
        uint64_t by;
        region_refusal ref;
} set_job;

static const char sql_head_ensure[] = "INSERT IGNORE INTO settings_head (region_code, revision) VALUES (?, 0)";
static const char sql_head_lock[] = "SELECT revision FROM settings_head WHERE region_code = ? FOR UPDATE";
static const char sql_head_set[] = "UPDATE settings_head SET revision = ? WHERE region_code = ?";
static const char sql_latest[] =
        "SELECT revision, TO_DAYS(effective_day) - 719528, overrides, packs_set, packs FROM settings_version"
        " WHERE region_code = ? AND ? >= 0 ORDER BY revision DESC LIMIT 1"; /* the second parameter: see load_version */
/* The newest version of every code (for the validation of codes below the one changed). */
static const char sql_all_latest[] =
        "SELECT v.region_code, v.overrides, v.packs_set, v.packs FROM settings_version v"
        " JOIN settings_head h ON h.region_code = v.region_code AND h.revision = v.revision LIMIT 4096";
static const char sql_insert_version[] =
        "INSERT INTO settings_version (region_code, revision, effective_day, overrides, packs_set, packs, changed_by,"
        " changed_unix_ms, reason) VALUES (?, ?, FROM_DAYS(? + 719528), ?, ?, ?, ?, ?, ?)";

typedef struct code_ov {
        char code[7];
        overrides o;
} code_ov;

static const overrides *find_ov(const code_ov *v, size_t n, const char *code) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(v[i].code, code) == 0)
                        return &v[i].o;
        return NULL;
}

/* Validates the settings every code affected by the change will have: the code itself and every code below it
 * that carries overrides, each merged from its chain with the newest versions (so a scheduled change counts). */
static int validate_all(sb_db *db, set_job *job, const overrides *after) {
        code_ov *all = calloc(DESCENDANTS_MAX, sizeof *all);
        if (!all)
                return -ENOMEM;
        size_t n = 0;
        sb_db_stmt *s;
        int r = sb_db_prepare(db, sql_all_latest, &s);
        if (r == 0)
                r = sb_db_execute(s);
        while (r >= 0 && (r = sb_db_fetch(s)) > 0) {
                if (n == DESCENDANTS_MAX)
                        continue;
                char ov[4096] = "", pk[1024] = "";
                int64_t ps = 0;
                if (sb_db_col_str(s, 0, all[n].code, sizeof all[n].code) < 0)
                        continue;
                (void)sb_db_col_str(s, 1, ov, sizeof ov);
                (void)sb_db_col_i64(s, 2, &ps);
                (void)sb_db_col_str(s, 3, pk, sizeof pk);
                overrides_parse(ov, ps != 0, pk, &all[n].o);
                n++;
        }
        if (r < 0) {
                free(all);
                return r;
        }
        /* The changed code's overrides are the new ones; make sure it is checked even if it had none. */
        size_t mi = n;
        for (size_t i = 0; i < n; i++)
                if (strcmp(all[i].code, job->code) == 0)
                        mi = i;
        if (mi < n) {
                all[mi].o = *after;
        } else if (n < DESCENDANTS_MAX) {
                snprintf(all[n].code, sizeof all[n].code, "%s", job->code);
                all[n].o = *after;
                n++;
        }
        size_t clen = strlen(job->code);
        int level = clen ? region_code_level(job->code) : 0;
        for (size_t i = 0; i < n && r == 0; i++) {
                const char *c = all[i].code;
                /* Below (or at) the changed code: "" covers all; a province its cities; a city itself. */
                bool affected = level == 0 || strcmp(c, job->code) == 0 ||
                                (level == 1 && *c && strncmp(c, job->code, 2) == 0);
                if (!affected)
                        continue;
                effective e = defaults();
                const overrides *o;
                if ((o = find_ov(all, n, "")))
                        apply(&e, o);
                if (*c) {
                        char prov[7];
                        snprintf(prov, sizeof prov, "%.2s0000", c);
                        if ((o = find_ov(all, n, prov)))
                                apply(&e, o);
                        if (region_code_level(c) == 2 && (o = find_ov(all, n, c)))
                                apply(&e, o);
                }
                char why[256];
                if (validate(&e, why, sizeof why) < 0) {
                        if (strcmp(c, job->code) == 0)
                                r = region_refuse(&job->ref, SB_INVALID_ARGUMENT, "REASON_SETTINGS_INVALID",
                                                  "the settings of %s would be invalid: %s", *c ? c : "the platform",
                                                  why);
                        else
                                r = region_refuse(&job->ref, SB_INVALID_ARGUMENT, "REASON_SETTINGS_INVALID",
                                                  "with this change the settings of %s (which has its own "
                                                  "overrides) would be invalid: %s", c, why);
                }
        }
        free(all);
        return r;
}

static int set_tx(sb_db *db, void *arg) {
        set_job *job = arg;
        const Sharebuy__Region__V1__SetRegionSettingsRequest *q = job->req;
        sb_db_stmt *s;
        int r;
        if ((r = sb_db_prepare(db, sql_head_ensure, &s)) < 0 || (r = sb_db_bind_str(s, 0, job->code)) < 0 ||
            (r = sb_db_execute(s)) < 0)
                return r;
        uint64_t head = 0;
        if ((r = sb_db_prepare(db, sql_head_lock, &s)) < 0 || (r = sb_db_bind_str(s, 0, job->code)) < 0 ||
            (r = sb_db_execute(s)) < 0)
                return r;
        while ((r = sb_db_fetch(s)) > 0)
                (void)sb_db_col_u64(s, 0, &head);
        if (r < 0)
                return r;
        if (q->expected_revision && q->expected_revision != head)
                return region_refuse(&job->ref, SB_FAILED_PRECONDITION, "REASON_REVISION_MISMATCH",
                                     "the settings of %s are at revision %" PRIu64 ", not %" PRIu64 ": reload and retry",
                                     *job->code ? job->code : "the platform", head, q->expected_revision);
        overrides before;
        bool found;
        uint64_t rev = 0;
        int64_t last_day = -1;
        memset(&before, 0, sizeof before);
        if ((r = load_version(db, sql_latest, job->code, 0, &before, &found, &rev, &last_day)) < 0)
                return r;
        if (found && last_day > job->effective_day) {
                char d[11];
                region_day_format(last_day, d);
                return region_refuse(&job->ref, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                     "a change of %s is already scheduled for %s: schedule this one on or after it",
                                     *job->code ? job->code : "the platform", d);
        }
        overrides after = before;
        for (size_t i = 0; i < q->n_clear; i++)
                after.has[key_index(q->clear[i])] = false;
        for (size_t i = 0; i < q->n_set; i++) {
                int k = key_index(q->set[i]->key);
                after.has[k] = true;
                after.val[k] = q->set[i]->value;
        }
        if (q->replace_packs) {
                after.packs_set = q->n_packs > 0;
                after.n_packs = q->n_packs;
                for (size_t i = 0; i < q->n_packs; i++) {
                        after.packs[i].price_fen = q->packs[i]->price_fen;
                        after.packs[i].cv = q->packs[i]->cv_units;
                }
        }
        if ((r = validate_all(db, job, &after)) < 0)
                return r;
        if (q->validate_only)
                return 0;
        char ov[4096], pk[1024];
        overrides_format(&after, ov, sizeof ov, pk, sizeof pk);
        unsigned i = 0;
        if ((r = sb_db_prepare(db, sql_insert_version, &s)) < 0 || (r = sb_db_bind_str(s, i++, job->code)) < 0 ||
            (r = sb_db_bind_u64(s, i++, head + 1)) < 0 || (r = sb_db_bind_i64(s, i++, job->effective_day)) < 0 ||
            (r = sb_db_bind_str(s, i++, ov)) < 0 || (r = sb_db_bind_i64(s, i++, after.packs_set)) < 0 ||
            (r = sb_db_bind_str(s, i++, pk)) < 0 || (r = sb_db_bind_u64(s, i++, job->by)) < 0 ||
            (r = sb_db_bind_i64(s, i++, region_now_ms())) < 0 || (r = sb_db_bind_str(s, i++, q->reason)) < 0 ||
            (r = sb_db_execute(s)) < 0)
                return r;
        if ((r = sb_db_prepare(db, sql_head_set, &s)) < 0 || (r = sb_db_bind_u64(s, 0, head + 1)) < 0 ||
            (r = sb_db_bind_str(s, 1, job->code)) < 0)
                return r;
        return sb_db_execute(s);
}

sb_status region_set_settings(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Region__V1__SetRegionSettingsRequest *req = (const void *)req_;
        Sharebuy__Region__V1__RegionSettings *resp = (void *)resp_;
        sb_claims cl;
        sb_status st = sb_service_auth(call, SB_ROLES(SB_ROLE_ADMIN), &cl);
        if (st != SB_OK)
                return st;
        const char *code = req->region_code ? req->region_code : "";
        if (*code && (st = region_code_arg(call, code, "region_code")) != SB_OK)
                return st;
        if ((st = region_text_arg(call, req->reason, "reason", REGION_REASON_MAX_CHARS, true)) != SB_OK)
                return st;
        if (req->n_set > SETTINGS_KEYS_MAX || req->n_clear > SETTINGS_KEYS_MAX)
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                           "at most %d keys to set and %d to clear", SETTINGS_KEYS_MAX,
                                           SETTINGS_KEYS_MAX);
        bool seen[N_KEYS] = { false };
        for (size_t i = 0; i < req->n_set; i++) {
                const char *k = req->set[i]->key ? req->set[i]->key : "";
                int idx = key_index(k);
                if (idx < 0)
                        return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                                   "unknown settings key \"%.40s\"%s", k,
                                                   strcmp(k, "activation_packs") == 0 ? ": use replace_packs" : "");
                if (seen[idx])
                        return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                                   "key %s is given twice", k);
                seen[idx] = true;
                int64_t v = req->set[i]->value;
                if (v < keys[idx].min || v > keys[idx].max)
                        return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_SETTINGS_INVALID",
                                                   "%s must be within %" PRId64 "..%" PRId64, k, keys[idx].min,
                                                   keys[idx].max);
        }
        for (size_t i = 0; i < req->n_clear; i++) {
                const char *k = req->clear[i] ? req->clear[i] : "";
                int idx = key_index(k);
                if (idx < 0)
                        return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                                   "unknown settings key \"%.40s\" to clear", k);
                if (seen[idx])
                        return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                                   "key %s is both set and cleared", k);
        }
        if (req->n_packs && !req->replace_packs)
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                           "packs are given only with replace_packs");
        if (req->n_packs > SB_ECON_MAX_PACKS)
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_SETTINGS_INVALID",
                                           "at most %d activation packs", SB_ECON_MAX_PACKS);
        int64_t tomorrow = today() + 1, day = tomorrow;
        if (req->effective_business_day && *req->effective_business_day) {
                if (region_day_parse(req->effective_business_day, &day) < 0)
                        return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                                   "effective_business_day must be a date \"YYYY-MM-DD\"");
                if (day < tomorrow) {
                        char t[11];
                        region_day_format(tomorrow, t);
                        return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                                   "effective_business_day must be %s or later: a day's sales use "
                                                   "one set of rules",
                                                   t);
                }
        }
        sb_db *db = region_db(call, &st);
        if (!db)
                return st;
        region_div d;
        if (*code) {
                if ((st = region_div_arg(call, db, code, "region_code", &d)) != SB_OK)
                        return st;
                if (d.level == 3 || (d.level == 2 && strcmp(code + 4, "00") != 0))
                        return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                                   "%s is a district: only provinces and cities carry overrides", code);
        }
        set_job job = { .req = req, .code = code, .effective_day = day, .by = cl.uid };
        int r = sb_db_tx(db, set_tx, &job);
        if ((st = region_tx_status(call, r, &job.ref, "storing the settings")) != SB_OK)
                return st;
        r = fill_settings(call, db, code, *code ? &d : NULL, today(), resp);
        if (r < 0)
                return sb_service_db_fail(call, r, "reading the settings");
        return SB_OK;
}

/* --- ListSettingsHistory --- */

static const char sql_history[] =
        "SELECT v.id, v.region_code, v.revision, v.changed_by, v.changed_unix_ms, v.reason,"
        " TO_DAYS(v.effective_day) - 719528, v.overrides, v.packs_set, v.packs, p.overrides, p.packs_set, p.packs"
        " FROM settings_version v LEFT JOIN settings_version p"
        "   ON p.region_code = v.region_code AND p.revision = v.revision - 1"
        " WHERE (? = 1 OR v.region_code = ?) AND (? = 0 OR v.id < ?)"
        " ORDER BY v.id DESC LIMIT ?";

sb_status region_list_settings_history(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Region__V1__ListSettingsHistoryRequest *req = (const void *)req_;
        Sharebuy__Region__V1__ListSettingsHistoryResponse *resp = (void *)resp_;
        sb_claims cl;
        sb_status st = sb_service_auth(call, SB_ROLES(SB_ROLE_ADMIN) | SB_ROLES(SB_ROLE_CENTRE_OPERATOR), &cl);
        if (st != SB_OK)
                return st;
        const char *code = req->region_code ? req->region_code : "";
        if (*code && (st = region_code_arg(call, code, "region_code")) != SB_OK)
                return st;
        uint32_t size = region_page_size(req->page, HISTORY_DEFAULT, HISTORY_MAX);
        uint32_t filter = region_hash_u64(region_hash_str(REGION_HASH_INIT, code), req->all_codes);
        char key[24];
        bool has;
        if ((st = region_page_parse(call, req->page, 'H', filter, key, sizeof key, &has)) != SB_OK)
                return st;
        unsigned long long before_id = 0;
        if (has && (sscanf(key, "%llu", &before_id) != 1 || before_id == 0))
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_PAGE_TOKEN_INVALID",
                                           "the page token is not one this method gave out");
        sb_db *db = region_db(call, &st);
        if (!db)
                return st;
        region_div d;
        if (*code && (st = region_div_arg(call, db, code, "region_code", &d)) != SB_OK)
                return st;
        if (cl.role == SB_ROLE_CENTRE_OPERATOR) {
                /* An operator reads the history of codes inside its centre's area only. */
                static const char sql_area[] =
                        "SELECT c.district_code, c.level FROM centre c JOIN centre_operator o ON o.centre_id = c.id"
                        " WHERE c.id = ? AND o.user_id = ? AND c.status IN (2, 3)";
                sb_db_stmt *s;
                char area[7] = "";
                int64_t level = 0;
                int r = sb_db_prepare(db, sql_area, &s);
                if (r == 0 && (r = sb_db_bind_u64(s, 0, cl.centre_id)) == 0 && (r = sb_db_bind_u64(s, 1, cl.uid)) == 0)
                        r = sb_db_execute(s);
                while (r >= 0 && (r = sb_db_fetch(s)) > 0) {
                        (void)sb_db_col_str(s, 0, area, sizeof area);
                        (void)sb_db_col_i64(s, 1, &level);
                }
                if (r < 0)
                        return sb_service_db_fail(call, r, "reading the operator's centre");
                if (req->all_codes || !*code || !*area || !region_div_inside(&d, area, (int)level))
                        return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_OUTSIDE_AREA",
                                                   "an operator reads the settings history of codes inside its "
                                                   "centre's area only");
        }
        sb_db_stmt *s;
        unsigned i = 0;
        int r = sb_db_prepare(db, sql_history, &s);
        if (r == 0 && (r = sb_db_bind_i64(s, i++, req->all_codes)) == 0 && (r = sb_db_bind_str(s, i++, code)) == 0 &&
            (r = sb_db_bind_u64(s, i++, before_id)) == 0 && (r = sb_db_bind_u64(s, i++, before_id)) == 0 &&
            (r = sb_db_bind_u64(s, i++, (uint64_t)size + 1)) == 0)
                r = sb_db_execute(s);
        if (r < 0)
                return sb_service_db_fail(call, r, "reading the settings history");
        resp->changes = sb_call_alloc(call, size * sizeof *resp->changes);
        bool more = false;
        uint64_t last = 0;
        while ((r = sb_db_fetch(s)) > 0) {
                if (resp->n_changes == size) {
                        more = true;
                        continue;
                }
                Sharebuy__Region__V1__SettingsChange *c = sb_call_alloc(call, sizeof *c);
                sharebuy__region__v1__settings_change__init(c);
                char rc[7] = "", reason[1004] = "", ov[4096] = "", pk[1024] = "", pov[4096] = "", ppk[1024] = "";
                int64_t day = 0, ps = 0, pps = 0;
                (void)sb_db_col_u64(s, 0, &c->change_id);
                (void)sb_db_col_str(s, 1, rc, sizeof rc);
                (void)sb_db_col_u64(s, 2, &c->revision);
                (void)sb_db_col_u64(s, 3, &c->changed_by_user_id);
                (void)sb_db_col_i64(s, 4, &c->changed_unix_ms);
                (void)sb_db_col_str(s, 5, reason, sizeof reason);
                (void)sb_db_col_i64(s, 6, &day);
                (void)sb_db_col_str(s, 7, ov, sizeof ov);
                (void)sb_db_col_i64(s, 8, &ps);
                (void)sb_db_col_str(s, 9, pk, sizeof pk);
                (void)sb_db_col_str(s, 10, pov, sizeof pov);
                (void)sb_db_col_i64(s, 11, &pps);
                (void)sb_db_col_str(s, 12, ppk, sizeof ppk);
                overrides after, before;
                overrides_parse(ov, ps != 0, pk, &after);
                overrides_parse(pov, pps != 0, ppk, &before);
                char dbuf[11];
                region_day_format(day, dbuf);
                c->region_code = sb_call_strdup(call, rc);
                c->reason = sb_call_strdup(call, reason);
                c->effective_business_day = sb_call_strdup(call, dbuf);
                values_msg(call, &before, &c->before, &c->n_before);
                values_msg(call, &after, &c->after, &c->n_after);
                packs_msg(call, &before, &c->packs_before, &c->n_packs_before);
                packs_msg(call, &after, &c->packs_after, &c->n_packs_after);
                resp->changes[resp->n_changes++] = c;
                last = c->change_id;
        }
        if (r < 0)
                return sb_service_db_fail(call, r, "reading the settings history");
        char lk[24];
        snprintf(lk, sizeof lk, "%" PRIu64, last);
        resp->page = region_page_info(call, more ? region_page_token(call, 'H', filter, lk) : "");
        return SB_OK;
}
