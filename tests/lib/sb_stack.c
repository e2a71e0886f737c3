/* sb_test_stack: real service processes for integration tests. */
#include "sb_stack.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "grpc/health/v1/health.pb-c.h"
#include "sharebuy/airdrop/v1/airdrop.pb-c.h"
#include "sharebuy/identity/v1/identity.pb-c.h"
#include "sharebuy/merchant/v1/merchant.pb-c.h"
#include "sharebuy/region/v1/region.pb-c.h"
#include "sharebuy/wallet/v1/wallet.pb-c.h"
#include "sb_test.h"

#define N_SVC 5
#define MAX_ENV 48

extern char **environ;

static const char *const all_names[N_SVC] = { "identity", "wallet", "merchant", "airdrop", "region" };

struct proc {
        bool wanted;
        int port;
        char addr[32];
        pid_t pid;
        char log[512];
        char *env[MAX_ENV];
        size_t n_env;
        sb_rpc_client *client;
};

struct sb_test_stack {
        char dir[64];
        char build[512];
        char priv[128];
        char pub[128];
        sb_auth_signer *signer;
        struct proc procs[N_SVC];
        sb_db *admin;
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "sb_test_stack: ");
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, "\n");
        va_end(ap);
        abort();
}

static int svc_index(const char *name) {
        for (int i = 0; i < N_SVC; i++)
                if (strcmp(all_names[i], name) == 0)
                        return i;
        die("unknown service %s", name);
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        char *s = NULL;
        if (vasprintf(&s, fmt, ap) < 0)
                abort();
        va_end(ap);
        return s;
}

static int free_port(void) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0)
                die("cannot find a free port: %s", strerror(errno));
        socklen_t len = sizeof a;
        getsockname(fd, (struct sockaddr *)&a, &len);
        close(fd);
        return ntohs(a.sin_port);
}

static void sleep_ms(int ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };
        nanosleep(&ts, NULL);
}

static void print_log_tail(struct proc *p, const char *name) {
        fprintf(stderr, "---- last lines of %s (%s) ----\n", name, p->log);
        char cmd[640];
        snprintf(cmd, sizeof cmd, "tail -n 40 '%s' >&2", p->log);
        if (system(cmd) != 0)
                fprintf(stderr, "(no log)\n");
}

static const char *db_password(const char *svc) {
        /* Fixed per service for the test server: parallel tests set the same passwords, so no test changes a
         * password under another test's running services. */
        static char buf[N_SVC][48];
        int i = svc_index(svc);
        snprintf(buf[i], sizeof buf[i], "sb-test-%s-pw", svc);
        return buf[i];
}

/* Run a program with extra environment, wait, return its exit status; stdout captured into *out when asked. */
static int run_program(char *const argv[], char *const extra_env[], char **out) {
        int pipefd[2] = { -1, -1 };
        if (out && pipe(pipefd) < 0)
                return -1;
        pid_t pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0) {
                for (size_t i = 0; extra_env && extra_env[i]; i++)
                        putenv(extra_env[i]);
                if (out) {
                        dup2(pipefd[1], 1);
                        close(pipefd[0]);
                        close(pipefd[1]);
                }
                execv(argv[0], argv);
                _exit(127);
        }
        if (out) {
                close(pipefd[1]);
                size_t cap = 4096, len = 0;
                char *buf = malloc(cap);
                ssize_t n;
                while ((n = read(pipefd[0], buf + len, cap - len - 1)) > 0) {
                        len += (size_t)n;
                        if (cap - len < 2) {
                                cap *= 2;
                                buf = realloc(buf, cap);
                        }
                }
                buf[len] = '\0';
                close(pipefd[0]);
                *out = buf;
        }
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void admin_env(char **env, size_t *n) {
        const char *sock = getenv("SB_TEST_DB_SOCKET");
        const char *user = getenv("SB_TEST_DB_ADMIN_USER");
        const char *pw = getenv("SB_TEST_DB_ADMIN_PASSWORD");
        env[(*n)++] = xasprintf("SB_DB_SOCKET=%s", sock);
        env[(*n)++] = xasprintf("SB_DB_ADMIN_USER=%s", user ? user : "root");
        env[(*n)++] = xasprintf("SB_DB_ADMIN_PASSWORD=%s", pw ? pw : "");
}

int sb_test_stack_ctl(sb_test_stack *st, char **out, const char *const *args) {
        char *argv[64];
        size_t n = 0;
        argv[n++] = xasprintf("%s/services/ctl/sharebuyctl", st->build);
        for (size_t i = 0; args[i] && n < 62; i++)
                argv[n++] = (char *)args[i];
        argv[n] = NULL;
        char *env[16];
        size_t ne = 0;
        admin_env(env, &ne);
        env[ne] = NULL;
        int r = run_program(argv, env, out);
        free(argv[0]);
        for (size_t i = 0; i < ne; i++)
                free(env[i]);
        return r;
}

static void migrate(sb_test_stack *st) {
        char *argv[] = { NULL, "migrate", "up", NULL };
        argv[0] = xasprintf("%s/services/ctl/sharebuyctl", st->build);
        char *env[16];
        size_t ne = 0;
        admin_env(env, &ne);
        for (int i = 0; i < N_SVC; i++) {
                char up[16];
                snprintf(up, sizeof up, "%s", all_names[i]);
                for (char *c = up; *c; c++)
                        *c = (char)(*c - 'a' + 'A');
                env[ne++] = xasprintf("SB_DB_PASSWORD_%s=%s", up, db_password(all_names[i]));
        }
        env[ne] = NULL;
        int r = run_program(argv, env, NULL);
        free(argv[0]);
        for (size_t i = 0; i < ne; i++)
                free(env[i]);
        if (r != 0)
                die("sharebuyctl migrate up failed (exit %d)", r);
}

sb_test_stack *sb_test_stack_new(const char *const *services) {
        if (!getenv("SB_TEST_DB_SOCKET")) {
                fprintf(stderr, "SB_TEST_DB_SOCKET is not set: run under tests/lib/with-mariadb (skipping)\n");
                exit(SB_TEST_SKIP);
        }
        sb_rpc_init();
        sb_test_stack *st = calloc(1, sizeof *st);
        snprintf(st->dir, sizeof st->dir, "/tmp/sb-stack-XXXXXX");
        if (!mkdtemp(st->dir))
                die("mkdtemp: %s", strerror(errno));
        const char *b = getenv("SB_BUILD_DIR");
        snprintf(st->build, sizeof st->build, "%s", b && *b ? b : SB_BUILD_ROOT);
        snprintf(st->priv, sizeof st->priv, "%s/signing.pem", st->dir);
        snprintf(st->pub, sizeof st->pub, "%s/signing.pub", st->dir);
        char err[512];
        if (sb_auth_keygen(st->priv, st->pub, err, sizeof err) < 0 ||
            sb_auth_signer_load(st->priv, &st->signer, err, sizeof err) < 0)
                die("%s", err);
        migrate(st);
        st->admin = sb_test_db_open_admin();
        for (int i = 0; i < N_SVC; i++) {
                struct proc *p = &st->procs[i];
                p->port = free_port();
                snprintf(p->addr, sizeof p->addr, "127.0.0.1:%d", p->port);
                snprintf(p->log, sizeof p->log, "%s/%s.log", st->dir, all_names[i]);
                sb_rpc_client_config cc = { .target = p->addr, .max_attempts = 1 };
                if (sb_rpc_client_new(&cc, &p->client, err, sizeof err) < 0)
                        die("%s", err);
        }
        for (size_t k = 0; services[k]; k++)
                st->procs[svc_index(services[k])].wanted = true;
        return st;
}

void sb_test_stack_env(sb_test_stack *st, const char *service, const char *name, const char *value) {
        struct proc *p = &st->procs[svc_index(service)];
        if (p->n_env == MAX_ENV)
                die("too many environment variables for %s", service);
        p->env[p->n_env++] = xasprintf("%s=%s", name, value);
}

static bool healthy(struct proc *p) {
        Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
        req.service = "";
        ProtobufCMessage *resp = NULL;
        sb_rpc_call_opts opts = { .deadline_ms = 500 };
        if (sb_rpc_client_call(p->client, "/grpc.health.v1.Health/Check", &req.base,
                               &grpc__health__v1__health_check_response__descriptor, &opts, &resp, NULL,
                               0) != SB_OK)
                return false;
        bool ok = ((Grpc__Health__V1__HealthCheckResponse *)resp)->status ==
                  GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
        protobuf_c_message_free_unpacked(resp, NULL);
        return ok;
}

int sb_test_stack_start_service(sb_test_stack *st, const char *service) {
        int idx = svc_index(service);
        struct proc *p = &st->procs[idx];
        if (p->pid > 0)
                return 0;
        /* The SERVICE credential of this service, minted with the stack's key. */
        sb_claims c;
        memset(&c, 0, sizeof c);
        c.role = SB_ROLE_SERVICE;
        snprintf(c.svc, sizeof c.svc, "%s", service);
        snprintf(c.sub, sizeof c.sub, "service:%s", service);
        char tok[SB_AUTH_TOKEN_MAX];
        sb_test_stack_token(st, &c, tok, sizeof tok);

        char *env[MAX_ENV + 32];
        size_t ne = 0;
        env[ne++] = xasprintf("SB_LISTEN=%s", p->addr);
        env[ne++] = xasprintf("SB_METRICS_PORT=0");
        env[ne++] = xasprintf("SB_DB_SOCKET=%s", getenv("SB_TEST_DB_SOCKET"));
        env[ne++] = xasprintf("SB_DB_PASSWORD=%s", db_password(service));
        env[ne++] = xasprintf("SB_AUTH_PUBLIC_KEYS=%s", st->pub);
        env[ne++] = xasprintf("SB_AUTH_SIGNING_KEY=%s", st->priv);
        env[ne++] = xasprintf("SB_AUTH_SERVICE_TOKEN=%s", tok);
        env[ne++] = xasprintf("SB_SHUTDOWN_DRAIN=0");
        env[ne++] = xasprintf("SB_WORKERS=8");
        /* The airdrop's timer runs every missed day over every account of the database, which tests share: it is
         * off unless a test turns it on (sb_test_stack_env, which comes later and wins). */
        env[ne++] = xasprintf("SB_AIRDROP_TIMER=false");
        env[ne++] = xasprintf("SB_LOG_LEVEL=%s", getenv("SB_TEST_LOG_LEVEL") ? getenv("SB_TEST_LOG_LEVEL") : "info");
        for (int i = 0; i < N_SVC; i++) {
                char up[16];
                snprintf(up, sizeof up, "%s", all_names[i]);
                for (char *ch = up; *ch; ch++)
                        *ch = (char)(*ch - 'a' + 'A');
                env[ne++] = xasprintf("SB_PEERS_%s=%s", up, st->procs[i].addr);
        }
        for (size_t i = 0; i < p->n_env; i++)
                env[ne++] = strdup(p->env[i]);
        env[ne] = NULL;

        char *bin = xasprintf("%s/services/%s/sharebuy-%s", st->build, service, service);
        pid_t pid = fork();
        if (pid < 0)
                die("fork: %s", strerror(errno));
        if (pid == 0) {
                int fd = open(p->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
                if (fd >= 0) {
                        dup2(fd, 1);
                        dup2(fd, 2);
                }
                /* A test that dies (a failed check aborts) must not leave its services running. */
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                /* The test blocks signals for sb_rpc; the service must start with a clean mask. */
                sigset_t none;
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                for (size_t i = 0; env[i]; i++)
                        putenv(env[i]);
                char *argv[] = { bin, NULL };
                execv(bin, argv);
                _exit(127);
        }
        p->pid = pid;
        free(bin);
        for (size_t i = 0; i < ne; i++)
                free(env[i]);
        for (int n = 0; n < 300; n++) {
                int status;
                if (waitpid(pid, &status, WNOHANG) == pid) {
                        p->pid = 0;
                        fprintf(stderr, "sb_test_stack: sharebuy-%s exited at start (status %d)\n", service, status);
                        print_log_tail(p, service);
                        return -1;
                }
                if (healthy(p))
                        return 0;
                sleep_ms(100);
        }
        fprintf(stderr, "sb_test_stack: sharebuy-%s did not become healthy in 30 s\n", service);
        print_log_tail(p, service);
        return -1;
}

void sb_test_stack_start_all(sb_test_stack *st) {
        for (int i = 0; i < N_SVC; i++)
                if (st->procs[i].wanted && sb_test_stack_start_service(st, all_names[i]) < 0)
                        die("cannot start %s", all_names[i]);
}

sb_test_stack *sb_test_stack_start(const char *const *services) {
        sb_test_stack *st = sb_test_stack_new(services);
        sb_test_stack_start_all(st);
        return st;
}

int sb_test_stack_kill(sb_test_stack *st, const char *service, int sig) {
        struct proc *p = &st->procs[svc_index(service)];
        if (p->pid <= 0)
                return -1;
        if (kill(p->pid, sig) < 0)
                return -1;
        if (sig != SIGTERM && sig != SIGKILL)
                return 0;
        int status = 0;
        while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR)
                ;
        p->pid = 0;
        if (sig == SIGKILL)
                return 0;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

const char *sb_test_stack_addr(sb_test_stack *st, const char *service) {
        return st->procs[svc_index(service)].addr;
}

sb_rpc_client *sb_test_stack_client(sb_test_stack *st, const char *service) {
        return st->procs[svc_index(service)].client;
}

pid_t sb_test_stack_pid(sb_test_stack *st, const char *service) {
        return st->procs[svc_index(service)].pid;
}

int sb_test_stack_token(sb_test_stack *st, const sb_claims *claims, char *out, size_t out_n) {
        sb_claims c = *claims;
        if (!c.iat)
                c.iat = (int64_t)time(NULL);
        if (!c.exp)
                c.exp = c.iat + 900;
        if (!c.sub[0])
                snprintf(c.sub, sizeof c.sub, "test:%s:%llu", sb_role_name(c.role), (unsigned long long)c.uid);
        int n = sb_auth_sign(st->signer, &c, out, out_n);
        if (n < 0)
                die("cannot sign a token: %s", strerror(-n));
        return n;
}

void sb_test_stack_role_token(sb_test_stack *st, sb_role role, uint64_t uid, uint64_t merchant_id,
                              uint64_t terminal_id, uint64_t centre_id, char *out) {
        sb_claims c;
        memset(&c, 0, sizeof c);
        c.role = role;
        c.uid = uid;
        c.merchant_id = merchant_id;
        c.terminal_id = terminal_id;
        c.centre_id = centre_id;
        if (role == SB_ROLE_SERVICE)
                snprintf(c.svc, sizeof c.svc, "test");
        sb_test_stack_token(st, &c, out, SB_AUTH_TOKEN_MAX);
}

sb_status sb_test_stack_call(sb_test_stack *st, const char *service, const char *method, const void *req,
                             const ProtobufCMessageDescriptor *resp_desc, const sb_test_call_opts *o, void **resp) {
        static const ProtobufCServiceDescriptor *const descs[N_SVC] = {
                &sharebuy__identity__v1__identity__descriptor, &sharebuy__wallet__v1__wallet__descriptor,
                &sharebuy__merchant__v1__merchant__descriptor, &sharebuy__airdrop__v1__airdrop__descriptor,
                &sharebuy__region__v1__region__descriptor,
        };
        static const sb_test_call_opts none = { 0 };
        if (!o)
                o = &none;
        int i = svc_index(service);
        char path[160], msg[512], reason[SB_RPC_REASON_MAX] = "";
        if (method[0] == '/')
                snprintf(path, sizeof path, "%s", method);
        else if (sb_rpc_method_path(descs[i], method, path, sizeof path) != 0)
                die("%s has no method %s", descs[i]->name, method);
        sb_rpc_call_opts co = { .deadline_ms = o->deadline_ms ? o->deadline_ms : 20000, .bearer = o->bearer,
                                .ret_reason = reason };
        ProtobufCMessage *r = NULL;
        sb_status s = sb_rpc_client_call(st->procs[i].client, path, req, resp_desc, &co, &r, msg, sizeof msg);
        if (o->reason)
                snprintf(o->reason, SB_RPC_REASON_MAX, "%s", reason);
        if (o->msg && o->msg_n)
                snprintf(o->msg, o->msg_n, "%s", s == SB_OK ? "" : msg);
        if (s == SB_OK) {
                if (resp)
                        *resp = r;
                else
                        protobuf_c_message_free_unpacked(r, NULL);
        } else if (o->print == SB_TEST_CALL_ALWAYS || (o->print == SB_TEST_CALL_VERBOSE && getenv("TEST_VERBOSE"))) {
                fprintf(stderr, "  %s%s%s -> %s %s: %s\n", o->name_service ? service : "", o->name_service ? "/" : "",
                        method, sb_status_name(s), reason, msg);
        }
        return s;
}

sb_status sb_test_stack_stock_treasury(sb_test_stack *st, const char *key, int64_t sp_units) {
        Sharebuy__Common__V1__LedgerLeg l1 = SHAREBUY__COMMON__V1__LEDGER_LEG__INIT, l2 = l1;
        Sharebuy__Common__V1__AccountRef a1 = SHAREBUY__COMMON__V1__ACCOUNT_REF__INIT, a2 = a1;
        a1.holder_case = a2.holder_case = SHAREBUY__COMMON__V1__ACCOUNT_REF__HOLDER_SYSTEM;
        a1.system = SHAREBUY__COMMON__V1__SYSTEM_ACCOUNT__SYSTEM_ACCOUNT_SP_UNRELEASED;
        a2.system = SHAREBUY__COMMON__V1__SYSTEM_ACCOUNT__SYSTEM_ACCOUNT_SP_TREASURY;
        l1.account = &a1;
        l2.account = &a2;
        l1.amount_units = -sp_units;
        l2.amount_units = sp_units;
        l1.reason = l2.reason = SHAREBUY__COMMON__V1__LEG_REASON__LEG_REASON_ADJUSTMENT;
        Sharebuy__Common__V1__LedgerLeg *legs[] = { &l1, &l2 };
        Sharebuy__Common__V1__Cause cause = SHAREBUY__COMMON__V1__CAUSE__INIT;
        cause.kind = SHAREBUY__COMMON__V1__CAUSE_KIND__CAUSE_KIND_ADJUSTMENT;
        cause.reference = (char *)key;
        Sharebuy__Wallet__V1__PostTransactionRequest pt = SHAREBUY__WALLET__V1__POST_TRANSACTION_REQUEST__INIT;
        pt.idempotency_key = (char *)key;
        pt.cause = &cause;
        pt.legs = legs;
        pt.n_legs = 2;
        pt.memo = "test: stock the treasury";
        char tok[SB_AUTH_TOKEN_MAX];
        sb_test_stack_role_token(st, SB_ROLE_SERVICE, 0, 0, 0, 0, tok);
        char msg[512];
        sb_test_call_opts o = { .deadline_ms = 10000, .bearer = tok, .msg = msg, .msg_n = sizeof msg };
        sb_status r = sb_test_stack_call(st, "wallet", "PostTransaction", &pt.base,
                                         &sharebuy__wallet__v1__post_transaction_response__descriptor, &o, NULL);
        if (r != SB_OK)
                fprintf(stderr, "sb_test_stack: stocking the treasury: %s: %s\n", sb_status_name((int)r), msg);
        return r;
}

sb_db *sb_test_stack_admin_db(sb_test_stack *st) {
        return st->admin;
}

const char *sb_test_stack_build_dir(sb_test_stack *st) {
        return st->build;
}

const char *sb_test_stack_dir(sb_test_stack *st) {
        return st->dir;
}

const char *sb_test_stack_private_key(sb_test_stack *st) {
        return st->priv;
}

const char *sb_test_stack_public_key(sb_test_stack *st) {
        return st->pub;
}

void sb_test_stack_free(sb_test_stack *st) {
        if (!st)
                return;
        int failed = 0;
        for (int i = 0; i < N_SVC; i++) {
                struct proc *p = &st->procs[i];
                if (p->pid > 0) {
                        int status = sb_test_stack_kill(st, all_names[i], SIGTERM);
                        if (status != 0) {
                                fprintf(stderr, "sb_test_stack: sharebuy-%s exited with %d after SIGTERM\n",
                                        all_names[i], status);
                                print_log_tail(p, all_names[i]);
                                failed = 1;
                        }
                }
                sb_rpc_client_free(p->client);
                for (size_t k = 0; k < p->n_env; k++)
                        free(p->env[k]);
        }
        sb_auth_signer_free(st->signer);
        sb_db_close(st->admin);
        const char *keep = getenv("SB_TEST_KEEP");
        if (keep && strcmp(keep, "1") == 0) {
                fprintf(stderr, "sb_test_stack: kept %s\n", st->dir);
        } else {
                char cmd[128];
                snprintf(cmd, sizeof cmd, "rm -rf '%s'", st->dir);
                if (system(cmd) != 0)
                        failed = 1;
        }
        free(st);
        sb_rpc_shutdown();
        if (failed)
                abort();
}
