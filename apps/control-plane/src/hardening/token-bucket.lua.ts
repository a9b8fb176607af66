/**
 * One token bucket per key, taken in one script so the read, the refill and the take are atomic
 * across every control plane replica. The clock is Redis's (TIME), not the replicas': their clocks
 * may disagree, the one Redis they share does not. Redis 5+ replicates a script by its effects, so
 * calling TIME before a write is allowed (Redis's EVAL documentation, "Script replication").
 *
 * KEYS[1]  the bucket (a hash: `t` tokens left, `ts` time of the last refill in ms)
 * ARGV[1]  refill rate, tokens per second (> 0)
 * ARGV[2]  capacity (the burst), tokens
 * Returns  { 1, 0 } taken; { 0, ms } refused, with the milliseconds until one token is back.
 */
export const TOKEN_BUCKET_SCRIPT = `
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(state[1])
local last = tonumber(state[2])
if tokens == nil or last == nil then
  tokens = capacity
  last = now
end
if now > last then
  tokens = math.min(capacity, tokens + (now - last) * rate / 1000)
  last = now
end
local taken = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  taken = 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'ts', tostring(last))
-- A bucket left alone refills to full: past that time it carries nothing and may go.
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity * 1000 / rate) + 1000)
return { taken, wait }
`;
