/* The airdrop service (sharebuy.airdrop.v1.Airdrop): its settings, its start and stop, and the handlers. The runs
 * themselves happen on the runner thread (airdrop_run.c); see docs/airdrop.md. */
#include "airdrop.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "airdrop_internal.h"
#include "sharebuy/airdrop/v1/airdrop.pb-c.h"
#include "sharebuy/wallet/v1/wallet.pb-c.h"
#include "units.h"

#define ADMIN_ROLES SB_ROLES(SB_ROLE_ADMIN)
#define SVC_ROLES SB_ROLES(SB_ROLE_SERVICE)
#define ANY_ROLES                                                                                                     \
        (SB_ROLES(SB_ROLE_MEMBER) | SB_ROLES(SB_ROLE_MERCHANT_OWNER) | SB_ROLES(SB_ROLE_CASHIER) |                   \
         SB_ROLES(SB_ROLE_TERMINAL) | SB_ROLES(SB_ROLE_CENTRE_OPERATOR) | ADMIN_ROLES | SVC_ROLES)
#define PAGE_DEFAULT 50
#define PAGE_MAX 500
#define ALLOTMENT_WINDOW_MAX 5000 /* days summed by one GetMyAllotments */

#define TRY(x)                                                                                                       \
        do {                                                                                                         \
                int r_ = (x);                                                                                        \
                if (r_ < 0)                                                                                          \
                        return r_;                                                                                   \
        } while (0)

static airdrop_state *state(sb_call *call) {
        return sb_call_service_data(call);
}

static sb_status invalid(sb_call *call, const char *msg) {
        return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID", "%s", msg);
}

static int drain(sb_db_stmt *s) {
        int r;
        while ((r = sb_db_fetch(s)) > 0)
                ;
        return r;
}

static sb_db *db_for(sb_call *call, sb_status *ret_fail) {
        sb_db *db = sb_service_db(call);
        if (!db) {
                *ret_fail = sb_service_db_unavailable(call);
                return NULL;
        }
        int64_t left = sb_call_remaining_ms(call);
        sb_db_set_statement_timeout_ms(db, left > 600000 ? 0 : (uint32_t) (left > 0 ? left : 1));
        return db;
}

/* A day from a request: empty gives `dflt`. */
static int parse_day_or(const char *s, int64_t dflt, int64_t *ret) {
        if (!s || !*s) {
                *ret = dflt;
                return 0;
        }
        return airdrop_day_parse(s, ret);
}

/* --- Runs as protos ------------------------------------------------------------------------------------------- */

#define RUN_COLUMNS                                                                                                  \
        "business_day, status, trigger_kind, started_by, release_sp, allotted_sp, cut_sp, cost_cv, price_micro,"    \
        " account_count, cv_total, accounts_done, chunks_done, chunks_total, started_ms, finished_ms, resumes"

static int run_from_row(sb_call *call, sb_db_stmt *s, Sharebuy__Airdrop__V1__Run **ret) {
        Sharebuy__Airdrop__V1__Run *r = sb_call_alloc(call, sizeof *r);
        sharebuy__airdrop__v1__run__init(r);
        char day[AIRDROP_DAY_LEN + 1];
        int64_t v;
        TRY(sb_db_col_str(s, 0, day, sizeof day));
        r->business_day = sb_call_strdup(call, day);
        TRY(sb_db_col_i64(s, 1, &v));
        r->status = (Sharebuy__Airdrop__V1__RunStatus) v;
        TRY(sb_db_col_i64(s, 2, &v));
        r->trigger = (Sharebuy__Airdrop__V1__RunTrigger) v;
        TRY(sb_db_col_u64(s, 3, &r->started_by_user_id));
        TRY(sb_db_col_i64(s, 4, &r->release_sp_units));
        TRY(sb_db_col_i64(s, 5, &r->allotted_sp_units));
        TRY(sb_db_col_i64(s, 6, &r->cut_sp_units));
        TRY(sb_db_col_i64(s, 7, &r->cost_cv_units));
        TRY(sb_db_col_i64(s, 8, &r->price_micro_yuan));
        r->next_price_micro_yuan = r->price_micro_yuan;
        TRY(sb_db_col_u64(s, 9, &r->account_count));
        TRY(sb_db_col_i64(s, 10, &r->total_active_cv_units));
        TRY(sb_db_col_u64(s, 11, &r->accounts_done));
        TRY(sb_db_col_i64(s, 12, &v));
        r->chunks_done = (uint32_t) v;
        TRY(sb_db_col_i64(s, 13, &v));
        r->chunks_total = (uint32_t) v;
        TRY(sb_db_col_i64(s, 14, &r->started_unix_ms));
        TRY(sb_db_col_i64(s, 15, &r->finished_unix_ms));
        TRY(sb_db_col_i64(s, 16, &v));
        r->resumes = (uint32_t) v;
        r->duration_ms = (r->finished_unix_ms ? r->finished_unix_ms : airdrop_now_ms()) - r->started_unix_ms;
        *ret = r;
        return 0;
}

/* The run of `day`, or -ENOENT. */
static int run_get(sb_call *call, sb_db *db, const char *day, Sharebuy__Airdrop__V1__Run **ret) {
        sb_db_stmt *s;
        TRY(sb_db_prepare(db, "SELECT " RUN_COLUMNS " FROM runs WHERE business_day = ?", &s));
        TRY(sb_db_bind_str(s, 0, day));
        TRY(sb_db_execute(s));
        int r = sb_db_fetch(s);
        if (r <= 0)
                return r < 0 ? r : -ENOENT;
        TRY(run_from_row(call, s, ret));
        return drain(s);
}

/* --- GetSchedule ---------------------------------------------------------------------------------------------- */

static sb_status h_get_schedule(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        Sharebuy__Airdrop__V1__Schedule *resp = (void *) resp_;
        airdrop_state *st = state(call);
        sb_status code;
        sb_db *db = db_for(call, &code);
        if (!db)
                return code;
        const sb_econ_settings *e = &st->econ;
        resp->cap_sp_units = e->cap_sp;
        resp->treasury_sp_units = e->treasury_sp;
        resp->daily_sp_units = e->daily_release_sp;
        resp->kind = e->schedule == SB_ECON_SCHEDULE_CONSTANT ? SHAREBUY__AIRDROP__V1__SCHEDULE_KIND__SCHEDULE_KIND_CONSTANT
                                                              : SHAREBUY__AIRDROP__V1__SCHEDULE_KIND__SCHEDULE_KIND_DECAYING;
        resp->start_day = st->start_day;
        resp->release_time = sb_call_printf(call, "%02d:%02d", st->release_minute / 60, st->release_minute % 60);
        resp->time_zone = st->zone;
        resp->initial_price_micro_yuan = e->initial_price_micro;
        sb_db_stmt *s;
        int r;
        int64_t released = 0;
        if ((r = sb_db_prepare(db, "SELECT COALESCE(SUM(allotted_sp), 0) FROM runs WHERE status = 2", &s)) < 0 ||
            (r = sb_db_execute(s)) < 0)
                return sb_service_db_fail(call, r, "reading the runs");
        while ((r = sb_db_fetch(s)) > 0)
                sb_db_col_i64(s, 0, &released);
        if (r < 0)
                return sb_service_db_fail(call, r, "reading the runs");
        resp->released_sp_units = released;
        resp->remaining_sp_units = e->cap_sp - e->treasury_sp - released;
        int64_t next, idx, amount = 0;
        if ((r = airdrop_next_day(db, st, &next)) < 0)
                return sb_service_db_fail(call, r, "reading the runs");
        char day[AIRDROP_DAY_LEN + 1];
        airdrop_day_format(next, day);
        resp->next_day = sb_call_strdup(call, day);
        if (sb_econ_day_index(e, next, &idx) == 0)
                sb_econ_daily_release(e, idx, resp->remaining_sp_units, &amount);
        resp->next_day_sp_units = amount;
        resp->next_run_unix_ms = airdrop_release_ms(st, next);
        int64_t days, total;
        if (sb_econ_schedule_end(e, &days, &total) == 0 && days > 0) {
                airdrop_day_format(e->start_day + days - 1, day);
                resp->projected_last_day = sb_call_strdup(call, day);
        }
        return SB_OK;
}

/* --- PreviewRun ----------------------------------------------------------------------------------------------- */

typedef struct top_entry {
        airdrop_row row;
        sb_econ_capped cap;
} top_entry;

typedef struct preview_ctx {
        airdrop_params p;
        const char *day; /* the snapshot read, or NULL for the live view */
        size_t top_n, n_top;
        top_entry top[AIRDROP_TOP_MAX];
        int64_t allotted, cut, cost;
        bool participants_known;
} preview_ctx;

/* True when a ranks below b among the largest shares (smaller share, or equal share and higher id). */
static bool top_below(const top_entry *a, const top_entry *b) {
        if (a->cap.share_sp != b->cap.share_sp)
                return a->cap.share_sp < b->cap.share_sp;
        return a->row.account_id > b->row.account_id;
}

static int preview_rows_fn(const airdrop_row *rows, size_t n, void *arg) {
        preview_ctx *c = arg;
        for (size_t i = 0; i < n; i++) {
                top_entry e = {.row = rows[i]};
                TRY(airdrop_share(&c->p, rows[i].account_id, rows[i].cv, &e.cap));
                if (sb_add_i64(c->allotted, e.cap.share_sp, &c->allotted) < 0 ||
                    sb_add_i64(c->cut, e.cap.cut_sp, &c->cut) < 0 || sb_add_i64(c->cost, e.cap.cost_cv, &c->cost) < 0)
                        return -ERANGE;
                if (c->top_n == 0)
                        continue;
                if (c->n_top < c->top_n) {
                        c->top[c->n_top++] = e;
                        continue;
                }
                size_t lo = 0;
                for (size_t k = 1; k < c->n_top; k++)
                        if (top_below(&c->top[k], &c->top[lo]))
                                lo = k;
                if (top_below(&c->top[lo], &e))
                        c->top[lo] = e;
        }
        return 0;
}

static int preview_fn(sb_db *db, void *arg) {
        preview_ctx *c = arg;
        c->allotted = c->cut = c->cost = 0;
        c->n_top = 0;
        if (!c->participants_known) {
                sb_db_stmt *s;
                TRY(sb_db_prepare(db,
                                  "SELECT COUNT(*), COALESCE(SUM(cv_units), 0), COALESCE(MAX(account_id), 0)"
                                  " FROM sharebuy_wallet.airdrop_active_cv",
                                  &s));
                TRY(sb_db_execute(s));
                int r = sb_db_fetch(s);
                if (r <= 0)
                        return r < 0 ? r : -EIO;
                TRY(sb_db_col_u64(s, 0, &c->p.n));
                TRY(sb_db_col_i64(s, 1, &c->p.cv_total));
                TRY(sb_db_col_u64(s, 2, &c->p.id_max));
                TRY(drain(s));
                TRY(airdrop_allot_params(db, NULL, &c->p));
        }
        return airdrop_scan(db, c->day, 0, UINT64_MAX, preview_rows_fn, c);
}

static int cmp_top(const void *a, const void *b) {
        const top_entry *x = a, *y = b;
        return top_below(x, y) ? 1 : top_below(y, x) ? -1 : 0;
}

static sb_status h_preview_run(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Airdrop__V1__PreviewRunRequest *req = (const void *) req_;
        Sharebuy__Airdrop__V1__RunPreview *resp = (void *) resp_;
        airdrop_state *st = state(call);
        sb_status code;
        if ((code = sb_service_auth(call, ADMIN_ROLES | SVC_ROLES, NULL)) != SB_OK)
                return code;
        if (req->top_n > AIRDROP_TOP_MAX)
                return invalid(call, "top_n: at most 100");
        sb_db *db = db_for(call, &code);
        if (!db)
                return code;
        int64_t next, dayno;
        int r = airdrop_next_day(db, st, &next);
        if (r < 0)
                return sb_service_db_fail(call, r, "reading the runs");
        if (parse_day_or(req->business_day, next, &dayno) < 0)
                return invalid(call, "business_day: \"YYYY-MM-DD\"");
        int64_t idx, amount;
        if (sb_econ_day_index(&st->econ, dayno, &idx) < 0)
                return sb_call_fail(call, SB_FAILED_PRECONDITION, "%s is before the schedule's start %s",
                                    req->business_day, st->start_day);
        if (sb_econ_schedule_amount(&st->econ, idx, &amount) < 0)
                return sb_call_fail(call, SB_INTERNAL, "the schedule has no amount for the day");
        char day[AIRDROP_DAY_LEN + 1];
        airdrop_day_format(dayno, day);
        preview_ctx *c = sb_call_alloc(call, sizeof *c);
        c->top_n = req->top_n ? req->top_n : 10;
        resp->business_day = sb_call_strdup(call, day);
        resp->schedule_sp_units = amount;

        /* A run whose participants are fixed answers from its snapshot. */
        sb_db_stmt *s;
        if ((r = sb_db_prepare(db,
                               "SELECT status, phase, release_sp, price_micro, pool_fen, circulating_sp, account_count,"
                               " cv_total, id_max, leftover_sp, thr_none, thr_rem, thr_id FROM runs WHERE business_day = ?",
                               &s)) < 0 ||
            (r = sb_db_bind_str(s, 0, day)) < 0 || (r = sb_db_execute(s)) < 0 || (r = sb_db_fetch(s)) < 0)
                return sb_service_db_fail(call, r, "reading the run");
        if (r > 0) {
                int64_t status, phase, none;
                sb_db_col_i64(s, 0, &status);
                sb_db_col_i64(s, 1, &phase);
                if (phase >= AIRDROP_PHASE_CREDIT) {
                        sb_db_col_i64(s, 2, &c->p.d);
                        sb_db_col_i64(s, 3, &c->p.price_micro);
                        sb_db_col_i64(s, 4, &resp->backing_pool_fen);
                        sb_db_col_i64(s, 5, &resp->circulating_sp_units);
                        sb_db_col_u64(s, 6, &c->p.n);
                        sb_db_col_i64(s, 7, &c->p.cv_total);
                        sb_db_col_u64(s, 8, &c->p.id_max);
                        sb_db_col_i64(s, 9, &c->p.leftover);
                        sb_db_col_i64(s, 10, &none);
                        sb_db_col_i64(s, 11, &c->p.thr.rem);
                        sb_db_col_u64(s, 12, &c->p.thr.id_max);
                        c->p.thr.none = none != 0;
                        c->participants_known = true;
                        c->day = day;
                        resp->completed = status == AIRDROP_COMPLETED;
                }
        }
        if ((r = drain(s)) < 0)
                return sb_service_db_fail(call, r, "reading the run");
        if (!c->participants_known) {
                Sharebuy__Wallet__V1__GetSupplyRequest sreq = SHAREBUY__WALLET__V1__GET_SUPPLY_REQUEST__INIT;
                ProtobufCMessage *out = NULL;
                char msg[SB_RPC_MESSAGE_MAX];
                code = sb_service_call(call, "wallet", "/sharebuy.wallet.v1.Wallet/GetSupply", &sreq.base,
                                       &sharebuy__wallet__v1__supply__descriptor, 10000, &out, msg, sizeof msg);
                if (code != SB_OK)
                        return sb_call_fail_reason(call, SB_UNAVAILABLE, "REASON_DEPENDENCY_UNAVAILABLE",
                                                   "the wallet did not give the supply: %s", msg);
                Sharebuy__Wallet__V1__Supply *su = (void *) out;
                int64_t unreleased = su->unreleased_sp_units;
                resp->backing_pool_fen = su->backing_pool_fen;
                resp->circulating_sp_units = su->circulating_sp_units;
                protobuf_c_message_free_unpacked(out, NULL);
                if (sb_econ_daily_release(&st->econ, idx, unreleased, &c->p.d) < 0 ||
                    sb_econ_guide_price(resp->backing_pool_fen, resp->circulating_sp_units,
                                        st->econ.initial_price_micro, &c->p.price_micro) < 0)
                        return sb_call_fail(call, SB_INTERNAL, "the supply gives no release or price");
                if (c->p.d == 0)
                        return sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_SUPPLY_EXHAUSTED",
                                                   "nothing is left to release on %s", day);
        }
        /* Read-only; the transaction gives the passes one consistent view of the participants. */
        r = sb_db_tx(db, preview_fn, c);
        if (r == -EINVAL || r == -ERANGE)
                return sb_call_fail(call, SB_INTERNAL, "the allotment refused the participants (%s)", strerror(-r));
        if (r < 0)
                return sb_service_db_fail(call, r, "computing the preview");
        resp->release_sp_units = c->p.d;
        resp->price_micro_yuan = c->p.price_micro;
        resp->next_price_micro_yuan = c->p.price_micro;
        resp->account_count = c->p.n;
        resp->total_active_cv_units = c->p.cv_total;
        resp->allotted_sp_units = c->allotted;
        resp->cut_sp_units = c->cut;
        resp->cost_cv_units = c->cost;
        qsort(c->top, c->n_top, sizeof c->top[0], cmp_top);
        resp->n_largest = c->n_top;
        resp->largest = sb_call_alloc(call, (c->n_top ? c->n_top : 1) * sizeof *resp->largest);
        for (size_t i = 0; i < c->n_top; i++) {
                Sharebuy__Airdrop__V1__Allotment *a = sb_call_alloc(call, sizeof *a);
                sharebuy__airdrop__v1__allotment__init(a);
                Sharebuy__Common__V1__OwnerRef *o = sb_call_alloc(call, sizeof *o);
                sharebuy__common__v1__owner_ref__init(o);
                o->kind = (Sharebuy__Common__V1__OwnerKind) c->top[i].row.owner_kind;
                o->id = c->top[i].row.owner_id;
                a->business_day = resp->business_day;
                a->owner = o;
                a->active_cv_units = c->top[i].row.cv;
                a->sp_units = c->top[i].cap.share_sp;
                a->cost_cv_units = c->top[i].cap.cost_cv;
                a->cut_sp_units = c->top[i].cap.cut_sp;
                a->price_micro_yuan = c->p.price_micro;
                resp->largest[i] = a;
        }
        return SB_OK;
}

/* --- RunDay, GetRun, ListRuns --------------------------------------------------------------------------------- */

static sb_status h_run_day(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Airdrop__V1__RunDayRequest *req = (const void *) req_;
        Sharebuy__Airdrop__V1__RunDayResponse *resp = (void *) resp_;
        airdrop_state *st = state(call);
        sb_claims claims;
        sb_status code;
        if ((code = sb_service_auth(call, ADMIN_ROLES, &claims)) != SB_OK)
                return code;
        sb_db *db = db_for(call, &code);
        if (!db)
                return code;
        int64_t next, dayno;
        int r = airdrop_next_day(db, st, &next);
        if (r < 0)
                return sb_service_db_fail(call, r, "reading the runs");
        if (parse_day_or(req->business_day, next, &dayno) < 0)
                return invalid(call, "business_day: \"YYYY-MM-DD\"");
        char day[AIRDROP_DAY_LEN + 1], next_s[AIRDROP_DAY_LEN + 1];
        airdrop_day_format(dayno, day);
        airdrop_day_format(next, next_s);
        Sharebuy__Airdrop__V1__Run *run = NULL;
        r = run_get(call, db, day, &run);
        if (r < 0 && r != -ENOENT)
                return sb_service_db_fail(call, r, "reading the run");
        if (r == -ENOENT) {
                int64_t idx, amount;
                if (sb_econ_day_index(&st->econ, dayno, &idx) < 0)
                        return sb_call_fail(call, SB_FAILED_PRECONDITION, "%s is before the schedule's start %s", day,
                                            st->start_day);
                if (dayno > next)
                        return sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_DAY_OUT_OF_ORDER",
                                                   "%s has not been run yet: days run in order", next_s);
                if (dayno < next)
                        return sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_DAY_OUT_OF_ORDER",
                                                   "%s comes before the last completed day", day);
                int64_t now = airdrop_now_ms();
                if (now < airdrop_release_ms(st, dayno))
                        return sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_DAY_NOT_DUE",
                                                   "the release time of %s has not come", day);
                if (sb_econ_schedule_amount(&st->econ, idx, &amount) < 0 || amount == 0)
                        return sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_SUPPLY_EXHAUSTED",
                                                   "the schedule releases nothing on %s", day);
                sb_db_stmt *s;
                if ((r = sb_db_prepare(db,
                                       "INSERT IGNORE INTO runs (business_day, status, phase, trigger_kind, started_by,"
                                       " chunk_accounts, started_ms) VALUES (?, 1, 0, 2, ?, ?, ?)",
                                       &s)) < 0 ||
                    (r = sb_db_bind_str(s, 0, day)) < 0 || (r = sb_db_bind_u64(s, 1, claims.uid)) < 0 ||
                    (r = sb_db_bind_i64(s, 2, st->chunk_accounts)) < 0 || (r = sb_db_bind_i64(s, 3, now)) < 0 ||
                    (r = sb_db_execute(s)) < 0)
                        return sb_service_db_fail(call, r, "starting the run");
        } else if (run->status == SHAREBUY__AIRDROP__V1__RUN_STATUS__RUN_STATUS_COMPLETED) {
                resp->run = run;
                resp->replayed = true;
                return SB_OK;
        }
        airdrop_runner_kick(st);
        for (;;) {
                if ((r = run_get(call, db, day, &run)) < 0)
                        return sb_service_db_fail(call, r, "reading the run");
                if (!req->wait || run->status == SHAREBUY__AIRDROP__V1__RUN_STATUS__RUN_STATUS_COMPLETED ||
                    sb_call_remaining_ms(call) < 300)
                        break;
                struct timespec ts = {.tv_sec = 0, .tv_nsec = 100000000};
                nanosleep(&ts, NULL);
        }
        resp->run = run;
        return SB_OK;
}

static sb_status h_get_run(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Airdrop__V1__GetRunRequest *req = (const void *) req_;
        sb_status code;
        if ((code = sb_service_auth(call, ANY_ROLES, NULL)) != SB_OK)
                return code;
        int64_t d;
        if (airdrop_day_parse(req->business_day, &d) < 0)
                return invalid(call, "business_day: \"YYYY-MM-DD\"");
        sb_db *db = db_for(call, &code);
        if (!db)
                return code;
        Sharebuy__Airdrop__V1__Run *run;
        int r = run_get(call, db, req->business_day, &run);
        if (r == -ENOENT)
                return sb_call_fail(call, SB_NOT_FOUND, "%s has not been started", req->business_day);
        if (r < 0)
                return sb_service_db_fail(call, r, "reading the run");
        /* The runtime packs resp_ itself: copy the fields over the runtime's message. */
        Sharebuy__Airdrop__V1__Run *resp = (void *) resp_;
        ProtobufCMessage base = resp->base;
        *resp = *run;
        resp->base = base;
        return SB_OK;
}

/* Window and page of a list: from/to inclusive ("" open), the page token "d|<day>" (days before it). */
static sb_status window(sb_call *call, const char *from, const char *to, const Sharebuy__Common__V1__PageRequest *pg,
                        char ret_from[11], char ret_to[11], char ret_before[11], size_t *ret_size) {
        int64_t d;
        if ((from && *from && airdrop_day_parse(from, &d) < 0) || (to && *to && airdrop_day_parse(to, &d) < 0))
                return invalid(call, "from_day and to_day: \"YYYY-MM-DD\" or empty");
        snprintf(ret_from, 11, "%s", from && *from ? from : "0000-00-00");
        snprintf(ret_to, 11, "%s", to && *to ? to : "9999-99-99");
        if (strcmp(ret_from, ret_to) > 0)
                return invalid(call, "from_day is after to_day");
        snprintf(ret_before, 11, "9999-99-99");
        size_t size = PAGE_DEFAULT;
        if (pg) {
                if (pg->page_size)
                        size = pg->page_size > PAGE_MAX ? PAGE_MAX : pg->page_size;
                if (pg->page_token && *pg->page_token) {
                        if (strncmp(pg->page_token, "d|", 2) != 0 || airdrop_day_parse(pg->page_token + 2, &d) < 0)
                                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_PAGE_TOKEN_INVALID",
                                                           "page_token is not one this RPC gave");
                        snprintf(ret_before, 11, "%s", pg->page_token + 2);
                }
        }
        *ret_size = size;
        return SB_OK;
}

static sb_status h_list_runs(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Airdrop__V1__ListRunsRequest *req = (const void *) req_;
        Sharebuy__Airdrop__V1__ListRunsResponse *resp = (void *) resp_;
        sb_status code;
        if ((code = sb_service_auth(call, ANY_ROLES, NULL)) != SB_OK)
                return code;
        char from[11], to[11], before[11];
        size_t size;
        if ((code = window(call, req->from_day, req->to_day, req->page, from, to, before, &size)) != SB_OK)
                return code;
        sb_db *db = db_for(call, &code);
        if (!db)
                return code;
        sb_db_stmt *s;
        int r;
        if ((r = sb_db_prepare(db,
                               "SELECT " RUN_COLUMNS " FROM runs WHERE business_day >= ? AND business_day <= ?"
                               " AND business_day < ? ORDER BY business_day DESC LIMIT ?",
                               &s)) < 0 ||
            (r = sb_db_bind_str(s, 0, from)) < 0 || (r = sb_db_bind_str(s, 1, to)) < 0 ||
            (r = sb_db_bind_str(s, 2, before)) < 0 || (r = sb_db_bind_u64(s, 3, size + 1)) < 0 ||
            (r = sb_db_execute(s)) < 0)
                return sb_service_db_fail(call, r, "listing the runs");
        resp->runs = sb_call_alloc(call, (size + 1) * sizeof *resp->runs);
        size_t n = 0;
        while ((r = sb_db_fetch(s)) > 0) {
                Sharebuy__Airdrop__V1__Run *run;
                if (run_from_row(call, s, &run) < 0)
                        return sb_call_fail(call, SB_INTERNAL, "a run row is malformed");
                resp->runs[n++] = run;
        }
        if (r < 0)
                return sb_service_db_fail(call, r, "listing the runs");
        Sharebuy__Common__V1__PageInfo *pi = sb_call_alloc(call, sizeof *pi);
        sharebuy__common__v1__page_info__init(pi);
        pi->next_page_token = "";
        if (n > size) {
                n = size;
                pi->next_page_token = sb_call_printf(call, "d|%s", resp->runs[n - 1]->business_day);
        }
        resp->n_runs = n;
        resp->page = pi;
        return SB_OK;
}

/* --- GetMyAllotments ------------------------------------------------------------------------------------------ */

typedef struct mine_row {
        char day[AIRDROP_DAY_LEN + 1];
        uint64_t seq, account_id, chunk_accounts, chunks_first;
        int64_t cv;
        airdrop_params p;
        sb_econ_capped cap;
} mine_row;

/* The ledger transaction that credited the account at seq of a day's chunk (0 when none). */
static int tx_of(sb_db *db, const mine_row *m, uint64_t *ret) {
        *ret = 0;
        if (m->cap.share_sp == 0 || m->chunk_accounts == 0)
                return 0;
        /* Stream 0's chunks first, then stream 1's from seq AIRDROP_SEQ_STREAM1 (migration 0009). */
        uint64_t chunk = m->seq / m->chunk_accounts, off = m->seq % m->chunk_accounts;
        if (m->seq >= AIRDROP_SEQ_STREAM1) {
                chunk = m->chunks_first + (m->seq - AIRDROP_SEQ_STREAM1) / m->chunk_accounts;
                off = (m->seq - AIRDROP_SEQ_STREAM1) % m->chunk_accounts;
        }
        sb_db_stmt *s;
        TRY(sb_db_prepare(db, "SELECT tx_map FROM chunks WHERE business_day = ? AND chunk_no = ?", &s));
        TRY(sb_db_bind_str(s, 0, m->day));
        TRY(sb_db_bind_u64(s, 1, chunk));
        TRY(sb_db_execute(s));
        int r = sb_db_fetch(s);
        if (r <= 0)
                return r;
        size_t len = 0;
        const uint8_t *p = sb_db_col_data(s, 0, &len);
        for (size_t i = 0; p && i + 12 <= len; i += 12) {
                uint64_t o = 0, id = 0;
                for (int b = 0; b < 4; b++)
                        o |= (uint64_t) p[i + (size_t) b] << (8 * b);
                for (int b = 0; b < 8; b++)
                        id |= (uint64_t) p[i + 4 + (size_t) b] << (8 * b);
                if (o > off)
                        break;
                *ret = id;
        }
        return drain(s);
}

static sb_status h_get_my_allotments(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Airdrop__V1__GetMyAllotmentsRequest *req = (const void *) req_;
        Sharebuy__Airdrop__V1__GetMyAllotmentsResponse *resp = (void *) resp_;
        sb_claims cl;
        sb_status code;
        if ((code = sb_service_auth(call,
                                    SB_ROLES(SB_ROLE_MEMBER) | SB_ROLES(SB_ROLE_MERCHANT_OWNER) | ADMIN_ROLES |
                                            SVC_ROLES,
                                    &cl)) != SB_OK)
                return code;
        int kind;
        uint64_t id;
        bool any = cl.role == SB_ROLE_ADMIN || cl.role == SB_ROLE_SERVICE;
        bool given = req->owner && (req->owner->kind != 0 || req->owner->id != 0);
        if (given) {
                if (req->owner->kind < 1 || req->owner->kind > 3 || req->owner->id == 0)
                        return invalid(call, "owner: a kind and an id");
                kind = (int) req->owner->kind;
                id = req->owner->id;
        } else if (cl.role == SB_ROLE_MEMBER) {
                kind = 1;
                id = cl.uid;
        } else if (cl.role == SB_ROLE_MERCHANT_OWNER) {
                kind = 2;
                id = cl.merchant_id;
        } else
                return invalid(call, "owner: required for an admin or a service");
        if (!any && !((cl.role == SB_ROLE_MEMBER && kind == 1 && id == cl.uid) ||
                      (cl.role == SB_ROLE_MERCHANT_OWNER && kind == 2 && id == cl.merchant_id)))
                return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_SCOPE_MISMATCH",
                                           "these are another owner's allotments");
        char from[11], to[11], before[11];
        size_t size;
        if ((code = window(call, req->from_day, req->to_day, req->page, from, to, before, &size)) != SB_OK)
                return code;
        sb_db *db = db_for(call, &code);
        if (!db)
                return code;
        sb_db_stmt *s;
        int r;
        /* The owner's CV account (unique key of the wallet's accounts), then each completed day in the window (the
         * runs' primary key), then that day's block holding the account (the first block whose last account is not
         * below it, by day_last of migration 0010) and in it the account's record, found by its mark and id. */
        if ((r = sb_db_prepare(db,
                               "SELECT r.business_day, (SELECT CONCAT(LPAD(b.seq + (INSTR(b.recs, CONCAT('#',"
                               " LPAD(a.account_id, 20, '0'))) - 1) DIV " AIRDROP_STR(AIRDROP_REC) ", 10, '0'),"
                               " SUBSTRING(b.recs, INSTR(b.recs, CONCAT('#', LPAD(a.account_id, 20, '0'))), "
                               AIRDROP_STR(AIRDROP_REC) ")) FROM snapshot_blocks b WHERE b.business_day = r.business_day"
                               " AND b.last_account >= a.account_id ORDER BY b.last_account LIMIT 1),"
                               " a.account_id, r.release_sp, r.cv_total,"
                               " r.account_count, r.id_max, r.price_micro, r.leftover_sp, r.thr_none, r.thr_rem,"
                               " r.thr_id, r.chunk_accounts, COALESCE(r.chunks_first, r.chunks_total)"
                               " FROM sharebuy_wallet.airdrop_cv_accounts a STRAIGHT_JOIN runs r"
                               " WHERE a.owner_kind = ? AND a.owner_id = ? AND r.status = 2 AND r.business_day >= ?"
                               " AND r.business_day <= ? ORDER BY r.business_day DESC LIMIT " AIRDROP_STR(ALLOTMENT_WINDOW_MAX),
                               &s)) < 0 ||
            (r = sb_db_bind_i64(s, 0, kind)) < 0 || (r = sb_db_bind_u64(s, 1, id)) < 0 ||
            (r = sb_db_bind_str(s, 2, from)) < 0 || (r = sb_db_bind_str(s, 3, to)) < 0 || (r = sb_db_execute(s)) < 0)
                return sb_service_db_fail(call, r, "reading the allotments");
        mine_row *rows = sb_call_alloc(call, ALLOTMENT_WINDOW_MAX * sizeof *rows);
        size_t n = 0;
        while ((r = sb_db_fetch(s)) > 0) {
                if (n >= ALLOTMENT_WINDOW_MAX)
                        continue;
                mine_row *m = &rows[n];
                int64_t none;
                /* The account's position in 10 digits, then its record; the position alone when the day's block
                 * holds no record of it, NULL when no block reaches its id: not a participant of that day. */
                size_t hit_len = 0;
                const uint8_t *hit = sb_db_col_data(s, 1, &hit_len);
                if (!hit || hit_len == 10)
                        continue;
                uint64_t seq = 0;
                airdrop_row rec;
                if (hit_len != 10 + AIRDROP_REC || airdrop_parse_digits(hit, 10, UINT32_MAX, &seq) < 0 ||
                    airdrop_block_parse(hit + 10, AIRDROP_REC, 1, seq, &rec) < 0 ||
                    sb_db_col_str(s, 0, m->day, sizeof m->day) < 0 || sb_db_col_u64(s, 2, &m->account_id) < 0 ||
                    rec.account_id != m->account_id || sb_db_col_i64(s, 3, &m->p.d) < 0 ||
                    sb_db_col_i64(s, 4, &m->p.cv_total) < 0 || sb_db_col_u64(s, 5, &m->p.n) < 0 ||
                    sb_db_col_u64(s, 6, &m->p.id_max) < 0 || sb_db_col_i64(s, 7, &m->p.price_micro) < 0 ||
                    sb_db_col_i64(s, 8, &m->p.leftover) < 0 || sb_db_col_i64(s, 9, &none) < 0 ||
                    sb_db_col_i64(s, 10, &m->p.thr.rem) < 0 || sb_db_col_u64(s, 11, &m->p.thr.id_max) < 0 ||
                    sb_db_col_u64(s, 12, &m->chunk_accounts) < 0 || sb_db_col_u64(s, 13, &m->chunks_first) < 0) {
                        drain(s);
                        return sb_call_fail(call, SB_INTERNAL, "an allotment row is malformed");
                }
                m->seq = rec.seq;
                m->cv = rec.cv;
                m->p.thr.none = none != 0;
                n++;
        }
        if (r < 0)
                return sb_service_db_fail(call, r, "reading the allotments");
        resp->allotments = sb_call_alloc(call, (size + 1) * sizeof *resp->allotments);
        size_t shown = 0;
        bool more = false;
        for (size_t i = 0; i < n; i++) {
                mine_row *m = &rows[i];
                if (airdrop_share(&m->p, m->account_id, m->cv, &m->cap) < 0)
                        return sb_call_fail(call, SB_INTERNAL, "an allotment cannot be recomputed");
                if (sb_add_i64(resp->total_sp_units, m->cap.share_sp, &resp->total_sp_units) < 0 ||
                    sb_add_i64(resp->total_cost_cv_units, m->cap.cost_cv, &resp->total_cost_cv_units) < 0)
                        return sb_call_fail(call, SB_INTERNAL, "the totals overflow");
                if (strcmp(m->day, before) >= 0)
                        continue;
                if (shown == size) {
                        more = true;
                        continue;
                }
                Sharebuy__Airdrop__V1__Allotment *a = sb_call_alloc(call, sizeof *a);
                sharebuy__airdrop__v1__allotment__init(a);
                Sharebuy__Common__V1__OwnerRef *o = sb_call_alloc(call, sizeof *o);
                sharebuy__common__v1__owner_ref__init(o);
                o->kind = (Sharebuy__Common__V1__OwnerKind) kind;
                o->id = id;
                a->business_day = sb_call_strdup(call, m->day);
                a->owner = o;
                a->active_cv_units = m->cv;
                a->sp_units = m->cap.share_sp;
                a->cost_cv_units = m->cap.cost_cv;
                a->cut_sp_units = m->cap.cut_sp;
                a->price_micro_yuan = m->p.price_micro;
                if ((r = tx_of(db, m, &a->transaction_id)) < 0)
                        return sb_service_db_fail(call, r, "reading the chunk");
                resp->allotments[shown++] = a;
        }
        resp->n_allotments = shown;
        Sharebuy__Common__V1__PageInfo *pi = sb_call_alloc(call, sizeof *pi);
        sharebuy__common__v1__page_info__init(pi);
        pi->next_page_token = more ? sb_call_printf(call, "d|%s", resp->allotments[shown - 1]->business_day) : "";
        resp->page = pi;
        return SB_OK;
}

/* --- Settings, start and stop --------------------------------------------------------------------------------- */

static const sb_rpc_method airdrop_methods[] = {
        {"GetSchedule", h_get_schedule}, {"PreviewRun", h_preview_run},
        {"RunDay", h_run_day},           {"ListRuns", h_list_runs},
        {"GetRun", h_get_run},           {"GetMyAllotments", h_get_my_allotments},
};

static const sb_config_key airdrop_keys[] = {
        {"airdrop.cap_sp_units", SB_CONFIG_INT, "9723600000", 1, SB_ECON_MAX_SUPPLY_SP, true, false,
         "the SP cap in 0.0001 SP; must equal the wallet's wallet.cap_sp_units"},
        {"airdrop.treasury_sp_units", SB_CONFIG_INT, "0", 0, SB_ECON_MAX_SUPPLY_SP, true, false,
         "the part of the cap held by the treasury (not released by the airdrop), 0.0001 SP"},
        {"airdrop.daily_sp_units", SB_CONFIG_INT, "8880000", 1, SB_ECON_MAX_SUPPLY_SP, true, false,
         "D, the daily release in 0.0001 SP (the first year's for a decaying schedule)"},
        {"airdrop.schedule", SB_CONFIG_STRING, "constant", 1, 16, true, false,
         "constant (D every day until the cap) or decaying (D halved every 365 release days)"},
        {"airdrop.start_day", SB_CONFIG_STRING, "2025-01-01", 10, 10, true, false,
         "the first release day, YYYY-MM-DD"},
        {"airdrop.release_time", SB_CONFIG_STRING, "22:00", 5, 5, true, false,
         "local time of the daily run, HH:MM; must match the wallet's cut-off (wallet.cutoff_min)"},
        {"airdrop.time_zone", SB_CONFIG_STRING, "Asia/Shanghai", 1, 63, true, false,
         "IANA time zone of the business day"},
        {"airdrop.initial_price_micro_yuan", SB_CONFIG_INT, "1000000", 1, SB_ECON_MAX_PRICE_MICRO, true, false,
         "the guide price before any SP circulates (previews; the wallet fixes the real one)"},
        {"airdrop.chunk_accounts", SB_CONFIG_INT, "10000", 1, AIRDROP_CHUNK_MAX, true, false,
         "accounts credited per wallet call (one database transaction each)"},
        {"airdrop.credit_workers", SB_CONFIG_INT, "3", 1, AIRDROP_WORKERS_MAX, true, false,
         "chunks booked at once, each on its own database connection and wallet call"},
        {"airdrop.snapshot_streams", SB_CONFIG_INT, "2", 1, AIRDROP_STREAMS_MAX, true, false,
         "the snapshot is copied in this many account id ranges at once, each on its own connection (1 or 2)"},
        {"airdrop.snapshot_split_min_ids", SB_CONFIG_INT, "100000", 1, 4611686018427387904LL, true, false,
         "the snapshot is split only when the CV accounts' ids span at least this many (a small one is one batch)"},
        {"airdrop.snapshot_batch", SB_CONFIG_INT, "20000", 1, AIRDROP_SNAPSHOT_BATCH, true, false,
         "participants copied into the snapshot per database transaction (tests use small batches)"},
        {"airdrop.chunk_pause", SB_CONFIG_DURATION_MS, "0", 0, 60000, true, false,
         "a pause after each chunk and each snapshot batch (tests; throttling a run)"},
        {"airdrop.timer", SB_CONFIG_BOOL, "true", 0, 0, true, false,
         "run each due day at its release time (and missed days on start); false: only RunDay"},
};

static bool zone_valid(const char *z) {
        if (!*z || z[0] == '/' || strstr(z, ".."))
                return false;
        for (const char *p = z; *p; p++)
                if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '/' ||
                      *p == '_' || *p == '-' || *p == '+'))
                        return false;
        char path[160];
        snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", z);
        struct stat sb;
        return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static void declare_metrics(airdrop_state *st) {
        sb_metrics_registry *reg = sb_service_metrics();
        if (!reg)
                return;
        static const struct {
                const char *name, *help;
                sb_metrics_type type;
        } fams[] = {
                {"sharebuy_airdrop_run_chunks_done", "chunks credited of the current run", SB_METRICS_GAUGE},
                {"sharebuy_airdrop_run_chunks_total", "chunks of the current run", SB_METRICS_GAUGE},
                {"sharebuy_airdrop_run_accounts_done", "accounts credited of the current run", SB_METRICS_GAUGE},
                {"sharebuy_airdrop_run_running", "1 while a run is going", SB_METRICS_GAUGE},
                {"sharebuy_airdrop_runs_completed_total", "runs completed by this process", SB_METRICS_COUNTER},
        };
        sb_metrics_series **out[] = {&st->g_chunks_done, &st->g_chunks_total, &st->g_accounts_done, &st->g_running,
                                     &st->c_completed};
        for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++) {
                sb_metrics_series *ser = NULL;
                if (sb_metrics_plain(reg, fams[i].name, fams[i].help, fams[i].type, &ser) == 0)
                        *out[i] = ser;
        }
        if (!st->g_chunks_done || !st->g_chunks_total || !st->g_accounts_done || !st->g_running || !st->c_completed)
                st->g_chunks_done = st->g_chunks_total = st->g_accounts_done = st->g_running = st->c_completed = NULL;
}

static int airdrop_init(const sb_config *cfg, void **ret_state, char *err, size_t err_n) {
        sb_econ_settings s = sb_econ_settings_default();
        s.cap_sp = sb_config_int(cfg, "airdrop.cap_sp_units");
        s.treasury_sp = sb_config_int(cfg, "airdrop.treasury_sp_units");
        s.daily_release_sp = sb_config_int(cfg, "airdrop.daily_sp_units");
        s.initial_price_micro = sb_config_int(cfg, "airdrop.initial_price_micro_yuan");
        const char *kind = sb_config_str(cfg, "airdrop.schedule");
        if (strcmp(kind, "constant") == 0)
                s.schedule = SB_ECON_SCHEDULE_CONSTANT;
        else if (strcmp(kind, "decaying") == 0)
                s.schedule = SB_ECON_SCHEDULE_DECAYING;
        else {
                snprintf(err, err_n, "airdrop.schedule: \"%s\" is not constant or decaying", kind);
                return -EINVAL;
        }
        const char *start = sb_config_str(cfg, "airdrop.start_day");
        if (airdrop_day_parse(start, &s.start_day) < 0) {
                snprintf(err, err_n, "airdrop.start_day: \"%s\" is not a day YYYY-MM-DD (years 2000..2999)", start);
                return -EINVAL;
        }
        const char *rt = sb_config_str(cfg, "airdrop.release_time");
        if (strlen(rt) != 5 || rt[2] != ':' || rt[0] < '0' || rt[0] > '2' || rt[1] < '0' || rt[1] > '9' ||
            rt[3] < '0' || rt[3] > '5' || rt[4] < '0' || rt[4] > '9' || (rt[0] - '0') * 10 + (rt[1] - '0') > 23) {
                snprintf(err, err_n, "airdrop.release_time: \"%s\" is not a time HH:MM (00:00..23:59)", rt);
                return -EINVAL;
        }
        s.release_minute_of_day = ((rt[0] - '0') * 10 + (rt[1] - '0')) * 60 + (rt[3] - '0') * 10 + (rt[4] - '0');
        const char *zone = sb_config_str(cfg, "airdrop.time_zone");
        if (!zone_valid(zone)) {
                snprintf(err, err_n, "airdrop.time_zone: \"%s\" is not a known IANA zone (e.g. Asia/Shanghai)", zone);
                return -EINVAL;
        }
        char why[256];
        if (sb_econ_settings_validate(&s, why, sizeof why) < 0) {
                snprintf(err, err_n, "airdrop settings refused by the economy validator: %s", why);
                return -EINVAL;
        }
        airdrop_state *st = calloc(1, sizeof *st);
        if (!st)
                return -ENOMEM;
        st->econ = s;
        st->release_minute = (int) s.release_minute_of_day;
        snprintf(st->zone, sizeof st->zone, "%s", zone);
        snprintf(st->start_day, sizeof st->start_day, "%s", start);
        st->chunk_accounts = sb_config_int(cfg, "airdrop.chunk_accounts");
        st->chunk_pause_ms = sb_config_int(cfg, "airdrop.chunk_pause");
        st->credit_workers = (int) sb_config_int(cfg, "airdrop.credit_workers");
        st->snapshot_streams = (int) sb_config_int(cfg, "airdrop.snapshot_streams");
        st->snapshot_split_min_ids = sb_config_int(cfg, "airdrop.snapshot_split_min_ids");
        st->snapshot_batch = sb_config_int(cfg, "airdrop.snapshot_batch");
        st->timer = sb_config_bool(cfg, "airdrop.timer");
        st->dbc = *sb_service_db_config();
        /* The business day's zone is the process's: set before the runner thread reads the clock. */
        setenv("TZ", zone, 1);
        tzset();
        pthread_mutex_init(&st->mu, NULL);
        pthread_cond_init(&st->cond, NULL);
        declare_metrics(st);
        int r = airdrop_runner_start(st, err, err_n);
        if (r < 0) {
                free(st);
                return r;
        }
        *ret_state = st;
        return 0;
}

static void airdrop_fini(void *state_) {
        airdrop_state *st = state_;
        if (!st)
                return;
        airdrop_runner_stop(st);
        pthread_mutex_destroy(&st->mu);
        pthread_cond_destroy(&st->cond);
        free(st);
}

const sb_service_def airdrop_service = {
        .name = "airdrop",
        .desc = &sharebuy__airdrop__v1__airdrop__descriptor,
        .methods = airdrop_methods,
        .n_methods = sizeof airdrop_methods / sizeof airdrop_methods[0],
        .default_port = 50054,
        .default_metrics_port = 9154,
        .extra_keys = airdrop_keys,
        .n_extra_keys = sizeof airdrop_keys / sizeof airdrop_keys[0],
        .init = airdrop_init,
        .fini = airdrop_fini,
};
