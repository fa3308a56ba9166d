-- Set cart line ARGV[1] of the cart hash KEYS[1] to ARGV[2]; the cart lives ARGV[3] ms more.
-- Returns the cart hash as the change left it.
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return redis.call('HGETALL', KEYS[1])
