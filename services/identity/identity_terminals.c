/* identity_terminals: POS terminals — registration, pairing codes, pairing, revocation, cashier sign-in. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "identity_internal.h"

#define AUD(x) SHAREBUY__IDENTITY__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_TYPE_##x
#define TS(x) SHAREBUY__IDENTITY__V1__TERMINAL_STATUS__TERMINAL_STATUS_##x
#define MINUTE_MS 60000

#define TERMINAL_COLS                                                                                                 \
        "SELECT terminal_id, merchant_id, label, status, device_name, created_ms, paired_ms, last_seen_ms "            \
        "FROM terminals "

static Sharebuy__Identity__V1__Terminal *terminal_row(sb_call *call, sb_db_stmt *s) {
        Sharebuy__Identity__V1__Terminal *t = sb_call_alloc(call, sizeof *t);
        sharebuy__identity__v1__terminal__init(t);
        char label[260] = "", dev[260] = "";
        int64_t status = 0;
        sb_db_col_u64(s, 0, &t->terminal_id);
        sb_db_col_u64(s, 1, &t->merchant_id);
        sb_db_col_str(s, 2, label, sizeof label);
        sb_db_col_i64(s, 3, &status);
        sb_db_col_str(s, 4, dev, sizeof dev);
        sb_db_col_i64(s, 5, &t->created_unix_ms);
        sb_db_col_i64(s, 6, &t->paired_unix_ms);
        sb_db_col_i64(s, 7, &t->last_seen_unix_ms);
        t->label = sb_call_strdup(call, label);
        t->device_name = sb_call_strdup(call, dev);
        t->status = (Sharebuy__Identity__V1__TerminalStatus)status;
        return t;
}

sb_status identity_terminal_load(sb_call *call, sb_db *db, uint64_t terminal_id,
                                 Sharebuy__Identity__V1__Terminal **ret) {
        sb_db_stmt *s;
        int r = sb_db_prepare(db, TERMINAL_COLS "WHERE terminal_id = ?", &s);
        if (r == 0) {
                sb_db_bind_u64(s, 0, terminal_id);
                r = sb_db_execute(s);
        }
        if (r == 0)
                r = sb_db_fetch(s);
        if (r < 0)
                return sb_service_db_fail(call, r, "reading the terminal");
        if (r == 0)
                return sb_call_fail(call, SB_NOT_FOUND, "no terminal with id %" PRIu64, terminal_id);
        *ret = terminal_row(call, s);
        while (sb_db_fetch(s) == 1) {
        }
        return SB_OK;
}

/* Set a fresh pairing code on a terminal (hash only); the code goes into out. */
static int pairing_code_set(sb_db *db, uint64_t terminal_id, int64_t expires_ms, char out[IDENTITY_PAIRING_CODE_LEN + 1]) {
        for (int attempt = 0; attempt < 8; attempt++) {
                unsigned char rnd[4], hash[32];
                char code[IDENTITY_PAIRING_CODE_LEN + 1];
                randombytes_buf(rnd, sizeof rnd);
                identity_pairing_code_make(rnd, code);
                identity_hash_secret(code, hash);
                sb_db_stmt *s;
                int r = sb_db_prepare(db,
                                      "UPDATE terminals SET pairing_hash = ?, pairing_expires_ms = ? WHERE terminal_id = ?",
                                      &s);
                if (r < 0)
                        return r;
                sb_db_bind_blob(s, 0, hash, sizeof hash);
                sb_db_bind_i64(s, 1, expires_ms);
                sb_db_bind_u64(s, 2, terminal_id);
                r = sb_db_execute(s);
                if (r == 0) {
                        memcpy(out, code, sizeof code);
                        return 0;
                }
                if (r != -EEXIST)
                        return r;
        }
        return -EEXIST;
}

sb_status identity_register_terminal(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Identity__V1__RegisterTerminalRequest *req = (const void *)req_;
        Sharebuy__Identity__V1__RegisterTerminalResponse *resp = (void *)resp_;
        identity_state *st = identity_st(call);
        sb_claims c;
        sb_status s = sb_service_auth(call, SB_ROLES(SB_ROLE_MERCHANT_OWNER) | SB_ROLES(SB_ROLE_ADMIN), &c);
        if (s != SB_OK)
                return s;
        uint64_t merchant_id = c.role == SB_ROLE_ADMIN ? req->merchant_id : c.merchant_id;
        if (c.role == SB_ROLE_MERCHANT_OWNER && req->merchant_id && req->merchant_id != c.merchant_id)
                return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_SCOPE_MISMATCH",
                                           "a merchant owner registers terminals of its own merchant only");
        if (!merchant_id)
                return identity_invalid(call, "merchant_id: required for an admin");
        if (!req->label[0] || !identity_text_valid(req->label, 64))
                return identity_invalid(call, "label: 1 to 64 characters of UTF-8 text");
        sb_db *db = sb_service_db(call);
        if (!db)
                return sb_service_db_unavailable(call);
        /* A merchant exists for identity once it has an owner (the grant is made at approval). */
        sb_db_stmt *q;
        int r = sb_db_prepare(db,
                              "SELECT (SELECT COUNT(*) FROM grants WHERE role = 2 AND merchant_id = ?), "
                              "(SELECT COUNT(*) FROM terminals WHERE merchant_id = ? AND status <> 3)",
                              &q);
        if (r == 0) {
                sb_db_bind_u64(q, 0, merchant_id);
                sb_db_bind_u64(q, 1, merchant_id);
                r = sb_db_execute(q);
        }
        if (r == 0)
                r = sb_db_fetch(q);
        if (r <= 0)
                return sb_service_db_fail(call, r < 0 ? r : -EIO, "counting terminals");
        int64_t owners = 0, count = 0;
        sb_db_col_i64(q, 0, &owners);
        sb_db_col_i64(q, 1, &count);
        while (sb_db_fetch(q) == 1) {
        }
        if (owners == 0)
                return sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_MERCHANT_NOT_APPROVED",
                                           "merchant %" PRIu64 " is not approved (it has no owner)", merchant_id);
        if (count >= st->max_terminals)
                return sb_call_fail(call, SB_RESOURCE_EXHAUSTED,
                                    "the merchant has the maximum of %" PRId64 " terminals; revoke one first",
                                    st->max_terminals);
        int64_t now = identity_now_ms();
        if ((r = sb_db_prepare(db,
                               "INSERT INTO terminals (merchant_id, label, status, created_ms) VALUES (?,?,1,?)",
                               &q)) == 0) {
                sb_db_bind_u64(q, 0, merchant_id);
                sb_db_bind_str(q, 1, req->label);
                sb_db_bind_i64(q, 2, now);
                r = sb_db_execute(q);
        }
        if (r < 0)
                return sb_service_db_fail(call, r, "registering the terminal");
        uint64_t tid = sb_db_insert_id(q);
        char code[IDENTITY_PAIRING_CODE_LEN + 1];
        if ((r = pairing_code_set(db, tid, now + st->pairing_ttl_ms, code)) < 0)
                return sb_service_db_fail(call, r, "making the pairing code");
        identity_audit(call, AUD(TERMINAL_REGISTERED), &c, 0, merchant_id, tid, 0, "terminal registered");
        if ((s = identity_terminal_load(call, db, tid, &resp->terminal)) != SB_OK)
                return s;
        resp->pairing_code = sb_call_strdup(call, code);
        resp->pairing_expires_unix_ms = now + st->pairing_ttl_ms;
        return SB_OK;
}

/* The terminal for an owner or admin; PERMISSION_DENIED for another merchant's. */
static sb_status own_terminal(sb_call *call, sb_db *db, const sb_claims *c, uint64_t terminal_id,
                              Sharebuy__Identity__V1__Terminal **ret) {
        if (!terminal_id)
                return identity_invalid(call, "terminal_id: required");
        sb_status s = identity_terminal_load(call, db, terminal_id, ret);
        if (s != SB_OK)
                return s;
        if (c->role != SB_ROLE_ADMIN && (*ret)->merchant_id != c->merchant_id)
                return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_SCOPE_MISMATCH",
                                           "terminal %" PRIu64 " belongs to another merchant", terminal_id);
        return SB_OK;
}

sb_status identity_renew_pairing_code(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Identity__V1__RenewPairingCodeRequest *req = (const void *)req_;
        Sharebuy__Identity__V1__RegisterTerminalResponse *resp = (void *)resp_;
        identity_state *st = identity_st(call);
        sb_claims c;
        sb_status s = sb_service_auth(call, SB_ROLES(SB_ROLE_MERCHANT_OWNER) | SB_ROLES(SB_ROLE_ADMIN), &c);
        if (s != SB_OK)
                return s;
        sb_db *db = sb_service_db(call);
        if (!db)
                return sb_service_db_unavailable(call);
        Sharebuy__Identity__V1__Terminal *t = NULL;
        if ((s = own_terminal(call, db, &c, req->terminal_id, &t)) != SB_OK)
                return s;
        if (t->status == TS(REVOKED))
                return sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_TERMINAL_REVOKED",
                                           "the terminal was revoked; register a new one");
        int64_t now = identity_now_ms();
        char code[IDENTITY_PAIRING_CODE_LEN + 1];
        int r = pairing_code_set(db, t->terminal_id, now + st->pairing_ttl_ms, code);
        if (r < 0)
                return sb_service_db_fail(call, r, "making the pairing code");
        identity_audit(call, AUD(TERMINAL_REGISTERED), &c, 0, t->merchant_id, t->terminal_id, 0,
                       "new pairing code issued");
        resp->terminal = t;
        resp->pairing_code = sb_call_strdup(call, code);
        resp->pairing_expires_unix_ms = now + st->pairing_ttl_ms;
        return SB_OK;
}

struct pair_tx {
        const unsigned char *hash;
        const char *device;
        uint64_t terminal_id, merchant_id;
        int64_t expires_ms;
        int outcome; /* 0 paired, 1 unknown/spent, 2 expired */
};

static int pair_tx_fn(sb_db *db, void *arg) {
        struct pair_tx *t = arg;
        t->outcome = 1;
        sb_db_stmt *s;
        int r = sb_db_prepare(db,
                              "SELECT terminal_id, merchant_id, pairing_expires_ms FROM terminals WHERE pairing_hash = ? "
                              "AND status <> 3 FOR UPDATE",
                              &s);
        if (r < 0)
                return r;
        sb_db_bind_blob(s, 0, t->hash, 32);
        if ((r = sb_db_execute(s)) < 0 || (r = sb_db_fetch(s)) < 0)
                return r;
        if (r == 0)
                return 0;
        sb_db_col_u64(s, 0, &t->terminal_id);
        sb_db_col_u64(s, 1, &t->merchant_id);
        sb_db_col_i64(s, 2, &t->expires_ms);
        while (sb_db_fetch(s) == 1) {
        }
        int64_t now = identity_now_ms();
        if (t->expires_ms <= now) {
                t->outcome = 2;
                return 0;
        }
        /* The code is spent; a re-paired terminal's old credential stops working. */
        if ((r = sb_db_prepare(db,
                               "UPDATE terminals SET status = 2, pairing_hash = NULL, pairing_expires_ms = 0, "
                               "paired_ms = ?, last_seen_ms = ?, device_name = ? WHERE terminal_id = ?",
                               &s)) < 0)
                return r;
        sb_db_bind_i64(s, 0, now);
        sb_db_bind_i64(s, 1, now);
        sb_db_bind_str(s, 2, t->device);
        sb_db_bind_u64(s, 3, t->terminal_id);
        if ((r = sb_db_execute(s)) < 0)
                return r;
        if ((r = identity_sessions_revoke(db, 0, t->terminal_id, 0, 0, 0)) < 0)
                return r;
        t->outcome = 0;
        return 0;
}

sb_status identity_pair_terminal(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Identity__V1__PairTerminalRequest *req = (const void *)req_;
        Sharebuy__Identity__V1__PairTerminalResponse *resp = (void *)resp_;
        identity_state *st = identity_st(call);
        if (!identity_pairing_code_valid(req->pairing_code))
                return identity_invalid(call, "pairing_code: 8 digits");
        if (!identity_text_valid(req->device_name, IDENTITY_DEVICE_NAME_MAX))
                return identity_invalid(call, "device_name: at most %d characters of UTF-8 text",
                                        IDENTITY_DEVICE_NAME_MAX);
        char peer[80], key[IDENTITY_LIMIT_KEY_MAX];
        identity_peer(call, peer, sizeof peer);
        snprintf(key, sizeof key, "pair:%s", peer);
        int64_t retry = 0;
        if (identity_limit_over(st, key, st->pair_peer_failures, MINUTE_MS, false, &retry))
                return identity_fail_retry(call, "REASON_RATE_LIMITED", "too many wrong pairing codes from this address",
                                           retry);
        sb_db *db = sb_service_db(call);
        if (!db)
                return sb_service_db_unavailable(call);
        unsigned char hash[32];
        identity_hash_secret(req->pairing_code, hash);
        struct pair_tx t = { .hash = hash, .device = req->device_name };
        int r = sb_db_tx(db, pair_tx_fn, &t);
        if (r < 0)
                return sb_service_db_fail(call, r, "pairing the terminal");
        if (t.outcome != 0) {
                identity_limit_over(st, key, st->pair_peer_failures, MINUTE_MS, true, NULL);
                identity_audit(call, AUD(TERMINAL_PAIRING_FAILED), NULL, 0, t.merchant_id, t.terminal_id, 0,
                               t.outcome == 2 ? "expired pairing code" : "wrong or spent pairing code");
                if (t.outcome == 2)
                        return sb_call_fail_reason(call, SB_UNAUTHENTICATED, "REASON_PAIRING_CODE_EXPIRED",
                                                   "the pairing code has expired; ask the owner for a new one");
                return sb_call_fail_reason(call, SB_UNAUTHENTICATED, "REASON_PAIRING_CODE_INVALID",
                                           "wrong or already used pairing code");
        }
        identity_audit(call, AUD(TERMINAL_PAIRED), NULL, 0, t.merchant_id, t.terminal_id, 0, "terminal paired");
        identity_principal p = { .role = SB_ROLE_TERMINAL, .merchant_id = t.merchant_id, .terminal_id = t.terminal_id,
                                 .display_name = "" };
        sb_status s = identity_tokens_issue(call, db, &p, 0, req->device_name, &resp->tokens);
        if (s != SB_OK)
                return s;
        if ((s = identity_terminal_load(call, db, t.terminal_id, &resp->terminal)) != SB_OK)
                return s;
        /* The store name lives in the merchant service; the POS asks it. */
        resp->merchant_name = (char *)"";
        return SB_OK;
}

sb_status identity_list_terminals(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Identity__V1__ListTerminalsRequest *req = (const void *)req_;
        Sharebuy__Identity__V1__ListTerminalsResponse *resp = (void *)resp_;
        identity_state *st = identity_st(call);
        sb_claims c;
        sb_status s = sb_service_auth(call, SB_ROLES(SB_ROLE_MERCHANT_OWNER) | SB_ROLES(SB_ROLE_ADMIN), &c);
        if (s != SB_OK)
                return s;
        uint64_t merchant_id = req->merchant_id ? req->merchant_id : c.merchant_id;
        if (c.role == SB_ROLE_MERCHANT_OWNER && merchant_id != c.merchant_id)
                return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_SCOPE_MISMATCH",
                                           "another merchant's terminals");
        if (!merchant_id)
                return identity_invalid(call, "merchant_id: required for an admin");
        sb_db *db = sb_service_db(call);
        if (!db)
                return sb_service_db_unavailable(call);
        sb_db_stmt *q;
        int r = sb_db_prepare(db, TERMINAL_COLS "WHERE merchant_id = ? AND (? OR status <> 3) ORDER BY terminal_id LIMIT ?",
                              &q);
        if (r == 0) {
                sb_db_bind_u64(q, 0, merchant_id);
                sb_db_bind_i64(q, 1, req->include_revoked ? 1 : 0);
                /* Revoked terminals are kept; the list is bounded all the same. */
                sb_db_bind_i64(q, 2, st->max_terminals * 4);
                r = sb_db_execute(q);
        }
        if (r < 0)
                return sb_service_db_fail(call, r, "listing terminals");
        size_t cap = (size_t)st->max_terminals * 4, n = 0;
        resp->terminals = sb_call_alloc(call, sizeof *resp->terminals * (cap + 1));
        while ((r = sb_db_fetch(q)) == 1)
                if (n < cap)
                        resp->terminals[n++] = terminal_row(call, q);
        if (r < 0)
                return sb_service_db_fail(call, r, "listing terminals");
        resp->n_terminals = n;
        return SB_OK;
}

sb_status identity_revoke_terminal(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Identity__V1__RevokeTerminalRequest *req = (const void *)req_;
        Sharebuy__Identity__V1__Terminal *resp = (void *)resp_;
        sb_claims c;
        sb_status s = sb_service_auth(call, SB_ROLES(SB_ROLE_MERCHANT_OWNER) | SB_ROLES(SB_ROLE_ADMIN), &c);
        if (s != SB_OK)
                return s;
        if (!identity_text_valid(req->reason, IDENTITY_REASON_MAX))
                return identity_invalid(call, "reason: at most %d characters of UTF-8 text", IDENTITY_REASON_MAX);
        sb_db *db = sb_service_db(call);
        if (!db)
                return sb_service_db_unavailable(call);
        Sharebuy__Identity__V1__Terminal *t = NULL;
        if ((s = own_terminal(call, db, &c, req->terminal_id, &t)) != SB_OK)
                return s;
        sb_db_stmt *q;
        int r = sb_db_prepare(db, "UPDATE terminals SET status = 3, pairing_hash = NULL WHERE terminal_id = ?", &q);
        if (r == 0) {
                sb_db_bind_u64(q, 0, t->terminal_id);
                r = sb_db_execute(q);
        }
        if (r == 0)
                r = identity_sessions_revoke(db, 0, t->terminal_id, 0, 0, 0);
        /* Cashier sessions on the terminal carry the terminal id too. */
        if (r >= 0) {
                int r2 = sb_db_prepare(db, "UPDATE sessions SET revoked_ms = ? WHERE terminal_id = ? AND revoked_ms = 0",
                                       &q);
                if (r2 == 0) {
                        sb_db_bind_i64(q, 0, identity_now_ms());
                        sb_db_bind_u64(q, 1, t->terminal_id);
                        r2 = sb_db_execute(q);
                }
                if (r2 < 0)
                        r = r2;
        }
        if (r < 0)
                return sb_service_db_fail(call, r, "revoking the terminal");
        identity_audit(call, AUD(TERMINAL_REVOKED), &c, 0, t->merchant_id, t->terminal_id, 0, "terminal revoked: %s",
                       req->reason);
        t->status = TS(REVOKED);
        *resp = *t;
        return SB_OK;
}

sb_status identity_cashier_sign_in(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Identity__V1__CashierSignInRequest *req = (const void *)req_;
        Sharebuy__Identity__V1__TokenPair *resp = (void *)resp_;
        sb_claims c;
        sb_status s = sb_service_auth(call, SB_ROLES(SB_ROLE_TERMINAL), &c);
        if (s != SB_OK)
                return s;
        if ((s = identity_check_login_input(call, req->login, req->password)) != SB_OK)
                return s;
        sb_db *db = sb_service_db(call);
        if (!db)
                return sb_service_db_unavailable(call);
        uint64_t tm = 0;
        int r = identity_terminal_active(db, c.terminal_id, &tm);
        if (r < 0)
                return sb_service_db_fail(call, r, "reading the terminal");
        if (r == 0 || tm != c.merchant_id)
                return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_TERMINAL_REVOKED",
                                           "this terminal is not paired (revoked or re-paired)");
        identity_user u;
        r = identity_user_by_login(db, req->login, c.merchant_id, true, &u);
        if (r < 0)
                return sb_service_db_fail(call, r, "looking up the cashier");
        if ((s = identity_password_check(call, db, r == 1 ? &u : NULL, req->password, &c, c.merchant_id,
                                         c.terminal_id)) != SB_OK)
                return s;
        /* Only now, with the right password, may the caller learn that the cashier works elsewhere. */
        sb_db_stmt *q;
        r = sb_db_prepare(db, "SELECT 1 FROM grants WHERE user_id = ? AND role = 3 AND merchant_id = ?", &q);
        if (r == 0) {
                sb_db_bind_u64(q, 0, u.user_id);
                sb_db_bind_u64(q, 1, c.merchant_id);
                r = sb_db_execute(q);
        }
        if (r == 0)
                r = sb_db_fetch(q);
        if (r < 0)
                return sb_service_db_fail(call, r, "reading grants");
        if (r == 1)
                while (sb_db_fetch(q) == 1) {
                }
        if (r == 0) {
                identity_audit(call, AUD(SIGN_IN_FAILED), &c, u.user_id, c.merchant_id, c.terminal_id, 0,
                               "refused: not a cashier of this terminal's merchant");
                return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_SCOPE_MISMATCH",
                                           "this cashier does not belong to this terminal's merchant");
        }
        if (u.disabled) {
                identity_audit(call, AUD(SIGN_IN_FAILED), &c, u.user_id, c.merchant_id, c.terminal_id, 0,
                               "refused: the account is disabled");
                return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_ACCOUNT_DISABLED",
                                           "this cashier is disabled");
        }
        int64_t now = identity_now_ms();
        if (sb_db_prepare(db, "UPDATE terminals SET last_seen_ms = ? WHERE terminal_id = ?", &q) == 0) {
                sb_db_bind_i64(q, 0, now);
                sb_db_bind_u64(q, 1, c.terminal_id);
                (void)sb_db_execute(q);
        }
        if (sb_db_prepare(db, "UPDATE users SET last_sign_in_ms = ? WHERE user_id = ?", &q) == 0) {
                sb_db_bind_i64(q, 0, now);
                sb_db_bind_u64(q, 1, u.user_id);
                (void)sb_db_execute(q);
        }
        identity_principal p = { .user_id = u.user_id, .role = SB_ROLE_CASHIER, .merchant_id = c.merchant_id,
                                 .terminal_id = c.terminal_id, .display_name = u.display_name };
        Sharebuy__Identity__V1__TokenPair *tp = NULL;
        if ((s = identity_tokens_issue(call, db, &p, 0, "", &tp)) != SB_OK)
                return s;
        identity_audit(call, AUD(CASHIER_SIGN_IN), &c, u.user_id, c.merchant_id, c.terminal_id, 0,
                       "cashier signed in on the terminal");
        *resp = *tp;
        if ((r = identity_grants_load(call, db, u.user_id, false, &resp->grants, &resp->n_grants)) < 0)
                return sb_service_db_fail(call, r, "reading grants");
        resp->must_change_password = u.must_change_password;
        return SB_OK;
}
