/* wallet_statement: ListStatement, an owner's (or a system account's) entries newest first, cursor-paged. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "sharebuy/wallet/v1/wallet.pb-c.h"
#include "wallet_treasury.h"

#define STATEMENT_PAGE_MAX 500
#define TOKEN_TTL_MS (INT64_C(24) * 3600 * 1000)

/* The filters a page token is bound to, as 16 hex digits of their SHA-256. */
static void filter_tag(int kind, uint64_t id, int asset, int64_t from, int64_t to, char out[17]) {
        char buf[128];
        uint8_t h[crypto_hash_sha256_BYTES];
        int n = snprintf(buf, sizeof buf, "st|%d|%" PRIu64 "|%d|%" PRId64 "|%" PRId64, kind, id, asset, from, to);
        crypto_hash_sha256(h, (const unsigned char *) buf, (unsigned long long) n);
        static const char hex[] = "0123456789abcdef";
        for (int i = 0; i < 8; i++) {
                out[2 * i] = hex[h[i] >> 4];
                out[2 * i + 1] = hex[h[i] & 15];
        }
        out[16] = '\0';
}

sb_status wallet_h_list_statement(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sharebuy__Wallet__V1__ListStatementRequest *req = (const void *) req_;
        Sharebuy__Wallet__V1__ListStatementResponse *resp = (void *) resp_;
        sb_claims claims;
        sb_status st;
        const unsigned all_roles = SB_ROLES(SB_ROLE_MEMBER) | SB_ROLES(SB_ROLE_MERCHANT_OWNER) |
                                   SB_ROLES(SB_ROLE_CASHIER) | SB_ROLES(SB_ROLE_TERMINAL) |
                                   SB_ROLES(SB_ROLE_CENTRE_OPERATOR) | SB_ROLES(SB_ROLE_ADMIN) |
                                   SB_ROLES(SB_ROLE_SERVICE);
        if ((st = sb_service_auth(call, all_roles, &claims)) != SB_OK)
                return st;
        int kind;
        uint64_t id;
        if (req->subject_case == SHAREBUY__WALLET__V1__LIST_STATEMENT_REQUEST__SUBJECT_SYSTEM) {
                if (claims.role != SB_ROLE_ADMIN)
                        return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_ROLE_NOT_ALLOWED",
                                                   "system accounts' statements are for admins");
                if (!wallet_system_asset((uint64_t) req->system))
                        return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                                   "unknown system account");
                kind = WALLET_OWNER_SYSTEM;
                id = (uint64_t) req->system;
        } else if (req->subject_case == SHAREBUY__WALLET__V1__LIST_STATEMENT_REQUEST__SUBJECT_OWNER && req->owner &&
                   (req->owner->kind || req->owner->id)) {
                if (req->owner->kind <= 0 || req->owner->kind > 3 || req->owner->id == 0)
                        return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                                   "owner: a member, merchant or centre with an id > 0");
                if (!wallet_owns(&claims, (int) req->owner->kind, req->owner->id))
                        return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_SCOPE_MISMATCH",
                                                   "this is another owner's statement");
                kind = (int) req->owner->kind;
                id = req->owner->id;
        } else if (!wallet_own_owner(&claims, &kind, &id) || id == 0)
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                           "owner: required for an admin or service caller");
        int asset = (int) req->asset;
        if (asset < 0 || asset > WALLET_ASSET_FEN)
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID", "unknown asset");
        int64_t from = req->from_unix_ms, to = req->to_unix_ms ? req->to_unix_ms : INT64_MAX;
        if (from < 0 || to < from)
                return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_FIELD_INVALID",
                                           "from_unix_ms is after to_unix_ms");
        size_t size = req->page && req->page->page_size ? req->page->page_size : 50;
        if (size > STATEMENT_PAGE_MAX)
                size = STATEMENT_PAGE_MAX;
        char tag[17];
        filter_tag(kind, id, asset, from, to, tag);
        int64_t now = wallet_now_ms();
        uint64_t before = UINT64_MAX;
        if (req->page && req->page->page_token && *req->page->page_token) {
                unsigned long long b;
                long long issued;
                char t[17];
                int n = 0;
                if (strlen(req->page->page_token) > 80 ||
                    sscanf(req->page->page_token, "s1.%llu.%16[0-9a-f].%lld%n", &b, t, &issued, &n) != 3 ||
                    req->page->page_token[n] != '\0' || strcmp(t, tag) != 0 || b == 0 || issued > now ||
                    now - issued > TOKEN_TTL_MS)
                        return sb_call_fail_reason(call, SB_INVALID_ARGUMENT, "REASON_PAGE_TOKEN_INVALID",
                                                   "bad or expired page token (or other filters than the first page's)");
                before = b;
        }
        sb_db *db = wallet_call_db(call, &st);
        if (!db)
                return st;

        /* The subject's account ids (three for an owner, one for a system account), the asset filter applied. */
        uint64_t ids[3];
        int assets[3];
        size_t n_ids = 0;
        if (kind == WALLET_OWNER_SYSTEM) {
                ids[n_ids] = id;
                assets[n_ids++] = wallet_system_asset(id);
        } else {
                wallet_balance b[3];
                int r = wallet_ledger_balances(db, kind, id, b);
                if (r == -ENOENT)
                        return sb_call_fail(call, SB_NOT_FOUND, "owner %d/%" PRIu64 " has no accounts", kind, id);
                if (r < 0)
                        return sb_service_db_fail(call, r, "reading accounts");
                for (size_t i = 0; i < 3; i++)
                        if (b[i].account_id && (asset == 0 || b[i].asset == asset)) {
                                ids[n_ids] = b[i].account_id;
                                assets[n_ids++] = b[i].asset;
                        }
        }
        resp->entries = sb_call_alloc(call, (size + 1) * sizeof *resp->entries);
        Sharebuy__Common__V1__PageInfo *pi = sb_call_alloc(call, sizeof *pi);
        sharebuy__common__v1__page_info__init(pi);
        pi->next_page_token = "";
        resp->page = pi;
        if (n_ids == 0)
                return SB_OK;
        while (n_ids < 3) { /* the statement takes three ids: repeat one */
                ids[n_ids] = ids[0];
                assets[n_ids++] = assets[0];
        }
        sb_db_stmt *s;
        int r;
        if ((r = sb_db_prepare(db,
                               "SELECT e.entry_id, e.tx_id, e.account_id, e.amount, e.balance_after, e.reason,"
                               " t.cause_kind, t.cause_ref, t.cause_merchant, t.posted_ms, t.business_day,"
                               " COALESCE(t.reverses_tx_id, 0), t.memo FROM entries e JOIN transactions t"
                               " ON t.tx_id = e.tx_id WHERE e.account_id IN (?, ?, ?) AND e.entry_id < ?"
                               " AND t.posted_ms >= ? AND t.posted_ms < ? ORDER BY e.entry_id DESC LIMIT ?",
                               &s)) < 0 ||
            (r = sb_db_bind_u64(s, 0, ids[0])) < 0 || (r = sb_db_bind_u64(s, 1, ids[1])) < 0 ||
            (r = sb_db_bind_u64(s, 2, ids[2])) < 0 || (r = sb_db_bind_u64(s, 3, before)) < 0 ||
            (r = sb_db_bind_i64(s, 4, from)) < 0 || (r = sb_db_bind_i64(s, 5, to)) < 0 ||
            (r = sb_db_bind_u64(s, 6, size + 1)) < 0 || (r = sb_db_execute(s)) < 0)
                return sb_service_db_fail(call, r, "reading the statement");
        size_t n = 0;
        bool more = false;
        uint64_t last = 0;
        while ((r = sb_db_fetch(s)) > 0) {
                if (n == size) {
                        more = true;
                        continue;
                }
                Sharebuy__Wallet__V1__StatementEntry *e = sb_call_alloc(call, sizeof *e);
                sharebuy__wallet__v1__statement_entry__init(e);
                uint64_t account_id;
                int64_t reason, cause_kind;
                char ref[WALLET_REF_MAX + 1], day[WALLET_DAY_LEN + 1], memo[WALLET_MEMO_BYTES_MAX + 1];
                if (sb_db_col_u64(s, 0, &e->entry_id) < 0 || sb_db_col_u64(s, 1, &e->transaction_id) < 0 ||
                    sb_db_col_u64(s, 2, &account_id) < 0 || sb_db_col_i64(s, 3, &e->amount_units) < 0 ||
                    sb_db_col_i64(s, 5, &reason) < 0 || sb_db_col_i64(s, 6, &cause_kind) < 0 ||
                    sb_db_col_str(s, 7, ref, sizeof ref) < 0 ||
                    sb_db_col_i64(s, 9, &e->posted_unix_ms) < 0 || sb_db_col_str(s, 10, day, sizeof day) < 0 ||
                    sb_db_col_u64(s, 11, &e->reverses_transaction_id) < 0 ||
                    sb_db_col_str(s, 12, memo, sizeof memo) < 0)
                        return sb_service_db_fail(call, -EIO, "reading an entry");
                if (!sb_db_col_is_null(s, 4))
                        (void) sb_db_col_i64(s, 4, &e->balance_after_units);
                Sharebuy__Common__V1__Cause *c = sb_call_alloc(call, sizeof *c);
                sharebuy__common__v1__cause__init(c);
                c->kind = (Sharebuy__Common__V1__CauseKind) cause_kind;
                c->reference = sb_call_strdup(call, ref);
                (void) sb_db_col_u64(s, 8, &c->merchant_id);
                e->cause = c;
                e->reason = (Sharebuy__Common__V1__LegReason) reason;
                e->business_day = sb_call_strdup(call, day);
                e->memo = sb_call_strdup(call, memo);
                /* The account as the caller names it. */
                Sharebuy__Common__V1__AccountRef *a = sb_call_alloc(call, sizeof *a);
                sharebuy__common__v1__account_ref__init(a);
                for (size_t i = 0; i < 3; i++)
                        if (ids[i] == account_id)
                                a->asset = (Sharebuy__Common__V1__Asset) assets[i];
                if (kind == WALLET_OWNER_SYSTEM) {
                        a->holder_case = SHAREBUY__COMMON__V1__ACCOUNT_REF__HOLDER_SYSTEM;
                        a->system = (Sharebuy__Common__V1__SystemAccount) id;
                } else {
                        Sharebuy__Common__V1__OwnerRef *o = sb_call_alloc(call, sizeof *o);
                        sharebuy__common__v1__owner_ref__init(o);
                        o->kind = (Sharebuy__Common__V1__OwnerKind) kind;
                        o->id = id;
                        a->holder_case = SHAREBUY__COMMON__V1__ACCOUNT_REF__HOLDER_OWNER;
                        a->owner = o;
                }
                e->account = a;
                /* Sale shares name the merchant as the counterparty. */
                if (c->merchant_id && (cause_kind == WALLET_CAUSE_SALE || cause_kind == WALLET_CAUSE_SALE_VOID)) {
                        Sharebuy__Common__V1__OwnerRef *cp = sb_call_alloc(call, sizeof *cp);
                        sharebuy__common__v1__owner_ref__init(cp);
                        cp->kind = SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_MERCHANT;
                        cp->id = c->merchant_id;
                        e->counterparty = cp;
                }
                resp->entries[n++] = e;
                last = e->entry_id;
        }
        if (r < 0)
                return sb_service_db_fail(call, r, "reading the statement");
        resp->n_entries = n;
        if (more)
                pi->next_page_token = sb_call_printf(call, "s1.%" PRIu64 ".%s.%" PRId64, last, tag, now);
        return SB_OK;
}
