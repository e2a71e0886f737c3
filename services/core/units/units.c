/* SPDX-License-Identifier: LicenseRef-proprietary */
#include "units.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

/* GCC and Clang have 128-bit integers on every 64-bit target we build for; __extension__ keeps -Wpedantic quiet. */
__extension__ typedef __int128 sb_i128;
__extension__ typedef unsigned __int128 sb_u128;

int sb_add_i64(int64_t a, int64_t b, int64_t *ret) {
        int64_t r;

        if (__builtin_add_overflow(a, b, &r))
                return -ERANGE;
        *ret = r;
        return 0;
}

int sb_sub_i64(int64_t a, int64_t b, int64_t *ret) {
        int64_t r;

        if (__builtin_sub_overflow(a, b, &r))
                return -ERANGE;
        *ret = r;
        return 0;
}

int sb_mul_i64(int64_t a, int64_t b, int64_t *ret) {
        int64_t r;

        if (__builtin_mul_overflow(a, b, &r))
                return -ERANGE;
        *ret = r;
        return 0;
}

int sb_muldiv_i64(int64_t a, int64_t b, int64_t c, sb_round mode, int64_t *ret) {
        sb_i128 num, q, r;

        if (mode != SB_ROUND_DOWN && mode != SB_ROUND_UP && mode != SB_ROUND_HALF_EVEN &&
            mode != SB_ROUND_TOWARD_ZERO)
                return -EINVAL;
        if (c == 0)
                return -EDOM;

        /* |a × b| ≤ 2^126, so the product always fits; only the quotient can be out of range. */
        num = (sb_i128) a * b;
        q = num / c; /* C truncates toward zero; the remainder takes the sign of num. */
        r = num % c;

        if (r != 0) {
                /* The exact quotient lies strictly between q and its neighbour away from zero. */
                bool positive = (r < 0) == (c < 0);
                sb_u128 twice_r = (sb_u128) (r < 0 ? -r : r) * 2;
                sb_u128 abs_c = (sb_u128) (c < 0 ? -(sb_i128) c : (sb_i128) c);

                switch (mode) {
                case SB_ROUND_DOWN:
                        if (!positive)
                                q -= 1;
                        break;
                case SB_ROUND_UP:
                        if (positive)
                                q += 1;
                        break;
                case SB_ROUND_HALF_EVEN:
                        if (twice_r > abs_c || (twice_r == abs_c && (q & 1) != 0))
                                q += positive ? 1 : -1;
                        break;
                case SB_ROUND_TOWARD_ZERO:
                        break;
                }
        }

        if (q > INT64_MAX || q < INT64_MIN)
                return -ERANGE;
        *ret = (int64_t) q;
        return 0;
}

int sb_div_i64(int64_t a, int64_t c, sb_round mode, int64_t *ret) {
        return sb_muldiv_i64(a, 1, c, mode, ret);
}

/* Writes v as a decimal with `decimals` fractional digits, trimming trailing zeros down to `min_decimals`. */
static int format_fixed(int64_t v, unsigned decimals, unsigned min_decimals, char *buf, size_t n) {
        char frac_digits[8], whole_digits[24];
        uint64_t mag, scale = 1, whole, frac;
        unsigned keep;
        size_t n_whole = 0, len, pos = 0;

        for (unsigned i = 0; i < decimals; i++)
                scale *= 10;

        /* The magnitude as unsigned, so INT64_MIN does not overflow when negated. */
        mag = v < 0 ? (uint64_t) 0 - (uint64_t) v : (uint64_t) v;
        whole = mag / scale;
        frac = mag % scale;

        for (unsigned i = decimals; i > 0; i--) {
                frac_digits[i - 1] = (char) ('0' + frac % 10);
                frac /= 10;
        }
        keep = decimals;
        while (keep > min_decimals && frac_digits[keep - 1] == '0')
                keep--;

        do {
                whole_digits[n_whole++] = (char) ('0' + whole % 10);
                whole /= 10;
        } while (whole > 0);

        len = (v < 0 ? 1 : 0) + n_whole + (keep > 0 ? 1 + keep : 0);
        if (!buf || len + 1 > n)
                return -ENOBUFS;

        if (v < 0)
                buf[pos++] = '-';
        while (n_whole > 0)
                buf[pos++] = whole_digits[--n_whole];
        if (keep > 0) {
                buf[pos++] = '.';
                memcpy(buf + pos, frac_digits, keep);
                pos += keep;
        }
        buf[pos] = '\0';
        return (int) pos;
}

int sb_fen_format(int64_t fen, char *buf, size_t n) {
        return format_fixed(fen, SB_FEN_DECIMALS, SB_FEN_DECIMALS, buf, n);
}

int sb_units_format(int64_t units, char *buf, size_t n) {
        return format_fixed(units, SB_UNITS_DECIMALS, 0, buf, n);
}

int sb_units_format_fixed(int64_t units, char *buf, size_t n) {
        return format_fixed(units, SB_UNITS_DECIMALS, SB_UNITS_DECIMALS, buf, n);
}

int sb_price_format(int64_t micro, char *buf, size_t n) {
        return format_fixed(micro, SB_PRICE_DECIMALS, 2, buf, n);
}

static bool is_digit(char c) {
        /* Not isdigit(): the locale must never change what counts as an amount. */
        return c >= '0' && c <= '9';
}

/* The strict grammar of the header: -?[0-9]+(\.[0-9]{1,decimals})? */
static int parse_fixed(const char *s, unsigned decimals, int64_t *ret) {
        const char *p;
        bool negative = false, too_big = false;
        sb_u128 mag = 0;
        unsigned n_frac = 0;
        size_t len;

        if (!s)
                return -EINVAL;
        /* A bounded strlen: never reads past SB_UNITS_PARSE_MAX + 1 bytes of untrusted text. */
        for (len = 0; len <= SB_UNITS_PARSE_MAX && s[len] != '\0'; len++)
                ;
        if (len == 0 || len > SB_UNITS_PARSE_MAX)
                return -EINVAL;

        p = s;
        if (*p == '-') {
                negative = true;
                p++;
        }
        if (!is_digit(*p))
                return -EINVAL;

        /* Once the magnitude passes 2^64 it can only be out of range; keep checking the syntax regardless. */
        for (; is_digit(*p); p++) {
                if (mag > UINT64_MAX)
                        too_big = true;
                else
                        mag = mag * 10 + (unsigned) (*p - '0');
        }
        if (*p == '.') {
                p++;
                if (!is_digit(*p))
                        return -EINVAL;
                for (; is_digit(*p); p++) {
                        if (++n_frac > decimals)
                                return -EINVAL;
                        if (mag > UINT64_MAX)
                                too_big = true;
                        else
                                mag = mag * 10 + (unsigned) (*p - '0');
                }
        }
        if (*p != '\0')
                return -EINVAL;

        for (; n_frac < decimals; n_frac++) {
                if (mag > UINT64_MAX)
                        too_big = true;
                else
                        mag *= 10;
        }

        if (too_big)
                return -ERANGE;
        if (negative) {
                if (mag > (sb_u128) INT64_MAX + 1)
                        return -ERANGE;
                *ret = (int64_t) (-(sb_i128) mag);
        } else {
                if (mag > (sb_u128) INT64_MAX)
                        return -ERANGE;
                *ret = (int64_t) mag;
        }
        return 0;
}

int sb_fen_parse(const char *s, int64_t *ret) {
        return parse_fixed(s, SB_FEN_DECIMALS, ret);
}

int sb_units_parse(const char *s, int64_t *ret) {
        return parse_fixed(s, SB_UNITS_DECIMALS, ret);
}

int sb_price_parse(const char *s, int64_t *ret) {
        return parse_fixed(s, SB_PRICE_DECIMALS, ret);
}
