-- LockedFill.get_or_lock: the value if present, else take the fill lock if it is free.
-- KEYS[1] the key, KEYS[2] the lock; ARGV[1] the token, ARGV[2] the lock's TTL in ms.
-- Reply: {'found', value}, {'locked'} (taken by this call) or {'held'} (by another).
local value = redis.call('GET', KEYS[1])
if value then
    return {'found', value}
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return {'locked'}
end
return {'held'}
