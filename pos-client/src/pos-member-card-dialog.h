/* PosMemberCardDialog: a member without a smartphone types its phone number and password on the till; the till
 * gets a long-lived card code (IssueMemberCode, role CASHIER) and prints it as a QR drawn with libqrencode. */
#pragma once

#include <adwaita.h>

#include "pos-terminal.h"

G_BEGIN_DECLS

#define POS_TYPE_MEMBER_CARD_DIALOG (pos_member_card_dialog_get_type())
G_DECLARE_FINAL_TYPE(PosMemberCardDialog, pos_member_card_dialog, POS, MEMBER_CARD_DIALOG, AdwWindow)

/* How long a printed card is valid. */
#define POS_MEMBER_CARD_TTL_S (365u * 24u * 3600u)

PosMemberCardDialog *pos_member_card_dialog_new(GtkWindow *parent, pos_terminal *terminal);

G_END_DECLS
