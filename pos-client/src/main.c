/* sharebuy-pos: the till. Everything is in the pos-app library (so the tests run the same code). */
#include "pos-application.h"

int main(int argc, char **argv) {
        pos_application_init_i18n();
        g_autoptr(PosApplication) app = pos_application_new();
        return g_application_run(G_APPLICATION(app), argc, argv);
}
