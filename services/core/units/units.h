/* SPDX-License-Identifier: LicenseRef-proprietary */
#pragma once

/*
 * Fixed units and checked arithmetic for every amount sharebuy moves.
 *
 * No amount is ever a floating-point number (economics.md, "Invariants"):
 *   - money is an int64_t count of fen (0.01 yuan);
 *   - CV and SP are int64_t counts of 0.0001 CV / 0.0001 SP (SB_CV_SCALE, SB_SP_SCALE);
 *   - the guide price is an int64_t count of micro-yuan (0.000001 yuan) per 1 SP;
 *   - rates and shares are basis points (SB_BP_ONE = 10000 = 100%).
 *
 * Every function here is pure: no I/O, no clock, no global state. Errors are negative errno values; a result is
 * written to its ret_* out-parameter only when the function returns 0, so a caller never sees a half-made value.
 */

#include <stddef.h>
#include <stdint.h>

#define SB_FEN_PER_YUAN   INT64_C(100)
#define SB_MICRO_PER_YUAN INT64_C(1000000)
#define SB_MICRO_PER_FEN  INT64_C(10000)
#define SB_CV_SCALE       INT64_C(10000)
#define SB_SP_SCALE       INT64_C(10000)
#define SB_BP_ONE         INT64_C(10000)

/* Digits after the decimal point of each fixed unit. */
#define SB_FEN_DECIMALS   2
#define SB_UNITS_DECIMALS 4
#define SB_PRICE_DECIMALS 6

/* Longest text any format function writes, terminating NUL included ("-92233720368547758.07"). */
#define SB_UNITS_FORMAT_MAX 32

/* The longest text a parser looks at; longer input is refused without being read further. */
#define SB_UNITS_PARSE_MAX 40

typedef enum sb_round {
        SB_ROUND_DOWN,      /* toward negative infinity (floor) */
        SB_ROUND_UP,        /* toward positive infinity (ceiling) */
        SB_ROUND_HALF_EVEN, /* to nearest, a tie to the even neighbour (banker's rounding) */
        SB_ROUND_TOWARD_ZERO,
} sb_round;

/*
 * sb_add_i64(), sb_sub_i64(), sb_mul_i64(): a + b, a - b, a × b.
 * Returns 0 and writes *ret, or -ERANGE when the exact result does not fit an int64_t (nothing is written; the
 * value never wraps). ret must not be NULL.
 */
int sb_add_i64(int64_t a, int64_t b, int64_t *ret);
int sb_sub_i64(int64_t a, int64_t b, int64_t *ret);
int sb_mul_i64(int64_t a, int64_t b, int64_t *ret);

/*
 * sb_muldiv_i64(): a × b ÷ c, computed exactly through a 128-bit intermediate (a × b never overflows), then rounded
 * once by mode. Returns 0 and writes *ret; -EDOM when c is 0; -EINVAL for an unknown mode; -ERANGE when the
 * rounded quotient does not fit an int64_t. Works for any signs of a, b and c.
 */
int sb_muldiv_i64(int64_t a, int64_t b, int64_t c, sb_round mode, int64_t *ret);

/* sb_div_i64(): a ÷ c rounded by mode; the same contract as sb_muldiv_i64(a, 1, c, mode, ret). */
int sb_div_i64(int64_t a, int64_t c, sb_round mode, int64_t *ret);

/*
 * sb_fen_format(): writes fen as yuan with exactly two decimals: 100000 → "1000.00", -50 → "-0.50".
 * sb_units_format(): writes a CV or SP amount (0.0001 units) with the trailing fractional zeros trimmed, and no
 *   decimal point for a whole number: 88800 → "8.88", 9822400 → "982.24", 25000 → "2.5", 50000 → "5".
 *   This is the human form used in receipts and in economics.md; sb_units_format_fixed() always writes four
 *   decimals ("8.8800") for columns and machine-read text.
 * sb_price_format(): writes micro-yuan with at least two decimals and at most six, trailing zeros past the second
 *   trimmed: 2000000 → "2.00", 1234500 → "1.2345".
 * Each writes a NUL-terminated string into buf (n bytes; SB_UNITS_FORMAT_MAX always suffices) and returns the
 * length written without the NUL, or -ENOBUFS when buf is too small (buf is then left untouched).
 */
int sb_fen_format(int64_t fen, char *buf, size_t n);
int sb_units_format(int64_t units, char *buf, size_t n);
int sb_units_format_fixed(int64_t units, char *buf, size_t n);
int sb_price_format(int64_t micro, char *buf, size_t n);

/*
 * sb_fen_parse(), sb_units_parse(), sb_price_parse(): the strict inverses of the format functions.
 * Accepted: an optional '-', one or more ASCII digits, and optionally '.' followed by one to the unit's number of
 * decimals (2 for fen, 4 for CV/SP, 6 for the price): "1000", "1000.5", "1000.00", "-0.50", "8.88".
 * Refused with -EINVAL: NULL, empty text, '+', spaces anywhere, a lone '.', "1.", ".5", more decimals than the unit
 * holds (no silent rounding), any other character, text longer than SB_UNITS_PARSE_MAX.
 * Refused with -ERANGE: a value that does not fit an int64_t in the unit. On success writes *ret and returns 0.
 */
int sb_fen_parse(const char *s, int64_t *ret);
int sb_units_parse(const char *s, int64_t *ret);
int sb_price_parse(const char *s, int64_t *ret);
