#include "wallet.h"

int main(int argc, char **argv) {
        return sb_service_main(&wallet_service, argc, argv);
}
