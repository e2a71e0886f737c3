/* sb_service: configuration, logging, metrics, database connections and the serve/stop cycle of a service. */
#include "service.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"

extern char **environ;

/* What a worker thread owns: its database connection, opened on demand. */
struct worker {
        sb_db *db;
        int64_t next_attempt_ms;  /* after a failed connect, do not hammer the server: wait before the next one */
};

#define N_PEERS 5
static const char *const peer_names[N_PEERS] = { "identity", "wallet", "merchant", "airdrop", "region" };

struct runtime {
        const sb_service_def *def;
        sb_config *cfg;
        sb_db_config dbc;
        sb_metrics_registry *metrics;
        sb_auth_verifier *verifier;
        sb_rpc_client *peers[N_PEERS];
};

static struct runtime the_runtime;  /* one service per process; set once in sb_service_main before threads */

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The keys every service has; the service's own follow. Defaults that depend on the service are filled in at
 * start (see build_schema). */
enum { K_LISTEN, K_METRICS_PORT, K_DB_USER, K_DB_NAME, N_DYNAMIC };

static const sb_config_key common_keys[] = {
        { "listen", SB_CONFIG_STRING, NULL, 1, 255, true, false,
          "address the gRPC server binds, host:port (0.0.0.0:PORT for every interface)" },
        { "metrics.port", SB_CONFIG_INT, NULL, 0, 65535, false, false,
          "port of the Prometheus /metrics endpoint; 0 turns it off" },
        { "db.user", SB_CONFIG_STRING, NULL, 1, 80, true, false, "database user of this service" },
        { "db.name", SB_CONFIG_STRING, NULL, 1, 64, true, false, "the service's own schema" },
        { "metrics.listen", SB_CONFIG_STRING, "127.0.0.1", 1, 255, true, false, "address the metrics endpoint binds" },
        { "workers", SB_CONFIG_INT, "16", 1, 256, true, false,
          "worker threads; each holds one database connection" },
        { "max_request_bytes", SB_CONFIG_INT, "1048576", 1024, 67108864, true, false,
          "largest request accepted; larger ones get RESOURCE_EXHAUSTED" },
        { "max_response_bytes", SB_CONFIG_INT, "4194304", 1024, 67108864, true, false,
          "largest response sent; larger ones become RESOURCE_EXHAUSTED" },
        { "tls.cert", SB_CONFIG_PATH, NULL, 0, 0, false, false, "PEM certificate chain: turns TLS on (with tls.key)" },
        { "tls.key", SB_CONFIG_PATH, NULL, 0, 0, false, false, "PEM private key of tls.cert" },
        { "tls.client_ca", SB_CONFIG_PATH, NULL, 0, 0, false, false,
          "PEM CA: when set, clients must present a certificate it signed" },
        { "shutdown.drain", SB_CONFIG_DURATION_MS, "500ms", 0, 60000, true, false,
          "on SIGTERM, how long health says NOT_SERVING before new calls are refused" },
        { "shutdown.grace", SB_CONFIG_DURATION_MS, "10s", 0, 600000, true, false,
          "then how long in-flight calls may run before they are cancelled" },
        { "log.level", SB_CONFIG_STRING, "info", 1, 16, true, false, "debug, info, warn or error" },
        { "db.host", SB_CONFIG_STRING, NULL, 0, 255, false, false, "database host; unset: use db.socket" },
        { "db.port", SB_CONFIG_INT, "3306", 1, 65535, true, false, "database TCP port (with db.host)" },
        { "db.socket", SB_CONFIG_PATH, NULL, 0, 0, false, false, "database Unix socket (when db.host is unset)" },
        { "db.password", SB_CONFIG_STRING, NULL, 0, 256, false, true, "password of db.user" },
        { "db.connect_wait", SB_CONFIG_DURATION_MS, "15s", 0, 600000, true, false,
          "at start, how long to wait for the database before giving up" },
        { "auth.public_keys", SB_CONFIG_PATH, NULL, 0, 0, true, false,
          "PEM file of identity's token-signing public keys (several for rotation)" },
        { "auth.service_token", SB_CONFIG_STRING, NULL, 0, 2048, false, true,
          "this service's SERVICE token for calls to other services (sharebuyctl auth service-token)" },
        { "peers.identity", SB_CONFIG_STRING, "127.0.0.1:50051", 1, 255, true, false, "address of identity" },
        { "peers.wallet", SB_CONFIG_STRING, "127.0.0.1:50052", 1, 255, true, false, "address of wallet" },
        { "peers.merchant", SB_CONFIG_STRING, "127.0.0.1:50053", 1, 255, true, false, "address of merchant" },
        { "peers.airdrop", SB_CONFIG_STRING, "127.0.0.1:50054", 1, 255, true, false, "address of airdrop" },
        { "peers.region", SB_CONFIG_STRING, "127.0.0.1:50055", 1, 255, true, false, "address of region" },
        { "peers.tls_ca", SB_CONFIG_PATH, NULL, 0, 0, false, false,
          "PEM roots for TLS to the other services (unset: plaintext on a private network)" },
};

#define N_COMMON (sizeof common_keys / sizeof common_keys[0])

static char dyn_defaults[N_DYNAMIC][96];

static sb_config_key *build_schema(const sb_service_def *def, size_t *ret_n) {
        size_t n = N_COMMON + def->n_extra_keys;
        sb_config_key *keys = calloc(n, sizeof *keys);
        if (!keys)
                abort();
        memcpy(keys, common_keys, sizeof common_keys);
        snprintf(dyn_defaults[K_LISTEN], sizeof dyn_defaults[K_LISTEN], "127.0.0.1:%d", def->default_port);
        snprintf(dyn_defaults[K_METRICS_PORT], sizeof dyn_defaults[K_METRICS_PORT], "%d", def->default_metrics_port);
        snprintf(dyn_defaults[K_DB_USER], sizeof dyn_defaults[K_DB_USER], "sb_%s", def->name);
        snprintf(dyn_defaults[K_DB_NAME], sizeof dyn_defaults[K_DB_NAME], "sharebuy_%s", def->name);
        for (int i = 0; i < N_DYNAMIC; i++)
                keys[i].default_value = dyn_defaults[i];
        if (def->n_extra_keys)
                memcpy(keys + N_COMMON, def->extra_keys, def->n_extra_keys * sizeof *keys);
        *ret_n = n;
        return keys;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Workers and their database connections */

static void *worker_init(void *arg, int index) {
        (void)arg;
        (void)index;
        struct worker *w = calloc(1, sizeof *w);
        if (!w)
                abort();
        return w;
}

static void worker_fini(void *arg, void *state) {
        (void)arg;
        struct worker *w = state;
        if (!w)
                return;
        sb_db_close(w->db);
        free(w);
}

sb_metrics_registry *sb_service_metrics(void) {
        return the_runtime.metrics;
}

const sb_db_config *sb_service_db_config(void) {
        return the_runtime.def ? &the_runtime.dbc : NULL;
}

sb_db *sb_service_db(sb_call *call) {
        struct worker *w = sb_call_worker(call);
        if (!w)
                return NULL;
        if (w->db)
                return w->db;
        if (now_ms() < w->next_attempt_ms)
                return NULL;
        char err[256];
        int r = sb_db_open(&the_runtime.dbc, &w->db, err, sizeof err);
        if (r < 0) {
                w->db = NULL;
                w->next_attempt_ms = now_ms() + 500;
                sb_log_kv(SB_LOG_WARN, "db_connect", err, "request_id", SB_LOG_STR(sb_call_request_id(call)), NULL);
                return NULL;
        }
        return w->db;
}

sb_status sb_service_db_unavailable(sb_call *call) {
        return sb_call_fail(call, SB_UNAVAILABLE, "the %s service cannot reach its database; try again shortly",
                            the_runtime.def ? the_runtime.def->name : "");
}

sb_status sb_service_db_fail(sb_call *call, int code, const char *what) {
        sb_db *db = sb_service_db(call);
        sb_log_kv(SB_LOG_ERROR, "db_error", what, "code", SB_LOG_INT(code), "db_errno",
                  SB_LOG_INT(db ? sb_db_errno(db) : 0), "db_message", SB_LOG_STR(db ? sb_db_errmsg(db) : ""),
                  "request_id", SB_LOG_STR(sb_call_request_id(call)), NULL);
        switch (code) {
        case -ETIMEDOUT:
                return sb_call_fail(call, SB_DEADLINE_EXCEEDED, "%s took longer than the call's deadline", what);
        case -EDEADLK:
                return sb_call_fail(call, SB_ABORTED, "%s conflicted with concurrent work; retry the call", what);
        case -ENOTCONN:
                return sb_call_fail(call, SB_UNAVAILABLE, "the database went away while %s; retry the call", what);
        case SB_DB_EUNKNOWN_COMMIT:
                return sb_call_fail(call, SB_UNAVAILABLE,
                                    "the database went away while %s; retry with the same key to learn the outcome",
                                    what);
        default:
                return sb_call_fail(call, SB_INTERNAL, "internal error while %s (request id %s)", what,
                                    sb_call_request_id(call));
        }
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Authentication and calls to other services */

sb_status sb_service_auth(sb_call *call, unsigned roles, sb_claims *ret) {
        const char *token = sb_call_bearer(call);
        if (!token)
                return sb_call_fail_reason(call, SB_UNAUTHENTICATED, "REASON_TOKEN_MISSING",
                                           "this call needs a token: send \"authorization: Bearer <token>\"");
        sb_claims claims;
        sb_auth_error e = sb_auth_verify(the_runtime.verifier, token, (int64_t)time(NULL), &claims);
        if (e != SB_AUTH_OK)
                return sb_call_fail_reason(call, SB_UNAUTHENTICATED,
                                           e == SB_AUTH_EXPIRED ? "REASON_TOKEN_EXPIRED" : "REASON_TOKEN_INVALID", "%s",
                                           sb_auth_error_message(e));
        if (!(roles & SB_ROLES(claims.role)))
                return sb_call_fail_reason(call, SB_PERMISSION_DENIED, "REASON_ROLE_NOT_ALLOWED",
                                           "a %s token may not call %s", sb_role_name(claims.role),
                                           sb_call_method(call));
        if (ret)
                *ret = claims;
        return SB_OK;
}

const char *sb_service_token(void) {
        return the_runtime.cfg ? sb_config_str(the_runtime.cfg, "auth.service_token") : NULL;
}

sb_rpc_client *sb_service_peer(const char *name) {
        for (int i = 0; i < N_PEERS; i++)
                if (strcmp(peer_names[i], name) == 0)
                        return the_runtime.peers[i];
        return NULL;
}

sb_status sb_service_call(sb_call *call, const char *peer, const char *path, const ProtobufCMessage *req,
                          const ProtobufCMessageDescriptor *resp_desc, int64_t deadline_ms,
                          ProtobufCMessage **ret_resp, char *msg, size_t msg_n) {
        sb_rpc_client *c = sb_service_peer(peer);
        if (!c) {
                snprintf(msg, msg_n, "no peer named %s", peer);
                return SB_INTERNAL;
        }
        int64_t left = call ? sb_call_remaining_ms(call) : INT64_MAX;
        if (left < deadline_ms)
                deadline_ms = left;
        if (deadline_ms <= 0) {
                snprintf(msg, msg_n, "the call's deadline passed before %s could be asked", peer);
                return SB_DEADLINE_EXCEEDED;
        }
        sb_rpc_call_opts opts = {
                .deadline_ms = deadline_ms,
                .bearer = sb_service_token(),
                .request_id = call ? sb_call_request_id(call) : NULL,
        };
        return sb_rpc_client_call(c, path, req, resp_desc, &opts, ret_resp, msg, msg_n);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Logging and metrics of every call */

static void call_done(void *arg, const sb_call *call, const char *method, sb_status code, const char *message,
                      int64_t latency_us) {
        struct runtime *rt = arg;
        if (rt->metrics)
                sb_metrics_rpc_observe(rt->metrics, method, (int)code, latency_us);
        sb_log_level level = code == SB_OK ? SB_LOG_DEBUG
                             : code == SB_INTERNAL || code == SB_DATA_LOSS || code == SB_UNKNOWN ? SB_LOG_ERROR
                                                                                                 : SB_LOG_INFO;
        if (!sb_log_enabled(level))
                return;
        sb_log_kv(level, "rpc", message[0] ? message : "ok", "method", SB_LOG_STR(method), "status",
                  SB_LOG_STR(sb_status_name((int)code)), "latency_us", SB_LOG_INT(latency_us), "request_id",
                  SB_LOG_STR(sb_call_request_id(call)), "peer", SB_LOG_STR(sb_call_peer(call)), NULL);
}

static void core_log(int severity, const char *file, int line, const char *message) {
        sb_log_level level = severity >= 2 ? SB_LOG_WARN : severity == 1 ? SB_LOG_INFO : SB_LOG_DEBUG;
        if (sb_log_enabled(level))
                sb_log_kv(level, "grpc_core", message, "file", SB_LOG_STR(file), "line", SB_LOG_INT(line), NULL);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* main */

static void usage(const sb_service_def *def, FILE *out) {
        fprintf(out,
                "Usage: sharebuy-%s [--config FILE] [--print-config | --check-config]\n"
                "\n"
                "Serves sharebuy's %s gRPC API (%s) until SIGTERM or SIGINT, then stops gracefully.\n"
                "\n"
                "  --config FILE    settings file (default: $SB_CONFIG, else none); SB_* variables override it\n"
                "  --print-config   print the effective settings, secrets masked, and exit\n"
                "  --check-config   validate the settings and exit: 0 valid, 1 not\n"
                "  --help           this text\n",
                def->name, def->name, def->desc->name);
}

static int wait_for_database(const sb_config *cfg, const sb_db_config *dbc) {
        int64_t until = now_ms() + sb_config_int(cfg, "db.connect_wait");
        char err[256] = "";
        for (;;) {
                sb_db *db = NULL;
                if (sb_db_open(dbc, &db, err, sizeof err) == 0) {
                        sb_db_close(db);
                        return 0;
                }
                if (now_ms() >= until)
                        break;
                struct timespec ts = { .tv_sec = 0, .tv_nsec = 250 * 1000000L };
                nanosleep(&ts, NULL);
        }
        sb_log_kv(SB_LOG_ERROR, "start", "cannot reach the database", "error", SB_LOG_STR(err), "user",
                  SB_LOG_STR(dbc->user), "database", SB_LOG_STR(dbc->database), NULL);
        return -1;
}

int sb_service_main(const sb_service_def *def, int argc, char **argv) {
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' },
                { "print-config", no_argument, NULL, 'p' },
                { "check-config", no_argument, NULL, 'k' },
                { "help", no_argument, NULL, 'h' },
                { NULL, 0, NULL, 0 },
        };
        const char *config_path = getenv("SB_CONFIG");
        bool print = false, check = false;
        int c;
        while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
                switch (c) {
                case 'c':
                        config_path = optarg;
                        break;
                case 'p':
                        print = true;
                        break;
                case 'k':
                        check = true;
                        break;
                case 'h':
                        usage(def, stdout);
                        return 0;
                default:
                        usage(def, stderr);
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "sharebuy-%s: unexpected argument '%s'\n", def->name, argv[optind]);
                usage(def, stderr);
                return 2;
        }
        if (config_path && !*config_path)
                config_path = NULL;

        size_t n_keys = 0;
        sb_config_key *schema = build_schema(def, &n_keys);
        char err[4096];
        sb_config *cfg = NULL;
        if (sb_config_load(schema, n_keys, config_path, environ, &cfg, err, sizeof err) < 0) {
                fprintf(stderr, "sharebuy-%s: invalid configuration:\n%s\n", def->name, err);
                free(schema);
                return 1;
        }
        int status = 1;
        if (print) {
                status = sb_config_dump(cfg, stdout) == 0 ? 0 : 1;
                goto out_cfg;
        }
        sb_log_level level = SB_LOG_INFO;
        if (sb_log_level_parse(sb_config_str(cfg, "log.level"), &level) < 0) {
                fprintf(stderr, "sharebuy-%s: invalid configuration:\nlog.level: \"%s\" is not one of debug, info, "
                                "warn, error\n",
                        def->name, sb_config_str(cfg, "log.level"));
                goto out_cfg;
        }
        if (!!sb_config_str(cfg, "tls.cert") != !!sb_config_str(cfg, "tls.key")) {
                fprintf(stderr, "sharebuy-%s: invalid configuration:\ntls.cert and tls.key go together: set both "
                                "for TLS or neither\n",
                        def->name);
                goto out_cfg;
        }
        if (!sb_config_str(cfg, "db.host") && !sb_config_str(cfg, "db.socket")) {
                fprintf(stderr, "sharebuy-%s: invalid configuration:\ndb.socket: set it (or db.host) so the service "
                                "can reach its database (env SB_DB_SOCKET)\n",
                        def->name);
                goto out_cfg;
        }
        if (check) {
                printf("sharebuy-%s: configuration is valid\n", def->name);
                status = 0;
                goto out_cfg;
        }

        sb_log_init(def->name, level, -1);
        sb_rpc_init();
        sb_rpc_set_core_log(core_log);

        struct runtime *rt = &the_runtime;
        rt->def = def;
        rt->cfg = cfg;
        rt->dbc = (sb_db_config){
                .host = sb_config_str(cfg, "db.host"),
                .port = (unsigned)sb_config_int(cfg, "db.port"),
                .unix_socket = sb_config_str(cfg, "db.socket"),
                .user = sb_config_str(cfg, "db.user"),
                .password = sb_config_str(cfg, "db.password"),
                .database = sb_config_str(cfg, "db.name"),
                .connect_timeout_s = 5,
        };
        if (sb_auth_verifier_load(sb_config_str(cfg, "auth.public_keys"), &rt->verifier, err, sizeof err) < 0) {
                sb_log_kv(SB_LOG_ERROR, "start", "cannot load the token public keys", "error", SB_LOG_STR(err), NULL);
                goto out_rpc;
        }
        for (int i = 0; i < N_PEERS; i++) {
                char key[32];
                snprintf(key, sizeof key, "peers.%s", peer_names[i]);
                sb_rpc_client_config pc = { .target = sb_config_str(cfg, key),
                                            .tls_ca_path = sb_config_str(cfg, "peers.tls_ca") };
                if (sb_rpc_client_new(&pc, &rt->peers[i], err, sizeof err) < 0) {
                        sb_log_kv(SB_LOG_ERROR, "start", "bad peer address", "peer", SB_LOG_STR(key), "error",
                                  SB_LOG_STR(err), NULL);
                        goto out_rpc;
                }
        }
        if (wait_for_database(cfg, &rt->dbc) < 0)
                goto out_rpc;

        /* The registry exists before init and until after fini, so a service's own threads may keep metrics. */
        if (sb_metrics_registry_new(0, &rt->metrics) < 0)
                abort();
        void *state = NULL;
        if (def->init && def->init(cfg, &state, err, sizeof err) < 0) {
                sb_log_kv(SB_LOG_ERROR, "start", "the service could not start", "error", SB_LOG_STR(err), NULL);
                goto out_registry;
        }

        sb_metrics_http *http = NULL;
        int metrics_port = (int)sb_config_int(cfg, "metrics.port");
        if (metrics_port > 0 &&
            sb_metrics_http_start(rt->metrics, sb_config_str(cfg, "metrics.listen"), metrics_port, &http, err,
                                  sizeof err) < 0) {
                sb_log_kv(SB_LOG_ERROR, "start", "cannot serve metrics", "error", SB_LOG_STR(err), NULL);
                goto out_state;
        }

        sb_rpc_server_config scfg = {
                .bind = sb_config_str(cfg, "listen"),
                .workers = (int)sb_config_int(cfg, "workers"),
                .max_request_bytes = (size_t)sb_config_int(cfg, "max_request_bytes"),
                .max_response_bytes = (size_t)sb_config_int(cfg, "max_response_bytes"),
                .tls_cert_path = sb_config_str(cfg, "tls.cert"),
                .tls_key_path = sb_config_str(cfg, "tls.key"),
                .tls_client_ca_path = sb_config_str(cfg, "tls.client_ca"),
                .drain_ms = sb_config_int(cfg, "shutdown.drain"),
                .grace_ms = sb_config_int(cfg, "shutdown.grace"),
                .worker_init = worker_init,
                .worker_fini = worker_fini,
                .done_hook = call_done,
                .done_arg = rt,
        };
        sb_rpc_server *srv = NULL;
        if (sb_rpc_server_new(&scfg, &srv, err, sizeof err) < 0 ||
            sb_rpc_server_add_service(srv, def->desc, def->methods, def->n_methods, state) < 0 ||
            sb_rpc_server_start(srv, err, sizeof err) < 0) {
                sb_log_kv(SB_LOG_ERROR, "start", "cannot start the gRPC server", "error", SB_LOG_STR(err), NULL);
                sb_rpc_server_free(srv);
                goto out_metrics;
        }
        sb_log_kv(SB_LOG_INFO, "start", "serving", "service", SB_LOG_STR(def->desc->name), "listen",
                  SB_LOG_STR(scfg.bind), "port", SB_LOG_INT(sb_rpc_server_port(srv)), "metrics_port",
                  SB_LOG_INT(http ? sb_metrics_http_port(http) : 0), "tls", SB_LOG_BOOL(scfg.tls_cert_path != NULL),
                  "workers", SB_LOG_INT(scfg.workers), "pid", SB_LOG_INT(getpid()), NULL);

        int sig = sb_rpc_wait_signal();
        sb_log_kv(SB_LOG_INFO, "stop", "stopping: health is NOT_SERVING, in-flight calls finish", "signal",
                  SB_LOG_STR(strsignal(sig)), NULL);
        sb_rpc_server_stop(srv);
        sb_rpc_server_free(srv);
        sb_log(SB_LOG_INFO, "stop", "stopped");
        status = 0;
out_metrics:
        sb_metrics_http_stop(http);
out_state:
        if (def->fini)
                def->fini(state);
out_registry:
        sb_metrics_registry_free(rt->metrics);
        rt->metrics = NULL;
out_rpc:
        for (int i = 0; i < N_PEERS; i++) {
                sb_rpc_client_free(rt->peers[i]);
                rt->peers[i] = NULL;
        }
        sb_auth_verifier_free(rt->verifier);
        rt->verifier = NULL;
        sb_rpc_shutdown();
out_cfg:
        sb_config_free(cfg);
        free(schema);
        return status;
}
