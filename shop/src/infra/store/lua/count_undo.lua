-- Take one event back from KEYS[1] (a reserved attempt that succeeded), never below zero,
-- never creating the key. Returns the count.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local n = redis.call('HINCRBY', KEYS[1], 'n', -1)
if n < 0 then redis.call('HSET', KEYS[1], 'n', 0); n = 0 end
return n
