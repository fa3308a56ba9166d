-- Add the member ARGV[2] to the set KEYS[1] and let the set live at least ARGV[1] ms more (an
-- account's sessions: the set outlives the newest of them). Answers the set's size.
redis.call('SADD', KEYS[1], ARGV[2])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return redis.call('SCARD', KEYS[1])
