/* sb_config: a service's settings, declared as a schema, read from a file and the environment, validated at once.
 *
 * A service lists its keys in a static array of sb_config_key. sb_config_load() starts from the defaults, applies
 * the file, then the environment (key "db.socket" is overridden by SB_DB_SOCKET: upper case, dots and dashes become
 * underscores, prefix SB_), and checks every value against its type and range before returning. Every problem is
 * reported, each naming the key, where the value came from (file:line, env VAR, default) and what is wrong.
 *
 * File format, one setting per line:
 *     # a comment (only whole lines; '#' inside a value is part of the value)
 *     listen_port = 50052
 *     [db]                      # keys below are prefixed: this is db.socket
 *     socket = /run/mysqld.sock
 *     password = "  quoted keeps spaces, \" and \\ escaped  "
 *     []                        # back to no prefix
 *
 * Value syntax by type: INT a decimal integer (optional sign); BOOL true/false, yes/no, on/off, 1/0;
 * DURATION_MS an integer with unit ms, s, m or h (a bare integer is milliseconds); STRING and PATH any text
 * (a PATH must not be empty). min/max bound INT and DURATION_MS values (in milliseconds) and the byte length of
 * STRING and PATH values; both 0 means no bound.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Longest accepted line in a file and longest value from any source. */
#define SB_CONFIG_VALUE_MAX 4096

typedef enum sb_config_type {
    SB_CONFIG_STRING,
    SB_CONFIG_INT,
    SB_CONFIG_BOOL,
    SB_CONFIG_DURATION_MS,
    SB_CONFIG_PATH,
} sb_config_type;

typedef struct sb_config_key {
    const char *name;          /* lower case [a-z0-9_.-], e.g. "db.socket", "listen_port" */
    sb_config_type type;
    const char *default_value; /* text as it would appear in the file, or NULL for no default */
    int64_t min, max;          /* see above; both 0 means unbounded */
    bool required;             /* loading fails when no source sets it (a default counts) */
    bool secret;               /* never echoed: masked in dumps and in error messages */
    const char *help;          /* one line, shown by sb_config_dump() */
} sb_config_key;

typedef struct sb_config sb_config;

/* Loads the configuration for schema (n_keys entries, which must outlive the result). file_path may be NULL for no
 * file; envp is a NULL-terminated "NAME=value" array such as `environ`, or NULL to ignore the environment. Other
 * SB_* variables that match no key are ignored, since several programs share the environment.
 *
 * On success returns 0 and stores a new configuration in *ret (free it with sb_config_free()). On failure returns
 * a negative errno (-EINVAL for invalid content, or the error opening/reading the file) and writes to err (size
 * err_size, always NUL-terminated when err_size > 0) one line per problem found, e.g.
 *     wallet.conf:7: unknown key "db.sockt" (did you mean "db.socket"?)
 *     env SB_LISTEN_PORT: listen_port: "70000" is out of range [1, 65535]
 *     db.socket: required but not set (set it in the config file or in env SB_DB_SOCKET)
 * *ret is untouched on failure. A schema that is itself wrong (bad or duplicate names, invalid default) also gives
 * -EINVAL with a message. */
int sb_config_load(const sb_config_key *schema, size_t n_keys, const char *file_path, char **envp, sb_config **ret,
                   char *err, size_t err_size);

/* Frees a configuration; NULL is allowed. Strings returned by the getters die with it. */
void sb_config_free(sb_config *cfg);

/* The getters abort the process when name is not in the schema or has another type: that is a programmer error.
 *
 * sb_config_str: the value of a STRING or PATH key, owned by cfg, or NULL when it is unset (no default, not
 * required, not given). */
const char *sb_config_str(const sb_config *cfg, const char *name);

/* The value of an INT or DURATION_MS key (milliseconds), or 0 when unset. */
int64_t sb_config_int(const sb_config *cfg, const char *name);

/* The value of a BOOL key, or false when unset. */
bool sb_config_bool(const sb_config *cfg, const char *name);

/* Whether any source (default, file, environment) set this key. Aborts when name is not in the schema. */
bool sb_config_is_set(const sb_config *cfg, const char *name);

/* Where the value of name came from: "default", "<file>:<line>", "env SB_..." or "unset". Owned by cfg. */
const char *sb_config_source(const sb_config *cfg, const char *name);

/* Writes every key in schema order for --print-config, in the file format so it can be loaded again: a "# help
 * (source)" comment, then `key = value` (commented out when unset). Secret values are printed as "********".
 * Returns 0, or -EIO when writing to out failed. */
int sb_config_dump(const sb_config *cfg, FILE *out);

/* The environment variable that overrides key_name, e.g. "db.socket" -> "SB_DB_SOCKET", written to buf (size bytes,
 * NUL-terminated). Returns 0, or -ENAMETOOLONG when it does not fit. */
int sb_config_env_name(const char *key_name, char *buf, size_t size);
