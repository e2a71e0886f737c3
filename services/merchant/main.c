#include "merchant.h"

int main(int argc, char **argv) {
        return sb_service_main(&merchant_service, argc, argv);
}
