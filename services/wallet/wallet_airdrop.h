/* wallet_airdrop: the handler of Wallet/ApplyAirdropChunk (see wallet_airdrop.c and docs/airdrop.md). */
#pragma once

#include "rpc.h"

/* Books one chunk of a day's airdrop, set-based, in one database transaction; idempotent on (day, chunk). */
sb_status wallet_h_apply_airdrop_chunk(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);
