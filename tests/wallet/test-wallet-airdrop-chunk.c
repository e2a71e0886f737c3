/* Integration test of Wallet/ApplyAirdropChunk called directly (services/wallet/wallet_airdrop.c), against the real
 * wallet process and a real MariaDB (tests/lib/sb_stack.h). The airdrop service is not started: the test plays its
 * part and sends the chunks itself.
 *
 * Isolation: a chunk releases SP from the one unreleased pool, and the test checks that pool unit for unit (and
 * empties it at the end), so it cannot share a ledger with tests that post from the pool. meson runs it as
 * `with-mariadb test-wallet-airdrop-chunk` with SB_TEST_DB_PORT_RANGE=35400-35499 (tests/wallet/meson.build): the
 * test owns the whole ledger of its private server.
 *
 *   booking        a chunk of four members with active CV (one spending all of it): each member's SP rises by its
 *                  share and its CV_ACTIVE falls by the cost, the pool falls by the sum and CV_AIRDROP_SPENT rises
 *                  by the costs; the response's totals and per-allotment transaction ids; GetTransaction and the
 *                  statements show the legs with their balances after (the pool's without, by design)
 *   replay         the same request: OK, replayed, the same ids, nothing moves
 *   key reuse      the same day and chunk with other shares, another price, one more member: ALREADY_EXISTS
 *   CV short       one member's cost above its CV_ACTIVE: FAILED_PRECONDITION and nobody of the chunk moves; the
 *                  chunk number is still free afterwards
 *   no accounts    an owner the ledger does not know: NOT_FOUND
 *   bad input      an owner twice, zero / negative / over-range amounts, a part over 10^15, no allotments, bad
 *                  days, price 0, chunk_no out of range, owner missing: INVALID_ARGUMENT
 *   roles          member, merchant owner, admin tokens: PERMISSION_DENIED; no token: UNAUTHENTICATED
 *   concurrency    two chunks of 45 members (two journal transactions each) at once from two threads, three
 *                  rounds; the same chunk from two threads at once (booked once, the other replayed)
 *   retry          the same chunk from two threads at once when every member's CV_ACTIVE is exactly its cost
 *                  (eight rounds of 45 fresh members): both OK with the same ids, one of them replayed, the CV
 *                  and the pool debited once — the late call must not be refused for the CV its twin spent
 *   reserved keys  PostTransaction and ReverseTransaction (by id and by key, service and admin) under keys
 *                  "airdrop:…": INVALID_ARGUMENT, nothing posted; the chunk of that day and number still books
 *                  and replays; the same requests under ordinary keys pass
 *   pool           a chunk releasing one unit more than the pool holds: FAILED_PRECONDITION; one releasing exactly
 *                  what it holds: booked, the pool at 0; then one more unit is refused
 *   balance paths  a chunk of three members opened one after the other changes its balance rows by range (the
 *                  wallet's log says so): exact, and the two members opened between them — inside the range, not in
 *                  the chunk — do not move; replayed, nothing moves; two members with 40 others between them are
 *                  changed by probe, exactly. With the CV account ids as hints the accounts are read by range
 *                  too; hints that point at other owners' accounts change nothing but the way: booked exactly
 * Every refusal is checked to change nothing: the members' SP and CV_ACTIVE, the pool, CV_AIRDROP_SPENT, the number
 * of journal transactions and entries, and VerifyLedger; each part ends with VerifyLedger and `sharebuyctl ledger
 * verify --json`. */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wallet_test.h"

#define U(x) ((int64_t) (x) * 10000) /* whole CV or SP in units of 0.0001 */
#define DAY "2025-06-01"
#define PRICE 2000000 /* 2.00 yuan per SP, in micro-yuan */
#define CHUNK_MAX 64
#define PER_TX 31 /* accounts per journal transaction of a chunk (64 legs) */

/* A PostTransaction of two legs (system account → member account) with a service token: the status, the reason
 * and message (as wt_call), the transaction's id into *ret_id on OK (if not NULL). */
static sb_status post_pair_status(const char *key, int system, int asset, uint64_t member, int64_t units, int reason,
                                  uint64_t *ret_id, char *rsn, char *msg) {
        wt_legs l = {0};
        wt_leg_system(&l, system, -units, reason);
        wt_leg_member(&l, member, asset, units, reason);
        return wt_post(key, &l, SHAREBUY__COMMON__V1__CAUSE_KIND__CAUSE_KIND_ADJUSTMENT, "airdrop-chunk-test", "test",
                       svc_tok, rsn, msg, ret_id, NULL);
}

/* The same, which must pass. */
static void post_pair(const char *key, int system, int asset, uint64_t member, int64_t units, int reason) {
        SB_CHECK_EQ(post_pair_status(key, system, asset, member, units, reason, NULL, NULL, NULL), SB_OK);
}

/* Active CV for a member, as a sale gives it (CV_ISSUED → CV_ACTIVE). */
static void give_cv(uint64_t member, int64_t units) {
        static atomic_uint n;
        char k[64];
        snprintf(k, sizeof k, "t%" PRIu64 ":cv:%u", run_id, atomic_fetch_add(&n, 1));
        post_pair(k, 4 /* CV_ISSUED */, 2 /* CV_ACTIVE */, member, units, 6 /* SALE_MEMBER_CV */);
}

/* SP for a member out of the unreleased pool, so that its SP does not start at 0. */
static void give_sp(uint64_t member, int64_t units) {
        static atomic_uint n;
        char k[64];
        snprintf(k, sizeof k, "t%" PRIu64 ":sp:%u", run_id, atomic_fetch_add(&n, 1));
        post_pair(k, 1 /* SP_UNRELEASED */, 3 /* SP */, member, units, 15 /* AIRDROP_SP */);
}

/* What remains in SP_UNRELEASED (GetSupply). */
static int64_t pool(void) {
        Sharebuy__Wallet__V1__GetSupplyRequest req = SHAREBUY__WALLET__V1__GET_SUPPLY_REQUEST__INIT;
        Sharebuy__Wallet__V1__Supply *s;
        SB_CHECK_EQ(
                wt_call("GetSupply", &req, &sharebuy__wallet__v1__supply__descriptor, NULL, (void **) &s, NULL, NULL),
                SB_OK);
        int64_t v = s->unreleased_sp_units;
        free_msg(s);
        return v;
}

/* One integer from the test database (admin connection). */
static int64_t db_i64(const char *sql) {
        sb_db *db = sb_test_stack_admin_db(st);
        sb_db_stmt *s;
        int64_t v = 0;
        SB_CHECK_EQ(sb_db_prepare(db, sql, &s), 0);
        SB_CHECK_EQ(sb_db_execute(s), 0);
        SB_CHECK_EQ(sb_db_fetch(s), 1);
        SB_CHECK_EQ(sb_db_col_i64(s, 0, &v), 0);
        SB_CHECK_EQ(sb_db_fetch(s), 0);
        return v;
}

static int64_t spent(void) {
        return db_i64("SELECT COALESCE(SUM(balance), 0) FROM sharebuy_wallet.balances WHERE account_id = 5");
}

/* Everything a chunk could move: its members' SP and CV_ACTIVE, the pool, CV_AIRDROP_SPENT, the journal's size. */
typedef struct snap {
        size_t n;
        uint64_t id[2 * CHUNK_MAX];
        int64_t sp[2 * CHUNK_MAX], cv[2 * CHUNK_MAX];
        int64_t pool, spent, n_tx, n_entries;
} snap;

static void snap_take(snap *s, const uint64_t *ids, size_t n) {
        SB_CHECK(n <= 2 * CHUNK_MAX);
        s->n = n;
        for (size_t i = 0; i < n; i++) {
                s->id[i] = ids[i];
                wt_balances(ids[i], &s->sp[i], &s->cv[i]);
        }
        s->pool = pool();
        s->spent = spent();
        s->n_tx = db_i64("SELECT COUNT(*) FROM sharebuy_wallet.transactions");
        s->n_entries = db_i64("SELECT COUNT(*) FROM sharebuy_wallet.entries");
}

/* Nothing moved since *before. */
static void snap_same(const snap *before) {
        snap now;
        snap_take(&now, before->id, before->n);
        for (size_t i = 0; i < before->n; i++) {
                SB_CHECK_EQ(now.sp[i], before->sp[i]);
                SB_CHECK_EQ(now.cv[i], before->cv[i]);
        }
        SB_CHECK_EQ(now.pool, before->pool);
        SB_CHECK_EQ(now.spent, before->spent);
        SB_CHECK_EQ(now.n_tx, before->n_tx);
        SB_CHECK_EQ(now.n_entries, before->n_entries);
}

/* --- Chunks ------------------------------------------------------------------------------------------------- */

typedef struct chunk {
        Sharebuy__Wallet__V1__ApplyAirdropChunkRequest req;
        Sharebuy__Wallet__V1__AirdropAllotment al[CHUNK_MAX];
        Sharebuy__Wallet__V1__AirdropAllotment *ptrs[CHUNK_MAX];
        Sharebuy__Common__V1__OwnerRef owner[CHUNK_MAX];
} chunk;

static void chunk_init(chunk *c, const char *day, uint32_t no, int64_t price) {
        memset(c, 0, sizeof *c);
        sharebuy__wallet__v1__apply_airdrop_chunk_request__init(&c->req);
        c->req.business_day = (char *) day;
        c->req.chunk_no = no;
        c->req.price_micro_yuan = price;
        c->req.allotments = c->ptrs;
}

static void chunk_add_owner(chunk *c, int kind, uint64_t id, int64_t sp, int64_t cost) {
        size_t i = c->req.n_allotments++;
        SB_CHECK(i < CHUNK_MAX);
        sharebuy__common__v1__owner_ref__init(&c->owner[i]);
        c->owner[i].kind = (Sharebuy__Common__V1__OwnerKind) kind;
        c->owner[i].id = id;
        sharebuy__wallet__v1__airdrop_allotment__init(&c->al[i]);
        c->al[i].owner = &c->owner[i];
        c->al[i].sp_units = sp;
        c->al[i].cv_cost_units = cost;
        c->ptrs[i] = &c->al[i];
}

static void chunk_add(chunk *c, uint64_t member, int64_t sp, int64_t cost) {
        chunk_add_owner(c, SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_MEMBER, member, sp, cost);
}

static sb_status apply(const chunk *c, const char *tok, Sharebuy__Wallet__V1__ApplyAirdropChunkResponse **resp,
                       char *reason, char *msg) {
        return wt_call("ApplyAirdropChunk", &c->req, &sharebuy__wallet__v1__apply_airdrop_chunk_response__descriptor,
                       tok, (void **) resp, reason, msg);
}

/* The chunk is refused with want / want_reason and a message containing want_msg; nothing moved since *before
 * (snap_same) and the ledger still verifies. */
static void refused(const chunk *c, const char *tok, sb_status want, const char *want_reason, const char *want_msg,
                    const snap *before) {
        char reason[SB_RPC_REASON_MAX], msg[WT_MSG_MAX];
        sb_status s = apply(c, tok, NULL, reason, msg);
        if (s != want || (want_reason && strcmp(reason, want_reason) != 0) || !*msg ||
            (want_msg && !strstr(msg, want_msg)))
                fprintf(stderr, "ApplyAirdropChunk: got %s %s \"%s\", want %s %s \"%s\"\n", sb_status_name(s), reason,
                        msg, sb_status_name(want), want_reason ? want_reason : "", want_msg ? want_msg : "");
        SB_CHECK_EQ(s, want);
        if (want_reason)
                SB_CHECK(strcmp(reason, want_reason) == 0);
        SB_CHECK(*msg);
        if (want_msg)
                SB_CHECK(strstr(msg, want_msg));
        snap_same(before);
        wt_verify_rpc(true);
}

static void tx_key(char out[64], const char *day, uint32_t chunk_no, unsigned part) {
        snprintf(out, 64, "airdrop:%s:%06u:%04u", day, chunk_no, part);
}

/* GetTransaction by idempotency key (ADMIN); NULL when there is none. */
static Sharebuy__Wallet__V1__Transaction *tx_by_key(const char *k) {
        Sharebuy__Wallet__V1__GetTransactionRequest req = SHAREBUY__WALLET__V1__GET_TRANSACTION_REQUEST__INIT;
        req.key_case = SHAREBUY__WALLET__V1__GET_TRANSACTION_REQUEST__KEY_IDEMPOTENCY_KEY;
        req.idempotency_key = (char *) k;
        Sharebuy__Wallet__V1__Transaction *t = NULL;
        sb_status s = wt_call("GetTransaction", &req, &sharebuy__wallet__v1__transaction__descriptor, admin_tok,
                              (void **) &t, NULL, NULL);
        SB_CHECK(s == SB_OK || s == SB_NOT_FOUND);
        return t;
}

/* The chunk's journal transaction `part` is not there. */
static void no_tx(const char *day, uint32_t chunk_no, unsigned part) {
        char k[64];
        tx_key(k, day, chunk_no, part);
        Sharebuy__Wallet__V1__Transaction *t = tx_by_key(k);
        SB_CHECK(!t);
}

static const Sharebuy__Common__V1__LedgerLeg *owner_leg(const Sharebuy__Wallet__V1__Transaction *t, uint64_t member,
                                                        int asset) {
        const Sharebuy__Common__V1__LedgerLeg *found = NULL;
        for (size_t i = 0; i < t->n_legs; i++) {
                const Sharebuy__Common__V1__AccountRef *a = t->legs[i]->account;
                if (a->holder_case == SHAREBUY__COMMON__V1__ACCOUNT_REF__HOLDER_OWNER &&
                    a->owner->kind == SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_MEMBER && a->owner->id == member &&
                    (int) a->asset == asset) {
                        SB_CHECK(!found);
                        found = t->legs[i];
                }
        }
        SB_CHECK(found);
        return found;
}

static const Sharebuy__Common__V1__LedgerLeg *system_leg(const Sharebuy__Wallet__V1__Transaction *t, int system) {
        const Sharebuy__Common__V1__LedgerLeg *found = NULL;
        for (size_t i = 0; i < t->n_legs; i++) {
                const Sharebuy__Common__V1__AccountRef *a = t->legs[i]->account;
                if (a->holder_case == SHAREBUY__COMMON__V1__ACCOUNT_REF__HOLDER_SYSTEM && (int) a->system == system) {
                        SB_CHECK(!found);
                        found = t->legs[i];
                }
        }
        SB_CHECK(found);
        return found;
}

/* Checks a booked chunk against the snapshot taken before it: every member's SP up by its share, CV_ACTIVE down by
 * its cost, the pool down by the sum, CV_AIRDROP_SPENT up by the costs; the response's totals and transaction ids
 * (one per allotment, PER_TX allotments per journal transaction, each found under its key with the right legs). */
static void check_booked(const chunk *c, const Sharebuy__Wallet__V1__ApplyAirdropChunkResponse *r, const snap *before,
                         const snap *now) {
        size_t n = c->req.n_allotments;
        int64_t sp = 0, cost = 0;
        for (size_t i = 0; i < n; i++) {
                sp += c->al[i].sp_units;
                cost += c->al[i].cv_cost_units;
        }
        SB_CHECK(!r->replayed);
        SB_CHECK_EQ(r->sp_units, sp);
        SB_CHECK_EQ(r->cv_cost_units, cost);
        SB_CHECK_EQ(r->n_transaction_ids, n);
        for (size_t i = 0; i < n; i++) {
                size_t k;
                for (k = 0; k < before->n && before->id[k] != c->owner[i].id; k++)
                        ;
                SB_CHECK(k < before->n);
                SB_CHECK_EQ(now->id[k], before->id[k]);
                SB_CHECK_EQ(now->sp[k], before->sp[k] + c->al[i].sp_units);
                SB_CHECK_EQ(now->cv[k], before->cv[k] - c->al[i].cv_cost_units);
                SB_CHECK(r->transaction_ids[i] > 0);
                if (i % PER_TX)
                        SB_CHECK_EQ(r->transaction_ids[i], r->transaction_ids[i - 1]);
                else if (i)
                        SB_CHECK(r->transaction_ids[i] != r->transaction_ids[i - 1]);
        }
        SB_CHECK_EQ(now->pool, before->pool - sp);
        SB_CHECK_EQ(now->spent, before->spent + cost);
        size_t parts = (n + PER_TX - 1) / PER_TX;
        SB_CHECK_EQ(now->n_tx, before->n_tx + (int64_t) parts);
        SB_CHECK_EQ(now->n_entries, before->n_entries + (int64_t) (2 * n + 2 * parts));

        /* The journal: each part under its key, its legs as the ledger stored them. */
        for (size_t p = 0; p < parts; p++) {
                char k[64], price[32];
                tx_key(k, c->req.business_day, c->req.chunk_no, (unsigned) p);
                Sharebuy__Wallet__V1__Transaction *t = tx_by_key(k);
                SB_CHECK(t);
                SB_CHECK_EQ(t->transaction_id, r->transaction_ids[p * PER_TX]);
                SB_CHECK(strcmp(t->idempotency_key, k) == 0);
                SB_CHECK_EQ(t->cause->kind, SHAREBUY__COMMON__V1__CAUSE_KIND__CAUSE_KIND_AIRDROP);
                SB_CHECK(strcmp(t->cause->reference, c->req.business_day) == 0);
                snprintf(price, sizeof price, "%" PRId64, c->req.price_micro_yuan);
                SB_CHECK(strstr(t->memo, price));
                SB_CHECK_EQ(strlen(t->chain_hash_hex), 64);
                size_t lo = p * PER_TX, hi = lo + PER_TX < n ? lo + PER_TX : n;
                SB_CHECK_EQ(t->n_legs, 2 * (hi - lo) + 2);
                int64_t psp = 0, pcost = 0;
                for (size_t i = lo; i < hi; i++) {
                        size_t m;
                        for (m = 0; m < now->n && now->id[m] != c->owner[i].id; m++)
                                ;
                        SB_CHECK(m < now->n);
                        const Sharebuy__Common__V1__LedgerLeg *l = owner_leg(t, c->owner[i].id, 3);
                        SB_CHECK_EQ(l->amount_units, c->al[i].sp_units);
                        SB_CHECK_EQ(l->reason, SHAREBUY__COMMON__V1__LEG_REASON__LEG_REASON_AIRDROP_SP);
                        SB_CHECK_EQ(l->balance_after_units, now->sp[m]);
                        l = owner_leg(t, c->owner[i].id, 2);
                        SB_CHECK_EQ(l->amount_units, -c->al[i].cv_cost_units);
                        SB_CHECK_EQ(l->reason, SHAREBUY__COMMON__V1__LEG_REASON__LEG_REASON_AIRDROP_CV_COST);
                        SB_CHECK_EQ(l->balance_after_units, now->cv[m]);
                        psp += c->al[i].sp_units;
                        pcost += c->al[i].cv_cost_units;
                }
                const Sharebuy__Common__V1__LedgerLeg *l = system_leg(t, 1 /* SP_UNRELEASED */);
                SB_CHECK_EQ(l->amount_units, -psp);
                SB_CHECK_EQ(l->reason, SHAREBUY__COMMON__V1__LEG_REASON__LEG_REASON_AIRDROP_SP);
                SB_CHECK_EQ(l->balance_after_units, 0); /* by design: the pool is decremented after the hashing */
                l = system_leg(t, 5 /* CV_AIRDROP_SPENT */);
                SB_CHECK_EQ(l->amount_units, pcost);
                SB_CHECK_EQ(l->reason, SHAREBUY__COMMON__V1__LEG_REASON__LEG_REASON_AIRDROP_CV_COST);
                SB_CHECK_EQ(l->balance_after_units, 0); /* a hot account: no balance after */
                free_msg(t);
        }
        no_tx(c->req.business_day, c->req.chunk_no, (unsigned) parts);
}

/* --- The tests ----------------------------------------------------------------------------------------------- */

static uint64_t m_book[4]; /* the members of chunk 1 of DAY */
static chunk c_book;
static uint64_t id_book;

/* 1. A valid chunk books; the statements show it. */
static void test_booking(void) {
        for (unsigned i = 0; i < 4; i++) {
                m_book[i] = owner_id(1 + i);
                wt_open_member(m_book[i]);
                give_cv(m_book[i], U(100) * (i + 1));
        }
        give_sp(m_book[0], U(3));
        give_sp(m_book[2], 12345);
        snap before, now;
        snap_take(&before, m_book, 4);
        SB_CHECK_EQ(before.sp[0], U(3));
        SB_CHECK_EQ(before.cv[3], U(400));
        /* Request order is not the owners' order; the last member spends all its active CV. */
        chunk_init(&c_book, DAY, 1, PRICE);
        chunk_add(&c_book, m_book[2], U(5) + 17, U(10) + 34);
        chunk_add(&c_book, m_book[0], U(2) + 1, U(4) + 2);
        chunk_add(&c_book, m_book[3], U(200), U(400));
        chunk_add(&c_book, m_book[1], 1, 2);
        Sharebuy__Wallet__V1__ApplyAirdropChunkResponse *r = NULL;
        char reason[SB_RPC_REASON_MAX], msg[WT_MSG_MAX];
        SB_CHECK_EQ(apply(&c_book, svc_tok, &r, reason, msg), SB_OK);
        snap_take(&now, m_book, 4);
        check_booked(&c_book, r, &before, &now);
        SB_CHECK_EQ(now.sp[0], U(3) + U(2) + 1);
        SB_CHECK_EQ(now.cv[3], 0);
        SB_CHECK_EQ(r->sp_units, U(207) + 19);
        SB_CHECK_EQ(r->cv_cost_units, U(414) + 38);
        id_book = r->transaction_ids[0];
        free_msg(r);

        /* The member's own statement: the two airdrop entries, newest first, with their balances after. */
        char mtok[SB_AUTH_TOKEN_MAX];
        sb_test_stack_role_token(st, SB_ROLE_MEMBER, m_book[2], 0, 0, 0, mtok);
        Sharebuy__Common__V1__PageRequest pg = SHAREBUY__COMMON__V1__PAGE_REQUEST__INIT;
        pg.page_size = 10;
        Sharebuy__Wallet__V1__ListStatementRequest lr = SHAREBUY__WALLET__V1__LIST_STATEMENT_REQUEST__INIT;
        lr.page = &pg;
        Sharebuy__Wallet__V1__ListStatementResponse *ls;
        SB_CHECK_EQ(wt_call("ListStatement", &lr, &sharebuy__wallet__v1__list_statement_response__descriptor, mtok,
                            (void **) &ls, NULL, NULL),
                    SB_OK);
        unsigned seen = 0;
        for (size_t i = 0; i < ls->n_entries; i++) {
                const Sharebuy__Wallet__V1__StatementEntry *e = ls->entries[i];
                if (e->transaction_id != id_book)
                        continue;
                seen++;
                SB_CHECK_EQ(e->cause->kind, SHAREBUY__COMMON__V1__CAUSE_KIND__CAUSE_KIND_AIRDROP);
                SB_CHECK(strcmp(e->cause->reference, DAY) == 0);
                if (e->account->asset == SHAREBUY__COMMON__V1__ASSET__ASSET_SP) {
                        SB_CHECK_EQ(e->amount_units, U(5) + 17);
                        SB_CHECK_EQ(e->balance_after_units, now.sp[2]);
                        SB_CHECK_EQ(e->reason, SHAREBUY__COMMON__V1__LEG_REASON__LEG_REASON_AIRDROP_SP);
                } else {
                        SB_CHECK_EQ(e->account->asset, SHAREBUY__COMMON__V1__ASSET__ASSET_CV_ACTIVE);
                        SB_CHECK_EQ(e->amount_units, -(U(10) + 34));
                        SB_CHECK_EQ(e->balance_after_units, now.cv[2]);
                        SB_CHECK_EQ(e->reason, SHAREBUY__COMMON__V1__LEG_REASON__LEG_REASON_AIRDROP_CV_COST);
                }
        }
        SB_CHECK_EQ(seen, 2);
        free_msg(ls);
        /* The pool's statement (ADMIN): the chunk's leg, without a balance after. */
        lr.subject_case = SHAREBUY__WALLET__V1__LIST_STATEMENT_REQUEST__SUBJECT_SYSTEM;
        lr.system = SHAREBUY__COMMON__V1__SYSTEM_ACCOUNT__SYSTEM_ACCOUNT_SP_UNRELEASED;
        SB_CHECK_EQ(wt_call("ListStatement", &lr, &sharebuy__wallet__v1__list_statement_response__descriptor,
                            admin_tok, (void **) &ls, NULL, NULL),
                    SB_OK);
        seen = 0;
        for (size_t i = 0; i < ls->n_entries; i++) {
                const Sharebuy__Wallet__V1__StatementEntry *e = ls->entries[i];
                if (e->transaction_id != id_book)
                        continue;
                seen++;
                SB_CHECK_EQ(e->amount_units, -(U(207) + 19));
                SB_CHECK_EQ(e->balance_after_units, 0);
        }
        SB_CHECK_EQ(seen, 1);
        free_msg(ls);
        wt_verify(true);
}

/* 2. The same request again: the first result, nothing moves. */
static void test_replay(void) {
        snap before;
        snap_take(&before, m_book, 4);
        for (int i = 0; i < 2; i++) {
                Sharebuy__Wallet__V1__ApplyAirdropChunkResponse *r = NULL;
                SB_CHECK_EQ(apply(&c_book, svc_tok, &r, NULL, NULL), SB_OK);
                SB_CHECK(r->replayed);
                SB_CHECK_EQ(r->n_transaction_ids, 4);
                for (size_t k = 0; k < 4; k++)
                        SB_CHECK_EQ(r->transaction_ids[k], id_book);
                SB_CHECK_EQ(r->sp_units, U(207) + 19);
                SB_CHECK_EQ(r->cv_cost_units, U(414) + 38);
                free_msg(r);
                snap_same(&before);
        }
        wt_verify(true);
}

/* 3. The same day and chunk with other allotments: ALREADY_EXISTS. */
static void test_key_reuse(void) {
        snap before;
        uint64_t extra = owner_id(5);
        wt_open_member(extra);
        give_cv(extra, U(10));
        uint64_t ids[5] = {m_book[0], m_book[1], m_book[2], m_book[3], extra};
        snap_take(&before, ids, 5);
        const char *why = "already booked";
        chunk c;
        /* One share differs. */
        c = c_book;
        c.req.allotments = c.ptrs;
        for (size_t i = 0; i < c.req.n_allotments; i++) {
                c.al[i].owner = &c.owner[i];
                c.ptrs[i] = &c.al[i];
        }
        c.al[1].sp_units += 1;
        refused(&c, svc_tok, SB_ALREADY_EXISTS, "REASON_IDEMPOTENCY_KEY_REUSED", why, &before);
        /* One cost differs. */
        c.al[1].sp_units -= 1;
        c.al[3].cv_cost_units += 1;
        refused(&c, svc_tok, SB_ALREADY_EXISTS, "REASON_IDEMPOTENCY_KEY_REUSED", why, &before);
        c.al[3].cv_cost_units -= 1;
        /* Only the price differs (it is in the memo, which the request hash covers). */
        c.req.price_micro_yuan = PRICE + 1;
        refused(&c, svc_tok, SB_ALREADY_EXISTS, "REASON_IDEMPOTENCY_KEY_REUSED", why, &before);
        c.req.price_micro_yuan = PRICE;
        /* One member more; one member less. */
        chunk_add(&c, extra, 1, 1);
        refused(&c, svc_tok, SB_ALREADY_EXISTS, "REASON_IDEMPOTENCY_KEY_REUSED", why, &before);
        c.req.n_allotments -= 2;
        refused(&c, svc_tok, SB_ALREADY_EXISTS, "REASON_IDEMPOTENCY_KEY_REUSED", why, &before);
        /* A whole other chunk under the number: refused too, and extra keeps its CV. */
        chunk o;
        chunk_init(&o, DAY, 1, PRICE);
        chunk_add(&o, extra, U(1), U(2));
        refused(&o, svc_tok, SB_ALREADY_EXISTS, "REASON_IDEMPOTENCY_KEY_REUSED", why, &before);
        /* The unchanged request is still a replay. */
        Sharebuy__Wallet__V1__ApplyAirdropChunkResponse *r = NULL;
        SB_CHECK_EQ(apply(&c_book, svc_tok, &r, NULL, NULL), SB_OK);
        SB_CHECK(r->replayed);
        SB_CHECK_EQ(r->transaction_ids[0], id_book);
        free_msg(r);
        snap_same(&before);
        wt_verify(true);
}

/* 4. One member's cost above its active CV: the whole chunk is refused, nobody moves. */
static void test_cv_short(void) {
        uint64_t m[5];
        for (unsigned i = 0; i < 5; i++) {
                m[i] = owner_id(11 + i);
                wt_open_member(m[i]);
                give_cv(m[i], U(50));
        }
        give_sp(m[0], U(1));
        snap before;
        snap_take(&before, m, 5);
        chunk c;
        chunk_init(&c, DAY, 2, PRICE);
        /* The short member sits in the middle of the request and of the owners' order. */
        chunk_add(&c, m[0], U(1), U(2));
        chunk_add(&c, m[1], U(1), U(2));
        chunk_add(&c, m[2], U(25), U(50) + 1);
        chunk_add(&c, m[3], U(1), U(2));
        chunk_add(&c, m[4], U(1), U(2));
        char who[32];
        snprintf(who, sizeof who, "%" PRIu64, m[2]);
        refused(&c, svc_tok, SB_FAILED_PRECONDITION, "REASON_INSUFFICIENT_BALANCE", who, &before);
        no_tx(DAY, 2, 0);
        /* The same with the short member first and last in the request. */
        chunk d;
        chunk_init(&d, DAY, 2, PRICE);
        chunk_add(&d, m[2], U(25), U(50) + 1);
        chunk_add(&d, m[0], U(1), U(2));
        refused(&d, svc_tok, SB_FAILED_PRECONDITION, "REASON_INSUFFICIENT_BALANCE", "CV_ACTIVE", &before);
        chunk_init(&d, DAY, 2, PRICE);
        chunk_add(&d, m[4], U(1), U(2));
        chunk_add(&d, m[2], U(25), U(50) + 1);
        refused(&d, svc_tok, SB_FAILED_PRECONDITION, "REASON_INSUFFICIENT_BALANCE", who, &before);
        /* Nothing of it stayed: the chunk number is free, and the corrected chunk books as new. */
        c.al[2].cv_cost_units = U(50);
        Sharebuy__Wallet__V1__ApplyAirdropChunkResponse *r = NULL;
        SB_CHECK_EQ(apply(&c, svc_tok, &r, NULL, NULL), SB_OK);
        snap now;
        snap_take(&now, m, 5);
        check_booked(&c, r, &before, &now);
        free_msg(r);
        SB_CHECK_EQ(now.cv[2], 0);
        wt_verify(true);
}

/* 5. An owner the ledger does not know: NOT_FOUND, nobody moves. */
static void test_no_accounts(void) {
        uint64_t known = owner_id(21), unknown = owner_id(22);
        wt_open_member(known);
        give_cv(known, U(10));
        uint64_t ids[1] = {known};
        snap before;
        snap_take(&before, ids, 1);
        chunk c;
        chunk_init(&c, DAY, 3, PRICE);
        chunk_add(&c, known, U(1), U(2));
        chunk_add(&c, unknown, U(1), U(2));
        char who[32];
        snprintf(who, sizeof who, "%" PRIu64, unknown);
        refused(&c, svc_tok, SB_NOT_FOUND, "REASON_ACCOUNT_UNKNOWN", who, &before);
        /* A merchant whose accounts were never opened, with the member's id. */
        chunk_init(&c, DAY, 3, PRICE);
        chunk_add(&c, known, U(1), U(2));
        chunk_add_owner(&c, SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_MERCHANT, known, U(1), U(2));
        snprintf(who, sizeof who, "merchant %" PRIu64, known);
        refused(&c, svc_tok, SB_NOT_FOUND, "REASON_ACCOUNT_UNKNOWN", who, &before);
        no_tx(DAY, 3, 0);
        wt_verify(true);
}

/* 6. Bad requests: INVALID_ARGUMENT before anything is read or written. */
static void test_bad_input(void) {
        uint64_t a = owner_id(31), b = owner_id(32);
        wt_open_member(a);
        wt_open_member(b);
        give_cv(a, U(10));
        give_cv(b, U(10));
        uint64_t ids[2] = {a, b};
        snap before;
        snap_take(&before, ids, 2);
        const char *inv = "REASON_FIELD_INVALID", *range = "REASON_AMOUNT_OUT_OF_RANGE";
        chunk c;

        /* The same owner twice (apart in the request). */
        chunk_init(&c, DAY, 4, PRICE);
        chunk_add(&c, a, U(1), U(1));
        chunk_add(&c, b, U(1), U(1));
        chunk_add(&c, a, U(2), U(2));
        refused(&c, svc_tok, SB_INVALID_ARGUMENT, inv, "twice", &before);

        /* Amounts: zero, negative, beyond 10^15, the INT64 extremes. */
        const int64_t bad[] = {0, -1, INT64_C(1000000000000001), INT64_MAX, INT64_MIN};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                chunk_init(&c, DAY, 4, PRICE);
                chunk_add(&c, a, U(1), U(1));
                chunk_add(&c, b, bad[i], U(1));
                refused(&c, svc_tok, SB_INVALID_ARGUMENT, range, "sp_units", &before);
                chunk_init(&c, DAY, 4, PRICE);
                chunk_add(&c, a, U(1), bad[i]);
                chunk_add(&c, b, U(1), U(1));
                refused(&c, svc_tok, SB_INVALID_ARGUMENT, range, "cv_cost_units", &before);
        }
        /* Each share within 10^15 but the part's release beyond: the pool's leg would be out of range. */
        chunk_init(&c, DAY, 4, PRICE);
        chunk_add(&c, a, INT64_C(600000000000000), U(1));
        chunk_add(&c, b, INT64_C(600000000000000), U(1));
        refused(&c, svc_tok, SB_INVALID_ARGUMENT, range, NULL, &before);

        /* No allotments. */
        chunk_init(&c, DAY, 4, PRICE);
        refused(&c, svc_tok, SB_INVALID_ARGUMENT, inv, "allotments", &before);

        /* Days that are not "YYYY-MM-DD" dates. */
        const char *days[] = {"", "2025-02-30", "2025-13-01", "2025-00-10", "20250601", "2025-6-01", "2025-06-01 ",
                              "2025-06-01x", "yyyy-mm-dd"};
        for (size_t i = 0; i < sizeof days / sizeof days[0]; i++) {
                chunk_init(&c, days[i], 4, PRICE);
                chunk_add(&c, a, U(1), U(1));
                refused(&c, svc_tok, SB_INVALID_ARGUMENT, inv, "business_day", &before);
        }

        /* The price: 0, negative. The chunk number: above 999 999. */
        const int64_t prices[] = {0, -1, INT64_MIN};
        for (size_t i = 0; i < sizeof prices / sizeof prices[0]; i++) {
                chunk_init(&c, DAY, 4, prices[i]);
                chunk_add(&c, a, U(1), U(1));
                refused(&c, svc_tok, SB_INVALID_ARGUMENT, inv, "price_micro_yuan", &before);
        }
        chunk_init(&c, DAY, 1000000, PRICE);
        chunk_add(&c, a, U(1), U(1));
        refused(&c, svc_tok, SB_INVALID_ARGUMENT, inv, "chunk_no", &before);

        /* Owners: missing, kind unspecified or unknown, id 0. */
        chunk_init(&c, DAY, 4, PRICE);
        chunk_add(&c, a, U(1), U(1));
        chunk_add(&c, b, U(1), U(1));
        c.al[1].owner = NULL;
        refused(&c, svc_tok, SB_INVALID_ARGUMENT, inv, "owner", &before);
        c.al[1].owner = &c.owner[1];
        c.owner[1].kind = SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_UNSPECIFIED;
        refused(&c, svc_tok, SB_INVALID_ARGUMENT, inv, "owner", &before);
        c.owner[1].kind = (Sharebuy__Common__V1__OwnerKind) 4;
        refused(&c, svc_tok, SB_INVALID_ARGUMENT, inv, "owner", &before);
        c.owner[1].kind = SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_MEMBER;
        c.owner[1].id = 0;
        refused(&c, svc_tok, SB_INVALID_ARGUMENT, inv, "owner", &before);
        no_tx(DAY, 4, 0);
        wt_verify(true);
}

/* 8. Only a service may book a chunk. */
static void test_roles(void) {
        uint64_t a = owner_id(41);
        wt_open_member(a);
        give_cv(a, U(10));
        uint64_t ids[1] = {a};
        snap before;
        snap_take(&before, ids, 1);
        chunk c;
        chunk_init(&c, DAY, 5, PRICE);
        chunk_add(&c, a, U(1), U(2));
        char tok[SB_AUTH_TOKEN_MAX];
        sb_test_stack_role_token(st, SB_ROLE_MEMBER, a, 0, 0, 0, tok);
        refused(&c, tok, SB_PERMISSION_DENIED, "REASON_ROLE_NOT_ALLOWED", "ApplyAirdropChunk", &before);
        sb_test_stack_role_token(st, SB_ROLE_MERCHANT_OWNER, a, owner_id(42), 0, 0, tok);
        refused(&c, tok, SB_PERMISSION_DENIED, "REASON_ROLE_NOT_ALLOWED", NULL, &before);
        refused(&c, admin_tok, SB_PERMISSION_DENIED, "REASON_ROLE_NOT_ALLOWED", NULL, &before);
        refused(&c, NULL, SB_UNAUTHENTICATED, "REASON_TOKEN_MISSING", NULL, &before);
        refused(&c, "not-a-token", SB_UNAUTHENTICATED, "REASON_TOKEN_INVALID", NULL, &before);
        /* A member may not even learn whether an existing chunk would replay. */
        sb_test_stack_role_token(st, SB_ROLE_MEMBER, m_book[0], 0, 0, 0, tok);
        refused(&c_book, tok, SB_PERMISSION_DENIED, "REASON_ROLE_NOT_ALLOWED", NULL, &before);
        no_tx(DAY, 5, 0);
        wt_verify(true);
}

/* 9. Two chunks at once from two threads (the airdrop's two credit workers). */
enum { GROUP = 45, ROUNDS = 3 };

typedef struct worker {
        const chunk *c;
        pthread_barrier_t *go;
        sb_status status;
        Sharebuy__Wallet__V1__ApplyAirdropChunkResponse *resp;
        char msg[WT_MSG_MAX];
} worker;

static void *worker_run(void *p) {
        worker *w = p;
        pthread_barrier_wait(w->go);
        w->status = apply(w->c, svc_tok, &w->resp, NULL, w->msg);
        return NULL;
}

/* Sends c[0] and c[1] at the same instant from two threads; fills w. */
static void at_once(const chunk *c0, const chunk *c1, worker w[2]) {
        pthread_barrier_t go;
        SB_CHECK_EQ(pthread_barrier_init(&go, NULL, 2), 0);
        pthread_t th[2];
        w[0] = (worker){.c = c0, .go = &go};
        w[1] = (worker){.c = c1, .go = &go};
        for (int i = 0; i < 2; i++)
                SB_CHECK_EQ(pthread_create(&th[i], NULL, worker_run, &w[i]), 0);
        for (int i = 0; i < 2; i++)
                SB_CHECK_EQ(pthread_join(th[i], NULL), 0);
        pthread_barrier_destroy(&go);
        for (int i = 0; i < 2; i++)
                if (w[i].status != SB_OK)
                        fprintf(stderr, "chunk %u: %s: %s\n", w[i].c->req.chunk_no, sb_status_name(w[i].status),
                                w[i].msg);
}

static void test_concurrent(void) {
        static uint64_t m[2 * GROUP];
        for (unsigned i = 0; i < 2 * GROUP; i++) {
                m[i] = owner_id(100 + i);
                wt_open_member(m[i]);
                give_cv(m[i], U(100) + i);
        }
        /* Each round: chunk 2r+10 pays the first group, chunk 2r+11 the second (consecutive numbers: different
         * chains; two journal transactions each). Members are interleaved between the groups in id order. */
        for (unsigned round = 0; round < ROUNDS; round++) {
                snap before, now;
                snap_take(&before, m, 2 * GROUP);
                static chunk c[2];
                for (unsigned g = 0; g < 2; g++) {
                        chunk_init(&c[g], "2025-06-02", 10 + 2 * round + g, PRICE);
                        for (unsigned i = 0; i < GROUP; i++) {
                                unsigned k = 2 * i + g;
                                chunk_add(&c[g], m[k], 1000 + 7 * k + round, 2000 + 3 * k + round);
                        }
                }
                worker w[2];
                at_once(&c[0], &c[1], w);
                SB_CHECK_EQ(w[0].status, SB_OK);
                SB_CHECK_EQ(w[1].status, SB_OK);
                snap_take(&now, m, 2 * GROUP);
                int64_t sp = 0, cost = 0;
                for (unsigned g = 0; g < 2; g++) {
                        SB_CHECK(!w[g].resp->replayed);
                        sp += w[g].resp->sp_units;
                        cost += w[g].resp->cv_cost_units;
                        for (unsigned i = 0; i < GROUP; i++) {
                                unsigned k = 2 * i + g;
                                SB_CHECK_EQ(now.sp[k], before.sp[k] + 1000 + 7 * k + round);
                                SB_CHECK_EQ(now.cv[k], before.cv[k] - (2000 + 3 * k + round));
                        }
                }
                SB_CHECK_EQ(now.pool, before.pool - sp);
                SB_CHECK_EQ(now.spent, before.spent + cost);
                SB_CHECK_EQ(now.n_tx, before.n_tx + 4);
                /* Each chunk on its own, against a snapshot with the other chunk's effect added. */
                for (unsigned g = 0; g < 2; g++) {
                        snap mid = before;
                        const chunk *o = &c[1 - g];
                        for (size_t i = 0; i < o->req.n_allotments; i++) {
                                size_t k;
                                for (k = 0; k < mid.n && mid.id[k] != o->owner[i].id; k++)
                                        ;
                                SB_CHECK(k < mid.n);
                                mid.sp[k] += o->al[i].sp_units;
                                mid.cv[k] -= o->al[i].cv_cost_units;
                        }
                        mid.pool -= w[1 - g].resp->sp_units;
                        mid.spent += w[1 - g].resp->cv_cost_units;
                        mid.n_tx += 2;
                        mid.n_entries += 2 * GROUP + 4;
                        check_booked(&c[g], w[g].resp, &mid, &now);
                }
                free_msg(w[0].resp);
                free_msg(w[1].resp);
                wt_verify_rpc(true);
        }
        wt_verify(true);

        /* The same chunk from two threads at once: booked once; both answer its transactions. */
        snap before, now;
        snap_take(&before, m, 2 * GROUP);
        static chunk same;
        chunk_init(&same, "2025-06-02", 30, PRICE);
        for (unsigned i = 0; i < GROUP; i++)
                chunk_add(&same, m[i], 500 + i, 900 + i);
        worker w[2];
        at_once(&same, &same, w);
        SB_CHECK_EQ(w[0].status, SB_OK);
        SB_CHECK_EQ(w[1].status, SB_OK);
        SB_CHECK_EQ(w[0].resp->replayed + w[1].resp->replayed, 1);
        SB_CHECK_EQ(w[0].resp->n_transaction_ids, GROUP);
        SB_CHECK_EQ(w[1].resp->n_transaction_ids, GROUP);
        for (unsigned i = 0; i < GROUP; i++)
                SB_CHECK_EQ(w[0].resp->transaction_ids[i], w[1].resp->transaction_ids[i]);
        snap_take(&now, m, 2 * GROUP);
        check_booked(&same, w[0].resp->replayed ? w[1].resp : w[0].resp, &before, &now);
        free_msg(w[0].resp);
        free_msg(w[1].resp);
        wt_verify(true);
}

/* 10. A retry of a chunk while the first call still runs (the airdrop's worker timed out and sent it again), with
 * every member's CV_ACTIVE exactly the cost of its share: the second call waits on the first's holder rows and then
 * finds the CV spent — by the same chunk. It must answer the booking as a replay, not refuse the chunk for want of
 * CV (FAILED_PRECONDITION would make the airdrop stop the day over a chunk that is booked). Several rounds of fresh
 * members, each the same request from two threads at once; 45 members (two journal transactions) so that the two
 * calls overlap. Whatever the answers, the ledger must show the chunk booked once. */
enum { RETRY_ROUNDS = 8, RETRY_GROUP = 45 };

static void test_retry_exact_cv(void) {
        static uint64_t m[RETRY_ROUNDS][RETRY_GROUP];
        for (unsigned r = 0; r < RETRY_ROUNDS; r++)
                for (unsigned i = 0; i < RETRY_GROUP; i++) {
                        m[r][i] = owner_id(200 + r * RETRY_GROUP + i);
                        wt_open_member(m[r][i]);
                        give_cv(m[r][i], 7000 + 13 * i + r);
                }
        unsigned bad_rounds = 0;
        static chunk c;
        for (unsigned r = 0; r < RETRY_ROUNDS; r++) {
                snap before, now;
                snap_take(&before, m[r], RETRY_GROUP);
                chunk_init(&c, "2025-06-03", 40 + r, PRICE);
                int64_t sp = 0, cost = 0;
                for (unsigned i = 0; i < RETRY_GROUP; i++) {
                        SB_CHECK_EQ(before.cv[i], 7000 + 13 * i + r);
                        chunk_add(&c, m[r][i], 3000 + 7 * i + r, before.cv[i]);
                        sp += 3000 + 7 * i + r;
                        cost += before.cv[i];
                }
                worker w[2];
                at_once(&c, &c, w);
                snap_take(&now, m[r], RETRY_GROUP);
                /* The ledger, whatever the answers: booked once, every member's CV_ACTIVE at 0. */
                for (unsigned i = 0; i < RETRY_GROUP; i++) {
                        SB_CHECK_EQ(now.cv[i], 0);
                        SB_CHECK_EQ(now.sp[i], before.sp[i] + 3000 + 7 * i + r);
                }
                SB_CHECK_EQ(now.pool, before.pool - sp);
                SB_CHECK_EQ(now.spent, before.spent + cost);
                SB_CHECK_EQ(now.n_tx, before.n_tx + 2);
                SB_CHECK_EQ(now.n_entries, before.n_entries + 2 * RETRY_GROUP + 4);
                /* The answers: both OK, the same transactions, exactly one of them the booking. */
                if (w[0].status != SB_OK || w[1].status != SB_OK) {
                        fprintf(stderr, "retry round %u (chunk %u): %s / %s\n", r, c.req.chunk_no,
                                sb_status_name(w[0].status), sb_status_name(w[1].status));
                        bad_rounds++;
                } else {
                        SB_CHECK_EQ(w[0].resp->replayed + w[1].resp->replayed, 1);
                        SB_CHECK_EQ(w[0].resp->n_transaction_ids, RETRY_GROUP);
                        SB_CHECK_EQ(w[1].resp->n_transaction_ids, RETRY_GROUP);
                        for (unsigned i = 0; i < RETRY_GROUP; i++)
                                SB_CHECK_EQ(w[0].resp->transaction_ids[i], w[1].resp->transaction_ids[i]);
                        SB_CHECK_EQ(w[0].resp->sp_units, sp);
                        SB_CHECK_EQ(w[1].resp->sp_units, sp);
                        SB_CHECK_EQ(w[0].resp->cv_cost_units, cost);
                        SB_CHECK_EQ(w[1].resp->cv_cost_units, cost);
                }
                for (int k = 0; k < 2; k++)
                        if (w[k].status == SB_OK && !w[k].resp->replayed)
                                check_booked(&c, w[k].resp, &before, &now);
                /* Sent once more afterwards: a replay of the same transactions, nothing moves. */
                Sharebuy__Wallet__V1__ApplyAirdropChunkResponse *again = NULL;
                SB_CHECK_EQ(apply(&c, svc_tok, &again, NULL, NULL), SB_OK);
                SB_CHECK(again->replayed);
                for (int k = 0; k < 2; k++)
                        if (w[k].status == SB_OK)
                                for (unsigned i = 0; i < RETRY_GROUP; i++)
                                        SB_CHECK_EQ(again->transaction_ids[i], w[k].resp->transaction_ids[i]);
                free_msg(again);
                snap_same(&now);
                free_msg(w[0].resp);
                free_msg(w[1].resp);
                wt_verify_rpc(true);
        }
        if (bad_rounds)
                fprintf(stderr, "retry: in %u of %u rounds a call of the same chunk was not answered OK\n", bad_rounds,
                        RETRY_ROUNDS);
        SB_CHECK_EQ(bad_rounds, 0);
        wt_verify(true);
}

/* 11. Keys "airdrop:…" in the service scope are the chunks': PostTransaction and ReverseTransaction refuse them
 * (INVALID_ARGUMENT, nothing posted), else a posting under one would make its chunk look booked with other
 * allotments for good. The chunk of that day and number still books afterwards. */
#define RES_DAY "2025-06-07"

static sb_status reverse_status(const char *key, uint64_t target_id, const char *target_key, const char *tok,
                                uint64_t *ret_id, char *rsn, char *msg) {
        Sharebuy__Common__V1__Cause cause = SHAREBUY__COMMON__V1__CAUSE__INIT;
        cause.kind = SHAREBUY__COMMON__V1__CAUSE_KIND__CAUSE_KIND_ADJUSTMENT;
        cause.reference = "airdrop-chunk-test";
        Sharebuy__Wallet__V1__ReverseTransactionRequest req = SHAREBUY__WALLET__V1__REVERSE_TRANSACTION_REQUEST__INIT;
        req.idempotency_key = (char *) key;
        if (target_key) {
                req.target_case = SHAREBUY__WALLET__V1__REVERSE_TRANSACTION_REQUEST__TARGET_ORIGINAL_IDEMPOTENCY_KEY;
                req.original_idempotency_key = (char *) target_key;
        } else {
                req.target_case = SHAREBUY__WALLET__V1__REVERSE_TRANSACTION_REQUEST__TARGET_TRANSACTION_ID;
                req.transaction_id = target_id;
        }
        req.cause = &cause;
        req.reason = "airdrop-chunk test";
        Sharebuy__Wallet__V1__ReverseTransactionResponse *resp = NULL;
        sb_status s = wt_call("ReverseTransaction", &req,
                              &sharebuy__wallet__v1__reverse_transaction_response__descriptor, tok, (void **) &resp,
                              rsn, msg);
        if (s == SB_OK) {
                SB_CHECK(resp->transaction);
                if (ret_id)
                        *ret_id = resp->transaction->transaction_id;
                free_msg(resp);
        }
        return s;
}

/* The status, reason and message of a refusal of a reserved key. */
static void reserved_refusal(sb_status s, const char *rsn, const char *msg, const char *what, const char *key) {
        if (s != SB_INVALID_ARGUMENT || strcmp(rsn, "REASON_FIELD_INVALID") != 0 || !strstr(msg, "airdrop:") ||
            !strstr(msg, "reserved"))
                fprintf(stderr, "%s under \"%s\": got %s %s \"%s\", want INVALID_ARGUMENT REASON_FIELD_INVALID"
                                " \"…airdrop:…reserved…\"\n",
                        what, key, sb_status_name(s), rsn, msg);
        SB_CHECK_EQ(s, SB_INVALID_ARGUMENT);
        SB_CHECK(strcmp(rsn, "REASON_FIELD_INVALID") == 0);
        SB_CHECK(strstr(msg, "airdrop:"));
        SB_CHECK(strstr(msg, "reserved"));
}

static void test_reserved_keys(void) {
        uint64_t a = owner_id(700), b = owner_id(701);
        wt_open_member(a);
        wt_open_member(b);
        give_cv(a, U(10));
        give_cv(b, U(10));
        /* A CV grant to b that the reversals below target, by id and by key. */
        char grant[64];
        snprintf(grant, sizeof grant, "t%" PRIu64 ":res:grant", run_id);
        uint64_t grant_id = 0;
        SB_CHECK_EQ(post_pair_status(grant, 4 /* CV_ISSUED */, 2 /* CV_ACTIVE */, b, U(3), 6 /* SALE_MEMBER_CV */,
                                     &grant_id, NULL, NULL),
                    SB_OK);
        SB_CHECK(grant_id > 0);
        uint64_t ids[2] = {a, b};
        snap before;
        snap_take(&before, ids, 2);

        /* The key of the brief, the exact form of the chunk's own first part, and the bare prefix. */
        const char *keys[] = {"airdrop:" RES_DAY ":000000:zz", "airdrop:" RES_DAY ":000000:0000", "airdrop:"};
        char rsn[SB_RPC_REASON_MAX], msg[WT_MSG_MAX];
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
                sb_status s = post_pair_status(keys[i], 4 /* CV_ISSUED */, 2 /* CV_ACTIVE */, a, U(1),
                                               6 /* SALE_MEMBER_CV */, NULL, rsn, msg);
                reserved_refusal(s, rsn, msg, "PostTransaction", keys[i]);
                const char *toks[2] = {svc_tok, admin_tok};
                for (int t = 0; t < 2; t++) {
                        s = reverse_status(keys[i], grant_id, NULL, toks[t], NULL, rsn, msg);
                        reserved_refusal(s, rsn, msg, "ReverseTransaction (by id)", keys[i]);
                        s = reverse_status(keys[i], 0, grant, toks[t], NULL, rsn, msg);
                        reserved_refusal(s, rsn, msg, "ReverseTransaction (by key)", keys[i]);
                }
                SB_CHECK(!tx_by_key(keys[i]));
                snap_same(&before);
        }
        no_tx(RES_DAY, 0, 0);
        wt_verify_rpc(true);

        /* The chunk of that day and number books as new, then replays. */
        chunk c;
        chunk_init(&c, RES_DAY, 0, PRICE);
        chunk_add(&c, b, U(2), U(6));
        chunk_add(&c, a, U(1), U(4));
        Sharebuy__Wallet__V1__ApplyAirdropChunkResponse *r = NULL;
        SB_CHECK_EQ(apply(&c, svc_tok, &r, NULL, NULL), SB_OK);
        snap now;
        snap_take(&now, ids, 2);
        check_booked(&c, r, &before, &now);
        uint64_t chunk_tx = r->transaction_ids[0];
        free_msg(r);
        /* Still refused now that the chunk is booked; and the chunk still replays (not ALREADY_EXISTS). */
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
                sb_status s = post_pair_status(keys[i], 4, 2, a, U(1), 6, NULL, rsn, msg);
                reserved_refusal(s, rsn, msg, "PostTransaction", keys[i]);
                s = reverse_status(keys[i], grant_id, NULL, svc_tok, NULL, rsn, msg);
                reserved_refusal(s, rsn, msg, "ReverseTransaction (by id)", keys[i]);
        }
        snap_same(&now);
        SB_CHECK_EQ(apply(&c, svc_tok, &r, NULL, NULL), SB_OK);
        SB_CHECK(r->replayed);
        SB_CHECK_EQ(r->transaction_ids[0], chunk_tx);
        free_msg(r);
        snap_same(&now);

        /* The refused requests were otherwise valid: under an ordinary key each posts. */
        char k[64];
        snprintf(k, sizeof k, "t%" PRIu64 ":res:post", run_id);
        SB_CHECK_EQ(post_pair_status(k, 4, 2, a, U(1), 6, NULL, NULL, NULL), SB_OK);
        snprintf(k, sizeof k, "t%" PRIu64 ":res:reverse", run_id);
        uint64_t rev_id = 0;
        SB_CHECK_EQ(reverse_status(k, grant_id, NULL, svc_tok, &rev_id, NULL, NULL), SB_OK);
        SB_CHECK(rev_id > 0);
        int64_t sp, cv;
        wt_balances(a, &sp, &cv);
        SB_CHECK_EQ(cv, now.cv[0] + U(1));
        wt_balances(b, &sp, &cv);
        SB_CHECK_EQ(cv, now.cv[1] - U(3));
        wt_verify(true);
}

/* 7. The pool: one unit more than it holds is refused; exactly what it holds books; then it is empty. */
static void test_pool(void) {
        uint64_t a = owner_id(51), b = owner_id(52);
        wt_open_member(a);
        wt_open_member(b);
        give_cv(a, U(1000));
        give_cv(b, U(1000));
        uint64_t ids[2] = {a, b};
        snap before;
        snap_take(&before, ids, 2);
        int64_t left = before.pool;
        SB_CHECK(left > 1000);
        chunk c;
        chunk_init(&c, DAY, 6, PRICE);
        chunk_add(&c, a, 1000, U(1));
        chunk_add(&c, b, left - 1000 + 1, U(1));
        refused(&c, svc_tok, SB_FAILED_PRECONDITION, "REASON_INSUFFICIENT_BALANCE", "SP_UNRELEASED", &before);
        no_tx(DAY, 6, 0);
        /* Far beyond it, still within 10^15 per part. */
        chunk_init(&c, DAY, 6, PRICE);
        chunk_add(&c, a, INT64_C(1000000000000000), U(1));
        refused(&c, svc_tok, SB_FAILED_PRECONDITION, "REASON_INSUFFICIENT_BALANCE", "SP_UNRELEASED", &before);
        /* Exactly what it holds. */
        chunk_init(&c, DAY, 6, PRICE);
        chunk_add(&c, a, 1000, U(1));
        chunk_add(&c, b, left - 1000, U(1));
        Sharebuy__Wallet__V1__ApplyAirdropChunkResponse *r = NULL;
        SB_CHECK_EQ(apply(&c, svc_tok, &r, NULL, NULL), SB_OK);
        snap now;
        snap_take(&now, ids, 2);
        check_booked(&c, r, &before, &now);
        free_msg(r);
        SB_CHECK_EQ(now.pool, 0);
        wt_verify(true);
        /* Empty: one unit is too much. */
        chunk_init(&c, DAY, 7, PRICE);
        chunk_add(&c, a, 1, 1);
        refused(&c, svc_tok, SB_FAILED_PRECONDITION, "REASON_INSUFFICIENT_BALANCE", "SP_UNRELEASED", &now);
        no_tx(DAY, 7, 0);
        wt_verify(true);
}

/* What the wallet logged of chunk `no` of `day` under `field` (balances: "range", "probe"; lookup: "range",
 * "range+probe", "probe"); "" when not logged. */
static void chunk_logged(const char *day, uint32_t no, const char *field, char *out, size_t n) {
        char path[512], want_day[64], want_chunk[64];
        snprintf(path, sizeof path, "%s/wallet.log", sb_test_stack_dir(st));
        snprintf(want_day, sizeof want_day, "\"day\":\"%s\"", day);
        snprintf(want_chunk, sizeof want_chunk, "\"chunk\":%u,", no);
        FILE *f = fopen(path, "r");
        SB_CHECK(f != NULL);
        char line[4096];
        out[0] = '\0';
        while (fgets(line, sizeof line, f)) {
                if (!strstr(line, "\"airdrop_chunk\"") || !strstr(line, want_day) || !strstr(line, want_chunk))
                        continue;
                char want[64];
                snprintf(want, sizeof want, "\"%s\":\"", field);
                const char *b = strstr(line, want);
                if (!b)
                        continue;
                b += strlen(want);
                size_t k = 0;
                while (b[k] && b[k] != '"' && k + 1 < n) {
                        out[k] = b[k];
                        k++;
                }
                out[k] = '\0';
        }
        fclose(f);
}

/* 12. Both ways of changing the balance rows. Members opened one after the other have adjacent accounts, so a chunk
 * of three of them changes its rows by range — and the two members opened between them, inside that range but not
 * in the chunk, must not move (nor their locked CV, which the range also covers). Two members with 40 others opened
 * between them span too many ids for the range: their rows are changed by probe. Both books are exact and verify. */
/* The CV_ACTIVE account id of a member (the airdrop's snapshot holds it and sends it as the hint). */
static uint64_t cv_account(uint64_t member) {
        char q[256];
        snprintf(q, sizeof q,
                 "SELECT account_id FROM sharebuy_wallet.accounts WHERE owner_kind = 1 AND owner_id = %" PRIu64
                 " AND asset = 2",
                 member);
        return (uint64_t) db_i64(q);
}

/* Books c, which must pass, and checks it exactly (check_booked) against the members ids[0..n) — its owners and
 * any bystanders — whose balances before and after are left in *before and *now. */
static void book_checked(const chunk *c, const uint64_t *ids, size_t n, snap *before, snap *now) {
        Sharebuy__Wallet__V1__ApplyAirdropChunkResponse *r = NULL;
        char reason[SB_RPC_REASON_MAX], msg[WT_MSG_MAX];
        snap_take(before, ids, n);
        SB_CHECK_EQ(apply(c, svc_tok, &r, reason, msg), SB_OK);
        snap_take(now, ids, n);
        check_booked(c, r, before, now);
        free_msg(r);
}

static void test_balance_paths(void) {
        uint64_t m[5];
        for (unsigned i = 0; i < 5; i++) {
                m[i] = owner_id(800 + i);
                wt_open_member(m[i]);
                give_cv(m[i], U(50) + i);
                give_sp(m[i], 7 + i);
        }
        snap before, now;
        chunk c;
        chunk_init(&c, DAY, 12, PRICE);
        chunk_add(&c, m[4], U(1) + 4, U(2) + 8);
        chunk_add(&c, m[0], 1, 2);
        chunk_add(&c, m[2], U(3), U(50) + 2); /* all of its active CV */
        c.al[0].cv_account_id = cv_account(m[4]);
        c.al[1].cv_account_id = cv_account(m[0]);
        c.al[2].cv_account_id = cv_account(m[2]);
        book_checked(&c, m, 5, &before, &now);
        for (unsigned i = 1; i < 5; i += 2) { /* m[1], m[3]: inside the range, not in the chunk */
                SB_CHECK_EQ(now.sp[i], before.sp[i]);
                SB_CHECK_EQ(now.cv[i], before.cv[i]);
        }
        SB_CHECK_EQ(now.cv[2], 0);
        char how[32];
        chunk_logged(DAY, 12, "balances", how, sizeof how);
        SB_CHECK(strcmp(how, "range") == 0);
        chunk_logged(DAY, 12, "lookup", how, sizeof how);
        SB_CHECK(strcmp(how, "range") == 0);
        /* The same chunk again: replayed, nothing moves. */
        Sharebuy__Wallet__V1__ApplyAirdropChunkResponse *r = NULL;
        char reason[SB_RPC_REASON_MAX], msg[WT_MSG_MAX];
        SB_CHECK_EQ(apply(&c, svc_tok, &r, reason, msg), SB_OK);
        SB_CHECK(r->replayed);
        free_msg(r);
        snap_same(&now);

        uint64_t far[2] = {owner_id(850), 0};
        wt_open_member(far[0]);
        for (unsigned i = 0; i < 40; i++)
                wt_open_member(owner_id(851 + i));
        far[1] = owner_id(891);
        wt_open_member(far[1]);
        for (unsigned i = 0; i < 2; i++)
                give_cv(far[i], U(20));
        chunk_init(&c, DAY, 13, PRICE);
        chunk_add(&c, far[1], U(1), U(2));
        chunk_add(&c, far[0], 5, 10);
        book_checked(&c, far, 2, &before, &now);
        chunk_logged(DAY, 13, "balances", how, sizeof how);
        SB_CHECK(strcmp(how, "probe") == 0);
        chunk_logged(DAY, 13, "lookup", how, sizeof how);
        SB_CHECK(strcmp(how, "probe") == 0); /* no hints */

        /* Hints that point elsewhere (at m[]'s accounts): the range holds none of this chunk's owners, who are then
         * looked up by owner — booked exactly all the same. */
        uint64_t m2[3];
        for (unsigned i = 0; i < 3; i++) {
                m2[i] = owner_id(900 + i);
                wt_open_member(m2[i]);
                give_cv(m2[i], U(30));
        }
        chunk_init(&c, DAY, 14, PRICE);
        for (unsigned i = 0; i < 3; i++) {
                chunk_add(&c, m2[i], U(1) + i, U(2) + i);
                c.al[i].cv_account_id = cv_account(m[i]);
        }
        book_checked(&c, m2, 3, &before, &now);
        chunk_logged(DAY, 14, "lookup", how, sizeof how);
        SB_CHECK(strcmp(how, "range+probe") == 0);
        wt_verify(true);
}

int main(void) {
        static const char *const services[] = {"wallet", NULL};
        run_id = wt_random_run_id();
        st = sb_test_stack_new(services);
        /* test_balance_paths reads from the wallet's log how it changed a chunk's balance rows. */
        sb_test_stack_env(st, "wallet", "SB_LOG_LEVEL", "debug");
        sb_test_stack_start_all(st);
        wt_connect();

        test_booking();
        test_replay();
        test_key_reuse();
        test_cv_short();
        test_no_accounts();
        test_bad_input();
        test_roles();
        test_concurrent();
        test_retry_exact_cv();
        test_reserved_keys();
        test_balance_paths();
        test_pool(); /* last: it empties the pool */
        sb_test_stack_free(st);
        printf("ok\n");
        return 0;
}
