/* Operating centres: applications, approval, sub-centres, suspension, operators, and the two questions the other
 * services ask on their hot paths (CentresForDistrict, CanApproveMerchant).
 *
 * Exclusivity is enforced by the database, not by a check-then-act: a centre that holds its area (active or
 * suspended) has held_code = its division's code under a unique key. Areas nest (a province contains its cities),
 * which a unique key cannot see, so every transaction that makes a centre hold an area first locks the district
 * rows of the division's ancestor chain (province, city, itself) in code order: two overlapping areas always share
 * the larger one's row, so their transactions run one after the other and the second sees the first's centre. */
#include "region_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sharebuy/identity/v1/identity.pb-c.h"
#include "sharebuy/wallet/v1/wallet.pb-c.h"

#define REGION_OPERATORS_MAX 100 /* per centre */
#define REGION_PEER_DEADLINE_MS 5000
#define CENTRES_DEFAULT 50
#define CENTRES_MAX 500

typedef struct centre_row {
        uint64_t id;
        char code[7];
        int level;
        char name[260];
        int status;
        uint64_t parent_id;
        uint64_t applicant;
        char company[404];
        char licence[80];
        char contact_name[260];
        char contact_phone[40];
        char reason[1004];
        int64_t applied_ms, changed_ms;
        uint64_t changed_by;
        char operators[2048]; /* "12,15" */
} centre_row;

#define CENTRE_COLUMNS                                                                                            \
        "c.id, c.district_code, c.level, c.name, c.status, c.parent_id, c.applicant_user_id, c.company_name,"     \
        " c.licence_no, c.contact_name, c.contact_phone, c.status_reason, c.applied_unix_ms,"                     \
        " c.status_changed_unix_ms, c.status_changed_by,"                                                         \
        " (SELECT GROUP_CONCAT(o.user_id ORDER BY o.user_id SEPARATOR ',') FROM centre_operator o"                \
        "  WHERE o.centre_id = c.id)"

static int centre_from_row(const sb_db_stmt *s, centre_row *ret) {
        centre_row c;
        memset(&c, 0, sizeof c);
        int64_t level = 0, status = 0;
        if (sb_db_col_u64(s, 0, &c.id) < 0 || sb_db_col_str(s, 1, c.code, sizeof c.code) < 0 ||
            sb_db_col_i64(s, 2, &level) < 0 || sb_db_col_str(s, 3, c.name, sizeof c.name) < 0 ||
            sb_db_col_i64(s, 4, &status) < 0 || sb_db_col_u64(s, 6, &c.applicant) < 0)
                return -EIO;
        (void)sb_db_col_u64(s, 5, &c.parent_id);
        (void)sb_db_col_str(s, 7, c.company, sizeof c.company);
        (void)sb_db_col_str(s, 8, c.licence, sizeof c.licence);
        (void)sb_db_col_str(s, 9, c.contact_name, sizeof c.contact_name);
        (void)sb_db_col_str(s, 10, c.contact_phone, sizeof c.contact_phone);
        (void)sb_db_col_str(s, 11, c.reason, sizeof c.reason);
        (void)sb_db_col_i64(s, 12, &c.applied_ms);
        (void)sb_db_col_i64(s, 13, &c.changed_ms);
        (void)sb_db_col_u64(s, 14, &c.changed_by);
        (void)sb_db_col_str(s, 15, c.operators, sizeof c.operators);
        c.level = (int)level;
        c.status = (int)status;
        *ret = c;
        return 0;
}

static const char sql_centre[] = "SELECT " CENTRE_COLUMNS " FROM centre c WHERE c.id = ?";
static const char sql_centre_lock[] = "SELECT " CENTRE_COLUMNS " FROM centre c WHERE c.id = ? FOR UPDATE";

/* Reads centre id (locking its row when lock). 0, -ENOENT or a db code; *ret only on success. */
static int centre_load(sb_db *db, uint64_t id, bool lock, centre_row *ret) {
        sb_db_stmt *s;
        int r = sb_db_prepare(db, lock ? sql_centre_lock : sql_centre, &s);
        if (r < 0 || (r = sb_db_bind_u64(s, 0, id)) < 0 || (r = sb_db_execute(s)) < 0)
                return r;
        bool found = false;
        centre_row c;
        while ((r = sb_db_fetch(s)) > 0)
                if (!found && centre_from_row(s, &c) == 0)
                        found = true;
        if (r < 0)
                return r;
        if (!found)
                return -ENOENT;
        *ret = c;
        return 0;
}

/* The Centre message; operator ids only when show_operators. */
static Sharebuy__Region__V1__Centre *centre_msg(sb_call *call, sb_db *db, const centre_row *c, bool show_operators,
                                               const region_div *known_div) {
        Sharebuy__Region__V1__Centre *m = sb_call_alloc(call, sizeof *m);
        sharebuy__region__v1__centre__init(m);
        m->centre_id = c->id;
        region_div d;
        if (known_div && strcmp(known_div->code, c->code) == 0) {
                m->district = region_div_msg(call, known_div);
        } else if (db && region_div_load(db, c->code, &d) == 0) {
                m->district = region_div_msg(call, &d);
        } else {
                /* A retired code: the centre still names it. */
                memset(&d, 0, sizeof d);
                snprintf(d.code, sizeof d.code, "%s", c->code);
                d.level = c->level;
                m->district = region_div_msg(call, &d);
        }
        m->name = sb_call_strdup(call, c->name);
        m->status = (Sharebuy__Region__V1__CentreStatus)c->status;
        m->parent_centre_id = c->parent_id;
        m->applicant_user_id = c->applicant;
        m->company_name = sb_call_strdup(call, c->company);
        m->licence_no = sb_call_strdup(call, c->licence);
        m->contact_name = sb_call_strdup(call, c->contact_name);
        m->contact_phone = sb_call_strdup(call, c->contact_phone);
        m->status_reason = sb_call_strdup(call, c->reason);
        m->applied_unix_ms = c->applied_ms;
        m->status_changed_unix_ms = c->changed_ms;
        m->status_changed_by_user_id = c->changed_by;
        if (show_operators && c->operators[0]) {
                size_t n = 1;
                for (const char *p = c->operators; *p; p++)
                        n += *p == ',';
                m->operator_user_ids = sb_call_alloc(call, n * sizeof *m->operator_user_ids);
                const char *p = c->operators;
                while (*p && m->n_operator_user_ids < n) {
                        char *end;
                        m->operator_user_ids[m->n_operator_user_ids++] = strtoull(p, &end, 10);
                        p = *end == ',' ? end + 1 : end;
                        if (end == p && *p)
                                break;
                }
        }
        return m;
}

static sb_status centre_reply(sb_call *call, sb_db *db, uint64_t id, bool show_operators, ProtobufCMessage *resp_) {
        Sharebuy__Region__V1__Centre *resp = (void *)resp_;
        centre_row c;
        int r = centre_load(db, id, false, &c);
        if (r < 0)
                return sb_service_db_fail(call, r, "reading the centre");
        Sharebuy__Region__V1__Centre *m = centre_msg(call, db, &c, show_operators, NULL);
        m->base = resp->base;
        *resp = *m;
        return SB_OK;
}

static const char sql_is_operator[] = "SELECT 1 FROM centre_operator WHERE centre_id = ? AND user_id = ?";

/* Whether the caller's token is a CENTRE_OPERATOR token for centre_id whose user is still its operator (a token
 * outlives a removal by at most its lifetime; the table is the truth). 1, 0, or a db code. */
static int operates(sb_db *db, const sb_claims *cl, uint64_t centre_id) {
        if (cl->role != SB_ROLE_CENTRE_OPERATOR || cl->centre_id != centre_id || centre_id == 0)
                return 0;
        sb_db_stmt *s;
        int r = sb_db_prepare(db, sql_is_operator, &s);
        if (r < 0 || (r = sb_db_bind_u64(s, 0, centre_id)) < 0 || (r = sb_db_bind_u64(s, 1, cl->uid)) < 0 ||
            (r = sb_db_execute(s)) < 0)
                return r;
        int found = 0;
        while ((r = sb_db_fetch(s)) > 0)
                found = 1;
        return r < 0 ? r : found;
}

static const char sql_bump[] = "UPDATE centre_revision SET revision = revision + 1 WHERE id = 1";

static int bump_revision(sb_db *db) {
        sb_db_stmt *s;
        int r = sb_db_prepare(db, sql_bump, &s);
        return r < 0 ? r : sb_db_execute(s);
}

/* Locks the district rows of d's ancestor chain (itself included), in code order. */
static const char sql_lock_chain[] =
        "SELECT code FROM district WHERE code IN (?, ?, ?) ORDER BY code FOR UPDATE";

static int lock_chain(sb_db *db, const region_div *d) {
        sb_db_stmt *s;
        int r = sb_db_prepare(db, sql_lock_chain, &s);
        if (r < 0 || (r = sb_db_bind_str(s, 0, d->province_code)) < 0 ||
            (r = sb_db_bind_str(s, 1, d->city_code[0] ? d->city_code : d->code)) < 0 ||
            (r = sb_db_bind_str(s, 2, d->code)) < 0 || (r = sb_db_execute(s)) < 0)
                return r;
        while ((r = sb_db_fetch(s)) > 0) {
        }
        return r;
}

/* The held centres whose area overlaps d's: those at d's ancestors or d itself, and those below d. */
static const char sql_overlaps[] =
        "SELECT c.id, c.district_code, c.level FROM centre c JOIN district d ON d.code = c.held_code"
        " WHERE c.held_code IN (?, ?, ?) OR (? = 1 AND d.province_code = ?) OR (? = 2 AND d.city_code = ?)"
        " ORDER BY c.level LIMIT 50";

typedef struct overlap {
        uint64_t id;
        char code[7];
        int level;
} overlap;

/* Finds the held centres overlapping d: the deepest one covering d (at d or an ancestor) in *ret_cover (id 0 if
 * none) and the first one strictly below d in *ret_below (id 0 if none). */
static int find_overlaps(sb_db *db, const region_div *d, overlap *ret_cover, overlap *ret_below) {
        sb_db_stmt *s;
        int r = sb_db_prepare(db, sql_overlaps, &s);
        unsigned i = 0;
        if (r < 0 || (r = sb_db_bind_str(s, i++, d->province_code)) < 0 ||
            (r = sb_db_bind_str(s, i++, d->city_code[0] ? d->city_code : d->code)) < 0 ||
            (r = sb_db_bind_str(s, i++, d->code)) < 0 || (r = sb_db_bind_i64(s, i++, d->level)) < 0 ||
            (r = sb_db_bind_str(s, i++, d->code)) < 0 || (r = sb_db_bind_i64(s, i++, d->level)) < 0 ||
            (r = sb_db_bind_str(s, i++, d->code)) < 0 || (r = sb_db_execute(s)) < 0)
                return r;
        overlap cover = { 0 }, below = { 0 };
        while ((r = sb_db_fetch(s)) > 0) {
                overlap o = { 0 };
                int64_t level = 0;
                if (sb_db_col_u64(s, 0, &o.id) < 0 || sb_db_col_str(s, 1, o.code, sizeof o.code) < 0 ||
                    sb_db_col_i64(s, 2, &level) < 0)
                        continue;
                o.level = (int)level;
                bool covers = strcmp(o.code, d->code) == 0 || strcmp(o.code, d->province_code) == 0 ||
                              strcmp(o.code, d->city_code) == 0;
                if (covers) {
                        if (o.level >= cover.level)
                                cover = o;
                } else if (below.id == 0) {
                        below = o;
                }
        }
        if (r < 0)
                return r;
        *ret_cover = cover;
        *ret_below = below;
        return 0;
}

static bool phone_ok(const char *p) {
        if (strlen(p) != 11 || p[0] != '1')
                return false;
        for (int i = 0; i < 11; i++)
                if (p[i] < '0' || p[i] > '9')
                        return false;
        return true;
}

static sb_status phone_arg(sb_call *call, const char *p, const char *field, bool required) {
        if ((!p || !*p) && !required)
                return SB_OK;
        if (!p || !phone_ok(p))
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_PHONE_INVALID",
                                           "%s must be a mainland mobile number of 11 digits starting with 1", field);
        return SB_OK;
}

static sb_status licence_arg(sb_call *call, const char *p) {
        size_t len = p ? strlen(p) : 0;
        bool ok = len == 0 || len == 18;
        for (size_t i = 0; ok && i < len; i++)
                ok = (p[i] >= '0' && p[i] <= '9') || (p[i] >= 'A' && p[i] <= 'Z');
        if (!ok)
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_LICENCE_INVALID",
                                           "licence_no must be an 18-character unified social credit code "
                                           "(digits and capital letters) or empty");
        return SB_OK;
}

/* --- ApplyCentre --- */

typedef struct apply_job {
        const Sharebuy__Region__V1__ApplyCentreRequest *req;
        const region_div *div;
        uint64_t applicant;
        uint64_t id;
        region_refusal ref;
} apply_job;

static const char sql_apply[] =
        "INSERT INTO centre (district_code, level, name, status, parent_id, held_code, pending_applicant_id,"
        " applicant_user_id, company_name, licence_no, contact_name, contact_phone, note, status_reason,"
        " applied_unix_ms, status_changed_unix_ms, status_changed_by)"
        " VALUES (?, ?, ?, 1, NULL, NULL, ?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?)";

static int apply_tx(sb_db *db, void *arg) {
        apply_job *job = arg;
        overlap cover, below;
        int r = find_overlaps(db, job->div, &cover, &below);
        if (r < 0)
                return r;
        if (cover.id && strcmp(cover.code, job->div->code) == 0)
                return region_refuse(&job->ref, SB_FAILED_PRECONDITION, "REASON_DISTRICT_TAKEN",
                                     "division %s already has centre %" PRIu64, job->div->code, cover.id);
        if (cover.id || below.id) {
                const overlap *o = cover.id ? &cover : &below;
                return region_refuse(&job->ref, SB_FAILED_PRECONDITION, "REASON_CENTRE_OVERLAP",
                                     "the area of %s overlaps centre %" PRIu64 " (%s)%s", job->div->code, o->id,
                                     o->code, cover.id ? ": ask that centre for a sub-centre" : "");
        }
        const Sharebuy__Region__V1__ApplyCentreRequest *q = job->req;
        int64_t now = region_now_ms();
        sb_db_stmt *s;
        unsigned i = 0;
        r = sb_db_prepare(db, sql_apply, &s);
        if (r < 0 || (r = sb_db_bind_str(s, i++, job->div->code)) < 0 ||
            (r = sb_db_bind_i64(s, i++, job->div->level)) < 0 || (r = sb_db_bind_str(s, i++, q->name)) < 0 ||
            (r = sb_db_bind_u64(s, i++, job->applicant)) < 0 || (r = sb_db_bind_u64(s, i++, job->applicant)) < 0 ||
            (r = sb_db_bind_str(s, i++, q->company_name ? q->company_name : "")) < 0 ||
            (r = sb_db_bind_str(s, i++, q->licence_no ? q->licence_no : "")) < 0 ||
            (r = sb_db_bind_str(s, i++, q->contact_name ? q->contact_name : "")) < 0 ||
            (r = sb_db_bind_str(s, i++, q->contact_phone ? q->contact_phone : "")) < 0 ||
            (r = sb_db_bind_str(s, i++, q->note ? q->note : "")) < 0 || (r = sb_db_bind_i64(s, i++, now)) < 0 ||
            (r = sb_db_bind_i64(s, i++, now)) < 0 || (r = sb_db_bind_u64(s, i++, job->applicant)) < 0)
                return r;
        r = sb_db_execute(s);
        if (r == -EEXIST)
                return region_refuse(&job->ref, SB_ALREADY_EXISTS, "REASON_UNSPECIFIED",
                                     "user %" PRIu64 " already has a pending application for %s", job->applicant,
                                     job->div->code);
        if (r < 0)
                return r;
        job->id = sb_db_insert_id(s);
        return 0;
}

sb_status region_apply_centre(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp) {
        const Sharebuy__Region__V1__ApplyCentreRequest *req = (const void *)req_;
        sb_claims cl;
        sb_status st = sb_service_auth(call, SB_ROLES(SB_ROLE_MEMBER) | SB_ROLES(SB_ROLE_ADMIN), &cl);
        if (st != SB_OK)
                return st;
        if ((st = region_code_arg(call, req->district_code, "district_code")) != SB_OK ||
            (st = region_text_arg(call, req->name, "name", REGION_CENTRE_NAME_MAX_CHARS, true)) != SB_OK ||
            (st = region_text_arg(call, req->company_name, "company_name", REGION_COMPANY_MAX_CHARS, true)) != SB_OK ||
            (st = region_text_arg(call, req->contact_name, "contact_name", REGION_CONTACT_MAX_CHARS, true)) != SB_OK ||
            (st = phone_arg(call, req->contact_phone, "contact_phone", true)) != SB_OK ||
            (st = licence_arg(call, req->licence_no)) != SB_OK ||
            (st = region_text_arg(call, req->note, "note", REGION_NOTE_MAX_CHARS, false)) != SB_OK)
                return st;
        uint64_t applicant;
        if (cl.role == SB_ROLE_ADMIN) {
                if (req->applicant_user_id == 0)
                        return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                                   "an admin applies on behalf of an applicant_user_id");
                applicant = req->applicant_user_id;
        } else {
                if (req->applicant_user_id != 0 && req->applicant_user_id != cl.uid)
                        return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_SCOPE_MISMATCH",
                                                   "a member applies only for itself");
                applicant = cl.uid;
        }
        sb_db *db = region_db(call, &st);
        if (!db)
                return st;
        region_div d;
        if ((st = region_div_arg(call, db, req->district_code, "district_code", &d)) != SB_OK)
                return st;
        apply_job job = { .req = req, .div = &d, .applicant = applicant };
        int r = sb_db_tx(db, apply_tx, &job);
        if ((st = region_tx_status(call, r, &job.ref, "storing the application")) != SB_OK)
                return st;
        return centre_reply(call, db, job.id, true, resp);
}

/* --- ApproveCentre / RejectCentre --- */

/* --- The peers: the operator's grant in identity, the centre's ledger accounts in the wallet --- */

/* Ends a call after a peer refused or did not answer: an unknown user is NOT_FOUND (REASON_MEMBER_UNKNOWN), no answer
 * UNAVAILABLE (retry: every step is idempotent), anything else INTERNAL (a broken contract between services). */
static sb_status peer_fail(sb_call *call, const char *peer, sb_status s, const char *msg, uint64_t user) {
        if (s == SB_NOT_FOUND && user)
                return sb_call_fail_reason(call, SB_NOT_FOUND, "REASON_MEMBER_UNKNOWN",
                                           "identity has no user %" PRIu64, user);
        if (s == SB_UNAVAILABLE || s == SB_DEADLINE_EXCEEDED || s == SB_RESOURCE_EXHAUSTED)
                return sb_call_fail_reason(call, SB_UNAVAILABLE, "REASON_DEPENDENCY_UNAVAILABLE",
                                           "%s did not answer (%s); nothing was left half-done: retry", peer, msg);
        return sb_call_fail(call, SB_INTERNAL, "%s refused the centre's set-up: %s (request %s)", peer, msg,
                            sb_call_request_id(call));
}

/* Gives user the CENTRE_OPERATOR grant of centre (identity answers NOT_FOUND for an unknown user, so this is also
 * the check that the user exists; a held grant is granted again unchanged). Returns the peer's status. */
static sb_status peer_grant(sb_call *call, uint64_t user, uint64_t centre, bool grant, char *msg, size_t msg_n) {
        Sharebuy__Identity__V1__RoleGrant g = SHAREBUY__IDENTITY__V1__ROLE_GRANT__INIT;
        g.role = SHAREBUY__COMMON__V1__ROLE__ROLE_CENTRE_OPERATOR;
        g.centre_id = centre;
        ProtobufCMessage *out = NULL;
        sb_status s;
        if (grant) {
                Sharebuy__Identity__V1__GrantRoleRequest rq = SHAREBUY__IDENTITY__V1__GRANT_ROLE_REQUEST__INIT;
                rq.user_id = user;
                rq.grant = &g;
                s = sb_service_call(call, "identity", "/sharebuy.identity.v1.Identity/GrantRole", &rq.base,
                                    &sharebuy__identity__v1__role_grant__descriptor, REGION_PEER_DEADLINE_MS, &out, msg,
                                    msg_n);
        } else {
                Sharebuy__Identity__V1__RevokeRoleRequest rq = SHAREBUY__IDENTITY__V1__REVOKE_ROLE_REQUEST__INIT;
                rq.user_id = user;
                rq.grant = &g;
                s = sb_service_call(call, "identity", "/sharebuy.identity.v1.Identity/RevokeRole", &rq.base,
                                    &sharebuy__identity__v1__revoke_role_response__descriptor, REGION_PEER_DEADLINE_MS,
                                    &out, msg, msg_n);
        }
        if (out)
                protobuf_c_message_free_unpacked(out, NULL);
        return s;
}

/* Opens the centre's ledger accounts in the wallet (idempotent). Returns the peer's status. */
static sb_status peer_open_accounts(sb_call *call, uint64_t centre, char *msg, size_t msg_n) {
        Sharebuy__Common__V1__OwnerRef o = SHAREBUY__COMMON__V1__OWNER_REF__INIT;
        o.kind = SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_CENTRE;
        o.id = centre;
        Sharebuy__Wallet__V1__OpenAccountsRequest rq = SHAREBUY__WALLET__V1__OPEN_ACCOUNTS_REQUEST__INIT;
        rq.owner = &o;
        ProtobufCMessage *out = NULL;
        sb_status s = sb_service_call(call, "wallet", "/sharebuy.wallet.v1.Wallet/OpenAccounts", &rq.base,
                                      &sharebuy__wallet__v1__open_accounts_response__descriptor, REGION_PEER_DEADLINE_MS,
                                      &out, msg, msg_n);
        if (out)
                protobuf_c_message_free_unpacked(out, NULL);
        return s;
}

/* The set-up of a centre's operator in the peers: the grant first (it also proves the user exists), then the
 * centre's accounts. Both are idempotent, so a caller that failed here retries the whole RPC. SB_OK, or the call
 * failed with the peer's status mapped by peer_fail(). */
static sb_status centre_peers(sb_call *call, uint64_t centre, uint64_t user) {
        char msg[256];
        sb_status s = peer_grant(call, user, centre, true, msg, sizeof msg);
        if (s != SB_OK)
                return peer_fail(call, "identity", s, msg, user);
        if ((s = peer_open_accounts(call, centre, msg, sizeof msg)) != SB_OK)
                return peer_fail(call, "the wallet", s, msg, 0);
        return SB_OK;
}

/* Takes back a grant given for a step that was then refused here (best effort: without the centre_operator row the
 * grant lets its holder do nothing in this service, which is the truth for centres). */
static void centre_peers_undo(sb_call *call, uint64_t centre, uint64_t user) {
        char msg[256];
        (void)peer_grant(call, user, centre, false, msg, sizeof msg);
}

typedef struct decide_job {
        uint64_t id;
        const char *text;
        uint64_t by;
        bool approve;
        region_refusal ref;
} decide_job;

static const char sql_approve[] =
        "UPDATE centre SET status = 2, held_code = district_code, pending_applicant_id = NULL, status_reason = ?,"
        " status_changed_unix_ms = ?, status_changed_by = ? WHERE id = ? AND status = 1";
static const char sql_reject[] =
        "UPDATE centre SET status = 4, pending_applicant_id = NULL, status_reason = ?,"
        " status_changed_unix_ms = ?, status_changed_by = ? WHERE id = ? AND status = 1";
static const char sql_add_operator[] =
        "INSERT IGNORE INTO centre_operator (centre_id, user_id, added_unix_ms, added_by) VALUES (?, ?, ?, ?)";
/* Every other pending application whose area overlaps the granted one. */
static const char sql_reject_overlapping[] =
        "UPDATE centre c JOIN district d ON d.code = c.district_code"
        " SET c.status = 4, c.pending_applicant_id = NULL, c.status_reason = ?, c.status_changed_unix_ms = ?,"
        " c.status_changed_by = ?"
        " WHERE c.status = 1 AND c.id <> ? AND (c.district_code IN (?, ?, ?) OR (? = 1 AND d.province_code = ?)"
        "   OR (? = 2 AND d.city_code = ?))";

static int exec_update(sb_db *db, const char *sql, const char *text, int64_t now, uint64_t by, uint64_t id,
                       uint64_t *ret_rows) {
        sb_db_stmt *s;
        int r = sb_db_prepare(db, sql, &s);
        if (r < 0 || (r = sb_db_bind_str(s, 0, text)) < 0 || (r = sb_db_bind_i64(s, 1, now)) < 0 ||
            (r = sb_db_bind_u64(s, 2, by)) < 0 || (r = sb_db_bind_u64(s, 3, id)) < 0 || (r = sb_db_execute(s)) < 0)
                return r;
        if (ret_rows)
                *ret_rows = sb_db_affected_rows(s);
        return 0;
}

static int add_operator(sb_db *db, uint64_t centre, uint64_t user, int64_t now, uint64_t by) {
        sb_db_stmt *s;
        int r = sb_db_prepare(db, sql_add_operator, &s);
        if (r < 0 || (r = sb_db_bind_u64(s, 0, centre)) < 0 || (r = sb_db_bind_u64(s, 1, user)) < 0 ||
            (r = sb_db_bind_i64(s, 2, now)) < 0 || (r = sb_db_bind_u64(s, 3, by)) < 0)
                return r;
        return sb_db_execute(s);
}

static int decide_tx(sb_db *db, void *arg) {
        decide_job *job = arg;
        centre_row c;
        int r = centre_load(db, job->id, true, &c);
        if (r == -ENOENT)
                return region_refuse(&job->ref, SB_NOT_FOUND, "REASON_UNSPECIFIED", "no centre %" PRIu64, job->id);
        if (r < 0)
                return r;
        if (c.status != REGION_CENTRE_PENDING)
                return region_refuse(&job->ref, SB_FAILED_PRECONDITION, "REASON_WRONG_STATE",
                                     "centre %" PRIu64 " is not a pending application", job->id);
        int64_t now = region_now_ms();
        if (!job->approve)
                return exec_update(db, sql_reject, job->text, now, job->by, job->id, NULL);

        region_div d;
        r = region_div_load(db, c.code, &d);
        if (r == -ENOENT)
                return region_refuse(&job->ref, SB_FAILED_PRECONDITION, "REASON_DISTRICT_UNKNOWN",
                                     "division %s is no longer in the GB/T 2260 tree", c.code);
        if (r < 0 || (r = lock_chain(db, &d)) < 0)
                return r;
        overlap cover, below;
        if ((r = find_overlaps(db, &d, &cover, &below)) < 0)
                return r;
        if (cover.id || below.id) {
                const overlap *o = cover.id ? &cover : &below;
                return region_refuse(&job->ref, SB_FAILED_PRECONDITION,
                                     strcmp(o->code, d.code) == 0 ? "REASON_DISTRICT_TAKEN" : "REASON_CENTRE_OVERLAP",
                                     "the area of %s was granted to centre %" PRIu64 " (%s) meanwhile", d.code, o->id,
                                     o->code);
        }
        r = exec_update(db, sql_approve, job->text, now, job->by, job->id, NULL);
        if (r == -EEXIST)
                return region_refuse(&job->ref, SB_FAILED_PRECONDITION, "REASON_DISTRICT_TAKEN",
                                     "division %s was granted to another centre meanwhile", d.code);
        if (r < 0 || (r = add_operator(db, job->id, c.applicant, now, job->by)) < 0)
                return r;
        char why[64];
        snprintf(why, sizeof why, "area granted to centre %" PRIu64, job->id);
        sb_db_stmt *s;
        unsigned i = 0;
        r = sb_db_prepare(db, sql_reject_overlapping, &s);
        if (r < 0 || (r = sb_db_bind_str(s, i++, why)) < 0 || (r = sb_db_bind_i64(s, i++, now)) < 0 ||
            (r = sb_db_bind_u64(s, i++, job->by)) < 0 || (r = sb_db_bind_u64(s, i++, job->id)) < 0 ||
            (r = sb_db_bind_str(s, i++, d.province_code)) < 0 ||
            (r = sb_db_bind_str(s, i++, d.city_code[0] ? d.city_code : d.code)) < 0 ||
            (r = sb_db_bind_str(s, i++, d.code)) < 0 || (r = sb_db_bind_i64(s, i++, d.level)) < 0 ||
            (r = sb_db_bind_str(s, i++, d.code)) < 0 || (r = sb_db_bind_i64(s, i++, d.level)) < 0 ||
            (r = sb_db_bind_str(s, i++, d.code)) < 0 || (r = sb_db_execute(s)) < 0)
                return r;
        return bump_revision(db);
}

static sb_status decide(sb_call *call, uint64_t id, const char *text, bool approve, ProtobufCMessage *resp) {
        sb_claims cl;
        sb_status st = sb_service_auth(call, SB_ROLES(SB_ROLE_ADMIN), &cl);
        if (st != SB_OK)
                return st;
        if (id == 0)
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID", "centre_id is required");
        if ((st = region_text_arg(call, text, approve ? "note" : "reason", REGION_REASON_MAX_CHARS, !approve)) != SB_OK)
                return st;
        sb_db *db = region_db(call, &st);
        if (!db)
                return st;
        if (approve) {
                /* The peers first, so that the approval is the last step: when they fail nothing changed here and
                 * the same ApproveCentre completes everything (the grant and the accounts are idempotent); once the
                 * centre is active its set-up is complete. The checks are made again under the lock below. */
                centre_row c;
                int r = centre_load(db, id, false, &c);
                if (r == -ENOENT)
                        return sb_call_fail(call, SB_NOT_FOUND, "no centre %" PRIu64, id);
                if (r < 0)
                        return sb_service_db_fail(call, r, "reading the centre");
                if (c.status != REGION_CENTRE_PENDING)
                        return sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_WRONG_STATE",
                                                   "centre %" PRIu64 " is not a pending application", id);
                if ((st = centre_peers(call, id, c.applicant)) != SB_OK)
                        return st;
                decide_job job = { .id = id, .text = text ? text : "", .by = cl.uid, .approve = true };
                r = sb_db_tx(db, decide_tx, &job);
                if (r == REGION_EREFUSED) {
                        /* Take the grant back unless the centre was approved after all (by a concurrent
                         * ApproveCentre: then the grant is its operator's). */
                        centre_row now;
                        if (centre_load(db, id, false, &now) == 0 && now.status != REGION_CENTRE_ACTIVE &&
                            now.status != REGION_CENTRE_SUSPENDED)
                                centre_peers_undo(call, id, c.applicant);
                }
                if ((st = region_tx_status(call, r, &job.ref, "approving the centre")) != SB_OK)
                        return st;
                return centre_reply(call, db, id, true, resp);
        }
        decide_job job = { .id = id, .text = text ? text : "", .by = cl.uid, .approve = false };
        int r = sb_db_tx(db, decide_tx, &job);
        if ((st = region_tx_status(call, r, &job.ref, "rejecting the centre")) != SB_OK)
                return st;
        return centre_reply(call, db, id, true, resp);
}

sb_status region_approve_centre(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp) {
        const Sharebuy__Region__V1__ApproveCentreRequest *req = (const void *)req_;
        return decide(call, req->centre_id, req->note, true, resp);
}

sb_status region_reject_centre(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp) {
        const Sharebuy__Region__V1__RejectCentreRequest *req = (const void *)req_;
        return decide(call, req->centre_id, req->reason, false, resp);
}

/* --- CreateSubCentre --- */

typedef struct sub_job {
        const Sharebuy__Region__V1__CreateSubCentreRequest *req;
        const sb_claims *cl;
        const region_div *div;
        uint64_t id;
        bool existed; /* the same sub-centre was made by an earlier attempt whose peers' set-up did not finish */
        region_refusal ref;
} sub_job;

static const char sql_sub[] =
        "INSERT INTO centre (district_code, level, name, status, parent_id, held_code, pending_applicant_id,"
        " applicant_user_id, company_name, licence_no, contact_name, contact_phone, note, status_reason,"
        " applied_unix_ms, status_changed_unix_ms, status_changed_by)"
        " VALUES (?, ?, ?, 2, ?, ?, NULL, ?, ?, '', ?, ?, '', 'sub-centre', ?, ?, ?)";

static int sub_tx(sb_db *db, void *arg) {
        sub_job *job = arg;
        const Sharebuy__Region__V1__CreateSubCentreRequest *q = job->req;
        const region_div *d = job->div;
        centre_row p;
        int r = centre_load(db, q->parent_centre_id, true, &p);
        if (r == -ENOENT)
                return region_refuse(&job->ref, SB_NOT_FOUND, "REASON_UNSPECIFIED", "no centre %" PRIu64,
                                     q->parent_centre_id);
        if (r < 0)
                return r;
        if (job->cl->role != SB_ROLE_ADMIN) {
                if ((r = operates(db, job->cl, p.id)) < 0)
                        return r;
                if (r == 0)
                        return region_refuse(&job->ref, SB_PERMISSION_DENIED, "REASON_SCOPE_MISMATCH",
                                             "only an operator of centre %" PRIu64 " or an admin creates its sub-centres",
                                             p.id);
        }
        if (p.status != REGION_CENTRE_ACTIVE)
                return region_refuse(&job->ref, SB_FAILED_PRECONDITION,
                                     p.status == REGION_CENTRE_SUSPENDED ? "REASON_CENTRE_SUSPENDED" : "REASON_WRONG_STATE",
                                     "centre %" PRIu64 " is not active", p.id);
        if (d->level <= p.level || !region_div_inside(d, p.code, p.level))
                return region_refuse(&job->ref, SB_FAILED_PRECONDITION, "REASON_OUTSIDE_AREA",
                                     "%s (%s) is not strictly inside the area of centre %" PRIu64 " (%s)", d->code,
                                     d->full_name, p.id, p.code);
        if ((r = lock_chain(db, d)) < 0)
                return r;
        overlap cover, below;
        if ((r = find_overlaps(db, d, &cover, &below)) < 0)
                return r;
        if (cover.id && strcmp(cover.code, d->code) == 0) {
                /* A retry of this very request (same parent, division and operator) after the peers failed: the
                 * sub-centre is there, its set-up in the peers is finished by the caller. */
                centre_row held;
                if ((r = centre_load(db, cover.id, false, &held)) < 0)
                        return r;
                if (held.parent_id == p.id && held.applicant == q->operator_user_id) {
                        sb_db_stmt *s;
                        bool is_op = false;
                        if ((r = sb_db_prepare(db, sql_is_operator, &s)) < 0 || (r = sb_db_bind_u64(s, 0, held.id)) < 0 ||
                            (r = sb_db_bind_u64(s, 1, q->operator_user_id)) < 0 || (r = sb_db_execute(s)) < 0)
                                return r;
                        while ((r = sb_db_fetch(s)) > 0)
                                is_op = true;
                        if (r < 0)
                                return r;
                        if (is_op) {
                                job->id = held.id;
                                job->existed = true;
                                return 0;
                        }
                }
                return region_refuse(&job->ref, SB_FAILED_PRECONDITION, "REASON_DISTRICT_TAKEN",
                                     "division %s already has centre %" PRIu64, d->code, cover.id);
        }
        if (cover.id != p.id)
                return region_refuse(&job->ref, SB_FAILED_PRECONDITION, "REASON_CENTRE_OVERLAP",
                                     "%s lies inside the area of sub-centre %" PRIu64 " (%s): create it through that "
                                     "centre", d->code, cover.id, cover.code);
        if (below.id)
                return region_refuse(&job->ref, SB_FAILED_PRECONDITION, "REASON_CENTRE_OVERLAP",
                                     "the area of %s contains centre %" PRIu64 " (%s)", d->code, below.id, below.code);
        int64_t now = region_now_ms();
        sb_db_stmt *s;
        unsigned i = 0;
        r = sb_db_prepare(db, sql_sub, &s);
        if (r < 0 || (r = sb_db_bind_str(s, i++, d->code)) < 0 || (r = sb_db_bind_i64(s, i++, d->level)) < 0 ||
            (r = sb_db_bind_str(s, i++, q->name)) < 0 || (r = sb_db_bind_u64(s, i++, p.id)) < 0 ||
            (r = sb_db_bind_str(s, i++, d->code)) < 0 || (r = sb_db_bind_u64(s, i++, q->operator_user_id)) < 0 ||
            (r = sb_db_bind_str(s, i++, p.company)) < 0 ||
            (r = sb_db_bind_str(s, i++, q->contact_name ? q->contact_name : "")) < 0 ||
            (r = sb_db_bind_str(s, i++, q->contact_phone ? q->contact_phone : "")) < 0 ||
            (r = sb_db_bind_i64(s, i++, now)) < 0 || (r = sb_db_bind_i64(s, i++, now)) < 0 ||
            (r = sb_db_bind_u64(s, i++, job->cl->uid)) < 0)
                return r;
        r = sb_db_execute(s);
        if (r == -EEXIST)
                return region_refuse(&job->ref, SB_FAILED_PRECONDITION, "REASON_DISTRICT_TAKEN",
                                     "division %s was granted to another centre meanwhile", d->code);
        if (r < 0)
                return r;
        job->id = sb_db_insert_id(s);
        if ((r = add_operator(db, job->id, q->operator_user_id, now, job->cl->uid)) < 0)
                return r;
        return bump_revision(db);
}

/* Takes back a sub-centre just made for a user that identity does not know: nothing else refers to it yet. */
typedef struct sub_undo_job {
        uint64_t id, parent_id;
} sub_undo_job;

static int sub_undo_tx(sb_db *db, void *arg) {
        const sub_undo_job *u = arg;
        sb_db_stmt *s;
        int r;
        if ((r = sb_db_prepare(db, "DELETE FROM centre_operator WHERE centre_id = ?", &s)) < 0 ||
            (r = sb_db_bind_u64(s, 0, u->id)) < 0 || (r = sb_db_execute(s)) < 0)
                return r;
        if ((r = sb_db_prepare(db, "DELETE FROM centre WHERE id = ? AND parent_id = ?", &s)) < 0 ||
            (r = sb_db_bind_u64(s, 0, u->id)) < 0 || (r = sb_db_bind_u64(s, 1, u->parent_id)) < 0 ||
            (r = sb_db_execute(s)) < 0)
                return r;
        return bump_revision(db);
}

sb_status region_create_sub_centre(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp) {
        const Sharebuy__Region__V1__CreateSubCentreRequest *req = (const void *)req_;
        sb_claims cl;
        sb_status st = sb_service_auth(call, SB_ROLES(SB_ROLE_ADMIN) | SB_ROLES(SB_ROLE_CENTRE_OPERATOR), &cl);
        if (st != SB_OK)
                return st;
        if (req->parent_centre_id == 0)
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                           "parent_centre_id is required");
        if (req->operator_user_id == 0)
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                           "operator_user_id is required");
        if ((st = region_code_arg(call, req->district_code, "district_code")) != SB_OK ||
            (st = region_text_arg(call, req->name, "name", REGION_CENTRE_NAME_MAX_CHARS, true)) != SB_OK ||
            (st = region_text_arg(call, req->contact_name, "contact_name", REGION_CONTACT_MAX_CHARS, false)) != SB_OK ||
            (st = phone_arg(call, req->contact_phone, "contact_phone", false)) != SB_OK)
                return st;
        sb_db *db = region_db(call, &st);
        if (!db)
                return st;
        region_div d;
        if ((st = region_div_arg(call, db, req->district_code, "district_code", &d)) != SB_OK)
                return st;
        sub_job job = { .req = req, .cl = &cl, .div = &d };
        int r = sb_db_tx(db, sub_tx, &job);
        if ((st = region_tx_status(call, r, &job.ref, "creating the sub-centre")) != SB_OK)
                return st;
        /* The sub-centre's id exists only now, so the peers come after it. When identity does not know the user the
         * sub-centre is taken back at once; when a peer does not answer it stays, and the same request again finds
         * it (job.existed) and finishes the set-up. */
        if ((st = centre_peers(call, job.id, req->operator_user_id)) != SB_OK) {
                if (st == SB_NOT_FOUND && !job.existed) {
                        sub_undo_job u = { .id = job.id, .parent_id = req->parent_centre_id };
                        int r2 = sb_db_tx(db, sub_undo_tx, &u);
                        if (r2 < 0)
                                sb_log(SB_LOG_ERROR, "region.sub_centre_undo",
                                       "sub-centre %" PRIu64 " of an unknown user could not be taken back: %d", job.id,
                                       r2);
                }
                return st;
        }
        return centre_reply(call, db, job.id, true, resp);
}

/* --- SuspendCentre / ResumeCentre --- */

typedef struct state_job {
        uint64_t id;
        const char *text;
        const sb_claims *cl;
        bool suspend;
        region_refusal ref;
} state_job;

static const char sql_set_status[] =
        "UPDATE centre SET status = ?, status_reason = ?, status_changed_unix_ms = ?, status_changed_by = ?"
        " WHERE id = ?";

static int state_tx(sb_db *db, void *arg) {
        state_job *job = arg;
        centre_row c;
        int r = centre_load(db, job->id, true, &c);
        if (r == -ENOENT)
                return region_refuse(&job->ref, SB_NOT_FOUND, "REASON_UNSPECIFIED", "no centre %" PRIu64, job->id);
        if (r < 0)
                return r;
        if (job->cl->role != SB_ROLE_ADMIN) {
                r = c.parent_id ? operates(db, job->cl, c.parent_id) : 0;
                if (r < 0)
                        return r;
                if (r == 0)
                        return region_refuse(&job->ref, SB_PERMISSION_DENIED, "REASON_SCOPE_MISMATCH",
                                             "only an admin, or an operator of its parent centre, suspends or resumes "
                                             "centre %" PRIu64, c.id);
        }
        int want_from = job->suspend ? REGION_CENTRE_ACTIVE : REGION_CENTRE_SUSPENDED;
        if (c.status != want_from)
                return region_refuse(&job->ref, SB_FAILED_PRECONDITION, "REASON_WRONG_STATE", "centre %" PRIu64 " is not %s",
                                     c.id, job->suspend ? "active" : "suspended");
        if (!job->suspend && c.parent_id) {
                centre_row p;
                if ((r = centre_load(db, c.parent_id, true, &p)) < 0)
                        return r;
                if (p.status != REGION_CENTRE_ACTIVE)
                        return region_refuse(&job->ref, SB_FAILED_PRECONDITION, "REASON_CENTRE_SUSPENDED",
                                             "its parent centre %" PRIu64 " is suspended: resume that first", p.id);
        }
        sb_db_stmt *s;
        r = sb_db_prepare(db, sql_set_status, &s);
        if (r < 0 ||
            (r = sb_db_bind_i64(s, 0, job->suspend ? REGION_CENTRE_SUSPENDED : REGION_CENTRE_ACTIVE)) < 0 ||
            (r = sb_db_bind_str(s, 1, job->text)) < 0 || (r = sb_db_bind_i64(s, 2, region_now_ms())) < 0 ||
            (r = sb_db_bind_u64(s, 3, job->cl->uid)) < 0 || (r = sb_db_bind_u64(s, 4, c.id)) < 0 ||
            (r = sb_db_execute(s)) < 0)
                return r;
        return bump_revision(db);
}

static sb_status change_state(sb_call *call, uint64_t id, const char *text, bool suspend, ProtobufCMessage *resp) {
        sb_claims cl;
        sb_status st = sb_service_auth(call, SB_ROLES(SB_ROLE_ADMIN) | SB_ROLES(SB_ROLE_CENTRE_OPERATOR), &cl);
        if (st != SB_OK)
                return st;
        if (id == 0)
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID", "centre_id is required");
        if ((st = region_text_arg(call, text, suspend ? "reason" : "note", REGION_REASON_MAX_CHARS, suspend)) != SB_OK)
                return st;
        sb_db *db = region_db(call, &st);
        if (!db)
                return st;
        state_job job = { .id = id, .text = text ? text : "", .cl = &cl, .suspend = suspend };
        int r = sb_db_tx(db, state_tx, &job);
        if ((st = region_tx_status(call, r, &job.ref, "changing the centre's state")) != SB_OK)
                return st;
        return centre_reply(call, db, id, true, resp);
}

sb_status region_suspend_centre(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp) {
        const Sharebuy__Region__V1__SuspendCentreRequest *req = (const void *)req_;
        return change_state(call, req->centre_id, req->reason, true, resp);
}

sb_status region_resume_centre(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp) {
        const Sharebuy__Region__V1__ResumeCentreRequest *req = (const void *)req_;
        return change_state(call, req->centre_id, req->note, false, resp);
}

/* --- GetCentre / ListCentres --- */

#define ANY_ROLE                                                                                                   \
        (SB_ROLES(SB_ROLE_MEMBER) | SB_ROLES(SB_ROLE_MERCHANT_OWNER) | SB_ROLES(SB_ROLE_CASHIER) |                 \
         SB_ROLES(SB_ROLE_TERMINAL) | SB_ROLES(SB_ROLE_CENTRE_OPERATOR) | SB_ROLES(SB_ROLE_ADMIN) |                \
         SB_ROLES(SB_ROLE_SERVICE))

sb_status region_get_centre(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Region__V1__GetCentreRequest *req = (const void *)req_;
        Sharebuy__Region__V1__Centre *resp = (void *)resp_;
        sb_claims cl;
        sb_status st = sb_service_auth(call, ANY_ROLE, &cl);
        if (st != SB_OK)
                return st;
        sb_db *db = region_db(call, &st);
        if (!db)
                return st;
        centre_row c;
        int r = req->centre_id ? centre_load(db, req->centre_id, false, &c) : -ENOENT;
        if (r == -ENOENT)
                return sb_call_fail(call, SB_NOT_FOUND, "no centre %" PRIu64, req->centre_id);
        if (r < 0)
                return sb_service_db_fail(call, r, "reading the centre");
        int op = operates(db, &cl, c.id);
        if (op < 0)
                return sb_service_db_fail(call, op, "reading the centre's operators");
        Sharebuy__Region__V1__Centre *m = centre_msg(call, db, &c, cl.role == SB_ROLE_ADMIN || op == 1, NULL);
        m->base = resp->base;
        *resp = *m;
        return SB_OK;
}

static const char sql_list_centres[] =
        "SELECT " CENTRE_COLUMNS ", " REGION_DIV_COLUMNS " FROM centre c JOIN district d ON d.code = c.district_code"
        " WHERE (? = 0 OR c.status = ?)"
        "   AND (? = '' OR c.district_code = ? OR (? = 1 AND d.province_code = ?) OR (? = 2 AND d.city_code = ?))"
        "   AND (? = 0 OR c.parent_id = ?)"
        "   AND (? = 0 OR c.id = ? OR c.parent_id = ?)"
        "   AND (? = 0 OR c.applicant_user_id = ?)"
        "   AND (c.district_code > ? OR (c.district_code = ? AND c.id > ?))"
        " ORDER BY c.district_code, c.id LIMIT ?";

sb_status region_list_centres(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Region__V1__ListCentresRequest *req = (const void *)req_;
        Sharebuy__Region__V1__ListCentresResponse *resp = (void *)resp_;
        sb_claims cl;
        sb_status st = sb_service_auth(call, SB_ROLES(SB_ROLE_ADMIN) | SB_ROLES(SB_ROLE_CENTRE_OPERATOR) |
                                                     SB_ROLES(SB_ROLE_MEMBER), &cl);
        if (st != SB_OK)
                return st;
        const char *under = req->under_code ? req->under_code : "";
        if (*under && (st = region_code_arg(call, under, "under_code")) != SB_OK)
                return st;
        if ((int)req->status < 0 || (int)req->status > 4)
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID", "unknown status");
        uint64_t scope_centre = 0, scope_applicant = 0;
        if (cl.role == SB_ROLE_CENTRE_OPERATOR) {
                if (cl.centre_id == 0)
                        return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_SCOPE_MISMATCH",
                                                   "the token names no centre");
                if (req->parent_centre_id && req->parent_centre_id != cl.centre_id)
                        return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_SCOPE_MISMATCH",
                                                   "an operator lists only its centre and its sub-centres");
                scope_centre = cl.centre_id;
        } else if (cl.role == SB_ROLE_MEMBER) {
                scope_applicant = cl.uid;
        }
        uint32_t size = region_page_size(req->page, CENTRES_DEFAULT, CENTRES_MAX);
        uint32_t filter = region_hash_u64(region_hash_u64(region_hash_u64(region_hash_u64(region_hash_str(
                                                  REGION_HASH_INIT, under), req->status), req->parent_centre_id),
                                                  scope_centre), scope_applicant);
        char key[40];
        bool has;
        if ((st = region_page_parse(call, req->page, 'L', filter, key, sizeof key, &has)) != SB_OK)
                return st;
        char after_code[7] = "";
        unsigned long long after_id = 0;
        if (has && (strlen(key) < 8 || key[6] != ':' || sscanf(key + 7, "%llu", &after_id) != 1))
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_PAGE_TOKEN_INVALID",
                                           "the page token is not one this method gave out");
        if (has)
                memcpy(after_code, key, 6);
        sb_db *db = region_db(call, &st);
        if (!db)
                return st;
        int ulevel = 0;
        if (*under) {
                region_div ud;
                if ((st = region_div_arg(call, db, under, "under_code", &ud)) != SB_OK)
                        return st;
                ulevel = ud.level;
        }
        sb_db_stmt *s;
        unsigned i = 0;
        int r = sb_db_prepare(db, sql_list_centres, &s);
        if (r == 0 && (r = sb_db_bind_i64(s, i++, req->status)) == 0 && (r = sb_db_bind_i64(s, i++, req->status)) == 0 &&
            (r = sb_db_bind_str(s, i++, under)) == 0 && (r = sb_db_bind_str(s, i++, under)) == 0 &&
            (r = sb_db_bind_i64(s, i++, ulevel)) == 0 && (r = sb_db_bind_str(s, i++, under)) == 0 &&
            (r = sb_db_bind_i64(s, i++, ulevel)) == 0 && (r = sb_db_bind_str(s, i++, under)) == 0 &&
            (r = sb_db_bind_u64(s, i++, req->parent_centre_id)) == 0 &&
            (r = sb_db_bind_u64(s, i++, req->parent_centre_id)) == 0 && (r = sb_db_bind_u64(s, i++, scope_centre)) == 0 &&
            (r = sb_db_bind_u64(s, i++, scope_centre)) == 0 && (r = sb_db_bind_u64(s, i++, scope_centre)) == 0 &&
            (r = sb_db_bind_u64(s, i++, scope_applicant)) == 0 && (r = sb_db_bind_u64(s, i++, scope_applicant)) == 0 &&
            (r = sb_db_bind_str(s, i++, after_code)) == 0 && (r = sb_db_bind_str(s, i++, after_code)) == 0 &&
            (r = sb_db_bind_u64(s, i++, after_id)) == 0 && (r = sb_db_bind_u64(s, i++, (uint64_t)size + 1)) == 0)
                r = sb_db_execute(s);
        if (r < 0)
                return sb_service_db_fail(call, r, "listing centres");
        resp->centres = sb_call_alloc(call, size * sizeof *resp->centres);
        bool more = false;
        char last[40] = "";
        while ((r = sb_db_fetch(s)) > 0) {
                centre_row c;
                region_div d;
                if (resp->n_centres == size) {
                        more = true;
                        continue;
                }
                if (centre_from_row(s, &c) < 0 || region_div_from_row(s, 16, &d) < 0)
                        continue;
                bool ops = cl.role == SB_ROLE_ADMIN || (cl.role == SB_ROLE_CENTRE_OPERATOR && c.id == cl.centre_id);
                resp->centres[resp->n_centres++] = centre_msg(call, NULL, &c, ops, &d);
                snprintf(last, sizeof last, "%s:%" PRIu64, c.code, c.id);
        }
        if (r < 0)
                return sb_service_db_fail(call, r, "listing centres");
        resp->page = region_page_info(call, more ? region_page_token(call, 'L', filter, last) : "");
        return SB_OK;
}

/* --- Operators --- */

typedef struct op_job {
        uint64_t centre, user;
        const sb_claims *cl;
        bool add;
        bool check_only; /* make every check, change nothing */
        region_refusal ref;
} op_job;

static const char sql_count_ops[] = "SELECT COUNT(*) FROM centre_operator WHERE centre_id = ?";
static const char sql_del_op[] = "DELETE FROM centre_operator WHERE centre_id = ? AND user_id = ?";

static int op_tx(sb_db *db, void *arg) {
        op_job *job = arg;
        centre_row c;
        int r = centre_load(db, job->centre, true, &c);
        if (r == -ENOENT)
                return region_refuse(&job->ref, SB_NOT_FOUND, "REASON_UNSPECIFIED", "no centre %" PRIu64, job->centre);
        if (r < 0)
                return r;
        if (job->cl->role != SB_ROLE_ADMIN) {
                if ((r = operates(db, job->cl, c.id)) < 0)
                        return r;
                if (r == 0)
                        return region_refuse(&job->ref, SB_PERMISSION_DENIED, "REASON_SCOPE_MISMATCH",
                                             "only an admin or an operator of centre %" PRIu64 " changes its operators",
                                             c.id);
        }
        if (c.status != REGION_CENTRE_ACTIVE && c.status != REGION_CENTRE_SUSPENDED)
                return region_refuse(&job->ref, SB_FAILED_PRECONDITION, "REASON_WRONG_STATE",
                                     "centre %" PRIu64 " is not approved", c.id);
        sb_db_stmt *s;
        uint64_t count = 0;
        if ((r = sb_db_prepare(db, sql_count_ops, &s)) < 0 || (r = sb_db_bind_u64(s, 0, c.id)) < 0 ||
            (r = sb_db_execute(s)) < 0)
                return r;
        while ((r = sb_db_fetch(s)) > 0)
                (void)sb_db_col_u64(s, 0, &count);
        if (r < 0)
                return r;
        if (job->add) {
                if (count >= REGION_OPERATORS_MAX)
                        return region_refuse(&job->ref, SB_FAILED_PRECONDITION, "REASON_UNSPECIFIED",
                                             "centre %" PRIu64 " has the most operators allowed (%d)", c.id,
                                             REGION_OPERATORS_MAX);
                if (job->check_only)
                        return 0;
                if ((r = add_operator(db, c.id, job->user, region_now_ms(), job->cl->uid)) < 0)
                        return r;
                return bump_revision(db);
        }
        if ((r = sb_db_prepare(db, sql_is_operator, &s)) < 0 || (r = sb_db_bind_u64(s, 0, c.id)) < 0 ||
            (r = sb_db_bind_u64(s, 1, job->user)) < 0 || (r = sb_db_execute(s)) < 0)
                return r;
        bool is_op = false;
        while ((r = sb_db_fetch(s)) > 0)
                is_op = true;
        if (r < 0)
                return r;
        if (!is_op)
                return region_refuse(&job->ref, SB_NOT_FOUND, "REASON_UNSPECIFIED",
                                     "user %" PRIu64 " is not an operator of centre %" PRIu64, job->user, c.id);
        if (count <= 1)
                return region_refuse(&job->ref, SB_FAILED_PRECONDITION, "REASON_UNSPECIFIED",
                                     "user %" PRIu64 " is the last operator of centre %" PRIu64 ": add another first",
                                     job->user, c.id);
        if (job->check_only)
                return 0;
        if ((r = sb_db_prepare(db, sql_del_op, &s)) < 0 || (r = sb_db_bind_u64(s, 0, c.id)) < 0 ||
            (r = sb_db_bind_u64(s, 1, job->user)) < 0 || (r = sb_db_execute(s)) < 0)
                return r;
        return bump_revision(db);
}

static sb_status change_operator(sb_call *call, const ProtobufCMessage *req_, bool add, ProtobufCMessage *resp) {
        const Sharebuy__Region__V1__CentreOperatorRequest *req = (const void *)req_;
        sb_claims cl;
        sb_status st = sb_service_auth(call, SB_ROLES(SB_ROLE_ADMIN) | SB_ROLES(SB_ROLE_CENTRE_OPERATOR), &cl);
        if (st != SB_OK)
                return st;
        if (req->centre_id == 0 || req->user_id == 0)
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                           "centre_id and user_id are required");
        sb_db *db = region_db(call, &st);
        if (!db)
                return st;
        op_job job = { .centre = req->centre_id, .user = req->user_id, .cl = &cl, .add = add };
        int r;
        if (add) {
                /* Checked here first (the caller's right, the centre's state), then the grant in identity — which
                 * also proves the user exists — and the accounts, then the row: a failure of the peers leaves the
                 * operators unchanged and the same request completes everything. */
                job.check_only = true;
                r = sb_db_tx(db, op_tx, &job);
                if ((st = region_tx_status(call, r, &job.ref, "checking the centre's operators")) != SB_OK)
                        return st;
                if ((st = centre_peers(call, req->centre_id, req->user_id)) != SB_OK)
                        return st;
                job.check_only = false;
        } else {
                /* Checked here first, then the operator's grant for this centre revoked in identity (its sessions
                 * with it end), then the row: the removed user can no longer sign in as this centre's operator. A
                 * failure after the revocation leaves the row, and the same request completes (a revocation of a
                 * grant no longer held is a no-op). */
                job.check_only = true;
                r = sb_db_tx(db, op_tx, &job);
                if ((st = region_tx_status(call, r, &job.ref, "checking the centre's operators")) != SB_OK)
                        return st;
                char msg[256];
                sb_status ps = peer_grant(call, req->user_id, req->centre_id, false, msg, sizeof msg);
                if (ps != SB_OK)
                        return peer_fail(call, "identity", ps, msg, req->user_id);
                job.check_only = false;
        }
        r = sb_db_tx(db, op_tx, &job);
        if ((st = region_tx_status(call, r, &job.ref, "changing the centre's operators")) != SB_OK)
                return st;
        return centre_reply(call, db, req->centre_id, true, resp);
}

sb_status region_add_centre_operator(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp) {
        return change_operator(call, req, true, resp);
}

sb_status region_remove_centre_operator(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp) {
        return change_operator(call, req, false, resp);
}

/* --- The hot path: CentresForDistrict, GetCentreRevision, CanApproveMerchant --- */

/* One indexed statement: the division, the deepest centre holding an area that contains it (held_code is unique,
 * so the IN list is three index lookups), that centre's parent, whether a user operates it, and the revision, all
 * from one snapshot. */
static const char sql_centres_for[] =
        "SELECT d.code, c.id, c.district_code, c.name, c.status, p.id, p.district_code, p.name, p.status, r.revision,"
        "  (SELECT 1 FROM centre_operator o WHERE o.centre_id = c.id AND o.user_id = ?)"
        " FROM district d JOIN centre_revision r ON r.id = 1"
        " LEFT JOIN centre c ON c.held_code IN (d.code, d.city_code, d.province_code)"
        " LEFT JOIN centre p ON p.id = c.parent_id"
        " WHERE d.code = ? AND d.retired = 0 ORDER BY c.level DESC LIMIT 1";

typedef struct centres_for {
        uint64_t id, parent_id, revision;
        char code[7], parent_code[7];
        char name[260], parent_name[260];
        int status, parent_status;
        bool user_operates;
} centres_for;

/* 0, -ENOENT for an unknown division, or a db code. */
static int load_centres_for(sb_db *db, const char *code, uint64_t user, centres_for *ret) {
        sb_db_stmt *s;
        int r = sb_db_prepare(db, sql_centres_for, &s);
        if (r < 0 || (r = sb_db_bind_u64(s, 0, user)) < 0 || (r = sb_db_bind_str(s, 1, code)) < 0 ||
            (r = sb_db_execute(s)) < 0)
                return r;
        centres_for cf;
        memset(&cf, 0, sizeof cf);
        bool found = false;
        while ((r = sb_db_fetch(s)) > 0) {
                if (found)
                        continue;
                found = true;
                int64_t st = 0;
                if (sb_db_col_u64(s, 1, &cf.id) == 0) {
                        (void)sb_db_col_str(s, 2, cf.code, sizeof cf.code);
                        (void)sb_db_col_str(s, 3, cf.name, sizeof cf.name);
                        (void)sb_db_col_i64(s, 4, &st);
                        cf.status = (int)st;
                }
                if (sb_db_col_u64(s, 5, &cf.parent_id) == 0) {
                        (void)sb_db_col_str(s, 6, cf.parent_code, sizeof cf.parent_code);
                        (void)sb_db_col_str(s, 7, cf.parent_name, sizeof cf.parent_name);
                        (void)sb_db_col_i64(s, 8, &st);
                        cf.parent_status = (int)st;
                }
                (void)sb_db_col_u64(s, 9, &cf.revision);
                cf.user_operates = !sb_db_col_is_null(s, 10);
        }
        if (r < 0)
                return r;
        if (!found)
                return -ENOENT;
        *ret = cf;
        return 0;
}

static Sharebuy__Region__V1__CentreRef *centre_ref(sb_call *call, uint64_t id, const char *code, const char *name) {
        Sharebuy__Region__V1__CentreRef *m = sb_call_alloc(call, sizeof *m);
        sharebuy__region__v1__centre_ref__init(m);
        m->centre_id = id;
        m->district_code = sb_call_strdup(call, code);
        m->name = sb_call_strdup(call, name);
        return m;
}

sb_status region_centres_for_district(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Region__V1__CentresForDistrictRequest *req = (const void *)req_;
        Sharebuy__Region__V1__CentresForDistrictResponse *resp = (void *)resp_;
        sb_status st = sb_service_auth(call, ANY_ROLE, NULL);
        if (st != SB_OK)
                return st;
        if ((st = region_code_arg(call, req->district_code, "district_code")) != SB_OK)
                return st;
        sb_db *db = region_db(call, &st);
        if (!db)
                return st;
        centres_for cf;
        int r = load_centres_for(db, req->district_code, 0, &cf);
        if (r == -ENOENT)
                return sb_call_fail_reason(call, SB_NOT_FOUND, "REASON_DISTRICT_UNKNOWN",
                                           "district_code %s is not a division of the loaded GB/T 2260 tree",
                                           req->district_code);
        if (r < 0)
                return sb_service_db_fail(call, r, "finding the district's centre");
        /* A suspended centre still holds its area (a parent does not take over its share): both shares burn. */
        if (cf.id && cf.status == REGION_CENTRE_ACTIVE) {
                resp->centre = centre_ref(call, cf.id, cf.code, cf.name);
                if (cf.parent_id && cf.parent_status == REGION_CENTRE_ACTIVE)
                        resp->parent = centre_ref(call, cf.parent_id, cf.parent_code, cf.parent_name);
        }
        resp->revision = cf.revision;
        return SB_OK;
}

static const char sql_revision[] = "SELECT revision FROM centre_revision WHERE id = 1";

sb_status region_get_centre_revision(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        Sharebuy__Region__V1__GetCentreRevisionResponse *resp = (void *)resp_;
        sb_status st = sb_service_auth(call, ANY_ROLE, NULL);
        if (st != SB_OK)
                return st;
        sb_db *db = region_db(call, &st);
        if (!db)
                return st;
        sb_db_stmt *s;
        int r = sb_db_prepare(db, sql_revision, &s);
        if (r == 0)
                r = sb_db_execute(s);
        while (r >= 0 && (r = sb_db_fetch(s)) > 0)
                (void)sb_db_col_u64(s, 0, &resp->revision);
        if (r < 0)
                return sb_service_db_fail(call, r, "reading the centre revision");
        return SB_OK;
}

sb_status region_can_approve_merchant(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Region__V1__CanApproveMerchantRequest *req = (const void *)req_;
        Sharebuy__Region__V1__CanApproveMerchantResponse *resp = (void *)resp_;
        sb_claims cl;
        sb_status st = sb_service_auth(call, SB_ROLES(SB_ROLE_SERVICE) | SB_ROLES(SB_ROLE_CENTRE_OPERATOR) |
                                                     SB_ROLES(SB_ROLE_ADMIN), &cl);
        if (st != SB_OK)
                return st;
        if ((st = region_code_arg(call, req->district_code, "district_code")) != SB_OK)
                return st;
        sb_role role;
        uint64_t user, centre;
        if (cl.role == SB_ROLE_SERVICE) {
                if (req->user_id == 0 || req->role == SHAREBUY__COMMON__V1__ROLE__ROLE_UNSPECIFIED)
                        return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                                   "a service names the principal: user_id and role");
                role = (sb_role)req->role;
                user = req->user_id;
                centre = req->centre_id;
        } else {
                if (req->user_id != 0 && req->user_id != cl.uid)
                        return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_SCOPE_MISMATCH",
                                                   "only a service asks about another principal");
                role = cl.role;
                user = cl.uid;
                centre = cl.centre_id;
        }
        sb_db *db = region_db(call, &st);
        if (!db)
                return st;
        centres_for cf;
        int r = load_centres_for(db, req->district_code, user, &cf);
        if (r == -ENOENT)
                return sb_call_fail_reason(call, SB_NOT_FOUND, "REASON_DISTRICT_UNKNOWN",
                                           "district_code %s is not a division of the loaded GB/T 2260 tree",
                                           req->district_code);
        if (r < 0)
                return sb_service_db_fail(call, r, "finding the district's centre");
        resp->revision = cf.revision;
        const char *code = req->district_code;
        if (role == SB_ROLE_ADMIN) {
                resp->allowed = true;
                return SB_OK;
        }
        resp->centre_id = cf.id;
        if (role != SB_ROLE_CENTRE_OPERATOR)
                resp->reason = sb_call_printf(call, "role %s does not approve merchants", sb_role_name(role));
        else if (cf.id == 0)
                resp->reason = sb_call_printf(call, "district %s has no operating centre: only a platform admin "
                                                    "approves merchants there", code);
        else if (cf.id != centre)
                resp->reason = sb_call_printf(call, "district %s belongs to centre %" PRIu64 "; you operate centre %" PRIu64,
                                              code, cf.id, centre);
        else if (cf.status != REGION_CENTRE_ACTIVE)
                resp->reason = sb_call_printf(call, "centre %" PRIu64 " is suspended", cf.id);
        else if (!cf.user_operates)
                resp->reason = sb_call_printf(call, "user %" PRIu64 " is not an operator of centre %" PRIu64, user,
                                              cf.id);
        else
                resp->allowed = true;
        return SB_OK;
}
