/* Tests of services/core/rpc: a real server on loopback and the real client, no mocks. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "echo.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "rpc.h"

static int failures;

#define CHECK(cond)                                                                                                   \
        do {                                                                                                          \
                if (!(cond)) {                                                                                        \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                      \
                        failures++;                                                                                   \
                }                                                                                                     \
        } while (0)

#define CHECK_STATUS(got, want, msg)                                                                                  \
        do {                                                                                                          \
                if ((got) != (want)) {                                                                                \
                        fprintf(stderr, "%s:%d: status %s, wanted %s (message: %s)\n", __FILE__, __LINE__,           \
                                sb_status_name(got), sb_status_name(want), msg);                                      \
                        failures++;                                                                                   \
                }                                                                                                     \
        } while (0)

static void sleep_ms(int ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };
        nanosleep(&ts, NULL);
}

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- the echo service --- */

static sb_status echo_handler(sb_call *call, const ProtobufCMessage *req_, ProtobufCMessage *resp_) {
        const Sbtest__V1__EchoRequest *req = (const Sbtest__V1__EchoRequest *)req_;
        Sbtest__V1__EchoReply *resp = (Sbtest__V1__EchoReply *)resp_;
        for (int waited = 0; waited < req->sleep_ms; waited += 10) {
                if (sb_call_remaining_ms(call) == 0)
                        return sb_call_fail(call, SB_DEADLINE_EXCEEDED, "gave up after %d ms: deadline", waited);
                sleep_ms(10);
        }
        if (req->fail_code && strcmp(req->text, "with-reason") == 0)
                return sb_call_fail_reason(call, (sb_status)req->fail_code, "REASON_DEPOSIT_TOO_SMALL", "%s",
                                           req->fail_message);
        if (req->fail_code)
                return sb_call_fail(call, (sb_status)req->fail_code, "%s", req->fail_message);
        resp->text = req->text;  /* the request's memory lives until the reply is packed */
        resp->bearer = sb_call_bearer(call) ? sb_call_strdup(call, sb_call_bearer(call)) : "";
        resp->request_id = sb_call_strdup(call, sb_call_request_id(call));
        resp->peer = sb_call_strdup(call, sb_call_peer(call));
        resp->remaining_ms = sb_call_remaining_ms(call);
        resp->saw_deadline = resp->remaining_ms != INT64_MAX;
        if (req->metadata_key[0]) {
                const char *v = sb_call_metadata(call, req->metadata_key);
                resp->metadata_value = v ? (char *)v : "";
        }
        if (req->reply_bytes > 0) {
                resp->blob.len = (size_t)req->reply_bytes;
                resp->blob.data = sb_call_alloc(call, (size_t)req->reply_bytes);
                memset(resp->blob.data, 'x', (size_t)req->reply_bytes);
        }
        return SB_OK;
}

static const sb_rpc_method echo_methods[] = { { "Echo", echo_handler } };

struct done_log {
        pthread_mutex_t mu;
        int calls;
        int last_code;
        char last_method[128];
};

static void done_hook(void *arg, const sb_call *call, const char *method, sb_status code, const char *message,
                      int64_t latency_us) {
        (void)call;
        (void)message;
        struct done_log *log = arg;
        pthread_mutex_lock(&log->mu);
        log->calls++;
        log->last_code = (int)code;
        snprintf(log->last_method, sizeof log->last_method, "%s", method);
        pthread_mutex_unlock(&log->mu);
        if (latency_us < 0)
                abort();
}

static struct done_log the_log = { .mu = PTHREAD_MUTEX_INITIALIZER };

static sb_rpc_server *start_server(const char *bind, sb_rpc_server_config *overrides) {
        sb_rpc_server_config cfg = {
                .bind = bind,
                .workers = 4,
                .max_request_bytes = 64 * 1024,
                .max_response_bytes = 128 * 1024,
                .drain_ms = 0,
                .grace_ms = 5000,
                .done_hook = done_hook,
                .done_arg = &the_log,
        };
        if (overrides) {
                overrides->done_hook = done_hook;
                overrides->done_arg = &the_log;
                cfg = *overrides;
                cfg.bind = bind;
        }
        sb_rpc_server *srv = NULL;
        char err[256];
        if (sb_rpc_server_new(&cfg, &srv, err, sizeof err) < 0) {
                fprintf(stderr, "server_new: %s\n", err);
                exit(1);
        }
        if (sb_rpc_server_add_service(srv, &sbtest__v1__echo__descriptor, echo_methods, 1, NULL) < 0)
                abort();
        if (sb_rpc_server_start(srv, err, sizeof err) < 0) {
                fprintf(stderr, "server_start: %s\n", err);
                exit(1);
        }
        return srv;
}

static sb_rpc_client *client_for(int port, const char *ca, int attempts) {
        char target[64];
        snprintf(target, sizeof target, "127.0.0.1:%d", port);
        sb_rpc_client_config cfg = { .target = target, .tls_ca_path = ca, .max_attempts = attempts,
                                     .tls_override_host = ca ? "localhost" : NULL };
        sb_rpc_client *c = NULL;
        char err[256];
        if (sb_rpc_client_new(&cfg, &c, err, sizeof err) < 0) {
                fprintf(stderr, "client_new: %s\n", err);
                exit(1);
        }
        return c;
}

static sb_status echo(sb_rpc_client *c, Sbtest__V1__EchoRequest *req, const sb_rpc_call_opts *opts,
                      Sbtest__V1__EchoReply **ret, char *msg, size_t msg_n) {
        ProtobufCMessage *resp = NULL;
        sb_status st = sb_rpc_client_call(c, "/sbtest.v1.Echo/Echo", &req->base, &sbtest__v1__echo_reply__descriptor,
                                          opts, &resp, msg, msg_n);
        if (st == SB_OK)
                *ret = (Sbtest__V1__EchoReply *)resp;
        return st;
}

static sb_status health(sb_rpc_client *c, const char *service, int *ret_status, char *msg, size_t n) {
        Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
        req.service = (char *)service;
        ProtobufCMessage *resp = NULL;
        sb_rpc_call_opts opts = { .deadline_ms = 2000 };
        sb_status st = sb_rpc_client_call(c, "/grpc.health.v1.Health/Check", &req.base,
                                          &grpc__health__v1__health_check_response__descriptor, &opts, &resp, msg, n);
        if (st == SB_OK) {
                *ret_status = (int)((Grpc__Health__V1__HealthCheckResponse *)resp)->status;
                protobuf_c_message_free_unpacked(resp, NULL);
        }
        return st;
}

static int free_port(void) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0)
                abort();
        socklen_t len = sizeof a;
        getsockname(fd, (struct sockaddr *)&a, &len);
        close(fd);
        return ntohs(a.sin_port);
}

/* --- the tests --- */

static void test_echo_and_metadata(sb_rpc_client *c) {
        Sbtest__V1__EchoRequest req = SBTEST__V1__ECHO_REQUEST__INIT;
        req.text = "你好, sharebuy";
        req.metadata_key = "x-request-id";
        sb_rpc_call_opts opts = { .deadline_ms = 3000, .bearer = "tok.en.sig", .request_id = "req-42" };
        Sbtest__V1__EchoReply *r = NULL;
        char msg[256];
        sb_status st = echo(c, &req, &opts, &r, msg, sizeof msg);
        CHECK_STATUS(st, SB_OK, msg);
        if (st != SB_OK)
                return;
        CHECK(strcmp(r->text, "你好, sharebuy") == 0);
        CHECK(strcmp(r->bearer, "tok.en.sig") == 0);
        CHECK(strcmp(r->request_id, "req-42") == 0);
        CHECK(strcmp(r->metadata_value, "req-42") == 0);
        CHECK(strncmp(r->peer, "ipv4:127.0.0.1:", 15) == 0);
        CHECK(r->saw_deadline && r->remaining_ms > 0 && r->remaining_ms <= 3000);
        protobuf_c_message_free_unpacked(&r->base, NULL);

        /* No token, an unusable request id: the server makes one up. */
        opts.bearer = NULL;
        opts.request_id = "bad id with spaces";
        st = echo(c, &req, &opts, &r, msg, sizeof msg);
        CHECK_STATUS(st, SB_OK, msg);
        if (st == SB_OK) {
                CHECK(r->bearer[0] == '\0');
                CHECK(strcmp(r->request_id, "bad id with spaces") != 0 && strlen(r->request_id) > 8);
                protobuf_c_message_free_unpacked(&r->base, NULL);
        }
}

static void test_error_status(sb_rpc_client *c) {
        Sbtest__V1__EchoRequest req = SBTEST__V1__ECHO_REQUEST__INIT;
        req.fail_code = SB_FAILED_PRECONDITION;
        req.fail_message = "the deposit holds 12.5000 SP, the sale needs 50.0000 SP";
        Sbtest__V1__EchoReply *r = NULL;
        char msg[256];
        sb_status st = echo(c, &req, NULL, &r, msg, sizeof msg);
        CHECK_STATUS(st, SB_FAILED_PRECONDITION, msg);
        CHECK(strcmp(msg, "the deposit holds 12.5000 SP, the sale needs 50.0000 SP") == 0);
        pthread_mutex_lock(&the_log.mu);
        CHECK(the_log.last_code == SB_FAILED_PRECONDITION);
        CHECK(strcmp(the_log.last_method, "/sbtest.v1.Echo/Echo") == 0);
        pthread_mutex_unlock(&the_log.mu);

        /* A machine-readable reason travels as trailing metadata. */
        char reason[SB_RPC_REASON_MAX] = "unset";
        sb_rpc_call_opts opts = { .ret_reason = reason };
        req.text = "with-reason";
        st = echo(c, &req, &opts, &r, msg, sizeof msg);
        CHECK_STATUS(st, SB_FAILED_PRECONDITION, msg);
        CHECK(strcmp(reason, "REASON_DEPOSIT_TOO_SMALL") == 0);
        req.text = "";
        st = echo(c, &req, &opts, &r, msg, sizeof msg);
        CHECK(strcmp(reason, "") == 0);
}

static void test_unimplemented(sb_rpc_client *c) {
        Sbtest__V1__EchoRequest req = SBTEST__V1__ECHO_REQUEST__INIT;
        ProtobufCMessage *resp = NULL;
        char msg[256];
        int64_t t0 = now_ms();
        sb_status st = sb_rpc_client_call(c, "/sbtest.v1.Echo/NotHandled", &req.base,
                                          &sbtest__v1__echo_reply__descriptor, NULL, &resp, msg, sizeof msg);
        CHECK_STATUS(st, SB_UNIMPLEMENTED, msg);
        CHECK(strstr(msg, "/sbtest.v1.Echo/NotHandled") != NULL);
        st = sb_rpc_client_call(c, "/no.such.Service/Nope", &req.base, &sbtest__v1__echo_reply__descriptor, NULL,
                                &resp, msg, sizeof msg);
        CHECK_STATUS(st, SB_UNIMPLEMENTED, msg);
        CHECK(strstr(msg, "unknown method /no.such.Service/Nope") != NULL);
        /* Answered at once, not at the 5 s default deadline. */
        CHECK(now_ms() - t0 < 4000);
}

static void test_deadline(sb_rpc_client *c) {
        Sbtest__V1__EchoRequest req = SBTEST__V1__ECHO_REQUEST__INIT;
        req.sleep_ms = 3000;
        sb_rpc_call_opts opts = { .deadline_ms = 200 };
        Sbtest__V1__EchoReply *r = NULL;
        char msg[256];
        int64_t t0 = now_ms();
        sb_status st = echo(c, &req, &opts, &r, msg, sizeof msg);
        CHECK_STATUS(st, SB_DEADLINE_EXCEEDED, msg);
        CHECK(now_ms() - t0 < 2500);
}

static void test_size_limits(sb_rpc_client *c) {
        Sbtest__V1__EchoRequest req = SBTEST__V1__ECHO_REQUEST__INIT;
        char *big = malloc(100 * 1024);
        memset(big, 'a', 100 * 1024 - 1);
        big[100 * 1024 - 1] = '\0';
        req.text = big;
        Sbtest__V1__EchoReply *r = NULL;
        char msg[256];
        sb_status st = echo(c, &req, NULL, &r, msg, sizeof msg);
        CHECK_STATUS(st, SB_RESOURCE_EXHAUSTED, msg);
        free(big);

        Sbtest__V1__EchoRequest req2 = SBTEST__V1__ECHO_REQUEST__INIT;
        req2.reply_bytes = 200 * 1024;
        st = echo(c, &req2, NULL, &r, msg, sizeof msg);
        CHECK_STATUS(st, SB_RESOURCE_EXHAUSTED, msg);
        CHECK(strstr(msg, "exceeds this server's limit") != NULL);

        req2.reply_bytes = 100 * 1024;
        st = echo(c, &req2, NULL, &r, msg, sizeof msg);
        CHECK_STATUS(st, SB_OK, msg);
        if (st == SB_OK) {
                CHECK(r->blob.len == 100 * 1024);
                protobuf_c_message_free_unpacked(&r->base, NULL);
        }
}

static void test_health(sb_rpc_client *c) {
        int hs = -1;
        char msg[256];
        CHECK_STATUS(health(c, "", &hs, msg, sizeof msg), SB_OK, msg);
        CHECK(hs == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
        CHECK_STATUS(health(c, "sbtest.v1.Echo", &hs, msg, sizeof msg), SB_OK, msg);
        CHECK(hs == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
        CHECK_STATUS(health(c, "sharebuy.nope.v1.Nope", &hs, msg, sizeof msg), SB_NOT_FOUND, msg);
}

struct par_arg {
        sb_rpc_client *c;
        int n;
        int ok;
};

static void *par_main(void *arg_) {
        struct par_arg *a = arg_;
        for (int i = 0; i < a->n; i++) {
                Sbtest__V1__EchoRequest req = SBTEST__V1__ECHO_REQUEST__INIT;
                char text[32];
                snprintf(text, sizeof text, "n%d", i);
                req.text = text;
                Sbtest__V1__EchoReply *r = NULL;
                if (echo(a->c, &req, NULL, &r, NULL, 0) == SB_OK) {
                        if (strcmp(r->text, text) == 0)
                                a->ok++;
                        protobuf_c_message_free_unpacked(&r->base, NULL);
                }
        }
        return NULL;
}

static void test_concurrency(sb_rpc_client *c) {
        enum { T = 8, N = 150 };
        pthread_t th[T];
        struct par_arg args[T];
        for (int i = 0; i < T; i++) {
                args[i] = (struct par_arg){ .c = c, .n = N };
                pthread_create(&th[i], NULL, par_main, &args[i]);
        }
        int ok = 0;
        for (int i = 0; i < T; i++) {
                pthread_join(th[i], NULL);
                ok += args[i].ok;
        }
        CHECK(ok == T * N);
}

struct slow_arg {
        sb_rpc_client *c;
        sb_status st;
};

static void *slow_main(void *arg_) {
        struct slow_arg *a = arg_;
        Sbtest__V1__EchoRequest req = SBTEST__V1__ECHO_REQUEST__INIT;
        req.sleep_ms = 600;
        req.text = "slow";
        Sbtest__V1__EchoReply *r = NULL;
        sb_rpc_call_opts opts = { .deadline_ms = 5000 };
        a->st = echo(a->c, &req, &opts, &r, NULL, 0);
        if (a->st == SB_OK)
                protobuf_c_message_free_unpacked(&r->base, NULL);
        return NULL;
}

struct stop_arg {
        sb_rpc_server *srv;
};

static void *stop_main(void *arg_) {
        sb_rpc_server_stop(((struct stop_arg *)arg_)->srv);
        return NULL;
}

/* SIGTERM's path: health goes NOT_SERVING during the drain, the in-flight call finishes with OK, then new calls
 * are refused. */
static void test_graceful_stop(void) {
        sb_rpc_server_config cfg = { .workers = 2, .drain_ms = 400, .grace_ms = 5000 };
        sb_rpc_server *srv = start_server("127.0.0.1:0", &cfg);
        sb_rpc_client *c = client_for(sb_rpc_server_port(srv), NULL, 1);
        struct slow_arg slow = { .c = c };
        pthread_t th, st;
        pthread_create(&th, NULL, slow_main, &slow);
        sleep_ms(100);  /* the slow call is in its handler */
        struct stop_arg sa = { .srv = srv };
        pthread_create(&st, NULL, stop_main, &sa);
        sleep_ms(100);  /* inside the drain period */
        int hs = -1;
        char msg[256];
        CHECK_STATUS(health(c, "", &hs, msg, sizeof msg), SB_OK, msg);
        CHECK(hs == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING);
        pthread_join(th, NULL);
        CHECK_STATUS(slow.st, SB_OK, "in-flight call during shutdown");
        pthread_join(st, NULL);
        sb_status s2 = health(c, "", &hs, msg, sizeof msg);
        CHECK(s2 == SB_UNAVAILABLE);
        sb_rpc_client_free(c);
        sb_rpc_server_free(srv);
}

struct late_arg {
        int port;
        sb_rpc_server *srv;
};

static void *late_main(void *arg_) {
        struct late_arg *a = arg_;
        sleep_ms(150);
        char bind[64];
        snprintf(bind, sizeof bind, "127.0.0.1:%d", a->port);
        a->srv = start_server(bind, NULL);
        return NULL;
}

/* The client retries UNAVAILABLE: the server comes up while the client is already calling. */
static void test_client_retry(void) {
        int port = free_port();
        sb_rpc_client *c = client_for(port, NULL, 8);
        struct late_arg la = { .port = port };
        pthread_t th;
        pthread_create(&th, NULL, late_main, &la);
        Sbtest__V1__EchoRequest req = SBTEST__V1__ECHO_REQUEST__INIT;
        req.text = "eventually";
        Sbtest__V1__EchoReply *r = NULL;
        sb_rpc_call_opts opts = { .deadline_ms = 8000 };
        char msg[256];
        sb_status st = echo(c, &req, &opts, &r, msg, sizeof msg);
        pthread_join(th, NULL);
        CHECK_STATUS(st, SB_OK, msg);
        if (st == SB_OK)
                protobuf_c_message_free_unpacked(&r->base, NULL);

        /* Without a server, a single attempt reports UNAVAILABLE. */
        sb_rpc_client *c1 = client_for(free_port(), NULL, 1);
        st = echo(c1, &req, &opts, &r, msg, sizeof msg);
        CHECK_STATUS(st, SB_UNAVAILABLE, msg);
        sb_rpc_client_free(c1);
        sb_rpc_client_free(c);
        sb_rpc_server_free(la.srv);
}

static void test_tls(void) {
        char dir[] = "/tmp/sb-rpc-tls-XXXXXX";
        if (!mkdtemp(dir))
                abort();
        char cmd[1024];
        snprintf(cmd, sizeof cmd,
                 "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
                 "-addext subjectAltName=DNS:localhost -keyout %s/key.pem -out %s/cert.pem >/dev/null 2>&1",
                 dir, dir);
        if (system(cmd) != 0) {
                fprintf(stderr, "openssl is missing: TLS test cannot run\n");
                failures++;
                return;
        }
        char cert[256], key[256];
        snprintf(cert, sizeof cert, "%s/cert.pem", dir);
        snprintf(key, sizeof key, "%s/key.pem", dir);
        sb_rpc_server_config cfg = { .workers = 2, .tls_cert_path = cert, .tls_key_path = key, .grace_ms = 1000 };
        sb_rpc_server *srv = start_server("127.0.0.1:0", &cfg);
        sb_rpc_client *c = client_for(sb_rpc_server_port(srv), cert, 1);
        int hs = -1;
        char msg[256];
        CHECK_STATUS(health(c, "", &hs, msg, sizeof msg), SB_OK, msg);
        CHECK(hs == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
        /* A plaintext client cannot talk to the TLS port. */
        sb_rpc_client *plain = client_for(sb_rpc_server_port(srv), NULL, 1);
        CHECK(health(plain, "", &hs, msg, sizeof msg) == SB_UNAVAILABLE);
        sb_rpc_client_free(plain);
        sb_rpc_client_free(c);
        sb_rpc_server_free(srv);

        /* A missing certificate is a clear start-up error. */
        sb_rpc_server_config bad = { .bind = "127.0.0.1:0", .workers = 1, .tls_cert_path = "/nonexistent/cert.pem",
                                     .tls_key_path = key };
        sb_rpc_server *s2 = NULL;
        char err[256] = "";
        CHECK(sb_rpc_server_new(&bad, &s2, err, sizeof err) == 0);
        CHECK(sb_rpc_server_start(s2, err, sizeof err) < 0);
        CHECK(strstr(err, "/nonexistent/cert.pem") != NULL);
        sb_rpc_server_free(s2);
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0)
                failures++;
}

static void test_config_errors(void) {
        sb_rpc_server *srv = NULL;
        char err[256] = "";
        sb_rpc_server_config cfg = { .bind = "127.0.0.1:0", .workers = 0 };
        CHECK(sb_rpc_server_new(&cfg, &srv, err, sizeof err) == -EINVAL);
        CHECK(strstr(err, "workers") != NULL);
        CHECK(srv == NULL);
        /* A taken port is refused at start with the address in the message. */
        sb_rpc_server *a = start_server("127.0.0.1:0", NULL);
        char bind[64];
        snprintf(bind, sizeof bind, "127.0.0.1:%d", sb_rpc_server_port(a));
        sb_rpc_server_config c2 = { .bind = bind, .workers = 1 };
        CHECK(sb_rpc_server_new(&c2, &srv, err, sizeof err) == 0);
        CHECK(sb_rpc_server_start(srv, err, sizeof err) < 0);
        CHECK(strstr(err, bind) != NULL);
        sb_rpc_server_free(srv);
        sb_rpc_server_free(a);
        char path[64];
        CHECK(sb_rpc_method_path(&sbtest__v1__echo__descriptor, "Echo", path, sizeof path) == 0);
        CHECK(strcmp(path, "/sbtest.v1.Echo/Echo") == 0);
        CHECK(sb_rpc_method_path(&sbtest__v1__echo__descriptor, "Nope", path, sizeof path) == -ENOENT);
        CHECK(strcmp(sb_status_name(SB_UNAUTHENTICATED), "UNAUTHENTICATED") == 0);
}

int main(void) {
        sb_rpc_init();
        sb_rpc_server *srv = start_server("127.0.0.1:0", NULL);
        sb_rpc_client *c = client_for(sb_rpc_server_port(srv), NULL, 1);
        test_echo_and_metadata(c);
        test_error_status(c);
        test_unimplemented(c);
        test_deadline(c);
        test_size_limits(c);
        test_health(c);
        test_concurrency(c);
        sb_rpc_client_free(c);
        sb_rpc_server_free(srv);
        test_graceful_stop();
        test_client_retry();
        test_tls();
        test_config_errors();
        sb_rpc_shutdown();
        if (failures) {
                fprintf(stderr, "%d check(s) failed\n", failures);
                return 1;
        }
        printf("rpc: all checks passed\n");
        return 0;
}
