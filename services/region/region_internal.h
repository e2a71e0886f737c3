/* The region service's internals shared by its files: argument checks, division rows, page tokens, the handlers.
 * Not a public interface: only services/region includes it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "region.h"
#include "region_data.h"
#include "sharebuy/region/v1/region.pb-c.h"

/* Centre states, numbered as sharebuy.region.v1.CentreStatus (and stored so). */
enum {
        REGION_CENTRE_PENDING = 1,
        REGION_CENTRE_ACTIVE = 2,
        REGION_CENTRE_SUSPENDED = 3,
        REGION_CENTRE_REJECTED = 4,
};

/* Limits on what clients send. */
#define REGION_REASON_MAX_CHARS 200
#define REGION_CENTRE_NAME_MAX_CHARS 64
#define REGION_COMPANY_MAX_CHARS 100
#define REGION_CONTACT_MAX_CHARS 64
#define REGION_LICENCE_MAX_CHARS 18
#define REGION_NOTE_MAX_CHARS 500
#define REGION_SEARCH_MAX_CHARS 32
#define REGION_PAGE_TOKEN_MAX_BYTES 256
#define REGION_PAGE_TOKEN_TTL_S (24 * 3600)

/* A tx function's refusal of a business rule (the job carries status, reason and message). Never a db code. */
#define REGION_EREFUSED (-20001)

/* A division as stored (names in UTF-8; a 64-character name is at most 256 bytes). */
typedef struct region_div {
        char code[7];
        char name[260];
        int level;
        char parent_code[7];
        char province_code[7];
        char city_code[7];
        char full_name[1024];
        bool has_children;
} region_div;

/* The outcome of a refused transaction, filled by region_refuse(). */
typedef struct region_refusal {
        sb_status status;
        const char *reason; /* a static ErrorReason name */
        char msg[300];
} region_refusal;

/* Records a refusal in *ref and returns REGION_EREFUSED, for `return region_refuse(...)` inside a tx function. */
int region_refuse(region_refusal *ref, sb_status status, const char *reason, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/* Ends a call after sb_db_tx() returned r: SB_OK for 0, the refusal for REGION_EREFUSED, else the db error mapped
 * by sb_service_db_fail() with `what`. */
sb_status region_tx_status(sb_call *call, int r, const region_refusal *ref, const char *what);

/* The worker's database connection with the statement limit set from the call's deadline; on NULL the call has
 * failed (UNAVAILABLE) and *ret_status says so. */
sb_db *region_db(sb_call *call, sb_status *ret_status);

/* Milliseconds since the epoch, from the real-time clock. */
int64_t region_now_ms(void);

/* Checks a text argument: valid UTF-8 of at most max_chars code points, no control characters, not empty when
 * required. On failure fails the call with INVALID_ARGUMENT / REASON_FIELD_INVALID naming field. */
sb_status region_text_arg(sb_call *call, const char *s, const char *field, size_t max_chars, bool required);

/* Checks that code is 6 ASCII digits (INVALID_ARGUMENT otherwise, naming field). */
sb_status region_code_arg(sb_call *call, const char *code, const char *field);

/* Reads one division (retired ones are invisible). 0, -ENOENT, or a db code. *ret only on success. */
int region_div_load(sb_db *db, const char *code, region_div *ret);

/* region_code_arg + region_div_load: NOT_FOUND with REASON_DISTRICT_UNKNOWN for an unknown code, the db error
 * otherwise. */
sb_status region_div_arg(sb_call *call, sb_db *db, const char *code, const char *field, region_div *ret);

/* Whether division d lies inside the area of the division with code area_code and level area_level (inclusive). */
bool region_div_inside(const region_div *d, const char *area_code, int area_level);

/* The level of a stored code from its shape: 1 for "440000", 2 for "441900", 3 otherwise. */
int region_code_level(const char *code);

/* A District message in the call's memory. */
Sharebuy__Region__V1__District *region_div_msg(sb_call *call, const region_div *d);

/* Reads a district row from columns first..first+7 of s: code, name, level, parent_code, province_code,
 * city_code, full_name, has_children. */
int region_div_from_row(const sb_db_stmt *s, unsigned first, region_div *ret);
#define REGION_DIV_COLUMNS "d.code, d.name, d.level, d.parent_code, d.province_code, d.city_code, d.full_name, d.has_children"

/* --- Paging --- */

/* The page size to use: def for 0, max for anything larger. */
uint32_t region_page_size(const Sharebuy__Common__V1__PageRequest *p, uint32_t def, uint32_t max);

/* A 32-bit FNV-1a hash of a filter's fields, chained: h = region_hash_str(h, s). Start with REGION_HASH_INIT. */
#define REGION_HASH_INIT 2166136261u
uint32_t region_hash_str(uint32_t h, const char *s);
uint32_t region_hash_u64(uint32_t h, uint64_t v);

/* Parses the page token of p, made by region_page_token() for the same kind and filter hash and at most 24 hours
 * old. *ret_has is false (and key "") without a token. On a bad token fails the call (INVALID_ARGUMENT,
 * REASON_PAGE_TOKEN_INVALID). key gets the position (at most n - 1 bytes). */
sb_status region_page_parse(sb_call *call, const Sharebuy__Common__V1__PageRequest *p, char kind, uint32_t filter,
                            char *key, size_t n, bool *ret_has);

/* A page token for the position key (at most 100 bytes), in the call's memory. */
char *region_page_token(sb_call *call, char kind, uint32_t filter, const char *key);

/* The page info message for the response: next token, or "" on the last page. */
Sharebuy__Common__V1__PageInfo *region_page_info(sb_call *call, const char *next_token);

/* --- Business days (Asia/Shanghai, UTC+8 without daylight saving; a day ends at the airdrop cut-off) --- */

/* The business day of a moment: the local date, or the next one from the cut-off minute on. As a day number
 * (days since 1970-01-01). */
int64_t region_business_day(int64_t unix_ms, int64_t cutoff_minute);

/* "YYYY-MM-DD" ↔ day number. Parsing is strict (a real date, four-digit year 2000..2999); -EINVAL otherwise. */
void region_day_format(int64_t day, char out[11]);
int region_day_parse(const char *s, int64_t *ret);

/* --- Handlers --- */
sb_status region_get_district(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);
sb_status region_list_children(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);
sb_status region_search_districts(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);

sb_status region_apply_centre(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);
sb_status region_approve_centre(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);
sb_status region_reject_centre(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);
sb_status region_create_sub_centre(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);
sb_status region_suspend_centre(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);
sb_status region_resume_centre(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);
sb_status region_get_centre(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);
sb_status region_list_centres(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);
sb_status region_add_centre_operator(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);
sb_status region_remove_centre_operator(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);
sb_status region_centres_for_district(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);
sb_status region_get_centre_revision(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);
sb_status region_can_approve_merchant(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);

sb_status region_get_settings(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);
sb_status region_set_settings(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);
sb_status region_list_settings_history(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);
