
local from, start, want = ARGV[1], parse_id(ARGV[1]), tonumber(ARGV[2])
local out, got, ask = {}, 0, 1
while got < want do
  local chunk = redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', ask)
  for _, e in ipairs(chunk) do
    out[#out + 1] = e
    local id, n = parse_id(e[1]), entry_count(e[2])
    if id[1] == start[1] then n = math.max(math.min(n, id[2] - start[2] + 1), 1) end
    got = got + n
  end
  if #chunk < ask then break end
  local newest = parse_id(chunk[#chunk][1])
  start = {newest[1], newest[2] + 1}
  from = id_text(start)
  ask = math.max(math.ceil((want - got) * #out / got), 1)  -- entries like those so far
end
return out
