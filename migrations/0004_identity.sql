-- 0004: the identity service's tables (sharebuy_identity). See docs/identity.md.
--
-- Every statement is safe to run again. No secret is ever stored in clear: passwords are argon2id hashes, refresh
-- tokens, pairing codes and member-code nonces are SHA-256 hashes of random values.

-- Members and staff: one row per person. A member has a phone (unique); a staff user has a login, unique per
-- merchant for cashiers (login_merchant_id = the merchant) and platform-wide for other staff (login_merchant_id = 0).
CREATE TABLE IF NOT EXISTS sharebuy_identity.users (
  user_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  kind TINYINT UNSIGNED NOT NULL,                    -- 1 member, 2 staff
  phone CHAR(11) NULL,
  login VARCHAR(32) NULL,
  login_merchant_id BIGINT UNSIGNED NOT NULL DEFAULT 0,
  display_name VARCHAR(64) NOT NULL DEFAULT '',
  password_hash VARCHAR(128) NOT NULL,
  must_change_password TINYINT(1) NOT NULL DEFAULT 0,
  disabled TINYINT(1) NOT NULL DEFAULT 0,
  vip TINYINT(1) NOT NULL DEFAULT 0,
  activated_ms BIGINT NOT NULL DEFAULT 0,
  referrer_kind TINYINT UNSIGNED NOT NULL DEFAULT 0, -- sharebuy.common.v1.OwnerKind, 0 = none
  referrer_id BIGINT UNSIGNED NOT NULL DEFAULT 0,
  bonus_tx_id BIGINT UNSIGNED NOT NULL DEFAULT 0,    -- the wallet transaction of the registration bonus, 0 = not yet
  failed_signins INT UNSIGNED NOT NULL DEFAULT 0,
  locked_until_ms BIGINT NOT NULL DEFAULT 0,
  last_sign_in_ms BIGINT NOT NULL DEFAULT 0,
  created_ms BIGINT NOT NULL,
  PRIMARY KEY (user_id),
  UNIQUE KEY users_phone (phone),
  UNIQUE KEY users_login (login, login_merchant_id),
  KEY users_referrer (referrer_kind, referrer_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Referral codes of members and merchants.
CREATE TABLE IF NOT EXISTS sharebuy_identity.referral_codes (
  code VARCHAR(16) NOT NULL,
  owner_kind TINYINT UNSIGNED NOT NULL,
  owner_id BIGINT UNSIGNED NOT NULL,
  created_ms BIGINT NOT NULL,
  PRIMARY KEY (code),
  UNIQUE KEY referral_codes_owner (owner_kind, owner_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Role grants with their scope (0 where a scope does not apply).
CREATE TABLE IF NOT EXISTS sharebuy_identity.grants (
  user_id BIGINT UNSIGNED NOT NULL,
  role TINYINT UNSIGNED NOT NULL,
  merchant_id BIGINT UNSIGNED NOT NULL DEFAULT 0,
  centre_id BIGINT UNSIGNED NOT NULL DEFAULT 0,
  granted_ms BIGINT NOT NULL,
  PRIMARY KEY (user_id, role, merchant_id, centre_id),
  KEY grants_merchant (merchant_id, role)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Refresh tokens: one row per issued token, SHA-256 of the token only. A session (family) is a chain of rotated
-- tokens; presenting a spent one revokes the family.
CREATE TABLE IF NOT EXISTS sharebuy_identity.sessions (
  session_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  token_hash BINARY(32) NOT NULL,
  family_id BIGINT UNSIGNED NOT NULL DEFAULT 0,
  user_id BIGINT UNSIGNED NOT NULL DEFAULT 0,
  terminal_id BIGINT UNSIGNED NOT NULL DEFAULT 0,
  role TINYINT UNSIGNED NOT NULL,
  merchant_id BIGINT UNSIGNED NOT NULL DEFAULT 0,
  centre_id BIGINT UNSIGNED NOT NULL DEFAULT 0,
  device_name VARCHAR(64) NOT NULL DEFAULT '',
  created_ms BIGINT NOT NULL,
  expires_ms BIGINT NOT NULL,
  spent_ms BIGINT NOT NULL DEFAULT 0,
  revoked_ms BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (session_id),
  UNIQUE KEY sessions_token (token_hash),
  KEY sessions_family (family_id),
  KEY sessions_user (user_id),
  KEY sessions_terminal (terminal_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- POS terminals. The pairing code is kept as SHA-256 only, until it is used or expires.
CREATE TABLE IF NOT EXISTS sharebuy_identity.terminals (
  terminal_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  merchant_id BIGINT UNSIGNED NOT NULL,
  label VARCHAR(64) NOT NULL,
  status TINYINT UNSIGNED NOT NULL,                 -- sharebuy.identity.v1.TerminalStatus
  device_name VARCHAR(64) NOT NULL DEFAULT '',
  pairing_hash BINARY(32) NULL,
  pairing_expires_ms BIGINT NOT NULL DEFAULT 0,
  created_ms BIGINT NOT NULL,
  paired_ms BIGINT NOT NULL DEFAULT 0,
  last_seen_ms BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (terminal_id),
  UNIQUE KEY terminals_pairing (pairing_hash),
  KEY terminals_merchant (merchant_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Member codes (QR): the nonce of each issued code, so a single-use code is spent once.
CREATE TABLE IF NOT EXISTS sharebuy_identity.member_codes (
  nonce BINARY(8) NOT NULL,
  member_id BIGINT UNSIGNED NOT NULL,
  card TINYINT(1) NOT NULL DEFAULT 0,
  issued_ms BIGINT NOT NULL,
  expires_ms BIGINT NOT NULL,
  consume_key VARCHAR(96) NULL,
  consumed_ms BIGINT NOT NULL DEFAULT 0,
  consumed_merchant_id BIGINT UNSIGNED NOT NULL DEFAULT 0,
  PRIMARY KEY (nonce),
  KEY member_codes_member (member_id, issued_ms)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Activations and repeat packs, keyed by the shop's payment reference (the idempotency key). first_activation is
-- the member id for an activation (unique: a member activates once) and NULL for a repeat pack.
CREATE TABLE IF NOT EXISTS sharebuy_identity.activations (
  payment_reference VARCHAR(64) NOT NULL,
  member_id BIGINT UNSIGNED NOT NULL,
  kind TINYINT UNSIGNED NOT NULL,                   -- 1 activation, 2 repeat pack
  first_activation BIGINT UNSIGNED NULL,
  pack_price_fen BIGINT NOT NULL,
  pack_cv_units BIGINT NOT NULL,
  unlocked_units BIGINT NOT NULL DEFAULT 0,
  referrer_kind TINYINT UNSIGNED NOT NULL DEFAULT 0,
  referrer_id BIGINT UNSIGNED NOT NULL DEFAULT 0,
  referrer_bonus_units BIGINT NOT NULL DEFAULT 0,
  transaction_id BIGINT UNSIGNED NOT NULL DEFAULT 0, -- 0 while the wallet has not confirmed
  active_after_units BIGINT NOT NULL DEFAULT 0,
  created_ms BIGINT NOT NULL,
  done_ms BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (payment_reference),
  UNIQUE KEY activations_first (first_activation),
  KEY activations_member (member_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The audit trail of security-relevant events. Never a password, token or code in clear.
CREATE TABLE IF NOT EXISTS sharebuy_identity.audit_events (
  event_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  type TINYINT UNSIGNED NOT NULL,                   -- sharebuy.identity.v1.AuditEventType
  occurred_ms BIGINT NOT NULL,
  actor_user_id BIGINT UNSIGNED NOT NULL DEFAULT 0,
  actor_role TINYINT UNSIGNED NOT NULL DEFAULT 0,
  subject_user_id BIGINT UNSIGNED NOT NULL DEFAULT 0,
  merchant_id BIGINT UNSIGNED NOT NULL DEFAULT 0,
  terminal_id BIGINT UNSIGNED NOT NULL DEFAULT 0,
  centre_id BIGINT UNSIGNED NOT NULL DEFAULT 0,
  peer VARCHAR(64) NOT NULL DEFAULT '',
  request_id VARCHAR(64) NOT NULL DEFAULT '',
  detail VARCHAR(200) NOT NULL DEFAULT '',
  PRIMARY KEY (event_id),
  KEY audit_type (type, event_id),
  KEY audit_subject (subject_user_id, event_id),
  KEY audit_merchant (merchant_id, event_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
