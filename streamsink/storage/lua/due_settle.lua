
local wait = tonumber(redis.call('GET', KEYS[4]) or '0')
if redis.call('EXISTS', KEYS[2], KEYS[3]) == 0 and wait <= tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1]); return 1
end
if ARGV[3] ~= '' then redis.call('ZADD', KEYS[1], 'XX', ARGV[3], ARGV[1]) end
return 0
