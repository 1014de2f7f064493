-- CompareAndDelete.delete_if_equal: remove the key only while it holds the value.
-- KEYS[1] the key; ARGV[1] the expected value. Reply: 1 if removed, 0 if not.
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
