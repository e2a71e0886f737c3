/* merchant_sale: the sale at the till — quote, record (exactly once), void — and the merchant's sale lists and Z
 * report.
 *
 * Exactly once. RecordSale writes the sale as a PENDING row holding the exact wallet request (packed) before it
 * posts the transaction under the key "sale:<merchant>:<sale_id>", and marks the row RECORDED after. A retry with
 * the same sale id that finds a pending row sends the stored request again — the wallet answers the first
 * transaction for the same key and legs — and completes the row. A crash at any point therefore leaves either no
 * row (nothing posted: the retry starts afresh, and the member code, consumed under the same key, is accepted
 * again), or a pending row (posted or not: the retry finishes it), or a recorded one (the retry replays it). A
 * definitive refusal by the wallet (e.g. the deposit was spent meanwhile) deletes the pending row: nothing was
 * posted. Voids follow the same pattern with void_state and the key "void:<merchant>:<sale_id>". */
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "rpc.h"
#include "service.h"
#include "merchant_internal.h"

#define POST_REQUEST_MAX 8192 /* a packed sale transaction: at most 16 legs, far below */
#define SALE_LEGS_MAX 16

typedef struct sale_row {
        uint64_t merchant_id;
        char sale_id[MERCHANT_ID_MAX + 1];
        uint64_t seq;
        int state;
        uint64_t terminal_id, cashier_user_id;
        uint8_t code_hash[32];
        uint64_t member_id;
        char member_masked[24];
        bool member_vip;
        int64_t spend_fen, rate_bp, price_micro, member_cv, merchant_cv, deposit_sp;
        int ref_kind;
        uint64_t ref_id;
        int64_t ref_sp, ref_cv;
        int ref2_kind;
        uint64_t ref2_id;
        int64_t ref2_sp, ref2_cv;
        int mref_kind;
        uint64_t mref_id;
        int64_t mref_sp;
        uint64_t centre_id;
        int64_t centre_sp;
        uint64_t parent_id;
        int64_t parent_sp, burned_sp;
        uint8_t post[POST_REQUEST_MAX];
        size_t post_len;
        uint64_t tx_id;
        int64_t deposit_left_sp, recorded_ms;
        char day[MERCHANT_DAY_LEN + 1];
        int64_t captured_ms;
        char void_id[MERCHANT_ID_MAX + 1];
        int void_state;
        char void_reason[4 * MERCHANT_REASON_MAX_CHARS + 1];
        int64_t voided_ms;
        uint64_t voided_by, void_tx_id;
        int64_t void_deposit_left_sp;
} sale_row;

#define SALE_COLUMNS                                                                                               \
        "merchant_id, sale_id, seq, state, terminal_id, cashier_user_id, code_hash, member_id, member_masked, "    \
        "member_vip, spend_fen, rate_bp, price_micro, member_cv, merchant_cv, deposit_sp, referrer_kind, "        \
        "referrer_id, referrer_sp, referrer_cv, referrer2_kind, referrer2_id, referrer2_sp, referrer2_cv, "        \
        "mref_kind, mref_id, mref_sp, centre_id, centre_sp, parent_centre_id, parent_centre_sp, burned_sp, "      \
        "post_request, tx_id, deposit_left_sp, recorded_ms, business_day, captured_ms, void_id, void_state, "     \
        "void_reason, voided_ms, voided_by, void_tx_id, void_deposit_left_sp"

static int col_str0(const sb_db_stmt *s, unsigned c, char *buf, size_t n) {
        int r = sb_db_col_str(s, c, buf, n);
        if (r == -ENODATA) {
                buf[0] = '\0';
                return 0;
        }
        return r < 0 ? r : 0;
}

/* Reads the row of SALE_COLUMNS from column first on; with_post false skips the packed request (lists). */
static int sale_read_at(const sb_db_stmt *s, unsigned first, sale_row *x, bool with_post) {
        int64_t v;
        int r = 0;
        unsigned c = first;
        memset(x, 0, offsetof(sale_row, post));
#define I64(dst) (r |= sb_db_col_i64(s, c++, &(dst)))
#define U64(dst) (r |= sb_db_col_u64(s, c++, &(dst)))
#define INT(dst) (r |= sb_db_col_i64(s, c++, &v), (dst) = (int) v)
        U64(x->merchant_id);
        r |= col_str0(s, c++, x->sale_id, sizeof x->sale_id);
        U64(x->seq);
        INT(x->state);
        U64(x->terminal_id);
        U64(x->cashier_user_id);
        if (sb_db_col_blob(s, c++, x->code_hash, sizeof x->code_hash) != 32)
                r |= -1;
        U64(x->member_id);
        r |= col_str0(s, c++, x->member_masked, sizeof x->member_masked);
        INT(x->member_vip);
        I64(x->spend_fen);
        I64(x->rate_bp);
        I64(x->price_micro);
        I64(x->member_cv);
        I64(x->merchant_cv);
        I64(x->deposit_sp);
        INT(x->ref_kind);
        U64(x->ref_id);
        I64(x->ref_sp);
        I64(x->ref_cv);
        INT(x->ref2_kind);
        U64(x->ref2_id);
        I64(x->ref2_sp);
        I64(x->ref2_cv);
        INT(x->mref_kind);
        U64(x->mref_id);
        I64(x->mref_sp);
        U64(x->centre_id);
        I64(x->centre_sp);
        U64(x->parent_id);
        I64(x->parent_sp);
        I64(x->burned_sp);
        if (with_post) {
                int n = sb_db_col_blob(s, c, x->post, sizeof x->post);
                if (n < 0)
                        r |= -1;
                else
                        x->post_len = (size_t) n;
        }
        c++;
        U64(x->tx_id);
        I64(x->deposit_left_sp);
        I64(x->recorded_ms);
        r |= col_str0(s, c++, x->day, sizeof x->day);
        I64(x->captured_ms);
        r |= col_str0(s, c++, x->void_id, sizeof x->void_id);
        INT(x->void_state);
        r |= col_str0(s, c++, x->void_reason, sizeof x->void_reason);
        I64(x->voided_ms);
        U64(x->voided_by);
        U64(x->void_tx_id);
        I64(x->void_deposit_left_sp);
#undef I64
#undef U64
#undef INT
        return r ? -EIO : 0;
}

static int sale_read(const sb_db_stmt *s, sale_row *x, bool with_post) {
        return sale_read_at(s, 0, x, with_post);
}

/* 0, -ENOENT or a db code. */
static int sale_load(sb_db *db, uint64_t merchant_id, const char *sale_id, sale_row *ret) {
        sb_db_stmt *s;
        int r = sb_db_prepare(db,
                              "SELECT " SALE_COLUMNS " FROM sharebuy_merchant.sales WHERE merchant_id = ? AND "
                              "sale_id = ?",
                              &s);
        if (r < 0)
                return r;
        sb_db_bind_u64(s, 0, merchant_id);
        sb_db_bind_str(s, 1, sale_id);
        if ((r = sb_db_execute(s)) < 0)
                return r;
        if ((r = sb_db_fetch(s)) < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        r = sale_read(s, ret, true);
        while (sb_db_fetch(s) > 0)
                ;
        return r;
}

/* The sale path's two look-ups in one round trip: the merchant (0; -ENOENT when there is none) and the sale
 * under that id, if any (*ret_found). */
static int merchant_and_sale_load(sb_db *db, uint64_t merchant_id, const char *sale_id, merchant_row *m, sale_row *x,
                                  bool *ret_found) {
        enum { MERCHANT_NCOLS = 24 };
        sb_db_stmt *s;
        int r = sb_db_prepare(db,
                              "SELECT m.*, s.* FROM (SELECT " MERCHANT_ROW_COLUMNS " FROM sharebuy_merchant.merchants "
                              "WHERE merchant_id = ?) m LEFT JOIN (SELECT " SALE_COLUMNS " FROM "
                              "sharebuy_merchant.sales WHERE merchant_id = ? AND sale_id = ?) s ON 1 = 1",
                              &s);
        if (r < 0)
                return r;
        sb_db_bind_u64(s, 0, merchant_id);
        sb_db_bind_u64(s, 1, merchant_id);
        sb_db_bind_str(s, 2, sale_id);
        if ((r = sb_db_execute(s)) < 0)
                return r;
        if ((r = sb_db_fetch(s)) < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        r = merchant_row_read(s, 0, m);
        *ret_found = r == 0 && !sb_db_col_is_null(s, MERCHANT_NCOLS);
        if (r == 0 && *ret_found)
                r = sale_read_at(s, MERCHANT_NCOLS, x, true);
        while (sb_db_fetch(s) > 0)
                ;
        return r;
}

/* The pending INSERT of one sale, and its row of parameters (SALE_INSERT_PARAMS of them) for a multi-row one. */
#define SALE_INSERT_HEAD                                                                                           \
        "INSERT INTO sharebuy_merchant.sales (merchant_id, sale_id, state, terminal_id, cashier_user_id, "         \
        "code_hash, member_id, member_masked, member_vip, spend_fen, rate_bp, price_micro, member_cv, "           \
        "merchant_cv, deposit_sp, referrer_kind, referrer_id, referrer_sp, referrer_cv, referrer2_kind, "        \
        "referrer2_id, referrer2_sp, referrer2_cv, mref_kind, mref_id, mref_sp, centre_id, centre_sp, "          \
        "parent_centre_id, parent_centre_sp, burned_sp, post_request, recorded_ms, business_day, captured_ms) "  \
        "VALUES "
#define SALE_INSERT_ROW                                                                                            \
        "(?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
#define SALE_INSERT_PARAMS 34

static void sale_bind_pending(sb_db_stmt *s, unsigned i, const sale_row *x) {
        sb_db_bind_u64(s, i++, x->merchant_id);
        sb_db_bind_str(s, i++, x->sale_id);
        sb_db_bind_u64(s, i++, x->terminal_id);
        sb_db_bind_u64(s, i++, x->cashier_user_id);
        sb_db_bind_blob(s, i++, x->code_hash, sizeof x->code_hash);
        sb_db_bind_u64(s, i++, x->member_id);
        sb_db_bind_str(s, i++, x->member_masked);
        sb_db_bind_i64(s, i++, x->member_vip);
        sb_db_bind_i64(s, i++, x->spend_fen);
        sb_db_bind_i64(s, i++, x->rate_bp);
        sb_db_bind_i64(s, i++, x->price_micro);
        sb_db_bind_i64(s, i++, x->member_cv);
        sb_db_bind_i64(s, i++, x->merchant_cv);
        sb_db_bind_i64(s, i++, x->deposit_sp);
        sb_db_bind_i64(s, i++, x->ref_kind);
        sb_db_bind_u64(s, i++, x->ref_id);
        sb_db_bind_i64(s, i++, x->ref_sp);
        sb_db_bind_i64(s, i++, x->ref_cv);
        sb_db_bind_i64(s, i++, x->ref2_kind);
        sb_db_bind_u64(s, i++, x->ref2_id);
        sb_db_bind_i64(s, i++, x->ref2_sp);
        sb_db_bind_i64(s, i++, x->ref2_cv);
        sb_db_bind_i64(s, i++, x->mref_kind);
        sb_db_bind_u64(s, i++, x->mref_id);
        sb_db_bind_i64(s, i++, x->mref_sp);
        sb_db_bind_u64(s, i++, x->centre_id);
        sb_db_bind_i64(s, i++, x->centre_sp);
        sb_db_bind_u64(s, i++, x->parent_id);
        sb_db_bind_i64(s, i++, x->parent_sp);
        sb_db_bind_i64(s, i++, x->burned_sp);
        sb_db_bind_blob(s, i++, x->post, x->post_len);
        sb_db_bind_i64(s, i++, x->recorded_ms);
        sb_db_bind_str(s, i++, x->day);
        sb_db_bind_i64(s, i++, x->captured_ms);
}

static int sale_insert_pending(sb_db *db, const sale_row *x) {
        sb_db_stmt *s;
        int r = sb_db_prepare(db, SALE_INSERT_HEAD SALE_INSERT_ROW, &s);
        if (r < 0)
                return r;
        sale_bind_pending(s, 0, x);
        return sb_db_execute(s);
}

static int sale_mark_recorded(sb_db *db, const merchant_sale_mark *x) {
        sb_db_stmt *s;
        int r = sb_db_prepare(db,
                              "UPDATE sharebuy_merchant.sales SET state = 2, tx_id = ?, deposit_left_sp = ? WHERE "
                              "merchant_id = ? AND sale_id = ? AND state = 1",
                              &s);
        if (r < 0)
                return r;
        sb_db_bind_u64(s, 0, x->tx_id);
        sb_db_bind_i64(s, 1, x->deposit_left_sp);
        sb_db_bind_u64(s, 2, x->merchant_id);
        sb_db_bind_str(s, 3, x->sale_id);
        return sb_db_execute(s);
}

/* --- Group commit of the sale's rows ---------------------------------------------------------------------------
 *
 * The pending INSERT and the UPDATE to recorded of sales that arrive together are each written by one multi-row
 * statement (one round trip, one commit) on the connection of the thread that leads (services/core/batch). A group
 * statement is atomic on its own (autocommit): when it fails — a sale id already taken, a lost connection — nothing
 * of it is written and every sale of the group writes its row alone, getting its own exact answer. */

static int pending_single(void *ctx, void *conn, void *item) {
        (void) ctx;
        return sale_insert_pending(conn, item);
}

static int mark_single(void *ctx, void *conn, void *item) {
        (void) ctx;
        return sale_mark_recorded(conn, item);
}

static void group_note(merchant_state *st, const char *what, size_t n, int r) {
        sb_log_kv(SB_LOG_DEBUG, "sale_group", "sales' rows written by one statement", "what", SB_LOG_STR(what),
                  "taken", SB_LOG_INT((int64_t) n), "result", SB_LOG_INT(r), NULL);
        if (st->m_groups && r >= 0) {
                sb_metrics_series_add(st->m_groups, 1);
                sb_metrics_series_add(st->m_grouped, (int64_t) n);
        }
}

static int pending_group(void *ctx, void *conn, void *const *items, size_t n, bool *done) {
        merchant_state *st = ctx;
        sb_db_stmt *s;
        int r = sb_db_prepare(conn, st->pending_sql[n], &s);
        if (r >= 0) {
                for (size_t k = 0; k < n; k++)
                        sale_bind_pending(s, (unsigned) (k * SALE_INSERT_PARAMS), items[k]);
                r = sb_db_execute(s);
        }
        for (size_t k = 0; k < n; k++)
                done[k] = r >= 0;
        group_note(st, "pending", n, r);
        return r;
}

static int mark_group(void *ctx, void *conn, void *const *items, size_t n, bool *done) {
        merchant_state *st = ctx;
        sb_db_stmt *s;
        int r = sb_db_prepare(conn, st->mark_sql[n], &s);
        if (r >= 0) {
                unsigned i = 0;
                for (size_t k = 0; k < n; k++) { /* tx_id = CASE … */
                        const merchant_sale_mark *x = items[k];
                        sb_db_bind_u64(s, i++, x->merchant_id);
                        sb_db_bind_str(s, i++, x->sale_id);
                        sb_db_bind_u64(s, i++, x->tx_id);
                }
                for (size_t k = 0; k < n; k++) { /* deposit_left_sp = CASE … */
                        const merchant_sale_mark *x = items[k];
                        sb_db_bind_u64(s, i++, x->merchant_id);
                        sb_db_bind_str(s, i++, x->sale_id);
                        sb_db_bind_i64(s, i++, x->deposit_left_sp);
                }
                for (size_t k = 0; k < n; k++) { /* (merchant_id, sale_id) IN … */
                        const merchant_sale_mark *x = items[k];
                        sb_db_bind_u64(s, i++, x->merchant_id);
                        sb_db_bind_str(s, i++, x->sale_id);
                }
                r = sb_db_execute(s);
        }
        for (size_t k = 0; k < n; k++)
                done[k] = r >= 0;
        group_note(st, "recorded", n, r);
        return r;
}

/* Appends text to the growing statement *buf (of *len bytes, *cap allocated). */
static int sql_append(char **buf, size_t *len, size_t *cap, const char *text) {
        size_t t = strlen(text);
        if (*len + t + 1 > *cap) {
                size_t c = (*cap ? *cap * 2 : 1024);
                while (c < *len + t + 1)
                        c *= 2;
                char *nb = realloc(*buf, c);
                if (!nb)
                        return -ENOMEM;
                *buf = nb;
                *cap = c;
        }
        memcpy(*buf + *len, text, t + 1);
        *len += t;
        return 0;
}

int merchant_sale_groups_init(merchant_state *st, bool enabled, unsigned leaders) {
        for (size_t n = 2; n <= MERCHANT_SALE_GROUP_MAX; n++) {
                char *p = NULL, *m = NULL;
                size_t pl = 0, pc = 0, ml = 0, mc = 0;
                int r = sql_append(&p, &pl, &pc, SALE_INSERT_HEAD);
                for (size_t k = 0; k < n && r >= 0; k++)
                        r = sql_append(&p, &pl, &pc, k ? ", " SALE_INSERT_ROW : SALE_INSERT_ROW);
                if (r >= 0)
                        r = sql_append(&m, &ml, &mc, "UPDATE sharebuy_merchant.sales SET state = 2, tx_id = CASE");
                for (size_t k = 0; k < n && r >= 0; k++)
                        r = sql_append(&m, &ml, &mc, " WHEN merchant_id = ? AND sale_id = ? THEN ?");
                if (r >= 0)
                        r = sql_append(&m, &ml, &mc, " END, deposit_left_sp = CASE");
                for (size_t k = 0; k < n && r >= 0; k++)
                        r = sql_append(&m, &ml, &mc, " WHEN merchant_id = ? AND sale_id = ? THEN ?");
                if (r >= 0)
                        r = sql_append(&m, &ml, &mc, " END WHERE state = 1 AND (merchant_id, sale_id) IN (");
                for (size_t k = 0; k < n && r >= 0; k++)
                        r = sql_append(&m, &ml, &mc, k ? ", (?, ?)" : "(?, ?)");
                if (r >= 0)
                        r = sql_append(&m, &ml, &mc, ")");
                st->pending_sql[n] = p;
                st->mark_sql[n] = m;
                if (r < 0) {
                        merchant_sale_groups_fini(st);
                        return r;
                }
        }
        int r = sb_batch_init(&st->pending_rows, MERCHANT_SALE_GROUP_MAX, leaders, enabled, pending_single,
                              pending_group, st);
        if (r >= 0) {
                r = sb_batch_init(&st->recorded_rows, MERCHANT_SALE_GROUP_MAX, leaders, enabled, mark_single,
                                  mark_group, st);
                if (r < 0)
                        sb_batch_fini(&st->pending_rows); /* groups_ready is still false: fini below skips both */
        }
        if (r < 0) {
                merchant_sale_groups_fini(st);
                return r;
        }
        st->groups_ready = true;
        return 0;
}

void merchant_sale_groups_fini(merchant_state *st) {
        if (st->groups_ready) {
                sb_batch_fini(&st->pending_rows);
                sb_batch_fini(&st->recorded_rows);
                st->groups_ready = false;
        }
        for (size_t n = 0; n <= MERCHANT_SALE_GROUP_MAX; n++) {
                free(st->pending_sql[n]);
                free(st->mark_sql[n]);
                st->pending_sql[n] = st->mark_sql[n] = NULL;
        }
}

static int sale_delete_pending(sb_db *db, uint64_t merchant_id, const char *sale_id) {
        sb_db_stmt *s;
        int r = sb_db_prepare(db,
                              "DELETE FROM sharebuy_merchant.sales WHERE merchant_id = ? AND sale_id = ? AND state = 1",
                              &s);
        if (r < 0)
                return r;
        sb_db_bind_u64(s, 0, merchant_id);
        sb_db_bind_str(s, 1, sale_id);
        return sb_db_execute(s);
}

/* --- Wallet keys --- */

#define WALLET_KEY_MAX 64 /* the wallet's limit on idempotency keys */

/* The wallet key of a sale ("sale") or its void ("void"): "<kind>:<merchant>:<sale_id>", or, when that would pass
 * the wallet's 64 characters (sale ids may have 64 on their own), "<kind>:<merchant>:#" and the first 40 hex digits
 * of the SHA-256 of the sale id: still one key per sale, never shared. */
static void wallet_key(char out[WALLET_KEY_MAX + 1], const char *kind, uint64_t merchant_id, const char *sale_id) {
        char buf[160];
        int n = snprintf(buf, sizeof buf, "%s:%" PRIu64 ":%s", kind, merchant_id, sale_id);
        if (n > 0 && n <= WALLET_KEY_MAX) {
                memcpy(out, buf, (size_t) n + 1);
                return;
        }
        uint8_t h[32];
        crypto_hash_sha256(h, (const unsigned char *) sale_id, strlen(sale_id));
        static const char hex[] = "0123456789abcdef";
        char hx[41];
        for (int i = 0; i < 20; i++) {
                hx[2 * i] = hex[h[i] >> 4];
                hx[2 * i + 1] = hex[h[i] & 15];
        }
        hx[40] = '\0';
        snprintf(out, WALLET_KEY_MAX + 1, "%s:%" PRIu64 ":#%s", kind, merchant_id, hx);
}

/* --- Messages --- */

static Sharebuy__Common__V1__OwnerRef *owner_msg(sb_call *call, int kind, uint64_t id) {
        if (!kind)
                return NULL;
        Sharebuy__Common__V1__OwnerRef *o = sb_call_alloc(call, sizeof *o);
        sharebuy__common__v1__owner_ref__init(o);
        o->kind = (Sharebuy__Common__V1__OwnerKind) kind;
        o->id = id;
        return o;
}

/* A deep copy of the legs of a wallet request or response into the call's memory. */
static void copy_legs(sb_call *call, Sharebuy__Common__V1__LedgerLeg *const *legs, size_t n,
                      Sharebuy__Common__V1__LedgerLeg ***ret, size_t *ret_n) {
        Sharebuy__Common__V1__LedgerLeg **out = sb_call_alloc(call, sizeof *out * (n ? n : 1));
        for (size_t i = 0; i < n; i++) {
                const Sharebuy__Common__V1__LedgerLeg *l = legs[i];
                Sharebuy__Common__V1__LedgerLeg *c = sb_call_alloc(call, sizeof *c);
                sharebuy__common__v1__ledger_leg__init(c);
                c->amount_units = l->amount_units;
                c->reason = l->reason;
                c->balance_after_units = l->balance_after_units;
                if (l->account) {
                        Sharebuy__Common__V1__AccountRef *a = sb_call_alloc(call, sizeof *a);
                        sharebuy__common__v1__account_ref__init(a);
                        a->asset = l->account->asset;
                        a->holder_case = l->account->holder_case;
                        if (a->holder_case == SHAREBUY__COMMON__V1__ACCOUNT_REF__HOLDER_OWNER && l->account->owner)
                                a->owner = owner_msg(call, (int) l->account->owner->kind, l->account->owner->id);
                        else if (a->holder_case == SHAREBUY__COMMON__V1__ACCOUNT_REF__HOLDER_SYSTEM)
                                a->system = l->account->system;
                        c->account = a;
                }
                out[i] = c;
        }
        *ret = out;
        *ret_n = n;
}

static Sharebuy__Merchant__V1__SaleSplit *split_msg(sb_call *call, const sale_row *x,
                                                    Sharebuy__Common__V1__LedgerLeg *const *legs, size_t n_legs) {
        Sharebuy__Merchant__V1__SaleSplit *p = sb_call_alloc(call, sizeof *p);
        sharebuy__merchant__v1__sale_split__init(p);
        p->spend_fen = x->spend_fen;
        p->concession_rate_bp = (int32_t) x->rate_bp;
        p->concession_micro_yuan = x->spend_fen * x->rate_bp; /* both bounded at input: fits */
        p->guide_price_micro_yuan = x->price_micro;
        p->member_cv_units = x->member_cv;
        p->member_cv_locked = !x->member_vip;
        p->merchant_cv_units = x->merchant_cv;
        p->deposit_sp_units = x->deposit_sp;
        p->referrer = owner_msg(call, x->ref_kind, x->ref_id);
        p->referrer_sp_units = x->ref_sp;
        p->referrer_cv_units = x->ref_cv;
        p->referrer_l2 = owner_msg(call, x->ref2_kind, x->ref2_id);
        p->referrer_l2_sp_units = x->ref2_sp;
        p->referrer_l2_cv_units = x->ref2_cv;
        p->merchant_referrer = owner_msg(call, x->mref_kind, x->mref_id);
        p->merchant_referrer_sp_units = x->mref_sp;
        p->centre_id = x->centre_id;
        p->centre_sp_units = x->centre_sp;
        p->parent_centre_id = x->parent_id;
        p->parent_centre_sp_units = x->parent_sp;
        p->burned_sp_units = x->burned_sp;
        if (legs)
                copy_legs(call, legs, n_legs, &p->legs, &p->n_legs);
        return p;
}

static Sharebuy__Common__V1__MemberBrief *member_msg(sb_call *call, const sale_row *x) {
        Sharebuy__Common__V1__MemberBrief *b = sb_call_alloc(call, sizeof *b);
        sharebuy__common__v1__member_brief__init(b);
        b->member_id = x->member_id;
        b->masked_phone = sb_call_strdup(call, x->member_masked);
        b->vip = x->member_vip;
        return b;
}

static Sharebuy__Merchant__V1__SaleReceipt *receipt_msg(sb_call *call, const sale_row *x, const char *merchant_name,
                                                        int deposit_level) {
        Sharebuy__Merchant__V1__SaleReceipt *r = sb_call_alloc(call, sizeof *r);
        sharebuy__merchant__v1__sale_receipt__init(r);
        r->sale_id = sb_call_strdup(call, x->sale_id);
        r->merchant_id = x->merchant_id;
        r->merchant_name = sb_call_strdup(call, merchant_name ? merchant_name : "");
        r->terminal_id = x->terminal_id;
        r->cashier_user_id = x->cashier_user_id;
        r->recorded_unix_ms = x->recorded_ms;
        r->business_day = sb_call_strdup(call, x->day);
        r->member = member_msg(call, x);
        r->spend_fen = x->spend_fen;
        r->concession_rate_bp = (int32_t) x->rate_bp;
        r->member_cv_units = x->member_cv;
        r->member_cv_locked = !x->member_vip;
        r->merchant_cv_units = x->merchant_cv;
        r->deposit_sp_units = x->deposit_sp;
        r->deposit_left_sp_units = x->deposit_left_sp;
        r->deposit_level = (Sharebuy__Merchant__V1__DepositLevel) deposit_level;
        r->guide_price_micro_yuan = x->price_micro;
        r->transaction_id = x->tx_id;
        return r;
}

static Sharebuy__Merchant__V1__Sale *sale_msg(sb_call *call, const sale_row *x, const char *merchant_name,
                                              int deposit_level, Sharebuy__Common__V1__LedgerLeg *const *legs,
                                              size_t n_legs) {
        Sharebuy__Merchant__V1__Sale *s = sb_call_alloc(call, sizeof *s);
        sharebuy__merchant__v1__sale__init(s);
        s->receipt = receipt_msg(call, x, merchant_name, deposit_level);
        s->split = split_msg(call, x, legs, n_legs);
        s->voided = x->void_state == MERCHANT_VOID_DONE;
        if (s->voided) {
                s->void_id = sb_call_strdup(call, x->void_id);
                s->voided_unix_ms = x->voided_ms;
                s->voided_by_user_id = x->voided_by;
                s->void_reason = sb_call_strdup(call, x->void_reason);
                s->void_transaction_id = x->void_tx_id;
        }
        s->captured_unix_ms = x->captured_ms;
        return s;
}

/* --- Legs --- */

typedef struct leg {
        bool system;
        int kind;
        uint64_t id;
        int sys;
        int asset;
        int64_t amount;
        int reason;
} leg;

/* Adds amount to the leg of that account, or appends one; a zero amount adds nothing (the wallet refuses legs of
 * 0, and an account may appear once per asset). */
static int leg_add(leg *legs, size_t *n, bool system, int kind, uint64_t id, int sys, int asset, int64_t amount,
                   int reason) {
        if (amount == 0)
                return 0;
        for (size_t i = 0; i < *n; i++) {
                leg *l = &legs[i];
                if (l->system == system && l->kind == kind && l->id == id && l->sys == sys && l->asset == asset)
                        return sb_add_i64(l->amount, amount, &l->amount);
        }
        if (*n == SALE_LEGS_MAX)
                return -E2BIG;
        legs[(*n)++] = (leg){system, kind, id, sys, asset, amount, reason};
        return 0;
}

enum {
        A_CV_LOCKED = SHAREBUY__COMMON__V1__ASSET__ASSET_CV_LOCKED,
        A_CV_ACTIVE = SHAREBUY__COMMON__V1__ASSET__ASSET_CV_ACTIVE,
        A_SP = SHAREBUY__COMMON__V1__ASSET__ASSET_SP,
        K_MEMBER = SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_MEMBER,
        K_MERCHANT = SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_MERCHANT,
        K_CENTRE = SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_CENTRE,
};

/* The legs of sale x (its split already computed). Returns 0 or a negative errno (overflow: a bug upstream). */
static int sale_legs(const sale_row *x, leg *legs, size_t *ret_n) {
        size_t n = 0;
        int r = 0;
        int64_t cv_total = 0;
        r |= leg_add(legs, &n, false, K_MEMBER, x->member_id, 0, x->member_vip ? A_CV_ACTIVE : A_CV_LOCKED,
                     x->member_cv, SHAREBUY__COMMON__V1__LEG_REASON__LEG_REASON_SALE_MEMBER_CV);
        r |= leg_add(legs, &n, false, K_MERCHANT, x->merchant_id, 0, A_CV_ACTIVE, x->merchant_cv,
                     SHAREBUY__COMMON__V1__LEG_REASON__LEG_REASON_SALE_MERCHANT_CV);
        r |= leg_add(legs, &n, false, x->ref_kind, x->ref_id, 0, A_CV_ACTIVE, x->ref_cv,
                     SHAREBUY__COMMON__V1__LEG_REASON__LEG_REASON_SALE_REFERRAL_CV);
        r |= leg_add(legs, &n, false, x->ref2_kind, x->ref2_id, 0, A_CV_ACTIVE, x->ref2_cv,
                     SHAREBUY__COMMON__V1__LEG_REASON__LEG_REASON_SALE_REFERRAL_L2_CV);
        r |= sb_add_i64(cv_total, x->member_cv, &cv_total);
        r |= sb_add_i64(cv_total, x->merchant_cv, &cv_total);
        r |= sb_add_i64(cv_total, x->ref_cv, &cv_total);
        r |= sb_add_i64(cv_total, x->ref2_cv, &cv_total);
        /* The CV is issued: its source is the system account CV_ISSUED. */
        r |= leg_add(legs, &n, true, 0, 0, SHAREBUY__COMMON__V1__SYSTEM_ACCOUNT__SYSTEM_ACCOUNT_CV_ISSUED, A_CV_ACTIVE,
                     -cv_total, SHAREBUY__COMMON__V1__LEG_REASON__LEG_REASON_SALE_MEMBER_CV);
        r |= leg_add(legs, &n, false, K_MERCHANT, x->merchant_id, 0, A_SP, -x->deposit_sp,
                     SHAREBUY__COMMON__V1__LEG_REASON__LEG_REASON_SALE_DEPOSIT);
        r |= leg_add(legs, &n, false, x->ref_kind, x->ref_id, 0, A_SP, x->ref_sp,
                     SHAREBUY__COMMON__V1__LEG_REASON__LEG_REASON_SALE_REFERRAL_SP);
        r |= leg_add(legs, &n, false, x->ref2_kind, x->ref2_id, 0, A_SP, x->ref2_sp,
                     SHAREBUY__COMMON__V1__LEG_REASON__LEG_REASON_SALE_REFERRAL_L2_SP);
        r |= leg_add(legs, &n, false, x->mref_kind, x->mref_id, 0, A_SP, x->mref_sp,
                     SHAREBUY__COMMON__V1__LEG_REASON__LEG_REASON_SALE_MERCHANT_REFERRAL_SP);
        r |= leg_add(legs, &n, false, K_CENTRE, x->centre_id, 0, A_SP, x->centre_sp,
                     SHAREBUY__COMMON__V1__LEG_REASON__LEG_REASON_SALE_CENTRE_SP);
        r |= leg_add(legs, &n, false, K_CENTRE, x->parent_id, 0, A_SP, x->parent_sp,
                     SHAREBUY__COMMON__V1__LEG_REASON__LEG_REASON_SALE_PARENT_CENTRE_SP);
        r |= leg_add(legs, &n, true, 0, 0, SHAREBUY__COMMON__V1__SYSTEM_ACCOUNT__SYSTEM_ACCOUNT_SP_BURNED, A_SP,
                     x->burned_sp, SHAREBUY__COMMON__V1__LEG_REASON__LEG_REASON_SALE_BURN);
        if (r)
                return -ERANGE;
        *ret_n = n;
        return 0;
}

/* The wallet request of sale x, its legs in the call's memory. */
static Sharebuy__Wallet__V1__PostTransactionRequest *post_request(sb_call *call, const sale_row *x, const leg *legs,
                                                                  size_t n) {
        Sharebuy__Wallet__V1__PostTransactionRequest *p = sb_call_alloc(call, sizeof *p);
        sharebuy__wallet__v1__post_transaction_request__init(p);
        p->idempotency_key = sb_call_alloc(call, WALLET_KEY_MAX + 1);
        wallet_key(p->idempotency_key, "sale", x->merchant_id, x->sale_id);
        Sharebuy__Common__V1__Cause *c = sb_call_alloc(call, sizeof *c);
        sharebuy__common__v1__cause__init(c);
        c->kind = SHAREBUY__COMMON__V1__CAUSE_KIND__CAUSE_KIND_SALE;
        c->reference = sb_call_strdup(call, x->sale_id);
        c->merchant_id = x->merchant_id;
        p->cause = c;
        p->legs = sb_call_alloc(call, sizeof *p->legs * (n ? n : 1));
        for (size_t i = 0; i < n; i++) {
                Sharebuy__Common__V1__LedgerLeg *l = sb_call_alloc(call, sizeof *l);
                sharebuy__common__v1__ledger_leg__init(l);
                Sharebuy__Common__V1__AccountRef *a = sb_call_alloc(call, sizeof *a);
                sharebuy__common__v1__account_ref__init(a);
                a->asset = (Sharebuy__Common__V1__Asset) legs[i].asset;
                if (legs[i].system) {
                        a->holder_case = SHAREBUY__COMMON__V1__ACCOUNT_REF__HOLDER_SYSTEM;
                        a->system = (Sharebuy__Common__V1__SystemAccount) legs[i].sys;
                } else {
                        a->holder_case = SHAREBUY__COMMON__V1__ACCOUNT_REF__HOLDER_OWNER;
                        a->owner = owner_msg(call, legs[i].kind, legs[i].id);
                }
                l->account = a;
                l->amount_units = legs[i].amount;
                l->reason = (Sharebuy__Common__V1__LegReason) legs[i].reason;
                p->legs[p->n_legs++] = l;
        }
        p->memo = sb_call_printf(call, "sale %s at merchant %" PRIu64 " terminal %" PRIu64, x->sale_id,
                                 x->merchant_id, x->terminal_id);
        return p;
}

/* The merchant's SP balance after a transaction, from its legs (-1 when no leg touched it). */
static int64_t deposit_after(const Sharebuy__Wallet__V1__Transaction *t, uint64_t merchant_id) {
        for (size_t i = 0; t && i < t->n_legs; i++) {
                const Sharebuy__Common__V1__LedgerLeg *l = t->legs[i];
                if (l->account && l->account->holder_case == SHAREBUY__COMMON__V1__ACCOUNT_REF__HOLDER_OWNER &&
                    l->account->owner && (int) l->account->owner->kind == K_MERCHANT &&
                    l->account->owner->id == merchant_id && (int) l->account->asset == A_SP)
                        return l->balance_after_units;
        }
        return -1;
}

/* --- Marks written behind ---------------------------------------------------------------------------------------
 *
 * A sale is complete once its transaction is posted: the pending row holds the exact request and the wallet the
 * transaction under the sale's key, so any later attempt finds both. The update to recorded (its transaction id and
 * the deposit left) is therefore written behind the answer (merchant.mark_behind): RecordSale queues it and answers;
 * one thread with its own connection takes what is queued, up to MERCHANT_SALE_GROUP_MAX at a time, and writes it
 * with the group statement of step 10. The answer no longer waits for that commit, and the updates of sales that
 * come close together are one statement.
 *
 * Readers (GetSale, ListSales, DaySummary, VoidSale) first wait for the marks queued before them
 * (merchant_marks_flush), so a sale this process answered is seen as recorded. When the process dies with marks
 * queued, their rows stay pending: a retry of the sale completes it as before, and for the sales no one retries (the
 * terminal holds its receipt) the thread sweeps: once at start, then every few seconds when it is idle (the sweep
 * age, kept between 1 and 5 s), it reads pending rows older than merchant.pending_sweep_age and asks the wallet
 * for each one's transaction by key; a posted one is marked recorded, an unposted one is left for the terminal's
 * retry. Counted by sharebuy_merchant_sales_swept_total. */

#define MARKS_SWEEP_BATCH 100 /* the LIMIT of the sweep's query */
#define MARKS_SWEEP_WINDOW_MS (INT64_C(3) * 24 * 3600 * 1000) /* rows older than this are not looked at again */

int merchant_marks_enqueue(merchant_state *st, const merchant_sale_mark *mark) {
        merchant_sale_mark *m = malloc(sizeof *m);
        if (!m)
                return -ENOMEM;
        *m = *mark;
        m->next = NULL;
        pthread_mutex_lock(&st->marks_mu);
        if (st->marks_tail)
                st->marks_tail->next = m;
        else
                st->marks_head = m;
        st->marks_tail = m;
        st->marks_queued++;
        pthread_cond_signal(&st->marks_cv);
        pthread_mutex_unlock(&st->marks_mu);
        return 0;
}

/* The time ms from now, on the clock of pthread_cond_timedwait(). */
static struct timespec deadline_after(int64_t ms) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += (time_t) (ms / 1000);
        until.tv_nsec += (long) (ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
        }
        return until;
}

bool merchant_marks_flush(merchant_state *st, int64_t timeout_ms) {
        if (!st->marks_started)
                return true;
        struct timespec until = deadline_after(timeout_ms);
        pthread_mutex_lock(&st->marks_mu);
        uint64_t want = st->marks_queued;
        int r = 0;
        while (st->marks_written < want && r == 0)
                r = pthread_cond_timedwait(&st->marks_written_cv, &st->marks_mu, &until);
        bool ok = st->marks_written >= want;
        pthread_mutex_unlock(&st->marks_mu);
        return ok;
}

static void pause_ms(int64_t ms) {
        struct timespec ts = {.tv_sec = (time_t) (ms / 1000), .tv_nsec = (long) (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
}

/* Writes n marks: one group statement, or each alone when the group fails (or n is 1). 0, or the first failure. */
static int marks_write(merchant_state *st, sb_db *db, merchant_sale_mark **v, size_t n) {
        if (n >= 2) {
                bool done[MERCHANT_SALE_GROUP_MAX] = {false};
                if (mark_group(st, db, (void *const *) v, n, done) >= 0)
                        return 0;
        }
        int first = 0;
        for (size_t i = 0; i < n; i++) {
                int r = sale_mark_recorded(db, v[i]);
                if (r < 0 && !first)
                        first = r;
        }
        return first;
}

/* Asks the wallet for the transaction of a pending sale: SB_OK with *ret (free it), NOT_FOUND when it was never
 * posted, or another status when the wallet did not answer. */
static sb_status sweep_lookup(uint64_t merchant_id, const char *sale_id, Sharebuy__Wallet__V1__Transaction **ret) {
        char path[128], key[WALLET_KEY_MAX + 1], msg[SB_RPC_MESSAGE_MAX];
        sb_rpc_client *c = sb_service_peer("wallet");
        if (!c ||
            sb_rpc_method_path(&sharebuy__wallet__v1__wallet__descriptor, "GetTransaction", path, sizeof path) < 0)
                return SB_UNAVAILABLE;
        wallet_key(key, "sale", merchant_id, sale_id);
        Sharebuy__Wallet__V1__GetTransactionRequest rq = SHAREBUY__WALLET__V1__GET_TRANSACTION_REQUEST__INIT;
        rq.key_case = SHAREBUY__WALLET__V1__GET_TRANSACTION_REQUEST__KEY_IDEMPOTENCY_KEY;
        rq.idempotency_key = key;
        sb_rpc_call_opts o = {.deadline_ms = 3000, .bearer = sb_service_token(), .request_id = "merchant-sweep"};
        return sb_rpc_client_call(c, path, &rq.base, &sharebuy__wallet__v1__transaction__descriptor, &o,
                                  (ProtobufCMessage **) ret, msg, sizeof msg);
}

/* One sweep: pending rows older than the sweep age whose transactions the wallet holds are marked recorded. */
static void marks_sweep(merchant_state *st, sb_db *db) {
        int64_t now = merchant_now_ms();
        sb_db_stmt *q;
        int r = sb_db_prepare(db,
                              "SELECT merchant_id, sale_id FROM sharebuy_merchant.sales WHERE state = 1 AND "
                              "recorded_ms BETWEEN ? AND ? ORDER BY state, recorded_ms LIMIT 100",
                              &q);
        if (r < 0)
                return;
        sb_db_bind_i64(q, 0, now - MARKS_SWEEP_WINDOW_MS);
        sb_db_bind_i64(q, 1, now - st->sweep_age_ms);
        if (sb_db_execute(q) < 0)
                return;
        merchant_sale_mark found[MARKS_SWEEP_BATCH] = {0};
        size_t n = 0;
        while ((r = sb_db_fetch(q)) > 0)
                if (n < MARKS_SWEEP_BATCH && sb_db_col_u64(q, 0, &found[n].merchant_id) >= 0 &&
                    sb_db_col_str(q, 1, found[n].sale_id, sizeof found[n].sale_id) >= 0)
                        n++;
        size_t marked = 0;
        for (size_t i = 0; i < n && !st->marks_stop; i++) {
                Sharebuy__Wallet__V1__Transaction *t = NULL;
                sb_status s = sweep_lookup(found[i].merchant_id, found[i].sale_id, &t);
                if (s != SB_OK) {
                        if (s != SB_NOT_FOUND)
                                break; /* the wallet is not answering: the next sweep tries again */
                        continue;      /* never posted: the terminal's retry completes or refuses it */
                }
                found[i].tx_id = t->transaction_id;
                found[i].deposit_left_sp = deposit_after(t, found[i].merchant_id);
                protobuf_c_message_free_unpacked(&t->base, NULL);
                if (sale_mark_recorded(db, &found[i]) >= 0) {
                        marked++;
                        sb_log_kv(SB_LOG_INFO, "sale_swept", "a posted sale left pending is recorded", "merchant_id",
                                  SB_LOG_INT((int64_t) found[i].merchant_id), "sale_id", SB_LOG_STR(found[i].sale_id),
                                  "tx_id", SB_LOG_INT((int64_t) found[i].tx_id), NULL);
                }
        }
        if (marked && st->m_swept)
                sb_metrics_series_add(st->m_swept, (int64_t) marked);
}

static void *marks_main(void *arg) {
        merchant_state *st = arg;
        sb_db *db = NULL;
        char err[256];
        int64_t next_sweep = 0; /* at once */
        pthread_mutex_lock(&st->marks_mu);
        for (;;) {
                while (!st->marks_head && !st->marks_stop) {
                        if (merchant_now_ms() >= next_sweep)
                                break;
                        struct timespec until = deadline_after(200);
                        pthread_cond_timedwait(&st->marks_cv, &st->marks_mu, &until);
                }
                if (!st->marks_head && st->marks_stop)
                        break;
                merchant_sale_mark *v[MERCHANT_SALE_GROUP_MAX];
                size_t n = 0;
                for (merchant_sale_mark *m = st->marks_head; m && n < MERCHANT_SALE_GROUP_MAX; m = m->next)
                        v[n++] = m;
                pthread_mutex_unlock(&st->marks_mu);
                if (!db && sb_db_open(sb_service_db_config(), &db, err, sizeof err) < 0) {
                        sb_log_kv(SB_LOG_ERROR, "marks", "cannot reach the database to record sales", "error",
                                  SB_LOG_STR(err), NULL);
                        db = NULL;
                        pause_ms(500);
                        pthread_mutex_lock(&st->marks_mu);
                        if (st->marks_stop)
                                break; /* what is queued stays pending: the sweep of the next start records it */
                        continue;
                }
                if (n == 0) {
                        marks_sweep(st, db);
                        int64_t every = st->sweep_every_ms;
                        next_sweep = merchant_now_ms() + every;
                        pthread_mutex_lock(&st->marks_mu);
                        continue;
                }
                if (st->test_delay_before_mark_ms > 0)
                        pause_ms(st->test_delay_before_mark_ms); /* tests: answered, not yet recorded */
                int r = marks_write(st, db, v, n);
                if (r < 0) {
                        sb_log_kv(SB_LOG_ERROR, "marks", "cannot record answered sales yet; retrying", "sales",
                                  SB_LOG_INT((int64_t) n), "error", SB_LOG_STR(sb_db_errmsg(db)), NULL);
                        pause_ms(200);
                        pthread_mutex_lock(&st->marks_mu);
                        if (st->marks_stop)
                                break;
                        continue; /* the same marks again: an update of a recorded row changes nothing */
                }
                pthread_mutex_lock(&st->marks_mu);
                for (size_t i = 0; i < n; i++) {
                        merchant_sale_mark *m = st->marks_head;
                        st->marks_head = m->next;
                        free(m);
                }
                if (!st->marks_head)
                        st->marks_tail = NULL;
                st->marks_written += n;
                pthread_cond_broadcast(&st->marks_written_cv);
        }
        /* Stopping with marks left unwritten (the database gone): they stay pending rows, swept at the next start. */
        while (st->marks_head) {
                merchant_sale_mark *m = st->marks_head;
                st->marks_head = m->next;
                free(m);
        }
        st->marks_tail = NULL;
        pthread_mutex_unlock(&st->marks_mu);
        sb_db_close(db);
        return NULL;
}

int merchant_marks_start(merchant_state *st) {
        pthread_mutex_init(&st->marks_mu, NULL);
        pthread_cond_init(&st->marks_cv, NULL);
        pthread_cond_init(&st->marks_written_cv, NULL);
        if (!st->marks_on)
                return 0;
        int r = pthread_create(&st->marks_thread, NULL, marks_main, st);
        if (r != 0)
                return -r;
        st->marks_started = true;
        return 0;
}

void merchant_marks_stop(merchant_state *st) {
        if (st->marks_started) {
                pthread_mutex_lock(&st->marks_mu);
                st->marks_stop = true;
                pthread_cond_broadcast(&st->marks_cv);
                pthread_mutex_unlock(&st->marks_mu);
                pthread_join(st->marks_thread, NULL);
                st->marks_started = false;
        }
        pthread_mutex_destroy(&st->marks_mu);
        pthread_cond_destroy(&st->marks_cv);
        pthread_cond_destroy(&st->marks_written_cv);
}

/* --- Preparing a sale: merchant, settings, deposit, member, centres, split --- */

typedef struct sale_prep {
        merchant_row m;
        merchant_settings set;
        char today[MERCHANT_DAY_LEN + 1];
        merchant_deposit dep;
        int32_t rate;
        sb_econ_sale split;
        bool deposit_sufficient;
        int64_t code_expires_ms;
        sale_row x; /* the split as stored, without ids of the sale itself */
} sale_prep;

static const char *static_reason(const char *r) {
        static const char *const known[] = {"REASON_MEMBER_CODE_FORGED", "REASON_MEMBER_CODE_EXPIRED",
                                            "REASON_MEMBER_CODE_USED", "REASON_MEMBER_UNKNOWN",
                                            "REASON_SCOPE_MISMATCH", "REASON_FIELD_INVALID"};
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
                if (!strcmp(r, known[i]))
                        return known[i];
        return NULL;
}

static sb_status spend_refused(sb_call *call, int64_t spend, int64_t max) {
        char a[SB_UNITS_FORMAT_MAX], b[SB_UNITS_FORMAT_MAX];
        sb_fen_format(spend, a, sizeof a);
        sb_fen_format(max, b, sizeof b);
        return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_SPEND_OUT_OF_RANGE",
                                   "spend %s yuan is outside 0.01..%s yuan", a, b);
}

/* Everything a quote or a sale needs before anything is posted. consume_key NULL: the code is only checked. With
 * refuse_insufficient the sale is refused when the deposit cannot cover it. */
static bool prepare(sb_call *call, const sb_claims *c, const merchant_row *known, const char *code, int64_t spend,
                    int64_t captured_ms, const char *consume_key, bool refuse_insufficient, sale_prep *p,
                    sb_status *ret) {
        sb_status st;
        sb_db *db = merchant_db(call, ret);
        if (!db)
                return false;
        int r = 0;
        if (known)
                p->m = *known;
        else
                r = merchant_load(db, c->merchant_id, &p->m);
        if (r == -ENOENT) {
                *ret = sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_MERCHANT_NOT_APPROVED",
                                           "merchant %" PRIu64 " is not approved", c->merchant_id);
                return false;
        }
        if (r < 0) {
                *ret = sb_service_db_fail(call, r, "reading the merchant");
                return false;
        }
        if (p->m.status == MERCHANT_SUSPENDED) {
                *ret = sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_MERCHANT_SUSPENDED",
                                           "merchant %" PRIu64 " is suspended: no sales until it is resumed (%s)",
                                           p->m.id, p->m.status_reason);
                return false;
        }
        if (p->m.status != MERCHANT_APPROVED) {
                *ret = sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_MERCHANT_NOT_APPROVED",
                                           "merchant %" PRIu64 " is not approved", p->m.id);
                return false;
        }
        merchant_today(call, p->today);
        merchant_state *ms = merchant_st(call);
        if (captured_ms) {
                char cday[MERCHANT_DAY_LEN + 1];
                if (merchant_business_day(captured_ms, ms->utc_offset_min, ms->cutoff_min, cday) < 0 ||
                    strcmp(cday, p->today) != 0) {
                        *ret = sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_SALE_CAPTURED_AFTER_CUTOFF",
                                                   "the sale was captured in business day %s; its cut-off has passed "
                                                   "(today is %s)",
                                                   cday, p->today);
                        return false;
                }
        }
        if (!merchant_settings_get(call, p->m.district, p->today, &p->set, ret))
                return false;
        if (spend > p->set.sale_max_spend_fen) {
                *ret = spend_refused(call, spend, p->set.sale_max_spend_fen);
                return false;
        }
        /* The deposit and price: the cached ones when fresh; a refusal is only ever made on a fresh answer. */
        bool cached = false;
        if (!merchant_deposit_cached(call, p->m.id, &p->dep, &cached, ret))
                return false;
        sb_econ_sale_in in = {.spend_fen = spend, .price_micro = p->dep.price_micro};
        sb_econ_sale pre;
        for (;;) {
                int64_t value = merchant_sp_value_fen(p->dep.sp_units, p->dep.price_micro);
                p->rate = merchant_rate_on(&p->m, p->today);
                /* What the deposit must give does not depend on the member: check it before the code is spent. */
                in.rate_bp = p->rate;
                in.price_micro = p->dep.price_micro;
                r = sb_econ_sale_split(&p->set.econ, &in, &pre);
                if (r == -EINVAL &&
                    (p->rate < p->set.econ.concession_min_bp || p->rate > p->set.econ.concession_max_bp)) {
                        *ret = sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_CONCESSION_RATE_OUT_OF_RANGE",
                                                   "the merchant's rate %d bp is outside the district's range today; "
                                                   "set a new one",
                                                   (int) p->rate);
                        return false;
                }
                if (r < 0) {
                        *ret = spend_refused(call, spend, p->set.sale_max_spend_fen);
                        return false;
                }
                p->deposit_sufficient = pre.sp_taken <= p->dep.sp_units;
                bool below = value < p->set.econ.deposit_min_fen;
                if ((below || (refuse_insufficient && !p->deposit_sufficient)) && cached) {
                        /* Never refuse on a cached deposit: it may be stale-low after a top-up. */
                        if (!merchant_deposit_get(call, p->m.id, &p->dep, ret))
                                return false;
                        cached = false;
                        continue;
                }
                if (below) {
                        char a[SB_UNITS_FORMAT_MAX], b[SB_UNITS_FORMAT_MAX], sp[SB_UNITS_FORMAT_MAX];
                        sb_fen_format(value, a, sizeof a);
                        sb_fen_format(p->set.econ.deposit_min_fen, b, sizeof b);
                        sb_units_format_fixed(p->dep.sp_units, sp, sizeof sp);
                        *ret = sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_DEPOSIT_BELOW_MINIMUM",
                                                   "the deposit holds %s SP worth %s yuan, below the minimum of %s "
                                                   "yuan; top it up before recording sales",
                                                   sp, a, b);
                        return false;
                }
                if (refuse_insufficient && !p->deposit_sufficient) {
                        char need[SB_UNITS_FORMAT_MAX], has[SB_UNITS_FORMAT_MAX];
                        sb_units_format_fixed(pre.sp_taken, need, sizeof need);
                        sb_units_format_fixed(p->dep.sp_units, has, sizeof has);
                        *ret = sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_DEPOSIT_INSUFFICIENT",
                                                   "the deposit holds %s SP, the sale needs %s SP", has, need);
                        return false;
                }
                break;
        }

        /* The member. */
        Sharebuy__Identity__V1__ResolveMemberCodeRequest rq = SHAREBUY__IDENTITY__V1__RESOLVE_MEMBER_CODE_REQUEST__INIT;
        rq.code = (char *) code;
        rq.consume_key = (char *) (consume_key ? consume_key : "");
        rq.merchant_id = p->m.id;
        rq.terminal_id = c->terminal_id;
        /* A queued sale's code counts as of its capture only within the district's offline grace (0 = none: the
         * code must be valid now, as for a live sale). */
        rq.captured_unix_ms =
                captured_ms > 0 && merchant_now_ms() - captured_ms <= p->set.offline_grace_ms ? captured_ms : 0;
        Sharebuy__Identity__V1__ResolveMemberCodeResponse *mr = NULL;
        char msg[SB_RPC_MESSAGE_MAX], reason[SB_RPC_REASON_MAX];
        st = merchant_peer(call, "identity", &sharebuy__identity__v1__identity__descriptor, "ResolveMemberCode", &rq,
                           &sharebuy__identity__v1__resolve_member_code_response__descriptor, (void **) &mr, msg,
                           sizeof msg, reason);
        if (st == SB_FAILED_PRECONDITION || st == SB_INVALID_ARGUMENT || st == SB_NOT_FOUND) {
                const char *sr = static_reason(reason);
                if (!sr)
                        sr = st == SB_NOT_FOUND ? "REASON_MEMBER_UNKNOWN" : "REASON_FIELD_INVALID";
                *ret = sb_call_fail_reason(call, st, sr, "member code: %s", msg);
                return false;
        }
        if (st != SB_OK) {
                *ret = merchant_peer_fail(call, "identity", "the member code", st, msg);
                return false;
        }
        sale_row *x = &p->x;
        memset(x, 0, offsetof(sale_row, post));
        if (!mr->member) {
                merchant_free(mr);
                *ret = merchant_peer_fail(call, "identity", "the member code", SB_INTERNAL, "no member in the answer");
                return false;
        }
        x->member_id = mr->member->member_id;
        snprintf(x->member_masked, sizeof x->member_masked, "%s", mr->member->masked_phone ? mr->member->masked_phone : "");
        x->member_vip = mr->member->vip;
        p->code_expires_ms = mr->code_expires_unix_ms;
        in.member_is_vip = x->member_vip;
        for (size_t i = 0; i < mr->n_referrers; i++) {
                const Sharebuy__Identity__V1__Referrer *rf = mr->referrers[i];
                if (!rf->owner)
                        continue;
                if (rf->level == 1) {
                        in.has_referrer = true;
                        in.referrer_is_vip = rf->vip;
                        x->ref_kind = (int) rf->owner->kind;
                        x->ref_id = rf->owner->id;
                } else if (rf->level == 2) {
                        in.has_referrer2 = true;
                        in.referrer2_is_vip = rf->vip;
                        x->ref2_kind = (int) rf->owner->kind;
                        x->ref2_id = rf->owner->id;
                }
        }
        merchant_free(mr);
        if (in.has_referrer2 && !in.has_referrer)
                in.has_referrer2 = false;

        /* The merchant's referrer: only a VIP member earns (a merchant never is VIP). VIP never ends, so a yes is
         * remembered. */
        if (p->m.referrer_kind == K_MEMBER) {
                in.has_merchant_referrer = true;
                in.merchant_referrer_is_vip = p->m.referrer_vip;
                if (!p->m.referrer_vip) {
                        Sharebuy__Identity__V1__GetMemberRequest gm = SHAREBUY__IDENTITY__V1__GET_MEMBER_REQUEST__INIT;
                        gm.key_case = SHAREBUY__IDENTITY__V1__GET_MEMBER_REQUEST__KEY_MEMBER_ID;
                        gm.member_id = p->m.referrer_id;
                        Sharebuy__Identity__V1__Member *mem = NULL;
                        st = merchant_peer(call, "identity", &sharebuy__identity__v1__identity__descriptor, "GetMember",
                                           &gm, &sharebuy__identity__v1__member__descriptor, (void **) &mem, msg,
                                           sizeof msg, NULL);
                        if (st == SB_OK) {
                                in.merchant_referrer_is_vip = mem->vip && !mem->disabled;
                                merchant_free(mem);
                                if (in.merchant_referrer_is_vip && (r = merchant_set_referrer_vip(db, p->m.id)) < 0) {
                                        *ret = sb_service_db_fail(call, r, "recording the referrer's VIP status");
                                        return false;
                                }
                        } else if (st != SB_NOT_FOUND) {
                                *ret = merchant_peer_fail(call, "identity", "the merchant's referrer", st, msg);
                                return false;
                        }
                }
        } else if (p->m.referrer_kind) {
                in.has_merchant_referrer = true;
                in.merchant_referrer_is_vip = false;
        }

        uint64_t centre = 0, parent = 0;
        if (!merchant_centres_get(call, p->m.district, &centre, &parent, ret))
                return false;
        in.has_centre = centre != 0;
        in.has_parent_centre = centre != 0 && parent != 0;

        r = sb_econ_sale_split(&p->set.econ, &in, &p->split);
        if (r < 0) {
                *ret = sb_call_fail(call, SB_INTERNAL, "the sale split failed (%d); request id %s", r,
                                    sb_call_request_id(call));
                return false;
        }
        const sb_econ_sale *s = &p->split;
        x->merchant_id = p->m.id;
        x->spend_fen = spend;
        x->rate_bp = p->rate;
        x->price_micro = p->dep.price_micro;
        x->member_cv = s->member_cv;
        x->merchant_cv = s->merchant_cv;
        x->deposit_sp = s->sp_taken;
        x->ref_sp = s->referrer_sp;
        x->ref_cv = s->referrer_cv;
        x->ref2_sp = s->referrer2_sp;
        x->ref2_cv = s->referrer2_cv;
        /* A party that gets nothing is not named (its share went to the burn). */
        if (!x->ref_sp && !x->ref_cv)
                x->ref_kind = 0, x->ref_id = 0;
        if (!x->ref2_sp && !x->ref2_cv)
                x->ref2_kind = 0, x->ref2_id = 0;
        x->mref_sp = s->merchant_referrer_sp;
        if (x->mref_sp) {
                x->mref_kind = p->m.referrer_kind;
                x->mref_id = p->m.referrer_id;
        }
        x->centre_id = centre;
        x->centre_sp = s->centre_sp;
        x->parent_id = in.has_parent_centre ? parent : 0;
        x->parent_sp = s->parent_centre_sp;
        x->burned_sp = s->burned_sp;
        x->day[0] = '\0';
        snprintf(x->day, sizeof x->day, "%s", p->today);
        return true;
}

static bool code_arg(sb_call *call, const char *code, sb_status *ret) {
        size_t n = code ? strlen(code) : 0;
        if (n == 0 || n > MERCHANT_CODE_MAX_BYTES) {
                *ret = sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                           "member_code: 1..512 characters required");
                return false;
        }
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) code[i] < 0x21 || (unsigned char) code[i] > 0x7e) {
                        *ret = sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                                   "member_code: printable ASCII only");
                        return false;
                }
        return true;
}

static bool spend_arg(sb_call *call, int64_t spend, sb_status *ret) {
        if (spend <= 0) {
                *ret = sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_SPEND_OUT_OF_RANGE",
                                           "spend_fen must be above 0");
                return false;
        }
        return true;
}

/* --- QuoteSale --- */

sb_status merchant_h_quote(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Merchant__V1__QuoteSaleRequest *req = (const void *) req_;
        Sharebuy__Merchant__V1__SaleQuote *resp = (void *) resp_;
        sb_claims c;
        sb_status st = sb_service_auth(call, SB_ROLES(SB_ROLE_CASHIER), &c);
        if (st != SB_OK)
                return st;
        if (!spend_arg(call, req->spend_fen, &st) || !code_arg(call, req->member_code, &st))
                return st;
        sale_prep *p = sb_call_alloc(call, sizeof *p);
        if (!prepare(call, &c, NULL, req->member_code, req->spend_fen, 0, NULL, false, p, &st))
                return st;
        sale_row *x = &p->x;
        x->terminal_id = c.terminal_id;
        x->cashier_user_id = c.uid;
        leg legs[SALE_LEGS_MAX];
        size_t n = 0;
        if (sale_legs(x, legs, &n) < 0)
                return sb_call_fail(call, SB_INTERNAL, "the legs overflowed; request id %s", sb_call_request_id(call));
        snprintf(x->sale_id, sizeof x->sale_id, "quote");
        Sharebuy__Wallet__V1__PostTransactionRequest *pr = post_request(call, x, legs, n);
        resp->member = member_msg(call, x);
        resp->split = split_msg(call, x, NULL, 0);
        resp->split->legs = pr->legs;
        resp->split->n_legs = pr->n_legs;
        resp->business_day = sb_call_strdup(call, p->today);
        resp->deposit_sp_units = p->dep.sp_units;
        resp->deposit_sufficient = p->deposit_sufficient;
        resp->deposit_after_sp_units = p->deposit_sufficient ? p->dep.sp_units - x->deposit_sp : p->dep.sp_units;
        resp->deposit_level_after = (Sharebuy__Merchant__V1__DepositLevel) merchant_deposit_level(
                &p->set, resp->deposit_after_sp_units, p->dep.price_micro);
        resp->code_expires_unix_ms = p->code_expires_ms;
        return SB_OK;
}

/* --- RecordSale --- */

static void code_hash(const char *code, uint8_t out[32]) {
        crypto_hash_sha256(out, (const unsigned char *) code, strlen(code));
}

/* The receipt's deposit level for a stored sale (settings of its day, cached). */
static int level_of(sb_call *call, const merchant_row *m, const sale_row *x, int64_t deposit_left) {
        merchant_settings set;
        sb_status ignored;
        /* A settings lookup that fails here must not fail a sale that is already recorded: the level is then
         * left unspecified. */
        if (!merchant_settings_get(call, m->district, x->day, &set, &ignored)) {
                sb_call_fail(call, SB_OK, "%s", "");
                return SHAREBUY__MERCHANT__V1__DEPOSIT_LEVEL__DEPOSIT_LEVEL_UNSPECIFIED;
        }
        return merchant_deposit_level(&set, deposit_left, x->price_micro);
}

/* The response for sale x; known is its merchant when the caller has it (NULL: read it). */
static sb_status record_response(sb_call *call, sb_db *db, const sale_row *x,
                                 Sharebuy__Common__V1__LedgerLeg *const *legs, size_t n_legs, bool replayed,
                                 const merchant_row *known, Sharebuy__Merchant__V1__RecordSaleResponse *resp) {
        merchant_row loaded;
        const merchant_row *m = known;
        if (!m) {
                int r = merchant_load(db, x->merchant_id, &loaded);
                if (r < 0)
                        return sb_service_db_fail(call, r, "reading the merchant");
                m = &loaded;
        }
        int level = level_of(call, m, x, x->deposit_left_sp);
        resp->receipt = receipt_msg(call, x, m->name, level);
        resp->split = split_msg(call, x, legs, n_legs);
        resp->replayed = replayed;
        return SB_OK;
}

/* The wallet's answer to a sale's posting, mapped for the caller. Definitive refusals come back with
 * *ret_definitive so that the pending row is removed (nothing was posted). */
static sb_status post_refused(sb_call *call, sb_status st, const char *msg, const char *reason, bool *ret_definitive) {
        *ret_definitive = false;
        if (st == SB_FAILED_PRECONDITION) {
                *ret_definitive = true;
                if (!strcmp(reason, "REASON_INSUFFICIENT_BALANCE"))
                        return sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_DEPOSIT_INSUFFICIENT",
                                                   "the deposit no longer covers the sale: %s", msg);
                return sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_UNSPECIFIED", "the wallet refused: %s",
                                           msg);
        }
        if (st == SB_INVALID_ARGUMENT || st == SB_NOT_FOUND || st == SB_ALREADY_EXISTS || st == SB_PERMISSION_DENIED) {
                *ret_definitive = true;
                return merchant_peer_fail(call, "wallet", "the sale's transaction", st, msg);
        }
        return sb_call_fail_reason(call, st == SB_DEADLINE_EXCEEDED ? SB_DEADLINE_EXCEEDED : SB_UNAVAILABLE,
                                   "REASON_DEPENDENCY_UNAVAILABLE",
                                   "the wallet did not confirm the sale (%s); retry with the same sale id", msg);
}

/* Posts the stored request of a pending sale and marks it recorded. */
static sb_status complete_pending(sb_call *call, sb_db *db, sale_row *x, bool replayed, const merchant_row *known,
                                  Sharebuy__Merchant__V1__RecordSaleResponse *resp) {
        Sharebuy__Wallet__V1__PostTransactionRequest *pr =
                sharebuy__wallet__v1__post_transaction_request__unpack(NULL, x->post_len, x->post);
        if (!pr)
                return sb_call_fail(call, SB_INTERNAL, "sale %s: its stored request cannot be read; request id %s",
                                    x->sale_id, sb_call_request_id(call));
        Sharebuy__Wallet__V1__PostTransactionResponse *tr = NULL;
        char msg[SB_RPC_MESSAGE_MAX], reason[SB_RPC_REASON_MAX];
        sb_status st = merchant_peer(call, "wallet", &sharebuy__wallet__v1__wallet__descriptor, "PostTransaction", pr,
                                     &sharebuy__wallet__v1__post_transaction_response__descriptor, (void **) &tr, msg,
                                     sizeof msg, reason);
        if (st != SB_OK) {
                protobuf_c_message_free_unpacked(&pr->base, NULL);
                bool definitive;
                sb_status out = post_refused(call, st, msg, reason, &definitive);
                if (definitive) {
                        int r = sale_delete_pending(db, x->merchant_id, x->sale_id);
                        if (r < 0)
                                return sb_service_db_fail(call, r, "removing the refused sale");
                }
                return out;
        }
        merchant_state *ms = merchant_st(call);
        if (ms->test_delay_after_post_ms > 0)
                pause_ms(ms->test_delay_after_post_ms); /* tests: a crash here leaves a posting and a pending row */
        x->tx_id = tr->transaction ? tr->transaction->transaction_id : 0;
        x->deposit_left_sp = deposit_after(tr->transaction, x->merchant_id);
        merchant_deposit_note(call, x->merchant_id, x->deposit_left_sp);
        merchant_sale_mark mk = {.merchant_id = x->merchant_id, .tx_id = x->tx_id,
                                 .deposit_left_sp = x->deposit_left_sp};
        snprintf(mk.sale_id, sizeof mk.sale_id, "%s", x->sale_id);
        /* Posted: the sale is complete whatever happens to the process now (a retry, or the sweep, finds the pending
         * row and the transaction). Written behind: the answer does not wait for the update's commit. */
        int r = ms->marks_on ? merchant_marks_enqueue(ms, &mk) : sb_batch_run(&ms->recorded_rows, db, &mk);
        if (r < 0) {
                merchant_free(tr);
                protobuf_c_message_free_unpacked(&pr->base, NULL);
                return sb_service_db_fail(call, r, "storing the sale (it is posted: retry with the same sale id)");
        }
        x->state = MERCHANT_SALE_RECORDED;
        st = record_response(call, db, x, pr->legs, pr->n_legs, replayed, known, resp);
        merchant_free(tr);
        protobuf_c_message_free_unpacked(&pr->base, NULL);
        return st;
}

/* A sale id seen before: the same sale replays (or completes), another is refused. */
static sb_status existing_sale(sb_call *call, sb_db *db, sale_row *x, const uint8_t hash[32], int64_t spend,
                               uint64_t terminal, const merchant_row *known,
                               Sharebuy__Merchant__V1__RecordSaleResponse *resp) {
        if (memcmp(x->code_hash, hash, 32) != 0 || x->spend_fen != spend || x->terminal_id != terminal)
                return sb_call_fail_reason(call, SB_ALREADY_EXISTS, "REASON_IDEMPOTENCY_KEY_REUSED",
                                           "sale id %s was used for a different sale", x->sale_id);
        if (x->state == MERCHANT_SALE_PENDING)
                return complete_pending(call, db, x, true, known, resp);
        Sharebuy__Wallet__V1__PostTransactionRequest *pr =
                sharebuy__wallet__v1__post_transaction_request__unpack(NULL, x->post_len, x->post);
        if (!pr)
                return sb_call_fail(call, SB_INTERNAL, "sale %s: its stored request cannot be read; request id %s",
                                    x->sale_id, sb_call_request_id(call));
        sb_status st = record_response(call, db, x, pr->legs, pr->n_legs, true, known, resp);
        protobuf_c_message_free_unpacked(&pr->base, NULL);
        return st;
}

sb_status merchant_h_record(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Merchant__V1__RecordSaleRequest *req = (const void *) req_;
        Sharebuy__Merchant__V1__RecordSaleResponse *resp = (void *) resp_;
        sb_claims c;
        sb_status st = sb_service_auth(call, SB_ROLES(SB_ROLE_CASHIER), &c);
        if (st != SB_OK)
                return st;
        if (!merchant_id_valid(req->sale_id))
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                           "sale_id: 1..64 of [A-Za-z0-9_-]");
        if (!spend_arg(call, req->spend_fen, &st) || !code_arg(call, req->member_code, &st))
                return st;
        int64_t now = merchant_now_ms();
        if (req->captured_unix_ms < 0 || req->captured_unix_ms > now + MERCHANT_CLOCK_SKEW_MS)
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                           "captured_unix_ms lies in the future");
        uint8_t hash[32];
        code_hash(req->member_code, hash);
        sb_db *db = merchant_db(call, &st);
        if (!db)
                return st;
        sale_row *x = sb_call_alloc(call, sizeof *x);
        merchant_row *m = sb_call_alloc(call, sizeof *m);
        bool found = false;
        int r = merchant_and_sale_load(db, c.merchant_id, req->sale_id, m, x, &found);
        if (r == -ENOENT)
                m = NULL; /* no such merchant: prepare() refuses the sale */
        else if (r < 0)
                return sb_service_db_fail(call, r, "reading the sale");
        else if (found)
                return existing_sale(call, db, x, hash, req->spend_fen, c.terminal_id, m, resp);

        char key[128];
        snprintf(key, sizeof key, "sale:%" PRIu64 ":%s", c.merchant_id, req->sale_id);
        sale_prep *p = sb_call_alloc(call, sizeof *p);
        if (!prepare(call, &c, m, req->member_code, req->spend_fen, req->captured_unix_ms, key, true, p, &st))
                return st;
        *x = p->x;
        snprintf(x->sale_id, sizeof x->sale_id, "%s", req->sale_id);
        x->terminal_id = c.terminal_id;
        x->cashier_user_id = c.uid;
        memcpy(x->code_hash, hash, 32);
        x->recorded_ms = now;
        x->captured_ms = req->captured_unix_ms;
        x->state = MERCHANT_SALE_PENDING;
        leg legs[SALE_LEGS_MAX];
        size_t n = 0;
        if (sale_legs(x, legs, &n) < 0)
                return sb_call_fail(call, SB_INTERNAL, "the legs overflowed; request id %s", sb_call_request_id(call));
        Sharebuy__Wallet__V1__PostTransactionRequest *pr = post_request(call, x, legs, n);
        size_t packed = protobuf_c_message_get_packed_size(&pr->base);
        if (packed > sizeof x->post)
                return sb_call_fail(call, SB_INTERNAL, "the sale's request is too large; request id %s",
                                    sb_call_request_id(call));
        x->post_len = protobuf_c_message_pack(&pr->base, x->post);

        /* The pending row first: from here on the sale can be completed by a retry, whatever happens. */
        r = sb_batch_run(&merchant_st(call)->pending_rows, db, x);
        if (r == -EEXIST) {
                /* A concurrent attempt with the same sale id got there first. */
                if ((r = sale_load(db, c.merchant_id, req->sale_id, x)) < 0)
                        return sb_service_db_fail(call, r, "reading the sale");
                return existing_sale(call, db, x, hash, req->spend_fen, c.terminal_id, m, resp);
        }
        if (r < 0)
                return sb_service_db_fail(call, r, "storing the sale");
        return complete_pending(call, db, x, false, &p->m, resp);
}

/* Before a reader of sales reads: the sales this process answered are written as recorded (marks written behind),
 * waiting at most 2 s or the call's deadline. When they cannot be written in that time (the database away) the
 * reader goes on and sees them as they are stored. */
static void readers_wait(sb_call *call) {
        int64_t left = sb_call_remaining_ms(call);
        (void) merchant_marks_flush(merchant_st(call), left < 2000 ? left : 2000);
}

/* --- VoidSale --- */

static int void_begin(sb_db *db, uint64_t merchant_id, const char *sale_id, const char *void_id, const char *reason,
                      uint64_t by) {
        sb_db_stmt *s;
        int r = sb_db_prepare(db,
                              "UPDATE sharebuy_merchant.sales SET void_id = ?, void_state = 1, void_reason = ?, "
                              "voided_by = ? WHERE merchant_id = ? AND sale_id = ? AND state = 2 AND void_state = 0",
                              &s);
        if (r < 0)
                return r;
        sb_db_bind_str(s, 0, void_id);
        sb_db_bind_str(s, 1, reason);
        sb_db_bind_u64(s, 2, by);
        sb_db_bind_u64(s, 3, merchant_id);
        sb_db_bind_str(s, 4, sale_id);
        if ((r = sb_db_execute(s)) < 0)
                return r;
        return sb_db_affected_rows(s) == 1 ? 0 : -ESTALE;
}

static int void_finish(sb_db *db, const sale_row *x, bool done) {
        sb_db_stmt *s;
        int r;
        if (done) {
                r = sb_db_prepare(db,
                                  "UPDATE sharebuy_merchant.sales SET void_state = 2, voided_ms = ?, void_tx_id = ?, "
                                  "void_deposit_left_sp = ? WHERE merchant_id = ? AND sale_id = ? AND void_state = 1",
                                  &s);
                if (r < 0)
                        return r;
                sb_db_bind_i64(s, 0, x->voided_ms);
                sb_db_bind_u64(s, 1, x->void_tx_id);
                sb_db_bind_i64(s, 2, x->void_deposit_left_sp);
                sb_db_bind_u64(s, 3, x->merchant_id);
                sb_db_bind_str(s, 4, x->sale_id);
        } else {
                r = sb_db_prepare(db,
                                  "UPDATE sharebuy_merchant.sales SET void_state = 0, void_id = NULL, void_reason = '', "
                                  "voided_by = 0 WHERE merchant_id = ? AND sale_id = ? AND void_state = 1",
                                  &s);
                if (r < 0)
                        return r;
                sb_db_bind_u64(s, 0, x->merchant_id);
                sb_db_bind_str(s, 1, x->sale_id);
        }
        return sb_db_execute(s);
}

static sb_status void_response(sb_call *call, sb_db *db, const sale_row *x, bool replayed,
                               Sharebuy__Merchant__V1__VoidSaleResponse *resp) {
        merchant_row m;
        int r = merchant_load(db, x->merchant_id, &m);
        if (r < 0)
                return sb_service_db_fail(call, r, "reading the merchant");
        resp->sale = sale_msg(call, x, m.name, level_of(call, &m, x, x->deposit_left_sp), NULL, 0);
        resp->deposit_left_sp_units = x->void_deposit_left_sp;
        resp->replayed = replayed;
        return SB_OK;
}

/* Posts the reversal of a sale whose void is pending, and records it. */
static sb_status void_post(sb_call *call, sb_db *db, sale_row *x, bool replayed,
                           Sharebuy__Merchant__V1__VoidSaleResponse *resp) {
        Sharebuy__Wallet__V1__ReverseTransactionRequest rq = SHAREBUY__WALLET__V1__REVERSE_TRANSACTION_REQUEST__INIT;
        char key[WALLET_KEY_MAX + 1], orig[WALLET_KEY_MAX + 1];
        wallet_key(key, "void", x->merchant_id, x->sale_id);
        wallet_key(orig, "sale", x->merchant_id, x->sale_id);
        rq.idempotency_key = key;
        rq.target_case = SHAREBUY__WALLET__V1__REVERSE_TRANSACTION_REQUEST__TARGET_ORIGINAL_IDEMPOTENCY_KEY;
        rq.original_idempotency_key = orig;
        Sharebuy__Common__V1__Cause cause = SHAREBUY__COMMON__V1__CAUSE__INIT;
        cause.kind = SHAREBUY__COMMON__V1__CAUSE_KIND__CAUSE_KIND_SALE_VOID;
        cause.reference = x->sale_id;
        cause.merchant_id = x->merchant_id;
        rq.cause = &cause;
        char why[4 * MERCHANT_REASON_MAX_CHARS + 16];
        snprintf(why, sizeof why, "%s", x->void_reason[0] ? x->void_reason : "sale voided at the till");
        rq.reason = why;
        Sharebuy__Wallet__V1__ReverseTransactionResponse *tr = NULL;
        char msg[SB_RPC_MESSAGE_MAX], reason[SB_RPC_REASON_MAX];
        sb_status st = merchant_peer(call, "wallet", &sharebuy__wallet__v1__wallet__descriptor, "ReverseTransaction",
                                     &rq, &sharebuy__wallet__v1__reverse_transaction_response__descriptor,
                                     (void **) &tr, msg, sizeof msg, reason);
        if (st == SB_FAILED_PRECONDITION) {
                /* Not posted: a party has spent what the void takes back (the message names it). */
                int r = void_finish(db, x, false);
                if (r < 0)
                        return sb_service_db_fail(call, r, "releasing the void");
                return sb_call_fail_reason(call, SB_FAILED_PRECONDITION,
                                           !strcmp(reason, "REASON_ALREADY_REVERSED") ? "REASON_SALE_ALREADY_VOIDED"
                                                                                      : "REASON_INSUFFICIENT_BALANCE",
                                           "the void cannot be posted: %s", msg);
        }
        if (st != SB_OK)
                return sb_call_fail_reason(call, st == SB_DEADLINE_EXCEEDED ? SB_DEADLINE_EXCEEDED : SB_UNAVAILABLE,
                                           "REASON_DEPENDENCY_UNAVAILABLE",
                                           "the wallet did not confirm the void (%s %s); retry with the same void id",
                                           sb_status_name((int) st), msg);
        x->void_tx_id = tr->transaction ? tr->transaction->transaction_id : 0;
        x->voided_ms = tr->transaction && tr->transaction->posted_unix_ms ? tr->transaction->posted_unix_ms
                                                                           : merchant_now_ms();
        x->void_deposit_left_sp = deposit_after(tr->transaction, x->merchant_id);
        merchant_free(tr);
        int r = void_finish(db, x, true);
        if (r < 0)
                return sb_service_db_fail(call, r, "storing the void (it is posted: retry with the same void id)");
        x->void_state = MERCHANT_VOID_DONE;
        return void_response(call, db, x, replayed, resp);
}

sb_status merchant_h_void(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Merchant__V1__VoidSaleRequest *req = (const void *) req_;
        Sharebuy__Merchant__V1__VoidSaleResponse *resp = (void *) resp_;
        sb_claims c;
        sb_status st = sb_service_auth(call, SB_ROLES(SB_ROLE_CASHIER) | SB_ROLES(SB_ROLE_MERCHANT_OWNER), &c);
        if (st != SB_OK)
                return st;
        if (!merchant_id_valid(req->sale_id) || !merchant_id_valid(req->void_id))
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                           "sale_id and void_id: 1..64 of [A-Za-z0-9_-]");
        if (!merchant_text_valid(req->reason, MERCHANT_REASON_MAX_CHARS, false))
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                           "reason: at most 200 characters of UTF-8 text");
        readers_wait(call);
        sb_db *db = merchant_db(call, &st);
        if (!db)
                return st;
        sale_row *x = sb_call_alloc(call, sizeof *x);
        int r = sale_load(db, c.merchant_id, req->sale_id, x);
        if (r == -ENOENT || (r == 0 && x->state != MERCHANT_SALE_RECORDED))
                return sb_call_fail_reason(call, SB_NOT_FOUND, "REASON_SALE_UNKNOWN",
                                           "no recorded sale %s at this merchant", req->sale_id);
        if (r < 0)
                return sb_service_db_fail(call, r, "reading the sale");
        if (x->void_state != MERCHANT_VOID_NONE) {
                if (strcmp(x->void_id, req->void_id) != 0)
                        return sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_SALE_ALREADY_VOIDED",
                                                   "sale %s is already voided (under another void id)", x->sale_id);
                if (x->void_state == MERCHANT_VOID_DONE)
                        return void_response(call, db, x, true, resp);
                return void_post(call, db, x, true, resp);
        }
        char today[MERCHANT_DAY_LEN + 1];
        merchant_today(call, today);
        if (strcmp(x->day, today) != 0)
                return sb_call_fail_reason(call, SB_FAILED_PRECONDITION, "REASON_VOID_AFTER_CUTOFF",
                                           "sale %s belongs to business day %s, whose cut-off has passed",
                                           x->sale_id, x->day);
        r = void_begin(db, c.merchant_id, x->sale_id, req->void_id, req->reason ? req->reason : "", c.uid);
        if (r == -EEXIST)
                return sb_call_fail_reason(call, SB_ALREADY_EXISTS, "REASON_IDEMPOTENCY_KEY_REUSED",
                                           "void id %s was used for another sale", req->void_id);
        if (r == -ESTALE)
                return sb_call_fail_reason(call, SB_ABORTED, "REASON_UNSPECIFIED",
                                           "sale %s changed meanwhile; retry", x->sale_id);
        if (r < 0)
                return sb_service_db_fail(call, r, "starting the void");
        snprintf(x->void_id, sizeof x->void_id, "%s", req->void_id);
        snprintf(x->void_reason, sizeof x->void_reason, "%s", req->reason ? req->reason : "");
        x->voided_by = c.uid;
        x->void_state = MERCHANT_VOID_PENDING;
        return void_post(call, db, x, false, resp);
}

/* --- Reading sales --- */

/* The merchant a reader may see: the token's for till roles (another id: *ret_other), the request's for admins and
 * services. */
static bool reader_merchant(sb_call *call, const sb_claims *c, uint64_t req_id, uint64_t *ret, bool *ret_other,
                            sb_status *st) {
        *ret_other = false;
        if (c->role == SB_ROLE_ADMIN || c->role == SB_ROLE_SERVICE) {
                if (!req_id) {
                        *st = sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                                  "merchant_id: required for an admin or service");
                        return false;
                }
                *ret = req_id;
                return true;
        }
        if (req_id && req_id != c->merchant_id)
                *ret_other = true;
        *ret = c->merchant_id;
        return true;
}

#define READER_ROLES                                                                                               \
        (SB_ROLES(SB_ROLE_CASHIER) | SB_ROLES(SB_ROLE_TERMINAL) | SB_ROLES(SB_ROLE_MERCHANT_OWNER) |              \
         SB_ROLES(SB_ROLE_ADMIN) | SB_ROLES(SB_ROLE_SERVICE))

sb_status merchant_h_get_sale(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Merchant__V1__GetSaleRequest *req = (const void *) req_;
        sb_claims c;
        sb_status st = sb_service_auth(call, READER_ROLES, &c);
        if (st != SB_OK)
                return st;
        uint64_t mid;
        bool other;
        if (!reader_merchant(call, &c, req->merchant_id, &mid, &other, &st))
                return st;
        if (!merchant_id_valid(req->sale_id))
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                           "sale_id: 1..64 of [A-Za-z0-9_-]");
        /* Another merchant's sale is not found: its existence is not revealed. */
        if (other)
                return sb_call_fail_reason(call, SB_NOT_FOUND, "REASON_SALE_UNKNOWN", "no sale %s at this merchant",
                                           req->sale_id);
        readers_wait(call);
        sb_db *db = merchant_db(call, &st);
        if (!db)
                return st;
        sale_row *x = sb_call_alloc(call, sizeof *x);
        int r = sale_load(db, mid, req->sale_id, x);
        if (r == -ENOENT || (r == 0 && x->state != MERCHANT_SALE_RECORDED))
                return sb_call_fail_reason(call, SB_NOT_FOUND, "REASON_SALE_UNKNOWN", "no sale %s at this merchant",
                                           req->sale_id);
        if (r < 0)
                return sb_service_db_fail(call, r, "reading the sale");
        merchant_row m;
        if ((r = merchant_load(db, mid, &m)) < 0)
                return sb_service_db_fail(call, r, "reading the merchant");
        Sharebuy__Wallet__V1__PostTransactionRequest *pr =
                sharebuy__wallet__v1__post_transaction_request__unpack(NULL, x->post_len, x->post);
        Sharebuy__Merchant__V1__Sale *s = sale_msg(call, x, m.name, level_of(call, &m, x, x->deposit_left_sp),
                                                   pr ? pr->legs : NULL, pr ? pr->n_legs : 0);
        if (pr)
                protobuf_c_message_free_unpacked(&pr->base, NULL);
        *(Sharebuy__Merchant__V1__Sale *) resp_ = *s;
        return SB_OK;
}

#define SALES_PAGE_DEFAULT 50
#define SALES_PAGE_MAX 500

static uint32_t filter_hash(uint64_t mid, const char *day, uint64_t terminal, bool excl) {
        uint32_t h = 2166136261u;
        char buf[80];
        int n = snprintf(buf, sizeof buf, "%" PRIu64 "|%s|%" PRIu64 "|%d", mid, day, terminal, excl ? 1 : 0);
        for (int i = 0; i < n; i++)
                h = (h ^ (uint8_t) buf[i]) * 16777619u;
        return h;
}

sb_status merchant_h_list_sales(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Merchant__V1__ListSalesRequest *req = (const void *) req_;
        Sharebuy__Merchant__V1__ListSalesResponse *resp = (void *) resp_;
        sb_claims c;
        sb_status st = sb_service_auth(call, READER_ROLES, &c);
        if (st != SB_OK)
                return st;
        uint64_t mid;
        bool other;
        if (!reader_merchant(call, &c, req->merchant_id, &mid, &other, &st))
                return st;
        if (other)
                return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_SCOPE_MISMATCH",
                                           "merchant %" PRIu64 " is not the caller's", req->merchant_id);
        const char *day = req->business_day ? req->business_day : "";
        if (*day && !merchant_day_valid(day))
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                           "business_day: \"YYYY-MM-DD\"");
        uint32_t size = req->page && req->page->page_size ? req->page->page_size : SALES_PAGE_DEFAULT;
        if (size > SALES_PAGE_MAX)
                size = SALES_PAGE_MAX;
        uint32_t fh = filter_hash(mid, day, req->terminal_id, req->exclude_voided);
        uint64_t before = UINT64_MAX;
        if (req->page && req->page->page_token && *req->page->page_token) {
                unsigned long long seq = 0;
                unsigned h = 0;
                char tail = 0;
                if (strlen(req->page->page_token) > MERCHANT_PAGE_TOKEN_MAX ||
                    sscanf(req->page->page_token, "s1.%llu.%x%c", &seq, &h, &tail) != 2 || h != fh || seq == 0)
                        return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_PAGE_TOKEN_INVALID",
                                                   "page_token: not one this RPC made with these filters");
                before = seq;
        }
        readers_wait(call);
        sb_db *db = merchant_db(call, &st);
        if (!db)
                return st;
        merchant_row m;
        int r = merchant_load(db, mid, &m);
        if (r == -ENOENT) {
                resp->page = sb_call_alloc(call, sizeof *resp->page);
                sharebuy__common__v1__page_info__init(resp->page);
                return SB_OK;
        }
        if (r < 0)
                return sb_service_db_fail(call, r, "reading the merchant");
        sb_db_stmt *s;
        r = sb_db_prepare(db,
                          "SELECT " SALE_COLUMNS " FROM sharebuy_merchant.sales WHERE merchant_id = ? AND seq < ? AND "
                          "state = 2 AND (? = '' OR business_day = ?) AND (? = 0 OR terminal_id = ?) AND "
                          "(? = 0 OR void_state <> 2) ORDER BY seq DESC LIMIT ?",
                          &s);
        if (r < 0)
                return sb_service_db_fail(call, r, "listing sales");
        sb_db_bind_u64(s, 0, mid);
        sb_db_bind_u64(s, 1, before);
        sb_db_bind_str(s, 2, day);
        sb_db_bind_str(s, 3, day);
        sb_db_bind_u64(s, 4, req->terminal_id);
        sb_db_bind_u64(s, 5, req->terminal_id);
        sb_db_bind_i64(s, 6, req->exclude_voided ? 1 : 0);
        sb_db_bind_i64(s, 7, (int64_t) size + 1);
        if ((r = sb_db_execute(s)) < 0)
                return sb_service_db_fail(call, r, "listing sales");
        resp->sales = sb_call_alloc(call, sizeof *resp->sales * (size + 1));
        uint64_t last = 0;
        bool more = false;
        sale_row *x = sb_call_alloc(call, sizeof *x);
        while ((r = sb_db_fetch(s)) > 0) {
                if (resp->n_sales == size) {
                        more = true;
                        continue;
                }
                if ((r = sale_read(s, x, false)) < 0)
                        break;
                /* Lists carry the split without its legs (GetSale has them). */
                resp->sales[resp->n_sales++] = sale_msg(call, x, m.name, 0, NULL, 0);
                last = x->seq;
        }
        if (r < 0)
                return sb_service_db_fail(call, r, "listing sales");
        resp->page = sb_call_alloc(call, sizeof *resp->page);
        sharebuy__common__v1__page_info__init(resp->page);
        resp->page->next_page_token = more ? sb_call_printf(call, "s1.%" PRIu64 ".%x", last, fh) : "";
        return SB_OK;
}

#define SUMMARY_TERMINALS_MAX 1000

sb_status merchant_h_day_summary(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Merchant__V1__DaySummaryRequest *req = (const void *) req_;
        Sharebuy__Merchant__V1__DaySummaryResponse *resp = (void *) resp_;
        sb_claims c;
        sb_status st = sb_service_auth(call,
                                       SB_ROLES(SB_ROLE_CASHIER) | SB_ROLES(SB_ROLE_TERMINAL) |
                                               SB_ROLES(SB_ROLE_MERCHANT_OWNER) | SB_ROLES(SB_ROLE_ADMIN),
                                       &c);
        if (st != SB_OK)
                return st;
        uint64_t mid;
        bool other;
        if (!reader_merchant(call, &c, req->merchant_id, &mid, &other, &st))
                return st;
        if (other)
                return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_SCOPE_MISMATCH",
                                           "merchant %" PRIu64 " is not the caller's", req->merchant_id);
        char day[MERCHANT_DAY_LEN + 1];
        if (req->business_day && *req->business_day) {
                if (!merchant_day_valid(req->business_day))
                        return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                                   "business_day: \"YYYY-MM-DD\"");
                snprintf(day, sizeof day, "%s", req->business_day);
        } else
                merchant_today(call, day);
        readers_wait(call);
        sb_db *db = merchant_db(call, &st);
        if (!db)
                return st;
        sb_db_stmt *s;
        int r = sb_db_prepare(
                db,
                "SELECT terminal_id, COUNT(*), SUM(void_state = 2), SUM(spend_fen), "
                "SUM(IF(void_state = 2, spend_fen, 0)), SUM(IF(void_state = 2, 0, member_cv)), "
                "SUM(IF(void_state = 2, 0, merchant_cv)), SUM(IF(void_state = 2, 0, deposit_sp)), MIN(recorded_ms), "
                "MAX(recorded_ms) FROM sharebuy_merchant.sales WHERE merchant_id = ? AND business_day = ? AND "
                "state = 2 AND (? = 0 OR terminal_id = ?) GROUP BY terminal_id ORDER BY terminal_id LIMIT ?",
                &s);
        if (r < 0)
                return sb_service_db_fail(call, r, "summing the day");
        sb_db_bind_u64(s, 0, mid);
        sb_db_bind_str(s, 1, day);
        sb_db_bind_u64(s, 2, req->terminal_id);
        sb_db_bind_u64(s, 3, req->terminal_id);
        sb_db_bind_i64(s, 4, SUMMARY_TERMINALS_MAX);
        if ((r = sb_db_execute(s)) < 0)
                return sb_service_db_fail(call, r, "summing the day");
        Sharebuy__Merchant__V1__SalesTotals *total = sb_call_alloc(call, sizeof *total);
        sharebuy__merchant__v1__sales_totals__init(total);
        resp->terminals = sb_call_alloc(call, sizeof *resp->terminals * SUMMARY_TERMINALS_MAX);
        int rr = 0;
        while ((r = sb_db_fetch(s)) > 0) {
                Sharebuy__Merchant__V1__TerminalSummary *t = sb_call_alloc(call, sizeof *t);
                sharebuy__merchant__v1__terminal_summary__init(t);
                Sharebuy__Merchant__V1__SalesTotals *o = sb_call_alloc(call, sizeof *o);
                sharebuy__merchant__v1__sales_totals__init(o);
                int64_t cnt = 0, voids = 0;
                rr |= sb_db_col_u64(s, 0, &t->terminal_id);
                rr |= sb_db_col_i64(s, 1, &cnt);
                rr |= sb_db_col_i64(s, 2, &voids);
                rr |= sb_db_col_i64(s, 3, &o->gross_spend_fen);
                rr |= sb_db_col_i64(s, 4, &o->void_spend_fen);
                rr |= sb_db_col_i64(s, 5, &o->net_member_cv_units);
                rr |= sb_db_col_i64(s, 6, &o->net_merchant_cv_units);
                rr |= sb_db_col_i64(s, 7, &o->net_deposit_sp_units);
                rr |= sb_db_col_i64(s, 8, &o->first_sale_unix_ms);
                rr |= sb_db_col_i64(s, 9, &o->last_sale_unix_ms);
                o->sale_count = (uint32_t) cnt;
                o->void_count = (uint32_t) voids;
                rr |= sb_sub_i64(o->gross_spend_fen, o->void_spend_fen, &o->net_spend_fen);
                t->totals = o;
                t->terminal_label = "";
                resp->terminals[resp->n_terminals++] = t;
                total->sale_count += o->sale_count;
                total->void_count += o->void_count;
                rr |= sb_add_i64(total->gross_spend_fen, o->gross_spend_fen, &total->gross_spend_fen);
                rr |= sb_add_i64(total->void_spend_fen, o->void_spend_fen, &total->void_spend_fen);
                rr |= sb_add_i64(total->net_spend_fen, o->net_spend_fen, &total->net_spend_fen);
                rr |= sb_add_i64(total->net_member_cv_units, o->net_member_cv_units, &total->net_member_cv_units);
                rr |= sb_add_i64(total->net_merchant_cv_units, o->net_merchant_cv_units,
                                 &total->net_merchant_cv_units);
                rr |= sb_add_i64(total->net_deposit_sp_units, o->net_deposit_sp_units, &total->net_deposit_sp_units);
                if (!total->first_sale_unix_ms || o->first_sale_unix_ms < total->first_sale_unix_ms)
                        total->first_sale_unix_ms = o->first_sale_unix_ms;
                if (o->last_sale_unix_ms > total->last_sale_unix_ms)
                        total->last_sale_unix_ms = o->last_sale_unix_ms;
        }
        if (r < 0)
                return sb_service_db_fail(call, r, "summing the day");
        if (rr)
                return sb_call_fail(call, SB_INTERNAL, "the day's sums do not fit; request id %s",
                                    sb_call_request_id(call));
        resp->merchant_id = mid;
        resp->business_day = sb_call_strdup(call, day);
        resp->total = total;
        merchant_state *ms = merchant_st(call);
        int64_t end = 0;
        merchant_business_day_end(day, ms->utc_offset_min, ms->cutoff_min, &end);
        resp->generated_unix_ms = merchant_now_ms();
        resp->closed = resp->generated_unix_ms >= end;
        /* The deposit now, when the wallet knows the merchant (best effort: the report stands without it). */
        merchant_deposit d;
        sb_status ignored;
        if (merchant_deposit_get(call, mid, &d, &ignored))
                resp->deposit_sp_units = d.sp_units;
        else
                sb_call_fail(call, SB_OK, "%s", "");
        return SB_OK;
}
