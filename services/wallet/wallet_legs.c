/* wallet_legs: validation of legs, request and chain hashes, business days. See wallet_legs.h. */
#include "wallet_legs.h"

#include "day.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "units.h"

int wallet_system_asset(uint64_t system) {
        switch (system) {
        case WALLET_SYS_SP_UNRELEASED:
        case WALLET_SYS_SP_TREASURY:
        case WALLET_SYS_SP_BURNED:
                return WALLET_ASSET_SP;
        case WALLET_SYS_CV_ISSUED:
        case WALLET_SYS_CV_AIRDROP_SPENT:
                return WALLET_ASSET_CV_LOCKED;
        case WALLET_SYS_FEN_BACKING_POOL:
        case WALLET_SYS_FEN_PAYMENTS_RECEIVED:
                return WALLET_ASSET_FEN;
        default:
                return 0;
        }
}

int wallet_asset_class(int asset) {
        switch (asset) {
        case WALLET_ASSET_CV_LOCKED:
        case WALLET_ASSET_CV_ACTIVE:
                return WALLET_ASSET_CV_LOCKED;
        case WALLET_ASSET_SP:
                return WALLET_ASSET_SP;
        case WALLET_ASSET_FEN:
                return WALLET_ASSET_FEN;
        default:
                return 0;
        }
}

static const char *class_name(int cls) {
        switch (cls) {
        case WALLET_ASSET_CV_LOCKED:
                return "CV";
        case WALLET_ASSET_SP:
                return "SP";
        default:
                return "FEN";
        }
}

bool wallet_key_valid(const char *s, size_t max) {
        size_t n = 0;

        if (!s)
                return false;
        for (; s[n]; n++) {
                if (n >= max || (unsigned char) s[n] < 0x21 || (unsigned char) s[n] > 0x7e)
                        return false;
        }
        return n > 0;
}

bool wallet_utf8_valid(const char *s, size_t max_chars) {
        const unsigned char *p = (const unsigned char *) s;
        size_t chars = 0;

        if (!s)
                return false;
        while (*p) {
                unsigned c = *p, need;
                uint32_t cp;

                if (c < 0x80) {
                        if (c < 0x20 || c == 0x7f)
                                return false;
                        p++;
                        goto counted;
                } else if ((c & 0xe0) == 0xc0) {
                        need = 1;
                        cp = c & 0x1f;
                } else if ((c & 0xf0) == 0xe0) {
                        need = 2;
                        cp = c & 0x0f;
                } else if ((c & 0xf8) == 0xf0) {
                        need = 3;
                        cp = c & 0x07;
                } else
                        return false;
                for (unsigned i = 1; i <= need; i++) {
                        if ((p[i] & 0xc0) != 0x80)
                                return false;
                        cp = (cp << 6) | (p[i] & 0x3f);
                }
                /* Overlong forms, surrogates and values past U+10FFFF are not UTF-8. */
                if ((need == 1 && cp < 0x80) || (need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) ||
                    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
                        return false;
                p += need + 1;
        counted:
                if (++chars > max_chars)
                        return false;
        }
        return true;
}

static bool holder_asset(int asset) {
        return asset == WALLET_ASSET_CV_LOCKED || asset == WALLET_ASSET_CV_ACTIVE || asset == WALLET_ASSET_SP;
}

static const char *kind_name(int kind) {
        switch (kind) {
        case WALLET_OWNER_MEMBER:
                return "member";
        case WALLET_OWNER_MERCHANT:
                return "merchant";
        case WALLET_OWNER_CENTRE:
                return "centre";
        default:
                return "system";
        }
}

int wallet_legs_check(wallet_leg *legs, size_t n, bool genesis, int64_t genesis_sp, char *why, size_t why_n) {
        /* Sums per class: index by WALLET_ASSET_* (CV uses CV_LOCKED). */
        int64_t sum[5] = {0};

        if (n == 0 || n > WALLET_LEGS_MAX) {
                snprintf(why, why_n, "a transaction has 1 to %d legs, not %zu", WALLET_LEGS_MAX, n);
                return -EINVAL;
        }
        for (size_t i = 0; i < n; i++) {
                wallet_leg *l = &legs[i];

                if (l->amount == 0 || l->amount > WALLET_AMOUNT_MAX || l->amount < -WALLET_AMOUNT_MAX) {
                        snprintf(why, why_n, "leg %zu: amount %" PRId64 " is 0 or beyond ±10^15 units", i + 1,
                                 l->amount);
                        return -EINVAL;
                }
                if (l->reason <= 0 || l->reason > WALLET_REASON_MAX) {
                        snprintf(why, why_n, "leg %zu: reason %d is not a LegReason", i + 1, l->reason);
                        return -EINVAL;
                }
                if (l->ref.owner_kind == WALLET_OWNER_SYSTEM) {
                        int a = wallet_system_asset(l->ref.owner_id);
                        if (!a) {
                                snprintf(why, why_n, "leg %zu: system account %" PRIu64 " does not exist", i + 1,
                                         l->ref.owner_id);
                                return -EINVAL;
                        }
                        /* CV system accounts take either CV state; we store them under CV_LOCKED's class. */
                        if (l->ref.asset && wallet_asset_class(l->ref.asset) != wallet_asset_class(a)) {
                                snprintf(why, why_n, "leg %zu: system account %" PRIu64 " holds %s, not asset %d",
                                         i + 1, l->ref.owner_id, class_name(wallet_asset_class(a)), l->ref.asset);
                                return -EINVAL;
                        }
                        l->ref.asset = a;
                } else if (l->ref.owner_kind >= WALLET_OWNER_MEMBER && l->ref.owner_kind <= WALLET_OWNER_CENTRE) {
                        if (l->ref.owner_id == 0) {
                                snprintf(why, why_n, "leg %zu: %s id 0", i + 1, kind_name(l->ref.owner_kind));
                                return -EINVAL;
                        }
                        if (!holder_asset(l->ref.asset)) {
                                snprintf(why, why_n,
                                         "leg %zu: a %s account holds CV_LOCKED, CV_ACTIVE or SP, not asset %d",
                                         i + 1, kind_name(l->ref.owner_kind), l->ref.asset);
                                return -EINVAL;
                        }
                } else {
                        snprintf(why, why_n, "leg %zu: owner kind %d is not a member, merchant or centre", i + 1,
                                 l->ref.owner_kind);
                        return -EINVAL;
                }
                for (size_t j = 0; j < i; j++) {
                        if (legs[j].ref.owner_kind == l->ref.owner_kind && legs[j].ref.owner_id == l->ref.owner_id &&
                            legs[j].ref.asset == l->ref.asset) {
                                snprintf(why, why_n, "legs %zu and %zu name the same account", j + 1, i + 1);
                                return -EINVAL;
                        }
                }
                int cls = wallet_asset_class(l->ref.asset);
                /* |amount| ≤ 10^15 and n ≤ 64, so the sums cannot overflow; checked anyway. */
                if (sb_add_i64(sum[cls], l->amount, &sum[cls]) < 0) {
                        snprintf(why, why_n, "the %s legs overflow", class_name(cls));
                        return -EINVAL;
                }
        }
        static const int classes[] = {WALLET_ASSET_CV_LOCKED, WALLET_ASSET_SP, WALLET_ASSET_FEN};
        for (size_t c = 0; c < sizeof classes / sizeof classes[0]; c++) {
                int cls = classes[c];
                int64_t want = genesis && cls == WALLET_ASSET_SP ? genesis_sp : 0;
                if (sum[cls] != want) {
                        snprintf(why, why_n, "the %s legs do not balance: they sum to %" PRId64 " units, not %" PRId64,
                                 class_name(cls), sum[cls], want);
                        return -EINVAL;
                }
        }
        return 0;
}

/* A canonical encoder: every field as a tag, a length and the bytes, so that no two different field lists encode
 * the same. */
static void put(crypto_hash_sha256_state *st, uint8_t tag, const void *p, size_t n) {
        uint8_t hdr[5] = {tag, (uint8_t) (n >> 24), (uint8_t) (n >> 16), (uint8_t) (n >> 8), (uint8_t) n};
        crypto_hash_sha256_update(st, hdr, sizeof hdr);
        if (n)
                crypto_hash_sha256_update(st, p, n);
}

static void put_u64(crypto_hash_sha256_state *st, uint8_t tag, uint64_t v) {
        uint8_t b[8];
        for (int i = 0; i < 8; i++)
                b[i] = (uint8_t) (v >> (56 - 8 * i));
        put(st, tag, b, sizeof b);
}

static void put_str(crypto_hash_sha256_state *st, uint8_t tag, const char *s) {
        put(st, tag, s, strlen(s));
}

static void put_common(crypto_hash_sha256_state *st, const wallet_tx *tx) {
        put_str(st, 2, tx->scope);
        put_str(st, 3, tx->key);
        put_u64(st, 4, (uint64_t) tx->cause_kind);
        put_str(st, 5, tx->cause_ref);
        put_u64(st, 6, tx->cause_merchant);
        put_str(st, 7, tx->memo);
        put_u64(st, 8, tx->reverses_tx_id);
        put_u64(st, 9, tx->n_legs);
}

void wallet_request_hash(const wallet_tx *tx, uint8_t out[WALLET_HASH_BYTES]) {
        crypto_hash_sha256_state st;

        crypto_hash_sha256_init(&st);
        put_str(&st, 1, "sharebuy.wallet.request.v1");
        put_common(&st, tx);
        for (size_t i = 0; i < tx->n_legs; i++) {
                const wallet_leg *l = &tx->legs[i];
                put_u64(&st, 20, (uint64_t) l->ref.owner_kind);
                put_u64(&st, 21, l->ref.owner_id);
                put_u64(&st, 22, (uint64_t) l->ref.asset);
                put_u64(&st, 23, (uint64_t) l->amount);
                put_u64(&st, 24, (uint64_t) l->reason);
        }
        crypto_hash_sha256_final(&st, out);
}

void wallet_chain_hash(const wallet_tx *tx, uint8_t out[WALLET_HASH_BYTES]) {
        crypto_hash_sha256_state st;

        crypto_hash_sha256_init(&st);
        put_str(&st, 1, "sharebuy.wallet.journal.v1");
        put(&st, 10, tx->prev_hash, WALLET_HASH_BYTES);
        put_u64(&st, 11, tx->chain_part);
        put_u64(&st, 12, tx->chain_seq);
        put_common(&st, tx);
        put_u64(&st, 13, (uint64_t) tx->posted_ms);
        put_str(&st, 14, tx->business_day);
        for (size_t i = 0; i < tx->n_legs; i++) {
                const wallet_leg *l = &tx->legs[i];
                put_u64(&st, 30, l->account_id);
                put_u64(&st, 31, l->shard);
                put_u64(&st, 32, (uint64_t) l->ref.asset);
                put_u64(&st, 33, (uint64_t) l->amount);
                put_u64(&st, 34, (uint64_t) l->reason);
                put_u64(&st, 35, l->has_balance_after ? 1 : 0);
                put_u64(&st, 36, l->has_balance_after ? (uint64_t) l->balance_after : 0);
        }
        crypto_hash_sha256_final(&st, out);
}

void wallet_hash_hex(const uint8_t h[WALLET_HASH_BYTES], char out[2 * WALLET_HASH_BYTES + 1]) {
        static const char hex[] = "0123456789abcdef";
        for (size_t i = 0; i < WALLET_HASH_BYTES; i++) {
                out[2 * i] = hex[h[i] >> 4];
                out[2 * i + 1] = hex[h[i] & 15];
        }
        out[2 * WALLET_HASH_BYTES] = '\0';
}

int wallet_business_day(int64_t unix_ms, int utc_offset_min, int cutoff_min, char out[WALLET_DAY_LEN + 1]) {
        int64_t day;
        int r = sb_business_day(unix_ms, utc_offset_min, cutoff_min, &day);
        return r < 0 ? r : sb_day_format(day, out);
}

bool wallet_day_valid(const char *s) {
        return sb_day_valid(s);
}

int wallet_business_day_end(const char *day, int utc_offset_min, int cutoff_min, int64_t *ret_ms) {
        int64_t d;
        if (sb_day_parse(day, &d) < 0 || cutoff_min < 0 || cutoff_min >= 1440)
                return -EINVAL;
        *ret_ms = sb_business_day_end_ms(d, utc_offset_min, cutoff_min);
        return 0;
}

static uint64_t key_hash(const char *scope, const char *key) {
        uint8_t h[crypto_hash_sha256_BYTES];
        crypto_hash_sha256_state st;
        crypto_hash_sha256_init(&st);
        put_str(&st, 1, scope);
        put_str(&st, 2, key);
        crypto_hash_sha256_final(&st, h);
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
                v = (v << 8) | h[i];
        return v;
}

unsigned wallet_chain_of(const char *scope, const char *key, unsigned n_chains) {
        return n_chains ? (unsigned) (key_hash(scope, key) % n_chains) : 0;
}

unsigned wallet_shard_of(const char *scope, const char *key, unsigned n_shards) {
        /* The high bits choose the shard, the low bits the chain: the two choices are independent. */
        return n_shards ? (unsigned) ((key_hash(scope, key) >> 32) % n_shards) : 0;
}
