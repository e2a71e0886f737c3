/* Unit tests of airdrop_block_parse (services/airdrop/airdrop_allot.c): the snapshot's blocks of migration 0010, one
 * 63-byte record per participant ('#', account id in 20 digits, owner kind in 3, owner id in 20, CV units in 19).
 * Whatever the database hands back, a block is either read exactly or refused (-EIO): never half-read. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "airdrop_internal.h"
#include "sb_test.h"

/* One field right-aligned in w bytes, zero-padded (LPAD(x, w, '0') of the copy's SQL; x never longer). */
static void lpad(char *out, const char *x, size_t w) {
        size_t n = strlen(x);
        memset(out, '0', w - n);
        memcpy(out + (w - n), x, n);
}

/* A record as the copy's SQL makes it, NUL-terminated. */
static void pad(char *out, const char *account, const char *kind, const char *owner, const char *cv) {
        out[0] = '#';
        lpad(out + 1, account, 20);
        lpad(out + 21, kind, 3);
        lpad(out + 24, owner, 20);
        lpad(out + 44, cv, 19);
        out[AIRDROP_REC] = '\0';
}

int main(void) {
        char buf[AIRDROP_BLOCK * AIRDROP_REC + 64];
        airdrop_row rows[AIRDROP_BLOCK];

        /* Three records, the field limits included. */
        pad(buf, "1003", "1", "1", "7");
        pad(buf + AIRDROP_REC, "1006", "2", "42", "9223372036854775807");
        pad(buf + 2 * AIRDROP_REC, "18446744073709551615", "255", "18446744073709551615", "1");
        SB_CHECK(strlen(buf) == 3 * AIRDROP_REC);
        SB_CHECK(airdrop_block_parse((const uint8_t *) buf, 3 * AIRDROP_REC, 3, 2147483648ULL, rows) == 0);
        SB_CHECK(rows[0].seq == 2147483648ULL && rows[0].account_id == 1003 && rows[0].owner_kind == 1 &&
              rows[0].owner_id == 1 && rows[0].cv == 7);
        SB_CHECK(rows[1].seq == 2147483649ULL && rows[1].account_id == 1006 && rows[1].owner_kind == 2 &&
              rows[1].owner_id == 42 && rows[1].cv == INT64_MAX);
        SB_CHECK(rows[2].account_id == UINT64_MAX && rows[2].owner_kind == 255 && rows[2].owner_id == UINT64_MAX &&
              rows[2].cv == 1);

        /* The length must be exactly n records, n in 1..AIRDROP_BLOCK. */
        SB_CHECK(airdrop_block_parse((const uint8_t *) buf, 3 * AIRDROP_REC - 1, 3, 0, rows) == -EIO);
        SB_CHECK(airdrop_block_parse((const uint8_t *) buf, 3 * AIRDROP_REC, 2, 0, rows) == -EIO);
        SB_CHECK(airdrop_block_parse((const uint8_t *) buf, 0, 0, 0, rows) == -EIO);
        SB_CHECK(airdrop_block_parse(NULL, AIRDROP_REC, 1, 0, rows) == -EIO);
        SB_CHECK(airdrop_block_parse((const uint8_t *) buf, (AIRDROP_BLOCK + 1) * AIRDROP_REC, AIRDROP_BLOCK + 1, 0,
                                  rows) == -EIO);

        /* A full block reads. */
        for (int i = 0; i < AIRDROP_BLOCK; i++) {
                char a[24], c[24];
                snprintf(a, sizeof a, "%d", 1000 + 3 * i);
                snprintf(c, sizeof c, "%d", i + 1);
                pad(buf + (size_t) i * AIRDROP_REC, a, "1", a, c);
        }
        SB_CHECK(airdrop_block_parse((const uint8_t *) buf, AIRDROP_BLOCK * AIRDROP_REC, AIRDROP_BLOCK, 256, rows) == 0);
        SB_CHECK(rows[AIRDROP_BLOCK - 1].seq == 256 + AIRDROP_BLOCK - 1 &&
              rows[AIRDROP_BLOCK - 1].account_id == 1000 + 3 * (AIRDROP_BLOCK - 1) &&
              rows[AIRDROP_BLOCK - 1].cv == AIRDROP_BLOCK);

        /* Each kind of damage in the second record refuses the whole block. */
        static const struct {
                size_t at;
                char c;
        } damage[] = {
                {0, '0'},  /* no mark */
                {5, '#'},  /* a mark inside the account id */
                {21, 'x'}, /* a letter in the kind */
                {43, ' '}, /* a blank in the owner id */
                {62, '-'}, /* a sign in the CV */
        };
        for (size_t d = 0; d < sizeof damage / sizeof *damage; d++) {
                char save = buf[AIRDROP_REC + damage[d].at];
                buf[AIRDROP_REC + damage[d].at] = damage[d].c;
                SB_CHECK(airdrop_block_parse((const uint8_t *) buf, 3 * AIRDROP_REC, 3, 0, rows) == -EIO);
                buf[AIRDROP_REC + damage[d].at] = save;
        }
        SB_CHECK(airdrop_block_parse((const uint8_t *) buf, 3 * AIRDROP_REC, 3, 0, rows) == 0);

        /* Out of range: an account id above 2^64 − 1, a kind above 255, CV above 2^63 − 1. */
        pad(buf + AIRDROP_REC, "18446744073709551616", "1", "1", "1");
        SB_CHECK(airdrop_block_parse((const uint8_t *) buf, 2 * AIRDROP_REC, 2, 0, rows) == -EIO);
        pad(buf + AIRDROP_REC, "5000", "256", "1", "1");
        SB_CHECK(airdrop_block_parse((const uint8_t *) buf, 2 * AIRDROP_REC, 2, 0, rows) == -EIO);
        pad(buf + AIRDROP_REC, "5000", "1", "1", "9223372036854775808");
        SB_CHECK(airdrop_block_parse((const uint8_t *) buf, 2 * AIRDROP_REC, 2, 0, rows) == -EIO);
        pad(buf + AIRDROP_REC, "5000", "1", "1", "1");
        SB_CHECK(airdrop_block_parse((const uint8_t *) buf, 2 * AIRDROP_REC, 2, 0, rows) == 0);

        /* Account ids must increase within a block (equal or lower: refused). */
        pad(buf + AIRDROP_REC, "1000", "1", "1", "1");
        SB_CHECK(airdrop_block_parse((const uint8_t *) buf, 2 * AIRDROP_REC, 2, 0, rows) == -EIO);
        pad(buf + AIRDROP_REC, "999", "1", "1", "1");
        SB_CHECK(airdrop_block_parse((const uint8_t *) buf, 2 * AIRDROP_REC, 2, 0, rows) == -EIO);

        printf("airdrop blocks: all checks passed\n");
        return 0;
}
