"""The Lua scripts of the Redis queue: each queue operation is one atomic script.

Keys are ``<namespace>:<len(topic)>:{<topic>}:...``; group keys add
``:g:<len(group)>:<group>:<kind>``. The lengths make every key decode to exactly one
(topic, group) pair whatever the names contain, and the braces (a hash tag) keep all
keys of a topic in one cluster slot, so every script touches one slot.
Per topic: ``S`` the stream and ``G`` the set of group names. Per group: ``L`` a sorted
set of leases scored by the time (on the adapter's clock) they fall due, ``H`` a hash
from message id to ``consumer<TAB>receipt`` (empty receipt once nacked) and ``D`` a
stream of dead letters.

Leases come in two shapes. The messages one ``receive`` reads fresh from the stream
share one **batch lease**: a single member of ``L`` named ``~<random>/<first id>/<last
id>/<consumer>`` that is also the receipt of each of those deliveries. Every pending
entry of the group between the two ids came from that read, so one member (no per-entry
write) covers the batch. A message gets its own **lease record** (member ``<id>`` of
``L`` plus a field of ``H``) when it is redelivered, nacked or extended, or when its
batch lease falls due and it is not redelivered at once; a record always overrides the
batch lease. Attempt counts are the consumer group's own delivery counters.

Deleting acked entries: several groups read one stream, and an entry may only be
XDEL'd once every group is done with it. A group still needs an entry when the entry is
in its pending list or beyond its ``last-delivered-id``; ``release`` checks the other
groups (none to check for a topic with one group, the common case) and deletes the
entry when none needs it. Redis 8.2's ``XACKDEL ... ACKED`` does the same server-side;
it is not used because Redis 7.0 must be served.
"""

from __future__ import annotations

from typing import Final

__all__ = ["ACK", "ACK_MANY", "ADOPT", "EXTEND", "NACK", "PUBLISH", "PUBLISH_MANY", "RECEIVE"]

_PRELUDE: Final = """
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
  local tab = string.find(rec, '\\t', 1, true)
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
"""

#: KEYS S dedupe; ARGV window-ms field value ... -> id (the first one's for a seen key)
#: Only a publish with a dedupe key needs a script; a plain one is a bare XADD.
PUBLISH: Final = """
local seen = redis.call('GET', KEYS[2])
if seen then return seen end
local args = {'XADD', KEYS[1], '*'}
for i = 2, #ARGV do args[#args + 1] = ARGV[i] end
local id = redis.call(unpack(args))
redis.call('SET', KEYS[2], id, 'PX', ARGV[1])
return id
"""

#: KEYS S; ARGV published-at encoded-headers-or-empty body ... -> {id ...}
#: One script call for the whole batch: atomic, and the per-call cost is paid once.
PUBLISH_MANY: Final = """
local S = KEYS[1]
local ids = {}
for i = 3, #ARGV do
  if ARGV[2] == '' then
    ids[#ids + 1] = redis.call('XADD', S, '*', 'b', ARGV[i], 't', ARGV[1])
  else
    ids[#ids + 1] = redis.call('XADD', S, '*', 'b', ARGV[i], 't', ARGV[1], 'h', ARGV[2])
  end
end
return ids
"""

#: KEYS S G L H D; ARGV group consumer count now receipt-prefix
#: "max-deliveries lease-seconds create(0|1) want-wakeup(0|1)"
#: -> {redelivered, batch-lease or '', (id fields attempt receipt) x redelivered,
#:     (id fields) ...}; fresh entries are attempt 1 under the batch lease. When nothing
#:     was delivered and a wake-up was asked for: {0, '', newest-id, next-due or ''}.
#: Few arguments on purpose: the client packs each one on every call.
RECEIVE: Final = (
    _PRELUDE
    + """
local D = KEYS[5]
local group, consumer = ARGV[1], ARGV[2]
local count, now, prefix = tonumber(ARGV[3]), ARGV[4], ARGV[5]
local maxd, lease_s, create, want = string.match(ARGV[6], '^(%S+) (%S+) (%S) (%S)$')
maxd = tonumber(maxd)
-- The same double the client computes for lease_expires_at (now + lease).
local expires = tonumber(now) + tonumber(lease_s)
if create == '1' and redis.call('SISMEMBER', G, group) == 0 then
  -- The topic's first group gets the backlog kept for it ('0'); a later group starts
  -- after the messages already published ('$').
  local start = (redis.call('SCARD', G) == 0) and '0' or '$'
  redis.pcall('XGROUP', 'CREATE', S, group, start, 'MKSTREAM')
  redis.call('SADD', G, group)
end
local out = {0, ''}
local k = 0
-- At most 512 due leases per call bound the work of one script run.
local due = redis.call('ZRANGEBYSCORE', L, '-inf', now, 'WITHSCORES', 'LIMIT', 0, 512)
if #due > 0 then
  local items = {}
  for i = 1, #due, 2 do
    local m, score = due[i], tonumber(due[i + 1])
    local first, last, holder = batch(m)
    if first then
      -- A batch lease fell due: its entries still pending without a record of their own
      -- (a batch is at most 1000 entries, the largest receive).
      redis.call('ZREM', L, m)
      local p = redis.call('XPENDING', S, group, first, last, 1000)
      if #p > 0 then
        local ids = {}
        for j, e in ipairs(p) do ids[j] = e[1] end
        local recs = redis.call('HMGET', H, unpack(ids))
        for j, e in ipairs(p) do
          if not recs[j] then
            items[#items + 1] = {id = e[1], score = score, owner = holder, receipt = m,
              n = tonumber(e[4]), loose = true}
          end
        end
      end
    else
      local owner, receipt = record(m)
      local n = owner and attempts(group, m)
      if not n then
        redis.call('ZREM', L, m)
        redis.call('HDEL', H, m)
      else
        items[#items + 1] = {id = m, score = score, owner = owner, receipt = receipt, n = n}
      end
    end
  end
  for _, it in ipairs(items) do it.ms, it.sq = sid(it.id) end
  -- Due time first, then publish order: the same order the in-memory model uses.
  table.sort(items, function(a, b)
    if a.score ~= b.score then return a.score < b.score end
    if a.ms ~= b.ms then return a.ms < b.ms end
    return a.sq < b.sq
  end)
  local own, other = {}, {}
  for _, it in ipairs(items) do
    if it.n >= maxd then
      bury(group, D, it.id, 'lease expired', it.n, now)
    elseif it.owner == consumer then
      own[#own + 1] = it
    else
      other[#other + 1] = it
    end
  end
  for _, list in ipairs({own, other}) do
    for _, it in ipairs(list) do
      if k < count then
        local c = redis.call('XCLAIM', S, group, consumer, 0, it.id, 'RETRYCOUNT', it.n + 1)
        if #c > 0 and c[1] then
          k = k + 1
          local receipt = prefix .. k
          redis.call('ZADD', L, expires, it.id)
          redis.call('HSET', H, it.id, consumer .. '\\t' .. receipt)
          out[#out + 1] = it.id
          out[#out + 1] = c[1][2]
          out[#out + 1] = it.n + 1
          out[#out + 1] = receipt
        else
          redis.call('ZREM', L, it.id)
          redis.call('HDEL', H, it.id)
        end
      elseif it.loose then
        -- Still due, but its batch lease is gone: it gets a record of its own, with
        -- the same receipt, so the delivery stays valid until someone takes it over.
        redis.call('ZADD', L, it.score, it.id)
        redis.call('HSET', H, it.id, it.owner .. '\\t' .. it.receipt)
      end
    end
  end
  out[1] = k
end
if k < count then
  local r = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count - k,
    'STREAMS', S, '>')
  if r and #r[1][2] > 0 then
    local entries = r[1][2]
    local lease = '~' .. prefix .. '/' .. entries[1][1] .. '/' .. entries[#entries][1] ..
      '/' .. consumer
    redis.call('ZADD', L, expires, lease)
    out[2] = lease
    -- A flat reply: nested tables cost Lua and the client a conversion per entry.
    for _, e in ipairs(entries) do
      out[#out + 1] = e[1]
      out[#out + 1] = e[2]
    end
    k = k + #entries
  end
end
if k == 0 and want == '1' then
  -- What a waiting caller blocks on: ids after the newest entry, and the next due time.
  local last = redis.call('XREVRANGE', S, '+', '-', 'COUNT', 1)
  out[3] = (#last > 0) and last[1][1] or '0-0'
  local nxt = redis.call('ZRANGE', L, 0, 0, 'WITHSCORES')
  out[4] = (#nxt > 0) and nxt[2] or ''
end
return out
"""
)

#: KEYS S G L H; ARGV group id receipt -> 1 acked, 0 not pending, -1 stale
#: The common path (a batch of one) is HGET, ZREM, XACK, SCARD and XDEL; the pending
#: list is only read to tell a refusal's kind.
ACK: Final = (
    _PRELUDE
    + """
local group, id, receipt = ARGV[1], ARGV[2], ARGV[3]
if not valid(id) then return 0 end
local owner, current = record(id)
local first, last = batch(receipt)
local shared = false
if owner then
  if current == '' or current ~= receipt then return attempts(group, id) and -1 or 0 end
  redis.call('HDEL', H, id)
  redis.call('ZREM', L, id)
elseif first == id and last == id then
  -- A batch of one: removing its lease is the check that it was live.
  if redis.call('ZREM', L, receipt) == 0 then return attempts(group, id) and -1 or 0 end
elseif covers(receipt, id) then
  shared = true
else
  return attempts(group, id) and -1 or 0
end
local acked = redis.call('XACK', S, group, id)
-- A batch lease goes as soon as nothing it covers is pending any more.
if shared and #redis.call('XPENDING', S, group, first, last, 1) == 0 then
  redis.call('ZREM', L, receipt)
end
if acked == 0 then return 0 end
release(group, {id})
return 1
"""
)

#: KEYS S G L H; ARGV group (id receipt) ... -> how many were acked
#: One XACK for the whole batch: its count is the number acked, and ids it did not
#: ack were already done for this group (released then), so releasing them again is a
#: no-op. The pending list is not read per entry.
ACK_MANY: Final = (
    _PRELUDE
    + """
local group = ARGV[1]
local ids = {}
for i = 2, #ARGV, 2 do ids[#ids + 1] = ARGV[i] end
-- Records exist only for redelivered, nacked or extended messages: usually none.
local recs = {}
if redis.call('HLEN', H) > 0 then recs = redis.call('HMGET', H, unpack(ids)) end
local done, recorded, leases = {}, {}, {}
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
    -- One lookup and one parse per batch lease, not per entry.
    local live = leases[receipt]
    if live == nil then
      live = false
      local first, last = batch(receipt)
      if first and redis.call('ZSCORE', L, receipt) then
        local fm, fs = sid(first)
        local lm, ls = sid(last)
        live = {fm, fs, lm, ls}
      end
      leases[receipt] = live
    end
    local m, q = string.match(id, '^(%d+)%-(%d+)$')
    if live and m then
      m, q = tonumber(m), tonumber(q)
      if (m > live[1] or (m == live[1] and q >= live[2]))
        and (m < live[3] or (m == live[3] and q <= live[4])) then
        done[#done + 1] = id
      end
    end
  end
end
if #done == 0 then return 0 end
local acked = redis.call('XACK', S, group, unpack(done))
if #recorded > 0 then
  redis.call('HDEL', H, unpack(recorded))
  redis.call('ZREM', L, unpack(recorded))
end
-- A batch lease goes as soon as nothing it covers is pending any more.
for m, live in pairs(leases) do
  if live then
    local first, last = batch(m)
    if #redis.call('XPENDING', S, group, first, last, 1) == 0 then
      redis.call('ZREM', L, m)
    end
  end
end
release(group, done)
return acked
"""
)

#: KEYS S G L H D; ARGV group id receipt now due max-deliveries
#: -> 1 returned, 2 dead-lettered, 0 not pending, -1 stale
NACK: Final = (
    _PRELUDE
    + """
local group, id = ARGV[1], ARGV[2]
local owner, n = live(group, id, ARGV[3])
if not owner then return n end
if n >= tonumber(ARGV[6]) then
  bury(group, KEYS[5], id, 'nacked', n, ARGV[4])
  return 2
end
redis.call('ZADD', L, ARGV[5], id)
redis.call('HSET', H, id, owner .. '\\t')
return 1
"""
)

#: KEYS S G L H; ARGV group id receipt due -> 1 extended, 0 not pending, -1 stale
EXTEND: Final = (
    _PRELUDE
    + """
local owner, n = live(ARGV[1], ARGV[2], ARGV[3])
if not owner then return n end
-- A record of its own now overrides the batch lease for this message.
redis.call('ZADD', L, ARGV[4], ARGV[2])
redis.call('HSET', H, ARGV[2], owner .. '\\t' .. ARGV[3])
return 1
"""
)

#: KEYS S G L H; ARGV group min-idle-ms cursor now -> {next-cursor, adopted}
#: One XAUTOCLAIM page: pending entries idle longer than a lease that have neither a
#: record nor a live batch lease (lost to eviction, or read by a client outside this
#: adapter) become due now.
ADOPT: Final = (
    _PRELUDE
    + """
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
      redis.call('ZADD', L, ARGV[4], id)
      redis.call('HSET', H, id, 'portside-recovery\\t')
      adopted = adopted + 1
    end
  end
end
if r[3] then
  -- Redis 7 also reports entries deleted from the stream: forget their records.
  for _, id in ipairs(r[3]) do
    redis.call('ZREM', L, id)
    redis.call('HDEL', H, id)
  end
end
return {r[1], adopted}
"""
)
