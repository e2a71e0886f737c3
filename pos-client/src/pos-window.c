/* PosWindow: see pos-window.h. */
#include "pos-window.h"

#include <glib/gi18n.h>

#include "pos-call.h"
#include "pos-day-view.h"
#include "pos-member-card-dialog.h"
#include "pos-money.h"
#include "pos-sale-view.h"
#include "pos-setup-page.h"
#include "pos-sign-in-page.h"

/* How often queued sales are retried, and the deposit polled when nothing waits. */
#define REPLAY_INTERVAL_S 3
#define HEARTBEAT_EVERY_N 10

struct _PosWindow {
        AdwApplicationWindow parent_instance;
        pos_terminal *terminal;
        GCancellable *cancellable;
        guint timer_id;
        guint ticks;
        gboolean online;
        gboolean replaying;
        gboolean traced_sign_in;

        PosSetupPage *setup_page;
        PosSignInPage *sign_in_page;
        PosSaleView *sale_view;
        PosDayView *day_view;

        AdwWindowTitle *title;
        GtkLabel *connection_label;
        GtkRevealer *banner_revealer;
        GtkLabel *banner_label;
        GtkStack *stack;
        GtkButton *day_button;
        GtkButton *sale_button;
};

G_DEFINE_FINAL_TYPE(PosWindow, pos_window, ADW_TYPE_APPLICATION_WINDOW)

static void update_title(PosWindow *self) {
        pos_state st;
        pos_terminal_get_state(self->terminal, &st);
        char cashier[POS_NAME_MAX] = "";
        gboolean in = pos_terminal_signed_in(self->terminal, cashier, sizeof cashier);
        g_autofree char *title = st.merchant_name[0] ? g_strdup_printf("%s · %s", st.merchant_name, st.terminal_label)
                                                     : g_strdup(_("sharebuy till"));
        adw_window_title_set_title(self->title, title);
        g_autofree char *sub = in ? g_strdup_printf(_("Cashier: %s"), cashier) : g_strdup("");
        adw_window_title_set_subtitle(self->title, sub);
}

static void update_connection(PosWindow *self) {
        pos_journal_sale *sales = NULL;
        size_t n = 0, queued = 0;
        if (pos_terminal_journal_sales(self->terminal, &sales, &n) == 0) {
                for (size_t i = 0; i < n; i++)
                        queued += sales[i].status == POS_SALE_QUEUED;
                free(sales);
        }
        g_autofree char *text = NULL;
        if (queued)
                text = g_strdup_printf(g_dngettext(NULL, "%s · %zu sale waiting to be sent", "%s · %zu sales waiting to be sent", queued),
                                       self->online ? _("● Online") : _("● Offline"), queued);
        else
                text = g_strdup(self->online ? _("● Online") : _("● Offline"));
        gtk_label_set_text(self->connection_label, text);
        gtk_widget_remove_css_class(GTK_WIDGET(self->connection_label), self->online ? "offline" : "online");
        gtk_widget_add_css_class(GTK_WIDGET(self->connection_label), self->online ? "online" : "offline");
}

static void show_deposit(PosWindow *self, const Sharebuy__Merchant__V1__DepositStatus *d) {
        char sp[40], need[40];
        pos_format_units(d->deposit_sp_units, sp, sizeof sp);
        g_autofree char *text = NULL;
        if (d->level == SHAREBUY__MERCHANT__V1__DEPOSIT_LEVEL__DEPOSIT_LEVEL_BELOW_MINIMUM) {
                pos_format_units(d->sp_to_minimum_units, need, sizeof need);
                text = g_strdup_printf(_("Deposit below the minimum: %s SP left. No sales until the owner buys %s SP more."), sp,
                                       need);
        } else if (d->level == SHAREBUY__MERCHANT__V1__DEPOSIT_LEVEL__DEPOSIT_LEVEL_LOW) {
                text = g_strdup_printf(_("Deposit low: %s SP left. Ask the owner to top up soon."), sp);
        } else if (!d->can_record_sales) {
                text = g_strdup(_("This store cannot record sales now (not approved or suspended). Voids of today still work."));
        }
        gtk_label_set_text(self->banner_label, text ? text : "");
        gtk_revealer_set_reveal_child(self->banner_revealer, text != NULL);
}

static void on_deposit(GObject *source, GAsyncResult *result, gpointer user_data) {
        g_autoptr(PosWindow) self = user_data;
        g_autoptr(PosCallResult) r = pos_call_finish(result);
        if (!self->cancellable)
                return;
        if (r->status == SB_OK) {
                self->online = TRUE;
                show_deposit(self, (const void *) r->resp);
        } else if (pos_error_offline(&r->err)) {
                self->online = FALSE;
        } else if (r->status == SB_UNIMPLEMENTED) {
                self->online = TRUE; /* reachable; the deposit is simply not served yet */
        }
        update_connection(self);
}

static void fetch_deposit(PosWindow *self) {
        if (!pos_terminal_signed_in(self->terminal, NULL, 0))
                return;
        pos_call_deposit_async(self->terminal, self->cancellable, on_deposit, g_object_ref(self));
}

static void on_replayed(GObject *source, GAsyncResult *result, gpointer user_data) {
        g_autoptr(PosWindow) self = user_data;
        g_autoptr(PosCallResult) r = pos_call_finish(result);
        if (!self->cancellable)
                return;
        self->replaying = FALSE;
        self->online = !pos_error_offline(&r->err);
        update_connection(self);
        if (r->sent || r->failed) {
                if (g_str_equal(pos_window_get_page(self), "day"))
                        pos_day_view_refresh(self->day_view);
                fetch_deposit(self);
        }
}

static void replay(PosWindow *self) {
        if (self->replaying || !pos_terminal_signed_in(self->terminal, NULL, 0))
                return;
        self->replaying = TRUE;
        pos_call_replay_async(self->terminal, self->cancellable, on_replayed, g_object_ref(self));
}

static gboolean has_queued(PosWindow *self) {
        pos_journal_sale *sales = NULL;
        size_t n = 0;
        gboolean any = FALSE;
        if (pos_terminal_journal_sales(self->terminal, &sales, &n) == 0) {
                for (size_t i = 0; i < n && !any; i++)
                        any = sales[i].status == POS_SALE_QUEUED;
                free(sales);
        }
        return any;
}

static gboolean on_timer(gpointer user_data) {
        PosWindow *self = user_data;
        self->ticks++;
        if (has_queued(self))
                replay(self);
        else if (self->ticks % HEARTBEAT_EVERY_N == 0)
                fetch_deposit(self);
        return G_SOURCE_CONTINUE;
}

static gboolean on_first_frame(GtkWidget *widget, GdkFrameClock *clock, gpointer user_data) {
        PosWindow *self = POS_WINDOW(widget);
        if (!self->traced_sign_in && g_str_equal(pos_window_get_page(self), "sign-in") &&
            gtk_widget_get_mapped(GTK_WIDGET(self->sign_in_page))) {
                self->traced_sign_in = TRUE;
                if (g_getenv("SB_POS_TRACE"))
                        g_printerr("pos-trace: sign-in-shown\n");
                return G_SOURCE_REMOVE;
        }
        return G_SOURCE_CONTINUE;
}

static void show(PosWindow *self, const char *page) {
        gtk_stack_set_visible_child_name(self->stack, page);
        gboolean in = g_str_equal(page, "sale") || g_str_equal(page, "day");
        gtk_widget_set_visible(GTK_WIDGET(self->day_button), g_str_equal(page, "sale"));
        gtk_widget_set_visible(GTK_WIDGET(self->sale_button), g_str_equal(page, "day"));
        gtk_widget_action_set_enabled(GTK_WIDGET(self), "win.day", in);
        gtk_widget_action_set_enabled(GTK_WIDGET(self), "win.sale", in);
        gtk_widget_action_set_enabled(GTK_WIDGET(self), "win.member-card", in);
        gtk_widget_action_set_enabled(GTK_WIDGET(self), "win.sign-out", in);
        gtk_widget_set_visible(GTK_WIDGET(self->connection_label), in);
        if (!in)
                gtk_revealer_set_reveal_child(self->banner_revealer, FALSE);
        update_title(self);
        update_connection(self);
        if (g_str_equal(page, "setup")) {
                pos_setup_page_focus(self->setup_page);
        } else if (g_str_equal(page, "sign-in")) {
                pos_sign_in_page_reset(self->sign_in_page);
                gtk_widget_add_tick_callback(GTK_WIDGET(self), on_first_frame, NULL, NULL);
        } else if (g_str_equal(page, "sale")) {
                pos_sale_view_focus_scan(self->sale_view);
        } else if (g_str_equal(page, "day")) {
                pos_day_view_refresh(self->day_view);
        }
}

const char *pos_window_get_page(PosWindow *self) {
        g_return_val_if_fail(POS_IS_WINDOW(self), NULL);
        const char *name = gtk_stack_get_visible_child_name(self->stack);
        return name ? name : "";
}

static void on_paired(PosWindow *self) {
        show(self, "sign-in");
}

static void on_signed_in(PosWindow *self) {
        self->online = TRUE;
        pos_sale_view_reset(self->sale_view);
        show(self, "sale");
        fetch_deposit(self);
        if (has_queued(self))
                replay(self);
}

static void on_unpaired(PosWindow *self) {
        show(self, "setup");
}

static void on_session_ended(PosWindow *self) {
        pos_terminal_sign_out(self->terminal);
        show(self, "sign-in");
}

static void on_deposit_changed(PosWindow *self, gint64 sp_units, gint level) {
        /* The receipt carries the level; a void does not, so ask. */
        if (level == 0) {
                fetch_deposit(self);
                return;
        }
        Sharebuy__Merchant__V1__DepositStatus d = SHAREBUY__MERCHANT__V1__DEPOSIT_STATUS__INIT;
        d.deposit_sp_units = sp_units;
        d.level = (Sharebuy__Merchant__V1__DepositLevel) level;
        d.can_record_sales = level != SHAREBUY__MERCHANT__V1__DEPOSIT_LEVEL__DEPOSIT_LEVEL_BELOW_MINIMUM;
        if (level == SHAREBUY__MERCHANT__V1__DEPOSIT_LEVEL__DEPOSIT_LEVEL_BELOW_MINIMUM) {
                fetch_deposit(self); /* for the SP still to buy */
                return;
        }
        show_deposit(self, &d);
}

static void on_journal_changed(PosWindow *self) {
        update_connection(self);
        /* A sale just queued: try it at once, which also tells whether the services are reachable. */
        if (has_queued(self))
                replay(self);
}

static void on_connection_lost(PosWindow *self) {
        self->online = FALSE;
        update_connection(self);
}

static void action_day(GtkWidget *widget, const char *name, GVariant *param) {
        show(POS_WINDOW(widget), "day");
}

static void action_sale(GtkWidget *widget, const char *name, GVariant *param) {
        show(POS_WINDOW(widget), "sale");
}

static void action_refresh(GtkWidget *widget, const char *name, GVariant *param) {
        PosWindow *self = POS_WINDOW(widget);
        if (g_str_equal(pos_window_get_page(self), "day"))
                pos_day_view_refresh(self->day_view);
        fetch_deposit(self);
}

static void action_member_card(GtkWidget *widget, const char *name, GVariant *param) {
        PosWindow *self = POS_WINDOW(widget);
        PosMemberCardDialog *d = pos_member_card_dialog_new(GTK_WINDOW(self), self->terminal);
        gtk_window_present(GTK_WINDOW(d));
}

static void on_signed_out(GObject *source, GAsyncResult *result, gpointer user_data) {
        g_autoptr(PosWindow) self = user_data;
        g_autoptr(PosCallResult) r = pos_call_finish(result);
        if (self->cancellable)
                show(self, "sign-in");
}

static void action_sign_out(GtkWidget *widget, const char *name, GVariant *param) {
        PosWindow *self = POS_WINDOW(widget);
        pos_call_sign_out_async(self->terminal, self->cancellable, on_signed_out, g_object_ref(self));
}

static void pos_window_dispose(GObject *object) {
        PosWindow *self = POS_WINDOW(object);
        g_clear_handle_id(&self->timer_id, g_source_remove);
        g_cancellable_cancel(self->cancellable);
        g_clear_object(&self->cancellable);
        gtk_widget_dispose_template(GTK_WIDGET(self), POS_TYPE_WINDOW);
        G_OBJECT_CLASS(pos_window_parent_class)->dispose(object);
}

static void pos_window_class_init(PosWindowClass *klass) {
        GObjectClass *object_class = G_OBJECT_CLASS(klass);
        GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
        object_class->dispose = pos_window_dispose;
        gtk_widget_class_set_template_from_resource(widget_class, "/cn/sharebuy/Pos/pos-window.ui");
        gtk_widget_class_bind_template_child(widget_class, PosWindow, title);
        gtk_widget_class_bind_template_child(widget_class, PosWindow, connection_label);
        gtk_widget_class_bind_template_child(widget_class, PosWindow, banner_revealer);
        gtk_widget_class_bind_template_child(widget_class, PosWindow, banner_label);
        gtk_widget_class_bind_template_child(widget_class, PosWindow, stack);
        gtk_widget_class_bind_template_child(widget_class, PosWindow, day_button);
        gtk_widget_class_bind_template_child(widget_class, PosWindow, sale_button);
        gtk_widget_class_install_action(widget_class, "win.day", NULL, action_day);
        gtk_widget_class_install_action(widget_class, "win.sale", NULL, action_sale);
        gtk_widget_class_install_action(widget_class, "win.refresh", NULL, action_refresh);
        gtk_widget_class_install_action(widget_class, "win.member-card", NULL, action_member_card);
        gtk_widget_class_install_action(widget_class, "win.sign-out", NULL, action_sign_out);
        gtk_widget_class_add_binding_action(widget_class, GDK_KEY_F1, 0, "win.sale", NULL);
        gtk_widget_class_add_binding_action(widget_class, GDK_KEY_F2, 0, "win.day", NULL);
        gtk_widget_class_add_binding_action(widget_class, GDK_KEY_F4, 0, "win.member-card", NULL);
        gtk_widget_class_add_binding_action(widget_class, GDK_KEY_F5, 0, "win.refresh", NULL);
}

static void pos_window_init(PosWindow *self) {
        gtk_widget_init_template(GTK_WIDGET(self));
        self->cancellable = g_cancellable_new();
}

PosWindow *pos_window_new(GtkApplication *app, pos_terminal *terminal) {
        g_return_val_if_fail(terminal != NULL, NULL);
        PosWindow *self = g_object_new(POS_TYPE_WINDOW, "application", app, NULL);
        self->terminal = terminal;
        self->setup_page = pos_setup_page_new(terminal);
        self->sign_in_page = pos_sign_in_page_new(terminal);
        self->sale_view = pos_sale_view_new(terminal);
        self->day_view = pos_day_view_new(terminal);
        gtk_stack_add_named(self->stack, GTK_WIDGET(self->setup_page), "setup");
        gtk_stack_add_named(self->stack, GTK_WIDGET(self->sign_in_page), "sign-in");
        gtk_stack_add_named(self->stack, GTK_WIDGET(self->sale_view), "sale");
        gtk_stack_add_named(self->stack, GTK_WIDGET(self->day_view), "day");
        g_signal_connect_swapped(self->setup_page, "paired", G_CALLBACK(on_paired), self);
        g_signal_connect_swapped(self->sign_in_page, "signed-in", G_CALLBACK(on_signed_in), self);
        g_signal_connect_swapped(self->sign_in_page, "unpaired", G_CALLBACK(on_unpaired), self);
        g_signal_connect_swapped(self->sale_view, "session-ended", G_CALLBACK(on_session_ended), self);
        g_signal_connect_swapped(self->sale_view, "deposit-changed", G_CALLBACK(on_deposit_changed), self);
        g_signal_connect_swapped(self->sale_view, "journal-changed", G_CALLBACK(on_journal_changed), self);
        g_signal_connect_swapped(self->sale_view, "connection-lost", G_CALLBACK(on_connection_lost), self);
        pos_state st;
        pos_terminal_get_state(terminal, &st);
        self->online = TRUE;
        show(self, pos_state_paired(&st) ? "sign-in" : "setup");
        self->timer_id = g_timeout_add_seconds(REPLAY_INTERVAL_S, on_timer, self);
        return self;
}
