-- Count one event in KEYS[1] unless ARGV[2] (the limit) are counted already: then nothing
-- changes and the answer is limit + 1. The first event starts the window (ARGV[1] ms).
-- Returns {the count, the window's remaining ms}.
local n = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
local limit = tonumber(ARGV[2])
if n >= limit then return {limit + 1, redis.call('PTTL', KEYS[1])} end
n = redis.call('HINCRBY', KEYS[1], 'n', 1)
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {n, redis.call('PTTL', KEYS[1])}
