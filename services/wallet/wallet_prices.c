/* wallet_prices: guide prices. See wallet_prices.h. */
#include "wallet_prices.h"

#include <errno.h>
#include <string.h>

#include "economy.h"
#include "wallet_ledger.h"

#define TRY(x)                                                                                                       \
        do {                                                                                                         \
                int r_ = (x);                                                                                        \
                if (r_ < 0)                                                                                          \
                        return r_;                                                                                   \
        } while (0)

#define PRICE_COLS "business_day, price_micro_yuan, backing_pool_fen, circulating_sp_units, initial_price," \
                   " fixed_by_airdrop_day, fixed_ms"

static int read_row(sb_db_stmt *s, wallet_price *p) {
        int64_t init;
        memset(p, 0, sizeof *p);
        if (sb_db_col_str(s, 0, p->business_day, sizeof p->business_day) < 0 ||
            sb_db_col_i64(s, 1, &p->price_micro) < 0 || sb_db_col_i64(s, 2, &p->pool_fen) < 0 ||
            sb_db_col_i64(s, 3, &p->circulating_sp) < 0 || sb_db_col_i64(s, 4, &init) < 0 ||
            sb_db_col_str(s, 5, p->fixed_by, sizeof p->fixed_by) < 0 || sb_db_col_i64(s, 6, &p->fixed_ms) < 0)
                return -EIO;
        p->initial = init != 0;
        return 0;
}

static int one(sb_db_stmt *s, wallet_price *ret) {
        wallet_price p;
        TRY(sb_db_execute(s));
        int r = sb_db_fetch(s);
        if (r <= 0)
                return r < 0 ? r : -ENOENT;
        TRY(read_row(s, &p));
        while ((r = sb_db_fetch(s)) > 0)
                ;
        if (r < 0)
                return r;
        *ret = p;
        return 0;
}

int wallet_price_get(sb_db *db, const char *business_day, wallet_price *ret) {
        sb_db_stmt *s;
        TRY(sb_db_prepare(db, "SELECT " PRICE_COLS " FROM guide_prices WHERE business_day = ?", &s));
        TRY(sb_db_bind_str(s, 0, business_day));
        return one(s, ret);
}

int wallet_price_in_force(sb_db *db, const char *business_day, int64_t initial_price_micro, wallet_price *ret) {
        sb_db_stmt *s;
        TRY(sb_db_prepare(db,
                          "SELECT " PRICE_COLS " FROM guide_prices WHERE business_day <= ?"
                          " ORDER BY business_day DESC LIMIT 1",
                          &s));
        TRY(sb_db_bind_str(s, 0, business_day));
        int r = one(s, ret);
        if (r == -ENOENT) {
                memset(ret, 0, sizeof *ret);
                memcpy(ret->business_day, business_day, WALLET_DAY_LEN);
                ret->price_micro = initial_price_micro;
                ret->initial = true;
                return 0;
        }
        return r;
}

typedef struct fix_ctx {
        const char *day, *by;
        int64_t initial, now_ms;
        wallet_price p;
        bool replayed;
} fix_ctx;

static int fix_fn(sb_db *db, void *arg) {
        fix_ctx *c = arg;
        sb_db_stmt *s;
        int r = wallet_price_get(db, c->day, &c->p);
        if (r == 0) {
                c->replayed = true;
                return 0;
        }
        if (r != -ENOENT)
                return r;
        wallet_supply su;
        TRY(wallet_ledger_supply_in_tx(db, &su));
        int64_t price;
        if (sb_econ_guide_price(su.pool_fen, su.circulating, c->initial, &price) < 0)
                return -ERANGE;
        memset(&c->p, 0, sizeof c->p);
        memcpy(c->p.business_day, c->day, WALLET_DAY_LEN);
        memcpy(c->p.fixed_by, c->by, WALLET_DAY_LEN);
        c->p.price_micro = price;
        c->p.pool_fen = su.pool_fen;
        c->p.circulating_sp = su.circulating;
        c->p.initial = su.circulating == 0;
        c->p.fixed_ms = c->now_ms;
        TRY(sb_db_prepare(db, "INSERT INTO guide_prices (" PRICE_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?)", &s));
        TRY(sb_db_bind_str(s, 0, c->p.business_day));
        TRY(sb_db_bind_i64(s, 1, c->p.price_micro));
        TRY(sb_db_bind_i64(s, 2, c->p.pool_fen));
        TRY(sb_db_bind_i64(s, 3, c->p.circulating_sp));
        TRY(sb_db_bind_i64(s, 4, c->p.initial));
        TRY(sb_db_bind_str(s, 5, c->p.fixed_by));
        TRY(sb_db_bind_i64(s, 6, c->p.fixed_ms));
        TRY(sb_db_execute(s));
        c->replayed = false;
        return 0;
}

int wallet_price_fix(sb_db *db, const char *business_day, const char *fixed_by, int64_t initial_price_micro,
                     int64_t now_ms, wallet_price *ret, bool *ret_replayed) {
        fix_ctx c = {.day = business_day, .by = fixed_by, .initial = initial_price_micro, .now_ms = now_ms};
        int r = sb_db_tx(db, fix_fn, &c);
        if (r == -EEXIST) {
                /* Fixed concurrently by another caller: the first one stands. */
                r = wallet_price_get(db, business_day, &c.p);
                c.replayed = true;
        }
        if (r < 0)
                return r;
        *ret = c.p;
        *ret_replayed = c.replayed;
        return 0;
}

int wallet_price_list(sb_db *db, const char *from_day, const char *to_day, const char *before, wallet_price *out,
                      size_t max, size_t *ret_n) {
        sb_db_stmt *s;
        TRY(sb_db_prepare(db,
                          "SELECT " PRICE_COLS " FROM guide_prices WHERE business_day >= ? AND business_day <= ?"
                          " AND business_day < ? ORDER BY business_day DESC LIMIT ?",
                          &s));
        TRY(sb_db_bind_str(s, 0, *from_day ? from_day : "0000-00-00"));
        TRY(sb_db_bind_str(s, 1, *to_day ? to_day : "9999-99-99"));
        TRY(sb_db_bind_str(s, 2, *before ? before : "9999-99-99"));
        TRY(sb_db_bind_u64(s, 3, max));
        TRY(sb_db_execute(s));
        size_t n = 0;
        int r;
        while ((r = sb_db_fetch(s)) > 0) {
                if (n < max)
                        TRY(read_row(s, &out[n++]));
        }
        if (r < 0)
                return r;
        *ret_n = n;
        return 0;
}
