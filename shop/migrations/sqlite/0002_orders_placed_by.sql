-- 2: orders remember the request that placed them (SQLite)
-- nullable: orders placed before, and without a request id, have none

ALTER TABLE orders ADD COLUMN placed_by TEXT;
