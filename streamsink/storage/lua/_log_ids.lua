
local function parse_id(id)
  local ms, seq = string.match(id or '', '^(%d+)-(%d+)$$')
  return {tonumber(ms or 0), tonumber(seq or 0)}
end
local function id_lt(a, b) return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2]) end
local function id_text(a) return string.format('%.0f-%.0f', a[1], a[2]) end
local function entry_count(fields)  -- events in an entry (an older release's: one)
  if fields[1] == '$n' then return tonumber(fields[2]) end
  return 1
end
