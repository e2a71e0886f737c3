/* The wallet service: its definition for sb_service_main(), and what its handler files share. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "service.h"
#include "wallet_ledger.h"

/* Everything sb_service_main() needs to run the wallet service: descriptor, handlers, port, settings. */
extern const sb_service_def wallet_service;

/* For the handlers in wallet_treasury.c and wallet_statement.c. */

/* The call's database connection (statement limit set from the deadline, genesis ensured), or NULL after failing
 * the call (*ret_fail is the status to return). */
sb_db *wallet_call_db(sb_call *call, sb_status *ret_fail);
const wallet_ledger_cfg *wallet_call_ledger(sb_call *call);
int64_t wallet_call_initial_price(sb_call *call);
int64_t wallet_call_deposit_min(sb_call *call);
int64_t wallet_now_ms(void);

/* Fails the call for a store result: a refusal with its status, reason and message; a database code otherwise. */
sb_status wallet_fail_store(sb_call *call, int r, const wallet_problem *p, const char *what);

/* Whether the token may see owner (kind, id)'s accounts; and the owner a token acts for. */
bool wallet_owns(const sb_claims *c, int kind, uint64_t id);
bool wallet_own_owner(const sb_claims *c, int *kind, uint64_t *id);
