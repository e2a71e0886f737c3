-- 0009: the snapshot is copied in up to two streams at once (see docs/airdrop.md, "A day's run").
--
-- snapshot_streams  one row per stream of a day's snapshot: the participants with account ids in (lo, hi] are
--                   copied in account id order to seq = seq_base + 0, 1, 2, …; after_account and copied are the
--                   stream's keyset cursor, committed with each batch; done once its last batch was short. Stream 0
--                   starts at seq 0, stream 1 (the upper half of the account ids) at seq 2^31, so each stream
--                   appends to its own end of the snapshot's indexes and takes no lock the other needs.
-- runs.chunks_first the chunks of stream 0 (its ceil(count / chunk_accounts)); chunk k ≥ chunks_first covers the
--                   seq range from 2^31 + (k − chunks_first) × chunk_accounts. NULL for runs made before this
--                   migration: all their chunks are stream 0's (chunks_first = chunks_total).
--
-- A run caught by this migration in its SNAPSHOT phase goes on as one stream from its cursor.
--
-- Every statement is safe to run again.

CREATE TABLE IF NOT EXISTS sharebuy_airdrop.snapshot_streams (
  business_day   CHAR(10) CHARACTER SET ascii NOT NULL,
  stream         TINYINT UNSIGNED NOT NULL,
  seq_base       INT UNSIGNED NOT NULL,
  lo             BIGINT UNSIGNED NOT NULL COMMENT 'account ids above lo …',
  hi             BIGINT UNSIGNED NOT NULL COMMENT '… up to hi (inclusive)',
  after_account  BIGINT UNSIGNED NOT NULL COMMENT 'the cursor: the last account id copied (lo before the first batch)',
  copied         BIGINT UNSIGNED NOT NULL DEFAULT 0,
  done           TINYINT NOT NULL DEFAULT 0,
  PRIMARY KEY (business_day, stream)
) ENGINE=InnoDB;

ALTER TABLE sharebuy_airdrop.runs
  ADD COLUMN IF NOT EXISTS chunks_first INT UNSIGNED NULL COMMENT 'chunks of snapshot stream 0 (migration 0009)';

INSERT IGNORE INTO sharebuy_airdrop.snapshot_streams
  (business_day, stream, seq_base, lo, hi, after_account, copied, done)
  SELECT business_day, 0, 0, 0, 18446744073709551615, snap_after, snap_count, 0
  FROM sharebuy_airdrop.runs WHERE phase = 1 AND snap_count > 0;
