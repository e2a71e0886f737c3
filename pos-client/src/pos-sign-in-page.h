/* PosSignInPage: a cashier signs in on the paired till (CashierSignIn). Emits "signed-in" on success, and
 * "unpaired" when identity says the till was revoked (the first-start screen then comes back). */
#pragma once

#include <gtk/gtk.h>

#include "pos-terminal.h"

G_BEGIN_DECLS

#define POS_TYPE_SIGN_IN_PAGE (pos_sign_in_page_get_type())
G_DECLARE_FINAL_TYPE(PosSignInPage, pos_sign_in_page, POS, SIGN_IN_PAGE, GtkWidget)

PosSignInPage *pos_sign_in_page_new(pos_terminal *terminal);

/* Refresh the store and till names, clear the password and focus the login. */
void pos_sign_in_page_reset(PosSignInPage *self);

G_END_DECLS
