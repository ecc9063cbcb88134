
local idx, prefix = KEYS[1], ARGV[1]
local now, at = tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', idx, '-inf', now)
local sessions = nil
if #ARGV > 3 then
  sessions = {}
  for i = 4, #ARGV do sessions[ARGV[i]] = true end
end
local items = redis.call('ZRANGE', idx, 0, -1, 'WITHSCORES')
local n = 0
for i = 1, #items, 2 do
  local digest, expires = items[i], tonumber(items[i + 1])
  local key = prefix .. digest
  local session = redis.call('HGET', key, 'sessionId')
  if not session then
    redis.call('ZREM', idx, digest)
  elseif (sessions == nil or sessions[session]) and expires > at then
    n = n + 1
    if at <= now then
      redis.call('DEL', key)
      redis.call('ZREM', idx, digest)
    else
      redis.call('HSET', key, 'expiresAt', ARGV[3])
      redis.call('PEXPIREAT', key, at)
      redis.call('ZADD', idx, at, digest)
    end
  end
end
local last = redis.call('ZRANGE', idx, -1, -1, 'WITHSCORES')
if last[2] then redis.call('PEXPIREAT', idx, last[2]) end
return n
