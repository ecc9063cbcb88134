
local now, life, cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local h = redis.call('HMGET', KEYS[1], 't', 'n')
local t, n, adding = tonumber(h[1]), tonumber(h[2]) or 0, tonumber(ARGV[4])
if t and (n + adding > cap or now - t >= life) then
  redis.call('UNLINK', KEYS[5])
  for i = 4, 2, -1 do redis.pcall('RENAME', KEYS[i], KEYS[i + 1]) end  -- missing: no-op
  local e = redis.call('HMGET', KEYS[1], 'e0', 'e1', 'e2')
  redis.call('HSET', KEYS[1], 'e1', e[1] or 0, 'e2', e[2] or 0, 'e3', e[3] or 0)
  t, n = now, 0
end
redis.call('HSET', KEYS[1], 't', t or now, 'n', n + adding, 'e0', now)
redis.call('EXPIRE', KEYS[1], ARGV[5])
return n + adding
