/* airdrop_allot: the day's allotment streamed over the participants in bounded memory, with the rules of economy.h
 * (sb_econ_share_floor, sb_econ_leftover, the sb_econ_select_* threshold, sb_econ_gets_extra, sb_econ_cap_share):
 * a chunked caller gets exactly what sb_econ_allot() gives in memory. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "airdrop_internal.h"
#include "units.h"

#define TRY(x)                                                                                                       \
        do {                                                                                                         \
                int r_ = (x);                                                                                        \
                if (r_ < 0)                                                                                          \
                        return r_;                                                                                   \
        } while (0)

int airdrop_parse_digits(const uint8_t *p, size_t n, uint64_t max, uint64_t *ret) {
        uint64_t v = 0;
        for (size_t i = 0; i < n; i++) {
                if (p[i] < '0' || p[i] > '9')
                        return -EIO;
                unsigned d = (unsigned) (p[i] - '0');
                if (v > (max - d) / 10)
                        return -EIO;
                v = v * 10 + d;
        }
        *ret = v;
        return 0;
}

int airdrop_block_parse(const uint8_t *recs, size_t len, uint64_t n, uint64_t seq, airdrop_row *rows) {
        if (n == 0 || n > AIRDROP_BLOCK || !recs || len != n * AIRDROP_REC)
                return -EIO;
        for (uint64_t i = 0; i < n; i++) {
                const uint8_t *p = recs + i * AIRDROP_REC;
                airdrop_row *w = &rows[i];
                uint64_t kind, cv;
                if (p[0] != '#' || airdrop_parse_digits(p + 1, 20, UINT64_MAX, &w->account_id) < 0 ||
                    airdrop_parse_digits(p + 21, 3, 255, &kind) < 0 || airdrop_parse_digits(p + 24, 20, UINT64_MAX, &w->owner_id) < 0 ||
                    airdrop_parse_digits(p + 44, 19, INT64_MAX, &cv) < 0)
                        return -EIO;
                w->seq = seq + i;
                w->owner_kind = (int) kind;
                w->cv = (int64_t) cv;
                if (i > 0 && w->account_id <= rows[i - 1].account_id)
                        return -EIO;
        }
        return 0;
}

/* A page of the live view (day NULL: participants after account lo), or of a day's snapshot: the records at
 * positions [lo, hi) of the blocks that start in [lo − AIRDROP_BLOCK + 1, hi) (a block holds at most AIRDROP_BLOCK,
 * so one starting before cannot reach lo), at most AIRDROP_PAGE / AIRDROP_BLOCK blocks; *ret_next is the position
 * after the last block read, or UINT64_MAX when the range has no more blocks. */
static int scan_page(sb_db *db, const char *day, uint64_t lo, uint64_t hi, airdrop_row *rows, size_t *ret_n,
                     uint64_t *ret_next) {
        sb_db_stmt *s;
        *ret_next = UINT64_MAX;
        if (day) {
                TRY(sb_db_prepare(db,
                                  "SELECT seq, n, recs FROM snapshot_blocks WHERE business_day = ? AND seq >= ?"
                                  " AND seq < ? ORDER BY seq LIMIT " AIRDROP_STR(AIRDROP_PAGE_BLOCKS),
                                  &s));
                TRY(sb_db_bind_str(s, 0, day));
                TRY(sb_db_bind_u64(s, 1, lo >= AIRDROP_BLOCK ? lo - AIRDROP_BLOCK + 1 : 0));
                TRY(sb_db_bind_u64(s, 2, hi));
        } else {
                TRY(sb_db_prepare(db,
                                  "SELECT 0, account_id, owner_kind, owner_id, cv_units"
                                  " FROM sharebuy_wallet.airdrop_active_cv WHERE account_id > ?"
                                  " ORDER BY account_id LIMIT 8192",
                                  &s));
                TRY(sb_db_bind_u64(s, 0, lo));
        }
        TRY(sb_db_execute(s));
        size_t n = 0, blocks = 0;
        uint64_t end = 0;
        int r;
        while ((r = sb_db_fetch(s)) > 0) {
                if (day) {
                        uint64_t seq, bn;
                        size_t len = 0;
                        TRY(sb_db_col_u64(s, 0, &seq));
                        TRY(sb_db_col_u64(s, 1, &bn));
                        const uint8_t *recs = sb_db_col_data(s, 2, &len);
                        if (++blocks > AIRDROP_PAGE_BLOCKS || n + AIRDROP_BLOCK > AIRDROP_PAGE)
                                return -EIO;
                        airdrop_row tmp[AIRDROP_BLOCK];
                        TRY(airdrop_block_parse(recs, len, bn, seq, tmp));
                        for (uint64_t i = 0; i < bn; i++)
                                if (tmp[i].seq >= lo && tmp[i].seq < hi)
                                        rows[n++] = tmp[i];
                        end = seq + bn;
                        continue;
                }
                if (n >= AIRDROP_PAGE)
                        return -EIO;
                airdrop_row *w = &rows[n++];
                int64_t kind;
                TRY(sb_db_col_u64(s, 0, &w->seq));
                TRY(sb_db_col_u64(s, 1, &w->account_id));
                TRY(sb_db_col_i64(s, 2, &kind));
                TRY(sb_db_col_u64(s, 3, &w->owner_id));
                TRY(sb_db_col_i64(s, 4, &w->cv));
                w->owner_kind = (int) kind;
        }
        if (r < 0)
                return r;
        *ret_n = n;
        if (day ? blocks == AIRDROP_PAGE_BLOCKS : n == AIRDROP_PAGE)
                *ret_next = day ? end : rows[n - 1].account_id;
        return 0;
}

int airdrop_scan(sb_db *db, const char *day, uint64_t seq_lo, uint64_t seq_hi, airdrop_row_fn fn, void *arg) {
        airdrop_row *rows = malloc(AIRDROP_PAGE * sizeof *rows);
        if (!rows)
                return -ENOMEM;
        uint64_t lo = day ? seq_lo : 0;
        int r = 0;
        for (;;) {
                size_t n = 0;
                uint64_t next = UINT64_MAX;
                r = scan_page(db, day, lo, seq_hi, rows, &n, &next);
                if (r < 0)
                        break;
                if (n > 0 && (r = fn(rows, n, arg)) < 0)
                        break;
                if (next == UINT64_MAX || (day && next >= seq_hi))
                        break;
                lo = next;
        }
        free(rows);
        return r < 0 ? r : 0;
}

/* Pass 1 (the floor shares' sum) and the first pass of the leftover selection read the same (rem, id) keys, and the
 * selection's first pass only counts keys by their top bits, which does not depend on k: so both run over one scan,
 * and only the passes that narrow the threshold further read the snapshot again (one more, usually). */
typedef struct pass1 {
        const airdrop_params *p;
        sb_econ_select *sel;
        int64_t floor_sum;
        uint64_t seen;
} pass1;

static int pass1_fn(const airdrop_row *rows, size_t n, void *arg) {
        pass1 *c = arg;
        for (size_t i = 0; i < n; i++) {
                int64_t floor, rem;
                TRY(sb_econ_share_floor(rows[i].cv, c->p->d, c->p->cv_total, &floor, &rem));
                if (sb_add_i64(c->floor_sum, floor, &c->floor_sum) < 0)
                        return -ERANGE;
                TRY(sb_econ_select_feed(c->sel, rem, rows[i].account_id));
        }
        c->seen += n;
        return 0;
}

typedef struct select_pass {
        const airdrop_params *p;
        sb_econ_select *sel;
} select_pass;

static int select_fn(const airdrop_row *rows, size_t n, void *arg) {
        select_pass *c = arg;
        for (size_t i = 0; i < n; i++) {
                int64_t floor, rem;
                TRY(sb_econ_share_floor(rows[i].cv, c->p->d, c->p->cv_total, &floor, &rem));
                TRY(sb_econ_select_feed(c->sel, rem, rows[i].account_id));
        }
        return 0;
}

int airdrop_allot_params(sb_db *db, const char *day, airdrop_params *p) {
        p->leftover = 0;
        p->thr = (sb_econ_threshold){.none = true};
        if (p->n == 0 || p->cv_total <= 0 || p->d == 0)
                return 0;
        sb_econ_select *sel = malloc(sizeof *sel);
        if (!sel)
                return -ENOMEM;
        /* k is not known before pass 1 ends: the selection starts with k = 1 (so that it counts) and gets the real k
         * before its first sb_econ_select_next(), the first place where k is read. */
        int r = sb_econ_select_init(sel, 1, p->cv_total, p->id_max);
        pass1 c1 = {.p = p, .sel = sel};
        if (r == 0)
                r = airdrop_scan(db, day, 0, UINT64_MAX, pass1_fn, &c1);
        if (r == 0 && c1.seen != p->n)
                r = -EINVAL; /* the participants changed under the scan */
        int64_t k = 0;
        if (r == 0)
                r = sb_econ_leftover(p->d, c1.floor_sum, p->n, &k);
        if (r < 0 || k == 0) {
                free(sel);
                return r;
        }
        p->leftover = k;
        sel->k = sel->need = (uint64_t) k;
        select_pass c2 = {.p = p, .sel = sel};
        unsigned passes = 0;
        while ((r = sb_econ_select_next(sel)) > 0) {
                if (++passes > 16) { /* the selection promises at most eight */
                        r = -EIO;
                        break;
                }
                if ((r = airdrop_scan(db, day, 0, UINT64_MAX, select_fn, &c2)) < 0)
                        break;
        }
        if (r == 0)
                r = sb_econ_select_result(sel, &p->thr);
        free(sel);
        return r;
}

int airdrop_share(const airdrop_params *p, uint64_t account_id, int64_t cv, sb_econ_capped *ret) {
        if (p->cv_total <= 0 || p->d == 0) {
                *ret = (sb_econ_capped){0};
                return 0;
        }
        int64_t floor, rem;
        TRY(sb_econ_share_floor(cv, p->d, p->cv_total, &floor, &rem));
        int64_t share = floor + (sb_econ_gets_extra(rem, account_id, &p->thr) ? 1 : 0);
        return sb_econ_cap_share(share, cv, p->price_micro, ret);
}
