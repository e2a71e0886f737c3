/* The wallet service (sharebuy.wallet.v1.Wallet). */
#include "wallet.h"

#include "sharebuy/wallet/v1/wallet.pb-c.h"

/* The handlers this release implements; every other method of the v1 API answers UNIMPLEMENTED. */
static const sb_rpc_method wallet_methods[] = {
        { NULL, NULL },
};

const sb_service_def wallet_service = {
        .name = "wallet",
        .desc = &sharebuy__wallet__v1__wallet__descriptor,
        .methods = wallet_methods,
        .n_methods = 0,
        .default_port = 50052,
        .default_metrics_port = 9152,
};
