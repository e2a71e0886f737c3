-- 0006: the airdrop's run state (see docs/airdrop.md).
--
-- runs       one row per business day started: status, phase, the figures fixed at the start (release, price) and
--            after the snapshot (participants, CV_T, the leftover threshold), progress, totals, timings.
-- snapshot   the participants of a day's run and their active CV, copied from the wallet in chunks at the start
--            (seq = 0-based position in account id order). The allotment is computed from here only, so it does
--            not change when CV moves during the run, and a resumed run computes exactly the same numbers.
--            Each account's share, cost and cut are a pure function of its row and the run's row (economy.h),
--            so they are not stored again: GetMyAllotments recomputes them.
-- chunks     one row per chunk credited through Wallet/ApplyAirdropChunk (status 2 = done) with its totals and
--            the ledger transactions it made (tx_map: pairs of little-endian u32 seq offset in the chunk and u64
--            transaction id, the first account of each ledger transaction).
--
-- Every statement is safe to run again.

CREATE TABLE IF NOT EXISTS sharebuy_airdrop.runs (
  business_day    CHAR(10) CHARACTER SET ascii NOT NULL,
  status          TINYINT UNSIGNED NOT NULL COMMENT 'airdrop.v1.RunStatus: 1 running, 2 completed, 3 interrupted',
  phase           TINYINT UNSIGNED NOT NULL DEFAULT 0 COMMENT '0 start, 1 snapshot, 2 credit, 3 done',
  trigger_kind    TINYINT UNSIGNED NOT NULL COMMENT 'airdrop.v1.RunTrigger',
  started_by      BIGINT UNSIGNED NOT NULL DEFAULT 0,
  schedule_sp     BIGINT NOT NULL DEFAULT 0,
  release_sp      BIGINT NOT NULL DEFAULT 0,
  price_micro     BIGINT NOT NULL DEFAULT 0 COMMENT 'the price fixed for the next business day; the day''s costs use it',
  prev_price_micro BIGINT NOT NULL DEFAULT 0,
  pool_fen        BIGINT NOT NULL DEFAULT 0,
  circulating_sp  BIGINT NOT NULL DEFAULT 0,
  snap_after      BIGINT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'keyset cursor of the snapshot (account id)',
  snap_count      BIGINT UNSIGNED NOT NULL DEFAULT 0,
  account_count   BIGINT UNSIGNED NOT NULL DEFAULT 0,
  cv_total        BIGINT NOT NULL DEFAULT 0,
  id_max          BIGINT UNSIGNED NOT NULL DEFAULT 0,
  leftover_sp     BIGINT NOT NULL DEFAULT 0,
  thr_none        TINYINT NOT NULL DEFAULT 1,
  thr_rem         BIGINT NOT NULL DEFAULT 0,
  thr_id          BIGINT UNSIGNED NOT NULL DEFAULT 0,
  chunk_accounts  INT UNSIGNED NOT NULL,
  chunks_total    INT UNSIGNED NOT NULL DEFAULT 0,
  chunks_done     INT UNSIGNED NOT NULL DEFAULT 0,
  accounts_done   BIGINT UNSIGNED NOT NULL DEFAULT 0,
  allotted_sp     BIGINT NOT NULL DEFAULT 0,
  cut_sp          BIGINT NOT NULL DEFAULT 0,
  cost_cv         BIGINT NOT NULL DEFAULT 0,
  started_ms      BIGINT NOT NULL,
  finished_ms     BIGINT NOT NULL DEFAULT 0,
  resumes         INT UNSIGNED NOT NULL DEFAULT 0,
  last_error      VARCHAR(400) NOT NULL DEFAULT '',
  PRIMARY KEY (business_day)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS sharebuy_airdrop.snapshot (
  business_day  CHAR(10) CHARACTER SET ascii NOT NULL,
  seq           INT UNSIGNED NOT NULL,
  account_id    BIGINT UNSIGNED NOT NULL COMMENT 'the wallet''s active CV account: the tie-break id',
  owner_kind    TINYINT UNSIGNED NOT NULL,
  owner_id      BIGINT UNSIGNED NOT NULL,
  cv_units      BIGINT NOT NULL,
  PRIMARY KEY (business_day, seq),
  KEY owner_day (owner_kind, owner_id, business_day)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS sharebuy_airdrop.chunks (
  business_day  CHAR(10) CHARACTER SET ascii NOT NULL,
  chunk_no      INT UNSIGNED NOT NULL,
  status        TINYINT UNSIGNED NOT NULL COMMENT '2 done',
  accounts      INT UNSIGNED NOT NULL,
  credited      INT UNSIGNED NOT NULL,
  sp_units      BIGINT NOT NULL,
  cost_cv_units BIGINT NOT NULL,
  cut_sp_units  BIGINT NOT NULL,
  tx_map        BLOB NOT NULL,
  done_ms       BIGINT NOT NULL,
  PRIMARY KEY (business_day, chunk_no)
) ENGINE=InnoDB;

-- The airdrop reads the wallet's active CV set-based through this view only (read-only; the wallet owns the ledger).
CREATE OR REPLACE SQL SECURITY DEFINER VIEW sharebuy_wallet.airdrop_active_cv AS
  SELECT a.account_id, a.owner_kind, a.owner_id, b.balance AS cv_units
  FROM sharebuy_wallet.accounts a
  JOIN sharebuy_wallet.balances b ON b.account_id = a.account_id AND b.shard = 0
  WHERE a.asset = 2 AND a.owner_kind <> 0 AND b.balance > 0;

GRANT SELECT ON sharebuy_wallet.airdrop_active_cv TO 'sb_airdrop'@'localhost';
GRANT SELECT ON sharebuy_wallet.airdrop_active_cv TO 'sb_airdrop'@'127.0.0.1';
