-- 4: accounts remember the request that created them (MariaDB)
-- nullable: accounts made before, by the seed, and without a request id, have none. nginx sends
-- a registration whose replica died to the next one with the same request id; that request
-- finding the account its own first attempt made is a replay, not a taken email.

ALTER TABLE users ADD COLUMN IF NOT EXISTS created_by VARCHAR(128) NULL;
