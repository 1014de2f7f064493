"""The Lua scripts of the Redis queue: each queue operation is one atomic script.

Keys are ``<namespace>:<len(topic)>:{<topic>}:...``; group keys add
``:g:<len(group)>:<group>:<kind>``. The lengths make every key decode to exactly one
(topic, group) pair whatever the names contain, and the braces (a hash tag) keep all
keys of a topic in one cluster slot, so every script touches one slot.
Per topic: ``S`` the stream, ``G`` the set of group names, ``R`` a hash counting, per
message id, the groups that still need it. Per group: ``L`` a sorted set of pending
message ids scored by the time (on the adapter's clock) they become due again, ``H`` a
hash from pending id to ``consumer<TAB>receipt`` (empty receipt once nacked) and ``D``
a stream of dead letters.

Why a counter: several groups read one stream, and a message may only be XDEL'd once
every group is done with it. ``publish`` stores the number of groups that exist at
that moment (atomically with XADD, so a group created concurrently either sees the
message and is counted, or does not see it); each ack or dead-lettering decrements it,
and the last one deletes the entry. Redis 8.2's ``XACKDEL ... ACKED`` does the same
server-side; it is not used because Redis 7.0 must be served.
"""

from __future__ import annotations

from typing import Final

__all__ = ["ACK", "ACK_MANY", "ADOPT", "EXTEND", "NACK", "PUBLISH", "PUBLISH_MANY", "RECEIVE"]

_PRELUDE: Final = """
local S, G, R = KEYS[1], KEYS[2], KEYS[3]
local function done(id)
  if redis.call('HINCRBY', R, id, -1) <= 0 then
    redis.call('HDEL', R, id)
    redis.call('XDEL', S, id)
  end
end
local function attempts(group, id)
  local p = redis.call('XPENDING', S, group, id, id, 1)
  if #p == 0 then return nil end
  return tonumber(p[1][4])
end
local function bury(group, L, H, D, id, reason, n, now)
  local e = redis.call('XRANGE', S, id, id)
  local args = {'XADD', D, '*', 'id', id, 'reason', reason, 'attempts', n, 'dead_at', now}
  if #e > 0 then
    for _, v in ipairs(e[1][2]) do args[#args + 1] = v end
  end
  redis.call(unpack(args))
  redis.call('XACK', S, group, id)
  redis.call('ZREM', L, id)
  redis.call('HDEL', H, id)
  done(id)
end
local function holder(H, id)
  local rec = redis.call('HGET', H, id)
  if not rec then return nil, nil end
  local tab = string.find(rec, '\\t', 1, true)
  return string.sub(rec, 1, tab - 1), string.sub(rec, tab + 1)
end
"""

#: KEYS S G R [dedupe]; ARGV dedupe-flag window-ms field value ... -> id
PUBLISH: Final = """
local S, G, R = KEYS[1], KEYS[2], KEYS[3]
if ARGV[1] == '1' then
  local seen = redis.call('GET', KEYS[4])
  if seen then return seen end
end
local n = redis.call('SCARD', G)
local args = {'XADD', S, '*'}
for i = 3, #ARGV do args[#args + 1] = ARGV[i] end
local id = redis.call(unpack(args))
-- With no group yet the first group to come owes the ack (it starts at the beginning).
redis.call('HSET', R, id, math.max(n, 1))
if ARGV[1] == '1' then redis.call('SET', KEYS[4], id, 'PX', ARGV[2]) end
return id
"""

#: KEYS S G R; ARGV published-at encoded-headers-or-empty body ... -> {id ...}
#: One script call for the whole batch: the per-call cost of Lua is paid once.
PUBLISH_MANY: Final = """
local S, G, R = KEYS[1], KEYS[2], KEYS[3]
local n = redis.call('SCARD', G)
local ids, refs = {}, {}
for i = 3, #ARGV do
  local id
  if ARGV[2] == '' then
    id = redis.call('XADD', S, '*', 'b', ARGV[i], 't', ARGV[1])
  else
    id = redis.call('XADD', S, '*', 'b', ARGV[i], 't', ARGV[1], 'h', ARGV[2])
  end
  ids[#ids + 1] = id
  refs[#refs + 1] = id
  refs[#refs + 1] = math.max(n, 1)
end
if #refs > 0 then redis.call('HSET', R, unpack(refs)) end
return ids
"""

#: KEYS S G R L H D; ARGV group consumer count now expires max-deliveries receipt-prefix
#: scan-limit create want-wakeup -> {last-id, next-due, id, fields, attempt, receipt, ...}
RECEIVE: Final = (
    _PRELUDE
    + """
local L, H, D = KEYS[4], KEYS[5], KEYS[6]
local group, consumer = ARGV[1], ARGV[2]
local count, now, expires = tonumber(ARGV[3]), ARGV[4], ARGV[5]
local maxd, prefix, scan = tonumber(ARGV[6]), ARGV[7], tonumber(ARGV[8])
if ARGV[9] == '1' and redis.call('SISMEMBER', G, group) == 0 then
  -- The topic's first group gets the backlog kept for it ('0'); a later group starts
  -- after the messages already published ('$').
  local start = (redis.call('SCARD', G) == 0) and '0' or '$'
  redis.pcall('XGROUP', 'CREATE', S, group, start, 'MKSTREAM')
  redis.call('SADD', G, group)
end
local due = redis.call('ZRANGEBYSCORE', L, '-inf', now, 'WITHSCORES', 'LIMIT', 0, scan)
local items = {}
for i = 1, #due, 2 do
  local id = due[i]
  local dash = string.find(id, '-', 1, true)
  items[#items + 1] = {id = id, score = tonumber(due[i + 1]),
    ms = tonumber(string.sub(id, 1, dash - 1)), sq = tonumber(string.sub(id, dash + 1))}
end
-- Due time first, then publish order: the same order the in-memory model uses.
table.sort(items, function(a, b)
  if a.score ~= b.score then return a.score < b.score end
  if a.ms ~= b.ms then return a.ms < b.ms end
  return a.sq < b.sq
end)
local own, other = {}, {}
for _, it in ipairs(items) do
  local n = attempts(group, it.id)
  if n == nil then
    redis.call('ZREM', L, it.id)
    redis.call('HDEL', H, it.id)
  elseif n >= maxd then
    bury(group, L, H, D, it.id, 'lease expired', n, now)
  else
    it.n = n
    if holder(H, it.id) == consumer then own[#own + 1] = it else other[#other + 1] = it end
  end
end
local out = {false, false}
local k = 0
-- Lease records are written in two bulk calls at the end, not two calls per message.
local scores, records = {}, {}
local function lease(id)
  k = k + 1
  local receipt = prefix .. k
  scores[#scores + 1] = expires
  scores[#scores + 1] = id
  records[#records + 1] = id
  records[#records + 1] = consumer .. '\\t' .. receipt
  return receipt
end
for _, list in ipairs({own, other}) do
  for _, it in ipairs(list) do
    if k >= count then break end
    local c = redis.call('XCLAIM', S, group, consumer, 0, it.id, 'RETRYCOUNT', it.n + 1)
    if #c > 0 and c[1] then
      local receipt = lease(it.id)
      out[#out + 1] = it.id
      out[#out + 1] = c[1][2]
      out[#out + 1] = it.n + 1
      out[#out + 1] = receipt
    else
      redis.call('ZREM', L, it.id)
      redis.call('HDEL', H, it.id)
    end
  end
end
if k < count then
  local r = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count - k,
    'STREAMS', S, '>')
  if r then
    for _, e in ipairs(r[1][2]) do
      -- A flat reply: nested tables cost Lua and the client a conversion per entry.
      local receipt = lease(e[1])
      out[#out + 1] = e[1]
      out[#out + 1] = e[2]
      out[#out + 1] = 1
      out[#out + 1] = receipt
    end
  end
end
if k > 0 then
  redis.call('ZADD', L, unpack(scores))
  redis.call('HSET', H, unpack(records))
end
if k == 0 and ARGV[10] == '1' then
  -- What a waiting caller blocks on: ids after the newest entry, and the next due time.
  local last = redis.call('XREVRANGE', S, '+', '-', 'COUNT', 1)
  out[1] = (#last > 0) and last[1][1] or '0-0'
  local nxt = redis.call('ZRANGE', L, 0, 0, 'WITHSCORES')
  if #nxt > 0 then out[2] = nxt[2] end
end
return out
"""
)

#: KEYS S G R L H; ARGV group id receipt -> 1 acked, 0 not pending, -1 stale
ACK: Final = (
    _PRELUDE
    + """
local L, H = KEYS[4], KEYS[5]
local owner, receipt = holder(H, ARGV[2])
if not owner then return 0 end
if receipt == '' or receipt ~= ARGV[3] then return -1 end
redis.call('XACK', S, ARGV[1], ARGV[2])
redis.call('ZREM', L, ARGV[2])
redis.call('HDEL', H, ARGV[2])
done(ARGV[2])
return 1
"""
)

#: KEYS S G R L H; ARGV group (id receipt) ... -> how many were acked
ACK_MANY: Final = (
    _PRELUDE
    + """
local L, H = KEYS[4], KEYS[5]
local ids = {}
for i = 2, #ARGV, 2 do ids[#ids + 1] = ARGV[i] end
local recs = redis.call('HMGET', H, unpack(ids))
local done_ids, seen = {}, {}
for j, rec in ipairs(recs) do
  local id = ids[j]
  if rec and not seen[id] then
    local tab = string.find(rec, '\\t', 1, true)
    local receipt = string.sub(rec, tab + 1)
    if receipt ~= '' and receipt == ARGV[2 * j + 1] then
      seen[id] = true
      done_ids[#done_ids + 1] = id
    end
  end
end
if #done_ids == 0 then return 0 end
redis.call('HDEL', H, unpack(done_ids))
redis.call('XACK', S, ARGV[1], unpack(done_ids))
redis.call('ZREM', L, unpack(done_ids))
-- Entries no other group needs are deleted in bulk; the rest count down.
local left = redis.call('HMGET', R, unpack(done_ids))
local gone = {}
for j, n in ipairs(left) do
  if (tonumber(n) or 1) <= 1 then
    gone[#gone + 1] = done_ids[j]
  else
    redis.call('HINCRBY', R, done_ids[j], -1)
  end
end
if #gone > 0 then
  redis.call('HDEL', R, unpack(gone))
  redis.call('XDEL', S, unpack(gone))
end
return #done_ids
"""
)

#: KEYS S G R L H D; ARGV group id receipt now due max-deliveries
#: -> 1 returned, 2 dead-lettered, 0 not pending, -1 stale
NACK: Final = (
    _PRELUDE
    + """
local L, H, D = KEYS[4], KEYS[5], KEYS[6]
local owner, receipt = holder(H, ARGV[2])
if not owner then return 0 end
if receipt == '' or receipt ~= ARGV[3] then return -1 end
local n = attempts(ARGV[1], ARGV[2])
if n == nil then return 0 end
if n >= tonumber(ARGV[6]) then
  bury(ARGV[1], L, H, D, ARGV[2], 'nacked', n, ARGV[4])
  return 2
end
redis.call('ZADD', L, ARGV[5], ARGV[2])
redis.call('HSET', H, ARGV[2], owner .. '\\t')
return 1
"""
)

#: KEYS S G R L H; ARGV id receipt due -> 1 extended, 0 not pending, -1 stale
EXTEND: Final = (
    _PRELUDE
    + """
local L, H = KEYS[4], KEYS[5]
local owner, receipt = holder(H, ARGV[1])
if not owner then return 0 end
if receipt == '' or receipt ~= ARGV[2] then return -1 end
redis.call('ZADD', L, ARGV[3], ARGV[1])
return 1
"""
)

#: KEYS S G R L H; ARGV group min-idle-ms cursor now -> {next-cursor, adopted}
#: One XAUTOCLAIM page: pending entries idle longer than a lease that have no lease
#: record (lost to eviction, or read by a client outside this adapter) become due now.
ADOPT: Final = (
    _PRELUDE
    + """
local L, H = KEYS[4], KEYS[5]
local r = redis.call('XAUTOCLAIM', S, ARGV[1], 'portside-recovery', ARGV[2], ARGV[3],
  'COUNT', 100, 'JUSTID')
local adopted = 0
for _, id in ipairs(r[2]) do
  if redis.call('HEXISTS', H, id) == 0 then
    redis.call('ZADD', L, ARGV[4], id)
    redis.call('HSET', H, id, 'portside-recovery\\t')
    adopted = adopted + 1
  end
end
if r[3] then
  -- Redis 7 also reports entries deleted from the stream: forget their records.
  for _, id in ipairs(r[3]) do
    redis.call('ZREM', L, id)
    redis.call('HDEL', H, id)
    redis.call('HDEL', R, id)
  end
end
return {r[1], adopted}
"""
)
