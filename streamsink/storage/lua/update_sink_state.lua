
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] ~= '' and redis.call('HGET', KEYS[1], 'cursor') ~= ARGV[1] then return -1 end
for i = 2, #ARGV, 2 do
  local old = ARGV[i] == 'status' and (redis.call('HGET', KEYS[1], 'status') or 'enabled')
  if old and old ~= ARGV[i + 1] then
    redis.call('HINCRBY', KEYS[2], old, -1); redis.call('HINCRBY', KEYS[2], ARGV[i + 1], 1)
  end
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[1], ARGV[i])
  else redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
return 1
