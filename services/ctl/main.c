/* sharebuyctl: the administrator's tool. All of it is in the sb_ctl library (ctl.h). */
#include <stdio.h>

#include "ctl.h"

int main(int argc, char **argv) {
    return sb_ctl_main(argc, argv, stdout, stderr);
}
