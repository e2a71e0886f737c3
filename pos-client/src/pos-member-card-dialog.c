/* PosMemberCardDialog: see pos-member-card-dialog.h. */
#include "pos-member-card-dialog.h"

#include <glib/gi18n.h>
#include <qrencode.h>

#include "pos-call.h"
#include "pos-receipt.h"

struct _PosMemberCardDialog {
        AdwWindow parent_instance;
        pos_terminal *terminal;
        GCancellable *cancellable;
        char *code;
        gint64 expires_unix_ms;
        GtkEntry *phone_entry;
        GtkPasswordEntry *password_entry;
        GtkLabel *error_label;
        GtkDrawingArea *qr_area;
        GtkButton *print_button;
        GtkButton *issue_button;
};

G_DEFINE_FINAL_TYPE(PosMemberCardDialog, pos_member_card_dialog, ADW_TYPE_WINDOW)

static void draw_qr(GtkDrawingArea *area, cairo_t *cr, int width, int height, gpointer user_data) {
        PosMemberCardDialog *self = user_data;
        if (!self->code)
                return;
        QRcode *qr = QRcode_encodeString(self->code, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
        if (!qr)
                return;
        int total = qr->width + 8;
        double m = (double) MIN(width, height) / total;
        cairo_set_source_rgb(cr, 1, 1, 1);
        cairo_paint(cr);
        cairo_set_source_rgb(cr, 0, 0, 0);
        for (int y = 0; y < qr->width; y++)
                for (int x = 0; x < qr->width; x++)
                        if (qr->data[y * qr->width + x] & 1)
                                cairo_rectangle(cr, (x + 4) * m, (y + 4) * m, m, m);
        cairo_fill(cr);
        QRcode_free(qr);
}

static void show_error(PosMemberCardDialog *self, const char *text) {
        gtk_label_set_text(self->error_label, text ? text : "");
        gtk_widget_set_visible(GTK_WIDGET(self->error_label), text && *text);
}

static void on_issued(GObject *source, GAsyncResult *result, gpointer user_data) {
        g_autoptr(PosMemberCardDialog) self = user_data;
        g_autoptr(PosCallResult) r = pos_call_finish(result);
        if (!self->cancellable)
                return;
        gtk_widget_set_sensitive(GTK_WIDGET(self->issue_button), TRUE);
        gtk_editable_set_text(GTK_EDITABLE(self->password_entry), "");
        if (r->status != SB_OK) {
                show_error(self, pos_error_text(&r->err));
                return;
        }
        const Sharebuy__Identity__V1__IssueMemberCodeResponse *c = (const void *) r->resp;
        g_free(self->code);
        self->code = g_strdup(c->code);
        self->expires_unix_ms = c->expires_unix_ms;
        show_error(self, NULL);
        gtk_widget_set_sensitive(GTK_WIDGET(self->print_button), TRUE);
        gtk_widget_queue_draw(GTK_WIDGET(self->qr_area));
}

static void on_issue(PosMemberCardDialog *self) {
        const char *phone = gtk_editable_get_text(GTK_EDITABLE(self->phone_entry));
        const char *pw = gtk_editable_get_text(GTK_EDITABLE(self->password_entry));
        if (strlen(phone) != 11) {
                show_error(self, _("Type the member's 11-digit mobile number."));
                gtk_widget_grab_focus(GTK_WIDGET(self->phone_entry));
                return;
        }
        if (!*pw) {
                show_error(self, _("The member types its password."));
                gtk_widget_grab_focus(GTK_WIDGET(self->password_entry));
                return;
        }
        gtk_widget_set_sensitive(GTK_WIDGET(self->issue_button), FALSE);
        pos_call_member_card_async(self->terminal, phone, pw, POS_MEMBER_CARD_TTL_S, self->cancellable, on_issued,
                                   g_object_ref(self));
}

static void on_phone_activate(PosMemberCardDialog *self) {
        gtk_widget_grab_focus(GTK_WIDGET(self->password_entry));
}

static void on_print(PosMemberCardDialog *self) {
        if (!self->code)
                return;
        pos_state st;
        pos_terminal_get_state(self->terminal, &st);
        g_autoptr(PosReceipt) card = pos_receipt_new(_("sharebuy member card"));
        pos_receipt_add(card, st.merchant_name, NULL);
        g_autofree char *until = pos_format_time(self->expires_unix_ms);
        pos_receipt_add(card, _("Valid until"), until);
        pos_receipt_add(card, _("Show this card at the till instead of the app."), NULL);
        card->qr_text = g_strdup(self->code);
        pos_receipt_print(card, GTK_WINDOW(self));
}

static void pos_member_card_dialog_dispose(GObject *object) {
        PosMemberCardDialog *self = POS_MEMBER_CARD_DIALOG(object);
        g_cancellable_cancel(self->cancellable);
        g_clear_object(&self->cancellable);
        g_clear_pointer(&self->code, g_free);
        gtk_widget_dispose_template(GTK_WIDGET(self), POS_TYPE_MEMBER_CARD_DIALOG);
        G_OBJECT_CLASS(pos_member_card_dialog_parent_class)->dispose(object);
}

static void pos_member_card_dialog_class_init(PosMemberCardDialogClass *klass) {
        GObjectClass *object_class = G_OBJECT_CLASS(klass);
        GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
        object_class->dispose = pos_member_card_dialog_dispose;
        gtk_widget_class_set_template_from_resource(widget_class, "/cn/sharebuy/Pos/pos-member-card-dialog.ui");
        gtk_widget_class_bind_template_child(widget_class, PosMemberCardDialog, phone_entry);
        gtk_widget_class_bind_template_child(widget_class, PosMemberCardDialog, password_entry);
        gtk_widget_class_bind_template_child(widget_class, PosMemberCardDialog, error_label);
        gtk_widget_class_bind_template_child(widget_class, PosMemberCardDialog, qr_area);
        gtk_widget_class_bind_template_child(widget_class, PosMemberCardDialog, print_button);
        gtk_widget_class_bind_template_child(widget_class, PosMemberCardDialog, issue_button);
        gtk_widget_class_bind_template_callback(widget_class, on_issue);
        gtk_widget_class_bind_template_callback(widget_class, on_phone_activate);
        gtk_widget_class_bind_template_callback(widget_class, on_print);
        gtk_widget_class_add_binding_action(widget_class, GDK_KEY_Escape, 0, "window.close", NULL);
}

static void pos_member_card_dialog_init(PosMemberCardDialog *self) {
        gtk_widget_init_template(GTK_WIDGET(self));
        self->cancellable = g_cancellable_new();
        gtk_drawing_area_set_draw_func(self->qr_area, draw_qr, self, NULL);
}

PosMemberCardDialog *pos_member_card_dialog_new(GtkWindow *parent, pos_terminal *terminal) {
        g_return_val_if_fail(terminal != NULL, NULL);
        PosMemberCardDialog *self = g_object_new(POS_TYPE_MEMBER_CARD_DIALOG, "transient-for", parent, NULL);
        self->terminal = terminal;
        return self;
}
