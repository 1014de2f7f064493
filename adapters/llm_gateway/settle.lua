-- Count the tokens an answer used, at the server's time.
-- KEYS: tokens zset, tokens sum   ARGV: window (us), tokens, a unique member id
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ttl = math.ceil(tonumber(ARGV[1]) / 1000) + 1000
redis.call('ZADD', KEYS[1], now, ARGV[3] .. ':' .. ARGV[2])
redis.call('INCRBY', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
return 1
