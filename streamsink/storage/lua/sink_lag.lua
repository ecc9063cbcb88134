
local out = {}
for i = 2, #ARGV, 2 do
  local entries = redis.call('XRANGE', KEYS[1], ARGV[i], '+', 'COUNT', ARGV[1])
  local wanted = ARGV[i + 1] ~= '' and {} or nil
  if wanted then for _, t in ipairs(cjson.decode(ARGV[i + 1])) do wanted[t] = true end end
  local n, oldest = 0, ''
  for _, e in ipairs(entries) do
    local f, etype = e[2], nil
    for j = 1, #f, 2 do if f[j] == '$t' then etype = f[j + 1] end end
    if not wanted or wanted[etype] then
      n = n + 1
      if oldest == '' then oldest = e[1] end
    end
  end
  out[#out + 1] = {n, #entries >= tonumber(ARGV[1]) and 1 or 0, oldest}
end
return out
