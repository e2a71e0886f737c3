/* PosCall: GTask async pairs over libposcore's blocking calls, so the window never waits on the network.
 *
 * Each pos_call_*_async() runs one pos_terminal call on a worker thread and calls back on the caller's main
 * context; pos_call_finish() returns the result (never NULL), which the caller owns (g_autoptr(PosCallResult)). */
#pragma once

#include <gio/gio.h>

#include "pos-terminal.h"

G_BEGIN_DECLS

typedef struct PosCallResult {
        sb_status status;             /* SB_OK or the failure (err has the details) */
        pos_error err;
        ProtobufCMessage *resp;       /* the response on SB_OK (NULL for calls without one) */
        pos_sell_outcome outcome;     /* pos_call_sell_async() */
        char sale_id[37];             /* pos_call_sell_async() */
        gsize sent, failed;           /* pos_call_replay_async() */
        gint64 elapsed_us;            /* time spent in the call, for the benchmark trace */
} PosCallResult;

void pos_call_result_free(PosCallResult *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PosCallResult, pos_call_result_free)

void pos_call_pair_async(pos_terminal *t, const char *code, const char *device_name, GCancellable *cancellable,
                         GAsyncReadyCallback callback, gpointer user_data);
void pos_call_sign_in_async(pos_terminal *t, const char *login, const char *password, GCancellable *cancellable,
                            GAsyncReadyCallback callback, gpointer user_data);
void pos_call_sign_out_async(pos_terminal *t, GCancellable *cancellable, GAsyncReadyCallback callback,
                             gpointer user_data);
void pos_call_quote_async(pos_terminal *t, const char *member_code, gint64 spend_fen, GCancellable *cancellable,
                          GAsyncReadyCallback callback, gpointer user_data);
void pos_call_sell_async(pos_terminal *t, const char *member_code, gint64 spend_fen, gboolean offline,
                         GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data);
void pos_call_void_async(pos_terminal *t, const char *sale_id, const char *reason, GCancellable *cancellable,
                         GAsyncReadyCallback callback, gpointer user_data);
void pos_call_replay_async(pos_terminal *t, GCancellable *cancellable, GAsyncReadyCallback callback,
                           gpointer user_data);
void pos_call_list_sales_async(pos_terminal *t, const char *business_day, GCancellable *cancellable,
                               GAsyncReadyCallback callback, gpointer user_data);
void pos_call_day_summary_async(pos_terminal *t, const char *business_day, GCancellable *cancellable,
                                GAsyncReadyCallback callback, gpointer user_data);
void pos_call_deposit_async(pos_terminal *t, GCancellable *cancellable, GAsyncReadyCallback callback,
                            gpointer user_data);
void pos_call_member_card_async(pos_terminal *t, const char *phone, const char *password, guint ttl_seconds,
                                GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data);

/* The result of any of the above. */
PosCallResult *pos_call_finish(GAsyncResult *result);

G_END_DECLS
