/* identity-bench: what bounds identity's sign-ins and every service's token checks.
 *
 *   password  argon2id verifications per second (the chosen parameters: m = 19 MiB, t = 2, p = 1, OWASP's
 *             minimum), on 1 thread and on every CPU: a sign-in costs one, so this is the ceiling of sign-ins/s;
 *   sign      ES256 access tokens signed per second (one per sign-in or refresh);
 *   verify    ES256 access tokens verified per second (sb_auth_verify: what every service does per call).
 *
 * Usage: identity-bench [--seconds N] [--threads N]. Prints one line per figure and a Markdown table. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"

static double seconds = 3;
static sb_auth_signer *signer;
static sb_auth_verifier *verifier;
static char token[SB_AUTH_TOKEN_MAX];
static char hash[SB_AUTH_HASH_MAX];
static atomic_long done;
static atomic_bool stop;

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

enum kind { K_PASSWORD, K_SIGN, K_VERIFY };

static void *worker(void *arg) {
        enum kind k = (enum kind)(long)arg;
        sb_claims c = { .role = SB_ROLE_MEMBER, .uid = 42, .iat = time(NULL), .exp = time(NULL) + 900 };
        snprintf(c.sub, sizeof c.sub, "member:42");
        char out[SB_AUTH_TOKEN_MAX];
        while (!atomic_load(&stop)) {
                if (k == K_PASSWORD) {
                        if (sb_auth_password_verify(hash, "correct-horse-9") != 0)
                                abort();
                } else if (k == K_SIGN) {
                        if (sb_auth_sign(signer, &c, out, sizeof out) < 0)
                                abort();
                } else {
                        sb_claims got;
                        if (sb_auth_verify(verifier, token, time(NULL), &got) != SB_AUTH_OK)
                                abort();
                }
                atomic_fetch_add(&done, 1);
        }
        return NULL;
}

static double run(enum kind k, int threads) {
        pthread_t t[256];
        atomic_store(&done, 0);
        atomic_store(&stop, false);
        double t0 = now_s();
        for (int i = 0; i < threads; i++)
                pthread_create(&t[i], NULL, worker, (void *)(long)k);
        while (now_s() - t0 < seconds)
                usleep(20000);
        atomic_store(&stop, true);
        for (int i = 0; i < threads; i++)
                pthread_join(t[i], NULL);
        return (double)atomic_load(&done) / (now_s() - t0);
}

int main(int argc, char **argv) {
        int threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
        for (int i = 1; i + 1 < argc; i += 2) {
                if (strcmp(argv[i], "--seconds") == 0)
                        seconds = atof(argv[i + 1]);
                else if (strcmp(argv[i], "--threads") == 0)
                        threads = atoi(argv[i + 1]);
        }
        if (threads < 1 || threads > 256 || seconds <= 0) {
                fprintf(stderr, "usage: identity-bench [--seconds N] [--threads 1..256]\n");
                return 2;
        }
        char dir[] = "/tmp/identity-bench-XXXXXX", priv[64], pub[64], err[256];
        if (!mkdtemp(dir))
                return 1;
        snprintf(priv, sizeof priv, "%s/k.pem", dir);
        snprintf(pub, sizeof pub, "%s/k.pub", dir);
        if (sb_auth_keygen(priv, pub, err, sizeof err) < 0 || sb_auth_signer_load(priv, &signer, err, sizeof err) < 0 ||
            sb_auth_verifier_load(pub, &verifier, err, sizeof err) < 0) {
                fprintf(stderr, "identity-bench: %s\n", err);
                return 1;
        }
        unlink(priv);
        unlink(pub);
        rmdir(dir);
        sb_claims c = { .role = SB_ROLE_CASHIER, .uid = 7, .merchant_id = 3, .terminal_id = 9, .iat = time(NULL),
                        .exp = time(NULL) + 900 };
        snprintf(c.sub, sizeof c.sub, "staff:7");
        if (sb_auth_sign(signer, &c, token, sizeof token) < 0 || sb_auth_password_hash("correct-horse-9", hash) < 0)
                return 1;
        double p1 = run(K_PASSWORD, 1), pn = run(K_PASSWORD, threads);
        double s1 = run(K_SIGN, 1), v1 = run(K_VERIFY, 1), vn = run(K_VERIFY, threads);
        printf("argon2id (m=19 MiB, t=2, p=1) verifications/s: %.1f on 1 thread, %.1f on %d threads\n", p1, pn,
               threads);
        printf("ES256 tokens signed/s (1 thread): %.0f\n", s1);
        printf("ES256 tokens verified/s: %.0f on 1 thread, %.0f on %d threads\n", v1, vn, threads);
        printf("\n| figure | 1 thread | %d threads |\n|---|---:|---:|\n", threads);
        printf("| sign-ins/s (argon2id verify, m=19 MiB t=2 p=1) | %.1f | %.1f |\n", p1, pn);
        printf("| access tokens signed/s (ES256) | %.0f | — |\n", s1);
        printf("| access tokens verified/s (ES256, offline) | %.0f | %.0f |\n", v1, vn);
        sb_auth_signer_free(signer);
        sb_auth_verifier_free(verifier);
        return 0;
}
