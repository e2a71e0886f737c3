/* PosCall: see pos-call.h. */
#include "pos-call.h"

typedef enum {
        OP_PAIR,
        OP_SIGN_IN,
        OP_SIGN_OUT,
        OP_QUOTE,
        OP_SELL,
        OP_VOID,
        OP_REPLAY,
        OP_LIST_SALES,
        OP_DAY_SUMMARY,
        OP_DEPOSIT,
        OP_MEMBER_CARD,
} PosCallOp;

typedef struct {
        PosCallOp op;
        pos_terminal *terminal;
        char *s1, *s2;
        gint64 n;
        gboolean flag;
} PosCallArgs;

static void pos_call_args_free(PosCallArgs *a) {
        g_free(a->s1);
        if (a->s2) {
                /* Passwords pass through here: wipe them. */
                explicit_bzero(a->s2, strlen(a->s2));
                g_free(a->s2);
        }
        g_free(a);
}

void pos_call_result_free(PosCallResult *r) {
        if (!r)
                return;
        if (r->resp)
                protobuf_c_message_free_unpacked(r->resp, NULL);
        g_free(r);
}

static void pos_call_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable) {
        PosCallArgs *a = task_data;
        PosCallResult *r = g_new0(PosCallResult, 1);
        gint64 t0 = g_get_monotonic_time();
        pos_error_clear(&r->err);
        switch (a->op) {
        case OP_PAIR:
                r->status = pos_terminal_pair(a->terminal, a->s1, a->s2, &r->err);
                break;
        case OP_SIGN_IN:
                r->status = pos_terminal_sign_in(a->terminal, a->s1, a->s2, &r->err);
                break;
        case OP_SIGN_OUT:
                pos_terminal_sign_out(a->terminal);
                r->status = SB_OK;
                break;
        case OP_QUOTE:
                r->status = pos_terminal_quote(a->terminal, a->s1, a->n, (Sharebuy__Merchant__V1__SaleQuote **) &r->resp,
                                               &r->err);
                break;
        case OP_SELL:
                r->outcome = pos_terminal_sell(a->terminal, a->s1, a->n, a->flag, r->sale_id,
                                               (Sharebuy__Merchant__V1__RecordSaleResponse **) &r->resp, &r->err);
                r->status = r->outcome == POS_SELL_RECORDED ? SB_OK : r->err.status;
                break;
        case OP_VOID:
                r->status = pos_terminal_void(a->terminal, a->s1, a->s2, (Sharebuy__Merchant__V1__VoidSaleResponse **) &r->resp,
                                              &r->err);
                break;
        case OP_REPLAY:
                r->status = pos_terminal_replay(a->terminal, &r->sent, &r->failed, &r->err);
                break;
        case OP_LIST_SALES:
                r->status = pos_terminal_list_sales(a->terminal, a->s1, 200,
                                                    (Sharebuy__Merchant__V1__ListSalesResponse **) &r->resp, &r->err);
                break;
        case OP_DAY_SUMMARY:
                r->status = pos_terminal_day_summary(a->terminal, a->s1,
                                                     (Sharebuy__Merchant__V1__DaySummaryResponse **) &r->resp, &r->err);
                break;
        case OP_DEPOSIT:
                r->status = pos_terminal_deposit(a->terminal, (Sharebuy__Merchant__V1__DepositStatus **) &r->resp, &r->err);
                break;
        case OP_MEMBER_CARD:
                r->status = pos_terminal_member_card(a->terminal, a->s1, a->s2, (uint32_t) a->n,
                                                     (Sharebuy__Identity__V1__IssueMemberCodeResponse **) &r->resp,
                                                     &r->err);
                break;
        }
        r->elapsed_us = g_get_monotonic_time() - t0;
        g_task_return_pointer(task, r, (GDestroyNotify) pos_call_result_free);
}

static void pos_call_start(PosCallArgs *a, GCancellable *cancellable, GAsyncReadyCallback callback,
                           gpointer user_data, const char *name) {
        g_autoptr(GTask) task = g_task_new(NULL, cancellable, callback, user_data);
        g_task_set_name(task, name);
        g_task_set_task_data(task, a, (GDestroyNotify) pos_call_args_free);
        /* The result is delivered even if the caller cancels meanwhile: a sale's outcome must never be lost. */
        g_task_set_check_cancellable(task, FALSE);
        g_task_run_in_thread(task, pos_call_thread);
}

static PosCallArgs *pos_call_args(PosCallOp op, pos_terminal *t, const char *s1, const char *s2, gint64 n) {
        g_return_val_if_fail(t != NULL, NULL);
        PosCallArgs *a = g_new0(PosCallArgs, 1);
        a->op = op;
        a->terminal = t;
        a->s1 = g_strdup(s1);
        a->s2 = g_strdup(s2);
        a->n = n;
        return a;
}

void pos_call_pair_async(pos_terminal *t, const char *code, const char *device_name, GCancellable *c,
                         GAsyncReadyCallback cb, gpointer ud) {
        pos_call_start(pos_call_args(OP_PAIR, t, code, device_name, 0), c, cb, ud, "pos_call_pair_async");
}

void pos_call_sign_in_async(pos_terminal *t, const char *login, const char *password, GCancellable *c,
                            GAsyncReadyCallback cb, gpointer ud) {
        pos_call_start(pos_call_args(OP_SIGN_IN, t, login, password, 0), c, cb, ud, "pos_call_sign_in_async");
}

void pos_call_sign_out_async(pos_terminal *t, GCancellable *c, GAsyncReadyCallback cb, gpointer ud) {
        pos_call_start(pos_call_args(OP_SIGN_OUT, t, NULL, NULL, 0), c, cb, ud, "pos_call_sign_out_async");
}

void pos_call_quote_async(pos_terminal *t, const char *member_code, gint64 spend_fen, GCancellable *c,
                          GAsyncReadyCallback cb, gpointer ud) {
        pos_call_start(pos_call_args(OP_QUOTE, t, member_code, NULL, spend_fen), c, cb, ud, "pos_call_quote_async");
}

void pos_call_sell_async(pos_terminal *t, const char *member_code, gint64 spend_fen, gboolean offline,
                         GCancellable *c, GAsyncReadyCallback cb, gpointer ud) {
        PosCallArgs *a = pos_call_args(OP_SELL, t, member_code, NULL, spend_fen);
        a->flag = offline;
        pos_call_start(a, c, cb, ud, "pos_call_sell_async");
}

void pos_call_void_async(pos_terminal *t, const char *sale_id, const char *reason, GCancellable *c,
                         GAsyncReadyCallback cb, gpointer ud) {
        pos_call_start(pos_call_args(OP_VOID, t, sale_id, reason, 0), c, cb, ud, "pos_call_void_async");
}

void pos_call_replay_async(pos_terminal *t, GCancellable *c, GAsyncReadyCallback cb, gpointer ud) {
        pos_call_start(pos_call_args(OP_REPLAY, t, NULL, NULL, 0), c, cb, ud, "pos_call_replay_async");
}

void pos_call_list_sales_async(pos_terminal *t, const char *business_day, GCancellable *c, GAsyncReadyCallback cb,
                               gpointer ud) {
        pos_call_start(pos_call_args(OP_LIST_SALES, t, business_day, NULL, 0), c, cb, ud, "pos_call_list_sales_async");
}

void pos_call_day_summary_async(pos_terminal *t, const char *business_day, GCancellable *c, GAsyncReadyCallback cb,
                                gpointer ud) {
        pos_call_start(pos_call_args(OP_DAY_SUMMARY, t, business_day, NULL, 0), c, cb, ud, "pos_call_day_summary_async");
}

void pos_call_deposit_async(pos_terminal *t, GCancellable *c, GAsyncReadyCallback cb, gpointer ud) {
        pos_call_start(pos_call_args(OP_DEPOSIT, t, NULL, NULL, 0), c, cb, ud, "pos_call_deposit_async");
}

void pos_call_member_card_async(pos_terminal *t, const char *phone, const char *password, guint ttl_seconds,
                                GCancellable *c, GAsyncReadyCallback cb, gpointer ud) {
        pos_call_start(pos_call_args(OP_MEMBER_CARD, t, phone, password, ttl_seconds), c, cb, ud, "pos_call_member_card_async");
}

PosCallResult *pos_call_finish(GAsyncResult *result) {
        g_return_val_if_fail(G_IS_TASK(result), NULL);
        PosCallResult *r = g_task_propagate_pointer(G_TASK(result), NULL);
        g_assert(r != NULL);
        return r;
}
