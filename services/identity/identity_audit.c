/* identity_audit: ListAuditEvents and GetPublicKeys. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity_internal.h"

#define PAGE_DEFAULT 50
#define PAGE_MAX 500

sb_status identity_list_audit_events(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Identity__V1__ListAuditEventsRequest *req = (const void *)req_;
        Sharebuy__Identity__V1__ListAuditEventsResponse *resp = (void *)resp_;
        sb_claims c;
        sb_status s = sb_service_auth(call,
                                      SB_ROLES(SB_ROLE_ADMIN) | SB_ROLES(SB_ROLE_MERCHANT_OWNER) |
                                              SB_ROLES(SB_ROLE_MEMBER),
                                      &c);
        if (s != SB_OK)
                return s;
        /* Events are written in batches (identity_audit_queue.c): read after everything queued so far. */
        identity_audit_queue_sync(identity_st(call)->audit);
        uint64_t user_id = req->user_id, merchant_id = req->merchant_id;
        if (c.role == SB_ROLE_MERCHANT_OWNER) {
                if (merchant_id && merchant_id != c.merchant_id)
                        return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_SCOPE_MISMATCH",
                                                   "a merchant owner sees its own merchant's events only");
                merchant_id = c.merchant_id;
        } else if (c.role == SB_ROLE_MEMBER) {
                if ((user_id && user_id != c.uid) || merchant_id || req->terminal_id)
                        return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_SCOPE_MISMATCH",
                                                   "a member sees its own events only");
                user_id = c.uid;
        }
        if (req->from_unix_ms && req->to_unix_ms && req->from_unix_ms > req->to_unix_ms)
                return identity_invalid(call, "from_unix_ms is after to_unix_ms");
        uint32_t size = PAGE_DEFAULT;
        uint64_t before = UINT64_MAX >> 1;
        if (req->page) {
                if (req->page->page_size)
                        size = req->page->page_size > PAGE_MAX ? PAGE_MAX : req->page->page_size;
                if (req->page->page_token[0]) {
                        /* The token is "a" and the last event id shown; events are never deleted or renumbered. */
                        const char *t = req->page->page_token;
                        char *end = NULL;
                        errno = 0;
                        unsigned long long v = t[0] == 'a' && t[1] >= '0' && t[1] <= '9' ? strtoull(t + 1, &end, 10) : 0;
                        if (!v || errno || !end || *end || strlen(t) > 24)
                                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_PAGE_TOKEN_INVALID",
                                                           "page_token: not a token this RPC gave");
                        before = v;
                }
        }
        sb_db *db = sb_service_db(call);
        if (!db)
                return sb_service_db_unavailable(call);
        sb_db_stmt *q;
        int r = sb_db_prepare(db,
                              "SELECT event_id, type, occurred_ms, actor_user_id, actor_role, subject_user_id, "
                              "merchant_id, terminal_id, centre_id, peer, request_id, detail FROM audit_events WHERE "
                              "event_id < ? AND (? = 0 OR type = ?) AND (? = 0 OR subject_user_id = ? OR actor_user_id "
                              "= ?) AND (? = 0 OR merchant_id = ?) AND (? = 0 OR terminal_id = ?) AND occurred_ms >= ? "
                              "AND (? = 0 OR occurred_ms <= ?) ORDER BY event_id DESC LIMIT ?",
                              &q);
        if (r == 0) {
                unsigned i = 0;
                sb_db_bind_u64(q, i++, before);
                sb_db_bind_i64(q, i++, req->type);
                sb_db_bind_i64(q, i++, req->type);
                sb_db_bind_u64(q, i++, user_id);
                sb_db_bind_u64(q, i++, user_id);
                sb_db_bind_u64(q, i++, user_id);
                sb_db_bind_u64(q, i++, merchant_id);
                sb_db_bind_u64(q, i++, merchant_id);
                sb_db_bind_u64(q, i++, req->terminal_id);
                sb_db_bind_u64(q, i++, req->terminal_id);
                sb_db_bind_i64(q, i++, req->from_unix_ms);
                sb_db_bind_i64(q, i++, req->to_unix_ms);
                sb_db_bind_i64(q, i++, req->to_unix_ms);
                sb_db_bind_i64(q, i++, (int64_t)size + 1);
                r = sb_db_execute(q);
        }
        if (r < 0)
                return sb_service_db_fail(call, r, "listing audit events");
        resp->events = sb_call_alloc(call, sizeof *resp->events * (size + 1));
        size_t n = 0;
        bool more = false;
        while ((r = sb_db_fetch(q)) == 1) {
                if (n == size) {
                        more = true;
                        continue;
                }
                Sharebuy__Identity__V1__AuditEvent *e = sb_call_alloc(call, sizeof *e);
                sharebuy__identity__v1__audit_event__init(e);
                int64_t type = 0, role = 0;
                char peer[80] = "", rid[80] = "", detail[820] = "";
                sb_db_col_u64(q, 0, &e->event_id);
                sb_db_col_i64(q, 1, &type);
                sb_db_col_i64(q, 2, &e->occurred_unix_ms);
                sb_db_col_u64(q, 3, &e->actor_user_id);
                sb_db_col_i64(q, 4, &role);
                sb_db_col_u64(q, 5, &e->subject_user_id);
                sb_db_col_u64(q, 6, &e->merchant_id);
                sb_db_col_u64(q, 7, &e->terminal_id);
                sb_db_col_u64(q, 8, &e->centre_id);
                sb_db_col_str(q, 9, peer, sizeof peer);
                sb_db_col_str(q, 10, rid, sizeof rid);
                sb_db_col_str(q, 11, detail, sizeof detail);
                e->type = (Sharebuy__Identity__V1__AuditEventType)type;
                e->actor_role = (Sharebuy__Common__V1__Role)role;
                e->peer = sb_call_strdup(call, peer);
                e->request_id = sb_call_strdup(call, rid);
                e->detail = sb_call_strdup(call, detail);
                resp->events[n++] = e;
        }
        if (r < 0)
                return sb_service_db_fail(call, r, "listing audit events");
        resp->n_events = n;
        resp->page = sb_call_alloc(call, sizeof *resp->page);
        sharebuy__common__v1__page_info__init(resp->page);
        resp->page->next_page_token =
                more && n ? sb_call_printf(call, "a%" PRIu64, resp->events[n - 1]->event_id) : (char *)"";
        return SB_OK;
}

/* The value of "name":"..." after p in a JSON text we made ourselves (no escapes in base64url or kids). */
static char *json_field(sb_call *call, const char *p, const char *end, const char *name) {
        char pat[32];
        snprintf(pat, sizeof pat, "\"%s\":\"", name);
        const char *a = strstr(p, pat);
        if (!a || a >= end)
                return (char *)"";
        a += strlen(pat);
        const char *b = strchr(a, '"');
        if (!b || b > end)
                return (char *)"";
        char *out = sb_call_alloc(call, (size_t)(b - a) + 1);
        memcpy(out, a, (size_t)(b - a));
        return out;
}

sb_status identity_get_public_keys(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        Sharebuy__Identity__V1__GetPublicKeysResponse *resp = (void *)resp_;
        identity_state *st = identity_st(call);
        enum { MAX_KEYS = 8 };
        resp->keys = sb_call_alloc(call, sizeof *resp->keys * MAX_KEYS * 2);
        size_t n = 0;
        const char *p = strstr(st->jwks, "{\"kty\"");
        while (p && n < MAX_KEYS * 2) {
                const char *next = strstr(p + 1, "{\"kty\"");
                const char *end = next ? next : p + strlen(p);
                /* Each key verifies both access tokens and member codes: one entry per purpose. */
                for (int purpose = 1; purpose <= 2; purpose++) {
                        Sharebuy__Identity__V1__PublicKey *k = sb_call_alloc(call, sizeof *k);
                        sharebuy__identity__v1__public_key__init(k);
                        k->kid = json_field(call, p, end, "kid");
                        k->kty = json_field(call, p, end, "kty");
                        k->crv = json_field(call, p, end, "crv");
                        k->alg = json_field(call, p, end, "alg");
                        k->x = json_field(call, p, end, "x");
                        k->y = json_field(call, p, end, "y");
                        k->purpose = (Sharebuy__Identity__V1__KeyPurpose)purpose;
                        resp->keys[n++] = k;
                }
                p = next;
        }
        resp->n_keys = n;
        resp->jwks_json = st->jwks;
        resp->issuer = (char *)SB_AUTH_ISSUER;
        resp->audience = (char *)SB_AUTH_AUDIENCE;
        resp->max_age_seconds = 3600;
        return SB_OK;
}
