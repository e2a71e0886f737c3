/* PosSaleView: the sale screen. A scan field that always has the focus (USB/Bluetooth scanners type the member
 * code and Enter), the amount with a numeric keypad, the quote from the merchant service (masked phone, VIP, CV
 * the member earns, SP taken from the deposit) before the cashier confirms, then the receipt — printable, savable
 * as PDF, voidable the same day. Without a connection the sale is kept in the offline journal and the screen says
 * so.
 *
 * Keys: the scan field takes what a scanner types. The amount takes the numeric keypad's keys (KP_0..KP_9,
 * KP_Decimal) at any time, and the main row's digits, '.' and Backspace once a member code was scanned and the scan
 * field is empty. Enter asks for the quote, then confirms; Esc cancels the sale; F9 voids the sale on the receipt;
 * Ctrl+P prints it, Ctrl+S saves it as PDF.
 *
 * Signals: "session-ended" (sign in again), "deposit-changed" (gint64 deposit SP units, gint DepositLevel),
 * "journal-changed" (a sale was queued or a journal status changed). */
#pragma once

#include <gtk/gtk.h>

#include "pos-terminal.h"

G_BEGIN_DECLS

#define POS_TYPE_SALE_VIEW (pos_sale_view_get_type())
G_DECLARE_FINAL_TYPE(PosSaleView, pos_sale_view, POS, SALE_VIEW, GtkWidget)

PosSaleView *pos_sale_view_new(pos_terminal *terminal);

/* Start over: clear the code, the amount and the quote, focus the scan field. */
void pos_sale_view_reset(PosSaleView *self);

/* Give the focus back to the scan field (after a dialog, a click elsewhere). */
void pos_sale_view_focus_scan(PosSaleView *self);

G_END_DECLS
