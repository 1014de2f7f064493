-- LockedFill.set_and_unlock: store the value, then release the lock if the token holds it.
-- KEYS[1] the key, KEYS[2] the lock; ARGV[1] the value, ARGV[2] its TTL in ms ('' for
-- none), ARGV[3] the token. Reply: 1 if the lock was released, 0 if not.
if ARGV[2] == '' then
    redis.call('SET', KEYS[1], ARGV[1])
else
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
if redis.call('GET', KEYS[2]) == ARGV[3] then
    redis.call('DEL', KEYS[2])
    return 1
end
return 0
