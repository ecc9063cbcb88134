
if tonumber(ARGV[1]) == 0 then return false end
return log_add(KEYS[1], KEYS[2], tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4])
