/* PosSetupPage: the first start — the server address (and a TLS certificate if used), then pairing with the code
 * the store owner got from RegisterTerminal. Emits "paired" once the terminal holds its credential. */
#pragma once

#include <gtk/gtk.h>

#include "pos-terminal.h"

G_BEGIN_DECLS

#define POS_TYPE_SETUP_PAGE (pos_setup_page_get_type())
G_DECLARE_FINAL_TYPE(PosSetupPage, pos_setup_page, POS, SETUP_PAGE, GtkWidget)

PosSetupPage *pos_setup_page_new(pos_terminal *terminal);

/* Put the focus in the first empty field. */
void pos_setup_page_focus(PosSetupPage *self);

G_END_DECLS
