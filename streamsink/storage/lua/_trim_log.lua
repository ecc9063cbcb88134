
local FAR = {4503599627370496, 0}
local function parse_id(id)
  local ms, seq = string.match(id or '', '^(%d+)-(%d+)$$')
  return {tonumber(ms or 0), tonumber(seq or 0)}
end
local function id_lt(a, b) return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2]) end
local function id_text(a) return string.format('%.0f-%.0f', a[1], a[2]) end
local function held_bytes(meta, log_key)
  return tonumber(redis.call('HGET', meta, 'bytes') or redis.call('XLEN', log_key) * $guess)
end
local function trim_log(log_key, sinks_key, sink_prefix, meta, counters, now, retention_ms,
                        force, limit, every_ms)
  local before = redis.call('XLEN', log_key)
  if before == 0 then redis.call('DEL', meta) return {0, 0} end
  local floor = force and FAR or {math.max(now - retention_ms, 0), 0}
  local parked, losing, counted, removed = {}, {}, {}, 0
  for _, id in ipairs(redis.call('ZRANGE', sinks_key, 0, -1)) do
    local f = redis.call('HMGET', sink_prefix .. id, 'id', 'status', 'cursor', 'type')
    local c = parse_id(f[3])
    local nxt, status = {c[1], c[2] + 1}, f[2] or ''
    if not f[1] then
    elseif f[4] ~= 'poller' and (status == 'enabled' or status == 'retrying' or status == '') then
      if id_lt(nxt, floor) then floor = nxt end
    else parked[#parked + 1] = {id, nxt} end
  end
  for _, b in ipairs(parked) do if id_lt(b[2], floor) then losing[#losing + 1] = b end end
  table.sort(losing, function(x, y) return id_lt(x[2], y[2]) end)
  local first = parse_id(redis.call('XRANGE', log_key, '-', '+', 'COUNT', 1)[1][1])
  for i, b in ipairs(losing) do
    if id_lt(first, b[2]) then
      local n = redis.call('XTRIM', log_key, 'MINID', id_text(b[2]))
      for j = 1, i - 1 do counted[j] = (counted[j] or 0) + n end
      removed, first = removed + n, b[2]
    end
  end
  local n  -- exact within the limit (else '~' keeps a small log whole: it would stay due)
  if before > tonumber(limit) then
    n = redis.call('XTRIM', log_key, 'MINID', '~', id_text(floor), 'LIMIT', limit)
  else n = redis.call('XTRIM', log_key, 'MINID', id_text(floor)) end
  removed = removed + n
  for j, b in ipairs(losing) do
    local dropped = (counted[j] or 0) + n
    if dropped > 0 then
      redis.call('HINCRBY', sink_prefix .. b[1], 'droppedEvents', dropped)
      redis.call('HSETNX', sink_prefix .. b[1], 'droppedSince', now)
      redis.call('HINCRBY', counters, 'events_dropped{sink=' .. b[1] .. '}', dropped)
    end
  end
  local bytes = math.floor(held_bytes(meta, log_key) * (before - removed) / before)
  redis.call('HSET', meta, 'bytes', bytes, 'next', now + every_ms)
  return {removed, bytes}
end
