/* The merchant service: its definition for sb_service_main(). */
#pragma once

#include "service.h"

/* Everything sb_service_main() needs to run the merchant service: descriptor, handlers, port, settings. */
extern const sb_service_def merchant_service;
