-- ADOPT: one XAUTOCLAIM page of orphan adoption.
-- KEYS S G L H F; ARGV group min-idle-ms cursor now -> {next-cursor, adopted}
-- Pending entries idle longer than min-idle that have neither a record nor a live
-- batch lease (lost to eviction, or read by a client outside this adapter) become due now.
local r = redis.call('XAUTOCLAIM', S, ARGV[1], 'portside-recovery', ARGV[2], ARGV[3],
  'COUNT', 100, 'JUSTID')
local adopted = 0
local leases = nil
for _, id in ipairs(r[2]) do
  if redis.call('HEXISTS', H, id) == 0 then
    if not leases then
      leases = {}
      for _, m in ipairs(redis.call('ZRANGE', L, 0, -1)) do
        if batch(m) then leases[#leases + 1] = m end
      end
    end
    local held = false
    for _, m in ipairs(leases) do
      if covers(m, id) then held = true break end
    end
    if not held then
      redis.call('ZADD', L, ARGV[4], pad(id))
      redis.call('HSET', H, id, 'portside-recovery\t')
      adopted = adopted + 1
    end
  end
end
if r[3] then
  -- Redis 7 also reports entries deleted from the stream: forget their records.
  for _, id in ipairs(r[3]) do
    redis.call('ZREM', L, pad(id))
    redis.call('HDEL', H, id)
  end
end
return {r[1], adopted}
