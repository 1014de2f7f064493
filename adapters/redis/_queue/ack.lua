-- ACK: settle one delivery.
-- KEYS S G L H F; ARGV group id receipt -> 1 acked, 0 not pending, -1 stale
-- The common path (a batch of one) is HGET, ZREM, XACK, SCARD and XDEL; the pending
-- list is only read to tell a refusal's kind.
local group, id, receipt = ARGV[1], ARGV[2], ARGV[3]
if not valid(id) then return 0 end
local owner, current = record(id)
local lease = (not owner) and lease_of(receipt, id)
local first, last
if lease then first, last = batch(lease) end
local shared = false
if owner then
  if current == '' or current ~= receipt then return attempts(group, id) and -1 or 0 end
  redis.call('HDEL', H, id)
  redis.call('ZREM', L, pad(id))
  redis.call('ZREM', F, pad(id))
elseif first and first == id and last == id then
  -- A batch of one: removing its lease is the check that it was live.
  if redis.call('ZREM', L, lease) == 0 then return attempts(group, id) and -1 or 0 end
  if final(lease) then redis.call('ZREM', F, lease) end
elseif lease and covers(lease, id) then
  shared = true
else
  return attempts(group, id) and -1 or 0
end
local acked = redis.call('XACK', S, group, id)
-- A batch lease goes as soon as nothing it covers is pending any more.
if shared and #redis.call('XPENDING', S, group, first, last, 1) == 0 then
  redis.call('ZREM', L, lease)
  if final(lease) then redis.call('ZREM', F, lease) end
end
if acked == 0 then return 0 end
release(group, {id})
return 1
