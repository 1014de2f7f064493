-- NACK: give a delivery back, or dead-letter its last allowed attempt.
-- KEYS S G L H F D; ARGV group id receipt now due max-deliveries
-- -> 1 returned, 2 dead-lettered, 0 not pending, -1 stale
local group, id = ARGV[1], ARGV[2]
local owner, n = live(group, id, ARGV[3])
if not owner then return n end
if n >= tonumber(ARGV[6]) then
  bury(group, KEYS[6], id, 'nacked', n, ARGV[4])
  return 2
end
redis.call('ZADD', L, ARGV[5], pad(id))
redis.call('HSET', H, id, owner .. '\t')
return 1
