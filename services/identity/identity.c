/* The identity service (sharebuy.identity.v1.Identity): the method table, settings, state, and the helpers the
 * handler files share — the per-address limiter, tokens and sessions, the audit trail, members and grants. */
#include "identity.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "identity_internal.h"

static const sb_rpc_method identity_methods[] = {
        { "RegisterMember", identity_register_member },
        { "SignIn", identity_sign_in },
        { "Refresh", identity_refresh },
        { "SignOut", identity_sign_out },
        { "ChangePassword", identity_change_password },
        { "GetMe", identity_get_me },
        { "GetMember", identity_get_member },
        { "ResolveReferralCode", identity_resolve_referral_code },
        { "CreateStaff", identity_create_staff },
        { "ListStaff", identity_list_staff },
        { "SetStaffDisabled", identity_set_staff_disabled },
        { "ResetStaffPassword", identity_reset_staff_password },
        { "GrantRole", identity_grant_role },
        { "RevokeRole", identity_revoke_role },
        { "RevokeSessions", identity_revoke_sessions },
        { "RegisterTerminal", identity_register_terminal },
        { "RenewPairingCode", identity_renew_pairing_code },
        { "PairTerminal", identity_pair_terminal },
        { "ListTerminals", identity_list_terminals },
        { "RevokeTerminal", identity_revoke_terminal },
        { "CashierSignIn", identity_cashier_sign_in },
        { "IssueMemberCode", identity_issue_member_code },
        { "ResolveMemberCode", identity_resolve_member_code },
        { "ListActivationPacks", identity_list_activation_packs },
        { "Activate", identity_activate },
        { "RecordRepeatPack", identity_record_repeat_pack },
        { "GetPublicKeys", identity_get_public_keys },
        { "ListAuditEvents", identity_list_audit_events },
};

static const sb_config_key identity_keys[] = {
        { "auth.signing_key", SB_CONFIG_PATH, NULL, 0, 0, true, false,
          "PEM private key (EC P-256) that signs access tokens and member codes (sharebuyctl auth keygen)" },
        { "auth.access_ttl", SB_CONFIG_DURATION_MS, "15m", 60000, 86400000, true, false,
          "lifetime of an access token" },
        { "auth.refresh_ttl", SB_CONFIG_DURATION_MS, "720h", 60000, INT64_C(31536000000), true, false,
          "lifetime of a person's refresh token (a session)" },
        { "auth.terminal_refresh_ttl", SB_CONFIG_DURATION_MS, "8760h", 60000, INT64_C(157680000000), true, false,
          "lifetime of a terminal's credential (its refresh token)" },
        { "identity.member_code_ttl", SB_CONFIG_DURATION_MS, "120s", 10000, 3600000, true, false,
          "lifetime of a member QR code" },
        { "identity.pairing_ttl", SB_CONFIG_DURATION_MS, "10m", 60000, 86400000, true, false,
          "lifetime of a terminal pairing code" },
        { "identity.lock_failures", SB_CONFIG_INT, "5", 1, 1000, true, false,
          "wrong passwords in a row that lock an account" },
        { "identity.lock_duration", SB_CONFIG_DURATION_MS, "15m", 1000, 86400000, true, false,
          "how long a locked account stays locked" },
        { "identity.signin_peer_failures", SB_CONFIG_INT, "20", 1, 1000000, true, false,
          "failed sign-ins per minute from one address before it must wait" },
        { "identity.register_per_peer", SB_CONFIG_INT, "20", 1, 1000000, true, false,
          "registrations per minute from one address" },
        { "identity.pair_peer_failures", SB_CONFIG_INT, "10", 1, 1000000, true, false,
          "wrong pairing codes per minute from one address" },
        { "identity.lookup_per_peer", SB_CONFIG_INT, "60", 1, 1000000, true, false,
          "referral code look-ups per minute from one address" },
        { "identity.member_codes_per_minute", SB_CONFIG_INT, "30", 1, 10000, true, false,
          "member codes issued per minute for one member" },
        { "identity.max_terminals", SB_CONFIG_INT, "50", 1, 10000, true, false, "terminals per merchant" },
        { "identity.offline_grace_max", SB_CONFIG_DURATION_MS, "168h", 0, INT64_C(604800000), true, false,
          "the oldest capture time a service may give for a queued sale's member code (the district's grace, "
          "checked by the merchant, is at most 7 days)" },
        { "identity.audit_flush", SB_CONFIG_DURATION_MS, "20ms", 1, 60000, true, false,
          "how long an audit event may wait before the writer thread inserts it with the others queued" },
        { "identity.activation_merchants", SB_CONFIG_STRING, "", 0, 1024, false, false,
          "comma-separated merchant ids authorised to sell activation packs" },
};

int64_t identity_now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- settings and state --- */

static int parse_merchants(const char *s, identity_state *st, char *err, size_t n) {
        st->n_activation_merchants = 0;
        if (!s)
                return 0;
        const char *p = s;
        while (*p) {
                while (*p == ' ' || *p == ',')
                        p++;
                if (!*p)
                        break;
                char *end = NULL;
                errno = 0;
                unsigned long long v = strtoull(p, &end, 10);
                if (errno || end == p || v == 0 || *p == '-' ||
                    st->n_activation_merchants == IDENTITY_MAX_ACTIVATION_MERCHANTS) {
                        snprintf(err, n, "identity.activation_merchants: a comma-separated list of at most %d "
                                 "merchant ids", IDENTITY_MAX_ACTIVATION_MERCHANTS);
                        return -EINVAL;
                }
                st->activation_merchants[st->n_activation_merchants++] = v;
                p = end;
        }
        return 0;
}

static void identity_fini(void *state) {
        identity_state *st = state;
        if (!st)
                return;
        identity_audit_queue_stop(st->audit); /* after the server stopped: writes what is queued */
        sb_auth_signer_free(st->signer);
        sb_auth_verifier_free(st->verifier);
        free(st->jwks);
        pthread_mutex_destroy(&st->limiter.lock);
        free(st);
}

static int identity_init(const sb_config *cfg, void **ret_state, char *err, size_t err_n) {
        if (sodium_init() < 0) {
                snprintf(err, err_n, "libsodium failed to initialise");
                return -EIO;
        }
        identity_state *st = calloc(1, sizeof *st);
        if (!st)
                return -ENOMEM;
        pthread_mutex_init(&st->limiter.lock, NULL);
        int r = sb_auth_signer_load(sb_config_str(cfg, "auth.signing_key"), &st->signer, err, err_n);
        if (r < 0)
                goto fail;
        r = sb_auth_verifier_load(sb_config_str(cfg, "auth.public_keys"), &st->verifier, err, err_n);
        if (r < 0)
                goto fail;
        st->jwks = malloc(16384);
        if (!st->jwks || (r = sb_auth_verifier_jwks(st->verifier, st->jwks, 16384)) < 0) {
                snprintf(err, err_n, "cannot build the JWKS document of auth.public_keys");
                r = -ENOMEM;
                goto fail;
        }
        /* The signing key must be one of the published keys, or nobody could verify what identity signs. */
        if (!strstr(st->jwks, sb_auth_signer_kid(st->signer))) {
                snprintf(err, err_n, "auth.signing_key (kid %s) is not among the keys of auth.public_keys",
                         sb_auth_signer_kid(st->signer));
                r = -EINVAL;
                goto fail;
        }
        st->access_ttl_ms = sb_config_int(cfg, "auth.access_ttl");
        st->refresh_ttl_ms = sb_config_int(cfg, "auth.refresh_ttl");
        st->terminal_refresh_ttl_ms = sb_config_int(cfg, "auth.terminal_refresh_ttl");
        st->member_code_ttl_ms = sb_config_int(cfg, "identity.member_code_ttl");
        st->offline_grace_max_ms = sb_config_int(cfg, "identity.offline_grace_max");
        st->pairing_ttl_ms = sb_config_int(cfg, "identity.pairing_ttl");
        st->lock_failures = sb_config_int(cfg, "identity.lock_failures");
        st->lock_ms = sb_config_int(cfg, "identity.lock_duration");
        st->signin_peer_failures = sb_config_int(cfg, "identity.signin_peer_failures");
        st->register_per_peer = sb_config_int(cfg, "identity.register_per_peer");
        st->pair_peer_failures = sb_config_int(cfg, "identity.pair_peer_failures");
        st->lookup_per_peer = sb_config_int(cfg, "identity.lookup_per_peer");
        st->member_codes_per_minute = sb_config_int(cfg, "identity.member_codes_per_minute");
        st->max_terminals = sb_config_int(cfg, "identity.max_terminals");
        if ((r = parse_merchants(sb_config_str(cfg, "identity.activation_merchants"), st, err, err_n)) < 0)
                goto fail;
        st->econ = sb_econ_settings_default();
        /* A hash of a random password: verifying against it costs what a real verification costs. */
        unsigned char rnd[16];
        char dummy[40];
        randombytes_buf(rnd, sizeof rnd);
        sodium_bin2hex(dummy, sizeof dummy, rnd, sizeof rnd);
        if (sb_auth_password_hash(dummy, st->dummy_hash) < 0) {
                snprintf(err, err_n, "cannot hash a password: not enough memory for argon2id");
                r = -ENOMEM;
                goto fail;
        }
        const sb_db_config *dbc = sb_service_db_config(); /* NULL outside sb_service_main: audit written inline */
        if (dbc && (r = identity_audit_queue_start(dbc, sb_config_int(cfg, "identity.audit_flush"), &st->audit, err,
                                                   err_n)) < 0)
                goto fail;
        *ret_state = st;
        return 0;
fail:
        identity_fini(st);
        return r < 0 ? r : -EINVAL;
}

const sb_service_def identity_service = {
        .name = "identity",
        .desc = &sharebuy__identity__v1__identity__descriptor,
        .methods = identity_methods,
        .n_methods = sizeof identity_methods / sizeof identity_methods[0],
        .default_port = 50051,
        .default_metrics_port = 9151,
        .extra_keys = identity_keys,
        .n_extra_keys = sizeof identity_keys / sizeof identity_keys[0],
        .init = identity_init,
        .fini = identity_fini,
};

/* --- limits and failures --- */

bool identity_limit_over(identity_state *st, const char *key, int64_t limit, int64_t window_ms, bool add,
                         int64_t *ret_retry_ms) {
        uint64_t h = 1469598103934665603ULL;
        for (const char *p = key; *p; p++)
                h = (h ^ (unsigned char)*p) * 1099511628211ULL;
        int64_t now = identity_now_ms();
        bool over;
        pthread_mutex_lock(&st->limiter.lock);
        identity_limit_slot *s = &st->limiter.slots[h % IDENTITY_LIMITER_SLOTS];
        if (strncmp(s->key, key, sizeof s->key) != 0 || now - s->window_start_ms >= window_ms) {
                /* Another key's slot is taken over only when its window has passed; until then the two share it,
                 * which can only make the limit stricter, never looser. */
                if (now - s->window_start_ms >= window_ms) {
                        snprintf(s->key, sizeof s->key, "%s", key);
                        s->window_start_ms = now;
                        s->count = 0;
                }
        }
        if (add)
                s->count++;
        over = add ? s->count > limit : s->count >= limit;
        int64_t retry = s->window_start_ms + window_ms - now;
        pthread_mutex_unlock(&st->limiter.lock);
        if (over && ret_retry_ms)
                *ret_retry_ms = retry > 0 ? retry : 1000;
        return over;
}

sb_status identity_fail_retry(sb_call *call, const char *reason, const char *what, int64_t retry_ms) {
        int64_t s = (retry_ms + 999) / 1000;
        return sb_call_fail_reason(call, SB_RESOURCE_EXHAUSTED, reason, "%s; try again in %" PRId64 " second%s", what,
                                   s, s == 1 ? "" : "s");
}

sb_status identity_invalid(sb_call *call, const char *fmt, ...) {
        char msg[SB_RPC_MESSAGE_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID", "%s", msg);
}

bool identity_ascii_valid(const char *s, size_t max) {
        if (!s || !s[0])
                return false;
        size_t n = strnlen(s, max + 1);
        if (n > max)
                return false;
        for (size_t i = 0; i < n; i++)
                if (s[i] < 0x21 || s[i] > 0x7E)
                        return false;
        return true;
}

void identity_peer(sb_call *call, char *out, size_t n) {
        identity_peer_host(sb_call_peer(call), out, n);
}

sb_status identity_wallet_fail(sb_call *call, sb_status s, const char *msg) {
        if (s == SB_UNAVAILABLE || s == SB_DEADLINE_EXCEEDED)
                return sb_call_fail_reason(call, SB_UNAVAILABLE, "REASON_DEPENDENCY_UNAVAILABLE",
                                           "the wallet did not answer (%s); retry", msg);
        return sb_call_fail(call, SB_INTERNAL, "the wallet refused the transaction: %s (request %s)", msg,
                            sb_call_request_id(call));
}

/* --- secrets, tokens, sessions --- */

void identity_hash_secret(const char *secret, unsigned char out[32]) {
        crypto_hash_sha256(out, (const unsigned char *)secret, strlen(secret));
}

static const char *sub_prefix(sb_role role) {
        switch (role) {
        case SB_ROLE_MEMBER:
                return "member";
        case SB_ROLE_TERMINAL:
                return "terminal";
        default:
                return "staff";
        }
}

sb_status identity_tokens_issue(sb_call *call, sb_db *db, const identity_principal *p, uint64_t family_id,
                                const char *device, Sharebuy__Identity__V1__TokenPair **ret) {
        identity_state *st = identity_st(call);
        int64_t now = identity_now_ms();
        sb_claims c;
        memset(&c, 0, sizeof c);
        c.role = p->role;
        c.uid = p->user_id;
        c.merchant_id = p->merchant_id;
        c.terminal_id = p->terminal_id;
        c.centre_id = p->centre_id;
        snprintf(c.sub, sizeof c.sub, "%s:%" PRIu64, sub_prefix(p->role),
                 p->role == SB_ROLE_TERMINAL ? p->terminal_id : p->user_id);
        c.iat = now / 1000;
        c.exp = c.iat + st->access_ttl_ms / 1000;
        char *access = sb_call_alloc(call, SB_AUTH_TOKEN_MAX);
        if (sb_auth_sign(st->signer, &c, access, SB_AUTH_TOKEN_MAX) < 0)
                return sb_call_fail(call, SB_INTERNAL, "cannot sign a token (request %s)", sb_call_request_id(call));

        unsigned char rnd[32], hash[32];
        randombytes_buf(rnd, sizeof rnd);
        char *refresh = sb_call_alloc(call, 64);
        memcpy(refresh, "sbr1_", 5);
        sodium_bin2base64(refresh + 5, 59, rnd, sizeof rnd, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        identity_hash_secret(refresh, hash);
        if (family_id == 0) {
                randombytes_buf(&family_id, sizeof family_id);
                family_id = (family_id >> 1) | 1;
        }
        int64_t ttl = p->role == SB_ROLE_TERMINAL ? st->terminal_refresh_ttl_ms : st->refresh_ttl_ms;
        int64_t refresh_exp = now + ttl;
        sb_db_stmt *s;
        int r = sb_db_prepare(db,
                              "INSERT INTO sessions (token_hash, family_id, user_id, terminal_id, role, merchant_id, "
                              "centre_id, device_name, created_ms, expires_ms) VALUES (?,?,?,?,?,?,?,?,?,?)",
                              &s);
        if (r == 0) {
                sb_db_bind_blob(s, 0, hash, sizeof hash);
                sb_db_bind_u64(s, 1, family_id);
                sb_db_bind_u64(s, 2, p->user_id);
                sb_db_bind_u64(s, 3, p->terminal_id);
                sb_db_bind_i64(s, 4, p->role);
                sb_db_bind_u64(s, 5, p->merchant_id);
                sb_db_bind_u64(s, 6, p->centre_id);
                sb_db_bind_str(s, 7, device ? device : "");
                sb_db_bind_i64(s, 8, now);
                sb_db_bind_i64(s, 9, refresh_exp);
                r = sb_db_execute(s);
        }
        if (r < 0)
                return sb_service_db_fail(call, r, "storing the session");

        Sharebuy__Identity__V1__TokenPair *tp = sb_call_alloc(call, sizeof *tp);
        sharebuy__identity__v1__token_pair__init(tp);
        tp->access_token = access;
        tp->access_expires_unix_ms = c.exp * 1000;
        tp->refresh_token = refresh;
        tp->refresh_expires_unix_ms = refresh_exp;
        Sharebuy__Identity__V1__Principal *pr = sb_call_alloc(call, sizeof *pr);
        sharebuy__identity__v1__principal__init(pr);
        pr->user_id = p->user_id;
        pr->role = (Sharebuy__Common__V1__Role)p->role;
        pr->merchant_id = p->merchant_id;
        pr->terminal_id = p->terminal_id;
        pr->centre_id = p->centre_id;
        pr->display_name = sb_call_strdup(call, p->display_name ? p->display_name : "");
        tp->principal = pr;
        *ret = tp;
        return SB_OK;
}

int identity_sessions_revoke(sb_db *db, uint64_t user_id, uint64_t terminal_id, int role, uint64_t merchant_id,
                             uint64_t centre_id) {
        sb_db_stmt *s;
        int r = sb_db_prepare(db,
                              "UPDATE sessions SET revoked_ms = ? WHERE revoked_ms = 0 AND "
                              "((? <> 0 AND user_id = ?) OR (? <> 0 AND terminal_id = ?)) AND "
                              "(? = 0 OR (role = ? AND merchant_id = ? AND centre_id = ?))",
                              &s);
        if (r < 0)
                return r;
        sb_db_bind_i64(s, 0, identity_now_ms());
        sb_db_bind_u64(s, 1, user_id);
        sb_db_bind_u64(s, 2, user_id);
        sb_db_bind_u64(s, 3, terminal_id);
        sb_db_bind_u64(s, 4, terminal_id);
        sb_db_bind_i64(s, 5, role);
        sb_db_bind_i64(s, 6, role);
        sb_db_bind_u64(s, 7, merchant_id);
        sb_db_bind_u64(s, 8, centre_id);
        if ((r = sb_db_execute(s)) < 0)
                return r;
        return (int)sb_db_affected_rows(s);
}

/* --- the audit trail --- */

void identity_audit(sb_call *call, int type, const sb_claims *actor, uint64_t subject_user_id, uint64_t merchant_id,
                    uint64_t terminal_id, uint64_t centre_id, const char *fmt, ...) {
        char detail[IDENTITY_REASON_MAX * 4 + 1];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail, sizeof detail, fmt, ap);
        va_end(ap);
        char peer[64];
        snprintf(peer, sizeof peer, "%s", sb_call_peer(call));
        char rid[65];
        snprintf(rid, sizeof rid, "%s", sb_call_request_id(call));
        identity_state *st = identity_st(call);
        if (st->audit && identity_audit_queue_push(st->audit, type, identity_now_ms(), actor ? actor->uid : 0,
                                                   actor ? (int)actor->role : 0, subject_user_id, merchant_id,
                                                   terminal_id, centre_id, peer, rid, detail))
                return;
        /* No writer, or its queue is full: write it here, as one statement. */
        sb_db *db = sb_service_db(call);
        if (!db)
                return;
        sb_db_stmt *s;
        if (sb_db_prepare(db,
                          "INSERT INTO audit_events (type, occurred_ms, actor_user_id, actor_role, subject_user_id, "
                          "merchant_id, terminal_id, centre_id, peer, request_id, detail) VALUES (?,?,?,?,?,?,?,?,?,?,"
                          "LEFT(?, 200))",
                          &s) < 0)
                return;
        sb_db_bind_i64(s, 0, type);
        sb_db_bind_i64(s, 1, identity_now_ms());
        sb_db_bind_u64(s, 2, actor ? actor->uid : 0);
        sb_db_bind_i64(s, 3, actor ? actor->role : 0);
        sb_db_bind_u64(s, 4, subject_user_id);
        sb_db_bind_u64(s, 5, merchant_id);
        sb_db_bind_u64(s, 6, terminal_id);
        sb_db_bind_u64(s, 7, centre_id);
        sb_db_bind_str(s, 8, peer);
        sb_db_bind_str(s, 9, rid);
        sb_db_bind_str(s, 10, detail);
        /* Best effort: the event happened; a lost audit row must not undo it. The runtime logs the call. */
        (void)sb_db_execute(s);
}

/* --- grants and members --- */

int identity_grants_load(sb_call *call, sb_db *db, uint64_t user_id, bool member,
                         Sharebuy__Identity__V1__RoleGrant ***ret, size_t *ret_n) {
        enum { MAX_GRANTS = 64 };
        Sharebuy__Identity__V1__RoleGrant **g = sb_call_alloc(call, sizeof *g * (MAX_GRANTS + 1));
        size_t n = 0;
        if (member) {
                g[n] = sb_call_alloc(call, sizeof **g);
                sharebuy__identity__v1__role_grant__init(g[n]);
                g[n]->role = SHAREBUY__COMMON__V1__ROLE__ROLE_MEMBER;
                n++;
        }
        sb_db_stmt *s;
        int r = sb_db_prepare(db,
                              "SELECT role, merchant_id, centre_id, granted_ms FROM grants WHERE user_id = ? "
                              "ORDER BY role, merchant_id, centre_id LIMIT 64",
                              &s);
        if (r < 0)
                return r;
        sb_db_bind_u64(s, 0, user_id);
        if ((r = sb_db_execute(s)) < 0)
                return r;
        while ((r = sb_db_fetch(s)) == 1) {
                if (n == MAX_GRANTS)
                        continue;
                int64_t role = 0;
                Sharebuy__Identity__V1__RoleGrant *x = sb_call_alloc(call, sizeof *x);
                sharebuy__identity__v1__role_grant__init(x);
                sb_db_col_i64(s, 0, &role);
                x->role = (Sharebuy__Common__V1__Role)role;
                sb_db_col_u64(s, 1, &x->merchant_id);
                sb_db_col_u64(s, 2, &x->centre_id);
                sb_db_col_i64(s, 3, &x->granted_unix_ms);
                g[n++] = x;
        }
        if (r < 0)
                return r;
        *ret = g;
        *ret_n = n;
        return 0;
}

sb_status identity_member_load(sb_call *call, sb_db *db, uint64_t member_id, bool show_phone,
                               Sharebuy__Identity__V1__Member **ret) {
        sb_db_stmt *s;
        int r = sb_db_prepare(db,
                              "SELECT u.phone, u.display_name, u.referrer_kind, u.referrer_id, u.vip, u.activated_ms, "
                              "u.created_ms, u.disabled, c.code FROM users u LEFT JOIN referral_codes c ON "
                              "c.owner_kind = 1 AND c.owner_id = u.user_id WHERE u.user_id = ? AND u.kind = 1",
                              &s);
        if (r == 0) {
                sb_db_bind_u64(s, 0, member_id);
                r = sb_db_execute(s);
        }
        if (r == 0)
                r = sb_db_fetch(s);
        if (r < 0)
                return sb_service_db_fail(call, r, "reading the member");
        if (r == 0)
                return sb_call_fail_reason(call, SB_NOT_FOUND, "REASON_MEMBER_UNKNOWN", "no member with id %" PRIu64,
                                           member_id);
        Sharebuy__Identity__V1__Member *m = sb_call_alloc(call, sizeof *m);
        sharebuy__identity__v1__member__init(m);
        char phone[16] = "", name[160] = "", code[16] = "", masked[12] = "";
        int64_t rk = 0, vip = 0, dis = 0;
        uint64_t rid = 0;
        sb_db_col_str(s, 0, phone, sizeof phone);
        sb_db_col_str(s, 1, name, sizeof name);
        sb_db_col_i64(s, 2, &rk);
        sb_db_col_u64(s, 3, &rid);
        sb_db_col_i64(s, 4, &vip);
        sb_db_col_i64(s, 5, &m->activated_unix_ms);
        sb_db_col_i64(s, 6, &m->registered_unix_ms);
        sb_db_col_i64(s, 7, &dis);
        sb_db_col_str(s, 8, code, sizeof code);
        while (sb_db_fetch(s) == 1) {
        }
        identity_phone_mask(phone, masked);
        m->member_id = member_id;
        m->phone = sb_call_strdup(call, show_phone ? phone : masked);
        m->masked_phone = sb_call_strdup(call, masked);
        m->display_name = sb_call_strdup(call, name);
        m->referral_code = sb_call_strdup(call, code);
        if (rk) {
                Sharebuy__Common__V1__OwnerRef *o = sb_call_alloc(call, sizeof *o);
                sharebuy__common__v1__owner_ref__init(o);
                o->kind = (Sharebuy__Common__V1__OwnerKind)rk;
                o->id = rid;
                m->referrer = o;
        }
        m->vip = vip != 0;
        m->disabled = dis != 0;
        *ret = m;
        return SB_OK;
}

/* --- the registration bonus --- */

sb_status identity_bonus_credit(sb_call *call, sb_db *db, uint64_t member_id, uint64_t *ret_tx, char *msg, size_t n) {
        identity_state *st = identity_st(call);
        Sharebuy__Common__V1__OwnerRef owner = SHAREBUY__COMMON__V1__OWNER_REF__INIT;
        owner.kind = SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_MEMBER;
        owner.id = member_id;
        Sharebuy__Wallet__V1__OpenAccountsRequest oreq = SHAREBUY__WALLET__V1__OPEN_ACCOUNTS_REQUEST__INIT;
        oreq.owner = &owner;
        ProtobufCMessage *oresp = NULL;
        sb_status s = sb_service_call(call, "wallet", "/sharebuy.wallet.v1.Wallet/OpenAccounts", &oreq.base,
                                      &sharebuy__wallet__v1__open_accounts_response__descriptor,
                                      IDENTITY_WALLET_DEADLINE_MS, &oresp, msg, n);
        if (s != SB_OK)
                return s;
        protobuf_c_message_free_unpacked(oresp, NULL);

        Sharebuy__Common__V1__AccountRef sys = SHAREBUY__COMMON__V1__ACCOUNT_REF__INIT, mem = sys;
        sys.holder_case = SHAREBUY__COMMON__V1__ACCOUNT_REF__HOLDER_SYSTEM;
        sys.system = SHAREBUY__COMMON__V1__SYSTEM_ACCOUNT__SYSTEM_ACCOUNT_CV_ISSUED;
        mem.holder_case = SHAREBUY__COMMON__V1__ACCOUNT_REF__HOLDER_OWNER;
        mem.owner = &owner;
        mem.asset = SHAREBUY__COMMON__V1__ASSET__ASSET_CV_LOCKED;
        Sharebuy__Common__V1__LedgerLeg l1 = SHAREBUY__COMMON__V1__LEDGER_LEG__INIT, l2 = l1;
        l1.account = &sys;
        l1.amount_units = -st->econ.register_bonus_cv;
        l1.reason = SHAREBUY__COMMON__V1__LEG_REASON__LEG_REASON_REGISTRATION_BONUS;
        l2.account = &mem;
        l2.amount_units = st->econ.register_bonus_cv;
        l2.reason = l1.reason;
        Sharebuy__Common__V1__LedgerLeg *legs[2] = { &l1, &l2 };
        char key[64], ref[24];
        snprintf(key, sizeof key, "identity:register:%" PRIu64, member_id);
        snprintf(ref, sizeof ref, "%" PRIu64, member_id);
        Sharebuy__Common__V1__Cause cause = SHAREBUY__COMMON__V1__CAUSE__INIT;
        cause.kind = SHAREBUY__COMMON__V1__CAUSE_KIND__CAUSE_KIND_REGISTRATION;
        cause.reference = ref;
        Sharebuy__Wallet__V1__PostTransactionRequest preq = SHAREBUY__WALLET__V1__POST_TRANSACTION_REQUEST__INIT;
        preq.idempotency_key = key;
        preq.cause = &cause;
        preq.n_legs = 2;
        preq.legs = legs;
        preq.memo = (char *)"registration bonus";
        ProtobufCMessage *presp = NULL;
        s = sb_service_call(call, "wallet", "/sharebuy.wallet.v1.Wallet/PostTransaction", &preq.base,
                            &sharebuy__wallet__v1__post_transaction_response__descriptor, IDENTITY_WALLET_DEADLINE_MS,
                            &presp, msg, n);
        if (s != SB_OK)
                return s;
        Sharebuy__Wallet__V1__PostTransactionResponse *pr = (Sharebuy__Wallet__V1__PostTransactionResponse *)presp;
        uint64_t tx = pr->transaction ? pr->transaction->transaction_id : 0;
        protobuf_c_message_free_unpacked(presp, NULL);
        sb_db_stmt *u;
        if (sb_db_prepare(db, "UPDATE users SET bonus_tx_id = ? WHERE user_id = ? AND bonus_tx_id = 0", &u) == 0) {
                sb_db_bind_u64(u, 0, tx);
                sb_db_bind_u64(u, 1, member_id);
                /* If this fails, the next sign-in posts again under the same key and the wallet replays it. */
                (void)sb_db_execute(u);
        }
        *ret_tx = tx;
        return SB_OK;
}
