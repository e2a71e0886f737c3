#include "identity.h"

int main(int argc, char **argv) {
        return sb_service_main(&identity_service, argc, argv);
}
