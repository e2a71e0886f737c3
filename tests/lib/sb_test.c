#include "sb_test.h"

#include <string.h>

void sb_test_db_admin_config(sb_db_config *cfg) {
    const char *socket = getenv("SB_TEST_DB_SOCKET");
    if (!socket || !*socket) {
        fprintf(stderr, "SB_TEST_DB_SOCKET is not set: skipping (run under tests/lib/with-mariadb)\n");
        exit(SB_TEST_SKIP);
    }
    const char *user = getenv("SB_TEST_DB_ADMIN_USER");
    const char *port = getenv("SB_TEST_DB_PORT");
    memset(cfg, 0, sizeof *cfg);
    cfg->unix_socket = socket;
    cfg->port = port ? (unsigned) strtoul(port, NULL, 10) : 0;
    cfg->user = user && *user ? user : "root";
    cfg->password = getenv("SB_TEST_DB_ADMIN_PASSWORD");
    cfg->connect_timeout_s = 5;
}

sb_db *sb_test_db_open_admin(void) {
    sb_db_config cfg;
    sb_test_db_admin_config(&cfg);
    sb_db *db = NULL;
    char err[512];
    int r = sb_db_open(&cfg, &db, err, sizeof err);
    if (r < 0) {
        fprintf(stderr, "cannot open the test database: %s\n", err);
        abort();
    }
    return db;
}
