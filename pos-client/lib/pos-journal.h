/* pos_journal: the terminal's durable sale journal.
 *
 * Every sale the cashier confirms is appended here *before* it is sent to the merchant service, with the sale id
 * the terminal chose. The file is append-only: one line per record, "PJ1 <crc32> <payload>\n", written with a
 * single write() and fsync()ed before the append returns, so a confirmed sale survives a crash or a power cut of
 * the till. A status change (sent, failed) is a new record naming the sale id; reading the file replays them in
 * order.
 *
 * Reading tolerates what a crash can leave behind: a last line without its newline (a torn write) is cut off the
 * file; a line whose checksum does not match is skipped and counted, and the lines after it are still read (the
 * newline is the frame, so one bad record never hides the next). Because RecordSale is idempotent on the sale id,
 * sending a queued sale again after a crash can never record it twice.
 *
 * Not thread-safe by itself: pos_terminal serialises access with its own lock. Functions return 0 or a negative
 * errno; ret_* out-parameters are written only on success. Nothing here logs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POS_SALE_ID_MAX 64       /* RecordSale: 1..64 of [A-Za-z0-9_-] */
#define POS_MEMBER_CODE_MAX 256  /* IssueMemberCode: at most 256 ASCII characters */
#define POS_REASON_MAX 64
#define POS_JOURNAL_MAX_RECORDS 200000  /* a file longer than this is refused: it should have been compacted */
#define POS_JOURNAL_MAX_QUEUED 500      /* offline sales waiting at once; more is refused (-ENOSPC) */
#define POS_JOURNAL_LINE_MAX 1024

typedef enum pos_sale_status {
        POS_SALE_QUEUED = 0, /* stored, not yet known to the merchant service */
        POS_SALE_SENT = 1,   /* the merchant service returned its receipt */
        POS_SALE_FAILED = 2, /* the merchant service refused it for good (reason says why) */
} pos_sale_status;

typedef struct pos_journal_sale {
        char sale_id[POS_SALE_ID_MAX + 1];
        char member_code[POS_MEMBER_CODE_MAX + 1];
        int64_t spend_fen;
        int64_t captured_unix_ms;   /* when the cashier confirmed it (terminal clock) */
        bool offline;               /* confirmed while the services could not be reached */
        pos_sale_status status;
        int64_t status_unix_ms;
        char reason[POS_REASON_MAX]; /* FAILED: the ErrorReason name (or the status name when none) */
        int64_t member_cv_units;     /* SENT: from the receipt */
        int64_t deposit_sp_units;    /* SENT: from the receipt */
} pos_journal_sale;

/* What pos_journal_open() found while reading. */
typedef struct pos_journal_stats {
        size_t records;       /* good records read */
        size_t bad_records;   /* lines skipped: checksum mismatch or unparsable payload */
        size_t torn_bytes;    /* bytes of an unfinished last line cut off the file */
} pos_journal_stats;

typedef struct pos_journal pos_journal;

/* Open (creating it, mode 0600) the journal at path and read it. A torn last line is truncated away (and the
 * truncation fsync'd) so the next append starts on a clean line. Fails with -EFBIG past POS_JOURNAL_MAX_RECORDS,
 * or the errno of open/read/ftruncate. ret_stats may be NULL. Free with pos_journal_close(). */
int pos_journal_open(const char *path, pos_journal **ret, pos_journal_stats *ret_stats);

void pos_journal_close(pos_journal *j);

/* Durably append a new queued sale. -EINVAL for a malformed sale id or member code (1..256 printable ASCII
 * characters, no space) or a spend <= 0; -EEXIST when the sale id is already in the journal; -ENOSPC when
 * POS_JOURNAL_MAX_QUEUED sales are already waiting; the write()/fsync() errno otherwise (then nothing is kept in
 * memory either, and the caller must not send the sale). */
int pos_journal_append_sale(pos_journal *j, const char *sale_id, const char *member_code, int64_t spend_fen,
                            int64_t captured_unix_ms, bool offline);

/* Durably record the new status of a sale: SENT with its receipt figures, or FAILED with a reason. Marking a sale
 * with the status it has is a no-op returning 0. -ENOENT for an unknown sale id, -EINVAL for QUEUED or a change
 * out of SENT/FAILED (a final status never changes). */
int pos_journal_mark(pos_journal *j, const char *sale_id, pos_sale_status status, int64_t now_unix_ms,
                     const char *reason, int64_t member_cv_units, int64_t deposit_sp_units);

/* Number of sales in the journal, and of those with a status. */
size_t pos_journal_count(const pos_journal *j);
size_t pos_journal_count_status(const pos_journal *j, pos_sale_status status);

/* The index-th sale, oldest first. -ERANGE past the end. */
int pos_journal_get(const pos_journal *j, size_t index, pos_journal_sale *ret);

/* The sale with that id; -ENOENT when none. */
int pos_journal_find(const pos_journal *j, const char *sale_id, pos_journal_sale *ret);

/* The oldest queued sale; -ENOENT when nothing waits. */
int pos_journal_next_queued(const pos_journal *j, pos_journal_sale *ret);

/* Rewrite the file without the SENT and FAILED sales captured before keep_after_unix_ms (queued sales are always
 * kept): a new file is written, fsync'd and renamed over the old one, then the folder is fsync'd, so a crash
 * leaves either the old or the new journal, never a mix. Returns the number of sales dropped. */
int pos_journal_compact(pos_journal *j, int64_t keep_after_unix_ms);

/* True when s is a valid sale id (1..64 of [A-Za-z0-9_-]) / member code. */
bool pos_sale_id_valid(const char *s);
bool pos_member_code_valid(const char *s);

/* A new random sale id: a UUID version 4 in lower-case hex from the kernel's random source (getrandom(2), the
 * /dev/urandom pool). buf must hold 37 bytes. Returns 0 or the getrandom errno. */
int pos_sale_id_new(char buf[static 37]);

/* The CRC-32 (IEEE 802.3, as zlib's crc32) of n bytes. */
uint32_t pos_crc32(const void *data, size_t n);

const char *pos_sale_status_name(pos_sale_status s);
