-- Replace the hash KEYS[1] with the field, value pairs ARGV[2], ARGV[3], ... and let it live
-- ARGV[1] ms (a session).
redis.call('DEL', KEYS[1])
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
