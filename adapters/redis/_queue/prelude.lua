-- Shared by every queue script but PUBLISH and PUBLISH_MANY (prepended at load time).
local S, G, L, H = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local function sid(id)
  local dash = string.find(id, '-', 1, true)
  return tonumber(string.sub(id, 1, dash - 1)), tonumber(string.sub(id, dash + 1))
end
local function before(a, b)
  local am, as = sid(a)
  local bm, bs = sid(b)
  return am < bm or (am == bm and as < bs)
end
-- Which other groups may still need entries: nil when this is the topic's only group.
local function others(group)
  if redis.call('SCARD', G) <= 1 then return nil end
  local out = {}
  for _, info in ipairs(redis.call('XINFO', 'GROUPS', S)) do
    local name, last
    for i = 1, #info, 2 do
      if info[i] == 'name' then name = info[i + 1] end
      if info[i] == 'last-delivered-id' then last = info[i + 1] end
    end
    if name ~= group then out[#out + 1] = {name, last} end
  end
  return out
end
local function needed(rest, id)
  for _, g in ipairs(rest) do
    if before(g[2], id) then return true end
    if #redis.call('XPENDING', S, g[1], id, id, 1) > 0 then return true end
  end
  return false
end
-- The group is done with these ids (acked or dead-lettered): delete what no group needs.
local function release(group, ids)
  if #ids == 0 then return end
  local rest = others(group)
  local gone = ids
  if rest then
    gone = {}
    for _, id in ipairs(ids) do
      if not needed(rest, id) then gone[#gone + 1] = id end
    end
  end
  if #gone > 0 then redis.call('XDEL', S, unpack(gone)) end
end
local function attempts(group, id)
  local p = redis.call('XPENDING', S, group, id, id, 1)
  if #p == 0 then return nil end
  return tonumber(p[1][4])
end
-- A batch lease's parts: first id, last id, consumer (nil for anything else).
local function batch(m)
  if string.sub(m, 1, 1) ~= '~' then return nil end
  local a = string.find(m, '/', 1, true)
  local b = a and string.find(m, '/', a + 1, true)
  local c = b and string.find(m, '/', b + 1, true)
  if not c then return nil end
  return string.sub(m, a + 1, b - 1), string.sub(m, b + 1, c - 1), string.sub(m, c + 1)
end
local function valid(id)
  return string.match(id, '^%d+%-%d+$') ~= nil
end
-- Whether batch lease m is live and covers id (a receipt is only trusted once found).
local function covers(m, id)
  local first, last = batch(m)
  if not first or not redis.call('ZSCORE', L, m) then return nil end
  return not (before(id, first) or before(last, id))
end
local function record(id)
  local rec = redis.call('HGET', H, id)
  if not rec then return nil, nil end
  local tab = string.find(rec, '\t', 1, true)
  return string.sub(rec, 1, tab - 1), string.sub(rec, tab + 1)
end
-- Whether receipt is the live delivery of id: its owner and attempt count, else nil
-- and the refusal code (0 not pending in the group, -1 stale).
local function live(group, id, receipt)
  if not valid(id) then return nil, 0 end
  local owner, current = record(id)
  local n = attempts(group, id)
  if not n then return nil, 0 end
  if owner then
    if current == '' or current ~= receipt then return nil, -1 end
    return owner, n
  end
  if not covers(receipt, id) then return nil, -1 end
  local _, _, consumer = batch(receipt)
  return consumer, n
end
local function bury(group, D, id, reason, n, now)
  local e = redis.call('XRANGE', S, id, id)
  local args = {'XADD', D, '*', 'id', id, 'reason', reason, 'attempts', n, 'dead_at', now}
  if #e > 0 then
    for _, v in ipairs(e[1][2]) do args[#args + 1] = v end
  end
  redis.call(unpack(args))
  redis.call('XACK', S, group, id)
  redis.call('ZREM', L, id)
  redis.call('HDEL', H, id)
  release(group, {id})
end
