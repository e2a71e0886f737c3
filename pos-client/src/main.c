/* sharebuy-pos: the till. Everything is in the pos-app library (so the tests run the same code). */
#include <signal.h>

#include "pos-application.h"
#include "rpc.h"

int main(int argc, char **argv) {
        /* The gRPC library must be started before the first client. sb_rpc_init() blocks the stop signals for the
         * services' signal loop; a desktop program wants the default behaviour back (Ctrl+C, SIGTERM end it). */
        sb_rpc_init();
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGHUP);
        pthread_sigmask(SIG_UNBLOCK, &set, NULL);
        pos_application_init_i18n();
        g_autoptr(PosApplication) app = pos_application_new();
        return g_application_run(G_APPLICATION(app), argc, argv);
}
