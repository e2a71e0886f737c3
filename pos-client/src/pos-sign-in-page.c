/* PosSignInPage: see pos-sign-in-page.h. */
#include "pos-sign-in-page.h"

#include <adwaita.h>
#include <glib/gi18n.h>

#include "pos-call.h"

struct _PosSignInPage {
        GtkWidget parent_instance;
        pos_terminal *terminal;
        GCancellable *cancellable;
        GtkLabel *store_label;
        GtkLabel *till_label;
        GtkEntry *login_entry;
        GtkPasswordEntry *password_entry;
        GtkLabel *error_label;
        GtkSpinner *spinner;
        GtkButton *sign_in_button;
};

G_DEFINE_FINAL_TYPE(PosSignInPage, pos_sign_in_page, GTK_TYPE_WIDGET)

enum { SIGNAL_SIGNED_IN, SIGNAL_UNPAIRED, N_SIGNALS };
static guint signals[N_SIGNALS];

static void show_error(PosSignInPage *self, const char *text) {
        gtk_label_set_text(self->error_label, text ? text : "");
        gtk_widget_set_visible(GTK_WIDGET(self->error_label), text && *text);
}

static void busy(PosSignInPage *self, gboolean b) {
        gtk_spinner_set_spinning(self->spinner, b);
        gtk_widget_set_sensitive(GTK_WIDGET(self->sign_in_button), !b);
        gtk_widget_set_sensitive(GTK_WIDGET(self->password_entry), !b);
        gtk_widget_set_sensitive(GTK_WIDGET(self->login_entry), !b);
}

static void on_signed_in(GObject *source, GAsyncResult *result, gpointer user_data) {
        g_autoptr(PosSignInPage) self = user_data;
        g_autoptr(PosCallResult) r = pos_call_finish(result);
        if (!self->cancellable)
                return;
        busy(self, FALSE);
        gtk_editable_set_text(GTK_EDITABLE(self->password_entry), "");
        if (r->status == SB_OK) {
                show_error(self, NULL);
                g_signal_emit(self, signals[SIGNAL_SIGNED_IN], 0);
                return;
        }
        if (strcmp(r->err.reason, "REASON_TERMINAL_REVOKED") == 0) {
                pos_terminal_unpair(self->terminal);
                g_signal_emit(self, signals[SIGNAL_UNPAIRED], 0);
                return;
        }
        show_error(self, pos_error_text(&r->err));
        gtk_widget_grab_focus(GTK_WIDGET(pos_error_place(&r->err) == POS_PLACE_SIGN_IN ? (GtkWidget *) self->password_entry
                                                                                        : (GtkWidget *) self->login_entry));
}

static void on_sign_in(PosSignInPage *self) {
        const char *login = gtk_editable_get_text(GTK_EDITABLE(self->login_entry));
        const char *password = gtk_editable_get_text(GTK_EDITABLE(self->password_entry));
        if (!*login) {
                show_error(self, _("Type your login."));
                gtk_widget_grab_focus(GTK_WIDGET(self->login_entry));
                return;
        }
        if (!*password) {
                show_error(self, _("Type your password or PIN."));
                gtk_widget_grab_focus(GTK_WIDGET(self->password_entry));
                return;
        }
        show_error(self, NULL);
        busy(self, TRUE);
        pos_call_sign_in_async(self->terminal, login, password, self->cancellable, on_signed_in, g_object_ref(self));
}

static void on_login_activate(PosSignInPage *self) {
        gtk_widget_grab_focus(GTK_WIDGET(self->password_entry));
}

void pos_sign_in_page_reset(PosSignInPage *self) {
        g_return_if_fail(POS_IS_SIGN_IN_PAGE(self));
        pos_state st;
        pos_terminal_get_state(self->terminal, &st);
        gtk_label_set_text(self->store_label, st.merchant_name[0] ? st.merchant_name : _("sharebuy till"));
        g_autofree char *till = g_strdup_printf(_("Till: %s"), st.terminal_label);
        gtk_label_set_text(self->till_label, till);
        gtk_editable_set_text(GTK_EDITABLE(self->password_entry), "");
        show_error(self, NULL);
        gtk_widget_grab_focus(GTK_WIDGET(self->login_entry));
}

static void pos_sign_in_page_dispose(GObject *object) {
        PosSignInPage *self = POS_SIGN_IN_PAGE(object);
        g_cancellable_cancel(self->cancellable);
        g_clear_object(&self->cancellable);
        gtk_widget_dispose_template(GTK_WIDGET(self), POS_TYPE_SIGN_IN_PAGE);
        G_OBJECT_CLASS(pos_sign_in_page_parent_class)->dispose(object);
}

static void pos_sign_in_page_class_init(PosSignInPageClass *klass) {
        GObjectClass *object_class = G_OBJECT_CLASS(klass);
        GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
        object_class->dispose = pos_sign_in_page_dispose;
        signals[SIGNAL_SIGNED_IN] = g_signal_new("signed-in", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
                                                 NULL, NULL, G_TYPE_NONE, 0);
        signals[SIGNAL_UNPAIRED] = g_signal_new("unpaired", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                                                NULL, G_TYPE_NONE, 0);
        gtk_widget_class_set_layout_manager_type(widget_class, GTK_TYPE_BIN_LAYOUT);
        gtk_widget_class_set_template_from_resource(widget_class, "/cn/sharebuy/Pos/pos-sign-in-page.ui");
        gtk_widget_class_bind_template_child(widget_class, PosSignInPage, store_label);
        gtk_widget_class_bind_template_child(widget_class, PosSignInPage, till_label);
        gtk_widget_class_bind_template_child(widget_class, PosSignInPage, login_entry);
        gtk_widget_class_bind_template_child(widget_class, PosSignInPage, password_entry);
        gtk_widget_class_bind_template_child(widget_class, PosSignInPage, error_label);
        gtk_widget_class_bind_template_child(widget_class, PosSignInPage, spinner);
        gtk_widget_class_bind_template_child(widget_class, PosSignInPage, sign_in_button);
        gtk_widget_class_bind_template_callback(widget_class, on_sign_in);
        gtk_widget_class_bind_template_callback(widget_class, on_login_activate);
}

static void pos_sign_in_page_init(PosSignInPage *self) {
        gtk_widget_init_template(GTK_WIDGET(self));
        self->cancellable = g_cancellable_new();
}

PosSignInPage *pos_sign_in_page_new(pos_terminal *terminal) {
        g_return_val_if_fail(terminal != NULL, NULL);
        PosSignInPage *self = g_object_new(POS_TYPE_SIGN_IN_PAGE, NULL);
        self->terminal = terminal;
        return self;
}
