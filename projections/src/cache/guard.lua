-- The cache's guarded write (see projections/src/cache/mod.rs).
-- KEYS[1] the entry; KEYS[2] the cache's epoch. ARGV[1] the TTL in seconds;
-- ARGV[2] the epoch the writer knows; ARGV[3] the number n of streams;
-- ARGV[4 .. 3+2n] stream/version pairs; the rest the document's field/value
-- pairs. Answers 1 when written, 0 when dropped as not newer, 2 when the
-- entry lost its body, -1 when the cache holds another epoch than the
-- writer's (it was emptied since: nothing is written).
if redis.call('GET', KEYS[2]) ~= ARGV[2] then
  return -1
end
local n = tonumber(ARGV[3])
local exists = redis.call('EXISTS', KEYS[1]) == 1
local has_body = exists and redis.call('HEXISTS', KEYS[1], 'body') == 1
local newer, older = false, false
local merged, top_sum, sum = {}, 0, 0
for i = 0, n - 1 do
  local stream = ARGV[4 + 2 * i]
  local version = tonumber(ARGV[5 + 2 * i])
  local current = tonumber(redis.call('HGET', KEYS[1], stream)) or 0
  if version > current then newer = true end
  if version < current then older = true end
  local top = math.max(version, current)
  merged[#merged + 1] = stream
  merged[#merged + 1] = top
  top_sum = top_sum + top
  sum = sum + version
end
if not exists or (not older and (newer or not has_body)) then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'v', sum, unpack(ARGV, 4))
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  return 1
end
if not newer then
  return 0
end
redis.call('HDEL', KEYS[1], 'body', 'owner', 'sig')
redis.call('HSET', KEYS[1], 'v', top_sum, unpack(merged))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 2
