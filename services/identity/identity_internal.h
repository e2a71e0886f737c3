/* The identity service's shared internals: its state, the per-address limiter, tokens, sessions, the audit trail
 * and the helpers every handler file uses. Handlers live in identity_<area>.c; the method table in identity.c. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "economy.h"
#include "identity_util.h"
#include "service.h"
#include "sharebuy/identity/v1/identity.pb-c.h"
#include "sharebuy/wallet/v1/wallet.pb-c.h"

#define IDENTITY_LIMITER_SLOTS 4096
#define IDENTITY_LIMIT_KEY_MAX 96
#define IDENTITY_MAX_ACTIVATION_MERCHANTS 64
#define IDENTITY_PASSWORD_MAX 128     /* bytes; longer passwords are refused before hashing */
#define IDENTITY_DISPLAY_NAME_MAX 32  /* characters */
#define IDENTITY_DEVICE_NAME_MAX 64   /* characters */
#define IDENTITY_REASON_MAX 200       /* characters */
#define IDENTITY_CONSUME_KEY_MAX 96   /* bytes of printable ASCII */
#define IDENTITY_REFERENCE_MAX 64     /* payment reference: bytes of printable ASCII */
#define IDENTITY_WALLET_DEADLINE_MS 5000

/* Member kinds in users.kind. */
enum { IDENTITY_KIND_MEMBER = 1, IDENTITY_KIND_STAFF = 2 };

typedef struct identity_limit_slot {
        char key[IDENTITY_LIMIT_KEY_MAX];
        int64_t window_start_ms;
        int64_t count;
} identity_limit_slot;

/* Fixed-window counters per key ("signin:ipv4:1.2.3.4"), a fixed table: a new key takes its slot over once the
 * slot's window has passed, so memory stays bounded whatever the number of addresses. Per process. */
typedef struct identity_limiter {
        pthread_mutex_t lock;
        identity_limit_slot slots[IDENTITY_LIMITER_SLOTS];
} identity_limiter;

typedef struct identity_audit_queue identity_audit_queue;

typedef struct identity_state {
        identity_audit_queue *audit;  /* the audit trail's batch writer (identity_audit_queue.c) */
        sb_auth_signer *signer;
        sb_auth_verifier *verifier;   /* the public keys of auth.public_keys: tokens and member codes */
        char *jwks;                   /* the JWKS document of those keys */
        int64_t access_ttl_ms, refresh_ttl_ms, terminal_refresh_ttl_ms, member_code_ttl_ms, pairing_ttl_ms;
        int64_t offline_grace_max_ms; /* how far back a service's captured_unix_ms may lie */
        int64_t lock_failures, lock_ms;
        int64_t signin_peer_failures, register_per_peer, pair_peer_failures, lookup_per_peer;
        int64_t member_codes_per_minute, max_terminals;
        uint64_t activation_merchants[IDENTITY_MAX_ACTIVATION_MERCHANTS];
        size_t n_activation_merchants;
        sb_econ_settings econ;
        char dummy_hash[SB_AUTH_HASH_MAX]; /* verified against when a login is unknown, so timing tells nothing */
        identity_limiter limiter;
} identity_state;

/* The principal a token pair is issued for. */
typedef struct identity_principal {
        uint64_t user_id;      /* 0 for a terminal */
        sb_role role;
        uint64_t merchant_id, terminal_id, centre_id;
        const char *display_name;
} identity_principal;

/* --- the audit trail's batch writer (identity_audit_queue.c) --- */

/* Starts the writer thread with its own connection from dbc (the strings must outlive the queue); an event waits at
 * most flush_ms for it. */
int identity_audit_queue_start(const sb_db_config *dbc, int64_t flush_ms, identity_audit_queue **ret, char *err,
                               size_t err_n);
/* Writes what is queued, stops the thread and frees the queue. NULL is fine. */
void identity_audit_queue_stop(identity_audit_queue *q);
/* Queues one event; false when the queue is full or stopping (the caller then writes it itself). */
bool identity_audit_queue_push(identity_audit_queue *q, int type, int64_t occurred_ms, uint64_t actor_user_id,
                               int actor_role, uint64_t subject_user_id, uint64_t merchant_id, uint64_t terminal_id,
                               uint64_t centre_id, const char *peer, const char *request_id, const char *detail);
/* Returns once every event queued before the call is written (or after a few seconds). NULL is fine. */
void identity_audit_queue_sync(identity_audit_queue *q);

static inline identity_state *identity_st(sb_call *call) {
        return sb_call_service_data(call);
}

int64_t identity_now_ms(void);

/* Counts one event for key when add, then reports whether the key is over limit events per window_ms; when it is,
 * *ret_retry_ms says how long until the window ends. With add false only checks (count ≥ limit). */
bool identity_limit_over(identity_state *st, const char *key, int64_t limit, int64_t window_ms, bool add,
                         int64_t *ret_retry_ms);

/* RESOURCE_EXHAUSTED with reason and "… try again in N seconds". */
sb_status identity_fail_retry(sb_call *call, const char *reason, const char *what, int64_t retry_ms);

/* INVALID_ARGUMENT with REASON_FIELD_INVALID. */
sb_status identity_invalid(sb_call *call, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Whether s is 1..max bytes of printable ASCII. */
bool identity_ascii_valid(const char *s, size_t max);

/* The peer address without port (for limits), into out. */
void identity_peer(sb_call *call, char *out, size_t n);

/* Record an audit event (best effort, after the change it describes; a failure to write it is not the caller's
 * failure). actor may be NULL (unauthenticated). detail is a printf format; never pass a secret. */
void identity_audit(sb_call *call, int type, const sb_claims *actor, uint64_t subject_user_id, uint64_t merchant_id,
                    uint64_t terminal_id, uint64_t centre_id, const char *fmt, ...)
        __attribute__((format(printf, 8, 9)));

/* Issue an access token and a new refresh token (a session row; family_id 0 starts a new session family) for p.
 * Fills a TokenPair allocated in the call. Returns SB_OK or a failed status. */
sb_status identity_tokens_issue(sb_call *call, sb_db *db, const identity_principal *p, uint64_t family_id,
                                const char *device, Sharebuy__Identity__V1__TokenPair **ret);

/* Revoke sessions: all of a user's (terminal_id 0) or a terminal's (user_id 0), optionally only those carrying
 * role/merchant/centre (role 0 = any). Returns the number revoked, or a negative sb_db code. */
int identity_sessions_revoke(sb_db *db, uint64_t user_id, uint64_t terminal_id, int role, uint64_t merchant_id,
                             uint64_t centre_id);

/* SHA-256 of a secret (refresh token, pairing code). */
void identity_hash_secret(const char *secret, unsigned char out[32]);

/* The user's grants as RoleGrant messages (members get an implicit MEMBER grant). */
int identity_grants_load(sb_call *call, sb_db *db, uint64_t user_id, bool member,
                         Sharebuy__Identity__V1__RoleGrant ***ret, size_t *ret_n);

/* A member as the API shows it (phone unmasked only when show_phone). NOT_FOUND status when missing. */
sb_status identity_member_load(sb_call *call, sb_db *db, uint64_t member_id, bool show_phone,
                               Sharebuy__Identity__V1__Member **ret);

/* Credit the registration bonus through the wallet if it was not yet (idempotent: keyed by the member id). On
 * success *ret_tx is the wallet transaction. Returns SB_OK or the wallet's status (message in msg). */
sb_status identity_bonus_credit(sb_call *call, sb_db *db, uint64_t member_id, uint64_t *ret_tx, char *msg, size_t n);

/* Fail a call with the wallet's status, passing UNAVAILABLE through and hiding nothing secret. */
sb_status identity_wallet_fail(sb_call *call, sb_status s, const char *msg);

/* A person's row as sign-in needs it. */
typedef struct identity_user {
        uint64_t user_id;
        int kind;                          /* IDENTITY_KIND_* */
        char phone[16];
        char login[IDENTITY_LOGIN_MAX + 1];
        uint64_t login_merchant_id;
        char display_name[160];
        char password_hash[SB_AUTH_HASH_MAX];
        bool disabled, must_change_password, vip;
        int64_t failed_signins, locked_until_ms;
        uint64_t bonus_tx_id;
} identity_user;

/* Load a user by id, by phone (a member), or by staff login within login_merchant_id (0 for platform staff; for a
 * cashier login, the user of that login under any merchant, preferring login_merchant_id). Returns 1 found, 0 not,
 * or a negative sb_db code. */
int identity_user_by_id(sb_db *db, uint64_t user_id, identity_user *ret);
int identity_user_by_phone(sb_db *db, const char *phone, identity_user *ret);
int identity_user_by_login(sb_db *db, const char *login, uint64_t prefer_merchant_id, bool any_merchant,
                           identity_user *ret);

/* The password check every sign-in shares: the per-address limit of failures, the account lock, the argon2id
 * verification (against a dummy hash when u is NULL, so an unknown login costs the same), counting failures and
 * locking the account after identity.lock_failures, the audit of failures and lock-outs. Returns SB_OK when the
 * password is right (failures reset), else the failed status. */
sb_status identity_password_check(sb_call *call, sb_db *db, const identity_user *u, const char *password,
                                  const sb_claims *actor, uint64_t merchant_id, uint64_t terminal_id);

/* Validate the common sign-in inputs (non-empty, bounded). */
sb_status identity_check_login_input(sb_call *call, const char *login, const char *password);

/* The referrers of a member, level 1 first (at most two; the second only when the first is a member). Returns
 * their number, or a negative sb_db code. */
int identity_referrers(sb_db *db, uint64_t member_id, int kinds[2], uint64_t ids[2], bool vips[2]);

/* A member's two referrer levels in one statement: select IDENTITY_REFERRER_COLS from `users u`
 * IDENTITY_REFERRER_JOINS, then identity_referrer_cols() on the 7 columns from the first of them. Level 1 is u's
 * referrer (VIP when a member who is); level 2 only through a member referrer whose row exists and has one. */
#define IDENTITY_REFERRER_COLS                                                                                       \
        "u.referrer_kind, u.referrer_id, COALESCE(r.vip, 0), r.user_id, r.referrer_kind, r.referrer_id, "         \
        "COALESCE(r2.vip, 0)"
#define IDENTITY_REFERRER_JOINS                                                                                      \
        " LEFT JOIN users r ON u.referrer_kind = 1 AND r.user_id = u.referrer_id"                                 \
        " LEFT JOIN users r2 ON r.referrer_kind = 1 AND r2.user_id = r.referrer_id "
/* Returns how many levels (0..2) it filled in. */
int identity_referrer_cols(sb_db_stmt *s, unsigned first, int kinds[2], uint64_t ids[2], bool vips[2]);

/* Give an owner (OwnerKind, id) a referral code if it has none; the code goes into out. 0 or negative. */
int identity_referral_code_ensure(sb_db *db, int kind, uint64_t id, char out[IDENTITY_REFERRAL_CODE_LEN + 1]);

/* 1 when the terminal is paired (0 when awaiting pairing, revoked or unknown); its merchant into *ret_merchant
 * (may be NULL) when it exists. Negative sb_db code on error. */
int identity_terminal_active(sb_db *db, uint64_t terminal_id, uint64_t *ret_merchant);

/* A staff user / a terminal as the API shows it; NOT_FOUND status when missing. */
sb_status identity_staff_load(sb_call *call, sb_db *db, uint64_t user_id, Sharebuy__Identity__V1__Staff **ret);
sb_status identity_terminal_load(sb_call *call, sb_db *db, uint64_t terminal_id,
                                 Sharebuy__Identity__V1__Terminal **ret);

/* Verify a member code's signature and expiry at now_ms; SB_OK with *ret, or the failure set on the call
 * (INVALID_ARGUMENT malformed, FAILED_PRECONDITION forged / expired; audited). */
sb_status identity_member_code_check(sb_call *call, const char *text, int64_t now_ms, identity_member_code *ret,
                                     const sb_claims *actor, uint64_t merchant_id, uint64_t terminal_id);

/* Spend a checked code under consume_key ("" = only check): 0 with *ret_consumed, 1 when it was used under another
 * key, 2 when it was never issued, or a negative sb_db code. */
int identity_member_code_spend(sb_db *db, const identity_member_code *mc, const char *consume_key,
                               uint64_t merchant_id, bool *ret_consumed);

/* The handlers. */
sb_status identity_register_member(sb_call *, const ProtobufCMessage *, ProtobufCMessage *);
sb_status identity_sign_in(sb_call *, const ProtobufCMessage *, ProtobufCMessage *);
sb_status identity_refresh(sb_call *, const ProtobufCMessage *, ProtobufCMessage *);
sb_status identity_sign_out(sb_call *, const ProtobufCMessage *, ProtobufCMessage *);
sb_status identity_change_password(sb_call *, const ProtobufCMessage *, ProtobufCMessage *);
sb_status identity_get_me(sb_call *, const ProtobufCMessage *, ProtobufCMessage *);
sb_status identity_get_member(sb_call *, const ProtobufCMessage *, ProtobufCMessage *);
sb_status identity_resolve_referral_code(sb_call *, const ProtobufCMessage *, ProtobufCMessage *);
sb_status identity_create_staff(sb_call *, const ProtobufCMessage *, ProtobufCMessage *);
sb_status identity_list_staff(sb_call *, const ProtobufCMessage *, ProtobufCMessage *);
sb_status identity_grant_role(sb_call *, const ProtobufCMessage *, ProtobufCMessage *);
sb_status identity_revoke_role(sb_call *, const ProtobufCMessage *, ProtobufCMessage *);
sb_status identity_revoke_sessions(sb_call *, const ProtobufCMessage *, ProtobufCMessage *);
sb_status identity_set_staff_disabled(sb_call *, const ProtobufCMessage *, ProtobufCMessage *);
sb_status identity_reset_staff_password(sb_call *, const ProtobufCMessage *, ProtobufCMessage *);
sb_status identity_register_terminal(sb_call *, const ProtobufCMessage *, ProtobufCMessage *);
sb_status identity_renew_pairing_code(sb_call *, const ProtobufCMessage *, ProtobufCMessage *);
sb_status identity_pair_terminal(sb_call *, const ProtobufCMessage *, ProtobufCMessage *);
sb_status identity_list_terminals(sb_call *, const ProtobufCMessage *, ProtobufCMessage *);
sb_status identity_revoke_terminal(sb_call *, const ProtobufCMessage *, ProtobufCMessage *);
sb_status identity_cashier_sign_in(sb_call *, const ProtobufCMessage *, ProtobufCMessage *);
sb_status identity_issue_member_code(sb_call *, const ProtobufCMessage *, ProtobufCMessage *);
sb_status identity_resolve_member_code(sb_call *, const ProtobufCMessage *, ProtobufCMessage *);
sb_status identity_list_activation_packs(sb_call *, const ProtobufCMessage *, ProtobufCMessage *);
sb_status identity_activate(sb_call *, const ProtobufCMessage *, ProtobufCMessage *);
sb_status identity_record_repeat_pack(sb_call *, const ProtobufCMessage *, ProtobufCMessage *);
sb_status identity_get_public_keys(sb_call *, const ProtobufCMessage *, ProtobufCMessage *);
sb_status identity_list_audit_events(sb_call *, const ProtobufCMessage *, ProtobufCMessage *);
