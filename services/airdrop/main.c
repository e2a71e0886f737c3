#include "airdrop.h"

int main(int argc, char **argv) {
        return sb_service_main(&airdrop_service, argc, argv);
}
