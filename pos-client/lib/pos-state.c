/* pos_state: see pos-state.h. */
#include "pos-state.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATE_FILE_MAX (64 * 1024)

bool pos_state_paired(const pos_state *st) {
        return st->terminal_refresh[0] != '\0' && st->terminal_id != 0;
}

bool pos_address_valid(const char *addr) {
        if (!addr)
                return false;
        size_t n = strlen(addr);
        if (n < 3 || n >= POS_ADDR_MAX)
                return false;
        const char *colon = strrchr(addr, ':');
        if (!colon || colon == addr || colon[1] == '\0')
                return false;
        long port = 0;
        for (const char *p = colon + 1; *p; p++) {
                if (*p < '0' || *p > '9' || port > 65535)
                        return false;
                port = port * 10 + (*p - '0');
        }
        if (port < 1 || port > 65535)
                return false;
        if (addr[0] == '[')
                return colon[-1] == ']' && colon - addr > 2;
        for (const char *p = addr; p < colon; p++) {
                char c = *p;
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                      c == '-' || c == '_'))
                        return false;
        }
        return true;
}

static int set_str(char *dst, size_t n, const char *v) {
        if (strlen(v) >= n)
                return -EBADMSG;
        memcpy(dst, v, strlen(v) + 1);
        return 0;
}

static int set_u64(uint64_t *dst, const char *v) {
        if (!*v || *v == '-')
                return -EBADMSG;
        char *end;
        errno = 0;
        unsigned long long x = strtoull(v, &end, 10);
        if (errno || *end)
                return -EBADMSG;
        *dst = x;
        return 0;
}

static int apply(pos_state *st, const char *key, const char *v) {
        if (strcmp(key, "server") == 0)
                return set_str(st->server, sizeof st->server, v);
        if (strcmp(key, "merchant_server") == 0)
                return set_str(st->merchant_server, sizeof st->merchant_server, v);
        if (strcmp(key, "tls_ca_path") == 0)
                return set_str(st->tls_ca_path, sizeof st->tls_ca_path, v);
        if (strcmp(key, "terminal_id") == 0)
                return set_u64(&st->terminal_id, v);
        if (strcmp(key, "merchant_id") == 0)
                return set_u64(&st->merchant_id, v);
        if (strcmp(key, "merchant_name") == 0)
                return set_str(st->merchant_name, sizeof st->merchant_name, v);
        if (strcmp(key, "terminal_label") == 0)
                return set_str(st->terminal_label, sizeof st->terminal_label, v);
        if (strcmp(key, "terminal_refresh") == 0)
                return set_str(st->terminal_refresh, sizeof st->terminal_refresh, v);
        return -EBADMSG;
}

int pos_state_load(const char *path, pos_state *ret) {
        assert(path && ret);
        FILE *f = fopen(path, "re");
        if (!f)
                return -errno;
        pos_state st = { 0 };
        char line[POS_TOKEN_MAX + 64];
        size_t total = 0;
        int r = 0;
        while (fgets(line, sizeof line, f)) {
                size_t n = strlen(line);
                total += n;
                if (total > STATE_FILE_MAX) {
                        r = -EFBIG;
                        break;
                }
                if (n == 0 || line[n - 1] != '\n') {
                        r = -EBADMSG;
                        break;
                }
                line[n - 1] = '\0';
                if (line[0] == '\0' || line[0] == '#')
                        continue;
                char *eq = strchr(line, '=');
                if (!eq) {
                        r = -EBADMSG;
                        break;
                }
                *eq = '\0';
                r = apply(&st, line, eq + 1);
                if (r < 0)
                        break;
        }
        if (r == 0 && ferror(f))
                r = -EIO;
        fclose(f);
        if (r < 0)
                return r;
        *ret = st;
        return 0;
}

static bool one_line(const char *s) {
        return !strchr(s, '\n') && !strchr(s, '\r');
}

int pos_state_save(const char *path, const pos_state *st) {
        assert(path && st);
        const char *strs[] = { st->server, st->merchant_server, st->tls_ca_path, st->merchant_name,
                               st->terminal_label, st->terminal_refresh };
        for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
                if (!one_line(strs[i]))
                        return -EINVAL;
        size_t plen = strlen(path);
        char *tmp = malloc(plen + 8);
        if (!tmp)
                return -ENOMEM;
        snprintf(tmp, plen + 8, "%s.new", path);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) {
                int e = -errno;
                free(tmp);
                return e;
        }
        FILE *f = fdopen(fd, "w");
        if (!f) {
                int e = -errno;
                close(fd);
                unlink(tmp);
                free(tmp);
                return e;
        }
        fprintf(f,
                "# sharebuy POS terminal state; the refresh token is this terminal's credential: keep it private\n"
                "server=%s\nmerchant_server=%s\ntls_ca_path=%s\nterminal_id=%" PRIu64 "\nmerchant_id=%" PRIu64
                "\nmerchant_name=%s\nterminal_label=%s\nterminal_refresh=%s\n",
                st->server, st->merchant_server, st->tls_ca_path, st->terminal_id, st->merchant_id,
                st->merchant_name, st->terminal_label, st->terminal_refresh);
        int r = 0;
        if (fflush(f) != 0 || fsync(fileno(f)) < 0)
                r = -errno;
        if (fclose(f) != 0 && r == 0)
                r = -errno;
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                unlink(tmp);
                free(tmp);
                return r;
        }
        free(tmp);
        char *copy = strdup(path);
        if (!copy)
                return -ENOMEM;
        int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        free(copy);
        if (dfd >= 0) {
                if (fsync(dfd) < 0)
                        r = -errno;
                close(dfd);
        }
        return r;
}
