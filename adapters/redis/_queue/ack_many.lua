-- ACK_MANY: settle a batch of one (topic, group).
-- KEYS S G L H F; ARGV group (id receipt) ... -> how many were acked
-- One XACK for the whole batch: its count is the number acked, and ids it did not
-- ack were already done for this group (released then), so releasing them again is a
-- no-op. The pending list is not read per entry.
local group = ARGV[1]
local ids = {}
for i = 2, #ARGV, 2 do ids[#ids + 1] = ARGV[i] end
-- Records exist only for redelivered, nacked or extended messages: usually none.
local recs = {}
if redis.call('HLEN', H) > 0 then recs = redis.call('HMGET', H, unpack(ids)) end
local done, recorded, leases = {}, {}, {}
local last_m
for j, id in ipairs(ids) do
  local rec, receipt = recs[j], ARGV[2 * j + 1]
  if rec then
    local tab = string.find(rec, '\t', 1, true)
    local current = string.sub(rec, tab + 1)
    if current ~= '' and current == receipt then
      done[#done + 1] = id
      recorded[#recorded + 1] = id
    end
  else
    -- One lookup and one parse per batch lease, not per entry. A batch's receipts
    -- usually share the previous one's lease: matched in place, no substring built.
    local m
    if last_m and string.find(receipt, last_m, 1, true) == 1
      and string.byte(receipt, #last_m + 1) == 35 and #receipt == #last_m + 1 + #id
      and string.sub(receipt, -#id) == id then
      m = last_m
    else
      m = lease_of(receipt, id)
      last_m = m
    end
    local live = m and leases[m]
    if m and live == nil then
      live = false
      local first, last = batch(m)
      if first and redis.call('ZSCORE', L, m) then
        local fm, fs = sid(first)
        local lm, ls = sid(last)
        live = {fm, fs, lm, ls}
      end
      leases[m] = live
    end
    local im, iq
    if live then im, iq = parse(id) end
    if im then
      if (im > live[1] or (im == live[1] and iq >= live[2]))
        and (im < live[3] or (im == live[3] and iq <= live[4])) then
        done[#done + 1] = id
      end
    end
  end
end
if #done == 0 then return 0 end
local acked = redis.call('XACK', S, group, unpack(done))
if #recorded > 0 then
  redis.call('HDEL', H, unpack(recorded))
  local members = {}
  for j, id in ipairs(recorded) do members[j] = pad(id) end
  redis.call('ZREM', L, unpack(members))
  redis.call('ZREM', F, unpack(members))
end
-- A batch lease goes as soon as nothing it covers is pending any more.
for m, live in pairs(leases) do
  if live then
    local first, last = batch(m)
    if #redis.call('XPENDING', S, group, first, last, 1) == 0 then
      redis.call('ZREM', L, m)
      if final(m) then redis.call('ZREM', F, m) end
    end
  end
end
release(group, done)
return acked
