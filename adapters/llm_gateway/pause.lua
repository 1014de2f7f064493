-- Pause a model for ARGV[1] ms unless it is already paused for longer.
-- KEYS: pause flag
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then
  redis.call('SET', KEYS[1], '1', 'PX', ms)
end
return 1
