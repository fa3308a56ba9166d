-- Set field ARGV[1] of the hash KEYS[1] to ARGV[2] if the hash exists (its lifetime unchanged);
-- a hash that expired or was deleted stays gone (a bare HSET would make it again, without a
-- lifetime). Returns 1 when it set the field, 0 when there was no hash.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
