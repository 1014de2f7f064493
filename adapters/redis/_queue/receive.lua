-- RECEIVE: sweep spent leases, redeliver due ones (own first), then read new entries.
-- KEYS S G L H F D; ARGV group consumer count now receipt-prefix
--   "max-deliveries lease-seconds create(0|1) want-wakeup(0|1)"
-- -> {{(id fields attempt receipt) per redelivered message}, batch-lease or '',
--     {(id fields) per fresh message}, wake-up}; fresh messages are attempt 1 under the
--     batch lease. The wake-up is {} unless nothing was delivered and one was asked
--     for: then {newest-id, next-due or ''}. Flat lists inside: nested tables per
--     entry cost Lua and the client a conversion each.
-- Few arguments on purpose: the client packs each one on every call.
local D = KEYS[6]
local group, consumer = ARGV[1], ARGV[2]
local count, now, prefix = tonumber(ARGV[3]), ARGV[4], ARGV[5]
local maxd, lease_s, create, want = string.match(ARGV[6], '^(%S+) (%S+) (%S) (%S)$')
maxd = tonumber(maxd)
-- The same double the client computes for lease_expires_at (now + lease).
local expires = tonumber(now) + tonumber(lease_s)
if create == '1' then
  -- The topic's first group gets the backlog kept for it ('0'); a later group starts
  -- after the messages already published ('$'). A group the topic knew but the stream
  -- lost (deleted, evicted, a restart without persistence) starts again at '0': what
  -- the stream still holds is work it had not finished.
  local known = redis.call('SISMEMBER', G, group) == 1
  local start = (known or redis.call('SCARD', G) == 0) and '0' or '$'
  local made = redis.pcall('XGROUP', 'CREATE', S, group, start, 'MKSTREAM')
  if type(made) == 'table' and made.err and not string.find(made.err, 'BUSYGROUP', 1, true) then
    return redis.error_reply(made.err)
  end
  redis.call('SADD', G, group)
end
local again, lease, fresh, wake = {}, '', {}, {}
local k = 0
-- Due time first, then publish order: the same order the in-memory model uses.
local function in_order(a, b)
  if a.score ~= b.score then return a.score < b.score end
  if a.ms ~= b.ms then return a.ms < b.ms end
  return a.sq < b.sq
end
-- The earliest 512 due leases per call bound the work of one script run.
local WINDOW, PAGES = 512, 32
local due = redis.call('ZRANGEBYSCORE', L, '-inf', now, 'WITHSCORES', 'LIMIT', 0, WINDOW)
if #due == 2 * WINDOW then
  -- More may be due: the consumer's own messages come first however many others are
  -- due, so later pages are searched for this consumer's leases only (read-only, so
  -- the offsets hold; at most PAGES more windows).
  local found = 0
  for page = 1, PAGES do
    local more = redis.call('ZRANGEBYSCORE', L, '-inf', now, 'WITHSCORES', 'LIMIT',
      page * WINDOW, WINDOW)
    local ids, at = {}, {}
    for i = 1, #more, 2 do
      local first, _, holder = batch(more[i])
      if not first then
        ids[#ids + 1] = unpad(more[i])
        at[#ids] = i
      elseif holder == consumer then
        due[#due + 1], due[#due + 2] = more[i], more[i + 1]
        found = found + 1
      end
    end
    if #ids > 0 then
      for j, rec in ipairs(redis.call('HMGET', H, unpack(ids))) do
        if rec and string.sub(rec, 1, #consumer + 1) == consumer .. '\t' then
          due[#due + 1], due[#due + 2] = more[at[j]], more[at[j] + 1]
          found = found + 1
        end
      end
    end
    if found >= count or #more < 2 * WINDOW then break end
  end
end
if #due > 0 then
  -- The sweep: every last allowed delivery whose lease ran out is a dead letter now,
  -- however many other leases are due (F holds only those, scored like L, so none
  -- is due when nothing in L is).
  local spent = redis.call('ZRANGEBYSCORE', F, '-inf', now, 'WITHSCORES', 'LIMIT', 0, 1000)
  if #spent > 0 then
    local gone = {}
    for i = 1, #spent, 2 do
      local m, score = spent[i], tonumber(spent[i + 1])
      redis.call('ZREM', F, m)
      local first, last = batch(m)
      if first then
        -- A fresh batch when max-deliveries is 1: its entries without a record of their own.
        redis.call('ZREM', L, m)
        for _, e in ipairs(redis.call('XPENDING', S, group, first, last, 1000)) do
          if redis.call('HEXISTS', H, e[1]) == 0 then
            gone[#gone + 1] = {id = e[1], score = score, n = tonumber(e[4])}
          end
        end
      else
        local id = unpad(m)
        local n = attempts(group, id)
        if n then
          gone[#gone + 1] = {id = id, score = score, n = n}
        else
          redis.call('ZREM', L, m)
          redis.call('HDEL', H, id)
        end
      end
    end
    for _, it in ipairs(gone) do it.ms, it.sq = sid(it.id) end
    table.sort(gone, in_order)
    for _, it in ipairs(gone) do bury(group, D, it.id, 'lease expired', it.n, now) end
  end
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
            items[#items + 1] = {id = e[1], score = score, owner = holder,
              receipt = m .. '#' .. e[1], n = tonumber(e[4]), loose = true}
          end
        end
      end
    else
      local id = unpad(m)
      local owner, receipt = record(id)
      local n = owner and attempts(group, id)
      if not n then
        redis.call('ZREM', L, m)
        redis.call('HDEL', H, id)
      else
        -- No owner: a delayed message, read once but never delivered.
        if owner == '' then n = n - 1 end
        items[#items + 1] = {id = id, score = score, owner = owner, receipt = receipt, n = n}
      end
    end
  end
  for _, it in ipairs(items) do it.ms, it.sq = sid(it.id) end
  table.sort(items, in_order)
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
          redis.call('ZADD', L, expires, pad(it.id))
          if it.n + 1 >= maxd then redis.call('ZADD', F, expires, pad(it.id)) end
          redis.call('HSET', H, it.id, consumer .. '\t' .. receipt)
          again[#again + 1] = it.id
          again[#again + 1] = c[1][2]
          again[#again + 1] = it.n + 1
          again[#again + 1] = receipt
        else
          redis.call('ZREM', L, pad(it.id))
          redis.call('HDEL', H, it.id)
        end
      elseif it.loose then
        -- Still due, but its batch lease is gone: it gets a record of its own, with
        -- the same receipt, so the delivery stays valid until someone takes it over.
        redis.call('ZADD', L, it.score, pad(it.id))
        redis.call('HSET', H, it.id, it.owner .. '\t' .. it.receipt)
      end
    end
  end
end
-- Fresh entries in stream order. A delayed one (field 'a', its time, still ahead) gets a
-- record with no owner, due at that time, and the read goes on until count is met.
local function not_before(fields)
  if #fields <= 4 then return nil end  -- a plain entry is exactly b <body> t <time>
  for i = 1, #fields, 2 do
    if fields[i] == 'a' then return tonumber(fields[i + 1]) end
  end
  return nil
end
local first_id, last_id
while k < count do
  local r = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count - k,
    'STREAMS', S, '>')
  if not r or #r[1][2] == 0 then break end
  for _, e in ipairs(r[1][2]) do
    local at = not_before(e[2])
    if at and at > tonumber(now) then
      redis.call('ZADD', L, at, pad(e[1]))
      redis.call('HSET', H, e[1], '\t')
    else
      first_id = first_id or e[1]
      last_id = e[1]
      fresh[#fresh + 1] = e[1]
      fresh[#fresh + 1] = e[2]
      k = k + 1
    end
  end
end
if first_id then
  -- '~!' marks a batch whose deliveries are the last allowed ones (it is also in F).
  local mark = (maxd <= 1) and '~!' or '~'
  lease = pad(first_id) .. mark .. prefix .. '/' .. last_id .. '/' .. consumer
  redis.call('ZADD', L, expires, lease)
  if maxd <= 1 then redis.call('ZADD', F, expires, lease) end
end
if k == 0 and want == '1' then
  -- What a waiting caller blocks on: ids after the newest entry, and the next due time.
  local last = redis.call('XREVRANGE', S, '+', '-', 'COUNT', 1)
  local nxt = redis.call('ZRANGE', L, 0, 0, 'WITHSCORES')
  wake = {(#last > 0) and last[1][1] or '0-0', (#nxt > 0) and nxt[2] or ''}
end
return {again, lease, fresh, wake}
