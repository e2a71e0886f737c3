/* pos_state: what a paired terminal remembers between starts.
 *
 * The server address(es), the optional TLS root certificate, and the terminal's credential from PairTerminal (its
 * refresh token) with the ids and names the header shows. Cashier sessions are not kept: every start goes to the
 * sign-in screen. The file is "key=value" lines, written atomically (temporary file, fsync, rename, fsync of the
 * folder) with mode 0600, since the refresh token is a credential.
 *
 * Functions return 0 or a negative errno; ret_* is written only on success. Nothing here logs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POS_ADDR_MAX 256
#define POS_PATH_MAX 1024
#define POS_NAME_MAX 128
#define POS_TOKEN_MAX 2048

typedef struct pos_state {
        char server[POS_ADDR_MAX];          /* "host:port" of identity, or of a proxy serving every service */
        char merchant_server[POS_ADDR_MAX]; /* "host:port" of merchant; "" = the same as server */
        char tls_ca_path[POS_PATH_MAX];     /* PEM roots; "" = plain text (loopback or a trusted LAN) */
        uint64_t terminal_id;
        uint64_t merchant_id;
        char merchant_name[POS_NAME_MAX];
        char terminal_label[POS_NAME_MAX];
        char terminal_refresh[POS_TOKEN_MAX]; /* the terminal's credential; "" = not paired */
} pos_state;

/* Read the state file. -ENOENT when there is none (first start); -EBADMSG for a line that is not key=value, an
 * unknown key, a value too long or an id that is not a number; -EFBIG for a file over 64 KiB. */
int pos_state_load(const char *path, pos_state *ret);

/* Write the state file atomically (see above). -EINVAL when a value holds a newline. */
int pos_state_save(const char *path, const pos_state *st);

/* True once PairTerminal succeeded and its credential is kept. */
bool pos_state_paired(const pos_state *st);

/* True for "host:port" with a port 1..65535 (host a name, IPv4, or [IPv6]); no scheme, no path, no spaces. */
bool pos_address_valid(const char *addr);
