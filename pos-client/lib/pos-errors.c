/* pos_errors: see pos-errors.h. */
#include "pos-errors.h"

#include <libintl.h>
#include <stdio.h>
#include <string.h>

#define _(s) dgettext(POS_GETTEXT_PACKAGE, s)
#define N_(s) s

typedef struct reason_text {
        const char *reason;
        pos_place place;
        const char *text;
} reason_text;

/* Every reason a till can meet, with its place and words. The msgids are English; zh_CN.po gives the Chinese. */
static const reason_text reason_texts[] = {
        { "REASON_MEMBER_CODE_EXPIRED", POS_PLACE_MEMBER_CODE,
          N_("This member code has expired. Ask the member to refresh the code in the app and scan again.") },
        { "REASON_MEMBER_CODE_USED", POS_PLACE_MEMBER_CODE,
          N_("This member code was already used. Ask the member for a new code.") },
        { "REASON_MEMBER_CODE_FORGED", POS_PLACE_MEMBER_CODE,
          N_("This is not a valid sharebuy member code. Scan the code in the member's app.") },
        { "REASON_MEMBER_UNKNOWN", POS_PLACE_MEMBER_CODE, N_("This member no longer exists.") },
        { "REASON_DEPOSIT_INSUFFICIENT", POS_PLACE_DEPOSIT,
          N_("The store's deposit is too small for this sale. Ask the owner to top up the deposit.") },
        { "REASON_DEPOSIT_BELOW_MINIMUM", POS_PLACE_DEPOSIT,
          N_("The store's deposit is below the minimum: no sales until the owner tops it up.") },
        { "REASON_MERCHANT_SUSPENDED", POS_PLACE_MERCHANT,
          N_("This store is suspended: sales are not possible. Voids of today still work.") },
        { "REASON_MERCHANT_NOT_APPROVED", POS_PLACE_MERCHANT, N_("This store is not approved yet: no sales.") },
        { "REASON_SPEND_OUT_OF_RANGE", POS_PLACE_SPEND, N_("The amount is zero or larger than allowed for one sale.") },
        { "REASON_SALE_ALREADY_VOIDED", POS_PLACE_SALE, N_("This sale was already voided.") },
        { "REASON_VOID_AFTER_CUTOFF", POS_PLACE_SALE,
          N_("This sale can no longer be voided: the day's cut-off has passed.") },
        { "REASON_SALE_CAPTURED_AFTER_CUTOFF", POS_PLACE_SALE,
          N_("This offline sale was taken on an earlier business day: after the cut-off it can no longer be recorded.") },
        { "REASON_SALE_UNKNOWN", POS_PLACE_SALE, N_("No such sale at this store.") },
        { "REASON_IDEMPOTENCY_KEY_REUSED", POS_PLACE_SALE,
          N_("This sale number was already used for another sale. Start the sale again.") },
        { "REASON_BAD_CREDENTIALS", POS_PLACE_SIGN_IN, N_("Wrong login or password.") },
        { "REASON_ACCOUNT_LOCKED", POS_PLACE_SIGN_IN,
          N_("Too many wrong passwords: this login is locked for a while. Try again later.") },
        { "REASON_ACCOUNT_DISABLED", POS_PLACE_SIGN_IN, N_("This login is disabled. Ask the store owner.") },
        { "REASON_RATE_LIMITED", POS_PLACE_GENERAL, N_("Too many attempts. Wait a moment and try again.") },
        { "REASON_PAIRING_CODE_INVALID", POS_PLACE_PAIRING_CODE,
          N_("Wrong or already used pairing code. Ask the store owner for a new one.") },
        { "REASON_PAIRING_CODE_EXPIRED", POS_PLACE_PAIRING_CODE,
          N_("The pairing code has expired. Ask the store owner for a new one.") },
        { "REASON_TERMINAL_REVOKED", POS_PLACE_SESSION,
          N_("This till was removed by the store owner. Pair it again.") },
        { "REASON_TOKEN_EXPIRED", POS_PLACE_SESSION, N_("Your sign-in has expired. Please sign in again.") },
        { "REASON_TOKEN_REVOKED", POS_PLACE_SESSION, N_("Your sign-in was ended. Please sign in again.") },
        { "REASON_TOKEN_INVALID", POS_PLACE_SESSION, N_("Your sign-in is not valid. Please sign in again.") },
        { "REASON_TOKEN_MISSING", POS_PLACE_SESSION, N_("Please sign in first.") },
        { "REASON_ROLE_NOT_ALLOWED", POS_PLACE_GENERAL, N_("A cashier may not do this.") },
        { "REASON_SCOPE_MISMATCH", POS_PLACE_GENERAL, N_("This belongs to another store.") },
        { "REASON_DEPENDENCY_UNAVAILABLE", POS_PLACE_CONNECTION,
          N_("The server is busy or partly down. Try again in a moment.") },
        { "REASON_PHONE_INVALID", POS_PLACE_SIGN_IN, N_("That is not a mainland mobile number.") },
        { "REASON_FIELD_INVALID", POS_PLACE_GENERAL, N_("Something typed is not valid. Check the fields.") },
};

void pos_error_clear(pos_error *e) {
        e->status = SB_OK;
        e->reason[0] = '\0';
        e->message[0] = '\0';
}

void pos_error_set(pos_error *e, sb_status status, const char *reason, const char *message) {
        e->status = status;
        snprintf(e->reason, sizeof e->reason, "%s", reason ? reason : "");
        snprintf(e->message, sizeof e->message, "%s", message ? message : "");
}

static const reason_text *lookup(const pos_error *e) {
        if (!e->reason[0])
                return NULL;
        for (size_t i = 0; i < sizeof reason_texts / sizeof reason_texts[0]; i++)
                if (strcmp(reason_texts[i].reason, e->reason) == 0)
                        return &reason_texts[i];
        return NULL;
}

bool pos_error_offline(const pos_error *e) {
        return e->status == SB_UNAVAILABLE || e->status == SB_DEADLINE_EXCEEDED;
}

const char *pos_error_text(const pos_error *e) {
        const reason_text *rt = lookup(e);
        if (rt)
                return _(rt->text);
        switch (e->status) {
        case SB_OK: return "";
        case SB_UNAVAILABLE: return _("No connection to the server. Check the network cable or Wi-Fi.");
        case SB_DEADLINE_EXCEEDED: return _("The server did not answer in time. Check the connection.");
        case SB_UNAUTHENTICATED: return _("Your sign-in is not valid any more. Please sign in again.");
        case SB_PERMISSION_DENIED: return _("Not allowed for this sign-in.");
        case SB_RESOURCE_EXHAUSTED: return _("Too many attempts. Wait a moment and try again.");
        case SB_UNIMPLEMENTED: return _("The server does not offer this yet. Ask for the services to be updated.");
        case SB_INVALID_ARGUMENT: return _("Something typed is not valid. Check the fields.");
        case SB_NOT_FOUND: return _("Not found.");
        case SB_FAILED_PRECONDITION: return _("Not possible right now.");
        case SB_ALREADY_EXISTS: return _("This was already done.");
        default: return _("Something went wrong on the server. Try again; if it persists, call support.");
        }
}

pos_place pos_error_place(const pos_error *e) {
        const reason_text *rt = lookup(e);
        if (rt)
                return rt->place;
        switch (e->status) {
        case SB_UNAVAILABLE:
        case SB_DEADLINE_EXCEEDED: return POS_PLACE_CONNECTION;
        case SB_UNAUTHENTICATED: return POS_PLACE_SESSION;
        default: return POS_PLACE_GENERAL;
        }
}
