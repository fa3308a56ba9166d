-- 2: orders remember the request that placed them (MariaDB)
-- nullable: orders placed before, and without a request id, have none

ALTER TABLE orders ADD COLUMN IF NOT EXISTS placed_by VARCHAR(128) NULL;
