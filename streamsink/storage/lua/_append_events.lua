
local function append_events(first)
  local sid = ARGV[1]
  if ARGV[2] == 'uid' then
    sid = redis.call('GET', KEYS[1])
    if not sid then return false end
  elseif redis.call('EXISTS', KEYS[1]) == 0 then
    return false
  end
  local key, now, meta, size = ARGV[3] .. sid, tonumber(ARGV[4]), ARGV[10] .. sid, 0
  local function trim(force)
    return trim_log(key, ARGV[7] .. sid .. ARGV[8], ARGV[9], meta, KEYS[2], now,
                    tonumber(ARGV[11]), force, ARGV[14], tonumber(ARGV[13]))
  end
  for i = first, #ARGV, 2 do size = size + #ARGV[i] + #ARGV[i + 1] + $overhead end
  local budget = tonumber(ARGV[12])
  if budget > 0 and held_bytes(meta, key) + size > budget then
    local held = trim(true)[2]
    if held + size > budget then
      return redis.error_reply(string.format('STREAM_OVER_BUDGET %s %d %d', sid, held, size))
    end
  end
  for i = first, #ARGV, 2 do
    local added = redis.pcall('XADD', key, '*', '$t', ARGV[i], '$p', ARGV[i + 1])
    if type(added) == 'table' and added.err then
      if i == first then trim(true) end
      return added
    end
  end
  redis.call('HINCRBY', meta, 'bytes', size)
  redis.call('HINCRBY', KEYS[2], ARGV[5], ARGV[6])
  if KEYS[3] then
    redis.call('HINCRBY', KEYS[3], ARGV[5], ARGV[6])
    redis.call('EXPIRE', KEYS[3], $series_ttl)
  end
  redis.call('ZADD', '$trim_due', 'NX', ARGV[4], sid)  -- housekeeping by work: the trimmer
  if now >= tonumber(redis.call('HGET', meta, 'next') or '0') then trim(false) end
  return sid
end
