// The Redis transport's operations, each one Lua script run atomically on
// the server, so any number of producers and workers share the queues with
// no lock of their own. Every script's ARGV[1] is the key prefix; all keys
// are built from it (one hash tag, so one slot on a cluster).
//
// Keys under the prefix P:
// - `P queues`       hash: queue → "deadLetterQueue \t maxDeliveries \t explicit \t isDeadLetterQueue \t autoDelete"
// - `P exchanges`    hash: exchange → type; `P b:<exchange>` set of "queue \n pattern";
//                    `P qb:<queue>` the same bindings by queue, "exchange \n pattern"
// - `P paused`       set of paused queues (see QueueAdmin.pause)
// - `P ad`           hash: auto-delete queue → "1" once a consumer attached ("0" before)
// - `P seq`          counter naming messages and ordering them
// - `P m:<seq>`      hash, one copy of a message in one queue: e (envelope bytes), q (queue), p (priority),
//                    s (ready score), n (deliveries so far), i (id), x (expires), o (the delivery holding it),
//                    dr/dq/da (dead-letter reason, source queue, time)
// - `P r:<queue>`    sorted set of ready messages by (9 - priority) · 2^48 + sequence: highest priority first, FIFO within
// - `P d:<queue>`    sorted set of delayed messages by eta
// - `P l:<queue>`    sorted set of delivered, unacknowledged messages by lease deadline
// - `P c:<queue>`    hash: consumer → deadline of its registration (renewed with its leases)
// - `P rv:<id>`      a revocation, expiring with its ttl; `P revocations` the same by expiry, for late joiners
// - channels `P n:<queue>` (the queue's first ready message, or a delayed one, arrived) and `P revoke`
//
// Time is the callers' epoch milliseconds (as for eta and expires): the
// machines' clocks must agree, as Celery also requires.
import { RedisScript } from "./redis-script.ts";

/** Lua shared by the scripts: queue definitions, scores, requeue and dead-lettering. */
const COMMON = `
local P = ARGV[1]
local SHIFT = 281474976710656
local function num(x) return string.format('%.0f', x) end
local function qdef(name)
  local d = redis.call('HGET', P .. 'queues', name)
  if not d then return nil end
  local dlq, max, explicit, isdlq, ad = string.match(d, '^(.-)\\t(%d+)\\t(%d)\\t(%d)\\t?(%d?)$')
  return { dlq = dlq, max = tonumber(max), explicit = explicit == '1', isdlq = isdlq == '1', ad = ad == '1' }
end
local function save(name, d)
  redis.call('HSET', P .. 'queues', name, d.dlq .. '\\t' .. d.max .. '\\t' .. (d.explicit and '1' or '0') .. '\\t' .. (d.isdlq and '1' or '0') .. '\\t' .. (d.ad and '1' or '0'))
end
local function mark_dlq(name)
  local dd = qdef(name)
  if not dd then save(name, { dlq = name .. '.dlq', max = 16, explicit = false, isdlq = true })
  elseif not dd.isdlq then dd.isdlq = true; save(name, dd) end
end
-- A queue's dead-letter queue is made with it (declareQueue makes a new one it names); a dead-letter
-- queue's own waits for its first dead letter.
local function ensure(name, withdlq)
  local d = qdef(name)
  if d then return d end
  d = { dlq = name .. '.dlq', max = 16, explicit = false, isdlq = false }
  save(name, d)
  if withdlq then mark_dlq(d.dlq) end
  return d
end
local function fresh_score(prio)
  return (9 - prio) * SHIFT + redis.call('INCR', P .. 'seq')
end
-- Set by a script that makes many messages ready (publishBatch): queue → whether it was empty before; woken once at the end.
local wakes = nil
local function ready(q, seq, score)
  local key = P .. 'r:' .. q
  if wakes then
    if wakes[q] == nil then wakes[q] = redis.call('ZCARD', key) == 0 end
    redis.call('ZADD', key, num(score), seq)
    return
  end
  redis.call('ZADD', key, num(score), seq)
  -- Only the first ready message wakes consumers: one that finds more fetches again until a fetch comes back short.
  if redis.call('ZCARD', key) == 1 then redis.call('PUBLISH', P .. 'n:' .. q, '') end
end
local function dead_letter(q, seq, reason, now)
  local m = P .. 'm:' .. seq
  local d = ensure(q, true)
  -- An auto-delete queue has no dead-letter queue: what it rejects is dropped.
  if d.ad then redis.call('DEL', m); return end
  mark_dlq(d.dlq)
  local prio = tonumber(redis.call('HGET', m, 'p')) or 0
  local score = fresh_score(prio)
  redis.call('HSET', m, 'q', d.dlq, 'dr', reason, 'dq', q, 'da', num(now), 'n', 0, 's', num(score), 'x', '')
  redis.call('HDEL', m, 'o')
  ready(d.dlq, seq, score)
end
local function requeue(q, seq, now)
  local m = P .. 'm:' .. seq
  local n = tonumber(redis.call('HGET', m, 'n'))
  if not n then return end
  local d = ensure(q, true)
  if n >= d.max then
    return dead_letter(q, seq, 'delivered ' .. n .. ' times without an ack (maxDeliveries is ' .. d.max .. ')', now)
  end
  redis.call('HDEL', m, 'o')
  ready(q, seq, tonumber(redis.call('HGET', m, 's')))
end
-- Consumers of q whose registration is still in force (the lapsed ones are forgotten).
local function live_consumers(q, now)
  local ckey = P .. 'c:' .. q
  local c = redis.call('HGETALL', ckey)
  local live = 0
  for i = 1, #c, 2 do
    if tonumber(c[i + 1]) >= now then live = live + 1 else redis.call('HDEL', ckey, c[i]) end
  end
  return live
end
-- Delete an auto-delete queue that a consumer attached to and none is left on: its messages and bindings go with it.
local function drop_if_abandoned(q, now)
  if redis.call('HGET', P .. 'ad', q) ~= '1' or live_consumers(q, now) > 0 then return 0 end
  for _, prefix in ipairs({'r:', 'd:', 'l:'}) do
    for _, seq in ipairs(redis.call('ZRANGE', P .. prefix .. q, 0, -1)) do redis.call('DEL', P .. 'm:' .. seq) end
    redis.call('DEL', P .. prefix .. q)
  end
  for _, b in ipairs(redis.call('SMEMBERS', P .. 'qb:' .. q)) do
    local sep = string.find(b, '\\n', 1, true)
    redis.call('SREM', P .. 'b:' .. string.sub(b, 1, sep - 1), q .. '\\n' .. string.sub(b, sep + 1))
  end
  redis.call('DEL', P .. 'qb:' .. q, P .. 'c:' .. q)
  redis.call('HDEL', P .. 'queues', q)
  redis.call('HDEL', P .. 'ad', q)
  redis.call('SREM', P .. 'paused', q)
  return 1
end
`;

/** A script with the shared Lua (queue definitions, scores, requeue, dead-lettering) before `body`. */
export const brokerScript = (body: string): RedisScript => new RedisScript(COMMON + body);
const script = brokerScript;

/** ARGV: P, name, deadLetterQueue or "", maxDeliveries or "", autoDelete "1"/"0"/"" → {"ok"} | {"conflict", reason}. */
export const declareQueueScript = script(`
local name, dlq, max, ad = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local d = qdef(name)
if d and ad ~= '' and (d.ad and '1' or '0') ~= ad then
  return {'conflict', 'it is ' .. (d.ad and '' or 'not ') .. 'auto-delete'}
end
if not d and ad == '1' then
  save(name, { dlq = '', max = max ~= '' and tonumber(max) or 16, explicit = true, isdlq = false, ad = true })
  redis.call('HSET', P .. 'ad', name, '0')
  return {'ok'}
end
if d and d.explicit then
  if dlq ~= '' and dlq ~= d.dlq then return {'conflict', 'its dead-letter queue is "' .. d.dlq .. '", not "' .. dlq .. '"'} end
  if max ~= '' and tonumber(max) ~= d.max then return {'conflict', 'its maxDeliveries is ' .. d.max .. ', not ' .. max} end
  return {'ok'}
end
d = d or { dlq = name .. '.dlq', max = 16, isdlq = false }
d.explicit = true
if dlq ~= '' then d.dlq = dlq end
if max ~= '' then d.max = tonumber(max) end
save(name, d)
mark_dlq(d.dlq)
return {'ok'}
`);

/** ARGV: P, exchange, type → {"ok"} | {"conflict", existing type}. */
export const declareExchangeScript = script(`
local existing = redis.call('HGET', P .. 'exchanges', ARGV[2])
if existing and existing ~= ARGV[3] then return {'conflict', existing} end
redis.call('HSET', P .. 'exchanges', ARGV[2], ARGV[3])
return {'ok'}
`);

/** ARGV: P, queue, exchange, pattern → {"ok"} | {"noqueue"} | {"noexchange"}. */
export const bindQueueScript = script(`
if not qdef(ARGV[2]) then return {'noqueue'} end
if not redis.call('HGET', P .. 'exchanges', ARGV[3]) then return {'noexchange'} end
redis.call('SADD', P .. 'b:' .. ARGV[3], ARGV[2] .. '\\n' .. ARGV[4])
redis.call('SADD', P .. 'qb:' .. ARGV[2], ARGV[3] .. '\\n' .. ARGV[4])
return {'ok'}
`);

/**
 * Lua: route an envelope and enqueue a copy in each queue reached (ready, or
 * delayed until its eta), as one publish does; shared by the publish script
 * and the beat's fire script (which records runs and sends them in one step).
 * publish(exchange, routingKey, priority, eta text or "", expires or "", id, envelope bytes, now, mandatory "1"/"0")
 * → {"ok", queues reached} | {"noexchange"} | {"unroutable"}.
 */
export const PUBLISH_LUA = `
local function split(s)
  local t, start = {}, 1
  while true do
    local i = string.find(s, '.', start, true)
    if not i then t[#t + 1] = string.sub(s, start); return t end
    t[#t + 1] = string.sub(s, start, i - 1)
    start = i + 1
  end
end
local function topic(pattern, key)
  local p, k = split(pattern), split(key)
  local pi, ki, hashAt, hashKey = 1, 1, 0, 0
  while ki <= #k do
    local w = p[pi]
    if pi <= #p and w == '#' then hashAt = pi; pi = pi + 1; hashKey = ki
    elseif pi <= #p and (w == '*' or w == k[ki]) then pi = pi + 1; ki = ki + 1
    elseif hashAt > 0 then pi = hashAt + 1; hashKey = hashKey + 1; ki = hashKey
    else return false end
  end
  while pi <= #p and p[pi] == '#' do pi = pi + 1 end
  return pi > #p
end
-- Queues known to exist in this run of the script: a batch to one queue looks its definition up once.
local ensured = {}
local function publish(exchange, rk, prio, etaText, expires, id, bytes, now, mandatory)
  local eta = tonumber(etaText)
  local queues = {}
  if exchange == '' then
    if not ensured[rk] then ensure(rk, true); ensured[rk] = true end
    queues[1] = rk
  else
    local kind = redis.call('HGET', P .. 'exchanges', exchange)
    if not kind then return {'noexchange'} end
    local seen = {}
    for _, b in ipairs(redis.call('SMEMBERS', P .. 'b:' .. exchange)) do
      local sep = string.find(b, '\\n', 1, true)
      local q, pattern = string.sub(b, 1, sep - 1), string.sub(b, sep + 1)
      if not seen[q] and (kind == 'fanout' or (kind == 'direct' and pattern == rk) or (kind == 'topic' and topic(pattern, rk))) then
        seen[q] = true
        queues[#queues + 1] = q
      end
    end
  end
  if #queues == 0 then
    if mandatory == '1' then return {'unroutable'} end
    return {'ok', 0}
  end
  for _, q in ipairs(queues) do
    local seq = redis.call('INCR', P .. 'seq')
    local m = P .. 'm:' .. seq
    if eta and eta > now then
      redis.call('HSET', m, 'e', bytes, 'q', q, 'p', prio, 'n', 0, 'i', id, 'x', expires)
      redis.call('ZADD', P .. 'd:' .. q, etaText, seq)
      redis.call('PUBLISH', P .. 'n:' .. q, '')
    else
      local score = (9 - prio) * SHIFT + seq
      redis.call('HSET', m, 'e', bytes, 'q', q, 'p', prio, 'n', 0, 'i', id, 'x', expires, 's', num(score))
      ready(q, seq, score)
    end
  end
  return {'ok', #queues}
end
`;

/**
 * ARGV: P, exchange, routingKey, priority, eta or "", expires or "", id, envelope bytes, now, mandatory "1"/"0"
 * → {"ok", queues reached} | {"noexchange"} | {"unroutable"}.
 */
export const publishScript = script(`${PUBLISH_LUA}
return publish(ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[6], ARGV[7], ARGV[8], tonumber(ARGV[9]), ARGV[10])
`);

/**
 * Many publishes in one script call, each as publishScript does it, with
 * the consumers of each queue woken once at the end. ARGV: P, now, then the
 * messages as 8 fields each (exchange, routingKey, priority, eta or "",
 * expires or "", id, envelope bytes, mandatory "1"/"0"), every field a
 * 4-byte big-endian length and its bytes (redis-publish-batch.ts writes them)
 * → per message, in order: "ok" | "noexchange" | "unroutable".
 */
export const publishBatchScript = script(`${PUBLISH_LUA}
local data, now = ARGV[3], tonumber(ARGV[2])
local out, at, size = {}, 1, #data
local f = {}
wakes = {}
while at <= size do
  for i = 1, 8 do f[i], at = struct.unpack('>I4c0', data, at) end
  local r = publish(f[1], f[2], tonumber(f[3]), f[4], f[5], f[6], f[7], now, f[8])
  out[#out + 1] = r[1]
end
for q, empty in pairs(wakes) do
  if empty then redis.call('PUBLISH', P .. 'n:' .. q, '') end
end
return out
`);

/**
 * Move due delayed messages to ready, return lapsed leases to the queue,
 * then lease up to `want` ready messages to the consumer.
 * ARGV: P, queue, want, now, lease deadline, consumer, consumer deadline
 * → {next wake (epoch ms, or -1), ready messages left, seq, deliveries, envelope, seq, deliveries, envelope, ...}.
 */
export const fetchScript = script(`
local q, want, now, owner = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[6]
local dkey, lkey, rkey = P .. 'd:' .. q, P .. 'l:' .. q, P .. 'r:' .. q
redis.call('HSET', P .. 'c:' .. q, owner, ARGV[7])
for _, seq in ipairs(redis.call('ZRANGEBYSCORE', dkey, '-inf', ARGV[4], 'LIMIT', 0, 1000)) do
  redis.call('ZREM', dkey, seq)
  local m = P .. 'm:' .. seq
  local prio = tonumber(redis.call('HGET', m, 'p'))
  if prio then
    local score = fresh_score(prio)
    redis.call('HSET', m, 's', num(score))
    redis.call('ZADD', rkey, num(score), seq)
  end
end
for _, seq in ipairs(redis.call('ZRANGEBYSCORE', lkey, '-inf', ARGV[4], 'LIMIT', 0, 1000)) do
  redis.call('ZREM', lkey, seq)
  requeue(q, seq, now)
end
local out = {0, 0}
local got = 0
-- A paused queue delivers nothing (and reports nothing ready, so its consumers wait for the resume's notification).
if redis.call('SISMEMBER', P .. 'paused', q) == 1 then want = 0 end
local anyrevoked = redis.call('EXISTS', P .. 'revocations') == 1
-- Deadline and seq of each delivery leased here, added to the lease set in one ZADD.
local leased = {}
while got < want do
  local popped = redis.call('ZPOPMIN', rkey, want - got)
  if #popped == 0 then break end
  for p = 1, #popped, 2 do
    local seq = popped[p]
    local m = P .. 'm:' .. seq
    local f = redis.call('HMGET', m, 'i', 'x', 'e', 'n')
    if f[1] then
      if anyrevoked and redis.call('EXISTS', P .. 'rv:' .. f[1]) == 1 then
        redis.call('DEL', m)
      elseif f[2] ~= '' and tonumber(f[2]) < now then
        dead_letter(q, seq, 'expired', now)
      else
        local n = tonumber(f[4]) + 1
        redis.call('HSET', m, 'n', n, 'o', owner .. ':' .. n)
        leased[#leased + 1] = ARGV[5]
        leased[#leased + 1] = seq
        out[#out + 1] = seq
        out[#out + 1] = n
        out[#out + 1] = f[3]
        got = got + 1
      end
    end
  end
end
for from = 1, #leased, 1000 do redis.call('ZADD', lkey, unpack(leased, from, math.min(from + 999, #leased))) end
if want > 0 then out[2] = redis.call('ZCARD', rkey) end
local wake = -1
local nd = redis.call('ZRANGE', dkey, 0, 0, 'WITHSCORES')
if nd[2] then wake = tonumber(nd[2]) end
local nl = redis.call('ZRANGE', lkey, 0, 0, 'WITHSCORES')
if nl[2] and (wake < 0 or tonumber(nl[2]) < wake) then wake = tonumber(nl[2]) end
out[1] = num(wake)
return out
`);

/** ARGV: P, queue, then pairs of seq and delivery token → how many were still held and are now done. */
export const ackScript = script(`
local lkey = P .. 'l:' .. ARGV[2]
local seqs, keys = {}, {}
for i = 3, #ARGV, 2 do
  local m = P .. 'm:' .. ARGV[i]
  if redis.call('HGET', m, 'o') == ARGV[i + 1] then
    seqs[#seqs + 1] = ARGV[i]
    keys[#keys + 1] = m
  end
end
-- One ZREM and one DEL for many (in slices: unpack is bounded by Lua's stack).
for from = 1, #seqs, 1000 do
  local to = math.min(from + 999, #seqs)
  redis.call('ZREM', lkey, unpack(seqs, from, to))
  redis.call('DEL', unpack(keys, from, to))
end
return #seqs
`);

/** ARGV: P, queue, seq, delivery token, requeue "1"/"0", reason, now → 1 if the delivery was still held. */
export const nackScript = script(`
local q, seq = ARGV[2], ARGV[3]
if redis.call('HGET', P .. 'm:' .. seq, 'o') ~= ARGV[4] then return 0 end
redis.call('ZREM', P .. 'l:' .. q, seq)
if ARGV[5] == '1' then requeue(q, seq, tonumber(ARGV[7])) else dead_letter(q, seq, ARGV[6], tonumber(ARGV[7])) end
return 1
`);

/** Unregister a consumer and return what it still holds. ARGV: P, queue, consumer, now, then pairs of seq and token. */
export const cancelScript = script(`
local q = ARGV[2]
redis.call('HDEL', P .. 'c:' .. q, ARGV[3])
for i = 5, #ARGV, 2 do
  if redis.call('HGET', P .. 'm:' .. ARGV[i], 'o') == ARGV[i + 1] then
    redis.call('ZREM', P .. 'l:' .. q, ARGV[i])
    requeue(q, ARGV[i], tonumber(ARGV[4]))
  end
end
drop_if_abandoned(q, tonumber(ARGV[4]))
return 1
`);

/** Register a new consumer (marking an auto-delete queue as consumed). ARGV: P, queue, consumer, consumer deadline. */
export const attachScript = script(`
redis.call('HSET', P .. 'c:' .. ARGV[2], ARGV[3], ARGV[4])
if redis.call('HEXISTS', P .. 'ad', ARGV[2]) == 1 then redis.call('HSET', P .. 'ad', ARGV[2], '1') end
return 1
`);

/**
 * Delete the auto-delete queues whose consumers have all gone, also those
 * whose process died (their registrations lapse with their leases).
 * ARGV: P, now → how many queues were deleted.
 */
export const sweepScript = script(`
local dropped = 0
for _, q in ipairs(redis.call('HKEYS', P .. 'ad')) do dropped = dropped + drop_if_abandoned(q, tonumber(ARGV[2])) end
return dropped
`);

/** Keep a consumer registered and its deliveries leased. ARGV: P, queue, consumer, consumer deadline, lease deadline, then pairs of seq and token. */
export const renewScript = script(`
local q = ARGV[2]
redis.call('HSET', P .. 'c:' .. q, ARGV[3], ARGV[4])
for i = 6, #ARGV, 2 do
  if redis.call('HGET', P .. 'm:' .. ARGV[i], 'o') == ARGV[i + 1] then
    redis.call('ZADD', P .. 'l:' .. q, 'XX', ARGV[5], ARGV[i])
  end
end
return 1
`);

/** ARGV: P, queue, now → -1 for an unknown queue, else {ready, delayed, unacked, live consumers}. */
export const statsScript = script(`
local q = ARGV[2]
if not qdef(q) then return -1 end
local live = live_consumers(q, tonumber(ARGV[3]))
return {redis.call('ZCARD', P .. 'r:' .. q), redis.call('ZCARD', P .. 'd:' .. q), redis.call('ZCARD', P .. 'l:' .. q), live}
`);

/** ARGV: P, queue (a dead-letter queue or a queue whose dead letters to read) → -1 for an unknown queue, else {envelope, from, reason, at, id, ...}. */
export const deadLettersScript = script(`
local d = qdef(ARGV[2])
if not d then return -1 end
local dlq = d.isdlq and ARGV[2] or d.dlq
local out = {}
for _, prefix in ipairs({'l:', 'r:'}) do
  for _, seq in ipairs(redis.call('ZRANGE', P .. prefix .. dlq, 0, -1)) do
    local f = redis.call('HMGET', P .. 'm:' .. seq, 'e', 'dq', 'dr', 'da', 'i')
    if f[1] and f[2] then
      out[#out + 1] = f[1]; out[#out + 1] = f[2]; out[#out + 1] = f[3]; out[#out + 1] = f[4]; out[#out + 1] = f[5]
    end
  end
end
return out
`);

/**
 * Record revocations (each kept for at least its ttl) and announce them.
 * ARGV: P, ttl ms, now, origin, terminate "1"/"0", ids...
 */
export const revokeScript = script(`
local ttl, now = tonumber(ARGV[2]), tonumber(ARGV[3])
local expiry = now + ttl
redis.call('ZREMRANGEBYSCORE', P .. 'revocations', '-inf', num(now))
for i = 6, #ARGV do
  local key = P .. 'rv:' .. ARGV[i]
  if redis.call('PTTL', key) < ttl then redis.call('SET', key, '1', 'PX', ARGV[2]) end
  redis.call('ZADD', P .. 'revocations', 'GT', num(expiry), ARGV[i])
  redis.call('PUBLISH', P .. 'revoke', ARGV[4] .. '\\t' .. ARGV[5] .. '\\t' .. ARGV[2] .. '\\t' .. ARGV[i])
end
return 1
`);
