/* merchant_store: the merchants table. Every function returns 0, -ENOENT or a negative sb_db code. */
#include <errno.h>
#include <string.h>

#include "merchant_internal.h"

static int col_str(const sb_db_stmt *s, unsigned c, char *buf, size_t n) {
        int r = sb_db_col_str(s, c, buf, n);
        if (r == -ENODATA) {
                buf[0] = '\0';
                return 0;
        }
        return r < 0 ? r : 0;
}

int merchant_row_read(const sb_db_stmt *s, unsigned f, merchant_row *ret) {
        merchant_row m;
        memset(&m, 0, sizeof m);
        int64_t v;
        int r = 0;
        r |= sb_db_col_u64(s, f + 0, &m.id);
        r |= col_str(s, f + 1, m.name, sizeof m.name);
        r |= col_str(s, f + 2, m.licence, sizeof m.licence);
        r |= col_str(s, f + 3, m.address, sizeof m.address);
        r |= sb_db_col_i64(s, f + 4, &v);
        m.lat_e6 = (int32_t) v;
        r |= sb_db_col_i64(s, f + 5, &v);
        m.lon_e6 = (int32_t) v;
        r |= col_str(s, f + 6, m.district, sizeof m.district);
        r |= col_str(s, f + 7, m.contact_name, sizeof m.contact_name);
        r |= col_str(s, f + 8, m.contact_phone, sizeof m.contact_phone);
        r |= sb_db_col_i64(s, f + 9, &v);
        m.status = (int) v;
        r |= col_str(s, f + 10, m.status_reason, sizeof m.status_reason);
        r |= sb_db_col_i64(s, f + 11, &v);
        m.rate_bp = (int32_t) v;
        r |= sb_db_col_i64(s, f + 12, &v);
        m.pending_rate_bp = (int32_t) v;
        r |= col_str(s, f + 13, m.pending_rate_day, sizeof m.pending_rate_day);
        r |= sb_db_col_u64(s, f + 14, &m.owner_user_id);
        r |= sb_db_col_i64(s, f + 15, &v);
        m.referrer_kind = (int) v;
        r |= sb_db_col_u64(s, f + 16, &m.referrer_id);
        r |= sb_db_col_i64(s, f + 17, &v);
        m.referrer_vip = v != 0;
        r |= col_str(s, f + 18, m.referral_code, sizeof m.referral_code);
        r |= sb_db_col_u64(s, f + 19, &m.approved_by_centre_id);
        r |= sb_db_col_i64(s, f + 20, &v);
        m.owner_granted = v != 0;
        r |= sb_db_col_i64(s, f + 21, &m.applied_ms);
        r |= sb_db_col_i64(s, f + 22, &m.status_changed_ms);
        r |= sb_db_col_u64(s, f + 23, &m.status_changed_by);
        if (r != 0)
                return -EIO;
        *ret = m;
        return 0;
}

static int load_one(sb_db *db, const char *sql, uint64_t id, const char *code, merchant_row *ret) {
        sb_db_stmt *s;
        int r = sb_db_prepare(db, sql, &s);
        if (r < 0)
                return r;
        if (code)
                sb_db_bind_str(s, 0, code);
        else
                sb_db_bind_u64(s, 0, id);
        if ((r = sb_db_execute(s)) < 0)
                return r;
        r = sb_db_fetch(s);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        merchant_row m;
        r = merchant_row_read(s, 0, &m);
        while (sb_db_fetch(s) > 0)
                ;
        if (r < 0)
                return r;
        *ret = m;
        return 0;
}

int merchant_load(sb_db *db, uint64_t id, merchant_row *ret) {
        return load_one(db, "SELECT " MERCHANT_ROW_COLUMNS " FROM sharebuy_merchant.merchants WHERE merchant_id = ?",
                        id, NULL, ret);
}

int merchant_load_by_referral(sb_db *db, const char *code, merchant_row *ret) {
        return load_one(db,
                        "SELECT " MERCHANT_ROW_COLUMNS " FROM sharebuy_merchant.merchants WHERE referral_code = ?", 0,
                        code, ret);
}

int merchant_insert(sb_db *db, const merchant_row *m, uint64_t *ret_id) {
        sb_db_stmt *s;
        int r = sb_db_prepare(db,
                              "INSERT INTO sharebuy_merchant.merchants (name, licence_no, licence_active, address, "
                              "lat_e6, lon_e6, district_code, contact_name, contact_phone, status, rate_bp, "
                              "owner_user_id, referrer_kind, referrer_id, referrer_vip, referral_code, applied_ms, "
                              "status_changed_ms, status_changed_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                              "?, ?, ?, ?, ?)",
                              &s);
        if (r < 0)
                return r;
        unsigned i = 0;
        sb_db_bind_str(s, i++, m->name);
        sb_db_bind_str(s, i++, m->licence);
        sb_db_bind_str(s, i++, m->licence);
        sb_db_bind_str(s, i++, m->address);
        sb_db_bind_i64(s, i++, m->lat_e6);
        sb_db_bind_i64(s, i++, m->lon_e6);
        sb_db_bind_str(s, i++, m->district);
        sb_db_bind_str(s, i++, m->contact_name);
        sb_db_bind_str(s, i++, m->contact_phone);
        sb_db_bind_i64(s, i++, m->status);
        sb_db_bind_i64(s, i++, m->rate_bp);
        sb_db_bind_u64(s, i++, m->owner_user_id);
        sb_db_bind_i64(s, i++, m->referrer_kind);
        sb_db_bind_u64(s, i++, m->referrer_id);
        sb_db_bind_i64(s, i++, m->referrer_vip ? 1 : 0);
        sb_db_bind_str(s, i++, m->referral_code);
        sb_db_bind_i64(s, i++, m->applied_ms);
        sb_db_bind_i64(s, i++, m->status_changed_ms);
        sb_db_bind_u64(s, i++, m->status_changed_by);
        if ((r = sb_db_execute(s)) < 0)
                return r;
        *ret_id = sb_db_insert_id(s);
        return 0;
}

int merchant_set_status(sb_db *db, uint64_t id, int from, int to, const char *reason, uint64_t by, int64_t now_ms,
                        uint64_t centre_id) {
        sb_db_stmt *s;
        /* licence_active follows the status: NULL once rejected, so the licence may apply again. */
        int r = sb_db_prepare(db,
                              "UPDATE sharebuy_merchant.merchants SET status = ?, status_reason = ?, "
                              "status_changed_by = ?, status_changed_ms = ?, "
                              "licence_active = IF(? = 3, NULL, licence_no), "
                              "approved_by_centre_id = IF(? = 2 AND status = 1, ?, approved_by_centre_id) "
                              "WHERE merchant_id = ? AND status = ?",
                              &s);
        if (r < 0)
                return r;
        sb_db_bind_i64(s, 0, to);
        sb_db_bind_str(s, 1, reason ? reason : "");
        sb_db_bind_u64(s, 2, by);
        sb_db_bind_i64(s, 3, now_ms);
        sb_db_bind_i64(s, 4, to);
        sb_db_bind_i64(s, 5, to);
        sb_db_bind_u64(s, 6, centre_id);
        sb_db_bind_u64(s, 7, id);
        sb_db_bind_i64(s, 8, from);
        if ((r = sb_db_execute(s)) < 0)
                return r;
        return sb_db_affected_rows(s) == 1 ? 0 : -ESTALE;
}

static int exec_id(sb_db *db, const char *sql, uint64_t id) {
        sb_db_stmt *s;
        int r = sb_db_prepare(db, sql, &s);
        if (r < 0)
                return r;
        sb_db_bind_u64(s, 0, id);
        return sb_db_execute(s);
}

int merchant_set_granted(sb_db *db, uint64_t id) {
        return exec_id(db, "UPDATE sharebuy_merchant.merchants SET owner_granted = 1 WHERE merchant_id = ?", id);
}

int merchant_set_referrer_vip(sb_db *db, uint64_t id) {
        return exec_id(db, "UPDATE sharebuy_merchant.merchants SET referrer_vip = 1 WHERE merchant_id = ?", id);
}

int merchant_set_rate(sb_db *db, uint64_t id, int32_t rate_bp, int32_t pending_bp, const char *pending_day) {
        sb_db_stmt *s;
        int r = sb_db_prepare(db,
                              "UPDATE sharebuy_merchant.merchants SET rate_bp = ?, pending_rate_bp = ?, "
                              "pending_rate_day = ? WHERE merchant_id = ?",
                              &s);
        if (r < 0)
                return r;
        sb_db_bind_i64(s, 0, rate_bp);
        sb_db_bind_i64(s, 1, pending_bp);
        sb_db_bind_str(s, 2, pending_day);
        sb_db_bind_u64(s, 3, id);
        return sb_db_execute(s);
}

int merchant_update_fields(sb_db *db, const merchant_row *m) {
        sb_db_stmt *s;
        int r = sb_db_prepare(db,
                              "UPDATE sharebuy_merchant.merchants SET name = ?, address = ?, lat_e6 = ?, lon_e6 = ?, "
                              "contact_name = ?, contact_phone = ? WHERE merchant_id = ?",
                              &s);
        if (r < 0)
                return r;
        sb_db_bind_str(s, 0, m->name);
        sb_db_bind_str(s, 1, m->address);
        sb_db_bind_i64(s, 2, m->lat_e6);
        sb_db_bind_i64(s, 3, m->lon_e6);
        sb_db_bind_str(s, 4, m->contact_name);
        sb_db_bind_str(s, 5, m->contact_phone);
        sb_db_bind_u64(s, 6, m->id);
        return sb_db_execute(s);
}
