-- Shared by every queue script but PUBLISH and PUBLISH_MANY (prepended at load time).
local S, G, L, H, F = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
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
-- Lease members of L are named so that members due at the same time sort by id as
-- numbers: a record is pad(id), a batch lease pad(first id) .. '~' .. the rest. Stream ids
-- compared as text put <ms>-10 before <ms>-6.
local function pad(id)
  local dash = string.find(id, '-', 1, true)
  local ms, sq = string.sub(id, 1, dash - 1), string.sub(id, dash + 1)
  return string.rep('0', 20 - #ms) .. ms .. '-' .. string.rep('0', 20 - #sq) .. sq
end
local function unpad(p)
  local ms, sq = string.match(p, '^0*(%d+)%-0*(%d+)$')
  return ms .. '-' .. sq
end
-- A batch lease's parts: first id, last id, consumer (nil for a record's member).
-- Its member is pad(first) .. '~' .. random prefix .. '/' .. last .. '/' .. consumer.
local function batch(m)
  local tilde = string.find(m, '~', 1, true)
  if not tilde then return nil end
  local a = string.find(m, '/', tilde + 1, true)
  local b = a and string.find(m, '/', a + 1, true)
  if not b then return nil end
  return unpad(string.sub(m, 1, tilde - 1)), string.sub(m, a + 1, b - 1), string.sub(m, b + 1)
end
-- A stream id as Redis writes it, as two numbers (nil for anything else): digits, a
-- dash, digits, no leading zeros (<ms>-00 must not settle the delivery of <ms>-0).
local function parse(id)
  local ms, sq = string.match(id, '^(%d+)%-(%d+)$')
  if not ms or #ms > 20 or #sq > 20 then return nil end
  if (#ms > 1 and string.byte(ms) == 48) or (#sq > 1 and string.byte(sq) == 48) then
    return nil
  end
  return tonumber(ms), tonumber(sq)
end
local function valid(id)
  return parse(id) ~= nil
end
-- The batch lease a fresh delivery's receipt names, when the receipt is id's own:
-- receipts are <batch lease>#<id>, one per message (string ends compared, no pattern).
local function lease_of(receipt, id)
  local cut = #receipt - #id
  if cut < 2 or string.byte(receipt, cut) ~= 35 or string.sub(receipt, cut + 1) ~= id then
    return nil
  end
  return string.sub(receipt, 1, cut - 1)
end
-- Whether batch lease m is also in F (its deliveries were the last allowed ones).
local function final(m)
  return string.sub(m, 42, 43) == '~!'
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
  local m = lease_of(receipt, id)
  if not m or not covers(m, id) then return nil, -1 end
  local _, _, consumer = batch(m)
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
  redis.call('ZREM', L, pad(id))
  redis.call('ZREM', F, pad(id))
  redis.call('HDEL', H, id)
  release(group, {id})
end
