-- 0002: the wallet's ledger (see docs/wallet.md).
--
-- accounts      one row per ledger account: the seven system accounts (ids 1..7 = common.v1.SystemAccount) and,
--               from id 1000 on, three per member, merchant or centre (locked CV, active CV, SP). Never updated.
-- balances      the balance of an account, split into `shards` rows for the hot system accounts (summed on read)
--               so that concurrent sales do not queue on one row; every other account has the single shard 0.
-- transactions  the append-only journal, one row per ledger transaction, hash-chained within one of 32 chains.
-- entries       the legs of each transaction (one per account touched), append-only.
-- chain_heads   the last sequence number and hash of each chain.
-- ledger_meta   the SP cap fixed at the genesis.
-- guide_prices  the guide price of each business day, fixed by that day's airdrop run.
-- purchases     treasury orders of merchants buying SP for their deposit.
--
-- Amounts are BIGINT in fixed units (fen; CV and SP in 0.0001); every statement is safe to run again.

CREATE TABLE IF NOT EXISTS sharebuy_wallet.accounts (
  account_id  BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  owner_kind  TINYINT UNSIGNED NOT NULL COMMENT '0 system, 1 member, 2 merchant, 3 centre (common.v1.OwnerKind)',
  owner_id    BIGINT UNSIGNED NOT NULL COMMENT 'member/merchant/centre id; the SystemAccount value for system accounts',
  asset       TINYINT UNSIGNED NOT NULL COMMENT 'common.v1.Asset',
  shards      SMALLINT UNSIGNED NOT NULL DEFAULT 1,
  created_ms  BIGINT NOT NULL,
  PRIMARY KEY (account_id),
  UNIQUE KEY owner_asset (owner_kind, owner_id, asset)
) ENGINE=InnoDB AUTO_INCREMENT=1000;

CREATE TABLE IF NOT EXISTS sharebuy_wallet.balances (
  account_id  BIGINT UNSIGNED NOT NULL,
  shard       SMALLINT UNSIGNED NOT NULL,
  balance     BIGINT NOT NULL DEFAULT 0,
  updated_ms  BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (account_id, shard)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS sharebuy_wallet.transactions (
  tx_id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  scope           VARCHAR(40) CHARACTER SET ascii COLLATE ascii_bin NOT NULL COMMENT 'whose key: svc, genesis, tr:<member>, pay',
  idem_key        VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  request_hash    BINARY(32) NOT NULL,
  cause_kind      TINYINT UNSIGNED NOT NULL,
  cause_ref       VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  cause_merchant  BIGINT UNSIGNED NOT NULL DEFAULT 0,
  memo            VARCHAR(200) NOT NULL DEFAULT '',
  posted_ms       BIGINT NOT NULL,
  business_day    CHAR(10) CHARACTER SET ascii NOT NULL,
  reverses_tx_id  BIGINT UNSIGNED NULL,
  chain_part      SMALLINT UNSIGNED NOT NULL,
  chain_seq       BIGINT UNSIGNED NOT NULL,
  prev_hash       BINARY(32) NOT NULL,
  chain_hash      BINARY(32) NOT NULL,
  PRIMARY KEY (tx_id),
  UNIQUE KEY scope_key (scope, idem_key),
  UNIQUE KEY reverses (reverses_tx_id),
  UNIQUE KEY chain (chain_part, chain_seq),
  KEY posted (posted_ms)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS sharebuy_wallet.entries (
  entry_id       BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  tx_id          BIGINT UNSIGNED NOT NULL,
  account_id     BIGINT UNSIGNED NOT NULL,
  shard          SMALLINT UNSIGNED NOT NULL,
  asset          TINYINT UNSIGNED NOT NULL,
  amount         BIGINT NOT NULL,
  balance_after  BIGINT NULL COMMENT 'NULL on sharded system accounts (the total is summed on read)',
  reason         TINYINT UNSIGNED NOT NULL COMMENT 'common.v1.LegReason',
  PRIMARY KEY (entry_id),
  KEY tx (tx_id),
  KEY account_entry (account_id, entry_id)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS sharebuy_wallet.chain_heads (
  chain_part  SMALLINT UNSIGNED NOT NULL,
  chain_seq   BIGINT UNSIGNED NOT NULL DEFAULT 0,
  chain_hash  BINARY(32) NOT NULL,
  PRIMARY KEY (chain_part)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS sharebuy_wallet.ledger_meta (
  name   VARCHAR(32) CHARACTER SET ascii NOT NULL,
  value  BIGINT NOT NULL,
  PRIMARY KEY (name)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS sharebuy_wallet.guide_prices (
  business_day          CHAR(10) CHARACTER SET ascii NOT NULL,
  price_micro_yuan      BIGINT NOT NULL,
  backing_pool_fen      BIGINT NOT NULL,
  circulating_sp_units  BIGINT NOT NULL,
  initial_price         TINYINT NOT NULL,
  fixed_by_airdrop_day  CHAR(10) CHARACTER SET ascii NOT NULL,
  fixed_ms              BIGINT NOT NULL,
  PRIMARY KEY (business_day)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS sharebuy_wallet.purchases (
  purchase_id        BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  merchant_id        BIGINT UNSIGNED NOT NULL,
  idem_key           VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  request_hash       BINARY(32) NOT NULL,
  sp_units           BIGINT NOT NULL,
  price_micro_yuan   BIGINT NOT NULL,
  amount_fen         BIGINT NOT NULL,
  status             TINYINT UNSIGNED NOT NULL COMMENT 'wallet.v1.PurchaseStatus',
  business_day       CHAR(10) CHARACTER SET ascii NOT NULL,
  created_ms         BIGINT NOT NULL,
  expires_ms         BIGINT NOT NULL,
  paid_ms            BIGINT NOT NULL DEFAULT 0,
  payment_reference  VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL,
  tx_id              BIGINT UNSIGNED NOT NULL DEFAULT 0,
  cancel_reason      VARCHAR(200) NOT NULL DEFAULT '',
  PRIMARY KEY (purchase_id),
  UNIQUE KEY merchant_key (merchant_id, idem_key),
  UNIQUE KEY payment (payment_reference),
  KEY merchant_purchase (merchant_id, purchase_id)
) ENGINE=InnoDB;

-- The system accounts. The hot ones (burned, CV issued, CV airdrop spent, the pool, payments received) have 16
-- balance shards; unreleased and treasury keep one row because they must never go below zero.
INSERT IGNORE INTO sharebuy_wallet.accounts (account_id, owner_kind, owner_id, asset, shards, created_ms) VALUES
  (1, 0, 1, 3, 1, 0),
  (2, 0, 2, 3, 1, 0),
  (3, 0, 3, 3, 16, 0),
  (4, 0, 4, 1, 16, 0),
  (5, 0, 5, 1, 16, 0),
  (6, 0, 6, 4, 16, 0),
  (7, 0, 7, 4, 16, 0);

INSERT IGNORE INTO sharebuy_wallet.balances (account_id, shard, balance, updated_ms)
  WITH RECURSIVE n (shard) AS (SELECT 0 UNION ALL SELECT shard + 1 FROM n WHERE shard < 15)
  SELECT a.account_id, n.shard, 0, 0 FROM sharebuy_wallet.accounts a JOIN n ON n.shard < a.shards
  WHERE a.owner_kind = 0;

INSERT IGNORE INTO sharebuy_wallet.chain_heads (chain_part, chain_seq, chain_hash)
  WITH RECURSIVE n (part) AS (SELECT 0 UNION ALL SELECT part + 1 FROM n WHERE part < 31)
  SELECT n.part, 0, REPEAT(CHAR(0), 32) FROM n;

-- The airdrop reads the accounts with active CV (set-based, in its own transaction) through this view only.
CREATE OR REPLACE SQL SECURITY DEFINER VIEW sharebuy_wallet.active_cv AS
  SELECT a.account_id, a.owner_kind, a.owner_id, b.balance AS cv_units
  FROM sharebuy_wallet.accounts a
  JOIN sharebuy_wallet.balances b ON b.account_id = a.account_id AND b.shard = 0
  WHERE a.asset = 2 AND a.owner_kind <> 0 AND b.balance > 0;

GRANT SELECT ON sharebuy_wallet.active_cv TO 'sb_airdrop'@'localhost';
GRANT SELECT ON sharebuy_wallet.active_cv TO 'sb_airdrop'@'127.0.0.1';
