/* pos_terminal: the till's logic without a display — its state, its sessions, the offline journal, and the calls
 * to identity and merchant.
 *
 * Every call blocks (the GTK client runs them on worker threads through GTask) and is thread-safe: the state and
 * tokens sit behind one lock that is never held across a network call. A call returns an sb_status; on failure
 * `err` holds the status, the reason and the message (see pos-errors.h for the words to show). A response
 * (protobuf-c message) returned through ret_* belongs to the caller: free it with
 * protobuf_c_message_free_unpacked(msg, NULL).
 *
 * Sessions: the terminal's own credential comes from PairTerminal and is kept in the state file; its short access
 * token is refreshed on demand. A cashier signs in on every start (never kept on disk); its access token is
 * refreshed before it expires and once more when a call says it has.
 *
 * Sales go through the journal: pos_terminal_sell() appends the sale (with a fresh sale id) durably *before* the
 * first attempt, then calls RecordSale. When the server cannot be reached the sale stays queued, and
 * pos_terminal_replay() sends it later with captured_unix_ms set to the moment of confirmation, so the merchant
 * service judges the member code as of then (within its offline grace and the same business day). RecordSale is
 * idempotent on the sale id, so a sale sent twice — after a crash between the answer and the journal's "sent"
 * record — is recorded once. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pos-errors.h"
#include "pos-journal.h"
#include "pos-state.h"
#include "sharebuy/identity/v1/identity.pb-c.h"
#include "sharebuy/merchant/v1/merchant.pb-c.h"

typedef struct pos_terminal pos_terminal;

/* Deadlines of the calls, in ms. Scan-to-quote must stay fast on a good line and give up quickly on a bad one. */
#define POS_QUOTE_DEADLINE_MS 3000
#define POS_SALE_DEADLINE_MS 8000
#define POS_CALL_DEADLINE_MS 5000

/* Open the terminal kept in folder dir (created 0700 if missing): its state file (terminal.conf) and journal
 * (journal.log); finished sales older than three days are compacted away. Sets up clients when the state names a
 * server. On failure writes a message into errbuf and returns a negative errno; *ret only on success. */
int pos_terminal_new(const char *dir, pos_terminal **ret, char *errbuf, size_t errbuf_n);

void pos_terminal_free(pos_terminal *t);

/* A copy of the state (thread-safe). */
void pos_terminal_get_state(pos_terminal *t, pos_state *ret);

/* What pos_journal_open() found in the journal at start (bad or torn records), for a notice on screen. */
pos_journal_stats pos_terminal_journal_stats(pos_terminal *t);

/* Set the server address(es) and certificate of the first start and connect (lazily). -EINVAL for an address
 * that is not host:port, or a certificate file that cannot be read; the state is saved. merchant_server may be
 * NULL or "" (the same server). */
int pos_terminal_set_server(pos_terminal *t, const char *server, const char *merchant_server, const char *tls_ca_path,
                            char *errbuf, size_t errbuf_n);

/* Pair this terminal with the owner's 8-digit code; keeps the credential and the names in the state file. */
sb_status pos_terminal_pair(pos_terminal *t, const char *pairing_code, const char *device_name, pos_error *err);

/* Forget the pairing (the owner revoked the terminal): the state keeps only the server address. */
int pos_terminal_unpair(pos_terminal *t);

/* Sign a cashier in on this terminal (CashierSignIn with the terminal's token). */
sb_status pos_terminal_sign_in(pos_terminal *t, const char *login, const char *password, pos_error *err);

/* Sign the cashier out: revokes its session at identity when reachable, forgets it here in any case. */
void pos_terminal_sign_out(pos_terminal *t);

/* True while a cashier is signed in; ret_name (may be NULL, POS_NAME_MAX bytes) gets its display name. */
bool pos_terminal_signed_in(pos_terminal *t, char *ret_name, size_t n);

/* The quote for a member code and a spend (QuoteSale). */
sb_status pos_terminal_quote(pos_terminal *t, const char *member_code, int64_t spend_fen,
                             Sharebuy__Merchant__V1__SaleQuote **ret, pos_error *err);

typedef enum pos_sell_outcome {
        POS_SELL_RECORDED, /* the merchant service recorded it: the receipt is in ret_resp */
        POS_SELL_QUEUED,   /* no connection: kept in the journal, sent later by pos_terminal_replay() */
        POS_SELL_REFUSED,  /* the merchant service refused it (err says why); marked failed in the journal */
        POS_SELL_NOT_KEPT, /* the journal could not store it (disk, queue full, bad input): nothing was sent */
} pos_sell_outcome;

/* Confirm a sale: a new sale id, the journal, then RecordSale (see above). `offline` tells that the quote already
 * failed for want of a connection (the sale is then marked as taken offline). ret_sale_id (37 bytes) gets the id
 * in every outcome but NOT_KEPT; *ret_resp is set only for RECORDED. */
pos_sell_outcome pos_terminal_sell(pos_terminal *t, const char *member_code, int64_t spend_fen, bool offline,
                                   char ret_sale_id[static 37], Sharebuy__Merchant__V1__RecordSaleResponse **ret_resp,
                                   pos_error *err);

/* Send every queued sale, oldest first, until one fails for want of a connection. Each answer is recorded in the
 * journal (sent with its figures, or failed with its reason). Only one replay runs at a time (a second caller
 * returns at once with 0 sent). Returns the status that stopped it (SB_OK when the queue was emptied) and the
 * counts. */
sb_status pos_terminal_replay(pos_terminal *t, size_t *ret_sent, size_t *ret_failed, pos_error *err);

/* Copies of the journal's sales, oldest first (thread-safe); *ret is malloc'd (free()). */
int pos_terminal_journal_sales(pos_terminal *t, pos_journal_sale **ret, size_t *ret_n);

/* Void a sale of today (VoidSale with a fresh void id). */
sb_status pos_terminal_void(pos_terminal *t, const char *sale_id, const char *reason,
                            Sharebuy__Merchant__V1__VoidSaleResponse **ret, pos_error *err);

/* The sales of a business day ("" = every day; newest first) at this terminal, at most max (1..500). */
sb_status pos_terminal_list_sales(pos_terminal *t, const char *business_day, uint32_t max,
                                  Sharebuy__Merchant__V1__ListSalesResponse **ret, pos_error *err);

/* The Z report of a business day ("" = today) for the whole store. */
sb_status pos_terminal_day_summary(pos_terminal *t, const char *business_day,
                                   Sharebuy__Merchant__V1__DaySummaryResponse **ret, pos_error *err);

/* The store's deposit. */
sb_status pos_terminal_deposit(pos_terminal *t, Sharebuy__Merchant__V1__DepositStatus **ret, pos_error *err);

/* A member card code: the member types its phone and password on the till; the code is reusable for ttl_seconds
 * (a printed card). Text only: the client draws the QR itself. */
sb_status pos_terminal_member_card(pos_terminal *t, const char *phone, const char *password, uint32_t ttl_seconds,
                                   Sharebuy__Identity__V1__IssueMemberCodeResponse **ret, pos_error *err);

/* Milliseconds since the epoch (CLOCK_REALTIME). */
int64_t pos_now_unix_ms(void);
