
local cap = tonumber(ARGV[1])
local function events_of(f)  -- an entry's event types, in order
  local types = {}
  if f[1] == '$n' then
    for t in string.gmatch(f[6], '[^\n]+') do types[#types + 1] = t end
  else  -- an older release's entry: one event
    types[1] = ''
    for j = 1, #f, 2 do if f[j] == '$t' then types[1] = f[j + 1] end end
  end
  return types
end
local out = {}
for i = 2, #ARGV, 2 do
  local start, from = parse_id(ARGV[i]), ARGV[i]
  local wanted = ARGV[i + 1] ~= '' and {} or nil
  if wanted then for _, t in ipairs(cjson.decode(ARGV[i + 1])) do wanted[t] = true end end
  local n, seen, more, oldest = 0, 0, 0, ''
  while more == 0 do  -- entries in chunks: an entry may hold a thousand events
    local entries = redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', 16)
    for _, e in ipairs(entries) do
      local id, types = parse_id(e[1]), events_of(e[2])
      for k, etype in ipairs(types) do
        local seq = id[2] - #types + k  -- the k-th event's id: {id[1], seq}
        if id[1] > start[1] or seq >= start[2] then
          seen = seen + 1
          if seen > cap then more = 1 break end
          if not wanted or wanted[etype] then
            n = n + 1
            if oldest == '' then oldest = id_text({id[1], seq}) end
          end
        end
      end
      if more == 1 then break end
    end
    if #entries < 16 or more == 1 then break end
    local newest = parse_id(entries[#entries][1])
    from = id_text({newest[1], newest[2] + 1})
  end
  out[#out + 1] = {n, more, oldest}
end
return out
