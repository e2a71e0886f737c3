/* pos_money: see pos-money.h. */
#include "pos-money.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "units.h"

int pos_spend_parse(const char *text, int64_t *ret_fen) {
        if (!text)
                return -EINVAL;
        char buf[SB_UNITS_PARSE_MAX + 1];
        const char *p = text;
        while (*p == ' ')
                p++;
        if (strncmp(p, "¥", strlen("¥")) == 0)
                p += strlen("¥");
        else if (strncmp(p, "￥", strlen("￥")) == 0)
                p += strlen("￥");
        while (*p == ' ')
                p++;
        size_t n = strlen(p);
        while (n > 0 && p[n - 1] == ' ')
                n--;
        if (n == 0 || n >= sizeof buf)
                return -EINVAL;
        memcpy(buf, p, n);
        buf[n] = '\0';
        /* "12." is what a cashier leaves after pressing the point: it means 12 yuan. */
        if (n >= 2 && buf[n - 1] == '.' && buf[n - 2] >= '0' && buf[n - 2] <= '9')
                buf[n - 1] = '\0';
        if (buf[0] == '-')
                return -EINVAL;
        int64_t fen;
        int r = sb_fen_parse(buf, &fen);
        if (r < 0)
                return r == -ERANGE ? -ERANGE : -EINVAL;
        if (fen <= 0 || fen > POS_SPEND_MAX_FEN)
                return -ERANGE;
        *ret_fen = fen;
        return 0;
}

static bool would_be_valid(const char *s) {
        size_t n = strlen(s);
        if (n == 0)
                return true;
        if (n >= POS_SPEND_TEXT_MAX)
                return false;
        const char *dot = strchr(s, '.');
        if (dot && (strchr(dot + 1, '.') || strlen(dot + 1) > 2 || dot == s))
                return false;
        /* No leading zero before another digit: "05" is a typo for "5". */
        if (s[0] == '0' && n > 1 && s[1] != '.')
                return false;
        if (n == 1 && s[0] == '0')
                return true;
        int64_t fen;
        int r = pos_spend_parse(s, &fen);
        /* Zero ("0.0") is a valid intermediate text, only too large is not. */
        if (r == -ERANGE) {
                char tmp[POS_SPEND_TEXT_MAX + 1];
                snprintf(tmp, sizeof tmp, "%s", s);
                size_t m = strlen(tmp);
                if (m && tmp[m - 1] == '.')
                        tmp[m - 1] = '\0';
                return sb_fen_parse(tmp, &fen) == 0 && fen == 0;
        }
        return r == 0;
}

bool pos_spend_key(char *buf, size_t n, const char *key) {
        if (!buf || !key || n < 2)
                return false;
        char next[POS_SPEND_TEXT_MAX + 4];
        size_t len = strlen(buf);
        if (strcmp(key, "CLEAR") == 0) {
                if (len == 0)
                        return false;
                buf[0] = '\0';
                return true;
        }
        if (strcmp(key, "BACK") == 0) {
                if (len == 0)
                        return false;
                buf[len - 1] = '\0';
                return true;
        }
        bool digits = strcmp(key, "00") == 0 || (strlen(key) == 1 && key[0] >= '0' && key[0] <= '9');
        if (!digits && strcmp(key, ".") != 0)
                return false;
        if (len + strlen(key) >= sizeof next || len + strlen(key) >= n)
                return false;
        if (strcmp(key, ".") == 0 && len == 0)
                snprintf(next, sizeof next, "0.");
        else
                snprintf(next, sizeof next, "%s%s", buf, key);
        if (strcmp(next, "00") == 0)
                snprintf(next, sizeof next, "0");
        if (!would_be_valid(next) || strcmp(next, buf) == 0 || strlen(next) >= n)
                return false;
        memcpy(buf, next, strlen(next) + 1);
        return true;
}

void pos_format_yuan(int64_t fen, char *buf, size_t n) {
        char num[SB_UNITS_FORMAT_MAX];
        if (fen < 0) {
                /* INT64_MIN has no positive twin; show it raw rather than overflow. */
                if (fen == INT64_MIN || sb_fen_format(-fen, num, sizeof num) < 0) {
                        snprintf(buf, n, "?");
                        return;
                }
                snprintf(buf, n, "-¥%s", num);
                return;
        }
        if (sb_fen_format(fen, num, sizeof num) < 0) {
                snprintf(buf, n, "?");
                return;
        }
        snprintf(buf, n, "¥%s", num);
}

void pos_format_units(int64_t units, char *buf, size_t n) {
        char num[SB_UNITS_FORMAT_MAX];
        if (sb_units_format(units, num, sizeof num) < 0) {
                snprintf(buf, n, "?");
                return;
        }
        snprintf(buf, n, "%s", num);
}
