/* sb_db: connections, the prepared-statement cache, transactions with retries, reconnection. See db.h. */
#include "db.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <errmsg.h>
#include <mysql.h>
#include <mysqld_error.h>

#define ERRMSG_SIZE 1024

/* MariaDB errors not named in every version of the headers. */
#define SB_ER_CLIENT_INTERACTION_TIMEOUT 4031
#define SB_ER_ACCOUNT_HAS_BEEN_LOCKED 4151

enum param_kind { PARAM_NULL, PARAM_I64, PARAM_U64, PARAM_STR, PARAM_BLOB };

typedef struct param {
    enum param_kind kind;
    int64_t i64;
    uint64_t u64;
    char *buf;
    size_t cap;
    unsigned long len;
} param;

typedef struct column {
    bool is_int;
    bool is_unsigned;
    int64_t i64;
    char *buf;
    size_t cap;
    unsigned long len;
    my_bool is_null;
    my_bool error;
} column;

struct sb_db_stmt {
    sb_db *db;
    char *sql;
    uint64_t hash;
    MYSQL_STMT *ms;        /* NULL until prepared on the current connection */
    unsigned gen;          /* the connection generation ms was prepared on */
    unsigned nparams;
    param *params;
    MYSQL_BIND *pbind;
    unsigned ncols;        /* columns of the result set, known after the first prepare */
    unsigned cols_cap;     /* allocated entries of cols and rbind */
    column *cols;
    MYSQL_BIND *rbind;
    bool has_result;       /* a buffered result is pending */
    uint64_t affected_rows;
    uint64_t insert_id;
    sb_db_stmt *next;
};

struct sb_db {
    MYSQL *my;
    unsigned gen;          /* incremented at each (re)connection */
    bool broken;           /* the connection was lost: reconnect before the next statement */
    bool in_tx;
    bool attempt_retryable; /* inside sb_db_tx: a statement of this attempt failed with a retryable error */
    unsigned reconnects;
    uint32_t timeout_ms;   /* wanted max_statement_time */
    uint32_t applied_timeout_ms; /* in effect on the current connection */
    uint64_t rng;
    sb_db_stmt *stmts;
    unsigned nstmts;
    unsigned err_no;
    char errmsg[ERRMSG_SIZE];
    /* A private copy of the configuration. */
    sb_db_config cfg;
    char *cfg_strings[6];
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init_once(void) {
    /* mysql_library_init is not thread-safe; mysql_init calls it implicitly, so do it once here first. */
    (void) mysql_library_init(0, NULL, NULL);
}

void sb_db_global_init(void) {
    pthread_once(&global_once, global_init_once);
}

static void copy_msg(char *dst, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void copy_msg(char *dst, size_t n, const char *fmt, ...) {
    if (!dst || n == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, n, fmt, ap);
    va_end(ap);
}

static void set_msg(sb_db *db, unsigned err_no, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_msg(sb_db *db, unsigned err_no, const char *fmt, ...) {
    va_list ap;
    db->err_no = err_no;
    va_start(ap, fmt);
    vsnprintf(db->errmsg, sizeof db->errmsg, fmt, ap);
    va_end(ap);
}

static void clear_error(sb_db *db) {
    db->err_no = 0;
    db->errmsg[0] = '\0';
}

static bool is_conn_lost(unsigned e) {
    switch (e) {
    case CR_SERVER_GONE_ERROR:
    case CR_SERVER_LOST:
    case CR_SERVER_LOST_EXTENDED:
    case CR_CONNECTION_ERROR:
    case CR_CONN_HOST_ERROR:
    case ER_CONNECTION_KILLED:
    case ER_SERVER_SHUTDOWN:
    case SB_ER_CLIENT_INTERACTION_TIMEOUT:
        return true;
    default:
        return false;
    }
}

/* Errors after which the whole transaction is worth running again. ER_LOCK_DEADLOCK is also how Galera reports a
 * certification conflict; ER_UNKNOWN_COM_ERROR is a Galera node not yet ready; ER_CHECKREAD is a snapshot
 * conflict under innodb_snapshot_isolation. */
static bool is_retryable(unsigned e) {
    return e == ER_LOCK_DEADLOCK || e == ER_LOCK_WAIT_TIMEOUT || e == ER_UNKNOWN_COM_ERROR || e == ER_CHECKREAD;
}

static int map_errno(unsigned e) {
    if (is_conn_lost(e))
        return -ENOTCONN;
    if (is_retryable(e))
        return -EDEADLK;
    switch (e) {
    case ER_DUP_ENTRY:
    case ER_DUP_KEY:
    case ER_DUP_ENTRY_WITH_KEY_NAME:
        return -EEXIST;
    case ER_STATEMENT_TIMEOUT:
        return -ETIMEDOUT;
    case ER_TABLEACCESS_DENIED_ERROR:
    case ER_COLUMNACCESS_DENIED_ERROR:
    case ER_DBACCESS_DENIED_ERROR:
    case ER_ACCESS_DENIED_ERROR:
    case ER_SPECIFIC_ACCESS_DENIED_ERROR:
    case ER_PROCACCESS_DENIED_ERROR:
    case SB_ER_ACCOUNT_HAS_BEEN_LOCKED:
        return -EACCES;
    case ER_NO_SUCH_TABLE:
    case ER_BAD_DB_ERROR:
        return -ENOENT;
    case CR_OUT_OF_MEMORY:
        return -ENOMEM;
    default:
        return -EIO;
    }
}

/* Records a failure reported by the server or the client library and returns its code. A lost connection marks
 * db broken so that the next call reconnects. */
static int fail_with(sb_db *db, unsigned e, const char *msg) {
    set_msg(db, e, "%s", msg && *msg ? msg : "unknown MariaDB error");
    if (is_conn_lost(e))
        db->broken = true;
    if (db->in_tx && (is_retryable(e) || is_conn_lost(e)))
        db->attempt_retryable = true;
    return map_errno(e);
}

static int fail_my(sb_db *db) {
    return fail_with(db, mysql_errno(db->my), mysql_error(db->my));
}

static int fail_stmt(sb_db *db, MYSQL_STMT *ms) {
    return fail_with(db, mysql_stmt_errno(ms), mysql_stmt_error(ms));
}

static uint64_t hash_sql(const char *s) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char) *s;
        h *= 1099511628211ULL;
    }
    return h;
}

static uint64_t next_rand(sb_db *db) {
    /* xorshift64*: only for jitter, not for anything secret. */
    uint64_t x = db->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    db->rng = x;
    return x * 2685821657736338717ULL;
}

static char *dup_or_null(const char *s) {
    return s ? strdup(s) : NULL;
}

/* Connects db->my using db->cfg. Returns 0 or a negative code with the message in db. */
static int connect_raw(sb_db *db) {
    const sb_db_config *c = &db->cfg;
    MYSQL *my = mysql_init(NULL);
    if (!my) {
        set_msg(db, CR_OUT_OF_MEMORY, "mysql_init: out of memory");
        return -ENOMEM;
    }
    unsigned connect_timeout = c->connect_timeout_s ? c->connect_timeout_s : 10;
    unsigned read_timeout = c->read_timeout_s ? c->read_timeout_s : 60;
    my_bool off = 0;
    bool use_tcp = c->host && *c->host;
    unsigned protocol = use_tcp ? MYSQL_PROTOCOL_TCP : MYSQL_PROTOCOL_SOCKET;
    mysql_optionsv(my, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
    mysql_optionsv(my, MYSQL_OPT_READ_TIMEOUT, &read_timeout);
    mysql_optionsv(my, MYSQL_OPT_WRITE_TIMEOUT, &read_timeout);
    mysql_optionsv(my, MYSQL_OPT_RECONNECT, &off); /* we reconnect ourselves, and know what was lost */
    mysql_optionsv(my, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    mysql_optionsv(my, MYSQL_INIT_COMMAND, "SET time_zone = '+00:00'");
    if (!use_tcp && !c->unix_socket) {
        /* Neither host nor socket: let the library pick its default (localhost). */
    } else {
        mysql_optionsv(my, MYSQL_OPT_PROTOCOL, &protocol);
    }
    if (!mysql_real_connect(my, use_tcp ? c->host : "localhost", c->user, c->password, c->database,
                            use_tcp ? (c->port ? c->port : 3306) : 0, use_tcp ? NULL : c->unix_socket, 0)) {
        unsigned e = mysql_errno(my);
        if (use_tcp)
            set_msg(db, e, "cannot connect to MariaDB at %s:%u as %s: %s", c->host, c->port ? c->port : 3306,
                    c->user ? c->user : "(default user)", mysql_error(my));
        else
            set_msg(db, e, "cannot connect to MariaDB on socket %s as %s: %s",
                    c->unix_socket ? c->unix_socket : "(default)", c->user ? c->user : "(default user)",
                    mysql_error(my));
        mysql_close(my);
        return e == ER_ACCESS_DENIED_ERROR || e == ER_DBACCESS_DENIED_ERROR ||
                       e == SB_ER_ACCOUNT_HAS_BEEN_LOCKED
                   ? -EACCES
               : e == ER_BAD_DB_ERROR                                        ? -ENOENT
                                                                            : -ENOTCONN;
    }
    db->my = my;
    db->gen++;
    db->broken = false;
    db->applied_timeout_ms = 0;
    return 0;
}

static void stmt_drop_handle(sb_db_stmt *s) {
    if (s->ms) {
        /* On a dead connection mysql_stmt_close only frees memory. */
        mysql_stmt_close(s->ms);
        s->ms = NULL;
    }
    s->has_result = false;
}

static int reconnect(sb_db *db) {
    for (sb_db_stmt *s = db->stmts; s; s = s->next)
        stmt_drop_handle(s);
    if (db->my) {
        mysql_close(db->my);
        db->my = NULL;
    }
    int r = connect_raw(db);
    if (r < 0) {
        db->broken = true;
        return r == -EACCES ? r : -ENOTCONN;
    }
    db->reconnects++;
    return 0;
}

static int apply_timeout(sb_db *db) {
    MYSQL_STMT *ms = mysql_stmt_init(db->my);
    if (!ms)
        return fail_my(db);
    static const char sql[] = "SET SESSION max_statement_time = ?";
    double seconds = db->timeout_ms / 1000.0; /* the server takes seconds with microsecond precision */
    MYSQL_BIND b;
    memset(&b, 0, sizeof b);
    b.buffer_type = MYSQL_TYPE_DOUBLE;
    b.buffer = &seconds;
    int r = 0;
    if (mysql_stmt_prepare(ms, sql, sizeof sql - 1) || mysql_stmt_bind_param(ms, &b) || mysql_stmt_execute(ms))
        r = fail_stmt(db, ms);
    mysql_stmt_close(ms);
    if (r == 0)
        db->applied_timeout_ms = db->timeout_ms;
    return r;
}

/* Makes the connection usable: reconnects when it was lost and applies the session settings. */
static int ensure_ready(sb_db *db) {
    if (db->broken || !db->my) {
        int r = reconnect(db);
        if (r < 0)
            return r;
    }
    if (db->applied_timeout_ms != db->timeout_ms)
        return apply_timeout(db);
    return 0;
}

int sb_db_open(const sb_db_config *cfg, sb_db **ret, char *err, size_t n) {
    assert(cfg && ret);
    sb_db_global_init();
    sb_db *db = calloc(1, sizeof *db);
    if (!db) {
        copy_msg(err, n, "out of memory");
        return -ENOMEM;
    }
    db->cfg = *cfg;
    const char *src[6] = {cfg->host, cfg->unix_socket, cfg->user, cfg->password, cfg->database, NULL};
    for (int i = 0; i < 5; i++) {
        db->cfg_strings[i] = dup_or_null(src[i]);
        if (src[i] && !db->cfg_strings[i]) {
            copy_msg(err, n, "out of memory");
            sb_db_close(db);
            return -ENOMEM;
        }
    }
    db->cfg.host = db->cfg_strings[0];
    db->cfg.unix_socket = db->cfg_strings[1];
    db->cfg.user = db->cfg_strings[2];
    db->cfg.password = db->cfg_strings[3];
    db->cfg.database = db->cfg_strings[4];
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    db->rng = ((uint64_t) ts.tv_nsec << 20) ^ (uint64_t) ts.tv_sec ^ ((uint64_t) getpid() << 40) ^
              (uint64_t) (uintptr_t) db;
    if (db->rng == 0)
        db->rng = 88172645463325252ULL;
    int r = connect_raw(db);
    if (r < 0) {
        copy_msg(err, n, "%s", db->errmsg);
        sb_db_close(db);
        return r;
    }
    *ret = db;
    return 0;
}

static void stmt_free(sb_db_stmt *s) {
    stmt_drop_handle(s);
    for (unsigned i = 0; i < s->nparams; i++)
        free(s->params[i].buf);
    for (unsigned i = 0; i < s->cols_cap; i++)
        free(s->cols[i].buf);
    free(s->params);
    free(s->pbind);
    free(s->cols);
    free(s->rbind);
    free(s->sql);
    free(s);
}

void sb_db_close(sb_db *db) {
    if (!db)
        return;
    for (sb_db_stmt *s = db->stmts, *next; s; s = next) {
        next = s->next;
        stmt_free(s);
    }
    if (db->my)
        mysql_close(db->my);
    for (int i = 0; i < 6; i++) {
        if (db->cfg_strings[i]) {
            /* Do not leave the password lying in freed memory. */
            explicit_bzero(db->cfg_strings[i], strlen(db->cfg_strings[i]));
            free(db->cfg_strings[i]);
        }
    }
    free(db);
}

unsigned sb_db_errno(const sb_db *db) {
    return db->err_no;
}

const char *sb_db_errmsg(const sb_db *db) {
    return db->errmsg;
}

uint64_t sb_db_connection_id(const sb_db *db) {
    return db->my && !db->broken ? mysql_thread_id(db->my) : 0;
}

unsigned sb_db_reconnects(const sb_db *db) {
    return db->reconnects;
}

bool sb_db_in_tx(const sb_db *db) {
    return db->in_tx;
}

int sb_db_set_statement_timeout_ms(sb_db *db, uint32_t timeout_ms) {
    clear_error(db);
    db->timeout_ms = timeout_ms;
    if (db->broken || db->applied_timeout_ms == timeout_ms)
        return 0; /* applied at the next reconnection */
    return apply_timeout(db);
}

/* Sizes the column arrays of s for n columns (they only grow: buffers are kept for reuse). */
static int ensure_cols(sb_db_stmt *s, unsigned n) {
    if (n > s->cols_cap) {
        column *cols = realloc(s->cols, n * sizeof *cols);
        if (!cols)
            goto oom;
        memset(cols + s->cols_cap, 0, (n - s->cols_cap) * sizeof *cols);
        s->cols = cols;
        s->cols_cap = n;
        MYSQL_BIND *rbind = realloc(s->rbind, n * sizeof *rbind);
        if (!rbind)
            goto oom;
        s->rbind = rbind;
    }
    s->ncols = n;
    return 0;
oom:
    set_msg(s->db, CR_OUT_OF_MEMORY, "out of memory");
    return -ENOMEM;
}

/* Prepares s->ms on the current connection and sizes the parameter and column arrays. */
static int stmt_prepare_now(sb_db_stmt *s) {
    sb_db *db = s->db;
    stmt_drop_handle(s);
    MYSQL_STMT *ms = mysql_stmt_init(db->my);
    if (!ms)
        return fail_my(db);
    if (mysql_stmt_prepare(ms, s->sql, strlen(s->sql))) {
        int r = fail_stmt(db, ms);
        mysql_stmt_close(ms);
        return r;
    }
    my_bool on = 1;
    mysql_stmt_attr_set(ms, STMT_ATTR_UPDATE_MAX_LENGTH, &on);
    unsigned nparams = (unsigned) mysql_stmt_param_count(ms);
    unsigned ncols = mysql_stmt_field_count(ms);
    if (nparams > SB_DB_PARAMS_MAX) {
        mysql_stmt_close(ms);
        set_msg(db, 0, "statement has %u parameters, more than the limit of %d", nparams, SB_DB_PARAMS_MAX);
        return -EINVAL;
    }
    if (s->params == NULL && nparams > 0) {
        s->params = calloc(nparams, sizeof *s->params);
        s->pbind = calloc(nparams, sizeof *s->pbind);
        if (!s->params || !s->pbind) {
            mysql_stmt_close(ms);
            set_msg(db, CR_OUT_OF_MEMORY, "out of memory");
            return -ENOMEM;
        }
        s->nparams = nparams;
    } else if (nparams != s->nparams) {
        /* Only possible when the schema changed under a running program in a way that changes the text's
         * meaning; refuse rather than guess. */
        mysql_stmt_close(ms);
        set_msg(db, 0, "statement changed its parameter count after a reconnection: %s", s->sql);
        return -EIO;
    }
    if (ensure_cols(s, ncols) < 0) {
        mysql_stmt_close(ms);
        return -ENOMEM;
    }
    s->ms = ms;
    s->gen = db->gen;
    return 0;
}

static void stmt_reset(sb_db_stmt *s) {
    if (s->ms && s->has_result)
        mysql_stmt_free_result(s->ms);
    s->has_result = false;
    for (unsigned i = 0; i < s->nparams; i++)
        s->params[i].kind = PARAM_NULL;
}

int sb_db_prepare(sb_db *db, const char *sql, sb_db_stmt **ret) {
    assert(db && sql && ret);
    clear_error(db);
    uint64_t h = hash_sql(sql);
    for (sb_db_stmt *s = db->stmts; s; s = s->next) {
        if (s->hash == h && strcmp(s->sql, sql) == 0) {
            stmt_reset(s);
            *ret = s;
            return 0;
        }
    }
    if (db->nstmts >= SB_DB_STMT_CACHE_MAX) {
        set_msg(db, 0, "statement cache full (%d texts): SQL texts must be constants", SB_DB_STMT_CACHE_MAX);
        return -ENOSPC;
    }
    sb_db_stmt *s = calloc(1, sizeof *s);
    if (!s || !(s->sql = strdup(sql))) {
        free(s);
        set_msg(db, CR_OUT_OF_MEMORY, "out of memory");
        return -ENOMEM;
    }
    s->db = db;
    s->hash = h;
    int r = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        r = ensure_ready(db);
        if (r == 0)
            r = stmt_prepare_now(s);
        /* Preparing has no effect on data: after a lost connection try once more on a new one, unless a
         * transaction was running (it is gone; sb_db_tx retries it). */
        if (r == -ENOTCONN && !db->in_tx)
            continue;
        break;
    }
    if (r < 0) {
        stmt_free(s);
        return r;
    }
    s->next = db->stmts;
    db->stmts = s;
    db->nstmts++;
    *ret = s;
    return 0;
}

static param *get_param(sb_db_stmt *s, unsigned idx) {
    if (idx >= s->nparams) {
        set_msg(s->db, 0, "parameter index %u out of range (statement has %u)", idx, s->nparams);
        return NULL;
    }
    return &s->params[idx];
}

static int param_store(param *p, const void *data, size_t len) {
    if (len + 1 > p->cap) {
        size_t cap = len + 1 < 64 ? 64 : len + 1;
        char *buf = realloc(p->buf, cap);
        if (!buf)
            return -ENOMEM;
        p->buf = buf;
        p->cap = cap;
    }
    if (len)
        memcpy(p->buf, data, len);
    p->buf[len] = '\0';
    p->len = (unsigned long) len;
    return 0;
}

int sb_db_bind_i64(sb_db_stmt *s, unsigned idx, int64_t value) {
    param *p = get_param(s, idx);
    if (!p)
        return -EINVAL;
    p->kind = PARAM_I64;
    p->i64 = value;
    return 0;
}

int sb_db_bind_u64(sb_db_stmt *s, unsigned idx, uint64_t value) {
    param *p = get_param(s, idx);
    if (!p)
        return -EINVAL;
    p->kind = PARAM_U64;
    p->u64 = value;
    return 0;
}

int sb_db_bind_strn(sb_db_stmt *s, unsigned idx, const char *value, size_t len) {
    param *p = get_param(s, idx);
    if (!p)
        return -EINVAL;
    if (!value) {
        p->kind = PARAM_NULL;
        return 0;
    }
    if (param_store(p, value, len) < 0)
        return -ENOMEM;
    p->kind = PARAM_STR;
    return 0;
}

int sb_db_bind_str(sb_db_stmt *s, unsigned idx, const char *value) {
    return sb_db_bind_strn(s, idx, value, value ? strlen(value) : 0);
}

int sb_db_bind_blob(sb_db_stmt *s, unsigned idx, const void *value, size_t len) {
    param *p = get_param(s, idx);
    if (!p)
        return -EINVAL;
    if (!value && len > 0)
        return -EINVAL;
    if (param_store(p, value, len) < 0)
        return -ENOMEM;
    p->kind = PARAM_BLOB;
    return 0;
}

int sb_db_bind_null(sb_db_stmt *s, unsigned idx) {
    param *p = get_param(s, idx);
    if (!p)
        return -EINVAL;
    p->kind = PARAM_NULL;
    return 0;
}

static void build_param_binds(sb_db_stmt *s) {
    for (unsigned i = 0; i < s->nparams; i++) {
        param *p = &s->params[i];
        MYSQL_BIND *b = &s->pbind[i];
        memset(b, 0, sizeof *b);
        switch (p->kind) {
        case PARAM_NULL:
            b->buffer_type = MYSQL_TYPE_NULL;
            break;
        case PARAM_I64:
            b->buffer_type = MYSQL_TYPE_LONGLONG;
            b->buffer = &p->i64;
            break;
        case PARAM_U64:
            b->buffer_type = MYSQL_TYPE_LONGLONG;
            b->buffer = &p->u64;
            b->is_unsigned = 1;
            break;
        case PARAM_STR:
        case PARAM_BLOB:
            b->buffer_type = p->kind == PARAM_STR ? MYSQL_TYPE_STRING : MYSQL_TYPE_BLOB;
            b->buffer = p->buf ? p->buf : (void *) "";
            b->buffer_length = p->len;
            b->length = &p->len;
            break;
        }
    }
}

static bool is_int_type(enum enum_field_types t) {
    return t == MYSQL_TYPE_TINY || t == MYSQL_TYPE_SHORT || t == MYSQL_TYPE_LONG || t == MYSQL_TYPE_INT24 ||
           t == MYSQL_TYPE_LONGLONG || t == MYSQL_TYPE_YEAR;
}

static void bind_column(sb_db_stmt *s, unsigned i) {
    column *c = &s->cols[i];
    MYSQL_BIND *b = &s->rbind[i];
    memset(b, 0, sizeof *b);
    b->is_null = &c->is_null;
    b->error = &c->error;
    b->length = &c->len;
    if (c->is_int) {
        b->buffer_type = MYSQL_TYPE_LONGLONG;
        b->buffer = &c->i64;
        b->is_unsigned = c->is_unsigned;
    } else {
        b->buffer_type = MYSQL_TYPE_STRING;
        b->buffer = c->buf;
        b->buffer_length = c->cap;
    }
}

static int grow_column(column *c, size_t need) {
    if (need <= c->cap)
        return 0;
    char *buf = realloc(c->buf, need);
    if (!buf)
        return -ENOMEM;
    c->buf = buf;
    c->cap = need;
    return 0;
}

/* After a successful execute with a result set: buffer the rows and bind the columns. */
static int store_result(sb_db_stmt *s) {
    sb_db *db = s->db;
    if (mysql_stmt_store_result(s->ms))
        return fail_stmt(db, s->ms);
    s->has_result = true;
    MYSQL_RES *meta = mysql_stmt_result_metadata(s->ms);
    if (!meta)
        return fail_stmt(db, s->ms);
    unsigned n = mysql_num_fields(meta);
    if (ensure_cols(s, n) < 0) {
        mysql_free_result(meta);
        return -ENOMEM;
    }
    MYSQL_FIELD *fields = mysql_fetch_fields(meta);
    for (unsigned i = 0; i < n; i++) {
        column *c = &s->cols[i];
        c->is_int = is_int_type(fields[i].type);
        c->is_unsigned = (fields[i].flags & UNSIGNED_FLAG) != 0;
        if (!c->is_int) {
            /* max_length is the longest value in this result (STMT_ATTR_UPDATE_MAX_LENGTH); temporal and decimal
             * types are converted to text, hence the floor. A too small buffer is still handled at fetch. */
            size_t need = fields[i].max_length;
            size_t display = fields[i].length < 1024 ? fields[i].length : 1024;
            if (need < display)
                need = display;
            if (need < 64)
                need = 64;
            if (grow_column(c, need + 1) < 0) {
                mysql_free_result(meta);
                set_msg(db, CR_OUT_OF_MEMORY, "out of memory");
                return -ENOMEM;
            }
        }
        bind_column(s, i);
    }
    mysql_free_result(meta);
    if (mysql_stmt_bind_result(s->ms, s->rbind))
        return fail_stmt(db, s->ms);
    return 0;
}

/* What every execution starts with: no error, no pending result, no counts of the last one. */
static void exec_begin(sb_db_stmt *s) {
    clear_error(s->db);
    if (s->ms && s->has_result)
        mysql_stmt_free_result(s->ms);
    s->has_result = false;
    s->affected_rows = 0;
    s->insert_id = 0;
}

/* A connection and s prepared on it. -ENOTCONN when the connection could not be had: nothing was sent, so a caller
 * outside a transaction may try once more. */
static int exec_ready(sb_db_stmt *s) {
    int r = ensure_ready(s->db);
    if (r == 0 && (!s->ms || s->gen != s->db->gen))
        r = stmt_prepare_now(s);
    return r;
}

int sb_db_execute(sb_db_stmt *s) {
    assert(s);
    sb_db *db = s->db;
    exec_begin(s);

    for (int attempt = 0; attempt < 2; attempt++) {
        int r = exec_ready(s);
        if (r == -ENOTCONN && !db->in_tx && attempt == 0)
            continue; /* nothing was sent: try on a new connection */
        if (r < 0)
            return r;

        build_param_binds(s);
        if (s->nparams && mysql_stmt_bind_param(s->ms, s->pbind))
            return fail_stmt(db, s->ms);
        if (mysql_stmt_execute(s->ms)) {
            unsigned e = mysql_stmt_errno(s->ms);
            r = fail_stmt(db, s->ms);
            if (!is_conn_lost(e) || db->in_tx)
                return r; /* in a transaction: sb_db_tx sees the lost connection and runs it again */
            if (s->ncols > 0 && attempt == 0)
                continue; /* a query: safe to run again on a new connection */
            set_msg(db, e, "connection lost during a write; it may have been applied: %s", mysql_stmt_error(s->ms));
            return SB_DB_EUNKNOWN_COMMIT;
        }
        s->affected_rows = mysql_stmt_affected_rows(s->ms);
        s->insert_id = mysql_stmt_insert_id(s->ms);
        /* The result's shape may differ from the prepare's when a table was altered since. */
        r = ensure_cols(s, mysql_stmt_field_count(s->ms));
        if (r < 0)
            return r;
        if (s->ncols > 0) {
            r = store_result(s);
            if (r < 0)
                return r;
        }
        return 0;
    }
    return -ENOTCONN;
}

int sb_db_execute_bulk(sb_db_stmt *s, size_t rows, const sb_db_bulk_col *cols, size_t n_cols) {
    assert(s && cols);
    sb_db *db = s->db;
    exec_begin(s);
    if (rows == 0 || rows > UINT32_MAX) {
        set_msg(db, 0, "a bulk execution takes 1 to %" PRIu32 " rows, not %zu", UINT32_MAX, rows);
        return -EINVAL;
    }
    for (size_t i = 0; i < n_cols; i++) {
        if (!cols[i].i64 == !cols[i].u64) {
            set_msg(db, 0, "bulk column %zu needs exactly one of signed or unsigned values", i);
            return -EINVAL;
        }
        if (cols[i].null) {
            for (size_t k = 0; k < rows; k++) {
                if (cols[i].null[k] > 1) {
                    set_msg(db, 0, "bulk column %zu: a NULL flag is 0 or 1", i);
                    return -EINVAL;
                }
            }
        }
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        int r = exec_ready(s);
        if (r == -ENOTCONN && !db->in_tx && attempt == 0)
            continue; /* nothing was sent: try on a new connection */
        if (r < 0)
            return r;
        if (s->ncols > 0 || s->nparams == 0 || n_cols != s->nparams) {
            set_msg(db, 0, "a bulk execution needs a statement without a result and one column per parameter (%u),"
                    " got %zu", s->nparams, n_cols);
            return -EINVAL;
        }
        for (unsigned i = 0; i < s->nparams; i++) {
            MYSQL_BIND *b = &s->pbind[i];
            memset(b, 0, sizeof *b);
            b->buffer_type = MYSQL_TYPE_LONGLONG;
            b->buffer = cols[i].i64 ? (void *) cols[i].i64 : (void *) cols[i].u64;
            b->is_unsigned = cols[i].u64 != NULL;
            /* STMT_INDICATOR_NONE is 0 and STMT_INDICATOR_NULL is 1: the flags are the indicators. */
            b->u.indicator = (char *) cols[i].null;
        }
        unsigned int n = (unsigned int) rows, zero = 0;
        if (mysql_stmt_attr_set(s->ms, STMT_ATTR_ARRAY_SIZE, &n) || mysql_stmt_bind_param(s->ms, s->pbind)) {
            r = fail_stmt(db, s->ms);
            mysql_stmt_attr_set(s->ms, STMT_ATTR_ARRAY_SIZE, &zero);
            return r;
        }
        int failed = mysql_stmt_execute(s->ms);
        unsigned e = failed ? mysql_stmt_errno(s->ms) : 0;
        if (failed)
            r = fail_stmt(db, s->ms);
        /* Back to single executions for the next sb_db_execute() of the same text. */
        mysql_stmt_attr_set(s->ms, STMT_ATTR_ARRAY_SIZE, &zero);
        if (failed) {
            if (!is_conn_lost(e) || db->in_tx)
                return r; /* in a transaction: sb_db_tx sees the lost connection and runs it again */
            set_msg(db, e, "connection lost during a bulk write; it may have been applied");
            return SB_DB_EUNKNOWN_COMMIT;
        }
        s->affected_rows = mysql_stmt_affected_rows(s->ms);
        s->insert_id = mysql_stmt_insert_id(s->ms);
        return 0;
    }
    return -ENOTCONN;
}

int sb_db_fetch(sb_db_stmt *s) {
    assert(s);
    if (!s->has_result)
        return 0;
    int r = mysql_stmt_fetch(s->ms);
    if (r == 0)
        return 1;
    if (r == MYSQL_NO_DATA) {
        mysql_stmt_free_result(s->ms);
        s->has_result = false;
        return 0;
    }
    if (r == MYSQL_DATA_TRUNCATED) {
        /* A value longer than its buffer: fetch that column again into a bigger one, and keep the bigger buffer
         * bound for the following rows. */
        for (unsigned i = 0; i < s->ncols; i++) {
            column *c = &s->cols[i];
            if (c->is_int || !c->error)
                continue;
            if (grow_column(c, (size_t) c->len + 1) < 0) {
                set_msg(s->db, CR_OUT_OF_MEMORY, "out of memory");
                return -ENOMEM;
            }
            bind_column(s, i);
            if (mysql_stmt_fetch_column(s->ms, &s->rbind[i], i, 0))
                return fail_stmt(s->db, s->ms);
            c->error = 0;
        }
        if (mysql_stmt_bind_result(s->ms, s->rbind))
            return fail_stmt(s->db, s->ms);
        return 1;
    }
    return fail_stmt(s->db, s->ms);
}

unsigned sb_db_column_count(const sb_db_stmt *s) {
    return s->ncols;
}

bool sb_db_col_is_null(const sb_db_stmt *s, unsigned col) {
    assert(col < s->ncols);
    return s->cols[col].is_null;
}

/* Parses a whole decimal number, allowing a fractional part of zeros ("12.000" from DECIMAL arithmetic). */
static int parse_decimal(const column *c, bool is_signed, int64_t *ret_i, uint64_t *ret_u) {
    char tmp[128];
    if (c->len == 0 || c->len >= sizeof tmp)
        return -EINVAL;
    memcpy(tmp, c->buf, c->len);
    tmp[c->len] = '\0';
    char *dot = strchr(tmp, '.');
    if (dot) {
        for (char *p = dot + 1; *p; p++)
            if (*p != '0')
                return -ERANGE;
        *dot = '\0';
    }
    char *end;
    errno = 0;
    if (is_signed) {
        long long v = strtoll(tmp, &end, 10);
        if (errno == ERANGE)
            return -ERANGE;
        if (*end || end == tmp)
            return -EINVAL;
        *ret_i = v;
    } else {
        if (tmp[0] == '-')
            return -ERANGE;
        unsigned long long v = strtoull(tmp, &end, 10);
        if (errno == ERANGE)
            return -ERANGE;
        if (*end || end == tmp)
            return -EINVAL;
        *ret_u = v;
    }
    return 0;
}

int sb_db_col_i64(const sb_db_stmt *s, unsigned col, int64_t *ret) {
    assert(col < s->ncols && ret);
    const column *c = &s->cols[col];
    if (c->is_null)
        return -ENODATA;
    if (c->is_int) {
        if (c->is_unsigned && (uint64_t) c->i64 > INT64_MAX)
            return -ERANGE;
        *ret = c->i64;
        return 0;
    }
    int64_t v;
    int r = parse_decimal(c, true, &v, NULL);
    if (r < 0)
        return r;
    *ret = v;
    return 0;
}

int sb_db_col_u64(const sb_db_stmt *s, unsigned col, uint64_t *ret) {
    assert(col < s->ncols && ret);
    const column *c = &s->cols[col];
    if (c->is_null)
        return -ENODATA;
    if (c->is_int) {
        if (!c->is_unsigned && c->i64 < 0)
            return -ERANGE;
        *ret = (uint64_t) c->i64;
        return 0;
    }
    uint64_t v;
    int r = parse_decimal(c, false, NULL, &v);
    if (r < 0)
        return r;
    *ret = v;
    return 0;
}

/* The text of an integer column, made on demand so that col_str works on every column. */
static size_t int_text(const column *c, char *buf, size_t n) {
    int len = c->is_unsigned ? snprintf(buf, n, "%" PRIu64, (uint64_t) c->i64)
                             : snprintf(buf, n, "%" PRId64, c->i64);
    return (size_t) len;
}

int sb_db_col_str(const sb_db_stmt *s, unsigned col, char *buf, size_t n) {
    assert(col < s->ncols && buf);
    const column *c = &s->cols[col];
    if (c->is_null)
        return -ENODATA;
    if (c->is_int) {
        char tmp[32];
        size_t len = int_text(c, tmp, sizeof tmp);
        if (len + 1 > n)
            return -ENOBUFS;
        memcpy(buf, tmp, len + 1);
        return (int) len;
    }
    if ((size_t) c->len + 1 > n || c->len > INT32_MAX)
        return -ENOBUFS;
    memcpy(buf, c->buf, c->len);
    buf[c->len] = '\0';
    return (int) c->len;
}

int sb_db_col_blob(const sb_db_stmt *s, unsigned col, void *buf, size_t n) {
    assert(col < s->ncols && (buf || n == 0));
    const column *c = &s->cols[col];
    if (c->is_null)
        return -ENODATA;
    if (c->is_int)
        return -EINVAL;
    if ((size_t) c->len > n || c->len > INT32_MAX)
        return -ENOBUFS;
    if (c->len)
        memcpy(buf, c->buf, c->len);
    return (int) c->len;
}

const void *sb_db_col_data(const sb_db_stmt *s, unsigned col, size_t *ret_len) {
    assert(col < s->ncols && ret_len);
    const column *c = &s->cols[col];
    if (c->is_null)
        return NULL;
    if (c->is_int) {
        *ret_len = sizeof c->i64;
        return &c->i64;
    }
    *ret_len = c->len;
    return c->buf;
}

uint64_t sb_db_affected_rows(const sb_db_stmt *s) {
    return s->affected_rows;
}

uint64_t sb_db_insert_id(const sb_db_stmt *s) {
    return s->insert_id;
}

/* Runs a constant statement through the text protocol and discards any result. */
static int query_const(sb_db *db, const char *sql) {
    if (mysql_real_query(db->my, sql, strlen(sql)))
        return fail_my(db);
    MYSQL_RES *res = mysql_store_result(db->my);
    if (res)
        mysql_free_result(res);
    return 0;
}

static void backoff(sb_db *db, unsigned attempt) {
    /* 2, 4, 8 ... ms, capped at 128 ms, each with up to as much again of jitter so that two transactions that
     * collided do not collide again in step. */
    unsigned base_ms = 1u << (attempt < 7 ? attempt : 7);
    uint64_t us = (uint64_t) base_ms * 1000 + next_rand(db) % ((uint64_t) base_ms * 1000 + 1);
    struct timespec ts = {.tv_sec = (time_t) (us / 1000000), .tv_nsec = (long) (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

int sb_db_tx(sb_db *db, int (*fn)(sb_db *db, void *arg), void *arg) {
    assert(db && fn);
    assert(!db->in_tx); /* not reentrant */
    char last[ERRMSG_SIZE] = "";
    unsigned last_errno = 0;
    for (unsigned attempt = 0; attempt < SB_DB_TX_ATTEMPTS; attempt++) {
        if (attempt > 0)
            backoff(db, attempt);
        clear_error(db);
        int r = ensure_ready(db);
        if (r == -ENOTCONN) {
            snprintf(last, sizeof last, "%s", db->errmsg);
            last_errno = db->err_no;
            continue; /* the server may be restarting */
        }
        if (r < 0)
            return r;
        db->in_tx = true;
        db->attempt_retryable = false;
        r = query_const(db, "BEGIN");
        if (r == 0) {
            r = fn(db, arg);
            if (r > 0)
                r = 0;
        }
        if (r == 0 && !db->attempt_retryable) {
            if (query_const(db, "COMMIT") == 0) {
                db->in_tx = false;
                return 0;
            }
            if (db->broken) {
                db->in_tx = false;
                set_msg(db, db->err_no, "connection lost during COMMIT; the transaction may have been committed: %s",
                        mysql_error(db->my));
                return SB_DB_EUNKNOWN_COMMIT;
            }
            r = map_errno(db->err_no);
        }
        bool retry = db->attempt_retryable;
        snprintf(last, sizeof last, "%s", db->errmsg);
        last_errno = db->err_no;
        if (!db->broken)
            (void) query_const(db, "ROLLBACK");
        db->in_tx = false;
        if (!retry) {
            set_msg(db, last_errno, "%s", last);
            return r;
        }
    }
    set_msg(db, last_errno, "transaction failed %d times; last error: %s", SB_DB_TX_ATTEMPTS, last);
    return is_conn_lost(last_errno) ? -ENOTCONN : -EDEADLK;
}

int sb_db_exec_text(sb_db *db, const char *sql, size_t len) {
    assert(db && sql);
    clear_error(db);
    int r = ensure_ready(db);
    if (r < 0)
        return r;
    if (mysql_real_query(db->my, sql, len)) {
        unsigned e = mysql_errno(db->my);
        r = fail_my(db);
        if (is_conn_lost(e)) {
            set_msg(db, e, "connection lost while the statement ran; it may have been applied: %s",
                    mysql_error(db->my));
            return SB_DB_EUNKNOWN_COMMIT;
        }
        return r;
    }
    /* Discard every result, including those of a multi-statement text. */
    for (unsigned i = 0; i < 1000000; i++) {
        MYSQL_RES *res = mysql_store_result(db->my);
        if (res)
            mysql_free_result(res);
        else if (mysql_field_count(db->my) != 0)
            return fail_my(db);
        int next = mysql_next_result(db->my);
        if (next < 0)
            break;
        if (next > 0)
            return fail_my(db);
    }
    return 0;
}

static bool is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Skips a comment starting at p, if there is one. Returns the position after it, p when there is none, or NULL
 * for an unterminated block comment. */
static const char *skip_comment(const char *p, const char *end) {
    if (p < end && *p == '#') {
        while (p < end && *p != '\n')
            p++;
        return p;
    }
    if (end - p >= 2 && p[0] == '-' && p[1] == '-' && (end - p == 2 || is_blank(p[2]))) {
        while (p < end && *p != '\n')
            p++;
        return p;
    }
    if (end - p >= 2 && p[0] == '/' && p[1] == '*') {
        for (const char *q = p + 2; end - q >= 2; q++)
            if (q[0] == '*' && q[1] == '/')
                return q + 2;
        return NULL;
    }
    return p;
}

int sb_db_script_next(const char **pos, const char *end, char *delim, size_t delim_size, const char **ret_sql,
                      size_t *ret_len) {
    assert(pos && *pos && end && delim && delim_size >= 2 && ret_sql && ret_len);
    const char *p = *pos;
    for (;;) {
        /* Leading blank space and comments. */
        for (;;) {
            while (p < end && is_blank(*p))
                p++;
            const char *q = skip_comment(p, end);
            if (!q)
                return -EINVAL;
            if (q == p)
                break;
            p = q;
        }
        if (p >= end) {
            *pos = end;
            return 0;
        }
        /* A DELIMITER line, as understood by the mariadb client. */
        static const char kw[] = "DELIMITER";
        size_t kwlen = sizeof kw - 1;
        if ((size_t) (end - p) > kwlen && strncasecmp(p, kw, kwlen) == 0 && (p[kwlen] == ' ' || p[kwlen] == '\t')) {
            const char *q = p + kwlen;
            while (q < end && (*q == ' ' || *q == '\t'))
                q++;
            const char *d = q;
            while (q < end && !is_blank(*q))
                q++;
            size_t dlen = (size_t) (q - d);
            if (dlen == 0 || dlen + 1 > delim_size)
                return -EINVAL;
            memcpy(delim, d, dlen);
            delim[dlen] = '\0';
            while (q < end && *q != '\n')
                q++;
            p = q;
            continue;
        }
        break;
    }
    const char *start = p;
    size_t dlen = strlen(delim);
    const char *stop = end;
    const char *after = end;
    while (p < end) {
        char c = *p;
        if (c == '\'' || c == '"' || c == '`') {
            p++;
            while (p < end && *p != c) {
                if (*p == '\\' && c != '`')
                    p++; /* a backslash escapes the next character inside '' and "" */
                p++;
            }
            if (p >= end)
                return -EINVAL;
            p++;
            continue;
        }
        const char *q = skip_comment(p, end);
        if (!q)
            return -EINVAL;
        if (q != p) {
            p = q;
            continue;
        }
        if ((size_t) (end - p) >= dlen && memcmp(p, delim, dlen) == 0) {
            stop = p;
            after = p + dlen;
            break;
        }
        p++;
    }
    while (stop > start && is_blank(stop[-1]))
        stop--;
    *pos = after;
    if (stop == start)
        return sb_db_script_next(pos, end, delim, delim_size, ret_sql, ret_len); /* an empty statement: ";;" */
    *ret_sql = start;
    *ret_len = (size_t) (stop - start);
    return 1;
}

int sb_db_exec_script(sb_db *db, const char *script, size_t len, unsigned *ret_failed) {
    assert(db && script && ret_failed);
    const char *pos = script, *end = script + len;
    char delim[16] = ";";
    unsigned n = 0;
    for (;;) {
        const char *sql;
        size_t sql_len;
        int r = sb_db_script_next(&pos, end, delim, sizeof delim, &sql, &sql_len);
        if (r < 0) {
            set_msg(db, 0, "cannot split the script after statement %u: unterminated quote or comment, or a bad "
                           "DELIMITER line", n);
            *ret_failed = 0;
            return r;
        }
        if (r == 0)
            return 0;
        n++;
        r = sb_db_exec_text(db, sql, sql_len);
        if (r < 0) {
            *ret_failed = n;
            return r;
        }
    }
}
