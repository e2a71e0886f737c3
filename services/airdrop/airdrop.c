/* The airdrop service (sharebuy.airdrop.v1.Airdrop). */
#include "airdrop.h"

#include "sharebuy/airdrop/v1/airdrop.pb-c.h"

/* The handlers this release implements; every other method of the v1 API answers UNIMPLEMENTED. */
static const sb_rpc_method airdrop_methods[] = {
        { NULL, NULL },
};

const sb_service_def airdrop_service = {
        .name = "airdrop",
        .desc = &sharebuy__airdrop__v1__airdrop__descriptor,
        .methods = airdrop_methods,
        .n_methods = 0,
        .default_port = 50054,
        .default_metrics_port = 9154,
};
