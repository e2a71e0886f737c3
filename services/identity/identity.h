/* The identity service (sharebuy.identity.v1.Identity): members, staff, terminals, tokens, referral, activation,
 * member QR codes and the audit trail. See docs/identity.md. */
#pragma once

#include "service.h"

/* The service's description for sb_service_main(). */
extern const sb_service_def identity_service;
