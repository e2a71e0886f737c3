/* PosDayView: see pos-day-view.h. */
#include "pos-day-view.h"

#include <adwaita.h>
#include <glib/gi18n.h>

#include "pos-call.h"
#include "pos-money.h"
#include "pos-receipt.h"

struct _PosDayView {
        GtkWidget parent_instance;
        pos_terminal *terminal;
        GCancellable *cancellable;
        PosReceipt *z_receipt;
        GtkLabel *list_error;
        GtkListBox *list;
        GtkLabel *z_text;
};

G_DEFINE_FINAL_TYPE(PosDayView, pos_day_view, GTK_TYPE_WIDGET)

static void add_row(PosDayView *self, const char *time, const char *member, gint64 spend_fen, const char *status,
                    const char *css, const char *void_sale_id);

static char *hhmm(gint64 unix_ms) {
        g_autoptr(GDateTime) dt = g_date_time_new_from_unix_local(unix_ms / 1000);
        return dt ? g_date_time_format(dt, "%H:%M:%S") : g_strdup("?");
}

static void clear_list(PosDayView *self) {
        GtkWidget *child;
        while ((child = gtk_widget_get_first_child(GTK_WIDGET(self->list))))
                gtk_list_box_remove(self->list, child);
}

static void add_journal_rows(PosDayView *self) {
        pos_journal_sale *sales = NULL;
        size_t n = 0;
        if (pos_terminal_journal_sales(self->terminal, &sales, &n) < 0)
                return;
        g_autoptr(GDateTime) now = g_date_time_new_now_local();
        g_autofree char *today = g_date_time_format(now, "%Y-%m-%d");
        /* Newest first, as the server's list; only what the server does not know yet or refused. */
        for (size_t i = n; i > 0; i--) {
                const pos_journal_sale *s = &sales[i - 1];
                if (s->status == POS_SALE_SENT)
                        continue;
                g_autoptr(GDateTime) dt = g_date_time_new_from_unix_local(s->captured_unix_ms / 1000);
                g_autofree char *day = dt ? g_date_time_format(dt, "%Y-%m-%d") : NULL;
                if (s->status == POS_SALE_FAILED && g_strcmp0(day, today) != 0)
                        continue;
                g_autofree char *t = hhmm(s->captured_unix_ms);
                if (s->status == POS_SALE_QUEUED) {
                        add_row(self, t, "—", s->spend_fen, _("Waiting to be sent"), "warning", NULL);
                } else {
                        pos_error e;
                        pos_error_set(&e, SB_FAILED_PRECONDITION, s->reason, NULL);
                        g_autofree char *st = g_strdup_printf(_("Refused: %s"), pos_error_text(&e));
                        add_row(self, t, "—", s->spend_fen, st, "error", NULL);
                }
        }
        free(sales);
}

static void on_voided(GObject *source, GAsyncResult *result, gpointer user_data) {
        g_autoptr(PosDayView) self = user_data;
        g_autoptr(PosCallResult) r = pos_call_finish(result);
        if (!self->cancellable)
                return;
        if (r->status != SB_OK) {
                gtk_label_set_text(self->list_error, pos_error_text(&r->err));
                gtk_widget_set_visible(GTK_WIDGET(self->list_error), TRUE);
        }
        pos_day_view_refresh(self);
}

static void on_void_response(AdwMessageDialog *dialog, const char *response, gpointer user_data) {
        GtkWidget *button = user_data;
        PosDayView *self = POS_DAY_VIEW(gtk_widget_get_ancestor(button, POS_TYPE_DAY_VIEW));
        if (self && g_str_equal(response, "void")) {
                const char *id = g_object_get_data(G_OBJECT(button), "pos-sale-id");
                gtk_widget_set_sensitive(button, FALSE);
                pos_call_void_async(self->terminal, id, "voided from the day list", self->cancellable, on_voided,
                                    g_object_ref(self));
        }
        g_object_unref(button);
}

static void on_row_void(GtkButton *button, gpointer user_data) {
        GtkWindow *parent = GTK_WINDOW(gtk_widget_get_native(GTK_WIDGET(button)));
        GtkWidget *d = adw_message_dialog_new(parent, _("Void this sale?"),
                                              _("Every point of the sale is given back: the member's CV and the deposit's SP. This cannot be undone."));
        gtk_widget_set_name(d, "void-dialog");
        adw_message_dialog_add_responses(ADW_MESSAGE_DIALOG(d), "cancel", _("_Keep the sale"), "void", _("_Void"), NULL);
        adw_message_dialog_set_response_appearance(ADW_MESSAGE_DIALOG(d), "void", ADW_RESPONSE_DESTRUCTIVE);
        adw_message_dialog_set_default_response(ADW_MESSAGE_DIALOG(d), "cancel");
        adw_message_dialog_set_close_response(ADW_MESSAGE_DIALOG(d), "cancel");
        g_signal_connect(d, "response", G_CALLBACK(on_void_response), g_object_ref(button));
        gtk_window_present(GTK_WINDOW(d));
}

static void add_row(PosDayView *self, const char *time, const char *member, gint64 spend_fen, const char *status,
                    const char *css, const char *void_sale_id) {
        GtkWidget *box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 16);
        gtk_widget_set_margin_top(box, 6);
        gtk_widget_set_margin_bottom(box, 6);
        gtk_widget_set_margin_start(box, 12);
        gtk_widget_set_margin_end(box, 12);
        char amount[40];
        pos_format_yuan(spend_fen, amount, sizeof amount);
        const char *cols[] = { time, member, amount };
        for (size_t i = 0; i < 3; i++) {
                GtkWidget *l = gtk_label_new(cols[i]);
                gtk_label_set_xalign(GTK_LABEL(l), i == 2 ? 1 : 0);
                gtk_widget_set_size_request(l, i == 1 ? 130 : 90, -1);
                gtk_box_append(GTK_BOX(box), l);
        }
        GtkWidget *st = gtk_label_new(status);
        gtk_label_set_xalign(GTK_LABEL(st), 0);
        gtk_label_set_wrap(GTK_LABEL(st), TRUE);
        gtk_widget_set_hexpand(st, TRUE);
        if (css)
                gtk_widget_add_css_class(st, css);
        gtk_box_append(GTK_BOX(box), st);
        if (void_sale_id) {
                GtkWidget *b = gtk_button_new_with_label(_("Void"));
                gtk_widget_add_css_class(b, "destructive-action");
                g_object_set_data_full(G_OBJECT(b), "pos-sale-id", g_strdup(void_sale_id), g_free);
                g_signal_connect(b, "clicked", G_CALLBACK(on_row_void), NULL);
                gtk_box_append(GTK_BOX(box), b);
        }
        gtk_list_box_append(self->list, box);
}

static void on_sales(GObject *source, GAsyncResult *result, gpointer user_data) {
        g_autoptr(PosDayView) self = user_data;
        g_autoptr(PosCallResult) r = pos_call_finish(result);
        if (!self->cancellable)
                return;
        clear_list(self);
        add_journal_rows(self);
        if (r->status != SB_OK) {
                gtk_label_set_text(self->list_error, pos_error_text(&r->err));
                gtk_widget_set_visible(GTK_WIDGET(self->list_error), TRUE);
                return;
        }
        const Sharebuy__Merchant__V1__ListSalesResponse *ls = (const void *) r->resp;
        for (size_t i = 0; i < ls->n_sales; i++) {
                const Sharebuy__Merchant__V1__Sale *s = ls->sales[i];
                if (!s->receipt)
                        continue;
                g_autofree char *t = hhmm(s->receipt->recorded_unix_ms);
                char cv[40];
                pos_format_units(s->receipt->member_cv_units, cv, sizeof cv);
                g_autofree char *st = s->voided ? g_strdup(_("Voided"))
                                                : g_strdup_printf(_("Recorded · +%s CV%s"), cv,
                                                                  s->captured_unix_ms ? _(" · sent from offline") : "");
                add_row(self, t, s->receipt->member ? s->receipt->member->masked_phone : "", s->receipt->spend_fen, st,
                        s->voided ? "dim-label" : NULL, s->voided ? NULL : s->receipt->sale_id);
        }
        if (!gtk_widget_get_first_child(GTK_WIDGET(self->list)))
                add_row(self, "", _("No sales yet today."), 0, "", "dim-label", NULL);
}

static void on_summary(GObject *source, GAsyncResult *result, gpointer user_data) {
        g_autoptr(PosDayView) self = user_data;
        g_autoptr(PosCallResult) r = pos_call_finish(result);
        if (!self->cancellable)
                return;
        g_clear_pointer(&self->z_receipt, pos_receipt_free);
        if (r->status != SB_OK) {
                gtk_label_set_text(self->z_text, pos_error_text(&r->err));
                return;
        }
        pos_state st;
        pos_terminal_get_state(self->terminal, &st);
        self->z_receipt = pos_receipt_new_summary(st.merchant_name, (const void *) r->resp);
        g_autofree char *text = pos_receipt_to_text(self->z_receipt);
        gtk_label_set_text(self->z_text, text);
}

void pos_day_view_refresh(PosDayView *self) {
        g_return_if_fail(POS_IS_DAY_VIEW(self));
        gtk_widget_set_visible(GTK_WIDGET(self->list_error), FALSE);
        /* "" asks the server for its own business day, which ends at the cut-off, not at midnight. */
        pos_call_list_sales_async(self->terminal, "", self->cancellable, on_sales, g_object_ref(self));
        pos_call_day_summary_async(self->terminal, "", self->cancellable, on_summary, g_object_ref(self));
}

static void on_print_z(PosDayView *self) {
        if (self->z_receipt)
                pos_receipt_print(self->z_receipt, GTK_WINDOW(gtk_widget_get_native(GTK_WIDGET(self))));
}

static void pos_day_view_dispose(GObject *object) {
        PosDayView *self = POS_DAY_VIEW(object);
        g_cancellable_cancel(self->cancellable);
        g_clear_object(&self->cancellable);
        g_clear_pointer(&self->z_receipt, pos_receipt_free);
        gtk_widget_dispose_template(GTK_WIDGET(self), POS_TYPE_DAY_VIEW);
        G_OBJECT_CLASS(pos_day_view_parent_class)->dispose(object);
}

static void pos_day_view_class_init(PosDayViewClass *klass) {
        GObjectClass *object_class = G_OBJECT_CLASS(klass);
        GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
        object_class->dispose = pos_day_view_dispose;
        gtk_widget_class_set_layout_manager_type(widget_class, GTK_TYPE_BIN_LAYOUT);
        gtk_widget_class_set_template_from_resource(widget_class, "/cn/sharebuy/Pos/pos-day-view.ui");
        gtk_widget_class_bind_template_child(widget_class, PosDayView, list_error);
        gtk_widget_class_bind_template_child(widget_class, PosDayView, list);
        gtk_widget_class_bind_template_child(widget_class, PosDayView, z_text);
        gtk_widget_class_bind_template_callback(widget_class, pos_day_view_refresh);
        gtk_widget_class_bind_template_callback(widget_class, on_print_z);
}

static void pos_day_view_init(PosDayView *self) {
        gtk_widget_init_template(GTK_WIDGET(self));
        self->cancellable = g_cancellable_new();
}

PosDayView *pos_day_view_new(pos_terminal *terminal) {
        g_return_val_if_fail(terminal != NULL, NULL);
        PosDayView *self = g_object_new(POS_TYPE_DAY_VIEW, NULL);
        self->terminal = terminal;
        return self;
}
