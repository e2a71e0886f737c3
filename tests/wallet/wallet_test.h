/* wallet_test: what the wallet's integration tests share (test-wallet, test-wallet-airdrop-chunk and
 * test-wallet-db-restart; tests/wallet/meson.build compiles it into each): the run — its stack, the wallet's client,
 * a SERVICE and an ADMIN token, a random id — one call with its status, reason and message, and the requests every
 * one of them makes of the wallet: open a member's accounts, post a transaction, read a member's balances, verify
 * the ledger. Each check aborts the test (SB_CHECK). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sb_stack.h"
#include "sb_test.h"
#include "sharebuy/wallet/v1/wallet.pb-c.h"

/* The longest message a call reports (wt_call). */
#define WT_MSG_MAX 512
/* The most legs of a wt_legs. */
#define WT_LEGS_MAX 8

/* The run. run_id is set by wt_random_run_id(), st by the test (sb_test_stack_start or _new), cli, svc_tok and
 * admin_tok by wt_connect() once the wallet of st runs; wt_deadline_ms (default 20000) bounds every call. */
extern sb_test_stack *st;
extern sb_rpc_client *cli; /* the wallet's */
extern char svc_tok[SB_AUTH_TOKEN_MAX], admin_tok[SB_AUTH_TOKEN_MAX];
extern uint64_t run_id; /* random, so that owner ids and keys of parallel runs never meet */
extern int64_t wt_deadline_ms;

/* A random id for run_id: 1 to 10^12. */
uint64_t wt_random_run_id(void);

/* The wallet's client of st, a SERVICE token and an ADMIN token (uid 1). */
void wt_connect(void);

/* Member n of the run: run_id * 1000 + n. */
uint64_t owner_id(uint64_t n);

/* Frees an unpacked message (NULL is fine). */
void free_msg(void *m);

/* One call of a wallet method (sb_test_stack_call) with the bearer tok (NULL: none). Returns the status; the
 * "sharebuy-reason" into reason (SB_RPC_REASON_MAX bytes) and the message into msg (WT_MSG_MAX bytes, "" on OK),
 * each if not NULL; the response into *resp on OK (freed when resp is NULL). With TEST_VERBOSE set, every failure
 * is printed. Thread-safe. */
sb_status wt_call(const char *method, const void *req, const ProtobufCMessageDescriptor *d, const char *tok,
                  void **resp, char *reason, char *msg);

/* The same to service svc of st, method a full method path ("/sharebuy.identity.v1.Identity/RegisterMember") or a
 * method's name (sb_test_stack_call). */
sb_status wt_call_path(const char *svc, const char *path, const void *req, const ProtobufCMessageDescriptor *d,
                       const char *tok, void **resp, char *reason, char *msg);

/* OpenAccounts for the owner (kind, id) with the service token: the status; the response into *resp on OK (freed
 * when resp is NULL). */
sb_status wt_open_accounts(int kind, uint64_t id, Sharebuy__Wallet__V1__OpenAccountsResponse **resp);

/* Opens a new member's accounts: OK, three of them, none there before. */
void wt_open_member(uint64_t id);

/* A member's balances (GetBalances with the admin token, which must pass): its SP and active CV, each if not
 * NULL. */
void wt_balances(uint64_t member, int64_t *sp, int64_t *cv);

/* The legs of a transaction, over their own storage: start from {0}, add with wt_leg_member / wt_leg_system. */
typedef struct wt_legs {
        Sharebuy__Common__V1__LedgerLeg legs[WT_LEGS_MAX];
        Sharebuy__Common__V1__AccountRef refs[WT_LEGS_MAX];
        Sharebuy__Common__V1__OwnerRef owners[WT_LEGS_MAX];
        Sharebuy__Common__V1__LedgerLeg *ptrs[WT_LEGS_MAX];
        size_t n;
} wt_legs;

/* A leg on a member's account of an asset (Sharebuy__Common__V1__Asset) with a LegReason. */
void wt_leg_member(wt_legs *l, uint64_t member, int asset, int64_t amount, int reason);

/* A leg on a system account (Sharebuy__Common__V1__SystemAccount) with a LegReason. */
void wt_leg_system(wt_legs *l, int system, int64_t amount, int reason);

/* PostTransaction of the legs under key with the bearer tok, for the cause (kind, reference) with memo. Returns the
 * status, the reason and message as wt_call. On OK the transaction must be there with every leg, an id and a chain
 * hash; its id goes into *tx_id and whether the answer was a replay into *replayed (each if not NULL). */
sb_status wt_post(const char *key, const wt_legs *l, Sharebuy__Common__V1__CauseKind cause_kind,
                  const char *cause_reference, const char *memo, const char *tok, char *reason, char *msg,
                  uint64_t *tx_id, bool *replayed);

/* VerifyLedger (ADMIN) must answer ok == expect_ok (the problems printed when not, or with TEST_VERBOSE), having
 * checked transactions, with the supply adding up to the cap. Returns how many transactions it checked. */
uint64_t wt_verify_rpc(bool expect_ok);

/* wt_verify_rpc, then `sharebuyctl --json ledger verify`: it too must pass, or fail when expect_ok is false (its
 * output printed when it does not do as expected). Returns what wt_verify_rpc returned. */
uint64_t wt_verify(bool expect_ok);
