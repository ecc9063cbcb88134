
local function kick_matching(sinks_key, sink_prefix, kick_prefix, ttl, types)
  local claimed, clock = {}, redis.call('TIME')
  for _, id in ipairs(redis.call('ZRANGE', sinks_key, 0, -1)) do
    local f = redis.call('HMGET', sink_prefix .. id, 'id', 'status', 'eventTypes', 'type')
    local status = f[2] or ''
    if f[1] and (status == 'enabled' or status == '') and f[4] ~= '$poller' then
      local match = true
      if f[3] and f[3] ~= '' then
        local wanted = cjson.decode(f[3])
        if type(wanted) == 'table' and #wanted > 0 then
          match = false
          for _, t in ipairs(wanted) do
            if types[t] then match = true end
          end
        end
      end
      if match and redis.call('SET', kick_prefix .. id, 1, 'NX', 'EX', ttl) then
        claimed[#claimed + 1] = id
        redis.call('ZADD', '$due', clock[1] * 1000 + math.floor(clock[2] / 1000), id)  -- lost job?
      end
    end
  end
  return claimed
end
