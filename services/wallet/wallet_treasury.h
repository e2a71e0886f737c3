/* wallet_treasury: merchants buying SP from the treasury for their deposit (BuyDeposit, ConfirmPayment,
 * CancelDepositPurchase, GetDepositPurchase, ListDepositPurchases), and the statement (ListStatement). Handlers for
 * wallet.c's method table; the purchase rows live in sharebuy_wallet.purchases. */
#pragma once

#include "wallet.h"

sb_status wallet_h_buy_deposit(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);
sb_status wallet_h_confirm_payment(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);
sb_status wallet_h_cancel_purchase(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);
sb_status wallet_h_get_purchase(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);
sb_status wallet_h_list_purchases(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);
sb_status wallet_h_list_statement(sb_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp);
