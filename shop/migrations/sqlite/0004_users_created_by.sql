-- 4: accounts remember the request that created them (SQLite)
-- nullable: accounts made before, by the seed, and without a request id, have none

ALTER TABLE users ADD COLUMN created_by TEXT;
