/* pos_money: the spend field and the figures on screen. Money is an int64 count of fen, never a float; parsing
 * and formatting go through the units library (sb_fen_parse, sb_fen_format, sb_units_format). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest spend the till accepts before asking the server (which has its own, lower, sale_max_spend):
 * 1 000 000.00 yuan. It only stops a mistyped string of zeros early. */
#define POS_SPEND_MAX_FEN INT64_C(100000000)

/* The longest text the spend field holds ("1000000.00"). */
#define POS_SPEND_TEXT_MAX 16

/* Parse what the cashier typed: yuan with at most two decimals ("12", "12.5", "12.50", "12." while typing),
 * surrounding spaces and a leading "¥" / "￥" allowed. -EINVAL for anything else (letters, a sign, three decimals,
 * an empty field); -ERANGE for zero or more than POS_SPEND_MAX_FEN. Writes *ret_fen only on success. */
int pos_spend_parse(const char *text, int64_t *ret_fen);

/* Apply one key of the numeric keypad to the spend text in buf (n bytes): "0".."9", "00", ".", "BACK" (delete the
 * last character), "CLEAR". A key that would make the text invalid (a second point, a third decimal, a leading
 * zero before another digit, more than POS_SPEND_TEXT_MAX - 1 characters, more than POS_SPEND_MAX_FEN) is ignored.
 * Returns true when the text changed. */
bool pos_spend_key(char *buf, size_t n, const char *key);

/* "¥1234.50": fen as yuan with the sign before the currency symbol. buf holds at least 40 bytes. */
void pos_format_yuan(int64_t fen, char *buf, size_t n);

/* A CV or SP amount (0.0001 units) in its human form ("8.88", "5"). buf holds at least 40 bytes. */
void pos_format_units(int64_t units, char *buf, size_t n);
