-- 0005: the merchant service's tables (sharebuy_merchant): merchants with their onboarding state, and the sales
-- recorded at their tills. See docs/merchant.md.
--
-- Amounts are BIGINT in fixed units (fen; CV and SP in 0.0001; the price in micro-yuan per SP; rates in basis
-- points); coordinates are micro-degrees (WGS-84). Every statement is safe to run again.

-- One merchant (商家). status is sharebuy.merchant.v1.MerchantStatus (1 pending, 2 approved, 3 rejected,
-- 4 suspended). licence_active holds the licence number while the merchant is pending, approved or suspended and
-- NULL once rejected, so that the unique key refuses a second live merchant with one licence but lets a rejected
-- applicant apply again. The concession rate in effect is rate_bp, or pending_rate_bp from pending_rate_day on
-- (read lazily: no job has to run at the cut-off).
CREATE TABLE IF NOT EXISTS sharebuy_merchant.merchants (
  merchant_id       BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  name              VARCHAR(64)  NOT NULL,
  licence_no        CHAR(18) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  licence_active    CHAR(18) CHARACTER SET ascii COLLATE ascii_bin NULL,
  address           VARCHAR(200) NOT NULL,
  lat_e6            INT NOT NULL,
  lon_e6            INT NOT NULL,
  district_code     CHAR(6) CHARACTER SET ascii NOT NULL,
  contact_name      VARCHAR(64)  NOT NULL,
  contact_phone     VARCHAR(20) CHARACTER SET ascii NOT NULL,
  status            TINYINT UNSIGNED NOT NULL,
  status_reason     VARCHAR(200) NOT NULL DEFAULT '',
  rate_bp           INT NOT NULL,
  pending_rate_bp   INT NOT NULL DEFAULT 0,
  pending_rate_day  CHAR(10) CHARACTER SET ascii NOT NULL DEFAULT '',
  owner_user_id     BIGINT UNSIGNED NOT NULL,
  referrer_kind     TINYINT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'common.v1.OwnerKind; 0 none',
  referrer_id       BIGINT UNSIGNED NOT NULL DEFAULT 0,
  referrer_vip      TINYINT(1) NOT NULL DEFAULT 0 COMMENT 'a member referrer seen VIP (VIP never ends)',
  referral_code     VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  approved_by_centre_id BIGINT UNSIGNED NOT NULL DEFAULT 0,
  owner_granted     TINYINT(1) NOT NULL DEFAULT 0 COMMENT '1 once identity granted MERCHANT_OWNER',
  applied_ms        BIGINT NOT NULL,
  status_changed_ms BIGINT NOT NULL,
  status_changed_by BIGINT UNSIGNED NOT NULL DEFAULT 0,
  PRIMARY KEY (merchant_id),
  UNIQUE KEY merchants_licence_active (licence_active),
  UNIQUE KEY merchants_referral_code (referral_code),
  KEY merchants_owner (owner_user_id, merchant_id),
  KEY merchants_district (district_code, status, merchant_id),
  KEY merchants_geo (status, lat_e6, lon_e6)
) ENGINE=InnoDB AUTO_INCREMENT=1000 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One sale. A row is written as state 1 (pending) BEFORE the wallet transaction is posted, with the exact request
-- that posts it (post_request, a packed wallet.v1.PostTransactionRequest), and set to state 2 (recorded) after: a
-- retry that finds a pending row posts the same request again — the wallet returns the first transaction for the
-- same key — and completes it, so a sale is never lost and never posted twice. code_hash (SHA-256 of the member
-- code), spend_fen and terminal_id are the fingerprint a retry must match. void_state: 0 none, 1 pending (the
-- reversal may or may not be posted), 2 voided.
CREATE TABLE IF NOT EXISTS sharebuy_merchant.sales (
  merchant_id       BIGINT UNSIGNED NOT NULL,
  sale_id           VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  seq               BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  state             TINYINT UNSIGNED NOT NULL,
  terminal_id       BIGINT UNSIGNED NOT NULL,
  cashier_user_id   BIGINT UNSIGNED NOT NULL,
  code_hash         BINARY(32) NOT NULL,
  member_id         BIGINT UNSIGNED NOT NULL,
  member_masked     VARCHAR(20) CHARACTER SET ascii NOT NULL DEFAULT '',
  member_vip        TINYINT(1) NOT NULL,
  spend_fen         BIGINT NOT NULL,
  rate_bp           INT NOT NULL,
  price_micro       BIGINT NOT NULL,
  member_cv         BIGINT NOT NULL,
  merchant_cv       BIGINT NOT NULL,
  deposit_sp        BIGINT NOT NULL,
  referrer_kind     TINYINT UNSIGNED NOT NULL DEFAULT 0,
  referrer_id       BIGINT UNSIGNED NOT NULL DEFAULT 0,
  referrer_sp       BIGINT NOT NULL DEFAULT 0,
  referrer_cv       BIGINT NOT NULL DEFAULT 0,
  referrer2_kind    TINYINT UNSIGNED NOT NULL DEFAULT 0,
  referrer2_id      BIGINT UNSIGNED NOT NULL DEFAULT 0,
  referrer2_sp      BIGINT NOT NULL DEFAULT 0,
  referrer2_cv      BIGINT NOT NULL DEFAULT 0,
  mref_kind         TINYINT UNSIGNED NOT NULL DEFAULT 0,
  mref_id           BIGINT UNSIGNED NOT NULL DEFAULT 0,
  mref_sp           BIGINT NOT NULL DEFAULT 0,
  centre_id         BIGINT UNSIGNED NOT NULL DEFAULT 0,
  centre_sp         BIGINT NOT NULL DEFAULT 0,
  parent_centre_id  BIGINT UNSIGNED NOT NULL DEFAULT 0,
  parent_centre_sp  BIGINT NOT NULL DEFAULT 0,
  burned_sp         BIGINT NOT NULL,
  post_request      BLOB NOT NULL,
  tx_id             BIGINT UNSIGNED NOT NULL DEFAULT 0,
  deposit_left_sp   BIGINT NOT NULL DEFAULT 0,
  recorded_ms       BIGINT NOT NULL,
  business_day      CHAR(10) CHARACTER SET ascii NOT NULL,
  captured_ms       BIGINT NOT NULL DEFAULT 0,
  void_id           VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL,
  void_state        TINYINT UNSIGNED NOT NULL DEFAULT 0,
  void_reason       VARCHAR(200) NOT NULL DEFAULT '',
  voided_ms         BIGINT NOT NULL DEFAULT 0,
  voided_by         BIGINT UNSIGNED NOT NULL DEFAULT 0,
  void_tx_id        BIGINT UNSIGNED NOT NULL DEFAULT 0,
  void_deposit_left_sp BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (merchant_id, sale_id),
  UNIQUE KEY sales_seq (seq),
  UNIQUE KEY sales_void (merchant_id, void_id),
  KEY sales_list (merchant_id, seq),
  KEY sales_day (merchant_id, business_day, terminal_id, seq)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
