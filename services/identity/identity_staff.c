/* identity_staff: staff users and role grants. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "identity_internal.h"

#define AUD(x) SHAREBUY__IDENTITY__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_TYPE_##x

sb_status identity_staff_load(sb_call *call, sb_db *db, uint64_t user_id, Sharebuy__Identity__V1__Staff **ret) {
        sb_db_stmt *s;
        int r = sb_db_prepare(db,
                              "SELECT COALESCE(login, ''), display_name, disabled, must_change_password, created_ms, "
                              "last_sign_in_ms FROM users WHERE user_id = ? AND kind = 2",
                              &s);
        if (r == 0) {
                sb_db_bind_u64(s, 0, user_id);
                r = sb_db_execute(s);
        }
        if (r == 0)
                r = sb_db_fetch(s);
        if (r < 0)
                return sb_service_db_fail(call, r, "reading the staff user");
        if (r == 0)
                return sb_call_fail(call, SB_NOT_FOUND, "no staff user with id %" PRIu64, user_id);
        Sharebuy__Identity__V1__Staff *x = sb_call_alloc(call, sizeof *x);
        sharebuy__identity__v1__staff__init(x);
        char login[40] = "", name[160] = "";
        int64_t dis = 0, mcp = 0;
        sb_db_col_str(s, 0, login, sizeof login);
        sb_db_col_str(s, 1, name, sizeof name);
        sb_db_col_i64(s, 2, &dis);
        sb_db_col_i64(s, 3, &mcp);
        sb_db_col_i64(s, 4, &x->created_unix_ms);
        sb_db_col_i64(s, 5, &x->last_sign_in_unix_ms);
        while (sb_db_fetch(s) == 1) {
        }
        x->user_id = user_id;
        x->login = sb_call_strdup(call, login);
        x->display_name = sb_call_strdup(call, name);
        x->disabled = dis != 0;
        x->must_change_password = mcp != 0;
        if ((r = identity_grants_load(call, db, user_id, false, &x->grants, &x->n_grants)) < 0)
                return sb_service_db_fail(call, r, "reading grants");
        *ret = x;
        return SB_OK;
}

static bool staff_role(int role) {
        return role == SB_ROLE_MERCHANT_OWNER || role == SB_ROLE_CASHIER || role == SB_ROLE_CENTRE_OPERATOR ||
               role == SB_ROLE_ADMIN;
}

/* Whether the scope fits the role: merchant for owners and cashiers, centre for operators, nothing for admins. */
static const char *scope_problem(int role, uint64_t merchant_id, uint64_t centre_id) {
        switch (role) {
        case SB_ROLE_MERCHANT_OWNER:
        case SB_ROLE_CASHIER:
                return merchant_id && !centre_id ? NULL : "the role needs merchant_id (and no centre_id)";
        case SB_ROLE_CENTRE_OPERATOR:
                return centre_id && !merchant_id ? NULL : "the role needs centre_id (and no merchant_id)";
        case SB_ROLE_ADMIN:
                return !merchant_id && !centre_id ? NULL : "the ADMIN role takes no merchant_id or centre_id";
        default:
                return "the role must be MERCHANT_OWNER, CASHIER, CENTRE_OPERATOR or ADMIN";
        }
}

struct staff_tx {
        const char *login, *name, *hash;
        uint64_t login_merchant_id;
        int role;
        uint64_t merchant_id, centre_id;
        uint64_t user_id;
};

static int staff_tx_fn(sb_db *db, void *arg) {
        struct staff_tx *t = arg;
        sb_db_stmt *s;
        int64_t now = identity_now_ms();
        int r = sb_db_prepare(db,
                              "INSERT INTO users (kind, login, login_merchant_id, display_name, password_hash, "
                              "must_change_password, created_ms) VALUES (2,?,?,?,?,1,?)",
                              &s);
        if (r < 0)
                return r;
        sb_db_bind_str(s, 0, t->login);
        sb_db_bind_u64(s, 1, t->login_merchant_id);
        sb_db_bind_str(s, 2, t->name);
        sb_db_bind_str(s, 3, t->hash);
        sb_db_bind_i64(s, 4, now);
        if ((r = sb_db_execute(s)) < 0)
                return r;
        t->user_id = sb_db_insert_id(s);
        if ((r = sb_db_prepare(db,
                               "INSERT INTO grants (user_id, role, merchant_id, centre_id, granted_ms) "
                               "VALUES (?,?,?,?,?)",
                               &s)) < 0)
                return r;
        sb_db_bind_u64(s, 0, t->user_id);
        sb_db_bind_i64(s, 1, t->role);
        sb_db_bind_u64(s, 2, t->merchant_id);
        sb_db_bind_u64(s, 3, t->centre_id);
        sb_db_bind_i64(s, 4, now);
        return sb_db_execute(s);
}

sb_status identity_create_staff(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Identity__V1__CreateStaffRequest *req = (const void *)req_;
        Sharebuy__Identity__V1__Staff *resp = (void *)resp_;
        sb_claims c;
        sb_status s = sb_service_auth(call,
                                      SB_ROLES(SB_ROLE_MERCHANT_OWNER) | SB_ROLES(SB_ROLE_ADMIN) |
                                              SB_ROLES(SB_ROLE_CENTRE_OPERATOR),
                                      &c);
        if (s != SB_OK)
                return s;
        int role = (int)req->role;
        if (!staff_role(role))
                return identity_invalid(call, "role: MERCHANT_OWNER, CASHIER, CENTRE_OPERATOR or ADMIN");
        uint64_t merchant_id = req->merchant_id, centre_id = req->centre_id;
        if (c.role == SB_ROLE_MERCHANT_OWNER) {
                if (role != SB_ROLE_CASHIER)
                        return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_ROLE_NOT_ALLOWED",
                                                   "a merchant owner may create cashiers only");
                if (merchant_id && merchant_id != c.merchant_id)
                        return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_SCOPE_MISMATCH",
                                                   "a merchant owner may create cashiers of its own merchant only");
                merchant_id = c.merchant_id;
        } else if (c.role == SB_ROLE_CENTRE_OPERATOR) {
                if (role != SB_ROLE_CENTRE_OPERATOR)
                        return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_ROLE_NOT_ALLOWED",
                                                   "a centre operator may create operators of its centre only");
                if (centre_id && centre_id != c.centre_id)
                        return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_SCOPE_MISMATCH",
                                                   "a centre operator may create operators of its own centre only");
                centre_id = c.centre_id;
        }
        const char *why_scope = scope_problem(role, merchant_id, centre_id);
        if (why_scope)
                return identity_invalid(call, "%s", why_scope);
        if (!identity_login_valid(req->login))
                return identity_invalid(call, "login: 3 to 32 characters of a-z, 0-9, '.', '_' and '-'");
        if (!identity_text_valid(req->display_name, IDENTITY_DISPLAY_NAME_MAX))
                return identity_invalid(call, "display_name: at most %d characters of UTF-8 text",
                                        IDENTITY_DISPLAY_NAME_MAX);
        char why[160];
        if (strnlen(req->initial_password, IDENTITY_PASSWORD_MAX + 1) > IDENTITY_PASSWORD_MAX ||
            !sb_auth_password_acceptable(req->initial_password, why, sizeof why))
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_PASSWORD_WEAK", "initial_password: %s",
                                           strnlen(req->initial_password, 129) > 128 ? "at most 128 bytes" : why);
        sb_db *db = sb_service_db(call);
        if (!db)
                return sb_service_db_unavailable(call);
        char hash[SB_AUTH_HASH_MAX];
        if (sb_auth_password_hash(req->initial_password, hash) < 0)
                return sb_call_fail(call, SB_UNAVAILABLE, "the server is out of memory for password hashing; retry");
        struct staff_tx t = { .login = req->login, .name = req->display_name, .hash = hash, .role = role,
                              .merchant_id = merchant_id, .centre_id = centre_id,
                              .login_merchant_id = role == SB_ROLE_CASHIER ? merchant_id : 0 };
        int r = sb_db_tx(db, staff_tx_fn, &t);
        if (r == -EEXIST)
                return sb_call_fail_reason(call, SB_ALREADY_EXISTS, "REASON_LOGIN_TAKEN",
                                           "the login %s is taken%s", req->login,
                                           role == SB_ROLE_CASHIER ? " at this merchant" : "");
        if (r < 0)
                return sb_service_db_fail(call, r, "creating the staff user");
        identity_audit(call, AUD(STAFF_CREATED), &c, t.user_id, merchant_id, 0, centre_id, "staff user %s created as %s",
                       req->login, sb_role_name((sb_role)role));
        Sharebuy__Identity__V1__Staff *x = NULL;
        if ((s = identity_staff_load(call, db, t.user_id, &x)) != SB_OK)
                return s;
        *resp = *x;
        return SB_OK;
}

/* Whether caller c may manage staff user u (disable, reset password): admins anyone but themselves; a merchant
 * owner its merchant's cashiers. */
static sb_status may_manage(sb_call *call, sb_db *db, const sb_claims *c, uint64_t user_id) {
        if (user_id == 0)
                return identity_invalid(call, "user_id: required");
        if (c->role == SB_ROLE_ADMIN) {
                if (user_id == c->uid)
                        return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_SCOPE_MISMATCH",
                                                   "an admin cannot do this to itself");
                return SB_OK;
        }
        sb_db_stmt *s;
        int r = sb_db_prepare(db, "SELECT 1 FROM grants WHERE user_id = ? AND role = 3 AND merchant_id = ?", &s);
        if (r == 0) {
                sb_db_bind_u64(s, 0, user_id);
                sb_db_bind_u64(s, 1, c->merchant_id);
                r = sb_db_execute(s);
        }
        if (r == 0)
                r = sb_db_fetch(s);
        if (r < 0)
                return sb_service_db_fail(call, r, "reading grants");
        if (r == 1) {
                while (sb_db_fetch(s) == 1) {
                }
                return SB_OK;
        }
        return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_SCOPE_MISMATCH",
                                   "this user is not a cashier of your merchant");
}

sb_status identity_set_staff_disabled(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Identity__V1__SetStaffDisabledRequest *req = (const void *)req_;
        Sharebuy__Identity__V1__Staff *resp = (void *)resp_;
        sb_claims c;
        sb_status s = sb_service_auth(call, SB_ROLES(SB_ROLE_MERCHANT_OWNER) | SB_ROLES(SB_ROLE_ADMIN), &c);
        if (s != SB_OK)
                return s;
        if (req->disabled && (!req->reason[0] || !identity_text_valid(req->reason, IDENTITY_REASON_MAX)))
                return identity_invalid(call, "reason: required when disabling, at most %d characters",
                                        IDENTITY_REASON_MAX);
        sb_db *db = sb_service_db(call);
        if (!db)
                return sb_service_db_unavailable(call);
        if ((s = may_manage(call, db, &c, req->user_id)) != SB_OK)
                return s;
        Sharebuy__Identity__V1__Staff *x = NULL;
        if ((s = identity_staff_load(call, db, req->user_id, &x)) != SB_OK)
                return s;
        sb_db_stmt *st;
        int r = sb_db_prepare(db, "UPDATE users SET disabled = ? WHERE user_id = ?", &st);
        if (r == 0) {
                sb_db_bind_i64(st, 0, req->disabled ? 1 : 0);
                sb_db_bind_u64(st, 1, req->user_id);
                r = sb_db_execute(st);
        }
        if (r == 0 && req->disabled)
                r = identity_sessions_revoke(db, req->user_id, 0, 0, 0, 0);
        if (r < 0)
                return sb_service_db_fail(call, r, "changing the user");
        identity_audit(call, req->disabled ? AUD(STAFF_DISABLED) : AUD(STAFF_ENABLED), &c, req->user_id,
                       c.merchant_id, 0, 0, "%s: %s", req->disabled ? "disabled" : "enabled", req->reason);
        x->disabled = req->disabled;
        *resp = *x;
        return SB_OK;
}

sb_status identity_reset_staff_password(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Identity__V1__ResetStaffPasswordRequest *req = (const void *)req_;
        Sharebuy__Identity__V1__Staff *resp = (void *)resp_;
        sb_claims c;
        sb_status s = sb_service_auth(call, SB_ROLES(SB_ROLE_MERCHANT_OWNER) | SB_ROLES(SB_ROLE_ADMIN), &c);
        if (s != SB_OK)
                return s;
        char why[160];
        if (strnlen(req->new_password, IDENTITY_PASSWORD_MAX + 1) > IDENTITY_PASSWORD_MAX ||
            !sb_auth_password_acceptable(req->new_password, why, sizeof why))
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_PASSWORD_WEAK", "new_password: %s",
                                           strnlen(req->new_password, 129) > 128 ? "at most 128 bytes" : why);
        sb_db *db = sb_service_db(call);
        if (!db)
                return sb_service_db_unavailable(call);
        if ((s = may_manage(call, db, &c, req->user_id)) != SB_OK)
                return s;
        Sharebuy__Identity__V1__Staff *x = NULL;
        if ((s = identity_staff_load(call, db, req->user_id, &x)) != SB_OK)
                return s;
        char hash[SB_AUTH_HASH_MAX];
        if (sb_auth_password_hash(req->new_password, hash) < 0)
                return sb_call_fail(call, SB_UNAVAILABLE, "the server is out of memory for password hashing; retry");
        sb_db_stmt *st;
        int r = sb_db_prepare(db,
                              "UPDATE users SET password_hash = ?, must_change_password = 1, failed_signins = 0, "
                              "locked_until_ms = 0 WHERE user_id = ?",
                              &st);
        if (r == 0) {
                sb_db_bind_str(st, 0, hash);
                sb_db_bind_u64(st, 1, req->user_id);
                r = sb_db_execute(st);
        }
        if (r == 0)
                r = identity_sessions_revoke(db, req->user_id, 0, 0, 0, 0);
        if (r < 0)
                return sb_service_db_fail(call, r, "resetting the password");
        identity_audit(call, AUD(STAFF_PASSWORD_RESET), &c, req->user_id, c.merchant_id, 0, 0,
                       "initial password set; sessions revoked");
        x->must_change_password = true;
        *resp = *x;
        return SB_OK;
}

/* --- listing staff --- */

#define STAFF_PAGE_DEFAULT 50
#define STAFF_PAGE_MAX 500
#define STAFF_PAGE_TOKEN_MAX 120

/* The filters a ListStaff page is made with, after the caller's scope was applied. */
struct staff_filter {
        int role;                     /* 0 = any staff role */
        uint64_t merchant_id, centre_id;
        bool include_disabled;
};

/* The page token: the filters and the last user id shown. The filters are part of it so that a token is refused
 * with other filters instead of silently paging another list. */
static char *staff_page_token(sb_call *call, const struct staff_filter *f, uint64_t last_user_id) {
        return sb_call_printf(call, "s%d.%" PRIu64 ".%" PRIu64 ".%d.%" PRIu64, f->role, f->merchant_id, f->centre_id,
                              f->include_disabled ? 1 : 0, last_user_id);
}

/* Parses a token made by staff_page_token for the same filters into *ret_after; -EINVAL for anything else. It is
 * parsed, printed again and compared, so no variant spelling (signs, spaces, leading zeros) is taken. */
static int staff_page_token_parse(const char *t, const struct staff_filter *f, uint64_t *ret_after) {
        if (strnlen(t, STAFF_PAGE_TOKEN_MAX + 1) > STAFF_PAGE_TOKEN_MAX)
                return -EINVAL;
        const char *dot = strrchr(t, '.');
        if (!dot || dot[1] < '1' || dot[1] > '9')
                return -EINVAL;
        uint64_t after = 0;
        for (const char *p = dot + 1; *p; p++) {
                if (*p < '0' || *p > '9' || after > (UINT64_MAX - 9) / 10)
                        return -EINVAL;
                after = after * 10 + (uint64_t)(*p - '0');
        }
        char again[STAFF_PAGE_TOKEN_MAX + 32];
        snprintf(again, sizeof again, "s%d.%" PRIu64 ".%" PRIu64 ".%d.%" PRIu64, f->role, f->merchant_id,
                 f->centre_id, f->include_disabled ? 1 : 0, after);
        if (strcmp(again, t) != 0)
                return -EINVAL;
        *ret_after = after;
        return 0;
}

sb_status identity_list_staff(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Identity__V1__ListStaffRequest *req = (const void *)req_;
        Sharebuy__Identity__V1__ListStaffResponse *resp = (void *)resp_;
        sb_claims c;
        sb_status s = sb_service_auth(call,
                                      SB_ROLES(SB_ROLE_MERCHANT_OWNER) | SB_ROLES(SB_ROLE_CENTRE_OPERATOR) |
                                              SB_ROLES(SB_ROLE_ADMIN),
                                      &c);
        if (s != SB_OK)
                return s;
        int role = (int)req->role;
        if (role != 0 && !staff_role(role))
                return identity_invalid(call, "role: unspecified, MERCHANT_OWNER, CASHIER, CENTRE_OPERATOR or ADMIN");
        struct staff_filter f = { .role = role, .merchant_id = req->merchant_id, .centre_id = req->centre_id,
                                  .include_disabled = req->include_disabled };
        /* Outside the admin, the scope comes from the token and a filter may only narrow it to itself. */
        if (c.role == SB_ROLE_MERCHANT_OWNER) {
                if ((role && role != SB_ROLE_CASHIER) || (f.merchant_id && f.merchant_id != c.merchant_id) ||
                    f.centre_id)
                        return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_SCOPE_MISMATCH",
                                                   "a merchant owner may list the cashiers of its own merchant only");
                f.role = SB_ROLE_CASHIER;
                f.merchant_id = c.merchant_id;
        } else if (c.role == SB_ROLE_CENTRE_OPERATOR) {
                if ((role && role != SB_ROLE_CENTRE_OPERATOR) || (f.centre_id && f.centre_id != c.centre_id) ||
                    f.merchant_id)
                        return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_SCOPE_MISMATCH",
                                                   "a centre operator may list the operators of its own centre only");
                f.role = SB_ROLE_CENTRE_OPERATOR;
                f.centre_id = c.centre_id;
        }
        uint32_t size = STAFF_PAGE_DEFAULT;
        uint64_t after = 0;
        if (req->page) {
                if (req->page->page_size)
                        size = req->page->page_size > STAFF_PAGE_MAX ? STAFF_PAGE_MAX : req->page->page_size;
                if (req->page->page_token && req->page->page_token[0] &&
                    staff_page_token_parse(req->page->page_token, &f, &after) < 0)
                        return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_PAGE_TOKEN_INVALID",
                                                   "page_token: not a token this RPC gave for these filters");
        }
        sb_db *db = sb_service_db(call);
        if (!db)
                return sb_service_db_unavailable(call);
        /* Staff are the users holding a grant of the filter: staff accounts and members made owners or operators
         * (their login is empty). Ascending user ids make the cursor; ids are never reused. */
        sb_db_stmt *q;
        int r = sb_db_prepare(db,
                              "SELECT u.user_id, COALESCE(u.login, ''), u.display_name, u.disabled, "
                              "u.must_change_password, u.created_ms, u.last_sign_in_ms FROM users u WHERE "
                              "u.user_id > ? AND (? OR u.disabled = 0) AND EXISTS (SELECT 1 FROM grants g WHERE "
                              "g.user_id = u.user_id AND (? = 0 OR g.role = ?) AND (? = 0 OR g.merchant_id = ?) AND "
                              "(? = 0 OR g.centre_id = ?)) ORDER BY u.user_id LIMIT ?",
                              &q);
        if (r == 0) {
                unsigned i = 0;
                sb_db_bind_u64(q, i++, after);
                sb_db_bind_i64(q, i++, f.include_disabled ? 1 : 0);
                sb_db_bind_i64(q, i++, f.role);
                sb_db_bind_i64(q, i++, f.role);
                sb_db_bind_u64(q, i++, f.merchant_id);
                sb_db_bind_u64(q, i++, f.merchant_id);
                sb_db_bind_u64(q, i++, f.centre_id);
                sb_db_bind_u64(q, i++, f.centre_id);
                sb_db_bind_i64(q, i++, (int64_t)size + 1);
                r = sb_db_execute(q);
        }
        if (r < 0)
                return sb_service_db_fail(call, r, "listing staff");
        resp->staff = sb_call_alloc(call, sizeof *resp->staff * (size + 1));
        size_t n = 0;
        bool more = false;
        while ((r = sb_db_fetch(q)) == 1) {
                if (n == size) {
                        more = true;
                        continue;
                }
                Sharebuy__Identity__V1__Staff *x = sb_call_alloc(call, sizeof *x);
                sharebuy__identity__v1__staff__init(x);
                char login[40] = "", name[160] = "";
                int64_t dis = 0, mcp = 0;
                sb_db_col_u64(q, 0, &x->user_id);
                sb_db_col_str(q, 1, login, sizeof login);
                sb_db_col_str(q, 2, name, sizeof name);
                sb_db_col_i64(q, 3, &dis);
                sb_db_col_i64(q, 4, &mcp);
                sb_db_col_i64(q, 5, &x->created_unix_ms);
                sb_db_col_i64(q, 6, &x->last_sign_in_unix_ms);
                x->login = sb_call_strdup(call, login);
                x->display_name = sb_call_strdup(call, name);
                x->disabled = dis != 0;
                x->must_change_password = mcp != 0;
                resp->staff[n++] = x;
        }
        if (r < 0)
                return sb_service_db_fail(call, r, "listing staff");
        /* The grants: an admin sees every grant of a user; an owner or operator only those within its own scope
         * (a user may also hold grants elsewhere that are none of its business). */
        bool scoped = c.role != SB_ROLE_ADMIN;
        for (size_t i = 0; i < n; i++) {
                Sharebuy__Identity__V1__Staff *x = resp->staff[i];
                if ((r = identity_grants_load(call, db, x->user_id, false, &x->grants, &x->n_grants)) < 0)
                        return sb_service_db_fail(call, r, "reading grants");
                if (!scoped)
                        continue;
                size_t k = 0;
                for (size_t j = 0; j < x->n_grants; j++) {
                        const Sharebuy__Identity__V1__RoleGrant *g = x->grants[j];
                        if ((int)g->role == f.role && g->merchant_id == f.merchant_id && g->centre_id == f.centre_id)
                                x->grants[k++] = x->grants[j];
                }
                x->n_grants = k;
        }
        resp->n_staff = n;
        resp->page = sb_call_alloc(call, sizeof *resp->page);
        sharebuy__common__v1__page_info__init(resp->page);
        resp->page->next_page_token = more && n ? staff_page_token(call, &f, resp->staff[n - 1]->user_id) : (char *)"";
        return SB_OK;
}

/* --- grants --- */

static sb_status grant_check(sb_call *call, sb_claims *c, uint64_t user_id, const Sharebuy__Identity__V1__RoleGrant *g) {
        sb_status s = sb_service_auth(call, SB_ROLES(SB_ROLE_ADMIN) | SB_ROLES(SB_ROLE_SERVICE), c);
        if (s != SB_OK)
                return s;
        if (!user_id)
                return identity_invalid(call, "user_id: required");
        if (!g || !staff_role((int)g->role))
                return identity_invalid(call, "grant.role: MERCHANT_OWNER, CASHIER, CENTRE_OPERATOR or ADMIN");
        const char *why = scope_problem((int)g->role, g->merchant_id, g->centre_id);
        if (why)
                return identity_invalid(call, "grant: %s", why);
        return SB_OK;
}

sb_status identity_grant_role(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Identity__V1__GrantRoleRequest *req = (const void *)req_;
        Sharebuy__Identity__V1__RoleGrant *resp = (void *)resp_;
        sb_claims c;
        sb_status s = grant_check(call, &c, req->user_id, req->grant);
        if (s != SB_OK)
                return s;
        sb_db *db = sb_service_db(call);
        if (!db)
                return sb_service_db_unavailable(call);
        identity_user u;
        int r = identity_user_by_id(db, req->user_id, &u);
        if (r < 0)
                return sb_service_db_fail(call, r, "reading the user");
        if (r == 0)
                return sb_call_fail(call, SB_NOT_FOUND, "no user with id %" PRIu64, req->user_id);
        int64_t now = identity_now_ms();
        sb_db_stmt *st;
        r = sb_db_prepare(db,
                          "INSERT IGNORE INTO grants (user_id, role, merchant_id, centre_id, granted_ms) "
                          "VALUES (?,?,?,?,?)",
                          &st);
        if (r == 0) {
                sb_db_bind_u64(st, 0, req->user_id);
                sb_db_bind_i64(st, 1, req->grant->role);
                sb_db_bind_u64(st, 2, req->grant->merchant_id);
                sb_db_bind_u64(st, 3, req->grant->centre_id);
                sb_db_bind_i64(st, 4, now);
                r = sb_db_execute(st);
        }
        if (r < 0)
                return sb_service_db_fail(call, r, "granting the role");
        bool added = sb_db_affected_rows(st) > 0;
        /* A merchant gets its referral code with its first owner. */
        char code[IDENTITY_REFERRAL_CODE_LEN + 1];
        if (req->grant->role == SHAREBUY__COMMON__V1__ROLE__ROLE_MERCHANT_OWNER &&
            (r = identity_referral_code_ensure(db, SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_MERCHANT,
                                               req->grant->merchant_id, code)) < 0)
                return sb_service_db_fail(call, r, "making the merchant's referral code");
        if (added)
                identity_audit(call, AUD(ROLE_GRANTED), &c, req->user_id, req->grant->merchant_id, 0,
                               req->grant->centre_id, "granted %s", sb_role_name((sb_role)req->grant->role));
        *resp = *req->grant;
        resp->granted_unix_ms = added ? now : req->grant->granted_unix_ms;
        return SB_OK;
}

sb_status identity_revoke_role(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Identity__V1__RevokeRoleRequest *req = (const void *)req_;
        Sharebuy__Identity__V1__RevokeRoleResponse *resp = (void *)resp_;
        sb_claims c;
        sb_status s = grant_check(call, &c, req->user_id, req->grant);
        if (s != SB_OK)
                return s;
        if (c.role == SB_ROLE_ADMIN && c.uid == req->user_id && req->grant->role == SHAREBUY__COMMON__V1__ROLE__ROLE_ADMIN)
                return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_SCOPE_MISMATCH",
                                           "an admin cannot remove its own ADMIN grant");
        sb_db *db = sb_service_db(call);
        if (!db)
                return sb_service_db_unavailable(call);
        identity_user u;
        int r = identity_user_by_id(db, req->user_id, &u);
        if (r < 0)
                return sb_service_db_fail(call, r, "reading the user");
        if (r == 0)
                return sb_call_fail(call, SB_NOT_FOUND, "no user with id %" PRIu64, req->user_id);
        sb_db_stmt *st;
        r = sb_db_prepare(db, "DELETE FROM grants WHERE user_id = ? AND role = ? AND merchant_id = ? AND centre_id = ?",
                          &st);
        if (r == 0) {
                sb_db_bind_u64(st, 0, req->user_id);
                sb_db_bind_i64(st, 1, req->grant->role);
                sb_db_bind_u64(st, 2, req->grant->merchant_id);
                sb_db_bind_u64(st, 3, req->grant->centre_id);
                r = sb_db_execute(st);
        }
        bool removed = r == 0 && sb_db_affected_rows(st) > 0;
        if (r == 0)
                r = identity_sessions_revoke(db, req->user_id, 0, (int)req->grant->role, req->grant->merchant_id,
                                             req->grant->centre_id);
        if (r < 0)
                return sb_service_db_fail(call, r, "revoking the role");
        resp->sessions_revoked = (uint32_t)r;
        if (removed)
                identity_audit(call, AUD(ROLE_REVOKED), &c, req->user_id, req->grant->merchant_id, 0,
                               req->grant->centre_id, "revoked %s; %d session%s ended",
                               sb_role_name((sb_role)req->grant->role), r, r == 1 ? "" : "s");
        return SB_OK;
}

sb_status identity_revoke_sessions(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Identity__V1__RevokeSessionsRequest *req = (const void *)req_;
        Sharebuy__Identity__V1__RevokeSessionsResponse *resp = (void *)resp_;
        sb_claims c;
        sb_status s = sb_service_auth(call, SB_ROLES(SB_ROLE_ADMIN), &c);
        if (s != SB_OK)
                return s;
        if (!identity_text_valid(req->reason, IDENTITY_REASON_MAX))
                return identity_invalid(call, "reason: at most %d characters of UTF-8 text", IDENTITY_REASON_MAX);
        sb_db *db = sb_service_db(call);
        if (!db)
                return sb_service_db_unavailable(call);
        uint64_t uid = 0, tid = 0;
        int r;
        if (req->whose_case == SHAREBUY__IDENTITY__V1__REVOKE_SESSIONS_REQUEST__WHOSE_USER_ID && req->user_id) {
                identity_user u;
                if ((r = identity_user_by_id(db, req->user_id, &u)) < 0)
                        return sb_service_db_fail(call, r, "reading the user");
                if (r == 0)
                        return sb_call_fail(call, SB_NOT_FOUND, "no user with id %" PRIu64, req->user_id);
                uid = req->user_id;
        } else if (req->whose_case == SHAREBUY__IDENTITY__V1__REVOKE_SESSIONS_REQUEST__WHOSE_TERMINAL_ID &&
                   req->terminal_id) {
                uint64_t m = 0;
                if ((r = identity_terminal_active(db, req->terminal_id, &m)) < 0)
                        return sb_service_db_fail(call, r, "reading the terminal");
                if (m == 0)
                        return sb_call_fail(call, SB_NOT_FOUND, "no terminal with id %" PRIu64, req->terminal_id);
                tid = req->terminal_id;
        } else {
                return identity_invalid(call, "give user_id or terminal_id");
        }
        if ((r = identity_sessions_revoke(db, uid, tid, 0, 0, 0)) < 0)
                return sb_service_db_fail(call, r, "revoking sessions");
        resp->sessions_revoked = (uint32_t)r;
        identity_audit(call, AUD(SESSIONS_REVOKED), &c, uid, 0, tid, 0, "%d session%s revoked: %s", r,
                       r == 1 ? "" : "s", req->reason);
        return SB_OK;
}
