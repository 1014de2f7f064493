-- PUBLISH: a publish with a dedupe key, stored once per key within the window.
-- KEYS S dedupe; ARGV window-ms field value ... -> id (the first one's for a seen key)
local seen = redis.call('GET', KEYS[2])
if seen then return seen end
local args = {'XADD', KEYS[1], '*'}
for i = 2, #ARGV do args[#args + 1] = ARGV[i] end
local id = redis.call(unpack(args))
redis.call('SET', KEYS[2], id, 'PX', ARGV[1])
return id
