-- EXTEND: move a live delivery's lease.
-- KEYS S G L H F; ARGV group id receipt due max-deliveries
--   -> 1 extended, 0 not pending, -1 stale
local owner, n = live(ARGV[1], ARGV[2], ARGV[3])
if not owner then return n end
-- A record of its own now overrides the batch lease for this message.
redis.call('ZADD', L, ARGV[4], pad(ARGV[2]))
-- The last allowed delivery stays one: when its lease runs out it is a dead letter.
if n >= tonumber(ARGV[5]) then redis.call('ZADD', F, ARGV[4], pad(ARGV[2])) end
redis.call('HSET', H, ARGV[2], owner .. '\t' .. ARGV[3])
return 1
