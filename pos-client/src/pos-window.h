/* PosWindow: the till's one window. A stack of the first-start page, the cashier sign-in, the sale screen and the
 * day's list with the Z report; a header with the store, till and cashier, the connection state and the number of
 * sales waiting offline; a banner when the deposit is low. It owns the offline replay: every few seconds while
 * sales are queued it sends them (pos_terminal_replay), and it polls the deposit as a heartbeat otherwise.
 *
 * Keys: F1 sale, F2 today's sales, F4 member card, F5 refresh. */
#pragma once

#include <adwaita.h>

#include "pos-terminal.h"

G_BEGIN_DECLS

#define POS_TYPE_WINDOW (pos_window_get_type())
G_DECLARE_FINAL_TYPE(PosWindow, pos_window, POS, WINDOW, AdwApplicationWindow)

/* terminal must outlive the window. */
PosWindow *pos_window_new(GtkApplication *app, pos_terminal *terminal);

/* The name of the page shown: "setup", "sign-in", "sale" or "day". */
const char *pos_window_get_page(PosWindow *self);

G_END_DECLS
