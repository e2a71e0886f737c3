#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Key names are short by construction; the bound keeps the env name buffer and the edit distance table small. */
#define KEY_NAME_MAX 128
/* A file may not hold more lines than this; a bound on the only loop a file controls. */
#define FILE_LINES_MAX 100000

typedef struct entry {
    char *text;   /* the value as given, owned; NULL when unset */
    char *source; /* "default", "<file>:<line>", "env NAME", owned; NULL when unset */
    int file_line; /* line in the file that set it, for duplicate detection; 0 when not from the file */
    int64_t i;
    bool b;
} entry;

struct sb_config {
    const sb_config_key *schema;
    size_t n;
    entry *e;
};

/* Collects one line per problem into the caller's buffer, cutting silently when it is full. */
typedef struct errors {
    char *buf;
    size_t size;
    size_t len;
    int count;
} errors;

__attribute__((format(printf, 2, 3))) static void add_error(errors *er, const char *fmt, ...) {
    er->count++;
    if (!er->buf || er->size == 0 || er->len + 1 >= er->size)
        return;
    if (er->count > 1)
        er->buf[er->len++] = '\n';
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(er->buf + er->len, er->size - er->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        er->len += (size_t)n < er->size - er->len ? (size_t)n : er->size - er->len - 1;
    er->buf[er->len] = '\0';
}

static bool valid_key_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

static bool valid_key_name(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n >= KEY_NAME_MAX || s[0] == '.' || s[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!valid_key_char(s[i]))
            return false;
    return true;
}

int sb_config_env_name(const char *key_name, char *buf, size_t size) {
    size_t n = strlen(key_name);
    if (size < n + 4)
        return -ENAMETOOLONG;
    memcpy(buf, "SB_", 3);
    for (size_t i = 0; i < n; i++) {
        char c = key_name[i];
        buf[3 + i] = (c == '.' || c == '-') ? '_' : (char)toupper((unsigned char)c);
    }
    buf[3 + n] = '\0';
    return 0;
}

static ssize_t find_key(const sb_config_key *schema, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(schema[i].name, name) == 0)
            return (ssize_t)i;
    return -1;
}

/* Levenshtein distance, or SIZE_MAX for strings too long to bother with. */
static size_t edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la >= KEY_NAME_MAX || lb >= KEY_NAME_MAX)
        return SIZE_MAX;
    size_t row[KEY_NAME_MAX + 1];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The schema key an unknown name was probably meant to be, or NULL: a key that is the name under a section the
 * writer forgot, else the closest key by edit distance when close enough to be a typo. */
static const char *did_you_mean(const sb_config_key *schema, size_t n, const char *name) {
    size_t name_len = strlen(name);
    for (size_t i = 0; i < n; i++) {
        size_t kl = strlen(schema[i].name);
        if (kl > name_len + 1 && schema[i].name[kl - name_len - 1] == '.' &&
            strcmp(schema[i].name + kl - name_len, name) == 0)
            return schema[i].name;
    }
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(name, schema[i].name);
        if (d < best_d) {
            best_d = d;
            best = schema[i].name;
        }
    }
    size_t limit = name_len >= 10 ? 3 : 2;
    return best_d <= limit && best_d < name_len ? best : NULL;
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

/* Removes the quotes of a "quoted value" in place, honouring \" and \\. Returns false when it is malformed. */
static bool unquote(char *s) {
    size_t n = strlen(s);
    char *out = s;
    for (size_t i = 1; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n && (s[i + 1] == '"' || s[i + 1] == '\\')) {
            *out++ = s[++i];
        } else if (s[i] == '"') {
            if (i != n - 1)
                return false;
            *out = '\0';
            return true;
        } else
            *out++ = s[i];
    }
    return false;
}

static void entry_clear(entry *e) {
    free(e->text);
    free(e->source);
    *e = (entry){0};
}

static int entry_set(entry *e, const char *text, char *source_owned, int file_line) {
    char *t = strdup(text);
    if (!t || !source_owned) {
        free(t);
        free(source_owned);
        return -ENOMEM;
    }
    entry_clear(e);
    e->text = t;
    e->source = source_owned;
    e->file_line = file_line;
    return 0;
}

static const char *type_name(sb_config_type t) {
    switch (t) {
    case SB_CONFIG_STRING:
        return "string";
    case SB_CONFIG_INT:
        return "integer";
    case SB_CONFIG_BOOL:
        return "boolean";
    case SB_CONFIG_DURATION_MS:
        return "duration";
    case SB_CONFIG_PATH:
        return "path";
    }
    return "?";
}

static bool parse_int(const char *s, int64_t *ret) {
    if (!(*s == '-' || *s == '+' || (*s >= '0' && *s <= '9')))
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || !(end[-1] >= '0' && end[-1] <= '9'))
        return false;
    *ret = v;
    return true;
}

static bool parse_bool(const char *s, bool *ret) {
    static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *ret = true;
            return true;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *ret = false;
            return true;
        }
    }
    return false;
}

static bool parse_duration_ms(const char *s, int64_t *ret) {
    uint64_t v = 0;
    size_t i = 0;
    for (; s[i] >= '0' && s[i] <= '9'; i++) {
        if (v > (uint64_t)INT64_MAX / 10)
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (i == 0)
        return false;
    const char *unit = s + i;
    uint64_t mul;
    if (*unit == '\0' || strcmp(unit, "ms") == 0)
        mul = 1;
    else if (strcmp(unit, "s") == 0)
        mul = 1000;
    else if (strcmp(unit, "m") == 0)
        mul = 60 * 1000;
    else if (strcmp(unit, "h") == 0)
        mul = 3600 * 1000;
    else
        return false;
    if (v > (uint64_t)INT64_MAX / mul)
        return false;
    *ret = (int64_t)(v * mul);
    return true;
}

static bool has_control_chars(const char *s) {
    for (; *s; s++)
        if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
            return true;
    return false;
}

/* Checks and converts one value; reports a problem naming its source and key. */
static void check_value(const sb_config_key *k, entry *e, errors *er) {
    const char *v = k->secret ? "(secret)" : e->text;
    bool bounded = k->min != 0 || k->max != 0;

    if (has_control_chars(e->text)) {
        add_error(er, "%s: %s: value contains control characters", e->source, k->name);
        return;
    }
    switch (k->type) {
    case SB_CONFIG_INT:
    case SB_CONFIG_DURATION_MS: {
        bool ok = k->type == SB_CONFIG_INT ? parse_int(e->text, &e->i) : parse_duration_ms(e->text, &e->i);
        if (!ok) {
            if (k->type == SB_CONFIG_INT)
                add_error(er, "%s: %s: \"%s\" is not a valid integer", e->source, k->name, v);
            else
                add_error(er, "%s: %s: \"%s\" is not a valid duration (an integer with unit ms, s, m or h)",
                          e->source, k->name, v);
            return;
        }
        if (bounded && (e->i < k->min || e->i > k->max)) {
            if (k->type == SB_CONFIG_INT)
                add_error(er, "%s: %s: %s is out of range [%" PRId64 ", %" PRId64 "]", e->source, k->name, v, k->min,
                          k->max);
            else
                add_error(er, "%s: %s: %s is out of range [%" PRId64 "ms, %" PRId64 "ms]", e->source, k->name, v,
                          k->min, k->max);
        }
        return;
    }
    case SB_CONFIG_BOOL:
        if (!parse_bool(e->text, &e->b))
            add_error(er, "%s: %s: \"%s\" is not a valid boolean (true/false, yes/no, on/off, 1/0)", e->source,
                      k->name, v);
        return;
    case SB_CONFIG_PATH:
        if (e->text[0] == '\0') {
            add_error(er, "%s: %s: the path is empty", e->source, k->name);
            return;
        }
        /* fall through */
    case SB_CONFIG_STRING: {
        int64_t len = (int64_t)strlen(e->text);
        if (bounded && len < k->min)
            add_error(er, "%s: %s: too short (%" PRId64 " bytes, at least %" PRId64 ")", e->source, k->name, len,
                      k->min);
        else if (bounded && len > k->max)
            add_error(er, "%s: %s: too long (%" PRId64 " bytes, at most %" PRId64 ")", e->source, k->name, len,
                      k->max);
        return;
    }
    }
    add_error(er, "%s: %s: unknown type", e->source, k->name);
}

static int check_schema(const sb_config_key *schema, size_t n, errors *er) {
    for (size_t i = 0; i < n; i++) {
        const sb_config_key *k = &schema[i];
        if (!k->name || !valid_key_name(k->name)) {
            add_error(er, "schema: key %zu: invalid name \"%s\" (use [a-z0-9_.-])", i, k->name ? k->name : "(null)");
            continue;
        }
        if ((ssize_t)i != find_key(schema, n, k->name))
            add_error(er, "schema: %s: declared twice", k->name);
        if ((unsigned)k->type > SB_CONFIG_PATH)
            add_error(er, "schema: %s: unknown type %d", k->name, (int)k->type);
        if ((k->min != 0 || k->max != 0) && k->min > k->max)
            add_error(er, "schema: %s: min %" PRId64 " is above max %" PRId64, k->name, k->min, k->max);
    }
    return er->count ? -EINVAL : 0;
}

/* Reads the file into cfg, reporting syntax problems and unknown or repeated keys. Returns 0 (problems are in er),
 * or a negative errno when the file cannot be read at all. */
static int load_file(sb_config *cfg, const char *path, errors *er) {
    FILE *f = fopen(path, "re");
    if (!f) {
        int r = -errno;
        add_error(er, "cannot open config file \"%s\": %s", path, strerror(-r));
        return r;
    }

    char line[SB_CONFIG_VALUE_MAX + 2];
    char section[KEY_NAME_MAX] = "";
    int r = 0;
    for (int lineno = 1; lineno <= FILE_LINES_MAX && fgets(line, sizeof line, f); lineno++) {
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n') {
            add_error(er, "%s:%d: line too long (more than %d bytes)", path, lineno, SB_CONFIG_VALUE_MAX);
            int c;
            while ((c = fgetc(f)) != EOF && c != '\n')
                ;
            continue;
        }
        char *s = trim(line);
        if (*s == '\0' || *s == '#')
            continue;

        if (*s == '[') {
            size_t sl = strlen(s);
            if (s[sl - 1] != ']') {
                add_error(er, "%s:%d: a section must look like [name]", path, lineno);
                continue;
            }
            s[sl - 1] = '\0';
            char *name = trim(s + 1);
            if (*name != '\0' && !valid_key_name(name)) {
                add_error(er, "%s:%d: invalid section name \"%s\" (use [a-z0-9_.-])", path, lineno, name);
                snprintf(section, sizeof section, "(invalid)");
                continue;
            }
            snprintf(section, sizeof section, "%s", name);
            continue;
        }

        char *eq = strchr(s, '=');
        if (!eq) {
            add_error(er, "%s:%d: expected \"key = value\" or \"[section]\"", path, lineno);
            continue;
        }
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        if (*value == '"' && !unquote(value)) {
            add_error(er, "%s:%d: %s: unterminated quoted value", path, lineno, key);
            continue;
        }

        char full[2 * KEY_NAME_MAX + 2];
        snprintf(full, sizeof full, "%s%s%s", section, *section ? "." : "", key);
        if (strcmp(section, "(invalid)") == 0)
            continue; /* already reported at the section line */
        ssize_t idx = valid_key_name(key) ? find_key(cfg->schema, cfg->n, full) : -1;
        if (idx < 0) {
            const char *hint = did_you_mean(cfg->schema, cfg->n, full);
            if (hint)
                add_error(er, "%s:%d: unknown key \"%s\" (did you mean \"%s\"?)", path, lineno, full, hint);
            else
                add_error(er, "%s:%d: unknown key \"%s\"", path, lineno, full);
            continue;
        }
        entry *e = &cfg->e[idx];
        if (e->file_line > 0) {
            add_error(er, "%s:%d: %s is set twice (first at line %d)", path, lineno, full, e->file_line);
            continue;
        }
        char *src;
        if (asprintf(&src, "%s:%d", path, lineno) < 0)
            src = NULL;
        r = entry_set(e, value, src, lineno);
        if (r < 0)
            break;
    }
    if (r == 0 && ferror(f)) {
        r = -EIO;
        add_error(er, "cannot read config file \"%s\"", path);
    } else if (r == 0 && !feof(f)) {
        add_error(er, "%s: more than %d lines", path, FILE_LINES_MAX);
    }
    fclose(f);
    return r;
}

static int load_env(sb_config *cfg, char **envp, errors *er) {
    for (size_t i = 0; i < cfg->n; i++) {
        char name[KEY_NAME_MAX + 4];
        if (sb_config_env_name(cfg->schema[i].name, name, sizeof name) < 0)
            continue; /* impossible: check_schema bounds the names */
        size_t nl = strlen(name);
        for (char **p = envp; *p; p++) {
            if (strncmp(*p, name, nl) != 0 || (*p)[nl] != '=')
                continue;
            const char *value = *p + nl + 1;
            if (strlen(value) > SB_CONFIG_VALUE_MAX) {
                add_error(er, "env %s: %s: value too long (more than %d bytes)", name, cfg->schema[i].name,
                          SB_CONFIG_VALUE_MAX);
                break;
            }
            char *src;
            if (asprintf(&src, "env %s", name) < 0)
                src = NULL;
            int r = entry_set(&cfg->e[i], value, src, 0);
            if (r < 0)
                return r;
            break;
        }
    }
    return 0;
}

int sb_config_load(const sb_config_key *schema, size_t n_keys, const char *file_path, char **envp, sb_config **ret,
                   char *err, size_t err_size) {
    errors er = {.buf = err, .size = err_size};
    if (err && err_size)
        err[0] = '\0';

    int r = check_schema(schema, n_keys, &er);
    if (r < 0)
        return r;

    sb_config *cfg = calloc(1, sizeof *cfg);
    entry *entries = calloc(n_keys ? n_keys : 1, sizeof *entries);
    if (!cfg || !entries) {
        free(cfg);
        free(entries);
        add_error(&er, "out of memory");
        return -ENOMEM;
    }
    *cfg = (sb_config){.schema = schema, .n = n_keys, .e = entries};

    for (size_t i = 0; i < n_keys && r == 0; i++)
        if (schema[i].default_value)
            r = entry_set(&cfg->e[i], schema[i].default_value, strdup("default"), 0);
    if (r == 0 && file_path)
        r = load_file(cfg, file_path, &er);
    if (r == 0 && envp)
        r = load_env(cfg, envp, &er);
    if (r < 0) {
        if (r == -ENOMEM)
            add_error(&er, "out of memory");
        sb_config_free(cfg);
        return r;
    }

    for (size_t i = 0; i < n_keys; i++) {
        entry *e = &cfg->e[i];
        if (e->text) {
            check_value(&schema[i], e, &er);
        } else if (schema[i].required) {
            char env[KEY_NAME_MAX + 4];
            sb_config_env_name(schema[i].name, env, sizeof env);
            add_error(&er, "%s: required but not set (set it in the config file or in env %s)", schema[i].name, env);
        }
    }
    if (er.count > 0) {
        sb_config_free(cfg);
        return -EINVAL;
    }
    *ret = cfg;
    return 0;
}

void sb_config_free(sb_config *cfg) {
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n; i++)
        entry_clear(&cfg->e[i]);
    free(cfg->e);
    free(cfg);
}

/* Finds a key the caller named; a name outside the schema or of the wrong type is a bug in the caller, so abort. */
static const entry *lookup(const sb_config *cfg, const char *name, int type_a, int type_b) {
    ssize_t i = find_key(cfg->schema, cfg->n, name);
    if (i < 0) {
        fprintf(stderr, "sb_config: key \"%s\" is not in the schema\n", name);
        abort();
    }
    int t = (int)cfg->schema[i].type;
    if (type_a >= 0 && t != type_a && t != type_b) {
        fprintf(stderr, "sb_config: key \"%s\" is a %s\n", name, type_name(cfg->schema[i].type));
        abort();
    }
    return &cfg->e[i];
}

const char *sb_config_str(const sb_config *cfg, const char *name) {
    return lookup(cfg, name, SB_CONFIG_STRING, SB_CONFIG_PATH)->text;
}

int64_t sb_config_int(const sb_config *cfg, const char *name) {
    const entry *e = lookup(cfg, name, SB_CONFIG_INT, SB_CONFIG_DURATION_MS);
    return e->text ? e->i : 0;
}

bool sb_config_bool(const sb_config *cfg, const char *name) {
    const entry *e = lookup(cfg, name, SB_CONFIG_BOOL, SB_CONFIG_BOOL);
    return e->text ? e->b : false;
}

bool sb_config_is_set(const sb_config *cfg, const char *name) {
    return lookup(cfg, name, -1, -1)->text != NULL;
}

const char *sb_config_source(const sb_config *cfg, const char *name) {
    const entry *e = lookup(cfg, name, -1, -1);
    return e->source ? e->source : "unset";
}

/* Values with surrounding blanks, a leading quote, or nothing at all are quoted so they load back the same. */
static int dump_value(FILE *out, const char *v) {
    size_t n = strlen(v);
    bool quote = n == 0 || v[0] == '"' || v[0] == ' ' || v[0] == '\t' || v[n - 1] == ' ' || v[n - 1] == '\t';
    if (!quote)
        return fputs(v, out) < 0 ? -1 : 0;
    if (fputc('"', out) == EOF)
        return -1;
    for (; *v; v++) {
        if ((*v == '"' || *v == '\\') && fputc('\\', out) == EOF)
            return -1;
        if (fputc(*v, out) == EOF)
            return -1;
    }
    return fputc('"', out) == EOF ? -1 : 0;
}

int sb_config_dump(const sb_config *cfg, FILE *out) {
    for (size_t i = 0; i < cfg->n; i++) {
        const sb_config_key *k = &cfg->schema[i];
        const entry *e = &cfg->e[i];
        if (fprintf(out, "# %s (%s%s%s)\n", k->help ? k->help : k->name, type_name(k->type),
                    e->source ? ", from " : ", ", e->source ? e->source : "unset") < 0)
            return -EIO;
        if (!e->text) {
            if (fprintf(out, "# %s =\n", k->name) < 0)
                return -EIO;
            continue;
        }
        if (fprintf(out, "%s = ", k->name) < 0 || dump_value(out, k->secret ? "********" : e->text) < 0 ||
            fputc('\n', out) == EOF)
            return -EIO;
    }
    return fflush(out) == 0 ? 0 : -EIO;
}
