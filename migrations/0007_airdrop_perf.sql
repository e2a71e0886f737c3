-- 0007: the airdrop's phase timings (see docs/airdrop.md, "A day's run").
--
-- runs.start_done_ms     when START was recorded (wall clock, unix ms)
-- runs.snap_copied_ms    when the last snapshot batch was committed
-- runs.snap_done_ms      when CV_T, the count and the leftover threshold were recorded (the end of SNAPSHOT)
-- runs.credit_scan_ms    time spent reading the snapshot and computing the shares of the chunks (summed)
-- runs.credit_wallet_ms  time spent in Wallet/ApplyAirdropChunk (summed; overlaps the scan when pipelined)
-- runs.credit_record_ms  time spent recording the chunks (summed)
--
-- Every statement is safe to run again.

ALTER TABLE sharebuy_airdrop.runs
  ADD COLUMN IF NOT EXISTS start_done_ms    BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS snap_copied_ms   BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS snap_done_ms     BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS credit_scan_ms   BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS credit_wallet_ms BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS credit_record_ms BIGINT NOT NULL DEFAULT 0;
