/* wallet_prices: the guide price of each business day, fixed once by that day's airdrop run (economics.md, "The
 * daily airdrop", step 2). Same conventions as wallet_ledger.h. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "db.h"
#include "wallet_legs.h"

typedef struct wallet_price {
        char business_day[WALLET_DAY_LEN + 1];
        int64_t price_micro;
        int64_t pool_fen;
        int64_t circulating_sp;
        bool initial;
        char fixed_by[WALLET_DAY_LEN + 1];
        int64_t fixed_ms;
} wallet_price;

/* Fixes the price of business_day from the supply now (pool ÷ circulating, or initial_price_micro while nothing
 * circulates), unless it is fixed already: then *ret is the stored one and *ret_replayed true. The days must be
 * valid (the caller checks). */
int wallet_price_fix(sb_db *db, const char *business_day, const char *fixed_by, int64_t initial_price_micro,
                     int64_t now_ms, wallet_price *ret, bool *ret_replayed);

/* The price fixed for business_day; -ENOENT when it is not fixed. */
int wallet_price_get(sb_db *db, const char *business_day, wallet_price *ret);

/* The price in force on business_day: the one fixed for it, else the latest fixed before it, else the initial
 * price (then ret->initial is true and ret->fixed_by empty). */
int wallet_price_in_force(sb_db *db, const char *business_day, int64_t initial_price_micro, wallet_price *ret);

/* Up to max prices, newest first, with from_day ≤ day ≤ to_day (either may be "" for open) and day < before
 * (a page cursor; "" for none). Writes *ret_n. */
int wallet_price_list(sb_db *db, const char *from_day, const char *to_day, const char *before, wallet_price *out,
                      size_t max, size_t *ret_n);
