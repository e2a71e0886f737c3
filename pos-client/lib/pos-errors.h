/* pos_errors: a failed call in plain words, and the place on screen it concerns.
 *
 * The services send a status code, an English message for operators, and a machine-readable reason (the
 * "sharebuy-reason" trailer, a name of sharebuy.common.v1.ErrorReason). The till never parses the message: it picks
 * its own translated text and the field to show it at from the reason, falling back to the status code (an unknown
 * reason counts as none, as the API asks). */
#pragma once

#include <stdbool.h>

#include "rpc.h"

typedef enum pos_place {
        POS_PLACE_GENERAL = 0,    /* a message over the whole screen */
        POS_PLACE_CONNECTION,     /* the connection indicator: nothing reached the server */
        POS_PLACE_SERVER,         /* the server address / certificate fields of the first start */
        POS_PLACE_PAIRING_CODE,   /* the pairing code field */
        POS_PLACE_SIGN_IN,        /* the cashier login / password fields */
        POS_PLACE_SESSION,        /* the session ended: sign in again */
        POS_PLACE_MEMBER_CODE,    /* the scan field */
        POS_PLACE_SPEND,          /* the spend field */
        POS_PLACE_DEPOSIT,        /* the deposit banner */
        POS_PLACE_MERCHANT,       /* the merchant itself (suspended, not approved): a banner */
        POS_PLACE_SALE,           /* the sale being voided or looked at */
} pos_place;

typedef struct pos_error {
        sb_status status;
        char reason[SB_RPC_REASON_MAX];     /* "" when the server sent none */
        char message[SB_RPC_MESSAGE_MAX];   /* the server's (or the library's) English message */
} pos_error;

/* Clear e (status OK, no reason, no message). */
void pos_error_clear(pos_error *e);

/* Set e to a local failure that never reached a server (status, reason NULL or a name, message). */
void pos_error_set(pos_error *e, sb_status status, const char *reason, const char *message);

/* The text for the cashier, translated (gettext domain "sharebuy-pos"): short, plain, saying what to do. Never
 * NULL; a static string. */
const char *pos_error_text(const pos_error *e);

/* Where on the screen the failure belongs. */
pos_place pos_error_place(const pos_error *e);

/* True when the server could not be reached or did not answer in time, so the call may be retried later: this is
 * what makes a sale go to the offline queue. */
bool pos_error_offline(const pos_error *e);

/* The gettext domain of the POS client. */
#define POS_GETTEXT_PACKAGE "sharebuy-pos"
