/* sb_db: the one place that speaks to MariaDB (Connector/C). Nothing else includes mysql.h.
 *
 * A connection (sb_db) belongs to one thread at a time: a service keeps one per worker thread. Every value travels
 * as a bound parameter of a prepared statement; SQL texts are constants. Statements are cached per connection by
 * their text, survive a reconnection (they are prepared again on the new connection) and are owned by the
 * connection: callers never free them.
 *
 * Errors are negative errno-style codes (see the table below); the server's message and errno of the last failure
 * stay available through sb_db_errmsg() and sb_db_errno() until the next call on the same connection. The library
 * never logs: the caller logs once, at its boundary. Results go to ret_* out-parameters, written only on success. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Error codes returned (negated errno values unless noted):
 *   -EEXIST       duplicate key (ER_DUP_ENTRY 1062 and friends)
 *   -EDEADLK      deadlock / lock wait timeout / Galera certification conflict, still failing after the retries
 *                 of sb_db_tx() (outside sb_db_tx() returned at once: wrap writes in sb_db_tx())
 *   -ETIMEDOUT    the statement time limit (sb_db_set_statement_timeout_ms) was reached
 *   -EACCES       access denied (to a table, a schema, or at login)
 *   -ENOENT       no such table or schema
 *   -ENOTCONN     the connection was lost and could not be re-established
 *   -EINVAL       bad use of the API (wrong parameter index, a type conversion that does not fit)
 *   -ENOMEM       out of memory
 *   -ENOSPC       the per-connection statement cache is full (SQL texts must be constants)
 *   -EIO          any other server error: see sb_db_errno() and sb_db_errmsg()
 *   SB_DB_EUNKNOWN_COMMIT  the connection was lost while a write was being committed: it may or may not have
 *                 taken effect. Callers that keep an idempotency key retry the whole operation. */
#define SB_DB_EUNKNOWN_COMMIT (-10001)

/* Limits. */
#define SB_DB_STMT_CACHE_MAX 256 /* distinct SQL texts per connection */
#define SB_DB_PARAMS_MAX 1024    /* parameters per statement (multi-row statements of group commits) */
#define SB_DB_TX_ATTEMPTS 8      /* attempts of one sb_db_tx() before giving up with -EDEADLK */

typedef struct sb_db sb_db;
typedef struct sb_db_stmt sb_db_stmt;

typedef struct sb_db_config {
    const char *host;        /* TCP host; NULL or "" means the Unix socket (or "localhost") */
    unsigned port;           /* TCP port; 0 means 3306 */
    const char *unix_socket; /* used when host is NULL or "" */
    const char *user;
    const char *password;    /* may be NULL: no password */
    const char *database;    /* default schema; may be NULL */
    unsigned connect_timeout_s; /* 0 means 10 s */
    unsigned read_timeout_s;    /* 0 means 60 s: a hung server is reported as a lost connection */
} sb_db_config;

/* Prepares the client library for use by several threads. Idempotent and thread-safe; sb_db_open() calls it, so
 * callers need it only to do the work early. */
void sb_db_global_init(void);

/* Opens one connection described by cfg (copied: cfg may be freed afterwards). Autocommit is on, the session
 * character set is utf8mb4 and the session time zone UTC. On success *ret owns the connection (release with
 * sb_db_close()). On failure returns a negative code and writes a message into err (at most n bytes, always
 * NUL-terminated when n > 0); *ret is untouched. */
int sb_db_open(const sb_db_config *cfg, sb_db **ret, char *err, size_t n);

/* Closes the connection and frees every statement it cached. NULL is allowed. */
void sb_db_close(sb_db *db);

/* The MariaDB errno (e.g. 1062) of the last failure on db, or 0. Valid until the next call on db. */
unsigned sb_db_errno(const sb_db *db);

/* A human-readable message for the last failure on db ("" when none). Owned by db; valid until the next call. */
const char *sb_db_errmsg(const sb_db *db);

/* The server's id for this connection (CONNECTION_ID()), or 0 when not connected. Changes after a reconnection. */
uint64_t sb_db_connection_id(const sb_db *db);

/* How many times db reconnected since it was opened (for tests and metrics). */
unsigned sb_db_reconnects(const sb_db *db);

/* Limits every following statement on db to timeout_ms (0: no limit) through the session variable
 * max_statement_time; a statement over the limit fails with -ETIMEDOUT. Costs one round trip when the value
 * changes, none otherwise; kept across reconnections. Services call it with the time left of the gRPC deadline. */
int sb_db_set_statement_timeout_ms(sb_db *db, uint32_t timeout_ms);

/* Returns the cached prepared statement for the constant text sql, preparing it on first use. The statement is
 * reset: parameters unbound (NULL), no result pending. It is owned by db and stays valid until sb_db_close(),
 * across reconnections. The same text gives the same handle, so a caller must finish with a statement (fetch all
 * rows or prepare it again) before preparing the same text again. Fails with -ENOSPC when the cache is full, or
 * with the server's error (e.g. a syntax error: -EIO) when the text cannot be prepared. */
int sb_db_prepare(sb_db *db, const char *sql, sb_db_stmt **ret);

/* Bind parameter idx (0-based) of s. Strings and blobs are copied. Returns 0, or -EINVAL when idx is out of range,
 * -ENOMEM. */
int sb_db_bind_i64(sb_db_stmt *s, unsigned idx, int64_t value);
int sb_db_bind_u64(sb_db_stmt *s, unsigned idx, uint64_t value);
int sb_db_bind_str(sb_db_stmt *s, unsigned idx, const char *value); /* NULL binds SQL NULL */
int sb_db_bind_strn(sb_db_stmt *s, unsigned idx, const char *value, size_t len);
int sb_db_bind_blob(sb_db_stmt *s, unsigned idx, const void *value, size_t len);
int sb_db_bind_null(sb_db_stmt *s, unsigned idx);

/* Executes s with its bound parameters. A statement with a result set has all its rows buffered on return; read
 * them with sb_db_fetch(). When the connection was lost it is re-established (statements prepared again) and:
 * a statement with a result set is executed again, transparently; any other statement outside a transaction
 * returns SB_DB_EUNKNOWN_COMMIT (it may have been applied); inside sb_db_tx() the transaction is retried.
 * Returns 0 or a negative code. */
int sb_db_execute(sb_db_stmt *s);

/* One parameter of a bulk execution: `rows` integer values (read as uint64_t when is_unsigned), and optionally a
 * flag per row that makes that row's value SQL NULL (null[i] != 0). */
typedef struct sb_db_bulk_col {
    const int64_t *i64;    /* signed values, or NULL when u64 is used */
    const uint64_t *u64;   /* unsigned values */
    const uint8_t *null;   /* NULL: no row is NULL */
} sb_db_bulk_col;

/* Executes the statement s (no result set: an INSERT of one row of parameters) once per row of `cols`, one column
 * per parameter of s, in ONE round trip (MariaDB's array binding, COM_STMT_BULK_EXECUTE): the server runs the rows
 * in order, as if each were executed alone, without parsing a text or a document per row. For many rows it is the
 * cheapest way to insert them (docs/benchmarks.md, "Airdrop"). It needs a MariaDB server (10.2 or later: the
 * protocol's bulk operations), which is what sharebuy runs on; another server refuses it. Parameters bound with sb_db_bind_* are ignored. A
 * failure stops at the failing row; inside sb_db_tx() the transaction is then rolled back as with sb_db_execute().
 * Returns 0 (sb_db_affected_rows() gives the rows inserted), -EINVAL when rows is 0 or a column has no values, or a
 * negative code as sb_db_execute(). */
int sb_db_execute_bulk(sb_db_stmt *s, size_t rows, const sb_db_bulk_col *cols, size_t n_cols);

/* Moves to the next row of the result of s. Returns 1 when a row is available, 0 when there are no more rows (the
 * result is then released), or a negative code. */
int sb_db_fetch(sb_db_stmt *s);

/* Column access for the current row (columns 0-based). The column index must be valid (asserted).
 * sb_db_col_is_null: true for SQL NULL.
 * sb_db_col_i64 / sb_db_col_u64: the value, converting a decimal text (e.g. SUM() of a BIGINT) when it is a whole
 *   number in range; writes *ret only on success; -ENODATA for NULL, -ERANGE / -EINVAL when it does not fit.
 * sb_db_col_str: copies the text and a NUL into buf (n bytes); returns its length, -ENOBUFS when it does not fit
 *   (nothing written), -ENODATA for NULL.
 * sb_db_col_blob: copies the bytes into buf (n bytes); returns their count, -ENOBUFS, -ENODATA for NULL.
 * sb_db_col_data: the bytes in place (valid until the next fetch), their count in *ret_len; NULL for SQL NULL. */
bool sb_db_col_is_null(const sb_db_stmt *s, unsigned col);
int sb_db_col_i64(const sb_db_stmt *s, unsigned col, int64_t *ret);
int sb_db_col_u64(const sb_db_stmt *s, unsigned col, uint64_t *ret);
int sb_db_col_str(const sb_db_stmt *s, unsigned col, char *buf, size_t n);
int sb_db_col_blob(const sb_db_stmt *s, unsigned col, void *buf, size_t n);
const void *sb_db_col_data(const sb_db_stmt *s, unsigned col, size_t *ret_len);

/* The number of columns of the result of s (0 for a statement without a result set). */
unsigned sb_db_column_count(const sb_db_stmt *s);

/* Rows changed by the last execution of s (for UPDATE, rows actually changed). */
uint64_t sb_db_affected_rows(const sb_db_stmt *s);

/* The AUTO_INCREMENT value made by the last execution of s, or 0. */
uint64_t sb_db_insert_id(const sb_db_stmt *s);

/* Runs fn(db, arg) inside a transaction: BEGIN, fn, COMMIT. When fn or the COMMIT fails with a deadlock (1213), a
 * lock wait timeout (1205), a Galera certification conflict, or a lost connection, the transaction is rolled back
 * and run again (fn must therefore have no effect outside the database, or be safe to repeat), at most
 * SB_DB_TX_ATTEMPTS times with a small jittered backoff. fn returns 0 to commit, or a negative code to roll back and
 * return that code (the codes above are retried only when they come from the database). A positive return of fn is
 * treated as 0. Returns 0 when committed; -EDEADLK when the retries ran out; SB_DB_EUNKNOWN_COMMIT when the
 * connection was lost during COMMIT; or fn's error. Not reentrant: fn must not call sb_db_tx() on the same db. */
int sb_db_tx(sb_db *db, int (*fn)(sb_db *db, void *arg), void *arg);

/* True while db is inside sb_db_tx(). */
bool sb_db_in_tx(const sb_db *db);

/* Administration only (sharebuyctl, migrations): runs one SQL statement as text, without parameters, discarding
 * any result. Never use it with values that come from outside the program. Returns 0 or a negative code. */
int sb_db_exec_text(sb_db *db, const char *sql, size_t len);

/* Splits an SQL script into statements, one per call. *pos is the scan position (start with the script); end is
 * its end; delim holds the current delimiter (start with ";"; a line "DELIMITER xx" changes it, as in the mariadb
 * client, and is not returned as a statement); delim_size is the size of that buffer (at least 2). Quotes ('', "",
 * ``) and comments (--, #, and block comments) are honoured. On success returns 1 and sets *ret_sql and *ret_len
 * to the statement without its delimiter (and without leading blank space and comments); returns 0 at the end of
 * the script, -EINVAL for an unterminated quote or comment or a bad DELIMITER line. Never allocates. */
int sb_db_script_next(const char **pos, const char *end, char *delim, size_t delim_size,
                      const char **ret_sql, size_t *ret_len);

/* Administration only: runs every statement of script (split with sb_db_script_next) in order, stopping at the
 * first failure. Returns 0, or a negative code with *ret_failed set to the 1-based number of the statement that
 * failed (0 when the script itself could not be split). */
int sb_db_exec_script(sb_db *db, const char *script, size_t len, unsigned *ret_failed);
