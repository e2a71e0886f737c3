/* PosReceipt: see pos-receipt.h. */
#include "pos-receipt.h"

#include <cairo-pdf.h>
#include <glib/gi18n.h>
#include <pango/pangocairo.h>
#include <qrencode.h>

#include "pos-money.h"

#define MARGIN_PT 8.0
#define QR_SIZE_PT 150.0

PosReceipt *pos_receipt_new(const char *title) {
        PosReceipt *r = g_new0(PosReceipt, 1);
        r->title = g_strdup(title ? title : "");
        r->lines = g_ptr_array_new_with_free_func(g_free);
        return r;
}

void pos_receipt_free(PosReceipt *r) {
        if (!r)
                return;
        g_free(r->title);
        g_ptr_array_unref(r->lines);
        g_free(r->qr_text);
        g_free(r);
}

void pos_receipt_add(PosReceipt *r, const char *label, const char *value) {
        g_ptr_array_add(r->lines, value ? g_strdup_printf("%s\t%s", label, value) : g_strdup(label));
}

void pos_receipt_add_rule(PosReceipt *r) {
        g_ptr_array_add(r->lines, g_strdup(""));
}

char *pos_format_time(gint64 unix_ms) {
        g_autoptr(GDateTime) dt = g_date_time_new_from_unix_local(unix_ms / 1000);
        return dt ? g_date_time_format(dt, "%Y-%m-%d %H:%M:%S") : g_strdup("?");
}

static void add_yuan(PosReceipt *r, const char *label, gint64 fen) {
        char buf[40];
        pos_format_yuan(fen, buf, sizeof buf);
        pos_receipt_add(r, label, buf);
}

static void add_units(PosReceipt *r, const char *label, gint64 units, const char *suffix) {
        char buf[40];
        pos_format_units(units, buf, sizeof buf);
        g_autofree char *v = g_strdup_printf("%s %s", buf, suffix);
        pos_receipt_add(r, label, v);
}

static const char *or_else(const char *a, const char *b) {
        return a && *a ? a : b ? b : "";
}

PosReceipt *pos_receipt_new_sale(const Sharebuy__Merchant__V1__SaleReceipt *rc, gboolean voided, const char *till,
                                 const char *cashier) {
        PosReceipt *r = pos_receipt_new(rc->merchant_name);
        g_autofree char *when = pos_format_time(rc->recorded_unix_ms);
        pos_receipt_add(r, _("Till"), or_else(rc->terminal_label, till));
        pos_receipt_add(r, _("Cashier"), or_else(rc->cashier_name, cashier));
        pos_receipt_add(r, _("Time"), when);
        pos_receipt_add(r, _("Sale no."), rc->sale_id);
        pos_receipt_add_rule(r);
        if (rc->member) {
                g_autofree char *m = g_strdup_printf("%s%s", rc->member->masked_phone,
                                                     rc->member->vip ? _(" (VIP)") : "");
                pos_receipt_add(r, _("Member"), m);
        }
        add_yuan(r, _("Amount"), rc->spend_fen);
        add_units(r, rc->member_cv_locked ? _("CV earned (locked)") : _("CV earned"), rc->member_cv_units, "CV");
        add_units(r, _("SP from deposit"), rc->deposit_sp_units, "SP");
        add_units(r, _("Deposit left"), rc->deposit_left_sp_units, "SP");
        pos_receipt_add_rule(r);
        if (voided)
                pos_receipt_add(r, _("*** VOIDED ***"), NULL);
        pos_receipt_add(r, _("Thank you for shopping with sharebuy!"), NULL);
        return r;
}

PosReceipt *pos_receipt_new_queued(const char *store, const char *terminal, const char *cashier,
                                   const pos_journal_sale *s) {
        PosReceipt *r = pos_receipt_new(store);
        g_autofree char *when = pos_format_time(s->captured_unix_ms);
        pos_receipt_add(r, _("Till"), terminal);
        pos_receipt_add(r, _("Cashier"), cashier);
        pos_receipt_add(r, _("Time"), when);
        pos_receipt_add(r, _("Sale no."), s->sale_id);
        pos_receipt_add_rule(r);
        add_yuan(r, _("Amount"), s->spend_fen);
        pos_receipt_add_rule(r);
        pos_receipt_add(r, _("Saved offline: CV will be credited when the till is back online."), NULL);
        return r;
}

PosReceipt *pos_receipt_new_summary(const char *store, const Sharebuy__Merchant__V1__DaySummaryResponse *z) {
        PosReceipt *r = pos_receipt_new(store);
        g_autofree char *when = pos_format_time(z->generated_unix_ms);
        pos_receipt_add(r, _("Z report"), z->business_day);
        pos_receipt_add(r, _("Printed"), when);
        pos_receipt_add(r, z->closed ? _("Day closed: final figures") : _("Day open: figures so far"), NULL);
        pos_receipt_add_rule(r);
        const Sharebuy__Merchant__V1__SalesTotals *tt = z->total;
        if (tt) {
                g_autofree char *n = g_strdup_printf("%u", tt->sale_count);
                g_autofree char *v = g_strdup_printf("%u", tt->void_count);
                pos_receipt_add(r, _("Sales"), n);
                pos_receipt_add(r, _("Voids"), v);
                add_yuan(r, _("Gross spend"), tt->gross_spend_fen);
                add_yuan(r, _("Voided spend"), tt->void_spend_fen);
                add_yuan(r, _("Net spend"), tt->net_spend_fen);
                add_units(r, _("CV to members"), tt->net_member_cv_units, "CV");
                add_units(r, _("CV to the store"), tt->net_merchant_cv_units, "CV");
                add_units(r, _("SP from deposit"), tt->net_deposit_sp_units, "SP");
        }
        add_units(r, _("Deposit left"), z->deposit_sp_units, "SP");
        for (size_t i = 0; i < z->n_terminals; i++) {
                const Sharebuy__Merchant__V1__TerminalSummary *ts = z->terminals[i];
                if (!ts->totals)
                        continue;
                pos_receipt_add_rule(r);
                g_autofree char *n = g_strdup_printf(_("%u sales, %u voids"), ts->totals->sale_count,
                                                     ts->totals->void_count);
                pos_receipt_add(r, ts->terminal_label, n);
                add_yuan(r, _("Net spend"), ts->totals->net_spend_fen);
        }
        return r;
}

char *pos_receipt_to_text(const PosReceipt *r) {
        GString *s = g_string_new(r->title);
        g_string_append_c(s, '\n');
        for (guint i = 0; i < r->lines->len; i++) {
                const char *l = g_ptr_array_index(r->lines, i);
                if (!*l) {
                        g_string_append(s, "--------------------------------\n");
                        continue;
                }
                const char *tab = strchr(l, '\t');
                if (tab)
                        g_string_append_printf(s, "%.*s: %s\n", (int) (tab - l), l, tab + 1);
                else
                        g_string_append_printf(s, "%s\n", l);
        }
        return g_string_free(s, FALSE);
}

static double draw_text(cairo_t *cr, PangoFontDescription *font, const char *text, double x, double y, double w,
                        PangoAlignment align, gboolean draw) {
        PangoLayout *layout = pango_cairo_create_layout(cr);
        pango_layout_set_font_description(layout, font);
        pango_layout_set_width(layout, (int) (w * PANGO_SCALE));
        pango_layout_set_wrap(layout, PANGO_WRAP_WORD_CHAR);
        pango_layout_set_alignment(layout, align);
        pango_layout_set_text(layout, text, -1);
        int lw, lh;
        pango_layout_get_size(layout, &lw, &lh);
        if (draw) {
                cairo_move_to(cr, x, y);
                pango_cairo_show_layout(cr, layout);
        }
        g_object_unref(layout);
        return (double) lh / PANGO_SCALE;
}

static double draw_qr(cairo_t *cr, const char *text, double x, double y, double size, gboolean draw) {
        QRcode *qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
        if (!qr)
                return 0;
        /* A quiet zone of four modules, as the scanners expect. */
        int total = qr->width + 8;
        double m = size / total;
        if (draw) {
                cairo_save(cr);
                cairo_set_source_rgb(cr, 1, 1, 1);
                cairo_rectangle(cr, x, y, size, size);
                cairo_fill(cr);
                cairo_set_source_rgb(cr, 0, 0, 0);
                for (int row = 0; row < qr->width; row++)
                        for (int col = 0; col < qr->width; col++)
                                if (qr->data[row * qr->width + col] & 1)
                                        cairo_rectangle(cr, x + (col + 4) * m, y + (row + 4) * m, m, m);
                cairo_fill(cr);
                cairo_restore(cr);
        }
        QRcode_free(qr);
        return size;
}

static double layout_receipt(const PosReceipt *r, cairo_t *cr, double width_pt, gboolean draw) {
        PangoFontDescription *title = pango_font_description_from_string("Sans Bold 12");
        PangoFontDescription *body = pango_font_description_from_string("Sans 8.5");
        double w = width_pt - 2 * MARGIN_PT;
        double y = MARGIN_PT;
        if (draw)
                cairo_set_source_rgb(cr, 0, 0, 0);
        y += draw_text(cr, title, r->title, MARGIN_PT, y, w, PANGO_ALIGN_CENTER, draw) + 4;
        for (guint i = 0; i < r->lines->len; i++) {
                const char *l = g_ptr_array_index(r->lines, i);
                if (!*l) {
                        if (draw) {
                                cairo_set_line_width(cr, 0.5);
                                cairo_set_dash(cr, (double[]) { 2, 2 }, 2, 0);
                                cairo_move_to(cr, MARGIN_PT, y + 3);
                                cairo_line_to(cr, width_pt - MARGIN_PT, y + 3);
                                cairo_stroke(cr);
                                cairo_set_dash(cr, NULL, 0, 0);
                        }
                        y += 7;
                        continue;
                }
                const char *tab = strchr(l, '\t');
                if (!tab) {
                        y += draw_text(cr, body, l, MARGIN_PT, y, w, PANGO_ALIGN_CENTER, draw) + 2;
                        continue;
                }
                g_autofree char *label = g_strndup(l, (gsize) (tab - l));
                double h1 = draw_text(cr, body, label, MARGIN_PT, y, w * 0.45, PANGO_ALIGN_LEFT, draw);
                double h2 = draw_text(cr, body, tab + 1, MARGIN_PT + w * 0.45, y, w * 0.55, PANGO_ALIGN_RIGHT, draw);
                y += MAX(h1, h2) + 2;
        }
        if (r->qr_text) {
                double size = MIN(QR_SIZE_PT, w);
                y += 4 + draw_qr(cr, r->qr_text, (width_pt - size) / 2, y + 4, size, draw) + 4;
        }
        pango_font_description_free(title);
        pango_font_description_free(body);
        return y + MARGIN_PT;
}

double pos_receipt_draw(const PosReceipt *r, cairo_t *cr, double width_pt) {
        return layout_receipt(r, cr, width_pt, TRUE);
}

gboolean pos_receipt_save_pdf(const PosReceipt *r, const char *path, GError **error) {
        /* Measure first on a scratch surface, so the page is exactly as long as the receipt. */
        cairo_surface_t *scratch = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 1, 1);
        cairo_t *mcr = cairo_create(scratch);
        double h = layout_receipt(r, mcr, POS_RECEIPT_WIDTH_PT, FALSE);
        cairo_destroy(mcr);
        cairo_surface_destroy(scratch);

        cairo_surface_t *pdf = cairo_pdf_surface_create(path, POS_RECEIPT_WIDTH_PT, h);
        cairo_t *cr = cairo_create(pdf);
        pos_receipt_draw(r, cr, POS_RECEIPT_WIDTH_PT);
        cairo_show_page(cr);
        cairo_destroy(cr);
        cairo_surface_finish(pdf);
        cairo_status_t st = cairo_surface_status(pdf);
        cairo_surface_destroy(pdf);
        if (st != CAIRO_STATUS_SUCCESS) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, _("Could not write %s: %s"), path,
                            cairo_status_to_string(st));
                return FALSE;
        }
        return TRUE;
}

static void on_draw_page(GtkPrintOperation *op, GtkPrintContext *context, int page_nr, gpointer user_data) {
        const PosReceipt *r = user_data;
        cairo_t *cr = gtk_print_context_get_cairo_context(context);
        double w = gtk_print_context_get_width(context);
        pos_receipt_draw(r, cr, MIN(w, POS_RECEIPT_WIDTH_PT * 1.5));
}

void pos_receipt_print(const PosReceipt *r, GtkWindow *parent) {
        g_autoptr(GtkPrintOperation) op = gtk_print_operation_new();
        /* The operation keeps the receipt alive through the dialog; the receipt is copied for that. */
        PosReceipt *copy = pos_receipt_new(r->title);
        for (guint i = 0; i < r->lines->len; i++)
                g_ptr_array_add(copy->lines, g_strdup(g_ptr_array_index(r->lines, i)));
        copy->qr_text = g_strdup(r->qr_text);
        g_object_set_data_full(G_OBJECT(op), "pos-receipt", copy, (GDestroyNotify) pos_receipt_free);
        gtk_print_operation_set_n_pages(op, 1);
        gtk_print_operation_set_job_name(op, r->title);
        g_signal_connect(op, "draw-page", G_CALLBACK(on_draw_page), copy);
        g_autoptr(GError) error = NULL;
        gtk_print_operation_run(op, GTK_PRINT_OPERATION_ACTION_PRINT_DIALOG, parent, &error);
        if (error)
                g_warning("printing failed: %s", error->message);
}
