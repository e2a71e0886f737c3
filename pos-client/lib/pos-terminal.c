/* pos_terminal: see pos-terminal.h. */
#include "pos-terminal.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define IDENTITY_PATH(m) "/sharebuy.identity.v1.Identity/" m
#define MERCHANT_PATH(m) "/sharebuy.merchant.v1.Merchant/" m

/* Refresh an access token this long before it expires, so a call never starts with a token about to lapse. */
#define REFRESH_MARGIN_MS 60000
/* Finished sales stay in the journal this long (the day's list shows them, and a support call can look). */
#define JOURNAL_KEEP_MS (3 * 24 * 3600 * INT64_C(1000))

typedef struct session {
        char access[POS_TOKEN_MAX];
        int64_t access_expires_unix_ms;
        char refresh[POS_TOKEN_MAX];
} session;

struct pos_terminal {
        pthread_mutex_t lock;        /* state, sessions, clients, journal */
        pthread_mutex_t replay_lock; /* one replay at a time */
        char *state_path;
        pos_state state;
        sb_rpc_client *identity;
        sb_rpc_client *merchant;
        session terminal;            /* access is refreshed from state.terminal_refresh */
        session cashier;             /* empty when nobody is signed in */
        char cashier_name[POS_NAME_MAX];
        pos_journal *journal;
        pos_journal_stats journal_stats;
};

int64_t pos_now_unix_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int make_client(const char *target, const char *ca, sb_rpc_client **ret, char *errbuf, size_t n) {
        sb_rpc_client_config cfg = {
                .target = target,
                .tls_ca_path = ca && *ca ? ca : NULL,
                /* A till must tell "no connection" fast: one retry, within the call's deadline. */
                .max_attempts = 2,
        };
        return sb_rpc_client_new(&cfg, ret, errbuf, n);
}

/* Build the clients for the state's addresses; called with the lock held. */
static int connect_locked(pos_terminal *t, char *errbuf, size_t n) {
        sb_rpc_client *id = NULL, *mc = NULL;
        int r = make_client(t->state.server, t->state.tls_ca_path, &id, errbuf, n);
        if (r < 0)
                return r;
        const char *m = t->state.merchant_server[0] ? t->state.merchant_server : t->state.server;
        r = make_client(m, t->state.tls_ca_path, &mc, errbuf, n);
        if (r < 0) {
                sb_rpc_client_free(id);
                return r;
        }
        sb_rpc_client_free(t->identity);
        sb_rpc_client_free(t->merchant);
        t->identity = id;
        t->merchant = mc;
        return 0;
}

int pos_terminal_new(const char *dir, pos_terminal **ret, char *errbuf, size_t errbuf_n) {
        assert(dir && ret);
        if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
                int e = -errno;
                snprintf(errbuf, errbuf_n, "cannot create %s: %s", dir, strerror(errno));
                return e;
        }
        pos_terminal *t = calloc(1, sizeof *t);
        if (!t)
                return -ENOMEM;
        pthread_mutex_init(&t->lock, NULL);
        pthread_mutex_init(&t->replay_lock, NULL);
        size_t n = strlen(dir) + 32;
        t->state_path = malloc(n);
        char *jpath = malloc(n);
        int r = -ENOMEM;
        if (!t->state_path || !jpath)
                goto fail;
        snprintf(t->state_path, n, "%s/terminal.conf", dir);
        snprintf(jpath, n, "%s/journal.log", dir);
        r = pos_state_load(t->state_path, &t->state);
        if (r == -ENOENT) {
                memset(&t->state, 0, sizeof t->state);
        } else if (r < 0) {
                snprintf(errbuf, errbuf_n, "cannot read %s: %s", t->state_path, strerror(-r));
                goto fail;
        }
        r = pos_journal_open(jpath, &t->journal, &t->journal_stats);
        if (r < 0) {
                snprintf(errbuf, errbuf_n, "cannot open the sale journal %s: %s", jpath, strerror(-r));
                goto fail;
        }
        /* Compaction failing (a full disk) is no reason not to sell: the journal just stays longer. */
        if (pos_journal_count(t->journal) > 1000)
                (void) pos_journal_compact(t->journal, pos_now_unix_ms() - JOURNAL_KEEP_MS);
        if (t->state.server[0]) {
                r = connect_locked(t, errbuf, errbuf_n);
                if (r < 0)
                        goto fail;
        }
        free(jpath);
        *ret = t;
        return 0;
fail:
        free(jpath);
        pos_terminal_free(t);
        return r;
}

void pos_terminal_free(pos_terminal *t) {
        if (!t)
                return;
        sb_rpc_client_free(t->identity);
        sb_rpc_client_free(t->merchant);
        pos_journal_close(t->journal);
        free(t->state_path);
        /* The tokens are credentials: do not leave them in freed memory. */
        explicit_bzero(&t->terminal, sizeof t->terminal);
        explicit_bzero(&t->cashier, sizeof t->cashier);
        explicit_bzero(&t->state, sizeof t->state);
        pthread_mutex_destroy(&t->lock);
        pthread_mutex_destroy(&t->replay_lock);
        free(t);
}

void pos_terminal_get_state(pos_terminal *t, pos_state *ret) {
        pthread_mutex_lock(&t->lock);
        *ret = t->state;
        pthread_mutex_unlock(&t->lock);
}

pos_journal_stats pos_terminal_journal_stats(pos_terminal *t) {
        pthread_mutex_lock(&t->lock);
        pos_journal_stats s = t->journal_stats;
        pthread_mutex_unlock(&t->lock);
        return s;
}

int pos_terminal_set_server(pos_terminal *t, const char *server, const char *merchant_server, const char *tls_ca_path,
                            char *errbuf, size_t errbuf_n) {
        if (!pos_address_valid(server) || (merchant_server && *merchant_server && !pos_address_valid(merchant_server))) {
                snprintf(errbuf, errbuf_n, "address must be host:port");
                return -EINVAL;
        }
        if (tls_ca_path && *tls_ca_path) {
                if (strlen(tls_ca_path) >= POS_PATH_MAX || access(tls_ca_path, R_OK) < 0) {
                        snprintf(errbuf, errbuf_n, "cannot read the certificate %s", tls_ca_path);
                        return -EINVAL;
                }
        }
        pthread_mutex_lock(&t->lock);
        pos_state old = t->state;
        snprintf(t->state.server, sizeof t->state.server, "%s", server);
        snprintf(t->state.merchant_server, sizeof t->state.merchant_server, "%s", merchant_server ? merchant_server : "");
        snprintf(t->state.tls_ca_path, sizeof t->state.tls_ca_path, "%s", tls_ca_path ? tls_ca_path : "");
        int r = connect_locked(t, errbuf, errbuf_n);
        if (r == 0) {
                r = pos_state_save(t->state_path, &t->state);
                if (r < 0)
                        snprintf(errbuf, errbuf_n, "cannot save %s: %s", t->state_path, strerror(-r));
        }
        if (r < 0)
                t->state = old;
        pthread_mutex_unlock(&t->lock);
        return r;
}

/* Take a reference to the clients under the lock. The clients live as long as the terminal; set_server replaces
 * them only on the first-start screen, when no call is in flight. */
static sb_rpc_client *client_of(pos_terminal *t, bool merchant) {
        pthread_mutex_lock(&t->lock);
        sb_rpc_client *c = merchant ? t->merchant : t->identity;
        pthread_mutex_unlock(&t->lock);
        return c;
}

static sb_status do_call(pos_terminal *t, bool merchant, const char *path, const ProtobufCMessage *req,
                         const ProtobufCMessageDescriptor *desc, const char *bearer, int64_t deadline_ms,
                         ProtobufCMessage **ret, pos_error *err) {
        sb_rpc_client *c = client_of(t, merchant);
        pos_error_clear(err);
        if (!c) {
                pos_error_set(err, SB_FAILED_PRECONDITION, NULL, "no server address set");
                return SB_FAILED_PRECONDITION;
        }
        char reason[SB_RPC_REASON_MAX] = "";
        sb_rpc_call_opts o = { .deadline_ms = deadline_ms, .bearer = bearer, .ret_reason = reason };
        ProtobufCMessage *resp = NULL;
        char msg[SB_RPC_MESSAGE_MAX] = "";
        sb_status s = sb_rpc_client_call(c, path, req, desc, &o, &resp, msg, sizeof msg);
        if (s == SB_OK) {
                *ret = resp;
                return SB_OK;
        }
        pos_error_set(err, s, reason, msg);
        return s;
}

static void keep_session(session *s, const Sharebuy__Identity__V1__TokenPair *tp) {
        snprintf(s->access, sizeof s->access, "%s", tp->access_token ? tp->access_token : "");
        s->access_expires_unix_ms = tp->access_expires_unix_ms;
        snprintf(s->refresh, sizeof s->refresh, "%s", tp->refresh_token ? tp->refresh_token : "");
}

/* Refresh the terminal's access token if needed; copies a usable one into out. */
static sb_status terminal_token(pos_terminal *t, char *out, size_t n, pos_error *err) {
        pthread_mutex_lock(&t->lock);
        if (!pos_state_paired(&t->state)) {
                pthread_mutex_unlock(&t->lock);
                pos_error_set(err, SB_FAILED_PRECONDITION, "REASON_TERMINAL_REVOKED", "the terminal is not paired");
                return SB_FAILED_PRECONDITION;
        }
        if (t->terminal.access[0] && t->terminal.access_expires_unix_ms - REFRESH_MARGIN_MS > pos_now_unix_ms()) {
                snprintf(out, n, "%s", t->terminal.access);
                pthread_mutex_unlock(&t->lock);
                return SB_OK;
        }
        char refresh[POS_TOKEN_MAX];
        snprintf(refresh, sizeof refresh, "%s", t->state.terminal_refresh);
        pthread_mutex_unlock(&t->lock);

        Sharebuy__Identity__V1__RefreshRequest req = SHAREBUY__IDENTITY__V1__REFRESH_REQUEST__INIT;
        req.refresh_token = refresh;
        ProtobufCMessage *resp = NULL;
        sb_status s = do_call(t, false, IDENTITY_PATH("Refresh"), &req.base,
                              &sharebuy__identity__v1__token_pair__descriptor, NULL, POS_CALL_DEADLINE_MS, &resp, err);
        explicit_bzero(refresh, sizeof refresh);
        if (s != SB_OK)
                return s;
        Sharebuy__Identity__V1__TokenPair *tp = (Sharebuy__Identity__V1__TokenPair *) resp;
        pthread_mutex_lock(&t->lock);
        keep_session(&t->terminal, tp);
        /* The refresh token rotates on every use: the new one must be on disk before anything else, or the
         * terminal would present a spent one next time (which revokes its session). */
        if (tp->refresh_token && *tp->refresh_token) {
                snprintf(t->state.terminal_refresh, sizeof t->state.terminal_refresh, "%s", tp->refresh_token);
                (void) pos_state_save(t->state_path, &t->state);
        }
        snprintf(out, n, "%s", t->terminal.access);
        pthread_mutex_unlock(&t->lock);
        protobuf_c_message_free_unpacked(resp, NULL);
        return SB_OK;
}

/* A usable cashier access token in out: refreshed when it is about to expire (or force). */
static sb_status cashier_token(pos_terminal *t, bool force, char *out, size_t n, pos_error *err) {
        pthread_mutex_lock(&t->lock);
        if (!t->cashier.refresh[0]) {
                pthread_mutex_unlock(&t->lock);
                pos_error_set(err, SB_UNAUTHENTICATED, "REASON_TOKEN_MISSING", "no cashier is signed in");
                return SB_UNAUTHENTICATED;
        }
        if (!force && t->cashier.access_expires_unix_ms - REFRESH_MARGIN_MS > pos_now_unix_ms()) {
                snprintf(out, n, "%s", t->cashier.access);
                pthread_mutex_unlock(&t->lock);
                return SB_OK;
        }
        char refresh[POS_TOKEN_MAX];
        snprintf(refresh, sizeof refresh, "%s", t->cashier.refresh);
        pthread_mutex_unlock(&t->lock);

        Sharebuy__Identity__V1__RefreshRequest req = SHAREBUY__IDENTITY__V1__REFRESH_REQUEST__INIT;
        req.refresh_token = refresh;
        ProtobufCMessage *resp = NULL;
        sb_status s = do_call(t, false, IDENTITY_PATH("Refresh"), &req.base,
                              &sharebuy__identity__v1__token_pair__descriptor, NULL, POS_CALL_DEADLINE_MS, &resp, err);
        explicit_bzero(refresh, sizeof refresh);
        if (s != SB_OK) {
                /* Offline, keep using the old token: the sale goes to the queue anyway. A refused refresh ends the
                 * session; the screen asks for a new sign-in. */
                if (!pos_error_offline(err)) {
                        pthread_mutex_lock(&t->lock);
                        explicit_bzero(&t->cashier, sizeof t->cashier);
                        pthread_mutex_unlock(&t->lock);
                }
                return s;
        }
        Sharebuy__Identity__V1__TokenPair *tp = (Sharebuy__Identity__V1__TokenPair *) resp;
        pthread_mutex_lock(&t->lock);
        keep_session(&t->cashier, tp);
        snprintf(out, n, "%s", t->cashier.access);
        pthread_mutex_unlock(&t->lock);
        protobuf_c_message_free_unpacked(resp, NULL);
        return SB_OK;
}

/* A call as the signed-in cashier; an expired token is refreshed and the call tried once more. */
static sb_status cashier_call(pos_terminal *t, bool merchant, const char *path, const ProtobufCMessage *req,
                              const ProtobufCMessageDescriptor *desc, int64_t deadline_ms, ProtobufCMessage **ret,
                              pos_error *err) {
        char token[POS_TOKEN_MAX];
        sb_status s = cashier_token(t, false, token, sizeof token, err);
        if (s != SB_OK && !pos_error_offline(err))
                return s;
        if (s != SB_OK) {
                /* Offline refresh: try the call with what we have; it will most likely be UNAVAILABLE too. */
                pthread_mutex_lock(&t->lock);
                snprintf(token, sizeof token, "%s", t->cashier.access);
                pthread_mutex_unlock(&t->lock);
        }
        s = do_call(t, merchant, path, req, desc, token, deadline_ms, ret, err);
        if (s == SB_UNAUTHENTICATED && strcmp(err->reason, "REASON_TOKEN_EXPIRED") == 0) {
                pos_error e2;
                if (cashier_token(t, true, token, sizeof token, &e2) == SB_OK)
                        s = do_call(t, merchant, path, req, desc, token, deadline_ms, ret, err);
        }
        explicit_bzero(token, sizeof token);
        return s;
}

sb_status pos_terminal_pair(pos_terminal *t, const char *pairing_code, const char *device_name, pos_error *err) {
        Sharebuy__Identity__V1__PairTerminalRequest req = SHAREBUY__IDENTITY__V1__PAIR_TERMINAL_REQUEST__INIT;
        req.pairing_code = (char *) pairing_code;
        req.device_name = (char *) (device_name ? device_name : "");
        ProtobufCMessage *resp = NULL;
        sb_status s = do_call(t, false, IDENTITY_PATH("PairTerminal"), &req.base,
                              &sharebuy__identity__v1__pair_terminal_response__descriptor, NULL, POS_CALL_DEADLINE_MS,
                              &resp, err);
        if (s != SB_OK)
                return s;
        Sharebuy__Identity__V1__PairTerminalResponse *pr = (Sharebuy__Identity__V1__PairTerminalResponse *) resp;
        if (!pr->tokens || !pr->tokens->refresh_token || !*pr->tokens->refresh_token || !pr->terminal) {
                protobuf_c_message_free_unpacked(resp, NULL);
                pos_error_set(err, SB_INTERNAL, NULL, "PairTerminal answered without a credential");
                return SB_INTERNAL;
        }
        /* Identity does not know store names (PairTerminal's merchant_name is empty): ask the merchant service with
         * the new terminal credential. Best effort: the title bar falls back to the till's label. */
        Sharebuy__Merchant__V1__MerchantProfile *profile = NULL;
        if (!pr->merchant_name || !*pr->merchant_name) {
                Sharebuy__Merchant__V1__GetMerchantRequest gm = SHAREBUY__MERCHANT__V1__GET_MERCHANT_REQUEST__INIT;
                pos_error e2;
                if (do_call(t, true, MERCHANT_PATH("GetMerchant"), &gm.base,
                            &sharebuy__merchant__v1__merchant_profile__descriptor, pr->tokens->access_token,
                            POS_CALL_DEADLINE_MS, (ProtobufCMessage **) &profile, &e2) != SB_OK)
                        profile = NULL;
        }
        const char *merchant_name = pr->merchant_name && *pr->merchant_name ? pr->merchant_name
                                    : profile && profile->name                ? profile->name
                                                                              : "";
        pthread_mutex_lock(&t->lock);
        keep_session(&t->terminal, pr->tokens);
        t->state.terminal_id = pr->terminal->terminal_id;
        t->state.merchant_id = pr->terminal->merchant_id;
        snprintf(t->state.terminal_label, sizeof t->state.terminal_label, "%s",
                 pr->terminal->label ? pr->terminal->label : "");
        snprintf(t->state.merchant_name, sizeof t->state.merchant_name, "%s", merchant_name);
        snprintf(t->state.terminal_refresh, sizeof t->state.terminal_refresh, "%s", pr->tokens->refresh_token);
        int r = pos_state_save(t->state_path, &t->state);
        pthread_mutex_unlock(&t->lock);
        protobuf_c_message_free_unpacked(resp, NULL);
        if (profile)
                protobuf_c_message_free_unpacked(&profile->base, NULL);
        if (r < 0) {
                pos_error_set(err, SB_INTERNAL, NULL, "cannot save the terminal state");
                return SB_INTERNAL;
        }
        return SB_OK;
}

int pos_terminal_unpair(pos_terminal *t) {
        pthread_mutex_lock(&t->lock);
        t->state.terminal_id = 0;
        t->state.merchant_id = 0;
        t->state.merchant_name[0] = '\0';
        t->state.terminal_label[0] = '\0';
        explicit_bzero(t->state.terminal_refresh, sizeof t->state.terminal_refresh);
        explicit_bzero(&t->terminal, sizeof t->terminal);
        explicit_bzero(&t->cashier, sizeof t->cashier);
        int r = pos_state_save(t->state_path, &t->state);
        pthread_mutex_unlock(&t->lock);
        return r;
}

sb_status pos_terminal_sign_in(pos_terminal *t, const char *login, const char *password, pos_error *err) {
        char token[POS_TOKEN_MAX];
        sb_status s = terminal_token(t, token, sizeof token, err);
        if (s != SB_OK)
                return s;
        Sharebuy__Identity__V1__CashierSignInRequest req = SHAREBUY__IDENTITY__V1__CASHIER_SIGN_IN_REQUEST__INIT;
        req.login = (char *) login;
        req.password = (char *) password;
        ProtobufCMessage *resp = NULL;
        s = do_call(t, false, IDENTITY_PATH("CashierSignIn"), &req.base, &sharebuy__identity__v1__token_pair__descriptor,
                    token, POS_CALL_DEADLINE_MS, &resp, err);
        explicit_bzero(token, sizeof token);
        if (s != SB_OK)
                return s;
        Sharebuy__Identity__V1__TokenPair *tp = (Sharebuy__Identity__V1__TokenPair *) resp;
        pthread_mutex_lock(&t->lock);
        keep_session(&t->cashier, tp);
        const char *name = tp->principal && tp->principal->display_name && *tp->principal->display_name
                                   ? tp->principal->display_name
                                   : login;
        snprintf(t->cashier_name, sizeof t->cashier_name, "%s", name);
        pthread_mutex_unlock(&t->lock);
        protobuf_c_message_free_unpacked(resp, NULL);
        return SB_OK;
}

void pos_terminal_sign_out(pos_terminal *t) {
        pthread_mutex_lock(&t->lock);
        session old = t->cashier;
        explicit_bzero(&t->cashier, sizeof t->cashier);
        t->cashier_name[0] = '\0';
        pthread_mutex_unlock(&t->lock);
        if (old.refresh[0]) {
                Sharebuy__Identity__V1__SignOutRequest req = SHAREBUY__IDENTITY__V1__SIGN_OUT_REQUEST__INIT;
                req.refresh_token = old.refresh;
                ProtobufCMessage *resp = NULL;
                pos_error e;
                /* Best effort: an unreachable server lets the refresh token expire on its own. */
                if (do_call(t, false, IDENTITY_PATH("SignOut"), &req.base,
                            &sharebuy__identity__v1__sign_out_response__descriptor, old.access, 2000, &resp,
                            &e) == SB_OK)
                        protobuf_c_message_free_unpacked(resp, NULL);
        }
        explicit_bzero(&old, sizeof old);
}

bool pos_terminal_signed_in(pos_terminal *t, char *ret_name, size_t n) {
        pthread_mutex_lock(&t->lock);
        bool in = t->cashier.refresh[0] != '\0';
        if (ret_name && n)
                snprintf(ret_name, n, "%s", t->cashier_name);
        pthread_mutex_unlock(&t->lock);
        return in;
}

sb_status pos_terminal_quote(pos_terminal *t, const char *member_code, int64_t spend_fen,
                             Sharebuy__Merchant__V1__SaleQuote **ret, pos_error *err) {
        Sharebuy__Merchant__V1__QuoteSaleRequest req = SHAREBUY__MERCHANT__V1__QUOTE_SALE_REQUEST__INIT;
        req.member_code = (char *) member_code;
        req.spend_fen = spend_fen;
        return cashier_call(t, true, MERCHANT_PATH("QuoteSale"), &req.base, &sharebuy__merchant__v1__sale_quote__descriptor,
                            POS_QUOTE_DEADLINE_MS, (ProtobufCMessage **) ret, err);
}

static sb_status record_sale(pos_terminal *t, const pos_journal_sale *s, int64_t captured_unix_ms,
                             Sharebuy__Merchant__V1__RecordSaleResponse **ret, pos_error *err) {
        Sharebuy__Merchant__V1__RecordSaleRequest req = SHAREBUY__MERCHANT__V1__RECORD_SALE_REQUEST__INIT;
        req.sale_id = (char *) s->sale_id;
        req.member_code = (char *) s->member_code;
        req.spend_fen = s->spend_fen;
        req.captured_unix_ms = captured_unix_ms;
        return cashier_call(t, true, MERCHANT_PATH("RecordSale"), &req.base,
                            &sharebuy__merchant__v1__record_sale_response__descriptor, POS_SALE_DEADLINE_MS,
                            (ProtobufCMessage **) ret, err);
}

/* Record the server's answer about a sale in the journal. */
static void journal_answer(pos_terminal *t, const char *sale_id, sb_status s,
                           const Sharebuy__Merchant__V1__RecordSaleResponse *resp, const pos_error *err) {
        pthread_mutex_lock(&t->lock);
        if (s == SB_OK) {
                int64_t cv = resp && resp->receipt ? resp->receipt->member_cv_units : 0;
                int64_t sp = resp && resp->receipt ? resp->receipt->deposit_sp_units : 0;
                (void) pos_journal_mark(t->journal, sale_id, POS_SALE_SENT, pos_now_unix_ms(), NULL, cv, sp);
        } else {
                const char *reason = err->reason[0] ? err->reason : sb_status_name((int) s);
                (void) pos_journal_mark(t->journal, sale_id, POS_SALE_FAILED, pos_now_unix_ms(), reason, 0, 0);
        }
        pthread_mutex_unlock(&t->lock);
}

/* A refusal that another attempt cannot change. Everything else (no connection, an expired session, a server
 * bug) leaves the sale queued for the next replay. */
static bool final_refusal(const pos_error *err) {
        switch (err->status) {
        case SB_INVALID_ARGUMENT:
        case SB_FAILED_PRECONDITION:
        case SB_ALREADY_EXISTS:
        case SB_NOT_FOUND:
        case SB_PERMISSION_DENIED:
                return true;
        default:
                return false;
        }
}

pos_sell_outcome pos_terminal_sell(pos_terminal *t, const char *member_code, int64_t spend_fen, bool offline,
                                   char ret_sale_id[static 37], Sharebuy__Merchant__V1__RecordSaleResponse **ret_resp,
                                   pos_error *err) {
        pos_error_clear(err);
        char id[37];
        int r = pos_sale_id_new(id);
        if (r < 0) {
                pos_error_set(err, SB_INTERNAL, NULL, "no random sale id");
                return POS_SELL_NOT_KEPT;
        }
        pos_journal_sale s = { 0 };
        int64_t now = pos_now_unix_ms();
        pthread_mutex_lock(&t->lock);
        r = pos_journal_append_sale(t->journal, id, member_code, spend_fen, now, offline);
        if (r == 0)
                (void) pos_journal_find(t->journal, id, &s);
        pthread_mutex_unlock(&t->lock);
        if (r < 0) {
                pos_error_set(err, r == -EINVAL ? SB_INVALID_ARGUMENT : SB_RESOURCE_EXHAUSTED,
                              r == -EINVAL ? "REASON_FIELD_INVALID" : NULL,
                              r == -ENOSPC ? "the offline queue is full" : strerror(-r));
                return POS_SELL_NOT_KEPT;
        }
        memcpy(ret_sale_id, id, sizeof id);
        Sharebuy__Merchant__V1__RecordSaleResponse *resp = NULL;
        sb_status st = record_sale(t, &s, offline ? now : 0, &resp, err);
        if (st == SB_OK) {
                journal_answer(t, id, st, resp, err);
                *ret_resp = resp;
                return POS_SELL_RECORDED;
        }
        if (final_refusal(err)) {
                journal_answer(t, id, st, NULL, err);
                return POS_SELL_REFUSED;
        }
        return POS_SELL_QUEUED;
}

sb_status pos_terminal_replay(pos_terminal *t, size_t *ret_sent, size_t *ret_failed, pos_error *err) {
        size_t sent = 0, failed = 0;
        pos_error_clear(err);
        if (pthread_mutex_trylock(&t->replay_lock) != 0) {
                *ret_sent = *ret_failed = 0;
                return SB_OK;
        }
        sb_status result = SB_OK;
        /* Each round either finishes a sale or stops, so the queue's limit bounds the loop. */
        for (size_t round = 0; round <= POS_JOURNAL_MAX_QUEUED; round++) {
                pos_journal_sale s;
                pthread_mutex_lock(&t->lock);
                int r = pos_journal_next_queued(t->journal, &s);
                pthread_mutex_unlock(&t->lock);
                if (r < 0)
                        break;
                Sharebuy__Merchant__V1__RecordSaleResponse *resp = NULL;
                sb_status st = record_sale(t, &s, s.captured_unix_ms, &resp, err);
                if (st == SB_OK) {
                        journal_answer(t, s.sale_id, st, resp, err);
                        protobuf_c_message_free_unpacked(&resp->base, NULL);
                        sent++;
                        continue;
                }
                if (final_refusal(err)) {
                        journal_answer(t, s.sale_id, st, NULL, err);
                        failed++;
                        continue;
                }
                result = st;
                break;
        }
        pthread_mutex_unlock(&t->replay_lock);
        *ret_sent = sent;
        *ret_failed = failed;
        return result;
}

int pos_terminal_journal_sales(pos_terminal *t, pos_journal_sale **ret, size_t *ret_n) {
        pthread_mutex_lock(&t->lock);
        size_t n = pos_journal_count(t->journal);
        pos_journal_sale *a = calloc(n ? n : 1, sizeof *a);
        if (!a) {
                pthread_mutex_unlock(&t->lock);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++)
                (void) pos_journal_get(t->journal, i, &a[i]);
        pthread_mutex_unlock(&t->lock);
        *ret = a;
        *ret_n = n;
        return 0;
}

sb_status pos_terminal_void(pos_terminal *t, const char *sale_id, const char *reason,
                            Sharebuy__Merchant__V1__VoidSaleResponse **ret, pos_error *err) {
        char void_id[37];
        if (pos_sale_id_new(void_id) < 0) {
                pos_error_set(err, SB_INTERNAL, NULL, "no random void id");
                return SB_INTERNAL;
        }
        Sharebuy__Merchant__V1__VoidSaleRequest req = SHAREBUY__MERCHANT__V1__VOID_SALE_REQUEST__INIT;
        req.sale_id = (char *) sale_id;
        req.void_id = void_id;
        req.reason = (char *) (reason ? reason : "");
        /* UNAVAILABLE is retried inside the client with the same void id; a void is never queued offline, since
         * the cashier must know at once whether it happened. */
        return cashier_call(t, true, MERCHANT_PATH("VoidSale"), &req.base,
                            &sharebuy__merchant__v1__void_sale_response__descriptor, POS_SALE_DEADLINE_MS,
                            (ProtobufCMessage **) ret, err);
}

sb_status pos_terminal_list_sales(pos_terminal *t, const char *business_day, uint32_t max,
                                  Sharebuy__Merchant__V1__ListSalesResponse **ret, pos_error *err) {
        Sharebuy__Merchant__V1__ListSalesRequest req = SHAREBUY__MERCHANT__V1__LIST_SALES_REQUEST__INIT;
        Sharebuy__Common__V1__PageRequest page = SHAREBUY__COMMON__V1__PAGE_REQUEST__INIT;
        page.page_size = max == 0 || max > 500 ? 500 : max;
        req.business_day = (char *) (business_day ? business_day : "");
        pthread_mutex_lock(&t->lock);
        req.terminal_id = t->state.terminal_id;
        pthread_mutex_unlock(&t->lock);
        req.page = &page;
        return cashier_call(t, true, MERCHANT_PATH("ListSales"), &req.base,
                            &sharebuy__merchant__v1__list_sales_response__descriptor, POS_CALL_DEADLINE_MS,
                            (ProtobufCMessage **) ret, err);
}

sb_status pos_terminal_day_summary(pos_terminal *t, const char *business_day,
                                   Sharebuy__Merchant__V1__DaySummaryResponse **ret, pos_error *err) {
        Sharebuy__Merchant__V1__DaySummaryRequest req = SHAREBUY__MERCHANT__V1__DAY_SUMMARY_REQUEST__INIT;
        req.business_day = (char *) (business_day ? business_day : "");
        return cashier_call(t, true, MERCHANT_PATH("DaySummary"), &req.base,
                            &sharebuy__merchant__v1__day_summary_response__descriptor, POS_CALL_DEADLINE_MS,
                            (ProtobufCMessage **) ret, err);
}

sb_status pos_terminal_deposit(pos_terminal *t, Sharebuy__Merchant__V1__DepositStatus **ret, pos_error *err) {
        Sharebuy__Merchant__V1__GetDepositStatusRequest req = SHAREBUY__MERCHANT__V1__GET_DEPOSIT_STATUS_REQUEST__INIT;
        return cashier_call(t, true, MERCHANT_PATH("GetDepositStatus"), &req.base,
                            &sharebuy__merchant__v1__deposit_status__descriptor, POS_CALL_DEADLINE_MS,
                            (ProtobufCMessage **) ret, err);
}

sb_status pos_terminal_member_card(pos_terminal *t, const char *phone, const char *password, uint32_t ttl_seconds,
                                   Sharebuy__Identity__V1__IssueMemberCodeResponse **ret, pos_error *err) {
        Sharebuy__Identity__V1__IssueMemberCodeRequest req = SHAREBUY__IDENTITY__V1__ISSUE_MEMBER_CODE_REQUEST__INIT;
        req.text_only = true;
        req.ttl_seconds = ttl_seconds;
        req.member_phone = (char *) phone;
        req.member_password = (char *) password;
        return cashier_call(t, false, IDENTITY_PATH("IssueMemberCode"), &req.base,
                            &sharebuy__identity__v1__issue_member_code_response__descriptor, POS_CALL_DEADLINE_MS,
                            (ProtobufCMessage **) ret, err);
}
