
local types = {}
for i = 4, #ARGV do types[ARGV[i]] = true end
return kick_matching(KEYS[1], ARGV[1], ARGV[2], ARGV[3], types)
