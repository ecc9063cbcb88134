
return trim_log(KEYS[1], KEYS[2], ARGV[1], KEYS[3], KEYS[4], tonumber(ARGV[2]),
                tonumber(ARGV[3]), ARGV[4] == '1', ARGV[5], tonumber(ARGV[6]))
