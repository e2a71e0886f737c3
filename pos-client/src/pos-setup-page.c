/* PosSetupPage: see pos-setup-page.h. */
#include "pos-setup-page.h"

#include <adwaita.h>
#include <glib/gi18n.h>

#include "pos-call.h"

struct _PosSetupPage {
        GtkWidget parent_instance;
        pos_terminal *terminal;
        GCancellable *cancellable;
        GtkEntry *server_entry;
        GtkEntry *merchant_entry;
        GtkEntry *ca_entry;
        GtkEntry *code_entry;
        GtkLabel *error_label;
        GtkSpinner *spinner;
        GtkButton *pair_button;
};

G_DEFINE_FINAL_TYPE(PosSetupPage, pos_setup_page, GTK_TYPE_WIDGET)

enum { SIGNAL_PAIRED, N_SIGNALS };
static guint signals[N_SIGNALS];

static void pos_setup_page_show_error(PosSetupPage *self, const char *text, GtkWidget *field) {
        gtk_label_set_text(self->error_label, text);
        gtk_widget_set_visible(GTK_WIDGET(self->error_label), text && *text);
        gtk_widget_remove_css_class(GTK_WIDGET(self->server_entry), "error");
        gtk_widget_remove_css_class(GTK_WIDGET(self->code_entry), "error");
        if (field) {
                gtk_widget_add_css_class(field, "error");
                gtk_widget_grab_focus(field);
        }
}

static void pos_setup_page_busy(PosSetupPage *self, gboolean busy) {
        gtk_spinner_set_spinning(self->spinner, busy);
        gtk_widget_set_sensitive(GTK_WIDGET(self->pair_button), !busy);
        gtk_widget_set_sensitive(GTK_WIDGET(self->code_entry), !busy);
}

static void on_paired(GObject *source, GAsyncResult *result, gpointer user_data) {
        g_autoptr(PosSetupPage) self = user_data;
        g_autoptr(PosCallResult) r = pos_call_finish(result);
        if (!self->cancellable)
                return; /* the page went away meanwhile */
        pos_setup_page_busy(self, FALSE);
        if (r->status != SB_OK) {
                pos_place place = pos_error_place(&r->err);
                GtkWidget *field = place == POS_PLACE_CONNECTION || place == POS_PLACE_SERVER
                                           ? GTK_WIDGET(self->server_entry)
                                           : GTK_WIDGET(self->code_entry);
                pos_setup_page_show_error(self, pos_error_text(&r->err), field);
                return;
        }
        pos_setup_page_show_error(self, NULL, NULL);
        gtk_editable_set_text(GTK_EDITABLE(self->code_entry), "");
        g_signal_emit(self, signals[SIGNAL_PAIRED], 0);
}

static gboolean pairing_code_ok(const char *code) {
        if (strlen(code) != 8)
                return FALSE;
        for (const char *p = code; *p; p++)
                if (!g_ascii_isdigit(*p))
                        return FALSE;
        return TRUE;
}

static void on_pair(PosSetupPage *self) {
        g_autofree char *server = g_strstrip(g_strdup(gtk_editable_get_text(GTK_EDITABLE(self->server_entry))));
        g_autofree char *merchant = g_strstrip(g_strdup(gtk_editable_get_text(GTK_EDITABLE(self->merchant_entry))));
        g_autofree char *ca = g_strstrip(g_strdup(gtk_editable_get_text(GTK_EDITABLE(self->ca_entry))));
        g_autofree char *code = g_strstrip(g_strdup(gtk_editable_get_text(GTK_EDITABLE(self->code_entry))));
        if (!pos_address_valid(server)) {
                pos_setup_page_show_error(self, _("Type the server address as host:port, for example 192.168.1.10:50051."),
                                          GTK_WIDGET(self->server_entry));
                return;
        }
        if (*merchant && !pos_address_valid(merchant)) {
                pos_setup_page_show_error(self, _("Type the merchant service address as host:port, or leave it empty."),
                                          GTK_WIDGET(self->merchant_entry));
                return;
        }
        char err[256] = "";
        if (pos_terminal_set_server(self->terminal, server, merchant, ca, err, sizeof err) < 0) {
                pos_setup_page_show_error(self, *ca ? _("The certificate file cannot be read.")
                                                    : _("The server address is not valid."),
                                          *ca ? GTK_WIDGET(self->ca_entry) : GTK_WIDGET(self->server_entry));
                return;
        }
        if (!pairing_code_ok(code)) {
                pos_setup_page_show_error(self, _("The pairing code has 8 digits."), GTK_WIDGET(self->code_entry));
                return;
        }
        pos_setup_page_show_error(self, NULL, NULL);
        pos_setup_page_busy(self, TRUE);
        const char *host = g_get_host_name();
        pos_call_pair_async(self->terminal, code, host, self->cancellable, on_paired, g_object_ref(self));
}

static void on_server_activate(PosSetupPage *self) {
        gtk_widget_grab_focus(GTK_WIDGET(self->code_entry));
}

static void on_ca_chosen(GtkNativeDialog *dialog, int response, gpointer user_data) {
        PosSetupPage *self = user_data;
        if (response == GTK_RESPONSE_ACCEPT) {
                g_autoptr(GFile) file = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(dialog));
                g_autofree char *path = file ? g_file_get_path(file) : NULL;
                if (path)
                        gtk_editable_set_text(GTK_EDITABLE(self->ca_entry), path);
        }
        g_object_unref(dialog);
}

static void on_choose_ca(PosSetupPage *self) {
        GtkNative *native = gtk_widget_get_native(GTK_WIDGET(self));
        GtkFileChooserNative *d = gtk_file_chooser_native_new(_("TLS root certificate"), GTK_WINDOW(native),
                                                              GTK_FILE_CHOOSER_ACTION_OPEN, _("_Open"), _("_Cancel"));
        g_signal_connect(d, "response", G_CALLBACK(on_ca_chosen), self);
        gtk_native_dialog_show(GTK_NATIVE_DIALOG(d));
}

void pos_setup_page_focus(PosSetupPage *self) {
        g_return_if_fail(POS_IS_SETUP_PAGE(self));
        if (*gtk_editable_get_text(GTK_EDITABLE(self->server_entry)))
                gtk_widget_grab_focus(GTK_WIDGET(self->code_entry));
        else
                gtk_widget_grab_focus(GTK_WIDGET(self->server_entry));
}

static void pos_setup_page_dispose(GObject *object) {
        PosSetupPage *self = POS_SETUP_PAGE(object);
        g_cancellable_cancel(self->cancellable);
        g_clear_object(&self->cancellable);
        gtk_widget_dispose_template(GTK_WIDGET(self), POS_TYPE_SETUP_PAGE);
        G_OBJECT_CLASS(pos_setup_page_parent_class)->dispose(object);
}

static void pos_setup_page_class_init(PosSetupPageClass *klass) {
        GObjectClass *object_class = G_OBJECT_CLASS(klass);
        GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
        object_class->dispose = pos_setup_page_dispose;
        signals[SIGNAL_PAIRED] = g_signal_new("paired", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                                              NULL, G_TYPE_NONE, 0);
        gtk_widget_class_set_layout_manager_type(widget_class, GTK_TYPE_BIN_LAYOUT);
        gtk_widget_class_set_template_from_resource(widget_class, "/cn/sharebuy/Pos/pos-setup-page.ui");
        gtk_widget_class_bind_template_child(widget_class, PosSetupPage, server_entry);
        gtk_widget_class_bind_template_child(widget_class, PosSetupPage, merchant_entry);
        gtk_widget_class_bind_template_child(widget_class, PosSetupPage, ca_entry);
        gtk_widget_class_bind_template_child(widget_class, PosSetupPage, code_entry);
        gtk_widget_class_bind_template_child(widget_class, PosSetupPage, error_label);
        gtk_widget_class_bind_template_child(widget_class, PosSetupPage, spinner);
        gtk_widget_class_bind_template_child(widget_class, PosSetupPage, pair_button);
        gtk_widget_class_bind_template_callback(widget_class, on_pair);
        gtk_widget_class_bind_template_callback(widget_class, on_server_activate);
        gtk_widget_class_bind_template_callback(widget_class, on_choose_ca);
}

static void pos_setup_page_init(PosSetupPage *self) {
        gtk_widget_init_template(GTK_WIDGET(self));
        self->cancellable = g_cancellable_new();
}

PosSetupPage *pos_setup_page_new(pos_terminal *terminal) {
        g_return_val_if_fail(terminal != NULL, NULL);
        PosSetupPage *self = g_object_new(POS_TYPE_SETUP_PAGE, NULL);
        self->terminal = terminal;
        pos_state st;
        pos_terminal_get_state(terminal, &st);
        gtk_editable_set_text(GTK_EDITABLE(self->server_entry), st.server);
        gtk_editable_set_text(GTK_EDITABLE(self->merchant_entry), st.merchant_server);
        gtk_editable_set_text(GTK_EDITABLE(self->ca_entry), st.tls_ca_path);
        return self;
}
