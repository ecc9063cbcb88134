
local FAR = {4503599627370496, 0}
local function held_events(log_key, meta)
  -- events in the log: the meta hash's running count less what came before the
  -- first entry (a log that starts with an older release's entries: XLEN)
  local e = redis.call('XRANGE', log_key, '-', '+', 'COUNT', 1)[1]
  if not e then return 0 end
  if e[2][1] ~= '$n' then return redis.call('XLEN', log_key) end
  local total = tonumber(redis.call('HGET', meta, 'total') or e[2][4])
  return math.max(total - tonumber(e[2][4]) + tonumber(e[2][2]), 0)
end
local function events_from(log_key, meta, at)
  -- events at or after position ``at`` (an event id as {ms, seq}); nil when an
  -- older release's entry holds it (no running count)
  local e = redis.call('XRANGE', log_key, id_text(at), '+', 'COUNT', 1)[1]
  if not e then return 0 end
  if e[2][1] ~= '$n' then return nil end
  local id, n, c = parse_id(e[1]), tonumber(e[2][2]), tonumber(e[2][4])
  local skipped = id[1] == at[1] and math.max(at[2] - (id[2] - n + 1), 0) or 0
  local total = tonumber(redis.call('HGET', meta, 'total') or c)
  return math.max(total - (c - n) - skipped, 0)
end
local function held_bytes(meta, log_key)
  return tonumber(redis.call('HGET', meta, 'bytes') or held_events(log_key, meta) * $guess)
end
local function trim_log(log_key, sinks_key, sink_prefix, meta, counters, now, retention_ms,
                        force, limit, every_ms)
  local entries = redis.call('XLEN', log_key)
  if entries == 0 then redis.call('HDEL', meta, 'bytes', 'next') return {0, 0} end
  local floor = force and FAR or {math.max(now - retention_ms, 0), 0}
  local parked, losing = {}, {}
  for _, id in ipairs(redis.call('ZRANGE', sinks_key, 0, -1)) do
    local f = redis.call('HMGET', sink_prefix .. id, 'id', 'status', 'cursor', 'type')
    local c = parse_id(f[3])
    local nxt, status = {c[1], c[2] + 1}, f[2] or ''
    if not f[1] then
    elseif f[4] ~= 'poller' and (status == 'enabled' or status == 'retrying' or status == '') then
      if id_lt(nxt, floor) then floor = nxt end
    else parked[#parked + 1] = {id, nxt} end
  end
  local before = held_events(log_key, meta)
  for _, b in ipairs(parked) do  -- what each parked sink has not passed, before the trim
    if id_lt(b[2], floor) then
      losing[#losing + 1] = {b[1], events_from(log_key, meta, b[2]) or before}
    end
  end
  -- exact within the limit (else '~' keeps a small log whole: it would stay due);
  -- an entry goes once all its events are before the floor
  if entries > tonumber(limit) then
    redis.call('XTRIM', log_key, 'MINID', '~', id_text(floor), 'LIMIT', limit)
  else redis.call('XTRIM', log_key, 'MINID', id_text(floor)) end
  local after = held_events(log_key, meta)
  for _, b in ipairs(losing) do  -- the oldest went: those of them the sink owed
    local dropped = math.max(math.min(b[2], before) - after, 0)
    if dropped > 0 then
      redis.call('HINCRBY', sink_prefix .. b[1], 'droppedEvents', dropped)
      redis.call('HSETNX', sink_prefix .. b[1], 'droppedSince', now)
      redis.call('HINCRBY', counters, 'events_dropped{sink=' .. b[1] .. '}', dropped)
    end
  end
  local bytes = before > 0 and math.floor(held_bytes(meta, log_key) * after / before) or 0
  redis.call('HSET', meta, 'bytes', bytes, 'next', now + every_ms)
  return {math.max(before - after, 0), bytes}
end
