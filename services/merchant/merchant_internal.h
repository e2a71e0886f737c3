/* The merchant service's internals shared by its files: state, rows, the store, calls to other services. Not a
 * public interface: only services/merchant includes it. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "economy.h"
#include "metrics.h"
#include "merchant.h"
#include "merchant_util.h"
#include "sharebuy/identity/v1/identity.pb-c.h"
#include "sharebuy/merchant/v1/merchant.pb-c.h"
#include "sharebuy/region/v1/region.pb-c.h"
#include "sharebuy/wallet/v1/wallet.pb-c.h"

/* Merchant states, numbered as sharebuy.merchant.v1.MerchantStatus (and stored so). */
enum {
        MERCHANT_PENDING = 1,
        MERCHANT_APPROVED = 2,
        MERCHANT_REJECTED = 3,
        MERCHANT_SUSPENDED = 4,
};

/* Sale and void states as stored. */
enum {
        MERCHANT_SALE_PENDING = 1,
        MERCHANT_SALE_RECORDED = 2,
        MERCHANT_VOID_NONE = 0,
        MERCHANT_VOID_PENDING = 1,
        MERCHANT_VOID_DONE = 2,
};

/* Limits on what clients send. */
#define MERCHANT_NAME_MAX_CHARS 64
#define MERCHANT_ADDRESS_MAX_CHARS 200
#define MERCHANT_CONTACT_MAX_CHARS 64
#define MERCHANT_REASON_MAX_CHARS 200
#define MERCHANT_CODE_MAX_BYTES 512       /* a member code as scanned */
#define MERCHANT_REFERRAL_CODE_MAX 32
#define MERCHANT_PAGE_TOKEN_MAX 200
#define MERCHANT_NEARBY_RADIUS_MAX_M 50000
#define MERCHANT_NEARBY_CANDIDATES_MAX 2000 /* rows a nearby search reads from its bounding box */
#define MERCHANT_CLOCK_SKEW_MS 60000       /* how far in the future a terminal's capture time may lie */
#define MERCHANT_PEER_DEADLINE_MS 5000

/* Settings of a district for one business day: the economy's rules and the few values the economy library does not
 * hold. Region settings take effect only at a business day's start, so (district, day) → settings never changes
 * and is cached without expiry. */
typedef struct merchant_settings {
        sb_econ_settings econ;
        int64_t deposit_warning_fen;
        int64_t sale_max_spend_fen;
        int64_t offline_grace_ms;
} merchant_settings;

#define MERCHANT_SETTINGS_CACHE 64
#define MERCHANT_CENTRE_CACHE 256

typedef struct merchant_settings_slot {
        char district[7];
        char day[MERCHANT_DAY_LEN + 1];
        merchant_settings s;
} merchant_settings_slot;

typedef struct merchant_centre_slot {
        char district[7];
        uint64_t centre_id, parent_id;
} merchant_centre_slot;

/* The deposit and price in force of a merchant as last seen (see merchant_deposit_cached()). */
typedef struct merchant_deposit_slot {
        uint64_t merchant_id;
        int64_t sp_units, price_micro;
        char day[MERCHANT_DAY_LEN + 1];
        int64_t fetched_ms;
} merchant_deposit_slot;

#define MERCHANT_DEPOSIT_CACHE 1024

/* NearbyStores calls of one peer address in the current minute. */
typedef struct merchant_rate_slot {
        uint64_t peer_hash;
        int64_t minute;
        uint32_t count;
} merchant_rate_slot;

#define MERCHANT_RATE_SLOTS 1024

/* The most sales whose rows one group statement writes (8 columns a sale in the update, 34 in the insert: within
 * SB_DB_PARAMS_MAX). */
#define MERCHANT_SALE_GROUP_MAX 16

/* A sale's update to recorded: its transaction and the deposit left after it. */
typedef struct merchant_sale_mark {
        uint64_t merchant_id, tx_id;
        int64_t deposit_left_sp;
        char sale_id[MERCHANT_ID_MAX + 1];
        struct merchant_sale_mark *next; /* in the queue of marks written behind */
} merchant_sale_mark;

typedef struct merchant_state {
        int utc_offset_min, cutoff_min;
        int64_t deposit_cache_ms;
        int64_t nearby_per_minute;
        merchant_rate_slot nearby_rate[MERCHANT_RATE_SLOTS]; /* direct-mapped by address hash; guarded by mu */
        int64_t test_delay_after_post_ms; /* tests only: a pause between posting a sale and storing it */
        int64_t centre_poll_ms;
        /* Group commit of the sales' pending rows and of their updates to recorded (merchant_sale.c): the
         * multi-row statements for 2..MERCHANT_SALE_GROUP_MAX sales, built once. */
        bool groups_ready;
        sb_batch pending_rows, recorded_rows;
        char *pending_sql[MERCHANT_SALE_GROUP_MAX + 1], *mark_sql[MERCHANT_SALE_GROUP_MAX + 1];
        sb_metrics_series *m_groups, *m_grouped;
        /* The updates to recorded written behind the answer (merchant.mark_behind, merchant_sale.c "Marks written
         * behind"): a queue, one thread with its own connection writing it in groups, and the sweep of pending rows
         * whose posting went through. */
        bool marks_on, marks_started, marks_stop;
        pthread_t marks_thread;
        pthread_mutex_t marks_mu;
        pthread_cond_t marks_cv, marks_written_cv;
        merchant_sale_mark *marks_head, *marks_tail;
        uint64_t marks_queued, marks_written; /* marks taken into the queue, and written (in queue order) */
        int64_t sweep_age_ms, sweep_every_ms;
        int64_t test_delay_before_mark_ms; /* tests only: a pause before the marker writes a group */
        sb_metrics_series *m_swept;
        pthread_mutex_t mu; /* guards everything below */
        merchant_settings_slot settings[MERCHANT_SETTINGS_CACHE];
        size_t n_settings, next_settings;
        merchant_centre_slot centres[MERCHANT_CENTRE_CACHE];
        size_t n_centres, next_centre;
        uint64_t centre_revision;
        int64_t centre_checked_ms;
        merchant_deposit_slot deposits[MERCHANT_DEPOSIT_CACHE]; /* direct-mapped by merchant id */
} merchant_state;

/* One merchant as stored. */
typedef struct merchant_row {
        uint64_t id;
        char name[4 * MERCHANT_NAME_MAX_CHARS + 1];
        char licence[MERCHANT_LICENCE_LEN + 1];
        char address[4 * MERCHANT_ADDRESS_MAX_CHARS + 1];
        int32_t lat_e6, lon_e6;
        char district[7];
        char contact_name[4 * MERCHANT_CONTACT_MAX_CHARS + 1];
        char contact_phone[24];
        int status;
        char status_reason[4 * MERCHANT_REASON_MAX_CHARS + 1];
        int32_t rate_bp, pending_rate_bp;
        char pending_rate_day[MERCHANT_DAY_LEN + 1];
        uint64_t owner_user_id;
        int referrer_kind;
        uint64_t referrer_id;
        bool referrer_vip;
        char referral_code[17];
        uint64_t approved_by_centre_id;
        bool owner_granted;
        int64_t applied_ms, status_changed_ms;
        uint64_t status_changed_by;
} merchant_row;

/* --- Common helpers (merchant.c) --- */

merchant_state *merchant_st(sb_call *call);
int64_t merchant_now_ms(void);

/* Today's business day. */
void merchant_today(sb_call *call, char out[MERCHANT_DAY_LEN + 1]);

/* The worker's database with the statement limit from the call's deadline; NULL after failing the call. */
sb_db *merchant_db(sb_call *call, sb_status *ret_status);

/* Calls method of another service (identity, wallet, region) with this service's credential and the call's
 * deadline (at most MERCHANT_PEER_DEADLINE_MS). Returns its status; msg gets its message and reason (at least
 * SB_RPC_REASON_MAX bytes, may be NULL) its sharebuy-reason. *resp on SB_OK: free with merchant_free(). */
sb_status merchant_peer(sb_call *call, const char *peer, const ProtobufCServiceDescriptor *desc, const char *method,
                        const void *req, const ProtobufCMessageDescriptor *resp_desc, void **resp, char *msg,
                        size_t msg_n, char *reason);
void merchant_free(void *msg);

/* Fails the call for a peer's failure: UNAVAILABLE / DEADLINE_EXCEEDED pass through with a message naming the peer,
 * anything else becomes INTERNAL (a contract between services broke). */
sb_status merchant_peer_fail(sb_call *call, const char *peer, const char *what, sb_status st, const char *msg);

/* The settings of district for business day; on failure the call has failed and *ret_status says so. */
bool merchant_settings_get(sb_call *call, const char *district, const char *day, merchant_settings *ret,
                           sb_status *ret_status);

/* Opens the ledger accounts of an owner (idempotent). */
bool merchant_open_accounts(sb_call *call, int kind, uint64_t id, sb_status *ret_status);

/* The centre and parent centre of district (0 for none), cached and dropped when region's centre revision changes
 * (checked at most every centre_poll_ms). */
bool merchant_centres_get(sb_call *call, const char *district, uint64_t *ret_centre, uint64_t *ret_parent,
                          sb_status *ret_status);

/* The rate in force on day. */
int32_t merchant_rate_on(const merchant_row *m, const char *day);

/* --- The store (merchant_store.c): 0, -ENOENT or a db code; rows written only on success --- */

int merchant_load(sb_db *db, uint64_t id, merchant_row *ret);
int merchant_load_by_referral(sb_db *db, const char *code, merchant_row *ret);
int merchant_insert(sb_db *db, const merchant_row *m, uint64_t *ret_id);
/* Sets status (and licence_active accordingly), reason, who and when, only when the status is still `from`.
 * -ESTALE when it changed meanwhile. */
int merchant_set_status(sb_db *db, uint64_t id, int from, int to, const char *reason, uint64_t by, int64_t now_ms,
                        uint64_t centre_id);
int merchant_set_granted(sb_db *db, uint64_t id);
int merchant_set_referrer_vip(sb_db *db, uint64_t id);
int merchant_set_rate(sb_db *db, uint64_t id, int32_t rate_bp, int32_t pending_bp, const char *pending_day);
int merchant_update_fields(sb_db *db, const merchant_row *m);
#define MERCHANT_ROW_COLUMNS                                                                                       \
        "merchant_id, name, licence_no, address, lat_e6, lon_e6, district_code, contact_name, contact_phone, "   \
        "status, status_reason, rate_bp, pending_rate_bp, pending_rate_day, owner_user_id, referrer_kind, "      \
        "referrer_id, referrer_vip, referral_code, approved_by_centre_id, owner_granted, applied_ms, "           \
        "status_changed_ms, status_changed_by"
int merchant_row_read(const sb_db_stmt *s, unsigned first, merchant_row *ret);

/* --- Handlers --- */

sb_status merchant_h_apply(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);
sb_status merchant_h_approve(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);
sb_status merchant_h_reject(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);
sb_status merchant_h_suspend(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);
sb_status merchant_h_resume(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);
sb_status merchant_h_set_rate(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);
sb_status merchant_h_update(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);
sb_status merchant_h_get(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);
sb_status merchant_h_list(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);
sb_status merchant_h_deposit_status(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);
sb_status merchant_h_nearby(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);
sb_status merchant_h_quote(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);
sb_status merchant_h_record(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);

/* Sets up the group commit of the sales' rows (enabled false: every sale writes its rows alone): 0 or -ENOMEM,
 * -EINVAL. merchant_sale_groups_fini() releases it (also after a failed init). */
int merchant_sale_groups_init(merchant_state *st, bool enabled, unsigned leaders);
void merchant_sale_groups_fini(merchant_state *st);

/* Starts the thread that writes the marks behind (and sweeps) when st->marks_on: 0, or a negative errno. Stopped
 * by merchant_marks_stop(), which writes what is queued first (also safe when never started). */
int merchant_marks_start(merchant_state *st);
void merchant_marks_stop(merchant_state *st);

/* Queues a copy of mark for the marker thread: 0, or -ENOMEM. */
int merchant_marks_enqueue(merchant_state *st, const merchant_sale_mark *mark);

/* Waits until every mark queued before this call is written (at most timeout_ms): true when they are. Readers of
 * sales call it first, so that a sale answered by this process is seen as recorded. */
bool merchant_marks_flush(merchant_state *st, int64_t timeout_ms);
sb_status merchant_h_void(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);
sb_status merchant_h_get_sale(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);
sb_status merchant_h_list_sales(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);
sb_status merchant_h_day_summary(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);

/* The deposit of a merchant and the price in force, from the wallet. */
typedef struct merchant_deposit {
        int64_t sp_units;
        int64_t price_micro;
        char day[MERCHANT_DAY_LEN + 1];
} merchant_deposit;
bool merchant_deposit_get(sb_call *call, uint64_t merchant_id, merchant_deposit *ret, sb_status *ret_status);

/* The same from the cache when the last answer for this merchant is of today's business day and younger than
 * merchant.deposit_cache; *ret_cached says which. The cached deposit is never higher than the wallet's as far as
 * this process knows: every posting lowers it to the balance the wallet reports (merchant_deposit_note()), top-ups
 * and voids only make it stale-low — so a caller that would refuse on a cached value asks again fresh. Only another
 * process debiting the deposit can make it stale-high; the wallet then refuses the posting (never negative). */
bool merchant_deposit_cached(sb_call *call, uint64_t merchant_id, merchant_deposit *ret, bool *ret_cached,
                             sb_status *ret_status);

/* After a posting: the merchant's deposit is at most sp_units now. */
void merchant_deposit_note(sb_call *call, uint64_t merchant_id, int64_t sp_units);

/* deposit SP valued at price, rounded down to the fen (0 on overflow-free inputs always fits). */
int64_t merchant_sp_value_fen(int64_t sp_units, int64_t price_micro);

/* The deposit level of sp_units at price against the settings' minimum and warning levels. */
int merchant_deposit_level(const merchant_settings *s, int64_t sp_units, int64_t price_micro);
