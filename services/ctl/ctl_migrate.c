/* sharebuyctl migrate: apply the numbered SQL files of migrations/ in order, with a history that tells the truth.
 *
 * The history lives in <history schema>.schema_migrations (default sharebuy_admin). A row is written *before* a
 * migration starts (success = 0) and updated after every statement, so a failure or a crash leaves a row that says
 * how far it got; MariaDB cannot roll DDL back, so such a migration is "half-applied" and only an administrator can
 * decide what to do (`migrate resolve`). See docs/migrations.md. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sodium.h>

#include "ctl.h"

#define DEFAULT_HISTORY_SCHEMA "sharebuy_admin"
#define MIGRATION_FILES_MAX 10000
#define MIGRATION_FILE_SIZE_MAX (16u * 1024 * 1024)
#define MIGRATION_STATEMENTS_MAX 100000
#define NAME_SIZE 256
#define SQL_SIZE 1024
#define FIRST_LINE_MAX 160

typedef struct mig_file {
    unsigned version;
    char name[NAME_SIZE];
    char *text;
    size_t len;
    char checksum[crypto_hash_sha256_BYTES * 2 + 1];
} mig_file;

typedef struct mig_row {
    unsigned version;
    char name[NAME_SIZE];
    char checksum[crypto_hash_sha256_BYTES * 2 + 1];
    char applied_at[40];
    int64_t duration_ms;
    bool success;
    int64_t statements_total;
    int64_t statements_done;
    char *error;
} mig_row;

typedef enum mig_state {
    STATE_APPLIED,
    STATE_PENDING,
    STATE_FAILED,  /* half-applied: needs `migrate resolve` */
    STATE_RUNNING, /* a row with success = 0 while another runner holds the lock */
    STATE_EDITED,  /* applied, but the file changed since */
    STATE_MISSING, /* applied, but the file is gone */
    STATE_RENAMED, /* applied under another file name */
} mig_state;

static const char *const state_names[] = {"applied", "pending", "failed", "running", "edited", "missing", "renamed"};

typedef struct mig_entry {
    unsigned version;
    mig_file *file; /* NULL when missing */
    mig_row *row;   /* NULL when pending */
    mig_state state;
    bool out_of_order; /* pending, but a later version is applied */
} mig_entry;

typedef struct migrate {
    sb_ctl_ctx *ctx;
    sb_db *db;
    const char *schema;
    unsigned lock_timeout_s;
    char lock_name[96];
    char sql_select[SQL_SIZE], sql_insert[SQL_SIZE], sql_progress[SQL_SIZE], sql_fail[SQL_SIZE],
        sql_done[SQL_SIZE], sql_delete[SQL_SIZE], sql_resolve[SQL_SIZE], sql_checksum[SQL_SIZE];
    mig_file *files;
    size_t n_files;
    mig_row *rows;
    size_t n_rows;
    mig_entry *entries;
    size_t n_entries;
    bool other_runner; /* another connection holds the lock (status/verify only) */
} migrate;

static void migrate_free(migrate *m) {
    for (size_t i = 0; i < m->n_files; i++)
        free(m->files[i].text);
    for (size_t i = 0; i < m->n_rows; i++)
        free(m->rows[i].error);
    free(m->files);
    free(m->rows);
    free(m->entries);
    sb_db_close(m->db);
}

static bool valid_identifier(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char) *p) && *p != '_')
            return false;
    return true;
}

/* Builds the history statements. The schema name is an identifier (validated above), the one thing that cannot be
 * a parameter; every value is bound. */
static void build_sql(migrate *m) {
    const char *s = m->schema;
    snprintf(m->sql_select, SQL_SIZE,
             "SELECT version, name, checksum, CAST(applied_at AS CHAR), duration_ms, success, statements_total, "
             "statements_done, error FROM `%s`.schema_migrations ORDER BY version",
             s);
    snprintf(m->sql_insert, SQL_SIZE,
             "INSERT INTO `%s`.schema_migrations (version, name, checksum, applied_at, duration_ms, success, "
             "statements_total, statements_done) VALUES (?, ?, ?, UTC_TIMESTAMP(6), 0, 0, ?, 0)",
             s);
    snprintf(m->sql_progress, SQL_SIZE, "UPDATE `%s`.schema_migrations SET statements_done = ? WHERE version = ?",
             s);
    snprintf(m->sql_fail, SQL_SIZE,
             "UPDATE `%s`.schema_migrations SET duration_ms = ?, error = ? WHERE version = ?", s);
    snprintf(m->sql_done, SQL_SIZE,
             "UPDATE `%s`.schema_migrations SET success = 1, duration_ms = ?, error = NULL WHERE version = ?", s);
    snprintf(m->sql_delete, SQL_SIZE, "DELETE FROM `%s`.schema_migrations WHERE version = ? AND success = 0", s);
    snprintf(m->sql_resolve, SQL_SIZE,
             "UPDATE `%s`.schema_migrations SET success = 1, checksum = ?, statements_done = statements_total, "
             "error = CONCAT('marked applied by ', CURRENT_USER(), ' at ', UTC_TIMESTAMP(), '; was: ', "
             "COALESCE(error, '')) WHERE version = ? AND success = 0",
             s);
    snprintf(m->sql_checksum, SQL_SIZE,
             "UPDATE `%s`.schema_migrations SET checksum = ? WHERE version = ? AND success = 1", s);
    if (strcmp(s, DEFAULT_HISTORY_SCHEMA) == 0)
        snprintf(m->lock_name, sizeof m->lock_name, "sharebuy_migrate");
    else
        snprintf(m->lock_name, sizeof m->lock_name, "sharebuy_migrate:%s", s);
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int cmp_files(const void *a, const void *b) {
    const mig_file *x = a, *y = b;
    return x->version < y->version ? -1 : x->version > y->version;
}

/* A migration file is NNNN_words.sql: at least four digits, then letters, digits, '_' or '-'. */
static bool parse_file_name(const char *name, unsigned *ret_version) {
    const char *p = name;
    unsigned long long v = 0;
    int digits = 0;
    while (isdigit((unsigned char) *p)) {
        v = v * 10 + (unsigned) (*p - '0');
        if (v > 99999999)
            return false;
        digits++;
        p++;
    }
    if (digits < 4 || *p != '_')
        return false;
    p++;
    const char *words = p;
    while (isalnum((unsigned char) *p) || *p == '_' || *p == '-')
        p++;
    if (p == words || strcmp(p, ".sql") != 0)
        return false;
    *ret_version = (unsigned) v;
    return true;
}

static int read_file(sb_ctl_ctx *ctx, const char *path, mig_file *f) {
    FILE *in = fopen(path, "rb");
    if (!in)
        return sb_ctl_error(ctx, "cannot open %s: %s", path, strerror(errno)), -errno;
    struct stat st;
    if (fstat(fileno(in), &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t) MIGRATION_FILE_SIZE_MAX) {
        fclose(in);
        sb_ctl_error(ctx, "%s: not a regular file, or larger than %u bytes", path, MIGRATION_FILE_SIZE_MAX);
        return -EINVAL;
    }
    f->len = (size_t) st.st_size;
    f->text = malloc(f->len + 1);
    if (!f->text || fread(f->text, 1, f->len, in) != f->len) {
        fclose(in);
        sb_ctl_error(ctx, "cannot read %s", path);
        return -EIO;
    }
    fclose(in);
    f->text[f->len] = '\0';
    unsigned char hash[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(hash, (const unsigned char *) f->text, f->len);
    sodium_bin2hex(f->checksum, sizeof f->checksum, hash, sizeof hash);
    return 0;
}

static int load_files(migrate *m) {
    sb_ctl_ctx *ctx = m->ctx;
    DIR *d = opendir(ctx->migrations_dir);
    if (!d)
        return sb_ctl_error(ctx, "cannot open the migrations folder %s: %s", ctx->migrations_dir, strerror(errno)),
               -ENOENT;
    size_t cap = 0;
    int r = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t nlen = strlen(de->d_name);
        if (nlen < 4 || strcmp(de->d_name + nlen - 4, ".sql") != 0)
            continue; /* meson.build, README ... */
        unsigned version;
        if (!parse_file_name(de->d_name, &version) || nlen >= NAME_SIZE) {
            r = -EINVAL;
            sb_ctl_error(ctx, "%s/%s: a migration's name must be NNNN_words.sql (four or more digits)",
                         ctx->migrations_dir, de->d_name);
            break;
        }
        if (m->n_files >= MIGRATION_FILES_MAX) {
            r = -E2BIG;
            sb_ctl_error(ctx, "more than %d migrations in %s", MIGRATION_FILES_MAX, ctx->migrations_dir);
            break;
        }
        if (m->n_files == cap) {
            cap = cap ? cap * 2 : 16;
            mig_file *files = realloc(m->files, cap * sizeof *files);
            if (!files) {
                r = -ENOMEM;
                sb_ctl_error(ctx, "out of memory");
                break;
            }
            m->files = files;
        }
        mig_file *f = &m->files[m->n_files++];
        memset(f, 0, sizeof *f);
        f->version = version;
        snprintf(f->name, sizeof f->name, "%s", de->d_name);
    }
    closedir(d);
    if (r < 0)
        return r;
    qsort(m->files, m->n_files, sizeof *m->files, cmp_files);
    for (size_t i = 0; i < m->n_files; i++) {
        if (i > 0 && m->files[i].version == m->files[i - 1].version)
            return sb_ctl_error(ctx, "two migrations have version %u: %s and %s", m->files[i].version,
                                m->files[i - 1].name, m->files[i].name),
                   -EINVAL;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", ctx->migrations_dir, m->files[i].name);
        r = read_file(ctx, path, &m->files[i]);
        if (r < 0)
            return r;
    }
    return 0;
}

static int db_fail(migrate *m, const char *what) {
    sb_ctl_error(m->ctx, "%s: %s", what, sb_db_errmsg(m->db));
    return -EIO;
}

static int ensure_history(migrate *m) {
    char sql[SQL_SIZE];
    snprintf(sql, sizeof sql, "CREATE DATABASE IF NOT EXISTS `%s` CHARACTER SET utf8mb4", m->schema);
    if (sb_db_exec_text(m->db, sql, strlen(sql)) < 0)
        return db_fail(m, "cannot create the history schema");
    snprintf(sql, sizeof sql,
             "CREATE TABLE IF NOT EXISTS `%s`.schema_migrations ("
             " version INT UNSIGNED NOT NULL PRIMARY KEY,"
             " name VARCHAR(255) NOT NULL,"
             " checksum CHAR(64) NOT NULL COMMENT 'SHA-256 of the file, hex',"
             " applied_at DATETIME(6) NOT NULL COMMENT 'UTC, when the run started',"
             " duration_ms BIGINT NOT NULL DEFAULT 0,"
             " success TINYINT(1) NOT NULL DEFAULT 0,"
             " statements_total INT UNSIGNED NOT NULL DEFAULT 0,"
             " statements_done INT UNSIGNED NOT NULL DEFAULT 0,"
             " error TEXT NULL"
             ") ENGINE=InnoDB",
             m->schema);
    if (sb_db_exec_text(m->db, sql, strlen(sql)) < 0)
        return db_fail(m, "cannot create the history table");
    return 0;
}

/* Whether the history table exists (status and verify do not create it). */
static int history_exists(migrate *m, bool *ret) {
    sb_db_stmt *s;
    if (sb_db_prepare(m->db,
                      "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = "
                      "'schema_migrations'",
                      &s) < 0 ||
        sb_db_bind_str(s, 0, m->schema) < 0 || sb_db_execute(s) < 0 || sb_db_fetch(s) != 1)
        return db_fail(m, "cannot read the history");
    int64_t n = 0;
    sb_db_col_i64(s, 0, &n);
    while (sb_db_fetch(s) == 1) {
    }
    *ret = n > 0;
    return 0;
}

static int take_lock(migrate *m) {
    sb_db_stmt *s;
    if (sb_db_prepare(m->db, "SELECT GET_LOCK(?, ?)", &s) < 0 || sb_db_bind_str(s, 0, m->lock_name) < 0 ||
        sb_db_bind_u64(s, 1, m->lock_timeout_s) < 0 || sb_db_execute(s) < 0 || sb_db_fetch(s) != 1)
        return db_fail(m, "cannot take the migration lock");
    int64_t got = 0;
    bool null = sb_db_col_is_null(s, 0);
    if (!null)
        sb_db_col_i64(s, 0, &got);
    while (sb_db_fetch(s) == 1) {
    }
    if (got == 1)
        return 0;
    uint64_t holder = 0;
    if (sb_db_prepare(m->db, "SELECT IS_USED_LOCK(?)", &s) == 0 && sb_db_bind_str(s, 0, m->lock_name) == 0 &&
        sb_db_execute(s) == 0 && sb_db_fetch(s) == 1) {
        if (!sb_db_col_is_null(s, 0))
            sb_db_col_u64(s, 0, &holder);
        while (sb_db_fetch(s) == 1) {
        }
    }
    sb_ctl_error(m->ctx,
                 "another migration runner holds the lock '%s' (MariaDB connection %" PRIu64
                 "); gave up after %u s. Only one `sharebuyctl migrate` may run at a time: try again when it has "
                 "finished, or wait longer with --lock-timeout",
                 m->lock_name, holder, m->lock_timeout_s);
    return -EBUSY;
}

static void release_lock(migrate *m) {
    sb_db_stmt *s;
    if (sb_db_prepare(m->db, "SELECT RELEASE_LOCK(?)", &s) == 0 && sb_db_bind_str(s, 0, m->lock_name) == 0 &&
        sb_db_execute(s) == 0)
        while (sb_db_fetch(s) == 1) {
        }
}

static int check_other_runner(migrate *m) {
    sb_db_stmt *s;
    if (sb_db_prepare(m->db, "SELECT IS_USED_LOCK(?) IS NOT NULL", &s) < 0 ||
        sb_db_bind_str(s, 0, m->lock_name) < 0 || sb_db_execute(s) < 0 || sb_db_fetch(s) != 1)
        return db_fail(m, "cannot read the migration lock");
    int64_t used = 0;
    sb_db_col_i64(s, 0, &used);
    while (sb_db_fetch(s) == 1) {
    }
    m->other_runner = used != 0;
    return 0;
}

static int load_rows(migrate *m) {
    sb_db_stmt *s;
    if (sb_db_prepare(m->db, m->sql_select, &s) < 0 || sb_db_execute(s) < 0)
        return db_fail(m, "cannot read the history");
    size_t cap = 0;
    int r;
    while ((r = sb_db_fetch(s)) == 1) {
        if (m->n_rows >= MIGRATION_FILES_MAX)
            continue;
        if (m->n_rows == cap) {
            cap = cap ? cap * 2 : 16;
            mig_row *rows = realloc(m->rows, cap * sizeof *rows);
            if (!rows) {
                while (sb_db_fetch(s) == 1) {
                }
                return sb_ctl_error(m->ctx, "out of memory"), -ENOMEM;
            }
            m->rows = rows;
        }
        mig_row *row = &m->rows[m->n_rows++];
        memset(row, 0, sizeof *row);
        uint64_t v = 0;
        int64_t ok = 0;
        sb_db_col_u64(s, 0, &v);
        row->version = (unsigned) v;
        sb_db_col_str(s, 1, row->name, sizeof row->name);
        sb_db_col_str(s, 2, row->checksum, sizeof row->checksum);
        sb_db_col_str(s, 3, row->applied_at, sizeof row->applied_at);
        sb_db_col_i64(s, 4, &row->duration_ms);
        sb_db_col_i64(s, 5, &ok);
        row->success = ok != 0;
        sb_db_col_i64(s, 6, &row->statements_total);
        sb_db_col_i64(s, 7, &row->statements_done);
        size_t len;
        const char *err = sb_db_col_data(s, 8, &len);
        if (err) {
            row->error = strndup(err, len);
            if (!row->error)
                return sb_ctl_error(m->ctx, "out of memory"), -ENOMEM;
        }
    }
    if (r < 0)
        return db_fail(m, "cannot read the history");
    return 0;
}

/* Joins files and history by version into m->entries and returns the number of problems. */
static int compute_entries(migrate *m) {
    m->entries = calloc(m->n_files + m->n_rows + 1, sizeof *m->entries);
    if (!m->entries)
        return sb_ctl_error(m->ctx, "out of memory"), -ENOMEM;
    size_t i = 0, j = 0;
    unsigned max_applied = 0;
    bool any_applied = false;
    for (size_t k = 0; k < m->n_rows; k++) {
        if (!any_applied || m->rows[k].version > max_applied)
            max_applied = m->rows[k].version;
        any_applied = true;
    }
    int problems = 0;
    while (i < m->n_files || j < m->n_rows) {
        mig_entry *e = &m->entries[m->n_entries++];
        if (j >= m->n_rows || (i < m->n_files && m->files[i].version < m->rows[j].version)) {
            e->file = &m->files[i++];
            e->version = e->file->version;
            e->state = STATE_PENDING;
            e->out_of_order = any_applied && e->version < max_applied;
            problems += e->out_of_order;
            continue;
        }
        e->row = &m->rows[j++];
        e->version = e->row->version;
        if (i < m->n_files && m->files[i].version == e->version)
            e->file = &m->files[i++];
        if (!e->file)
            e->state = STATE_MISSING;
        else if (strcmp(e->file->name, e->row->name) != 0)
            e->state = STATE_RENAMED;
        else if (!e->row->success)
            e->state = m->other_runner ? STATE_RUNNING : STATE_FAILED;
        else if (strcmp(e->file->checksum, e->row->checksum) != 0)
            e->state = STATE_EDITED;
        else
            e->state = STATE_APPLIED;
        problems += e->state != STATE_APPLIED && e->state != STATE_RUNNING;
    }
    return problems;
}

/* Describes the problem of e (one that blocks `up`) in buf. Returns false when e has none. */
static bool describe_problem(const migrate *m, const mig_entry *e, char *buf, size_t n) {
    const char *dir = m->ctx->migrations_dir;
    switch (e->state) {
    case STATE_PENDING:
        if (!e->out_of_order)
            return false;
        snprintf(buf, n,
                 "%s is not applied but a later migration is: migrations run in order; give it a number after the "
                 "last applied one",
                 e->file->name);
        return true;
    case STATE_MISSING:
        snprintf(buf, n, "migration %s was applied but is missing from %s: restore the file", e->row->name, dir);
        return true;
    case STATE_RENAMED:
        snprintf(buf, n, "migration %04u was applied as %s but the file is now %s: restore its name",
                 e->version, e->row->name, e->file->name);
        return true;
    case STATE_EDITED:
        snprintf(buf, n,
                 "migration %s was edited after it was applied (applied checksum %.12s..., file now %.12s...): "
                 "restore it and put the change in a new migration (or, when the edit changes nothing, e.g. a "
                 "comment: sharebuyctl migrate resolve %u --accept-edit)",
                 e->file->name, e->row->checksum, e->file->checksum, e->version);
        return true;
    case STATE_FAILED:
        snprintf(buf, n,
                 "migration %s is half-applied: %" PRId64 " of %" PRId64
                 " statements ran before it failed (%s). MariaDB cannot undo DDL, so an administrator must decide: "
                 "finish or undo its effects by hand, then run `sharebuyctl migrate resolve %u --applied` (the "
                 "database now matches the whole file) or `sharebuyctl migrate resolve %u --retry` (run it again "
                 "from its first statement; safe when its statements are idempotent)",
                 e->row->name, e->row->statements_done, e->row->statements_total,
                 e->row->error ? e->row->error : "no error recorded: the runner stopped", e->version, e->version);
        return true;
    case STATE_APPLIED:
    case STATE_RUNNING:
        return false;
    }
    return false;
}

static void print_problems_text(const migrate *m) {
    char buf[4096];
    for (size_t i = 0; i < m->n_entries; i++)
        if (describe_problem(m, &m->entries[i], buf, sizeof buf))
            sb_ctl_error(m->ctx, "%s", buf);
}

static void print_problems_json(const migrate *m, FILE *f) {
    char buf[4096];
    bool first = true;
    fputs("\"problems\":[", f);
    for (size_t i = 0; i < m->n_entries; i++) {
        if (!describe_problem(m, &m->entries[i], buf, sizeof buf))
            continue;
        if (!first)
            fputc(',', f);
        first = false;
        sb_ctl_json_str(f, buf);
    }
    fputc(']', f);
}

/* Opens the connection, reads files and history (creating the history when create is set). */
static int migrate_open(migrate *m, bool create, bool lock) {
    build_sql(m);
    int r = load_files(m);
    if (r < 0)
        return r;
    r = sb_ctl_connect(m->ctx, &m->db);
    if (r < 0)
        return r;
    if (lock && (r = take_lock(m)) < 0)
        return r;
    if (create) {
        r = ensure_history(m);
        if (r < 0)
            return r;
    } else {
        bool exists;
        r = history_exists(m, &exists);
        if (r < 0)
            return r;
        if (!exists)
            return 0; /* nothing applied yet */
    }
    if (!lock && (r = check_other_runner(m)) < 0)
        return r;
    return load_rows(m);
}

/* Options shared by the subcommands. Returns the index of the first positional argument, or -1 after a usage
 * error. */
typedef struct mig_opts {
    const char *schema;
    unsigned lock_timeout_s;
    bool allow_pending;
    bool mark_applied, retry, accept_edit;
    const char *positional;
} mig_opts;

static int parse_opts(int argc, char **argv, sb_ctl_ctx *ctx, mig_opts *o, bool want_positional) {
    o->schema = DEFAULT_HISTORY_SCHEMA;
    o->lock_timeout_s = 60;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = NULL;
        if (strncmp(a, "--history-schema", 16) == 0 || strncmp(a, "--lock-timeout", 14) == 0) {
            const char *eq = strchr(a, '=');
            if (eq)
                v = eq + 1;
            else if (i + 1 < argc)
                v = argv[++i];
            else
                return sb_ctl_usage_error(ctx, "option %s needs a value", a), -1;
            if (strncmp(a, "--history-schema", 16) == 0 && (a[16] == '\0' || a[16] == '=')) {
                if (!valid_identifier(v))
                    return sb_ctl_usage_error(ctx, "bad --history-schema '%s': up to 64 letters, digits, '_'", v),
                           -1;
                o->schema = v;
            }
            else if (strncmp(a, "--lock-timeout", 14) == 0 && (a[14] == '\0' || a[14] == '=')) {
                unsigned long long n;
                if (sb_ctl_parse_uint(v, 86400, &n) < 0)
                    return sb_ctl_usage_error(ctx, "bad --lock-timeout: %s", v), -1;
                o->lock_timeout_s = (unsigned) n;
            } else
                return sb_ctl_usage_error(ctx, "unknown option %s", a), -1;
        } else if (strcmp(a, "--allow-pending") == 0)
            o->allow_pending = true;
        else if (strcmp(a, "--applied") == 0)
            o->mark_applied = true;
        else if (strcmp(a, "--retry") == 0)
            o->retry = true;
        else if (strcmp(a, "--accept-edit") == 0)
            o->accept_edit = true;
        else if (a[0] == '-' && a[1] != '\0')
            return sb_ctl_usage_error(ctx, "unknown option %s for migrate %s", a, argv[0]), -1;
        else if (want_positional && !o->positional)
            o->positional = a;
        else
            return sb_ctl_usage_error(ctx, "unexpected argument '%s'", a), -1;
    }
    return 0;
}

/* The 1-based line of p in text. */
static unsigned line_of(const char *text, const char *p) {
    unsigned line = 1;
    for (const char *q = text; q < p; q++)
        line += *q == '\n';
    return line;
}

typedef struct stmt_ref {
    const char *sql;
    size_t len;
} stmt_ref;

static int split_file(migrate *m, const mig_file *f, stmt_ref **ret, size_t *ret_n) {
    const char *pos = f->text, *end = f->text + f->len;
    char delim[16] = ";";
    stmt_ref *refs = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        const char *sql;
        size_t len;
        int r = sb_db_script_next(&pos, end, delim, sizeof delim, &sql, &len);
        if (r == 0)
            break;
        if (r < 0 || n >= MIGRATION_STATEMENTS_MAX) {
            free(refs);
            return sb_ctl_error(m->ctx,
                                "%s: cannot split into statements after statement %zu (line %u): an unterminated "
                                "quote or comment, a bad DELIMITER line, or too many statements; nothing was run",
                                f->name, n, line_of(f->text, pos)),
                   -EINVAL;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            stmt_ref *more = realloc(refs, cap * sizeof *more);
            if (!more) {
                free(refs);
                return sb_ctl_error(m->ctx, "out of memory"), -ENOMEM;
            }
            refs = more;
        }
        refs[n].sql = sql;
        refs[n].len = len;
        n++;
    }
    *ret = refs;
    *ret_n = n;
    return 0;
}

typedef struct apply_result {
    unsigned version;
    const char *name;
    size_t statements;
    int64_t duration_ms;
} apply_result;

typedef struct apply_failure {
    unsigned statement; /* 1-based */
    unsigned line;
    char first_line[FIRST_LINE_MAX + 4];
    unsigned mysql_errno;
    char message[1024];
} apply_failure;

static int apply_one(migrate *m, const mig_file *f, apply_result *res, apply_failure *fail) {
    stmt_ref *stmts;
    size_t n;
    int r = split_file(m, f, &stmts, &n);
    if (r < 0)
        return r;
    int64_t t0 = now_ms();
    sb_db_stmt *s;
    if (sb_db_prepare(m->db, m->sql_insert, &s) < 0 || sb_db_bind_u64(s, 0, f->version) < 0 ||
        sb_db_bind_str(s, 1, f->name) < 0 || sb_db_bind_str(s, 2, f->checksum) < 0 || sb_db_bind_u64(s, 3, n) < 0 ||
        sb_db_execute(s) < 0) {
        free(stmts);
        return db_fail(m, "cannot record the start of a migration");
    }
    if (!m->ctx->json)
        fprintf(m->ctx->err, "applying %s (%zu statements)\n", f->name, n);
    for (size_t k = 0; k < n; k++) {
        r = sb_db_exec_text(m->db, stmts[k].sql, stmts[k].len);
        if (r < 0) {
            fail->statement = (unsigned) k + 1;
            fail->line = line_of(f->text, stmts[k].sql);
            size_t fl = strcspn(stmts[k].sql, "\n");
            if (fl > stmts[k].len)
                fl = stmts[k].len;
            bool cut = fl > FIRST_LINE_MAX;
            snprintf(fail->first_line, sizeof fail->first_line, "%.*s%s", (int) (cut ? FIRST_LINE_MAX : fl),
                     stmts[k].sql, cut ? "..." : "");
            fail->mysql_errno = sb_db_errno(m->db);
            snprintf(fail->message, sizeof fail->message, "%s", sb_db_errmsg(m->db));
            char error[2048];
            snprintf(error, sizeof error, "statement %u (line %u: %s) failed: MariaDB error %u: %s", fail->statement,
                     fail->line, fail->first_line, fail->mysql_errno, fail->message);
            /* Keep the history true: the row says how far it got and why it stopped. */
            if (sb_db_prepare(m->db, m->sql_fail, &s) < 0 || sb_db_bind_i64(s, 0, now_ms() - t0) < 0 ||
                sb_db_bind_str(s, 1, error) < 0 || sb_db_bind_u64(s, 2, f->version) < 0 || sb_db_execute(s) < 0)
                sb_ctl_error(m->ctx, "cannot record the failure in the history either: %s", sb_db_errmsg(m->db));
            sb_ctl_error(m->ctx, "%s: %s. The migration is half-applied: see `sharebuyctl migrate status`", f->name,
                         error);
            free(stmts);
            return -EIO;
        }
        if (sb_db_prepare(m->db, m->sql_progress, &s) < 0 || sb_db_bind_u64(s, 0, k + 1) < 0 ||
            sb_db_bind_u64(s, 1, f->version) < 0 || sb_db_execute(s) < 0) {
            free(stmts);
            return db_fail(m, "cannot record a migration's progress");
        }
    }
    free(stmts);
    res->version = f->version;
    res->name = f->name;
    res->statements = n;
    res->duration_ms = now_ms() - t0;
    if (sb_db_prepare(m->db, m->sql_done, &s) < 0 || sb_db_bind_i64(s, 0, res->duration_ms) < 0 ||
        sb_db_bind_u64(s, 1, f->version) < 0 || sb_db_execute(s) < 0)
        return db_fail(m, "cannot record the end of a migration");
    return 0;
}

static void json_result_list(FILE *f, const apply_result *done, size_t n) {
    fputs("\"applied\":[", f);
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "%s{\"version\":%u,\"name\":", i ? "," : "", done[i].version);
        sb_ctl_json_str(f, done[i].name);
        fprintf(f, ",\"statements\":%zu,\"duration_ms\":%" PRId64 "}", done[i].statements, done[i].duration_ms);
    }
    fputc(']', f);
}

static int cmd_up(int argc, char **argv, sb_ctl_ctx *ctx) {
    mig_opts o = {0};
    if (parse_opts(argc, argv, ctx, &o, false) < 0)
        return SB_CTL_EXIT_USAGE;
    migrate m = {.ctx = ctx, .schema = o.schema, .lock_timeout_s = o.lock_timeout_s};
    apply_result *done = NULL;
    size_t n_done = 0;
    apply_failure fail = {0};
    const mig_file *failed_file = NULL;
    int rc = SB_CTL_EXIT_FAILURE;
    int r = migrate_open(&m, true, true);
    if (r < 0)
        goto out;
    int problems = compute_entries(&m);
    if (problems < 0)
        goto out;
    if (problems > 0) {
        print_problems_text(&m);
        sb_ctl_error(ctx, "nothing was applied: fix the %d problem%s above first", problems, problems > 1 ? "s" : "");
        goto out;
    }
    done = calloc(m.n_entries + 1, sizeof *done);
    if (!done) {
        sb_ctl_error(ctx, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < m.n_entries; i++) {
        if (m.entries[i].state != STATE_PENDING)
            continue;
        r = apply_one(&m, m.entries[i].file, &done[n_done], &fail);
        if (r < 0) {
            if (fail.statement > 0)
                failed_file = m.entries[i].file;
            break;
        }
        if (!ctx->json)
            fprintf(ctx->out, "applied %s: %zu statements in %" PRId64 " ms\n", done[n_done].name,
                    done[n_done].statements, done[n_done].duration_ms);
        n_done++;
    }
    if (r >= 0) {
        unsigned n_passwords = 0;
        r = sb_ctl_db_set_passwords(ctx, m.db, false, &n_passwords);
        if (r >= 0) {
            rc = SB_CTL_EXIT_OK;
            if (!ctx->json) {
                fprintf(ctx->out, "%s: %zu migration%s applied now, %zu in all\n",
                        n_done ? "up to date" : "already up to date", n_done, n_done == 1 ? "" : "s", m.n_files);
                if (n_passwords)
                    fprintf(ctx->out, "set the passwords of %u service account%s from the environment\n",
                            n_passwords, n_passwords == 1 ? "" : "s");
            }
        }
    }
out:
    if (m.db)
        release_lock(&m);
    if (ctx->json) {
        fprintf(ctx->out, "{\"ok\":%s,", rc == SB_CTL_EXIT_OK ? "true" : "false");
        json_result_list(ctx->out, done, n_done);
        if (rc != SB_CTL_EXIT_OK) {
            fputs(",\"error\":", ctx->out);
            sb_ctl_json_str(ctx->out, ctx->last_error);
            if (m.entries) {
                fputc(',', ctx->out);
                print_problems_json(&m, ctx->out);
            }
            if (failed_file) {
                fprintf(ctx->out, ",\"failed\":{\"version\":%u,\"name\":", failed_file->version);
                sb_ctl_json_str(ctx->out, failed_file->name);
                fprintf(ctx->out, ",\"statement\":%u,\"line\":%u,\"text\":", fail.statement, fail.line);
                sb_ctl_json_str(ctx->out, fail.first_line);
                fprintf(ctx->out, ",\"mysql_errno\":%u,\"message\":", fail.mysql_errno);
                sb_ctl_json_str(ctx->out, fail.message);
                fputc('}', ctx->out);
            }
        }
        fputs("}\n", ctx->out);
    }
    free(done);
    migrate_free(&m);
    return rc;
}

static int cmd_status(int argc, char **argv, sb_ctl_ctx *ctx) {
    mig_opts o = {0};
    if (parse_opts(argc, argv, ctx, &o, false) < 0)
        return SB_CTL_EXIT_USAGE;
    migrate m = {.ctx = ctx, .schema = o.schema};
    int rc = SB_CTL_EXIT_FAILURE;
    if (migrate_open(&m, false, false) < 0 || compute_entries(&m) < 0) {
        if (ctx->json) {
            fputs("{\"ok\":false,\"error\":", ctx->out);
            sb_ctl_json_str(ctx->out, ctx->last_error);
            fputs("}\n", ctx->out);
        }
        migrate_free(&m);
        return rc;
    }
    rc = SB_CTL_EXIT_OK;
    FILE *f = ctx->out;
    if (ctx->json) {
        fputs("{\"ok\":true,\"history_schema\":", f);
        sb_ctl_json_str(f, m.schema);
        fputs(",\"migrations_dir\":", f);
        sb_ctl_json_str(f, ctx->migrations_dir);
        fprintf(f, ",\"runner_active\":%s,\"migrations\":[", m.other_runner ? "true" : "false");
        for (size_t i = 0; i < m.n_entries; i++) {
            const mig_entry *e = &m.entries[i];
            fprintf(f, "%s{\"version\":%u,\"name\":", i ? "," : "", e->version);
            sb_ctl_json_str(f, e->file ? e->file->name : e->row->name);
            fputs(",\"state\":", f);
            sb_ctl_json_str(f, state_names[e->state]);
            fputs(",\"file_checksum\":", f);
            sb_ctl_json_str(f, e->file ? e->file->checksum : NULL);
            if (e->row) {
                fputs(",\"applied_checksum\":", f);
                sb_ctl_json_str(f, e->row->checksum);
                fputs(",\"applied_at\":", f);
                sb_ctl_json_str(f, e->row->applied_at);
                fprintf(f,
                        ",\"duration_ms\":%" PRId64 ",\"success\":%s,\"statements_total\":%" PRId64
                        ",\"statements_done\":%" PRId64 ",\"error\":",
                        e->row->duration_ms, e->row->success ? "true" : "false", e->row->statements_total,
                        e->row->statements_done);
                sb_ctl_json_str(f, e->row->error);
            }
            fputc('}', f);
        }
        fputs("],", f);
        print_problems_json(&m, f);
        fputs("}\n", f);
    } else {
        fprintf(f, "migrations in %s, history in %s.schema_migrations\n", ctx->migrations_dir, m.schema);
        fprintf(f, "%-8s %-8s %-26s %10s  %s\n", "VERSION", "STATE", "APPLIED AT (UTC)", "MS", "NAME");
        for (size_t i = 0; i < m.n_entries; i++) {
            const mig_entry *e = &m.entries[i];
            char ms[32] = "";
            if (e->row)
                snprintf(ms, sizeof ms, "%" PRId64, e->row->duration_ms);
            fprintf(f, "%04u     %-8s %-26s %10s  %s\n", e->version, state_names[e->state],
                    e->row ? e->row->applied_at : "", ms, e->file ? e->file->name : e->row->name);
        }
        if (m.n_entries == 0)
            fprintf(f, "(no migrations)\n");
        if (m.other_runner)
            fprintf(f, "a migration runner is active now\n");
        print_problems_text(&m);
    }
    migrate_free(&m);
    return rc;
}

static int cmd_verify(int argc, char **argv, sb_ctl_ctx *ctx) {
    mig_opts o = {0};
    if (parse_opts(argc, argv, ctx, &o, false) < 0)
        return SB_CTL_EXIT_USAGE;
    migrate m = {.ctx = ctx, .schema = o.schema};
    int problems = -1;
    size_t pending = 0, applied = 0, running = 0;
    if (migrate_open(&m, false, false) == 0)
        problems = compute_entries(&m);
    for (size_t i = 0; problems >= 0 && i < m.n_entries; i++) {
        pending += m.entries[i].state == STATE_PENDING;
        applied += m.entries[i].state == STATE_APPLIED;
        running += m.entries[i].state == STATE_RUNNING;
    }
    bool ok = problems == 0 && running == 0 && (pending == 0 || o.allow_pending);
    if (problems > 0)
        print_problems_text(&m);
    if (problems >= 0 && !ok && problems == 0) {
        if (running)
            sb_ctl_error(ctx, "a migration is running now");
        else
            sb_ctl_error(ctx, "%zu migration%s pending: run `sharebuyctl migrate up`", pending,
                         pending == 1 ? " is" : "s are");
    }
    if (ctx->json) {
        fprintf(ctx->out, "{\"ok\":%s,\"applied\":%zu,\"pending\":%zu,\"running\":%zu", ok ? "true" : "false",
                applied, pending, running);
        if (!ok) {
            fputs(",\"error\":", ctx->out);
            sb_ctl_json_str(ctx->out, ctx->last_error);
        }
        if (m.entries) {
            fputc(',', ctx->out);
            print_problems_json(&m, ctx->out);
        }
        fputs("}\n", ctx->out);
    } else if (ok) {
        fprintf(ctx->out, "ok: %zu migration%s applied, every file matches its checksum%s\n", applied,
                applied == 1 ? "" : "s", pending ? " (some pending)" : "");
    }
    migrate_free(&m);
    return ok ? SB_CTL_EXIT_OK : SB_CTL_EXIT_FAILURE;
}

static int cmd_resolve(int argc, char **argv, sb_ctl_ctx *ctx) {
    mig_opts o = {0};
    if (parse_opts(argc, argv, ctx, &o, true) < 0)
        return SB_CTL_EXIT_USAGE;
    unsigned long long version;
    if (!o.positional || sb_ctl_parse_uint(o.positional, 99999999, &version) < 0)
        return sb_ctl_usage_error(ctx, "migrate resolve needs a VERSION number");
    if (o.mark_applied + o.retry + o.accept_edit != 1)
        return sb_ctl_usage_error(ctx, "migrate resolve needs exactly one of --applied, --retry, --accept-edit");
    migrate m = {.ctx = ctx, .schema = o.schema, .lock_timeout_s = o.lock_timeout_s};
    int rc = SB_CTL_EXIT_FAILURE;
    if (migrate_open(&m, true, true) < 0 || compute_entries(&m) < 0)
        goto out;
    const mig_entry *e = NULL;
    for (size_t i = 0; i < m.n_entries; i++)
        if (m.entries[i].version == version)
            e = &m.entries[i];
    if (!e || !e->row) {
        sb_ctl_error(ctx, "migration %04llu has no history to resolve", version);
        goto out;
    }
    sb_db_stmt *s;
    if (o.accept_edit) {
        if (e->state != STATE_EDITED) {
            sb_ctl_error(ctx, "migration %04llu is %s, not edited", version, state_names[e->state]);
            goto out;
        }
        if (sb_db_prepare(m.db, m.sql_checksum, &s) < 0 || sb_db_bind_str(s, 0, e->file->checksum) < 0 ||
            sb_db_bind_u64(s, 1, version) < 0 || sb_db_execute(s) < 0) {
            db_fail(&m, "cannot update the history");
            goto out;
        }
    } else {
        if (e->state != STATE_FAILED) {
            sb_ctl_error(ctx, "migration %04llu is %s, not half-applied: nothing to resolve", version,
                         state_names[e->state]);
            goto out;
        }
        if (o.mark_applied) {
            if (sb_db_prepare(m.db, m.sql_resolve, &s) < 0 || sb_db_bind_str(s, 0, e->file->checksum) < 0 ||
                sb_db_bind_u64(s, 1, version) < 0 || sb_db_execute(s) < 0) {
                db_fail(&m, "cannot update the history");
                goto out;
            }
        } else if (sb_db_prepare(m.db, m.sql_delete, &s) < 0 || sb_db_bind_u64(s, 0, version) < 0 ||
                   sb_db_execute(s) < 0) {
            db_fail(&m, "cannot update the history");
            goto out;
        }
    }
    rc = SB_CTL_EXIT_OK;
    if (!ctx->json)
        fprintf(ctx->out, "migration %s: %s\n", e->file ? e->file->name : e->row->name,
                o.accept_edit    ? "the edited file's checksum is now the applied one"
                : o.mark_applied ? "marked applied"
                                 : "its history is cleared; `sharebuyctl migrate up` runs it again");
out:
    if (m.db)
        release_lock(&m);
    if (ctx->json) {
        fprintf(ctx->out, "{\"ok\":%s", rc == SB_CTL_EXIT_OK ? "true" : "false");
        if (rc != SB_CTL_EXIT_OK) {
            fputs(",\"error\":", ctx->out);
            sb_ctl_json_str(ctx->out, ctx->last_error);
        }
        fputs("}\n", ctx->out);
    }
    migrate_free(&m);
    return rc;
}

static const char history_opts_help[] =
    "  --history-schema NAME  where the history lives (default " DEFAULT_HISTORY_SCHEMA ")";

static const sb_ctl_subcommand subcommands[] = {
    {"up", "[--lock-timeout S] [--history-schema NAME]",
     "Apply every pending migration, in order.\n"
     "\n"
     "Refuses to start when an applied file was edited, renamed or removed, when a migration is half-applied,\n"
     "or when a pending file is numbered before an applied one. Only one runner at a time: waits for the lock\n"
     "'sharebuy_migrate' up to --lock-timeout seconds (default 60, 0: do not wait). A failing statement stops\n"
     "the run; the error names the file, the statement's number, line and first line, and MariaDB's message,\n"
     "and the history records how far it got. Afterwards, sets the service accounts' passwords from\n"
     "SB_DB_PASSWORD_<SERVICE> when set (see `sharebuyctl db set-passwords --help`).\n",
     cmd_up},
    {"status", "[--history-schema NAME]",
     "Show every migration's state, and explain each problem.\n"
     "\n"
     "States: applied, pending, failed (half-applied), running (another runner is at work), edited, missing,\n"
     "renamed. Changes nothing.\n",
     cmd_status},
    {"verify", "[--allow-pending] [--history-schema NAME]",
     "Check that the database is exactly at the files.\n"
     "\n"
     "Every file applied, unchanged since (SHA-256), none half-applied: exit 0 when so, 1 otherwise (pending\n"
     "migrations fail unless --allow-pending).\n",
     cmd_verify},
    {"resolve", "VERSION --applied | --retry | --accept-edit [--history-schema NAME]",
     "Record an administrator's decision about one migration.\n"
     "\n"
     "  --applied      a half-applied migration was finished by hand: mark it applied\n"
     "  --retry        a half-applied migration was undone by hand (or is idempotent): clear its history so\n"
     "                 that `migrate up` runs it again from its first statement\n"
     "  --accept-edit  an applied file was edited without changing its effect (a comment): record its new\n"
     "                 checksum\n",
     cmd_resolve},
};

static int run_migrate(int argc, char **argv, sb_ctl_ctx *ctx) {
    static const char help[] =
        "Apply and check the database migrations (numbered SQL files, see docs/migrations.md).\n"
        "The files come from --migrations-dir.\n"
        "\n"
        "Options of every subcommand:\n";
    char full[1024];
    snprintf(full, sizeof full, "%s%s", help, history_opts_help);
    return sb_ctl_dispatch("migrate", full, subcommands, sizeof subcommands / sizeof subcommands[0], argc, argv,
                           ctx);
}

const sb_ctl_command sb_ctl_migrate_command = {
    .name = "migrate",
    .summary = "apply and check the database migrations (up, status, verify, resolve)",
    .run = run_migrate,
};
