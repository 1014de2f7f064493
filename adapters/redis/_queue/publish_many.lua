-- PUBLISH_MANY: a whole batch in one atomic call (the per-call cost is paid once).
-- KEYS S; ARGV published-at encoded-headers-or-empty body ... -> {id ...}
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
