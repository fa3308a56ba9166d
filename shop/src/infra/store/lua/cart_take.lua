-- Take an order's quantities (ARGV[2], ARGV[3], ... as product id, quantity pairs) out of the
-- cart hash KEYS[1], once per order: KEYS[2] marks it done for ARGV[1] ms. Lines added
-- meanwhile stay. Returns 1 when it took them, 0 when it had already.
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])
for i = 2, #ARGV, 2 do
  local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  local new = cur - tonumber(ARGV[i + 1])
  if new <= 0 then redis.call('HDEL', KEYS[1], ARGV[i]) else redis.call('HSET', KEYS[1], ARGV[i], new) end
end
return 1
