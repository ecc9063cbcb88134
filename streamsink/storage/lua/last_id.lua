local last = redis.call('HGET', KEYS[2], 'last')
if last and redis.call('EXISTS', KEYS[1]) == 1 then return last end
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
return newest and newest[1] or '0-0'
