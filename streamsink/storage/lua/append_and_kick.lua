
local sid = append_events(17)
if not sid or type(sid) == 'table' then return sid end
local types = {}
for i = 21, #ARGV do types[ARGV[i]] = true end
return {sid, kick_matching(ARGV[7] .. sid .. ARGV[8], ARGV[9], ARGV[15], ARGV[16], types)}
