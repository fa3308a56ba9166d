-- Add ARGV[2] to cart line ARGV[1] of the cart hash KEYS[1], at most once per operation key
-- KEYS[2] (optional). Above the maximum ARGV[3] the add is refused, or with ARGV[5] == '1' the
-- line is set to the maximum. ARGV[4]: the cart's lifetime (ms); ARGV[6]: the operation key's.
-- Returns {ok (1/0), the line's quantity, replayed (1/0), the cart hash as the add left it}.
if KEYS[2] then
  local done = redis.call('GET', KEYS[2])
  if done then
    local sep = string.find(done, ':')
    return {tonumber(string.sub(done, 1, sep - 1)), tonumber(string.sub(done, sep + 1)), 1,
            redis.call('HGETALL', KEYS[1])}
  end
end
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local new = cur + tonumber(ARGV[2])
local max = tonumber(ARGV[3])
local ok = 1
if new > max then
  if ARGV[5] == '1' then new = max else ok = 0 end
end
if ok == 1 then
  if new <= 0 then
    redis.call('HDEL', KEYS[1], ARGV[1])
  else
    redis.call('HSET', KEYS[1], ARGV[1], new)
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
else
  new = cur
end
if KEYS[2] then redis.call('SET', KEYS[2], ok .. ':' .. new, 'PX', ARGV[6]) end
return {ok, new, 0, redis.call('HGETALL', KEYS[1])}
