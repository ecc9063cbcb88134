
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local cur = redis.call('HGET', KEYS[1], 'secret')
if ARGV[3] == '1' and cur then return cur end
if cur and ARGV[2] ~= '' and cur ~= ARGV[1] then
  redis.call('HSET', KEYS[1], 'secret', ARGV[1], 'oldSecret', cur, 'oldSecretUntil', ARGV[2])
else
  redis.call('HSET', KEYS[1], 'secret', ARGV[1])
  redis.call('HDEL', KEYS[1], 'oldSecret', 'oldSecretUntil')
end
return ARGV[1]
