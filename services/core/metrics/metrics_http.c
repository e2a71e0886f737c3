/* The /metrics HTTP server: one thread, one poll() loop, a fixed table of connections, each with a bounded request
 * buffer and a deadline, so slow, partial or oversized requests cost a slot for a few seconds at most. */
#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum {
    HTTP_CLIENTS_MAX = 16,      /* connections served at once; others wait in the listen backlog */
    HTTP_REQUEST_MAX = 8192,    /* bytes of request head accepted */
    HTTP_DEADLINE_MS = 5000,    /* the whole exchange, from accept to the last byte sent */
    HTTP_DRAIN_MS = 500,        /* after responding, how long unread input is discarded before closing */
    HTTP_BACKLOG = 64,
};

typedef enum conn_state { CONN_FREE, CONN_READING, CONN_WRITING, CONN_DRAINING } conn_state;

typedef struct conn {
    conn_state state;
    int fd;
    int64_t deadline_ms;
    size_t req_len;
    char req[HTTP_REQUEST_MAX];
    char *resp; /* malloc'd head plus body */
    size_t resp_len, resp_off;
} conn;

struct sb_metrics_http {
    sb_metrics_registry *reg;
    int listen_fd;
    int wake_fds[2]; /* a byte written to [1] tells the thread to stop */
    int port;
    pthread_t thread;
    conn conns[HTTP_CLIENTS_MAX];
};

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void conn_close(conn *c) {
    if (c->fd >= 0)
        close(c->fd);
    free(c->resp);
    c->fd = -1;
    c->resp = NULL;
    c->state = CONN_FREE;
}

/* Prepares the response; when the body cannot be built the client gets a 500 instead. */
static void respond(conn *c, int status, const char *reason, const char *extra_headers, const char *content_type,
                    const char *body, size_t body_len, bool head_only) {
    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sConnection: close\r\n\r\n", status,
                     reason, content_type, body_len, extra_headers);
    size_t hl = (size_t)n, total = hl + (head_only ? 0 : body_len);
    c->resp = malloc(total);
    if (!c->resp) {
        conn_close(c);
        return;
    }
    memcpy(c->resp, head, hl);
    if (!head_only)
        memcpy(c->resp + hl, body, body_len);
    c->resp_len = total;
    c->resp_off = 0;
    c->state = CONN_WRITING;
}

static void respond_text(conn *c, int status, const char *reason, const char *extra_headers, const char *body) {
    respond(c, status, reason, extra_headers, "text/plain; charset=utf-8", body, strlen(body), false);
}

/* Handles a complete request head in c->req. Only the request line matters: every response closes the
 * connection, and GET has no body to read. */
static void handle_request(sb_metrics_http *h, conn *c) {
    char *line_end = memchr(c->req, '\n', c->req_len);
    size_t line_len = line_end ? (size_t)(line_end - c->req) : 0;
    if (line_len > 0 && c->req[line_len - 1] == '\r')
        line_len--;
    char line[HTTP_REQUEST_MAX + 1];
    memcpy(line, c->req, line_len);
    line[line_len] = '\0';

    char *sp1 = strchr(line, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || sp1 == line || sp2 == sp1 + 1 || strchr(sp2 + 1, ' ') || strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
        respond_text(c, 400, "Bad Request", "", "bad request\n");
        return;
    }
    *sp1 = *sp2 = '\0';
    const char *method = line, *target = sp1 + 1;
    bool head = strcmp(method, "HEAD") == 0;
    if (!head && strcmp(method, "GET") != 0) {
        respond_text(c, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n", "method not allowed\n");
        return;
    }
    size_t path_len = strcspn(target, "?");
    if (path_len != strlen("/metrics") || strncmp(target, "/metrics", path_len) != 0) {
        respond_text(c, 404, "Not Found", "", "not found; metrics are at /metrics\n");
        return;
    }
    char *text;
    size_t len;
    if (sb_metrics_render(h->reg, &text, &len) < 0) {
        respond_text(c, 500, "Internal Server Error", "", "out of memory\n");
        return;
    }
    respond(c, 200, "OK", "", "text/plain; version=0.0.4; charset=utf-8", text, len, head);
    free(text);
}

static bool head_complete(const conn *c) {
    for (size_t i = 0; i + 1 < c->req_len; i++) {
        if (c->req[i] == '\n' && c->req[i + 1] == '\n')
            return true;
        if (i + 3 < c->req_len && memcmp(c->req + i, "\r\n\r\n", 4) == 0)
            return true;
    }
    return false;
}

static void on_readable(sb_metrics_http *h, conn *c) {
    if (c->state == CONN_DRAINING) {
        char sink[4096];
        ssize_t n = recv(c->fd, sink, sizeof sink, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            conn_close(c);
        return;
    }
    ssize_t n = recv(c->fd, c->req + c->req_len, sizeof c->req - c->req_len, 0);
    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR)
            conn_close(c);
        return;
    }
    if (n == 0) {
        conn_close(c); /* the client gave up before finishing its request */
        return;
    }
    c->req_len += (size_t)n;
    if (head_complete(c))
        handle_request(h, c);
    else if (c->req_len == sizeof c->req)
        respond_text(c, 431, "Request Header Fields Too Large", "", "request too large\n");
}

static void on_writable(conn *c) {
    ssize_t n = send(c->fd, c->resp + c->resp_off, c->resp_len - c->resp_off, MSG_NOSIGNAL);
    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR)
            conn_close(c);
        return;
    }
    c->resp_off += (size_t)n;
    if (c->resp_off < c->resp_len)
        return;
    /* Closing with unread input would reset the connection and could destroy the response in flight, so signal the
     * end, then discard what the client still sends for a short while. */
    shutdown(c->fd, SHUT_WR);
    free(c->resp);
    c->resp = NULL;
    c->state = CONN_DRAINING;
    int64_t drain_deadline = now_ms() + HTTP_DRAIN_MS;
    if (drain_deadline < c->deadline_ms)
        c->deadline_ms = drain_deadline;
}

static void accept_clients(sb_metrics_http *h) {
    for (size_t i = 0; i < HTTP_CLIENTS_MAX; i++) {
        if (h->conns[i].state != CONN_FREE)
            continue;
        int fd = accept4(h->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN, or a connection that died in the backlog: either way nothing more to do now */
        h->conns[i] = (conn){.state = CONN_READING, .fd = fd, .deadline_ms = now_ms() + HTTP_DEADLINE_MS};
    }
}

static void *server_thread(void *arg) {
    sb_metrics_http *h = arg;
    struct pollfd pfds[2 + HTTP_CLIENTS_MAX];
    conn *owners[2 + HTTP_CLIENTS_MAX];

    for (;;) {
        int64_t now = now_ms(), next_deadline = -1;
        size_t n = 0, active = 0;
        pfds[n++] = (struct pollfd){.fd = h->wake_fds[0], .events = POLLIN};
        for (size_t i = 0; i < HTTP_CLIENTS_MAX; i++) {
            conn *c = &h->conns[i];
            if (c->state == CONN_FREE)
                continue;
            if (now >= c->deadline_ms) {
                conn_close(c); /* too slow: a slot is worth more than a late scrape */
                continue;
            }
            active++;
            if (next_deadline < 0 || c->deadline_ms < next_deadline)
                next_deadline = c->deadline_ms;
            owners[n] = c;
            pfds[n++] = (struct pollfd){.fd = c->fd, .events = c->state == CONN_WRITING ? POLLOUT : POLLIN};
        }
        size_t listen_idx = 0;
        if (active < HTTP_CLIENTS_MAX) {
            listen_idx = n;
            pfds[n++] = (struct pollfd){.fd = h->listen_fd, .events = POLLIN};
        }

        int timeout = next_deadline < 0 ? -1 : (int)(next_deadline - now);
        int r = poll(pfds, n, timeout);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pfds[0].revents)
            break;
        for (size_t i = 1; i < n; i++) {
            if (i == listen_idx || !pfds[i].revents)
                continue;
            conn *c = owners[i];
            if (c->state != CONN_WRITING)
                on_readable(h, c); /* also for POLLHUP/POLLERR: recv() then reports the end or the error */
            else if (pfds[i].revents & POLLOUT)
                on_writable(c);
            else
                conn_close(c);
        }
        if (listen_idx && pfds[listen_idx].revents)
            accept_clients(h);
    }
    return NULL;
}

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t size, const char *fmt, ...) {
    if (!err || size == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, size, fmt, ap);
    va_end(ap);
}

int sb_metrics_http_start(sb_metrics_registry *reg, const char *bind_addr, int port, sb_metrics_http **ret,
                          char *err, size_t err_size) {
    if (!reg || !bind_addr || port < 0 || port > 65535) {
        set_err(err, err_size, "metrics http: invalid arguments");
        return -EINVAL;
    }
    char port_text[8];
    snprintf(port_text, sizeof port_text, "%d", port);
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC,
        .ai_socktype = SOCK_STREAM,
        .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV,
    };
    struct addrinfo *ai = NULL;
    int gai = getaddrinfo(bind_addr, port_text, &hints, &ai);
    if (gai != 0) {
        set_err(err, err_size, "metrics http: \"%s\" is not a numeric IP address: %s", bind_addr, gai_strerror(gai));
        return -EINVAL;
    }

    sb_metrics_http *h = calloc(1, sizeof *h);
    if (!h) {
        freeaddrinfo(ai);
        set_err(err, err_size, "metrics http: out of memory");
        return -ENOMEM;
    }
    h->reg = reg;
    h->listen_fd = h->wake_fds[0] = h->wake_fds[1] = -1;
    for (size_t i = 0; i < HTTP_CLIENTS_MAX; i++)
        h->conns[i] = (conn){.state = CONN_FREE, .fd = -1};

    int r = 0;
    const char *what = "socket";
    int one = 1;
    h->listen_fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (h->listen_fd < 0 || setsockopt(h->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        (what = "bind", bind(h->listen_fd, ai->ai_addr, ai->ai_addrlen) < 0) ||
        (what = "listen", listen(h->listen_fd, HTTP_BACKLOG) < 0) ||
        (what = "pipe", pipe2(h->wake_fds, O_CLOEXEC | O_NONBLOCK) < 0))
        r = -errno;
    freeaddrinfo(ai);
    if (r < 0) {
        set_err(err, err_size, "metrics http: %s %s port %d: %s", what, bind_addr, port, strerror(-r));
        goto fail;
    }

    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(h->listen_fd, (struct sockaddr *)&ss, &sl) < 0) {
        r = -errno;
        set_err(err, err_size, "metrics http: getsockname: %s", strerror(-r));
        goto fail;
    }
    h->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                       : ntohs(((struct sockaddr_in *)&ss)->sin_port);

    /* The thread inherits a full signal mask, so SIGTERM and friends reach the service's own handling. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    r = -pthread_create(&h->thread, NULL, server_thread, h);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r < 0) {
        set_err(err, err_size, "metrics http: cannot start thread: %s", strerror(-r));
        goto fail;
    }
    *ret = h;
    return 0;

fail:
    if (h->listen_fd >= 0)
        close(h->listen_fd);
    if (h->wake_fds[0] >= 0)
        close(h->wake_fds[0]);
    if (h->wake_fds[1] >= 0)
        close(h->wake_fds[1]);
    free(h);
    return r;
}

int sb_metrics_http_port(const sb_metrics_http *http) {
    return http->port;
}

void sb_metrics_http_stop(sb_metrics_http *http) {
    if (!http)
        return;
    char b = 1;
    while (write(http->wake_fds[1], &b, 1) < 0 && errno == EINTR)
        ;
    pthread_join(http->thread, NULL);
    for (size_t i = 0; i < HTTP_CLIENTS_MAX; i++)
        if (http->conns[i].state != CONN_FREE)
            conn_close(&http->conns[i]);
    close(http->listen_fd);
    close(http->wake_fds[0]);
    close(http->wake_fds[1]);
    free(http);
}
