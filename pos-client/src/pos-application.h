/* PosApplication: the till program. Opens the terminal's folder (state and offline journal), sets up the
 * translations (Chinese first), loads the stylesheet and shows the PosWindow.
 *
 * Options: --state-dir DIR (also SB_POS_STATE_DIR; default: the user's data folder/sharebuy-pos). */
#pragma once

#include <adwaita.h>

#include "pos-terminal.h"

G_BEGIN_DECLS

#define POS_TYPE_APPLICATION (pos_application_get_type())
G_DECLARE_FINAL_TYPE(PosApplication, pos_application, POS, APPLICATION, AdwApplication)

PosApplication *pos_application_new(void);

/* The terminal, once the application started (NULL before). */
pos_terminal *pos_application_get_terminal(PosApplication *self);

/* setlocale(), and the gettext domain bound to SB_POS_LOCALEDIR (for an uninstalled build) or the installed
 * locale folder. Chinese first: when the environment names no language (LANGUAGE unset and the C locale), the
 * till speaks zh_CN; LANGUAGE=en gives English. Call once, before any window. */
void pos_application_init_i18n(void);

G_END_DECLS
