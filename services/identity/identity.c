/* The identity service (sharebuy.identity.v1.Identity). */
#include "identity.h"

#include "sharebuy/identity/v1/identity.pb-c.h"

/* The handlers this release implements; every other method of the v1 API answers UNIMPLEMENTED. */
static const sb_rpc_method identity_methods[] = {
        { NULL, NULL },
};

const sb_service_def identity_service = {
        .name = "identity",
        .desc = &sharebuy__identity__v1__identity__descriptor,
        .methods = identity_methods,
        .n_methods = 0,
        .default_port = 50051,
        .default_metrics_port = 9151,
};
