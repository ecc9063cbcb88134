
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
if not first then redis.call('ZREM', KEYS[2], ARGV[1]); return 0 end
local ms = tonumber(string.match(first[1], '^(%d+)'))
redis.call('ZADD', KEYS[2], math.max(ms, tonumber(ARGV[2])), ARGV[1])
return 1
