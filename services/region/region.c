/* The region service (sharebuy.region.v1.Region). */
#include "region.h"

#include "sharebuy/region/v1/region.pb-c.h"

/* The handlers this release implements; every other method of the v1 API answers UNIMPLEMENTED. */
static const sb_rpc_method region_methods[] = {
        { NULL, NULL },
};

const sb_service_def region_service = {
        .name = "region",
        .desc = &sharebuy__region__v1__region__descriptor,
        .methods = region_methods,
        .n_methods = 0,
        .default_port = 50055,
        .default_metrics_port = 9155,
};
