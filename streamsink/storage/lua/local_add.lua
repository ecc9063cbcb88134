
local zkey, ckey, bkey, skey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local prefix, now = ARGV[1], tonumber(ARGV[2])
local max_traces, max_spans, max_bytes = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local added, rejected, grown = 0, 0, 0
for i = 6, #ARGV, 3 do
  local tid, sid, span = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local key = prefix .. tid
  local old = redis.call('HSTRLEN', key, sid)
  local size = tonumber(redis.call('HGET', skey, tid) or '0')
  local fits = size - old + #span <= max_bytes
  if old == 0 and redis.call('HLEN', key) >= max_spans then fits = false end
  if fits then
    if redis.call('HSET', key, sid, span) == 1 then added = added + 1 end
    redis.call('HINCRBY', skey, tid, #span - old)
    grown = grown + #span - old
    redis.call('ZADD', zkey, now, tid)
  else
    rejected = rejected + 1
    if old > 0 then redis.call('ZADD', zkey, now, tid) end
  end
end
local total = redis.call('INCRBY', ckey, added)
local bytes = redis.call('INCRBY', bkey, grown)
local count = redis.call('ZCARD', zkey)
local dropped = 0
while count > max_traces or ((total > max_spans or bytes > max_bytes) and count > 1) do
  local oldest = redis.call('ZRANGE', zkey, 0, 0)[1]
  total = redis.call('DECRBY', ckey, redis.call('HLEN', prefix .. oldest))
  bytes = redis.call('DECRBY', bkey, tonumber(redis.call('HGET', skey, oldest) or '0'))
  redis.call('DEL', prefix .. oldest)
  redis.call('ZREM', zkey, oldest)
  redis.call('HDEL', skey, oldest)
  count = count - 1
  dropped = dropped + 1
end
return {added, dropped, rejected}
