/* PosReceipt: the receipt of a sale as the till prints it — built from the merchant service's SaleReceipt, or from
 * a sale kept in the offline journal — drawn with cairo/Pango for the print dialog and for a PDF file (the same
 * drawing), and as plain lines for the screen. Also the Z report and the member card share the drawing code. */
#pragma once

#include <cairo.h>
#include <gtk/gtk.h>

#include "pos-journal.h"
#include "sharebuy/merchant/v1/merchant.pb-c.h"

G_BEGIN_DECLS

/* Paper: an 80 mm thermal roll (72 mm printable). */
#define POS_RECEIPT_WIDTH_PT 226.77

typedef struct PosReceipt {
        char *title;            /* the store name */
        GPtrArray *lines;       /* "label\tvalue" or a plain line; "" is a rule */
        char *qr_text;          /* member card: the code to draw as a QR below the lines; NULL otherwise */
} PosReceipt;

PosReceipt *pos_receipt_new(const char *title);
void pos_receipt_free(PosReceipt *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PosReceipt, pos_receipt_free)

/* Append a "label: value" line (value may be NULL for a plain line). */
void pos_receipt_add(PosReceipt *r, const char *label, const char *value);
void pos_receipt_add_rule(PosReceipt *r);

/* The receipt of a recorded sale. */
/* till and cashier: this till's label and the signed-in cashier, printed when the receipt leaves them empty (the
 * merchant service knows neither name). */
PosReceipt *pos_receipt_new_sale(const Sharebuy__Merchant__V1__SaleReceipt *rc, gboolean voided, const char *till,
                                 const char *cashier);

/* The slip of a sale kept offline (not yet known to the server). */
PosReceipt *pos_receipt_new_queued(const char *store, const char *terminal, const char *cashier,
                                   const pos_journal_sale *s);

/* The Z report of a day. */
PosReceipt *pos_receipt_new_summary(const char *store, const Sharebuy__Merchant__V1__DaySummaryResponse *z);

/* The whole receipt as text (for the screen and the tests). */
char *pos_receipt_to_text(const PosReceipt *r);

/* Draw on cr, width_pt wide, from the top; returns the height used. */
double pos_receipt_draw(const PosReceipt *r, cairo_t *cr, double width_pt);

/* Write the receipt as a one-page PDF (cairo PDF surface). FALSE with error set on failure. */
gboolean pos_receipt_save_pdf(const PosReceipt *r, const char *path, GError **error);

/* Open the print dialog for the receipt. */
void pos_receipt_print(const PosReceipt *r, GtkWindow *parent);

/* Local time "YYYY-MM-DD HH:MM:SS" of a unix ms timestamp. */
char *pos_format_time(gint64 unix_ms);

G_END_DECLS
