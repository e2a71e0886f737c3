-- 0001: one schema per service, and one database account per service with rights on its own schema only.
--
-- The accounts are created locked and without a password: no password is ever committed. `sharebuyctl db
-- set-passwords` (also run by `sharebuyctl migrate up` when the variables are set) gives each account the password
-- from SB_DB_PASSWORD_IDENTITY, SB_DB_PASSWORD_WALLET, SB_DB_PASSWORD_MERCHANT, SB_DB_PASSWORD_AIRDROP,
-- SB_DB_PASSWORD_REGION and unlocks it. Each account exists for 'localhost' (the Unix socket) and '127.0.0.1'.
--
-- Services only read and write rows: tables are made by migrations, run by the administrator. Every statement is
-- written to be safe to run again (IF NOT EXISTS), see docs/migrations.md.

CREATE DATABASE IF NOT EXISTS sharebuy_identity CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE DATABASE IF NOT EXISTS sharebuy_wallet   CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE DATABASE IF NOT EXISTS sharebuy_merchant CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE DATABASE IF NOT EXISTS sharebuy_airdrop  CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE DATABASE IF NOT EXISTS sharebuy_region   CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

CREATE USER IF NOT EXISTS 'sb_identity'@'localhost' ACCOUNT LOCK;
CREATE USER IF NOT EXISTS 'sb_identity'@'127.0.0.1' ACCOUNT LOCK;
CREATE USER IF NOT EXISTS 'sb_wallet'@'localhost'   ACCOUNT LOCK;
CREATE USER IF NOT EXISTS 'sb_wallet'@'127.0.0.1'   ACCOUNT LOCK;
CREATE USER IF NOT EXISTS 'sb_merchant'@'localhost' ACCOUNT LOCK;
CREATE USER IF NOT EXISTS 'sb_merchant'@'127.0.0.1' ACCOUNT LOCK;
CREATE USER IF NOT EXISTS 'sb_airdrop'@'localhost'  ACCOUNT LOCK;
CREATE USER IF NOT EXISTS 'sb_airdrop'@'127.0.0.1'  ACCOUNT LOCK;
CREATE USER IF NOT EXISTS 'sb_region'@'localhost'   ACCOUNT LOCK;
CREATE USER IF NOT EXISTS 'sb_region'@'127.0.0.1'   ACCOUNT LOCK;

-- Row access only (no DDL, no GRANT): a compromised service cannot change its tables or reach another schema.
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE TEMPORARY TABLES, EXECUTE ON sharebuy_identity.* TO 'sb_identity'@'localhost';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE TEMPORARY TABLES, EXECUTE ON sharebuy_identity.* TO 'sb_identity'@'127.0.0.1';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE TEMPORARY TABLES, EXECUTE ON sharebuy_wallet.*   TO 'sb_wallet'@'localhost';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE TEMPORARY TABLES, EXECUTE ON sharebuy_wallet.*   TO 'sb_wallet'@'127.0.0.1';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE TEMPORARY TABLES, EXECUTE ON sharebuy_merchant.* TO 'sb_merchant'@'localhost';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE TEMPORARY TABLES, EXECUTE ON sharebuy_merchant.* TO 'sb_merchant'@'127.0.0.1';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE TEMPORARY TABLES, EXECUTE ON sharebuy_airdrop.*  TO 'sb_airdrop'@'localhost';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE TEMPORARY TABLES, EXECUTE ON sharebuy_airdrop.*  TO 'sb_airdrop'@'127.0.0.1';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE TEMPORARY TABLES, EXECUTE ON sharebuy_region.*   TO 'sb_region'@'localhost';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE TEMPORARY TABLES, EXECUTE ON sharebuy_region.*   TO 'sb_region'@'127.0.0.1';
