/**
 * The Redis transport's queue management (QueueAdmin), each operation one
 * Lua script over the key layout of redis-broker-scripts.ts, so a pause, a
 * purge or a dead-letter requeue is atomic against every producer and
 * consumer sharing the queues.
 *
 * @module
 */
import { brokerScript } from "./redis-broker-scripts.ts";

/**
 * ARGV: P, now → for each queue, by name: {name, ready, delayed, unacked,
 * live consumers, paused 1/0, dead-letter queue ("" for a dead-letter or
 * auto-delete queue), is a dead-letter queue 1/0, auto-delete 1/0}, flat.
 */
export const listQueuesScript = brokerScript(`
local now = tonumber(ARGV[2])
local defs = redis.call('HGETALL', P .. 'queues')
local out = {}
for i = 1, #defs, 2 do
  local q = defs[i]
  local d = qdef(q)
  out[#out + 1] = q
  out[#out + 1] = redis.call('ZCARD', P .. 'r:' .. q)
  out[#out + 1] = redis.call('ZCARD', P .. 'd:' .. q)
  out[#out + 1] = redis.call('ZCARD', P .. 'l:' .. q)
  out[#out + 1] = live_consumers(q, now)
  out[#out + 1] = redis.call('SISMEMBER', P .. 'paused', q)
  out[#out + 1] = (d.isdlq or d.ad) and '' or d.dlq
  out[#out + 1] = d.isdlq and 1 or 0
  out[#out + 1] = d.ad and 1 or 0
end
return out
`);

/** ARGV: P, queue → -1 for an unknown queue, else how many ready and delayed messages were removed. */
export const purgeScript = brokerScript(`
local q = ARGV[2]
if not qdef(q) then return -1 end
local removed = 0
for _, prefix in ipairs({'r:', 'd:'}) do
  local key = P .. prefix .. q
  for _, seq in ipairs(redis.call('ZRANGE', key, 0, -1)) do
    redis.call('DEL', P .. 'm:' .. seq)
    removed = removed + 1
  end
  redis.call('DEL', key)
end
return removed
`);

/**
 * Pause ("1") or resume ("0") a queue for every consumer, declaring it if it
 * is not yet; a resume wakes its consumers. ARGV: P, queue, "1"/"0".
 */
export const setPausedScript = brokerScript(`
local q = ARGV[2]
ensure(q, true)
if ARGV[3] == '1' then
  redis.call('SADD', P .. 'paused', q)
elseif redis.call('SREM', P .. 'paused', q) == 1 then
  redis.call('PUBLISH', P .. 'n:' .. q, '')
end
return 1
`);

/**
 * Take dead letters out of a dead-letter queue (the ready ones: those a
 * consumer holds stay), selected by message id (all when no id is given),
 * and either send each back to the queue it came from as a new message
 * ("requeue") or delete it ("discard").
 * ARGV: P, queue (the dead-letter queue or a queue whose dead letters), "requeue"/"discard", "all"/"some", ids...
 * → -1 for an unknown queue, else how many were taken.
 */
export const takeDeadLettersScript = brokerScript(`
local named = qdef(ARGV[2])
if not named then return -1 end
local dlq = named.isdlq and ARGV[2] or named.dlq
if dlq == '' then return 0 end
local wanted = nil
if ARGV[4] == 'some' then
  wanted = {}
  for i = 5, #ARGV do wanted[ARGV[i]] = true end
end
local rkey = P .. 'r:' .. dlq
local taken = 0
for _, seq in ipairs(redis.call('ZRANGE', rkey, 0, -1)) do
  local m = P .. 'm:' .. seq
  local f = redis.call('HMGET', m, 'i', 'dq')
  if f[2] and (wanted == nil or wanted[f[1]]) then
    redis.call('ZREM', rkey, seq)
    taken = taken + 1
    if ARGV[3] == 'discard' then
      redis.call('DEL', m)
    else
      local origin = f[2]
      ensure(origin, true)
      local prio = tonumber(redis.call('HGET', m, 'p')) or 0
      local score = fresh_score(prio)
      redis.call('HSET', m, 'q', origin, 'n', 0, 's', num(score))
      redis.call('HDEL', m, 'dr', 'dq', 'da', 'o')
      ready(origin, seq, score)
    end
  end
end
return taken
`);
