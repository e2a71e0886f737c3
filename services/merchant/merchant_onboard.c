/* merchant_onboard: applications, approval by the district's centre (asked of region), suspension, the concession
 * rate, merchant profiles and lists, the deposit status, and the nearby-stores search for members. */
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "merchant_internal.h"

#define CLAIMS_SCOPE_ROLES                                                                                         \
        (SB_ROLES(SB_ROLE_MERCHANT_OWNER) | SB_ROLES(SB_ROLE_CASHIER) | SB_ROLES(SB_ROLE_TERMINAL))

static sb_status invalid(sb_call *call, const char *reason, const char *msg) {
        return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, reason, "%s", msg);
}

static const char *s_or_empty(const char *s) {
        return s ? s : "";
}

/* A MerchantProfile in the call's memory. */
static Sharebuy__Merchant__V1__MerchantProfile *profile_msg(sb_call *call, const merchant_row *m,
                                                            Sharebuy__Merchant__V1__MerchantProfile *p) {
        char today[MERCHANT_DAY_LEN + 1];
        merchant_today(call, today);
        sharebuy__merchant__v1__merchant_profile__init(p);
        p->merchant_id = m->id;
        p->name = sb_call_strdup(call, m->name);
        p->licence_no = sb_call_strdup(call, m->licence);
        p->address = sb_call_strdup(call, m->address);
        Sharebuy__Common__V1__GeoPoint *g = sb_call_alloc(call, sizeof *g);
        sharebuy__common__v1__geo_point__init(g);
        g->latitude_e6 = m->lat_e6;
        g->longitude_e6 = m->lon_e6;
        p->location = g;
        p->district_code = sb_call_strdup(call, m->district);
        p->contact_name = sb_call_strdup(call, m->contact_name);
        p->contact_phone = sb_call_strdup(call, m->contact_phone);
        p->status = (Sharebuy__Merchant__V1__MerchantStatus) m->status;
        p->status_reason = sb_call_strdup(call, m->status_reason);
        p->concession_rate_bp = merchant_rate_on(m, today);
        /* A pending change already in force is no longer pending. */
        if (m->pending_rate_bp > 0 && strcmp(today, m->pending_rate_day) < 0) {
                p->pending_concession_rate_bp = m->pending_rate_bp;
                p->pending_rate_business_day = sb_call_strdup(call, m->pending_rate_day);
        }
        p->owner_user_id = m->owner_user_id;
        if (m->referrer_kind) {
                Sharebuy__Common__V1__OwnerRef *o = sb_call_alloc(call, sizeof *o);
                sharebuy__common__v1__owner_ref__init(o);
                o->kind = (Sharebuy__Common__V1__OwnerKind) m->referrer_kind;
                o->id = m->referrer_id;
                p->referrer = o;
        }
        p->referral_code = sb_call_strdup(call, m->referral_code);
        p->approved_by_centre_id = m->approved_by_centre_id;
        p->applied_unix_ms = m->applied_ms;
        p->status_changed_unix_ms = m->status_changed_ms;
        p->status_changed_by_user_id = m->status_changed_by;
        return p;
}

/* Loads merchant id; NOT_FOUND (or the db failure) fails the call. */
static bool load_or_fail(sb_call *call, sb_db *db, uint64_t id, merchant_row *m, sb_status *ret) {
        int r = merchant_load(db, id, m);
        if (r == -ENOENT) {
                *ret = sb_call_fail(call, SB_NOT_FOUND, "no merchant %" PRIu64, id);
                return false;
        }
        if (r < 0) {
                *ret = sb_service_db_fail(call, r, "reading the merchant");
                return false;
        }
        return true;
}

/* Whether the district code names a place a merchant can be: a district (县级), or a city without districts
 * (441900 东莞市). Fails the call otherwise. */
static bool district_check(sb_call *call, const char *code, sb_status *ret) {
        Sharebuy__Region__V1__GetDistrictRequest req = SHAREBUY__REGION__V1__GET_DISTRICT_REQUEST__INIT;
        req.code = (char *) code;
        Sharebuy__Region__V1__District *d = NULL;
        char msg[SB_RPC_MESSAGE_MAX];
        sb_status s = merchant_peer(call, "region", &sharebuy__region__v1__region__descriptor, "GetDistrict", &req,
                                    &sharebuy__region__v1__district__descriptor, (void **) &d, msg, sizeof msg, NULL);
        if (s == SB_NOT_FOUND || s == SB_INVALID_ARGUMENT) {
                *ret = sb_call_fail_reason(call, SB_NOT_FOUND, "REASON_DISTRICT_UNKNOWN", "district_code %s is unknown",
                                           code);
                return false;
        }
        if (s != SB_OK) {
                *ret = merchant_peer_fail(call, "region", "the district", s, msg);
                return false;
        }
        bool ok = d->level == SHAREBUY__REGION__V1__DISTRICT_LEVEL__DISTRICT_LEVEL_DISTRICT ||
                  (d->level == SHAREBUY__REGION__V1__DISTRICT_LEVEL__DISTRICT_LEVEL_CITY && !d->has_children);
        merchant_free(d);
        if (!ok) {
                *ret = sb_call_fail_reason(call, SB_NOT_FOUND, "REASON_DISTRICT_UNKNOWN",
                                           "district_code %s is a province or city, not a district (区/县)", code);
                return false;
        }
        return true;
}

static void new_referral_code(char out[17]) {
        static const char alphabet[] = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";
        out[0] = 'M';
        for (int i = 1; i < 8; i++)
                out[i] = alphabet[randombytes_uniform((uint32_t) (sizeof alphabet - 1))];
        out[8] = '\0';
}

static int licence_taken(sb_db *db, const char *licence, bool *ret) {
        sb_db_stmt *s;
        int r = sb_db_prepare(db, "SELECT merchant_id FROM sharebuy_merchant.merchants WHERE licence_active = ?", &s);
        if (r < 0)
                return r;
        sb_db_bind_str(s, 0, licence);
        if ((r = sb_db_execute(s)) < 0)
                return r;
        bool found = false;
        while ((r = sb_db_fetch(s)) > 0)
                found = true;
        if (r < 0)
                return r;
        *ret = found;
        return 0;
}

sb_status merchant_h_apply(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Merchant__V1__ApplyRequest *req = (const void *) req_;
        sb_claims c;
        sb_status st = sb_service_auth(call, SB_ROLES(SB_ROLE_MEMBER) | SB_ROLES(SB_ROLE_ADMIN), &c);
        if (st != SB_OK)
                return st;
        uint64_t applicant = c.role == SB_ROLE_ADMIN ? req->applicant_user_id : c.uid;
        if (c.role == SB_ROLE_ADMIN && applicant == 0)
                return invalid(call, "REASON_FIELD_INVALID", "applicant_user_id: an admin applies on behalf of a user");
        if (c.role != SB_ROLE_ADMIN && req->applicant_user_id && req->applicant_user_id != c.uid)
                return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_SCOPE_MISMATCH",
                                           "applicant_user_id is for admins only");
        if (!merchant_text_valid(req->name, MERCHANT_NAME_MAX_CHARS, true))
                return invalid(call, "REASON_FIELD_INVALID", "name: 1..64 characters of UTF-8 text required");
        if (!merchant_licence_valid(req->licence_no))
                return invalid(call, "REASON_LICENCE_INVALID",
                               "licence_no: not a unified social credit code (18 characters, GB 32100 checksum)");
        if (!merchant_text_valid(req->address, MERCHANT_ADDRESS_MAX_CHARS, true))
                return invalid(call, "REASON_FIELD_INVALID", "address: 1..200 characters of UTF-8 text required");
        if (!req->location || !merchant_point_in_china(req->location->latitude_e6, req->location->longitude_e6))
                return invalid(call, "REASON_FIELD_INVALID", "location: a point inside mainland China is required");
        const char *dc = s_or_empty(req->district_code);
        if (strlen(dc) != 6 || strspn(dc, "0123456789") != 6)
                return invalid(call, "REASON_FIELD_INVALID", "district_code: 6 digits");
        if (!merchant_text_valid(req->contact_name, MERCHANT_CONTACT_MAX_CHARS, true))
                return invalid(call, "REASON_FIELD_INVALID", "contact_name: 1..64 characters required");
        if (!merchant_phone_valid(req->contact_phone))
                return invalid(call, "REASON_PHONE_INVALID",
                               "contact_phone: a mainland mobile (11 digits) or a landline with its area code");
        const char *refcode = s_or_empty(req->referral_code);
        if (strlen(refcode) > MERCHANT_REFERRAL_CODE_MAX)
                return invalid(call, "REASON_FIELD_INVALID", "referral_code: at most 32 characters");

        if (!district_check(call, dc, &st))
                return st;
        char today[MERCHANT_DAY_LEN + 1];
        merchant_today(call, today);
        merchant_settings set;
        if (!merchant_settings_get(call, dc, today, &set, &st))
                return st;
        int64_t rate = req->concession_rate_bp ? req->concession_rate_bp : set.econ.concession_default_bp;
        if (rate < set.econ.concession_min_bp || rate > set.econ.concession_max_bp)
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_CONCESSION_RATE_OUT_OF_RANGE",
                                           "concession_rate_bp %" PRId64 " is outside the allowed %" PRId64
                                           "..%" PRId64 " bp of district %s",
                                           rate, set.econ.concession_min_bp, set.econ.concession_max_bp, dc);
        sb_db *db = merchant_db(call, &st);
        if (!db)
                return st;

        merchant_row m;
        memset(&m, 0, sizeof m);
        if (*refcode) {
                merchant_row ref;
                int r = merchant_load_by_referral(db, refcode, &ref);
                if (r == 0) {
                        m.referrer_kind = SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_MERCHANT;
                        m.referrer_id = ref.id;
                } else if (r != -ENOENT)
                        return sb_service_db_fail(call, r, "reading the referral code");
                else {
                        Sharebuy__Identity__V1__ResolveReferralCodeRequest rq =
                                SHAREBUY__IDENTITY__V1__RESOLVE_REFERRAL_CODE_REQUEST__INIT;
                        rq.referral_code = (char *) refcode;
                        Sharebuy__Identity__V1__ResolveReferralCodeResponse *rr = NULL;
                        char msg[SB_RPC_MESSAGE_MAX];
                        sb_status s = merchant_peer(call, "identity", &sharebuy__identity__v1__identity__descriptor,
                                                    "ResolveReferralCode", &rq,
                                                    &sharebuy__identity__v1__resolve_referral_code_response__descriptor,
                                                    (void **) &rr, msg, sizeof msg, NULL);
                        if (s == SB_NOT_FOUND || s == SB_INVALID_ARGUMENT)
                                return sb_call_fail_reason(call, SB_NOT_FOUND, "REASON_REFERRAL_CODE_UNKNOWN",
                                                           "referral_code: no member or merchant has this code");
                        if (s != SB_OK)
                                return merchant_peer_fail(call, "identity", "the referral code", s, msg);
                        if (rr->owner) {
                                m.referrer_kind = (int) rr->owner->kind;
                                m.referrer_id = rr->owner->id;
                        }
                        m.referrer_vip = rr->vip && m.referrer_kind == SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_MEMBER;
                        merchant_free(rr);
                        if (!m.referrer_kind)
                                return sb_call_fail_reason(call, SB_NOT_FOUND, "REASON_REFERRAL_CODE_UNKNOWN",
                                                           "referral_code: no member or merchant has this code");
                }
                if (m.referrer_kind == SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_MEMBER &&
                    m.referrer_id == applicant)
                        return sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_REFERRAL_SELF",
                                                   "referral_code is the applicant's own");
        }

        snprintf(m.name, sizeof m.name, "%s", req->name);
        snprintf(m.licence, sizeof m.licence, "%s", req->licence_no);
        snprintf(m.address, sizeof m.address, "%s", req->address);
        m.lat_e6 = req->location->latitude_e6;
        m.lon_e6 = req->location->longitude_e6;
        snprintf(m.district, sizeof m.district, "%s", dc);
        snprintf(m.contact_name, sizeof m.contact_name, "%s", req->contact_name);
        snprintf(m.contact_phone, sizeof m.contact_phone, "%s", req->contact_phone);
        m.status = MERCHANT_PENDING;
        m.rate_bp = (int32_t) rate;
        m.owner_user_id = applicant;
        m.applied_ms = m.status_changed_ms = merchant_now_ms();
        m.status_changed_by = c.uid;
        /* A collision of the random referral code is retried; a taken licence is the caller's problem. */
        for (int attempt = 0;; attempt++) {
                bool taken = false;
                int r = licence_taken(db, m.licence, &taken);
                if (r < 0)
                        return sb_service_db_fail(call, r, "checking the licence");
                if (taken)
                        return sb_call_fail_reason(call, SB_ALREADY_EXISTS, "REASON_LICENCE_TAKEN",
                                                   "licence_no %s belongs to a merchant that is pending, approved or "
                                                   "suspended",
                                                   m.licence);
                new_referral_code(m.referral_code);
                r = merchant_insert(db, &m, &m.id);
                if (r == 0)
                        break;
                if (r != -EEXIST || attempt == 4)
                        return sb_service_db_fail(call, r, "storing the application");
        }
        profile_msg(call, &m, (void *) resp_);
        return SB_OK;
}

/* --- Decisions: approve, reject, suspend, resume --- */

typedef enum { DECIDE_APPROVE, DECIDE_REJECT, DECIDE_SUSPEND, DECIDE_RESUME } decide_kind;

/* Asks region whether the caller may decide on merchants of district; fails the call when not. */
static bool may_decide(sb_call *call, const sb_claims *c, const char *district, uint64_t *ret_centre, sb_status *ret) {
        Sharebuy__Region__V1__CanApproveMerchantRequest req = SHAREBUY__REGION__V1__CAN_APPROVE_MERCHANT_REQUEST__INIT;
        req.district_code = (char *) district;
        req.user_id = c->uid;
        req.role = (Sharebuy__Common__V1__Role) c->role;
        req.centre_id = c->centre_id;
        Sharebuy__Region__V1__CanApproveMerchantResponse *r = NULL;
        char msg[SB_RPC_MESSAGE_MAX];
        sb_status s = merchant_peer(call, "region", &sharebuy__region__v1__region__descriptor, "CanApproveMerchant",
                                    &req, &sharebuy__region__v1__can_approve_merchant_response__descriptor,
                                    (void **) &r, msg, sizeof msg, NULL);
        if (s != SB_OK) {
                *ret = merchant_peer_fail(call, "region", "whether the caller may decide", s, msg);
                return false;
        }
        if (!r->allowed) {
                *ret = sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_OUTSIDE_AREA", "%s",
                                           r->reason && *r->reason ? r->reason
                                                                   : "the caller may not decide in that district");
                merchant_free(r);
                return false;
        }
        *ret_centre = r->centre_id;
        merchant_free(r);
        return true;
}

/* Opens the merchant's ledger accounts and grants its owner MERCHANT_OWNER. Both are idempotent. */
static bool approve_effects(sb_call *call, sb_db *db, const merchant_row *m, sb_status *ret) {
        char msg[SB_RPC_MESSAGE_MAX];
        if (!merchant_open_accounts(call, SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_MERCHANT, m->id, ret))
                return false;
        if (m->owner_granted)
                return true;
        Sharebuy__Identity__V1__RoleGrant g = SHAREBUY__IDENTITY__V1__ROLE_GRANT__INIT;
        g.role = SHAREBUY__COMMON__V1__ROLE__ROLE_MERCHANT_OWNER;
        g.merchant_id = m->id;
        Sharebuy__Identity__V1__GrantRoleRequest gr = SHAREBUY__IDENTITY__V1__GRANT_ROLE_REQUEST__INIT;
        gr.user_id = m->owner_user_id;
        gr.grant = &g;
        sb_status s = merchant_peer(call, "identity", &sharebuy__identity__v1__identity__descriptor, "GrantRole", &gr,
                          &sharebuy__identity__v1__role_grant__descriptor, NULL, msg, sizeof msg, NULL);
        if (s == SB_OK) {
                int r = merchant_set_granted(db, m->id);
                if (r < 0) {
                        *ret = sb_service_db_fail(call, r, "recording the owner's grant");
                        return false;
                }
                return true;
        }
        if (s == SB_UNIMPLEMENTED || s == SB_NOT_FOUND) {
                /* An identity without GrantRole yet, or an owner identity does not know (an admin applied for a
                 * user id from elsewhere): the merchant is approved all the same; owner_granted stays 0 so that the
                 * grant can be repeated (docs/merchant.md). */
                sb_log_kv(SB_LOG_WARN, "grant", "the owner's MERCHANT_OWNER grant was not made", "merchant_id",
                          SB_LOG_UINT(m->id), "status", SB_LOG_STR(sb_status_name((int) s)), "message",
                          SB_LOG_STR(msg), NULL);
                return true;
        }
        *ret = merchant_peer_fail(call, "identity", "granting MERCHANT_OWNER", s, msg);
        return false;
}

static sb_status decide(sb_call *call, decide_kind kind, uint64_t id, const char *text, ProtobufCMessage *resp) {
        sb_claims c;
        sb_status st = sb_service_auth(call, SB_ROLES(SB_ROLE_CENTRE_OPERATOR) | SB_ROLES(SB_ROLE_ADMIN), &c);
        if (st != SB_OK)
                return st;
        bool reason_required = kind == DECIDE_REJECT || kind == DECIDE_SUSPEND;
        if (!merchant_text_valid(text, MERCHANT_REASON_MAX_CHARS, reason_required))
                return invalid(call, "REASON_FIELD_INVALID",
                               reason_required ? "reason: 1..200 characters required"
                                               : "note: at most 200 characters of UTF-8 text");
        sb_db *db = merchant_db(call, &st);
        if (!db)
                return st;
        merchant_row m;
        if (!load_or_fail(call, db, id, &m, &st))
                return st;
        uint64_t centre = 0;
        if (!may_decide(call, &c, m.district, &centre, &st))
                return st;
        static const char *const names[] = {"approve", "reject", "suspend", "resume"};
        int from = kind == DECIDE_APPROVE || kind == DECIDE_REJECT ? MERCHANT_PENDING
                   : kind == DECIDE_SUSPEND                        ? MERCHANT_APPROVED
                                                                   : MERCHANT_SUSPENDED;
        int to = kind == DECIDE_APPROVE   ? MERCHANT_APPROVED
                 : kind == DECIDE_REJECT  ? MERCHANT_REJECTED
                 : kind == DECIDE_SUSPEND ? MERCHANT_SUSPENDED
                                          : MERCHANT_APPROVED;
        static const char *const state_names[] = {"", "pending", "approved", "rejected", "suspended"};
        if (m.status != from)
                return sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_WRONG_STATE",
                                           "cannot %s merchant %" PRIu64 ": it is %s, not %s", names[kind], m.id,
                                           m.status >= 1 && m.status <= 4 ? state_names[m.status] : "?",
                                           state_names[from]);
        if (kind == DECIDE_APPROVE && !approve_effects(call, db, &m, &st))
                return st;
        int64_t now = merchant_now_ms();
        int r = merchant_set_status(db, m.id, from, to, s_or_empty(text), c.uid, now, centre);
        if (r == -ESTALE)
                return sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_WRONG_STATE",
                                           "merchant %" PRIu64 " changed meanwhile; reload it", m.id);
        if (r < 0)
                return sb_service_db_fail(call, r, "storing the decision");
        if ((r = merchant_load(db, m.id, &m)) < 0)
                return sb_service_db_fail(call, r, "reading the merchant");
        profile_msg(call, &m, (void *) resp);
        return SB_OK;
}

sb_status merchant_h_approve(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp) {
        const Sharebuy__Merchant__V1__ApproveRequest *req = (const void *) req_;
        return decide(call, DECIDE_APPROVE, req->merchant_id, req->note, resp);
}

sb_status merchant_h_reject(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp) {
        const Sharebuy__Merchant__V1__RejectRequest *req = (const void *) req_;
        return decide(call, DECIDE_REJECT, req->merchant_id, req->reason, resp);
}

sb_status merchant_h_suspend(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp) {
        const Sharebuy__Merchant__V1__SuspendRequest *req = (const void *) req_;
        return decide(call, DECIDE_SUSPEND, req->merchant_id, req->reason, resp);
}

sb_status merchant_h_resume(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp) {
        const Sharebuy__Merchant__V1__ResumeRequest *req = (const void *) req_;
        return decide(call, DECIDE_RESUME, req->merchant_id, req->note, resp);
}

/* --- The owner's changes --- */

/* The merchant an owner or admin acts on: the token's for an owner (a different id is PERMISSION_DENIED), the
 * request's for an admin. */
static bool owner_target(sb_call *call, const sb_claims *c, uint64_t req_id, uint64_t *ret, sb_status *st) {
        if (c->role == SB_ROLE_ADMIN) {
                if (!req_id) {
                        *st = invalid(call, "REASON_FIELD_INVALID", "merchant_id: required for an admin");
                        return false;
                }
                *ret = req_id;
                return true;
        }
        if (req_id && req_id != c->merchant_id) {
                *st = sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_SCOPE_MISMATCH",
                                          "merchant %" PRIu64 " is not the caller's", req_id);
                return false;
        }
        *ret = c->merchant_id;
        return true;
}

sb_status merchant_h_set_rate(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp) {
        const Sharebuy__Merchant__V1__SetConcessionRateRequest *req = (const void *) req_;
        sb_claims c;
        sb_status st = sb_service_auth(call, SB_ROLES(SB_ROLE_MERCHANT_OWNER) | SB_ROLES(SB_ROLE_ADMIN), &c);
        if (st != SB_OK)
                return st;
        uint64_t id;
        if (!owner_target(call, &c, req->merchant_id, &id, &st))
                return st;
        sb_db *db = merchant_db(call, &st);
        if (!db)
                return st;
        merchant_row m;
        if (!load_or_fail(call, db, id, &m, &st))
                return st;
        if (m.status == MERCHANT_REJECTED)
                return sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_WRONG_STATE",
                                           "merchant %" PRIu64 " was rejected", id);
        char today[MERCHANT_DAY_LEN + 1], tomorrow[MERCHANT_DAY_LEN + 1];
        merchant_today(call, today);
        merchant_day_next(today, tomorrow);
        merchant_settings set;
        if (!merchant_settings_get(call, m.district, today, &set, &st))
                return st;
        int64_t rate = req->concession_rate_bp;
        if (rate < set.econ.concession_min_bp || rate > set.econ.concession_max_bp)
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_CONCESSION_RATE_OUT_OF_RANGE",
                                           "concession_rate_bp %" PRId64 " is outside the allowed %" PRId64
                                           "..%" PRId64 " bp",
                                           rate, set.econ.concession_min_bp, set.econ.concession_max_bp);
        /* The rate in force today stays; the new one starts with the next business day, replacing any change
         * still waiting. */
        int r = merchant_set_rate(db, id, merchant_rate_on(&m, today), (int32_t) rate, tomorrow);
        if (r < 0)
                return sb_service_db_fail(call, r, "storing the rate");
        if ((r = merchant_load(db, id, &m)) < 0)
                return sb_service_db_fail(call, r, "reading the merchant");
        profile_msg(call, &m, (void *) resp);
        return SB_OK;
}

sb_status merchant_h_update(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp) {
        const Sharebuy__Merchant__V1__UpdateMerchantRequest *req = (const void *) req_;
        sb_claims c;
        sb_status st = sb_service_auth(call, SB_ROLES(SB_ROLE_MERCHANT_OWNER) | SB_ROLES(SB_ROLE_ADMIN), &c);
        if (st != SB_OK)
                return st;
        uint64_t id;
        if (!owner_target(call, &c, req->merchant_id, &id, &st))
                return st;
        if (req->n_update_mask == 0 || req->n_update_mask > 5 || !req->merchant)
                return invalid(call, "REASON_FIELD_INVALID", "update_mask: 1..5 field names and merchant required");
        sb_db *db = merchant_db(call, &st);
        if (!db)
                return st;
        merchant_row m;
        if (!load_or_fail(call, db, id, &m, &st))
                return st;
        const Sharebuy__Merchant__V1__MerchantProfile *v = req->merchant;
        for (size_t i = 0; i < req->n_update_mask; i++) {
                const char *f = req->update_mask[i];
                if (!strcmp(f, "name")) {
                        if (!merchant_text_valid(v->name, MERCHANT_NAME_MAX_CHARS, true))
                                return invalid(call, "REASON_FIELD_INVALID", "name: 1..64 characters required");
                        snprintf(m.name, sizeof m.name, "%s", v->name);
                } else if (!strcmp(f, "address")) {
                        if (!merchant_text_valid(v->address, MERCHANT_ADDRESS_MAX_CHARS, true))
                                return invalid(call, "REASON_FIELD_INVALID", "address: 1..200 characters required");
                        snprintf(m.address, sizeof m.address, "%s", v->address);
                } else if (!strcmp(f, "location")) {
                        if (!v->location || !merchant_point_in_china(v->location->latitude_e6, v->location->longitude_e6))
                                return invalid(call, "REASON_FIELD_INVALID", "location: a point inside China");
                        m.lat_e6 = v->location->latitude_e6;
                        m.lon_e6 = v->location->longitude_e6;
                } else if (!strcmp(f, "contact_name")) {
                        if (!merchant_text_valid(v->contact_name, MERCHANT_CONTACT_MAX_CHARS, true))
                                return invalid(call, "REASON_FIELD_INVALID", "contact_name: 1..64 characters");
                        snprintf(m.contact_name, sizeof m.contact_name, "%s", v->contact_name);
                } else if (!strcmp(f, "contact_phone")) {
                        if (!merchant_phone_valid(v->contact_phone))
                                return invalid(call, "REASON_PHONE_INVALID", "contact_phone: a mobile or landline");
                        snprintf(m.contact_phone, sizeof m.contact_phone, "%s", v->contact_phone);
                } else
                        return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                                   "update_mask: \"%.40s\" is unknown or cannot change", f);
        }
        int r = merchant_update_fields(db, &m);
        if (r < 0)
                return sb_service_db_fail(call, r, "storing the merchant");
        profile_msg(call, &m, (void *) resp);
        return SB_OK;
}

/* --- Reading --- */

sb_status merchant_h_get(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp) {
        const Sharebuy__Merchant__V1__GetMerchantRequest *req = (const void *) req_;
        sb_claims c;
        sb_status st = sb_service_auth(call,
                                       CLAIMS_SCOPE_ROLES | SB_ROLES(SB_ROLE_CENTRE_OPERATOR) |
                                               SB_ROLES(SB_ROLE_MEMBER) | SB_ROLES(SB_ROLE_ADMIN) |
                                               SB_ROLES(SB_ROLE_SERVICE),
                                       &c);
        if (st != SB_OK)
                return st;
        uint64_t id = req->merchant_id;
        bool scoped = c.role == SB_ROLE_MERCHANT_OWNER || c.role == SB_ROLE_CASHIER || c.role == SB_ROLE_TERMINAL;
        if (scoped) {
                if (id && id != c.merchant_id)
                        return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_SCOPE_MISMATCH",
                                                   "merchant %" PRIu64 " is not the caller's", id);
                id = c.merchant_id;
        }
        if (!id)
                return invalid(call, "REASON_FIELD_INVALID", "merchant_id: required");
        sb_db *db = merchant_db(call, &st);
        if (!db)
                return st;
        merchant_row m;
        if (!load_or_fail(call, db, id, &m, &st))
                return st;
        if (c.role == SB_ROLE_MEMBER && m.owner_user_id != c.uid)
                return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_SCOPE_MISMATCH",
                                           "merchant %" PRIu64 " is not the caller's application", id);
        if (c.role == SB_ROLE_CENTRE_OPERATOR) {
                uint64_t centre;
                if (!may_decide(call, &c, m.district, &centre, &st))
                        return st;
        }
        profile_msg(call, &m, (void *) resp);
        return SB_OK;
}

#define LIST_DEFAULT 50
#define LIST_MAX 500

sb_status merchant_h_list(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Merchant__V1__ListMerchantsRequest *req = (const void *) req_;
        Sharebuy__Merchant__V1__ListMerchantsResponse *resp = (void *) resp_;
        sb_claims c;
        sb_status st = sb_service_auth(call,
                                       SB_ROLES(SB_ROLE_ADMIN) | SB_ROLES(SB_ROLE_CENTRE_OPERATOR) |
                                               SB_ROLES(SB_ROLE_MEMBER) | SB_ROLES(SB_ROLE_MERCHANT_OWNER),
                                       &c);
        if (st != SB_OK)
                return st;
        const char *under = s_or_empty(req->under_code);
        if (*under && (strlen(under) != 6 || strspn(under, "0123456789") != 6))
                return invalid(call, "REASON_FIELD_INVALID", "under_code: 6 digits");
        uint64_t owner = req->owner_user_id;
        if (c.role == SB_ROLE_MEMBER || c.role == SB_ROLE_MERCHANT_OWNER)
                owner = c.uid;
        char area[7];
        snprintf(area, sizeof area, "%s", under);
        if (c.role == SB_ROLE_CENTRE_OPERATOR) {
                /* A centre sees the merchants under its own division. */
                Sharebuy__Region__V1__GetCentreRequest gc = SHAREBUY__REGION__V1__GET_CENTRE_REQUEST__INIT;
                gc.centre_id = c.centre_id;
                Sharebuy__Region__V1__Centre *ce = NULL;
                char msg[SB_RPC_MESSAGE_MAX];
                sb_status s = merchant_peer(call, "region", &sharebuy__region__v1__region__descriptor, "GetCentre", &gc,
                                            &sharebuy__region__v1__centre__descriptor, (void **) &ce, msg, sizeof msg,
                                            NULL);
                if (s != SB_OK)
                        return merchant_peer_fail(call, "region", "the caller's centre", s, msg);
                char own[7] = "";
                if (ce->district && ce->district->code)
                        snprintf(own, sizeof own, "%s", ce->district->code);
                merchant_free(ce);
                if (*under && strncmp(under, own, 6) != 0)
                        return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_OUTSIDE_AREA",
                                                   "under_code %s is outside the caller's centre (%s)", under, own);
                snprintf(area, sizeof area, "%s", own);
        }
        /* "440000" → "44%", "441900" → "4419%", else the code itself. */
        char like[8] = "%";
        if (*area) {
                size_t keep = !strcmp(area + 2, "0000") ? 2 : !strcmp(area + 4, "00") ? 4 : 6;
                memcpy(like, area, keep);
                like[keep] = keep == 6 ? '\0' : '%';
                like[keep + 1] = '\0';
        }
        uint32_t size = req->page && req->page->page_size ? req->page->page_size : LIST_DEFAULT;
        if (size > LIST_MAX)
                size = LIST_MAX;
        uint64_t before = UINT64_MAX;
        if (req->page && req->page->page_token && *req->page->page_token) {
                char *end = NULL;
                const char *t = req->page->page_token;
                if (strncmp(t, "m1.", 3) != 0 || (before = strtoull(t + 3, &end, 10)) == 0 || *end)
                        return invalid(call, "REASON_PAGE_TOKEN_INVALID", "page_token: not one this RPC made");
        }
        sb_db *db = merchant_db(call, &st);
        if (!db)
                return st;
        sb_db_stmt *s;
        int r = sb_db_prepare(db,
                              "SELECT " MERCHANT_ROW_COLUMNS " FROM sharebuy_merchant.merchants WHERE merchant_id < ? "
                              "AND (? = 0 OR status = ?) AND (? = 0 OR owner_user_id = ?) AND district_code LIKE ? "
                              "ORDER BY merchant_id DESC LIMIT ?",
                              &s);
        if (r < 0)
                return sb_service_db_fail(call, r, "listing merchants");
        sb_db_bind_u64(s, 0, before);
        sb_db_bind_i64(s, 1, req->status);
        sb_db_bind_i64(s, 2, req->status);
        sb_db_bind_u64(s, 3, owner);
        sb_db_bind_u64(s, 4, owner);
        sb_db_bind_str(s, 5, like);
        sb_db_bind_i64(s, 6, (int64_t) size + 1);
        if ((r = sb_db_execute(s)) < 0)
                return sb_service_db_fail(call, r, "listing merchants");
        resp->merchants = sb_call_alloc(call, sizeof *resp->merchants * (size + 1));
        uint64_t last = 0;
        bool more = false;
        while ((r = sb_db_fetch(s)) > 0) {
                merchant_row m;
                if (resp->n_merchants == size) {
                        more = true;
                        continue;
                }
                if ((r = merchant_row_read(s, 0, &m)) < 0)
                        break;
                Sharebuy__Merchant__V1__MerchantProfile *p = sb_call_alloc(call, sizeof *p);
                resp->merchants[resp->n_merchants++] = profile_msg(call, &m, p);
                last = m.id;
        }
        if (r < 0)
                return sb_service_db_fail(call, r, "listing merchants");
        Sharebuy__Common__V1__PageInfo *pi = sb_call_alloc(call, sizeof *pi);
        sharebuy__common__v1__page_info__init(pi);
        pi->next_page_token = more ? sb_call_printf(call, "m1.%" PRIu64, last) : "";
        resp->page = pi;
        return SB_OK;
}

sb_status merchant_h_deposit_status(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Merchant__V1__GetDepositStatusRequest *req = (const void *) req_;
        Sharebuy__Merchant__V1__DepositStatus *resp = (void *) resp_;
        sb_claims c;
        sb_status st = sb_service_auth(call, CLAIMS_SCOPE_ROLES | SB_ROLES(SB_ROLE_ADMIN) | SB_ROLES(SB_ROLE_SERVICE),
                                       &c);
        if (st != SB_OK)
                return st;
        uint64_t id = req->merchant_id;
        if (c.role != SB_ROLE_ADMIN && c.role != SB_ROLE_SERVICE) {
                if (id && id != c.merchant_id)
                        return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_SCOPE_MISMATCH",
                                                   "merchant %" PRIu64 " is not the caller's", id);
                id = c.merchant_id;
        }
        if (!id)
                return invalid(call, "REASON_FIELD_INVALID", "merchant_id: required");
        sb_db *db = merchant_db(call, &st);
        if (!db)
                return st;
        merchant_row m;
        if (!load_or_fail(call, db, id, &m, &st))
                return st;
        char today[MERCHANT_DAY_LEN + 1];
        merchant_today(call, today);
        merchant_settings set;
        if (!merchant_settings_get(call, m.district, today, &set, &st))
                return st;
        merchant_deposit d = {0};
        if (m.status == MERCHANT_APPROVED || m.status == MERCHANT_SUSPENDED) {
                if (!merchant_deposit_get(call, id, &d, &st))
                        return st;
        }
        resp->merchant_id = id;
        resp->deposit_sp_units = d.sp_units;
        resp->guide_price_micro_yuan = d.price_micro;
        resp->deposit_value_fen = d.price_micro ? merchant_sp_value_fen(d.sp_units, d.price_micro) : 0;
        resp->business_day = sb_call_strdup(call, today);
        resp->deposit_min_fen = set.econ.deposit_min_fen;
        resp->deposit_warning_fen = set.deposit_warning_fen;
        resp->level = (Sharebuy__Merchant__V1__DepositLevel) merchant_deposit_level(&set, d.sp_units, d.price_micro);
        resp->can_record_sales =
                m.status == MERCHANT_APPROVED &&
                resp->level != SHAREBUY__MERCHANT__V1__DEPOSIT_LEVEL__DEPOSIT_LEVEL_BELOW_MINIMUM;
        /* SP to buy: the value missing at today's price, rounded up to the SP unit. */
        if (d.price_micro > 0) {
                int64_t need[2] = {set.econ.deposit_min_fen, set.deposit_warning_fen}, out[2] = {0, 0};
                for (int i = 0; i < 2; i++) {
                        int64_t missing = need[i] - resp->deposit_value_fen;
                        if (missing > 0 &&
                            sb_muldiv_i64(missing, SB_SP_SCALE * SB_MICRO_PER_FEN, d.price_micro, SB_ROUND_UP, &out[i]) < 0)
                                out[i] = 0;
                }
                resp->sp_to_minimum_units = out[0];
                resp->sp_to_warning_units = out[1];
        }
        return SB_OK;
}

/* --- Nearby stores --- */

#define NEARBY_DEFAULT 20
#define NEARBY_MAX 100

typedef struct nearby_hit {
        uint32_t distance_m;
        merchant_row m;
} nearby_hit;

static int hit_cmp(const void *a_, const void *b_) {
        const nearby_hit *a = a_, *b = b_;
        if (a->distance_m != b->distance_m)
                return a->distance_m < b->distance_m ? -1 : 1;
        return a->m.id < b->m.id ? -1 : a->m.id > b->m.id;
}

/* Counts a NearbyStores call of the call's peer address (the port left out) in the current minute. False when the
 * address is over merchant.nearby_per_minute; *ret_retry_s says how long until the next minute. Two addresses that
 * share a slot share the limit until one of them is quiet for a minute: a bounded table, never a refusal of a
 * well-behaved client for longer than that. */
static bool nearby_allowed(sb_call *call, int64_t *ret_retry_s) {
        merchant_state *st = merchant_st(call);
        const char *peer = sb_call_peer(call);
        const char *colon = strrchr(peer, ':');
        size_t n = colon && colon != peer ? (size_t) (colon - peer) : strlen(peer);
        uint64_t h = UINT64_C(14695981039346656037);
        for (size_t i = 0; i < n; i++)
                h = (h ^ (uint8_t) peer[i]) * UINT64_C(1099511628211);
        int64_t now = merchant_now_ms(), minute = now / 60000;
        *ret_retry_s = (60000 - now % 60000 + 999) / 1000;
        pthread_mutex_lock(&st->mu);
        merchant_rate_slot *s = &st->nearby_rate[h % MERCHANT_RATE_SLOTS];
        if (s->peer_hash != h || s->minute != minute) {
                s->peer_hash = h;
                s->minute = minute;
                s->count = 0;
        }
        bool ok = s->count < st->nearby_per_minute;
        if (ok)
                s->count++;
        pthread_mutex_unlock(&st->mu);
        return ok;
}

sb_status merchant_h_nearby(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Merchant__V1__NearbyStoresRequest *req = (const void *) req_;
        Sharebuy__Merchant__V1__NearbyStoresResponse *resp = (void *) resp_;
        int64_t retry_s = 0;
        if (!nearby_allowed(call, &retry_s))
                return sb_call_fail_reason(call, SB_RESOURCE_EXHAUSTED, "REASON_RATE_LIMITED",
                                           "too many store searches from this address; try again in %d s",
                                           (int) retry_s);
        if (!req->point || !merchant_point_in_china(req->point->latitude_e6, req->point->longitude_e6))
                return invalid(call, "REASON_FIELD_INVALID", "point: a point inside mainland China is required");
        if (req->radius_m == 0 || req->radius_m > MERCHANT_NEARBY_RADIUS_MAX_M)
                return invalid(call, "REASON_FIELD_INVALID", "radius_m: 1..50000");
        uint32_t size = req->page && req->page->page_size ? req->page->page_size : NEARBY_DEFAULT;
        if (size > NEARBY_MAX)
                size = NEARBY_MAX;
        int32_t lat = req->point->latitude_e6, lon = req->point->longitude_e6;
        /* The token is the offset in the ordered result, bound to the query. */
        unsigned long offset = 0;
        if (req->page && req->page->page_token && *req->page->page_token) {
                char want[80];
                int n = snprintf(want, sizeof want, "n1.%d.%d.%u.", lat, lon, req->radius_m);
                char *end = NULL;
                if (strncmp(req->page->page_token, want, (size_t) n) != 0 ||
                    (offset = strtoul(req->page->page_token + n, &end, 10)) == 0 || *end ||
                    offset >= MERCHANT_NEARBY_CANDIDATES_MAX)
                        return invalid(call, "REASON_PAGE_TOKEN_INVALID", "page_token: not one this query made");
        }
        int32_t la0, la1, lo0, lo1;
        merchant_bbox(lat, lon, req->radius_m, &la0, &la1, &lo0, &lo1);
        sb_status st;
        sb_db *db = merchant_db(call, &st);
        if (!db)
                return st;
        sb_db_stmt *s;
        int r = sb_db_prepare(db,
                              "SELECT " MERCHANT_ROW_COLUMNS " FROM sharebuy_merchant.merchants WHERE status = 2 AND "
                              "lat_e6 BETWEEN ? AND ? AND lon_e6 BETWEEN ? AND ? LIMIT ?",
                              &s);
        if (r < 0)
                return sb_service_db_fail(call, r, "searching stores");
        sb_db_bind_i64(s, 0, la0);
        sb_db_bind_i64(s, 1, la1);
        sb_db_bind_i64(s, 2, lo0);
        sb_db_bind_i64(s, 3, lo1);
        sb_db_bind_i64(s, 4, MERCHANT_NEARBY_CANDIDATES_MAX);
        if ((r = sb_db_execute(s)) < 0)
                return sb_service_db_fail(call, r, "searching stores");
        nearby_hit *hits = malloc(sizeof *hits * MERCHANT_NEARBY_CANDIDATES_MAX);
        if (!hits)
                return sb_call_fail(call, SB_RESOURCE_EXHAUSTED, "out of memory; retry");
        size_t n = 0;
        while ((r = sb_db_fetch(s)) > 0) {
                merchant_row m;
                if (merchant_row_read(s, 0, &m) < 0)
                        continue;
                uint32_t d = merchant_distance_m(lat, lon, m.lat_e6, m.lon_e6);
                if (d > req->radius_m || n == MERCHANT_NEARBY_CANDIDATES_MAX)
                        continue;
                hits[n].distance_m = d;
                hits[n].m = m;
                n++;
        }
        if (r < 0) {
                free(hits);
                return sb_service_db_fail(call, r, "searching stores");
        }
        qsort(hits, n, sizeof *hits, hit_cmp);
        char today[MERCHANT_DAY_LEN + 1];
        merchant_today(call, today);
        size_t from = offset < n ? offset : n, to = from + size < n ? from + size : n;
        resp->stores = sb_call_alloc(call, sizeof *resp->stores * (to - from + 1));
        for (size_t i = from; i < to; i++) {
                const merchant_row *m = &hits[i].m;
                Sharebuy__Merchant__V1__Store *o = sb_call_alloc(call, sizeof *o);
                sharebuy__merchant__v1__store__init(o);
                o->merchant_id = m->id;
                o->name = sb_call_strdup(call, m->name);
                o->address = sb_call_strdup(call, m->address);
                Sharebuy__Common__V1__GeoPoint *g = sb_call_alloc(call, sizeof *g);
                sharebuy__common__v1__geo_point__init(g);
                g->latitude_e6 = m->lat_e6;
                g->longitude_e6 = m->lon_e6;
                o->location = g;
                o->district_code = sb_call_strdup(call, m->district);
                o->concession_rate_bp = merchant_rate_on(m, today);
                o->distance_m = hits[i].distance_m;
                resp->stores[resp->n_stores++] = o;
        }
        free(hits);
        Sharebuy__Common__V1__PageInfo *pi = sb_call_alloc(call, sizeof *pi);
        sharebuy__common__v1__page_info__init(pi);
        pi->next_page_token = to < n ? sb_call_printf(call, "n1.%d.%d.%u.%zu", lat, lon, req->radius_m, to) : "";
        resp->page = pi;
        return SB_OK;
}
