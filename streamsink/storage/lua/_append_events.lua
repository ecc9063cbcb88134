
local function log_position(key, meta)
  -- {newest id, running event count} of a log: the meta hash's, else the
  -- stream's own (a log of an older release's entries: one event each)
  local m = redis.call('HMGET', meta, 'last', 'total')
  if m[1] and m[2] then return {m[1], tonumber(m[2])} end
  if redis.call('EXISTS', key) == 0 then return {'0-0', 0} end
  local info, last = redis.call('XINFO', 'STREAM', key), '0-0'
  for i = 1, #info, 2 do if info[i] == 'last-generated-id' then last = info[i + 1] end end
  return {last, redis.call('XLEN', key)}
end
local function log_add(key, meta, n, types, lengths, payloads)
  -- XADD one entry for n events at the id of its last event (ms: Redis's clock,
  -- never behind the newest entry's; seqs go on from it within the same ms);
  -- the entry id, or Redis's error reply (as a table)
  local at, clock = log_position(key, meta), redis.call('TIME')
  local last, ms, seq = parse_id(at[1]), clock[1] * 1000 + math.floor(clock[2] / 1000), 0
  if ms <= last[1] then ms, seq = last[1], last[2] + 1 end
  local id, total = id_text({ms, seq + n - 1}), at[2] + n
  local added = redis.pcall('XADD', key, id, '$n', n, '$c', total, '$t', types,
                            '$l', lengths, '$p', payloads)
  if type(added) == 'table' and added.err then return added end
  redis.call('HSET', meta, 'last', id, 'total', total)
  return id
end
local function append_events(first)
  local sid = ARGV[1]
  if ARGV[2] == 'uid' then
    sid = redis.call('GET', KEYS[1])
    if not sid then return false end
  elseif redis.call('EXISTS', KEYS[1]) == 0 then
    return false
  end
  local key, now, meta = ARGV[3] .. sid, tonumber(ARGV[4]), ARGV[10] .. sid
  local n, types, payloads = tonumber(ARGV[first]), ARGV[first + 1], ARGV[first + 3]
  local function trim(force)
    return trim_log(key, ARGV[7] .. sid .. ARGV[8], ARGV[9], meta, KEYS[2], now,
                    tonumber(ARGV[11]), force, ARGV[14], tonumber(ARGV[13]))
  end
  if n == 0 then return sid end
  local size = #types - (n - 1) + #payloads + n * $overhead
  local budget = tonumber(ARGV[12])
  if budget > 0 and held_bytes(meta, key) + size > budget then
    local held = trim(true)[2]
    if held + size > budget then
      return redis.error_reply(string.format('STREAM_OVER_BUDGET %s %d %d', sid, held, size))
    end
  end
  local added = log_add(key, meta, n, types, ARGV[first + 2], payloads)
  if type(added) == 'table' then
    trim(true)
    return added
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
