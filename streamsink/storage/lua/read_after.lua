
local function cut(e, skip, take)
  -- {entry, events in it}: a batch entry without its first ``skip`` events and
  -- with at most ``take`` of the rest (its id: the last kept event's), so that
  -- a read of a few events never ships a whole append
  local f = e[2]
  local n = entry_count(f)
  local last = math.min(n, skip + take)
  if f[1] ~= '$n' or (skip == 0 and last == n) then return e, n - skip end
  local types, k = {}, 0
  for t in string.gmatch(f[6], '[^\n]+') do
    k = k + 1
    if k > skip and k <= last then types[#types + 1] = t end
  end
  local lens, from, to, at = {}, 0, 0, 0
  k = 0
  for l in string.gmatch(f[8], '%d+') do
    k = k + 1
    if k == skip + 1 then from = at end
    if k > skip then lens[#lens + 1] = l end
    at = at + tonumber(l)
    if k == last then to = at break end
  end
  local id, gone = parse_id(e[1]), n - last
  return {id_text({id[1], id[2] - gone}), {'$n', string.format('%d', last - skip),
          '$c', string.format('%.0f', tonumber(f[4]) - gone), '$t', table.concat(types, '\n'),
          '$l', table.concat(lens, ','), '$p', string.sub(f[10], from + 1, to)}}, last - skip
end

local from, start, want = ARGV[1], parse_id(ARGV[1]), tonumber(ARGV[2])
local out, got, ask = {}, 0, 1
while got < want do
  local chunk = redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', ask)
  for _, e in ipairs(chunk) do
    local id, n, skip = parse_id(e[1]), entry_count(e[2]), 0
    if id[1] == start[1] then skip = math.min(math.max(start[2] - (id[2] - n + 1), 0), n - 1) end
    local kept
    e, kept = cut(e, skip, want - got)
    out[#out + 1] = e
    got = got + kept
    if got >= want then break end
  end
  if #chunk < ask or got >= want then break end
  local newest = parse_id(chunk[#chunk][1])
  from = id_text({newest[1], newest[2] + 1})
  ask = math.max(math.ceil((want - got) * #out / got), 1)  -- entries like those so far
end
return out
