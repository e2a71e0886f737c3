/* pos_journal: see pos-journal.h. */
#include "pos-journal.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define JOURNAL_MAGIC "PJ1"

struct pos_journal {
        char *path;
        int fd;
        pos_journal_sale *sales;
        size_t n_sales;
        size_t cap_sales;
};

const char *pos_sale_status_name(pos_sale_status s) {
        switch (s) {
        case POS_SALE_QUEUED: return "queued";
        case POS_SALE_SENT: return "sent";
        case POS_SALE_FAILED: return "failed";
        }
        return "unknown";
}

uint32_t pos_crc32(const void *data, size_t n) {
        const uint8_t *p = data;
        uint32_t crc = 0xFFFFFFFFu;
        for (size_t i = 0; i < n; i++) {
                crc ^= p[i];
                for (int k = 0; k < 8; k++)
                        crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
        }
        return crc ^ 0xFFFFFFFFu;
}

bool pos_sale_id_valid(const char *s) {
        if (!s)
                return false;
        size_t n = strlen(s);
        if (n == 0 || n > POS_SALE_ID_MAX)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
                      c == '-'))
                        return false;
        }
        return true;
}

bool pos_member_code_valid(const char *s) {
        if (!s)
                return false;
        size_t n = strlen(s);
        if (n == 0 || n > POS_MEMBER_CODE_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) s[i] < 0x21 || (unsigned char) s[i] > 0x7e)
                        return false;
        return true;
}

static bool reason_valid(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n >= POS_REASON_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
                        return false;
        return true;
}

int pos_sale_id_new(char buf[static 37]) {
        uint8_t b[16];
        size_t got = 0;
        /* getrandom() on the urandom pool blocks only before the pool is first seeded; a short read is retried. */
        for (int attempt = 0; got < sizeof b && attempt < 8; attempt++) {
                ssize_t r = getrandom(b + got, sizeof b - got, 0);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                got += (size_t) r;
        }
        if (got < sizeof b)
                return -EIO;
        b[6] = (uint8_t) ((b[6] & 0x0F) | 0x40); /* version 4 */
        b[8] = (uint8_t) ((b[8] & 0x3F) | 0x80); /* RFC 4122 variant */
        snprintf(buf, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
                 b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
        return 0;
}

static pos_journal_sale *find_sale(const pos_journal *j, const char *sale_id) {
        /* Newest first: the sale being marked is nearly always one of the last. */
        for (size_t i = j->n_sales; i > 0; i--)
                if (strcmp(j->sales[i - 1].sale_id, sale_id) == 0)
                        return &j->sales[i - 1];
        return NULL;
}

static int push_sale(pos_journal *j, const pos_journal_sale *s) {
        if (j->n_sales == j->cap_sales) {
                size_t cap = j->cap_sales ? j->cap_sales * 2 : 64;
                pos_journal_sale *n = realloc(j->sales, cap * sizeof *n);
                if (!n)
                        return -ENOMEM;
                j->sales = n;
                j->cap_sales = cap;
        }
        j->sales[j->n_sales++] = *s;
        return 0;
}

/* Parse one payload into the in-memory state. -EBADMSG when it makes no sense (it is then skipped). */
static int apply_payload(pos_journal *j, char *payload) {
        char *save = NULL;
        char *kind = strtok_r(payload, " ", &save);
        if (!kind)
                return -EBADMSG;
        if (strcmp(kind, "S") == 0) {
                char *id = strtok_r(NULL, " ", &save), *spend = strtok_r(NULL, " ", &save);
                char *cap = strtok_r(NULL, " ", &save), *off = strtok_r(NULL, " ", &save);
                char *code = strtok_r(NULL, " ", &save);
                if (!id || !spend || !cap || !off || !code || strtok_r(NULL, " ", &save))
                        return -EBADMSG;
                if (!pos_sale_id_valid(id) || !pos_member_code_valid(code) || find_sale(j, id))
                        return -EBADMSG;
                pos_journal_sale s = { 0 };
                char *end;
                errno = 0;
                s.spend_fen = strtoll(spend, &end, 10);
                if (errno || *end || s.spend_fen <= 0)
                        return -EBADMSG;
                s.captured_unix_ms = strtoll(cap, &end, 10);
                if (errno || *end)
                        return -EBADMSG;
                if (strcmp(off, "0") != 0 && strcmp(off, "1") != 0)
                        return -EBADMSG;
                s.offline = off[0] == '1';
                snprintf(s.sale_id, sizeof s.sale_id, "%s", id);
                snprintf(s.member_code, sizeof s.member_code, "%s", code);
                s.status = POS_SALE_QUEUED;
                s.status_unix_ms = s.captured_unix_ms;
                return push_sale(j, &s);
        }
        if (strcmp(kind, "M") == 0) {
                char *id = strtok_r(NULL, " ", &save), *st = strtok_r(NULL, " ", &save);
                char *ms = strtok_r(NULL, " ", &save), *reason = strtok_r(NULL, " ", &save);
                char *cv = strtok_r(NULL, " ", &save), *sp = strtok_r(NULL, " ", &save);
                if (!id || !st || !ms || !reason || !cv || !sp || strtok_r(NULL, " ", &save))
                        return -EBADMSG;
                pos_journal_sale *s = find_sale(j, id);
                if (!s || (strcmp(st, "1") != 0 && strcmp(st, "2") != 0) || !reason_valid(reason))
                        return -EBADMSG;
                char *end;
                errno = 0;
                int64_t t = strtoll(ms, &end, 10);
                if (errno || *end)
                        return -EBADMSG;
                int64_t cvu = strtoll(cv, &end, 10);
                if (errno || *end)
                        return -EBADMSG;
                int64_t spu = strtoll(sp, &end, 10);
                if (errno || *end)
                        return -EBADMSG;
                s->status = st[0] == '1' ? POS_SALE_SENT : POS_SALE_FAILED;
                s->status_unix_ms = t;
                snprintf(s->reason, sizeof s->reason, "%s", strcmp(reason, "-") == 0 ? "" : reason);
                s->member_cv_units = cvu;
                s->deposit_sp_units = spu;
                return 0;
        }
        return -EBADMSG;
}

/* Check one complete line (without its newline) and apply it. */
static int apply_line(pos_journal *j, char *line, size_t len) {
        /* "PJ1 xxxxxxxx " + payload */
        if (len < 14 || memcmp(line, JOURNAL_MAGIC " ", 4) != 0 || line[12] != ' ')
                return -EBADMSG;
        char hex[9];
        memcpy(hex, line + 4, 8);
        hex[8] = '\0';
        char *end;
        unsigned long want = strtoul(hex, &end, 16);
        if (*end)
                return -EBADMSG;
        char *payload = line + 13;
        size_t plen = len - 13;
        if (pos_crc32(payload, plen) != (uint32_t) want)
                return -EBADMSG;
        if (memchr(payload, '\0', plen))
                return -EBADMSG;
        return apply_payload(j, payload);
}

static int fsync_dir_of(const char *path) {
        char *copy = strdup(path);
        if (!copy)
                return -ENOMEM;
        int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        free(copy);
        if (fd < 0)
                return -errno;
        int r = fsync(fd) < 0 ? -errno : 0;
        close(fd);
        return r;
}

static int read_all(int fd, char **ret, size_t *ret_n) {
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        /* A line is at most POS_JOURNAL_LINE_MAX bytes, so this bounds what we read. */
        if ((uint64_t) st.st_size > (uint64_t) POS_JOURNAL_MAX_RECORDS * POS_JOURNAL_LINE_MAX)
                return -EFBIG;
        size_t n = (size_t) st.st_size;
        char *buf = malloc(n + 1);
        if (!buf)
                return -ENOMEM;
        size_t got = 0;
        while (got < n) {
                ssize_t r = pread(fd, buf + got, n - got, (off_t) got);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        int e = -errno;
                        free(buf);
                        return e;
                }
                if (r == 0)
                        break;
                got += (size_t) r;
        }
        buf[got] = '\0';
        *ret = buf;
        *ret_n = got;
        return 0;
}

int pos_journal_open(const char *path, pos_journal **ret, pos_journal_stats *ret_stats) {
        assert(path && ret);
        pos_journal_stats stats = { 0 };
        pos_journal *j = calloc(1, sizeof *j);
        if (!j)
                return -ENOMEM;
        j->fd = -1;
        j->path = strdup(path);
        int r = -ENOMEM;
        if (!j->path)
                goto fail;
        j->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (j->fd < 0) {
                r = -errno;
                goto fail;
        }
        char *buf = NULL;
        size_t n = 0;
        r = read_all(j->fd, &buf, &n);
        if (r < 0)
                goto fail;
        size_t pos = 0;
        while (pos < n) {
                char *nl = memchr(buf + pos, '\n', n - pos);
                if (!nl) {
                        /* A torn write: the crash came before the newline. The sale was never acknowledged to the
                         * cashier (the append had not returned), so cutting it off loses nothing promised. */
                        stats.torn_bytes = n - pos;
                        break;
                }
                size_t len = (size_t) (nl - (buf + pos));
                *nl = '\0';
                if (stats.records >= POS_JOURNAL_MAX_RECORDS) {
                        free(buf);
                        r = -EFBIG;
                        goto fail;
                }
                int a = len < POS_JOURNAL_LINE_MAX ? apply_line(j, buf + pos, len) : -EBADMSG;
                if (a == -ENOMEM) {
                        free(buf);
                        r = a;
                        goto fail;
                }
                if (a < 0)
                        stats.bad_records++;
                else
                        stats.records++;
                pos += len + 1;
        }
        free(buf);
        if (stats.torn_bytes > 0) {
                if (ftruncate(j->fd, (off_t) pos) < 0 || fsync(j->fd) < 0) {
                        r = -errno;
                        goto fail;
                }
        }
        if (ret_stats)
                *ret_stats = stats;
        *ret = j;
        return 0;
fail:
        pos_journal_close(j);
        return r;
}

void pos_journal_close(pos_journal *j) {
        if (!j)
                return;
        if (j->fd >= 0)
                close(j->fd);
        free(j->sales);
        free(j->path);
        free(j);
}

/* Format a record line into buf; returns its length or -ENOSPC. */
static int format_line(char *buf, size_t n, const char *payload) {
        int w = snprintf(buf, n, JOURNAL_MAGIC " %08" PRIx32 " %s\n", pos_crc32(payload, strlen(payload)), payload);
        if (w < 0 || (size_t) w >= n)
                return -ENOSPC;
        return w;
}

static int write_fully(int fd, const char *buf, size_t n) {
        size_t done = 0;
        while (done < n) {
                ssize_t w = write(fd, buf + done, n - done);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                done += (size_t) w;
        }
        return 0;
}

static int append_payload(pos_journal *j, const char *payload) {
        char line[POS_JOURNAL_LINE_MAX + 64];
        int len = format_line(line, sizeof line, payload);
        if (len < 0)
                return len;
        /* One write() of the whole line, then fsync: the record is on disk before the caller goes on. */
        int r = write_fully(j->fd, line, (size_t) len);
        if (r < 0)
                return r;
        if (fdatasync(j->fd) < 0)
                return -errno;
        return 0;
}

int pos_journal_append_sale(pos_journal *j, const char *sale_id, const char *member_code, int64_t spend_fen,
                            int64_t captured_unix_ms, bool offline) {
        assert(j);
        if (!pos_sale_id_valid(sale_id) || !pos_member_code_valid(member_code) || spend_fen <= 0)
                return -EINVAL;
        if (find_sale(j, sale_id))
                return -EEXIST;
        if (pos_journal_count_status(j, POS_SALE_QUEUED) >= POS_JOURNAL_MAX_QUEUED)
                return -ENOSPC;
        char payload[POS_JOURNAL_LINE_MAX];
        int w = snprintf(payload, sizeof payload, "S %s %" PRId64 " %" PRId64 " %d %s", sale_id, spend_fen,
                         captured_unix_ms, offline ? 1 : 0, member_code);
        if (w < 0 || (size_t) w >= sizeof payload)
                return -EINVAL;
        pos_journal_sale s = { 0 };
        snprintf(s.sale_id, sizeof s.sale_id, "%s", sale_id);
        snprintf(s.member_code, sizeof s.member_code, "%s", member_code);
        s.spend_fen = spend_fen;
        s.captured_unix_ms = captured_unix_ms;
        s.offline = offline;
        s.status = POS_SALE_QUEUED;
        s.status_unix_ms = captured_unix_ms;
        /* Make room in memory first, so that a record on disk always has its twin in memory. */
        int r = push_sale(j, &s);
        if (r < 0)
                return r;
        r = append_payload(j, payload);
        if (r < 0) {
                j->n_sales--;
                return r;
        }
        return 0;
}

int pos_journal_mark(pos_journal *j, const char *sale_id, pos_sale_status status, int64_t now_unix_ms,
                     const char *reason, int64_t member_cv_units, int64_t deposit_sp_units) {
        assert(j);
        if (status != POS_SALE_SENT && status != POS_SALE_FAILED)
                return -EINVAL;
        pos_journal_sale *s = sale_id ? find_sale(j, sale_id) : NULL;
        if (!s)
                return -ENOENT;
        if (s->status == status)
                return 0;
        if (s->status != POS_SALE_QUEUED)
                return -EINVAL;
        const char *rs = reason && *reason ? reason : "-";
        if (!reason_valid(rs))
                return -EINVAL;
        char payload[POS_JOURNAL_LINE_MAX];
        snprintf(payload, sizeof payload, "M %s %d %" PRId64 " %s %" PRId64 " %" PRId64, sale_id, (int) status,
                 now_unix_ms, rs, member_cv_units, deposit_sp_units);
        int r = append_payload(j, payload);
        if (r < 0)
                return r;
        s->status = status;
        s->status_unix_ms = now_unix_ms;
        snprintf(s->reason, sizeof s->reason, "%s", reason ? reason : "");
        s->member_cv_units = member_cv_units;
        s->deposit_sp_units = deposit_sp_units;
        return 0;
}

size_t pos_journal_count(const pos_journal *j) {
        return j->n_sales;
}

size_t pos_journal_count_status(const pos_journal *j, pos_sale_status status) {
        size_t n = 0;
        for (size_t i = 0; i < j->n_sales; i++)
                n += j->sales[i].status == status;
        return n;
}

int pos_journal_get(const pos_journal *j, size_t index, pos_journal_sale *ret) {
        if (index >= j->n_sales)
                return -ERANGE;
        *ret = j->sales[index];
        return 0;
}

int pos_journal_find(const pos_journal *j, const char *sale_id, pos_journal_sale *ret) {
        const pos_journal_sale *s = sale_id ? find_sale(j, sale_id) : NULL;
        if (!s)
                return -ENOENT;
        *ret = *s;
        return 0;
}

int pos_journal_next_queued(const pos_journal *j, pos_journal_sale *ret) {
        for (size_t i = 0; i < j->n_sales; i++)
                if (j->sales[i].status == POS_SALE_QUEUED) {
                        *ret = j->sales[i];
                        return 0;
                }
        return -ENOENT;
}

static int write_sale_records(int fd, const pos_journal_sale *s) {
        char payload[POS_JOURNAL_LINE_MAX], line[POS_JOURNAL_LINE_MAX + 64];
        snprintf(payload, sizeof payload, "S %s %" PRId64 " %" PRId64 " %d %s", s->sale_id, s->spend_fen,
                 s->captured_unix_ms, s->offline ? 1 : 0, s->member_code);
        int len = format_line(line, sizeof line, payload);
        if (len < 0)
                return len;
        int r = write_fully(fd, line, (size_t) len);
        if (r < 0 || s->status == POS_SALE_QUEUED)
                return r;
        snprintf(payload, sizeof payload, "M %s %d %" PRId64 " %s %" PRId64 " %" PRId64, s->sale_id,
                 (int) s->status, s->status_unix_ms, s->reason[0] ? s->reason : "-", s->member_cv_units,
                 s->deposit_sp_units);
        len = format_line(line, sizeof line, payload);
        if (len < 0)
                return len;
        return write_fully(fd, line, (size_t) len);
}

int pos_journal_compact(pos_journal *j, int64_t keep_after_unix_ms) {
        assert(j);
        size_t plen = strlen(j->path);
        char *tmp = malloc(plen + 8);
        if (!tmp)
                return -ENOMEM;
        snprintf(tmp, plen + 8, "%s.new", j->path);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        int r = 0;
        if (fd < 0) {
                r = -errno;
                free(tmp);
                return r;
        }
        size_t kept = 0, dropped = 0;
        for (size_t i = 0; i < j->n_sales && r == 0; i++) {
                const pos_journal_sale *s = &j->sales[i];
                if (s->status != POS_SALE_QUEUED && s->captured_unix_ms < keep_after_unix_ms) {
                        dropped++;
                        continue;
                }
                r = write_sale_records(fd, s);
                kept++;
        }
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        close(fd);
        if (r == 0 && rename(tmp, j->path) < 0)
                r = -errno;
        if (r < 0) {
                unlink(tmp);
                free(tmp);
                return r;
        }
        free(tmp);
        r = fsync_dir_of(j->path);
        if (r < 0)
                return r;
        /* From here on the new file is the journal: reopen it for appending and keep only what it holds. */
        int nfd = open(j->path, O_RDWR | O_APPEND | O_CLOEXEC);
        if (nfd < 0)
                return -errno;
        close(j->fd);
        j->fd = nfd;
        size_t w = 0;
        for (size_t i = 0; i < j->n_sales; i++) {
                const pos_journal_sale *s = &j->sales[i];
                if (s->status != POS_SALE_QUEUED && s->captured_unix_ms < keep_after_unix_ms)
                        continue;
                j->sales[w++] = *s;
        }
        assert(w == kept);
        j->n_sales = w;
        return (int) dropped;
}
