/* The merchant service (sharebuy.merchant.v1.Merchant). */
#include "merchant.h"

#include "sharebuy/merchant/v1/merchant.pb-c.h"

/* The handlers this release implements; every other method of the v1 API answers UNIMPLEMENTED. */
static const sb_rpc_method merchant_methods[] = {
        { NULL, NULL },
};

const sb_service_def merchant_service = {
        .name = "merchant",
        .desc = &sharebuy__merchant__v1__merchant__descriptor,
        .methods = merchant_methods,
        .n_methods = 0,
        .default_port = 50053,
        .default_metrics_port = 9153,
};
