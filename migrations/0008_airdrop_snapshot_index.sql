-- 0008: the snapshot's secondary index follows the copy (see docs/airdrop.md, "Reading").
--
-- owner_day (owner_kind, owner_id, business_day) put each day's row of an owner next to its earlier days, so a
-- day's copy inserted its million rows at a million scattered places of an index that grows by a million rows a
-- day. day_account (business_day, account_id) grows at its end only: a day's rows arrive in account id order.
-- GetMyAllotments finds an owner's CV account through the read-only view airdrop_cv_accounts and reads each day's
-- row by (business_day, account_id).
--
-- Every statement is safe to run again.

ALTER TABLE sharebuy_airdrop.snapshot
  ADD INDEX IF NOT EXISTS day_account (business_day, account_id),
  DROP INDEX IF EXISTS owner_day;

-- The active CV account of each member, merchant and centre (account rows never change once created).
CREATE OR REPLACE SQL SECURITY DEFINER VIEW sharebuy_wallet.airdrop_cv_accounts AS
  SELECT account_id, owner_kind, owner_id FROM sharebuy_wallet.accounts WHERE asset = 2 AND owner_kind <> 0;

GRANT SELECT ON sharebuy_wallet.airdrop_cv_accounts TO 'sb_airdrop'@'localhost';
GRANT SELECT ON sharebuy_wallet.airdrop_cv_accounts TO 'sb_airdrop'@'127.0.0.1';
