-- Admit one request under sliding-window limits, on the server's clock, atomically.
-- KEYS: requests zset, tokens zset, tokens sum, pause flag (one model, one hash slot)
-- ARGV: window (us), request limit (0: none), token limit (0: none), token estimate,
--       a member id unique to this admission
-- Reply: 0 when admitted (and counted), else the milliseconds to wait before asking again.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
local request_limit = tonumber(ARGV[2])
local token_limit = tonumber(ARGV[3])
local tokens = tonumber(ARGV[4])
local start = now - window

local function wait_ms(until_us)
  return math.max(1, math.ceil((until_us - now) / 1000))
end

local paused = redis.call('PTTL', KEYS[4])
if paused > 0 then
  return paused
end

if token_limit > 0 then
  -- Tokens that left the window come off the running sum, each exactly once.
  local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', start)
  if #old > 0 then
    local gone = 0
    for _, member in ipairs(old) do
      gone = gone + tonumber(string.match(member, ':(%d+)$'))
    end
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', start)
    redis.call('DECRBY', KEYS[3], gone)
  end
end

if request_limit > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', start)
  if redis.call('ZCARD', KEYS[1]) >= request_limit then
    local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return wait_ms(tonumber(first[2]) + window)
  end
end

if token_limit > 0 then
  local used = tonumber(redis.call('GET', KEYS[3]) or '0')
  if used > 0 and used + tokens > token_limit then
    local excess = used + tokens - token_limit
    local entries = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
    for i = 1, #entries, 2 do
      excess = excess - tonumber(string.match(entries[i], ':(%d+)$'))
      if excess <= 0 then
        return wait_ms(tonumber(entries[i + 1]) + window)
      end
    end
    return wait_ms(now + window)
  end
end

if request_limit > 0 then
  redis.call('ZADD', KEYS[1], now, ARGV[5])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
end
return 0
