/* PosSaleView: see pos-sale-view.h. */
#include "pos-sale-view.h"

#include <adwaita.h>
#include <glib/gi18n.h>

#include "pos-call.h"
#include "pos-money.h"
#include "pos-receipt.h"

struct _PosSaleView {
        GtkWidget parent_instance;
        pos_terminal *terminal;
        GCancellable *cancellable;

        /* The sale being made. */
        char member_code[POS_MEMBER_CODE_MAX + 1];
        char spend_text[POS_SPEND_TEXT_MAX];
        gboolean offline;              /* the last quote failed for want of a connection */
        gboolean quote_ok;             /* a quote for exactly this code and amount is shown and confirmable */
        guint quote_generation;        /* answers to older requests are ignored */
        gint64 scan_started_us;        /* when the quote was asked for (scan-to-quote timing) */
        gboolean busy;

        /* The receipt shown. */
        PosReceipt *receipt;
        char receipt_sale_id[POS_SALE_ID_MAX + 1];
        gboolean receipt_voidable;

        GtkEntry *scan_entry;
        GtkLabel *scan_status;
        GtkEntry *spend_entry;
        GtkLabel *spend_error;
        GtkGrid *keypad;
        GtkStack *stack;
        GtkLabel *idle_error;
        GtkSpinner *busy_spinner;
        GtkLabel *busy_label;
        GtkLabel *quote_member;
        GtkLabel *quote_vip;
        GtkGrid *quote_grid;
        GtkLabel *quote_error;
        GtkButton *confirm_button;
        GtkButton *offline_button;
        GtkLabel *receipt_status;
        GtkLabel *receipt_text;
        GtkButton *void_button;
};

G_DEFINE_FINAL_TYPE(PosSaleView, pos_sale_view, GTK_TYPE_WIDGET)

enum { SIGNAL_SESSION_ENDED, SIGNAL_DEPOSIT_CHANGED, SIGNAL_JOURNAL_CHANGED, SIGNAL_CONNECTION_LOST, N_SIGNALS };
static guint signals[N_SIGNALS];

static void request_quote(PosSaleView *self);

static gboolean trace_enabled(void) {
        return g_getenv("SB_POS_TRACE") != NULL;
}

static void set_label_error(GtkLabel *label, const char *text) {
        gtk_label_set_text(label, text ? text : "");
        gtk_widget_set_visible(GTK_WIDGET(label), text && *text);
}

static void set_scan_status(PosSaleView *self, const char *text, gboolean error) {
        gtk_label_set_text(self->scan_status, text);
        if (error) {
                gtk_widget_add_css_class(GTK_WIDGET(self->scan_status), "error");
                gtk_widget_remove_css_class(GTK_WIDGET(self->scan_status), "dim-label");
                gtk_widget_add_css_class(GTK_WIDGET(self->scan_entry), "error");
        } else {
                gtk_widget_remove_css_class(GTK_WIDGET(self->scan_status), "error");
                gtk_widget_add_css_class(GTK_WIDGET(self->scan_status), "dim-label");
                gtk_widget_remove_css_class(GTK_WIDGET(self->scan_entry), "error");
        }
}

void pos_sale_view_focus_scan(PosSaleView *self) {
        g_return_if_fail(POS_IS_SALE_VIEW(self));
        gtk_widget_grab_focus(GTK_WIDGET(self->scan_entry));
}

static void show_page(PosSaleView *self, const char *page) {
        gtk_stack_set_visible_child_name(self->stack, page);
        gtk_spinner_set_spinning(self->busy_spinner, g_str_equal(page, "busy"));
}

static void show_busy(PosSaleView *self, const char *text) {
        gtk_label_set_text(self->busy_label, text);
        show_page(self, "busy");
}

/* The amount changed or the code was replaced: any quote shown no longer applies. */
static void invalidate_quote(PosSaleView *self) {
        self->quote_ok = FALSE;
        self->offline = FALSE;
        self->quote_generation++;
        if (!self->busy)
                show_page(self, "idle");
}

static void update_spend(PosSaleView *self) {
        gtk_editable_set_text(GTK_EDITABLE(self->spend_entry), self->spend_text);
        set_label_error(self->spend_error, NULL);
        gtk_widget_remove_css_class(GTK_WIDGET(self->spend_entry), "error");
}

static void clear_receipt(PosSaleView *self) {
        g_clear_pointer(&self->receipt, pos_receipt_free);
        self->receipt_sale_id[0] = '\0';
        self->receipt_voidable = FALSE;
}

void pos_sale_view_reset(PosSaleView *self) {
        g_return_if_fail(POS_IS_SALE_VIEW(self));
        if (self->busy)
                return; /* a sale is being recorded: its outcome must be shown first */
        explicit_bzero(self->member_code, sizeof self->member_code);
        self->spend_text[0] = '\0';
        clear_receipt(self);
        update_spend(self);
        invalidate_quote(self);
        gtk_editable_set_text(GTK_EDITABLE(self->scan_entry), "");
        set_scan_status(self, _("Waiting for a scan…"), FALSE);
        set_label_error(self->idle_error, NULL);
        show_page(self, "idle");
        pos_sale_view_focus_scan(self);
}

static void spend_key(PosSaleView *self, const char *key) {
        if (self->busy)
                return;
        if (g_str_equal(gtk_stack_get_visible_child_name(self->stack), "receipt"))
                pos_sale_view_reset(self);
        if (pos_spend_key(self->spend_text, sizeof self->spend_text, key)) {
                update_spend(self);
                invalidate_quote(self);
        }
        pos_sale_view_focus_scan(self);
}

static void on_keypad_clicked(GtkButton *button, PosSaleView *self) {
        spend_key(self, g_object_get_data(G_OBJECT(button), "pos-key"));
}

static void build_keypad(PosSaleView *self) {
        static const char *const keys[5][3] = {
                { "7", "8", "9" }, { "4", "5", "6" }, { "1", "2", "3" }, { "0", "00", "." }, { "BACK", "CLEAR", NULL },
        };
        for (int row = 0; row < 5; row++)
                for (int col = 0; col < 3; col++) {
                        const char *k = keys[row][col];
                        if (!k)
                                continue;
                        const char *label = g_str_equal(k, "BACK") ? "⌫" : g_str_equal(k, "CLEAR") ? "C" : k;
                        GtkWidget *b = gtk_button_new_with_label(label);
                        /* The keypad must never take the focus from the scan field. */
                        gtk_widget_set_focusable(b, FALSE);
                        gtk_widget_set_focus_on_click(b, FALSE);
                        gtk_widget_add_css_class(b, "keypad-key");
                        g_autofree char *name = g_strdup_printf("key-%s", k);
                        gtk_widget_set_name(b, name);
                        g_object_set_data(G_OBJECT(b), "pos-key", (gpointer) k);
                        g_signal_connect(b, "clicked", G_CALLBACK(on_keypad_clicked), self);
                        gtk_grid_attach(self->keypad, b, col, row, g_str_equal(k, "CLEAR") ? 2 : 1, 1);
                }
}

static void add_quote_row(PosSaleView *self, int row, const char *label, const char *value, const char *name) {
        GtkWidget *l = gtk_label_new(label);
        gtk_label_set_xalign(GTK_LABEL(l), 0);
        gtk_widget_add_css_class(l, "quote-label");
        GtkWidget *v = gtk_label_new(value);
        gtk_label_set_xalign(GTK_LABEL(v), 1);
        gtk_widget_set_hexpand(v, TRUE);
        gtk_widget_add_css_class(v, "quote-value");
        gtk_widget_set_name(v, name);
        gtk_grid_attach(self->quote_grid, l, 0, row, 1, 1);
        gtk_grid_attach(self->quote_grid, v, 1, row, 1, 1);
}

static void show_quote(PosSaleView *self, const Sharebuy__Merchant__V1__SaleQuote *q) {
        GtkWidget *child;
        while ((child = gtk_widget_get_first_child(GTK_WIDGET(self->quote_grid))))
                gtk_grid_remove(self->quote_grid, child);
        gtk_label_set_text(self->quote_member, q->member ? q->member->masked_phone : "");
        gboolean vip = q->member && q->member->vip;
        gtk_label_set_text(self->quote_vip, vip ? _("VIP") : _("Not VIP yet"));
        if (vip)
                gtk_widget_add_css_class(GTK_WIDGET(self->quote_vip), "vip");
        else
                gtk_widget_remove_css_class(GTK_WIDGET(self->quote_vip), "vip");
        char buf[40], buf2[64];
        int row = 0;
        int64_t fen = q->split ? q->split->spend_fen : 0;
        pos_format_yuan(fen, buf, sizeof buf);
        add_quote_row(self, row++, _("Amount"), buf, "quote-spend");
        if (q->split) {
                pos_format_units(q->split->member_cv_units, buf, sizeof buf);
                snprintf(buf2, sizeof buf2, "+%s CV%s", buf, q->split->member_cv_locked ? _(" (locked until VIP)") : "");
                add_quote_row(self, row++, _("CV the member earns"), buf2, "quote-cv");
                pos_format_units(q->split->deposit_sp_units, buf, sizeof buf);
                snprintf(buf2, sizeof buf2, "-%s SP", buf);
                add_quote_row(self, row++, _("SP from the deposit"), buf2, "quote-sp");
        }
        pos_format_units(q->deposit_after_sp_units, buf, sizeof buf);
        snprintf(buf2, sizeof buf2, "%s SP", buf);
        add_quote_row(self, row++, _("Deposit after the sale"), buf2, "quote-deposit");
        if (!q->deposit_sufficient) {
                set_label_error(self->quote_error,
                                _("The store's deposit is too small for this sale. Ask the owner to top up the deposit."));
                gtk_widget_set_sensitive(GTK_WIDGET(self->confirm_button), FALSE);
                self->quote_ok = FALSE;
        } else {
                set_label_error(self->quote_error, NULL);
                gtk_widget_set_sensitive(GTK_WIDGET(self->confirm_button), TRUE);
                self->quote_ok = TRUE;
        }
        show_page(self, "quote");
}

/* Show a failure at the place it concerns. */
static void show_failure(PosSaleView *self, const pos_error *err) {
        const char *text = pos_error_text(err);
        switch (pos_error_place(err)) {
        case POS_PLACE_MEMBER_CODE:
                explicit_bzero(self->member_code, sizeof self->member_code);
                set_scan_status(self, text, TRUE);
                show_page(self, "idle");
                set_label_error(self->idle_error, NULL);
                break;
        case POS_PLACE_SPEND:
                set_label_error(self->spend_error, text);
                gtk_widget_add_css_class(GTK_WIDGET(self->spend_entry), "error");
                show_page(self, "idle");
                break;
        case POS_PLACE_SESSION:
                show_page(self, "idle");
                g_signal_emit(self, signals[SIGNAL_SESSION_ENDED], 0);
                break;
        default:
                set_label_error(self->idle_error, text);
                show_page(self, "idle");
                break;
        }
        pos_sale_view_focus_scan(self);
}

typedef struct {
        PosSaleView *self; /* a reference */
        guint generation;
} QuoteCtx;

static void on_quote(GObject *source, GAsyncResult *result, gpointer user_data) {
        QuoteCtx *ctx = user_data;
        g_autoptr(PosSaleView) self = ctx->self;
        guint generation = ctx->generation;
        g_free(ctx);
        g_autoptr(PosCallResult) r = pos_call_finish(result);
        if (!self->cancellable)
                return;
        if (generation != self->quote_generation)
                return; /* the code or the amount changed meanwhile */
        if (r->status == SB_OK) {
                show_quote(self, (const Sharebuy__Merchant__V1__SaleQuote *) r->resp);
                if (trace_enabled())
                        g_printerr("pos-trace: scan-to-quote %.3f ms (call %.3f ms)\n",
                                   (double) (g_get_monotonic_time() - self->scan_started_us) / 1000.0,
                                   (double) r->elapsed_us / 1000.0);
        } else if (pos_error_offline(&r->err)) {
                self->offline = TRUE;
                show_page(self, "offline");
                g_signal_emit(self, signals[SIGNAL_CONNECTION_LOST], 0);
        } else {
                show_failure(self, &r->err);
        }
        pos_sale_view_focus_scan(self);
}

static void request_quote(PosSaleView *self) {
        int64_t fen;
        if (!self->member_code[0]) {
                set_scan_status(self, _("Scan the member code first."), TRUE);
                return;
        }
        int r = pos_spend_parse(self->spend_text, &fen);
        if (r < 0) {
                set_label_error(self->spend_error, self->spend_text[0] ? _("The amount must be more than 0.00 and at most 1 000 000.00 yuan.")
                                                                       : _("Type the amount."));
                if (self->spend_text[0])
                        gtk_widget_add_css_class(GTK_WIDGET(self->spend_entry), "error");
                return;
        }
        invalidate_quote(self);
        set_label_error(self->idle_error, NULL);
        show_busy(self, _("Asking for the quote…"));
        self->scan_started_us = g_get_monotonic_time();
        QuoteCtx *ctx = g_new0(QuoteCtx, 1);
        ctx->self = g_object_ref(self);
        ctx->generation = self->quote_generation;
        pos_call_quote_async(self->terminal, self->member_code, fen, self->cancellable, on_quote, ctx);
}

static void on_scan_activate(PosSaleView *self) {
        g_autofree char *code = g_strstrip(g_strdup(gtk_editable_get_text(GTK_EDITABLE(self->scan_entry))));
        gtk_editable_set_text(GTK_EDITABLE(self->scan_entry), "");
        if (self->busy || !*code)
                return;
        if (!pos_member_code_valid(code)) {
                set_scan_status(self, _("This is not a sharebuy member code. Scan the code in the member's app."), TRUE);
                return;
        }
        if (g_str_equal(gtk_stack_get_visible_child_name(self->stack), "receipt"))
                pos_sale_view_reset(self);
        g_strlcpy(self->member_code, code, sizeof self->member_code);
        explicit_bzero(code, strlen(code));
        set_scan_status(self, _("✓ Member code scanned. Type the amount, then Enter."), FALSE);
        set_label_error(self->idle_error, NULL);
        invalidate_quote(self);
        if (self->spend_text[0])
                request_quote(self);
}

static void show_receipt(PosSaleView *self, PosReceipt *receipt, const char *sale_id, const char *status,
                         const char *css, gboolean voidable) {
        clear_receipt(self);
        self->receipt = receipt;
        g_strlcpy(self->receipt_sale_id, sale_id, sizeof self->receipt_sale_id);
        self->receipt_voidable = voidable;
        g_autofree char *text = pos_receipt_to_text(receipt);
        gtk_label_set_text(self->receipt_text, text);
        gtk_label_set_text(self->receipt_status, status);
        gtk_widget_remove_css_class(GTK_WIDGET(self->receipt_status), "success");
        gtk_widget_remove_css_class(GTK_WIDGET(self->receipt_status), "warning");
        gtk_widget_remove_css_class(GTK_WIDGET(self->receipt_status), "error");
        gtk_widget_add_css_class(GTK_WIDGET(self->receipt_status), css);
        gtk_widget_set_sensitive(GTK_WIDGET(self->void_button), voidable);
        show_page(self, "receipt");
}

static void on_sold(GObject *source, GAsyncResult *result, gpointer user_data) {
        g_autoptr(PosSaleView) self = user_data;
        g_autoptr(PosCallResult) r = pos_call_finish(result);
        if (!self->cancellable)
                return;
        self->busy = FALSE;
        pos_state st;
        pos_terminal_get_state(self->terminal, &st);
        char cashier[POS_NAME_MAX] = "";
        pos_terminal_signed_in(self->terminal, cashier, sizeof cashier);
        switch (r->outcome) {
        case POS_SELL_RECORDED: {
                const Sharebuy__Merchant__V1__RecordSaleResponse *resp = (const void *) r->resp;
                g_assert(resp != NULL);
                if (!resp->receipt) {
                        set_label_error(self->idle_error, _("The server recorded the sale but sent no receipt."));
                        show_page(self, "idle");
                        break;
                }
                PosReceipt *rc = pos_receipt_new_sale(resp->receipt, FALSE, st.terminal_label, cashier);
                show_receipt(self, rc, resp->receipt->sale_id, _("✓ Sale recorded"), "success", TRUE);
                g_signal_emit(self, signals[SIGNAL_DEPOSIT_CHANGED], 0, (gint64) resp->receipt->deposit_left_sp_units,
                              (gint) resp->receipt->deposit_level);
                break;
        }
        case POS_SELL_QUEUED: {
                pos_journal_sale s = { 0 };
                g_strlcpy(s.sale_id, r->sale_id, sizeof s.sale_id);
                s.captured_unix_ms = g_get_real_time() / 1000;
                pos_spend_parse(self->spend_text, &s.spend_fen);
                PosReceipt *rc = pos_receipt_new_queued(st.merchant_name, st.terminal_label, cashier, &s);
                show_receipt(self, rc, r->sale_id,
                             _("Saved offline — waiting to be sent. It goes out automatically when the connection returns."),
                             "warning", FALSE);
                break;
        }
        case POS_SELL_REFUSED:
                if (pos_error_place(&r->err) == POS_PLACE_DEPOSIT) {
                        set_label_error(self->quote_error, pos_error_text(&r->err));
                        gtk_widget_set_sensitive(GTK_WIDGET(self->confirm_button), FALSE);
                        show_page(self, "quote");
                } else {
                        show_failure(self, &r->err);
                }
                break;
        case POS_SELL_NOT_KEPT: {
                g_autofree char *t = g_strdup_printf(_("The sale could not be saved on this till (%s). Nothing was charged."),
                                                     r->err.message);
                set_label_error(self->idle_error, t);
                show_page(self, "idle");
                break;
        }
        }
        explicit_bzero(self->member_code, sizeof self->member_code);
        g_signal_emit(self, signals[SIGNAL_JOURNAL_CHANGED], 0);
        pos_sale_view_focus_scan(self);
}

static void on_confirm(PosSaleView *self) {
        int64_t fen;
        if (self->busy || !self->member_code[0] || pos_spend_parse(self->spend_text, &fen) < 0)
                return;
        if (!self->quote_ok && !self->offline)
                return;
        self->busy = TRUE;
        show_busy(self, self->offline ? _("Saving the sale on this till…") : _("Recording the sale…"));
        pos_call_sell_async(self->terminal, self->member_code, fen, self->offline, self->cancellable, on_sold,
                            g_object_ref(self));
}

static void on_print(PosSaleView *self) {
        if (!self->receipt)
                return;
        pos_receipt_print(self->receipt, GTK_WINDOW(gtk_widget_get_native(GTK_WIDGET(self))));
        pos_sale_view_focus_scan(self);
}

static void on_pdf_chosen(GtkNativeDialog *dialog, int response, gpointer user_data) {
        PosSaleView *self = user_data;
        if (response == GTK_RESPONSE_ACCEPT && self->receipt) {
                g_autoptr(GFile) file = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(dialog));
                g_autofree char *path = file ? g_file_get_path(file) : NULL;
                g_autoptr(GError) error = NULL;
                if (path && !pos_receipt_save_pdf(self->receipt, path, &error))
                        gtk_label_set_text(self->receipt_status, error->message);
        }
        g_object_unref(dialog);
        g_object_unref(self);
}

static void on_save_pdf(PosSaleView *self) {
        if (!self->receipt)
                return;
        GtkFileChooserNative *d = gtk_file_chooser_native_new(_("Save the receipt as PDF"),
                                                              GTK_WINDOW(gtk_widget_get_native(GTK_WIDGET(self))),
                                                              GTK_FILE_CHOOSER_ACTION_SAVE, _("_Save"), _("_Cancel"));
        g_autofree char *name = g_strdup_printf("receipt-%s.pdf", self->receipt_sale_id);
        gtk_file_chooser_set_current_name(GTK_FILE_CHOOSER(d), name);
        g_signal_connect(d, "response", G_CALLBACK(on_pdf_chosen), g_object_ref(self));
        gtk_native_dialog_show(GTK_NATIVE_DIALOG(d));
}

static void on_voided(GObject *source, GAsyncResult *result, gpointer user_data) {
        g_autoptr(PosSaleView) self = user_data;
        g_autoptr(PosCallResult) r = pos_call_finish(result);
        if (!self->cancellable)
                return;
        self->busy = FALSE;
        if (r->status != SB_OK) {
                show_page(self, "receipt");
                gtk_label_set_text(self->receipt_status, pos_error_text(&r->err));
                gtk_widget_add_css_class(GTK_WIDGET(self->receipt_status), "error");
                if (pos_error_place(&r->err) == POS_PLACE_SESSION)
                        g_signal_emit(self, signals[SIGNAL_SESSION_ENDED], 0);
                pos_sale_view_focus_scan(self);
                return;
        }
        const Sharebuy__Merchant__V1__VoidSaleResponse *v = (const void *) r->resp;
        if (v->sale && v->sale->receipt) {
                pos_state st;
                pos_terminal_get_state(self->terminal, &st);
                char cashier[POS_NAME_MAX] = "";
                pos_terminal_signed_in(self->terminal, cashier, sizeof cashier);
                PosReceipt *rc = pos_receipt_new_sale(v->sale->receipt, TRUE, st.terminal_label, cashier);
                show_receipt(self, rc, v->sale->receipt->sale_id, _("Sale voided: every point was given back."), "warning",
                             FALSE);
        } else {
                show_page(self, "receipt");
                gtk_label_set_text(self->receipt_status, _("Sale voided: every point was given back."));
                self->receipt_voidable = FALSE;
                gtk_widget_set_sensitive(GTK_WIDGET(self->void_button), FALSE);
        }
        g_signal_emit(self, signals[SIGNAL_DEPOSIT_CHANGED], 0, (gint64) v->deposit_left_sp_units, (gint) 0);
        g_signal_emit(self, signals[SIGNAL_JOURNAL_CHANGED], 0);
        pos_sale_view_focus_scan(self);
}

static void on_void_response(AdwMessageDialog *dialog, const char *response, gpointer user_data) {
        g_autoptr(PosSaleView) self = user_data;
        if (!self->cancellable)
                return;
        if (g_str_equal(response, "void") && self->receipt_voidable && !self->busy) {
                self->busy = TRUE;
                show_busy(self, _("Voiding the sale…"));
                pos_call_void_async(self->terminal, self->receipt_sale_id, "voided at the till", self->cancellable,
                                    on_voided, g_object_ref(self));
        }
        pos_sale_view_focus_scan(self);
}

static void on_void(PosSaleView *self) {
        if (!self->receipt_voidable || self->busy)
                return;
        GtkWindow *parent = GTK_WINDOW(gtk_widget_get_native(GTK_WIDGET(self)));
        GtkWidget *d = adw_message_dialog_new(parent, _("Void this sale?"),
                                              _("Every point of the sale is given back: the member's CV and the deposit's SP. This cannot be undone."));
        gtk_widget_set_name(d, "void-dialog");
        adw_message_dialog_add_responses(ADW_MESSAGE_DIALOG(d), "cancel", _("_Keep the sale"), "void", _("_Void"), NULL);
        adw_message_dialog_set_response_appearance(ADW_MESSAGE_DIALOG(d), "void", ADW_RESPONSE_DESTRUCTIVE);
        adw_message_dialog_set_default_response(ADW_MESSAGE_DIALOG(d), "cancel");
        adw_message_dialog_set_close_response(ADW_MESSAGE_DIALOG(d), "cancel");
        g_signal_connect(d, "response", G_CALLBACK(on_void_response), g_object_ref(self));
        gtk_window_present(GTK_WINDOW(d));
}

static void on_enter(PosSaleView *self) {
        const char *page = gtk_stack_get_visible_child_name(self->stack);
        if (g_str_equal(page, "receipt")) {
                pos_sale_view_reset(self);
        } else if (g_str_equal(page, "quote")) {
                if (self->quote_ok)
                        on_confirm(self);
        } else if (g_str_equal(page, "offline")) {
                on_confirm(self);
        } else if (g_str_equal(page, "idle")) {
                request_quote(self);
        }
}

static const char *spend_key_for(guint keyval, gboolean main_row) {
        static const char *const digits[] = { "0", "1", "2", "3", "4", "5", "6", "7", "8", "9" };
        if (keyval >= GDK_KEY_KP_0 && keyval <= GDK_KEY_KP_9)
                return digits[keyval - GDK_KEY_KP_0];
        if (keyval == GDK_KEY_KP_Decimal || keyval == GDK_KEY_KP_Separator)
                return ".";
        if (!main_row)
                return NULL;
        if (keyval >= GDK_KEY_0 && keyval <= GDK_KEY_9)
                return digits[keyval - GDK_KEY_0];
        if (keyval == GDK_KEY_period)
                return ".";
        if (keyval == GDK_KEY_BackSpace)
                return "BACK";
        return NULL;
}

static gboolean on_key_pressed(GtkEventControllerKey *controller, guint keyval, guint keycode, GdkModifierType state,
                               PosSaleView *self) {
        gboolean scan_empty = *gtk_editable_get_text(GTK_EDITABLE(self->scan_entry)) == '\0';
        if (state & GDK_CONTROL_MASK) {
                if (keyval == GDK_KEY_p) {
                        on_print(self);
                        return TRUE;
                }
                if (keyval == GDK_KEY_s) {
                        on_save_pdf(self);
                        return TRUE;
                }
                return FALSE;
        }
        switch (keyval) {
        case GDK_KEY_Escape:
                pos_sale_view_reset(self);
                return TRUE;
        case GDK_KEY_F9:
                on_void(self);
                return TRUE;
        case GDK_KEY_Return:
        case GDK_KEY_KP_Enter:
        case GDK_KEY_ISO_Enter:
                /* With text in the scan field, Enter ends a scan: the field's activate handles it. */
                if (!scan_empty && keyval != GDK_KEY_KP_Enter)
                        return FALSE;
                on_enter(self);
                return TRUE;
        default:
                break;
        }
        /* Digits are the amount's once a code was scanned and no new scan is being typed. */
        const char *k = spend_key_for(keyval, self->member_code[0] && scan_empty);
        if (k) {
                spend_key(self, k);
                return TRUE;
        }
        return FALSE;
}

static void pos_sale_view_dispose(GObject *object) {
        PosSaleView *self = POS_SALE_VIEW(object);
        g_cancellable_cancel(self->cancellable);
        g_clear_object(&self->cancellable);
        clear_receipt(self);
        explicit_bzero(self->member_code, sizeof self->member_code);
        gtk_widget_dispose_template(GTK_WIDGET(self), POS_TYPE_SALE_VIEW);
        G_OBJECT_CLASS(pos_sale_view_parent_class)->dispose(object);
}

static void pos_sale_view_class_init(PosSaleViewClass *klass) {
        GObjectClass *object_class = G_OBJECT_CLASS(klass);
        GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
        object_class->dispose = pos_sale_view_dispose;
        signals[SIGNAL_SESSION_ENDED] = g_signal_new("session-ended", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
                                                     NULL, NULL, NULL, G_TYPE_NONE, 0);
        signals[SIGNAL_DEPOSIT_CHANGED] = g_signal_new("deposit-changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST,
                                                       0, NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_INT64, G_TYPE_INT);
        signals[SIGNAL_JOURNAL_CHANGED] = g_signal_new("journal-changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST,
                                                       0, NULL, NULL, NULL, G_TYPE_NONE, 0);
        /* The services could not be reached (the quote failed for want of a connection). */
        signals[SIGNAL_CONNECTION_LOST] = g_signal_new("connection-lost", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST,
                                                       0, NULL, NULL, NULL, G_TYPE_NONE, 0);
        gtk_widget_class_set_layout_manager_type(widget_class, GTK_TYPE_BIN_LAYOUT);
        gtk_widget_class_set_template_from_resource(widget_class, "/cn/sharebuy/Pos/pos-sale-view.ui");
        gtk_widget_class_bind_template_child(widget_class, PosSaleView, scan_entry);
        gtk_widget_class_bind_template_child(widget_class, PosSaleView, scan_status);
        gtk_widget_class_bind_template_child(widget_class, PosSaleView, spend_entry);
        gtk_widget_class_bind_template_child(widget_class, PosSaleView, spend_error);
        gtk_widget_class_bind_template_child(widget_class, PosSaleView, keypad);
        gtk_widget_class_bind_template_child(widget_class, PosSaleView, stack);
        gtk_widget_class_bind_template_child(widget_class, PosSaleView, idle_error);
        gtk_widget_class_bind_template_child(widget_class, PosSaleView, busy_spinner);
        gtk_widget_class_bind_template_child(widget_class, PosSaleView, busy_label);
        gtk_widget_class_bind_template_child(widget_class, PosSaleView, quote_member);
        gtk_widget_class_bind_template_child(widget_class, PosSaleView, quote_vip);
        gtk_widget_class_bind_template_child(widget_class, PosSaleView, quote_grid);
        gtk_widget_class_bind_template_child(widget_class, PosSaleView, quote_error);
        gtk_widget_class_bind_template_child(widget_class, PosSaleView, confirm_button);
        gtk_widget_class_bind_template_child(widget_class, PosSaleView, offline_button);
        gtk_widget_class_bind_template_child(widget_class, PosSaleView, receipt_status);
        gtk_widget_class_bind_template_child(widget_class, PosSaleView, receipt_text);
        gtk_widget_class_bind_template_child(widget_class, PosSaleView, void_button);
        gtk_widget_class_bind_template_callback(widget_class, on_scan_activate);
        gtk_widget_class_bind_template_callback(widget_class, on_confirm);
        gtk_widget_class_bind_template_callback(widget_class, on_print);
        gtk_widget_class_bind_template_callback(widget_class, on_save_pdf);
        gtk_widget_class_bind_template_callback(widget_class, on_void);
        gtk_widget_class_bind_template_callback(widget_class, pos_sale_view_reset);
}

static void pos_sale_view_init(PosSaleView *self) {
        gtk_widget_init_template(GTK_WIDGET(self));
        self->cancellable = g_cancellable_new();
        build_keypad(self);
        GtkEventController *keys = gtk_event_controller_key_new();
        gtk_event_controller_set_propagation_phase(keys, GTK_PHASE_CAPTURE);
        g_signal_connect(keys, "key-pressed", G_CALLBACK(on_key_pressed), self);
        gtk_widget_add_controller(GTK_WIDGET(self), keys);
}

PosSaleView *pos_sale_view_new(pos_terminal *terminal) {
        g_return_val_if_fail(terminal != NULL, NULL);
        PosSaleView *self = g_object_new(POS_TYPE_SALE_VIEW, NULL);
        self->terminal = terminal;
        return self;
}
