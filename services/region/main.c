#include "region.h"

int main(int argc, char **argv) {
        return sb_service_main(&region_service, argc, argv);
}
