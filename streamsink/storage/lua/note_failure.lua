
if redis.call('TYPE', KEYS[1]).ok == 'string' then
  local old = redis.call('GET', KEYS[1])
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'n', old)
end
local n
if ARGV[1] == '1' then n = redis.call('HINCRBY', KEYS[1], 'n', 1)
else n = tonumber(redis.call('HGET', KEYS[1], 'n') or '0') end
redis.call('HSETNX', KEYS[1], 'since', ARGV[2])
return {n, tonumber(redis.call('HGET', KEYS[1], 'since'))}
