-- 0010: a day's snapshot is stored in blocks of up to 256 participants (see docs/airdrop.md, "A day's run").
--
-- snapshot_blocks  one row per block: the participants at seq, seq + 1, …, seq + n − 1 (n ≤ 256, positions as
--                  before: stream 0 from 0, stream 1 from 2^31; a block never spans two streams), in account id
--                  order, each as a fixed record of 63 bytes in `recs`:
--                    '#', account id (20 digits), owner kind (3), owner id (20), active CV units (19),
--                  zero-padded decimal. '#' starts every record and nothing else, so a record is found by its
--                  account with INSTR(recs, '#' + the 20 digits). first_account / last_account are the block's
--                  first and last account id (a day's blocks in seq order have increasing ids: GetMyAllotments
--                  finds an account's block by day_last), cv_sum the sum of its CV.
--                  Copying a million participants row by row into `snapshot` cost InnoDB a row insert into two
--                  indexes per participant (5.4 s of a 21 s run); a block is one row for 256 of them.
--
-- The rows of `snapshot` are converted (same positions, so runs in any phase go on unchanged: the streams'
-- cursors and the chunks' tx_map offsets stay valid), then `snapshot` is dropped.
--
-- Every statement is safe to run again (a re-run after the drop finds an empty `snapshot`, converts nothing and
-- drops it again).

CREATE TABLE IF NOT EXISTS sharebuy_airdrop.snapshot_blocks (
  business_day   CHAR(10) CHARACTER SET ascii NOT NULL,
  seq            INT UNSIGNED NOT NULL COMMENT 'position of the block''s first participant',
  n              SMALLINT UNSIGNED NOT NULL COMMENT 'participants in the block, 1..256',
  first_account  BIGINT UNSIGNED NOT NULL,
  last_account   BIGINT UNSIGNED NOT NULL,
  cv_sum         DECIMAL(24,0) NOT NULL,
  recs           MEDIUMBLOB NOT NULL COMMENT 'n records of 63 bytes in account id order',
  PRIMARY KEY (business_day, seq),
  KEY day_last (business_day, last_account)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS sharebuy_airdrop.snapshot (
  business_day  CHAR(10) CHARACTER SET ascii NOT NULL,
  seq           INT UNSIGNED NOT NULL,
  account_id    BIGINT UNSIGNED NOT NULL,
  owner_kind    TINYINT UNSIGNED NOT NULL,
  owner_id      BIGINT UNSIGNED NOT NULL,
  cv_units      BIGINT NOT NULL,
  PRIMARY KEY (business_day, seq)
) ENGINE=InnoDB;

SET SESSION group_concat_max_len = 1048576;

-- Blocks of 256 positions (2^31 is a multiple of 256: no block spans the streams).
INSERT IGNORE INTO sharebuy_airdrop.snapshot_blocks
  (business_day, seq, n, first_account, last_account, cv_sum, recs)
  SELECT business_day, MIN(seq), COUNT(*), MIN(account_id), MAX(account_id), SUM(cv_units),
    GROUP_CONCAT(CONCAT('#', LPAD(account_id, 20, '0'), LPAD(owner_kind, 3, '0'), LPAD(owner_id, 20, '0'),
                        LPAD(cv_units, 19, '0')) ORDER BY seq SEPARATOR '')
  FROM sharebuy_airdrop.snapshot GROUP BY business_day, seq DIV 256;

DROP TABLE IF EXISTS sharebuy_airdrop.snapshot;
