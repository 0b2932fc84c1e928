/**
 * The beat's shared state in Redis, each operation one Lua script: the
 * schedules, their last runs, the change log a beat reads from, and the
 * lease with its fencing token. Time for the lease and for `addedAt` is the
 * Redis server's (TIME), so beats need not agree on the time to agree on
 * who leads. `fire` checks the lease, records each run and enqueues its
 * message into the Redis transport's queues in the same script: a run is
 * recorded if and only if it is sent.
 *
 * Keys under the transport's prefix P:
 * - `P beat:s`       hash: schedule → its entry (msgpack)
 * - `P beat:added`, `P beat:rev`, `P beat:run`   hashes: schedule → added at, revision, last run
 * - `P beat:log`     sorted set: schedule → the version of its last change (put, run, remove)
 * - `P beat:version` the newest version; `P beat:forgotten` the log before it was trimmed away
 * - `P beat:epoch`   names this table (a reader with another epoch reads it whole)
 * - `P beat:lease`   hash: holder, token, exp (server ms); `P beat:token` the last token handed out
 *
 * @module
 */
import { brokerScript, PUBLISH_LUA } from "../../../broker/redis/redis-broker-scripts.ts";

const BEAT = `
-- The keeper's clock: the time given (a store on a test's virtual clock), else the Redis server's.
local function keeper_now(given)
  if given ~= '' then return tonumber(given) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- Log a change to a schedule under a new version, trimming the oldest half of the log past its bound.
local function note(name)
  local v = redis.call('INCR', P .. 'beat:version')
  redis.call('ZADD', P .. 'beat:log', v, name)
  local size = redis.call('ZCARD', P .. 'beat:log')
  if size > math.max(4096, redis.call('HLEN', P .. 'beat:s') * 4) then
    local drop = math.floor(size / 2)
    local last = redis.call('ZRANGE', P .. 'beat:log', drop - 1, drop - 1, 'WITHSCORES')
    redis.call('SET', P .. 'beat:forgotten', last[2])
    redis.call('ZREMRANGEBYRANK', P .. 'beat:log', 0, drop - 1)
  end
  return v
end
local function row(out, name)
  local entry = redis.call('HGET', P .. 'beat:s', name)
  if not entry then return false end
  out[#out + 1] = entry
  out[#out + 1] = redis.call('HGET', P .. 'beat:added', name)
  out[#out + 1] = redis.call('HGET', P .. 'beat:rev', name)
  out[#out + 1] = redis.call('HGET', P .. 'beat:run', name) or ''
  return true
end
local function lease_in_force(now)
  local l = redis.call('HMGET', P .. 'beat:lease', 'holder', 'token', 'exp')
  if l[1] and tonumber(l[3]) > now then return { holder = l[1], token = tonumber(l[2]), exp = tonumber(l[3]) } end
  return nil
end
`;

const beatScript = (body: string) => brokerScript(BEAT + body);

/** ARGV: P, name, entry bytes, keeper's now or "" → {entry, added at, revision, last run or ""}. */
export const putScript = beatScript(`
local name = ARGV[2]
redis.call('HSETNX', P .. 'beat:added', name, keeper_now(ARGV[4]))
redis.call('HSET', P .. 'beat:s', name, ARGV[3])
redis.call('HSET', P .. 'beat:rev', name, note(name))
local out = {}
row(out, name)
return out
`);

/** ARGV: P, name → 1 if it was there, else 0. */
export const removeScript = beatScript(`
local name = ARGV[2]
if redis.call('HDEL', P .. 'beat:s', name) == 0 then return 0 end
redis.call('HDEL', P .. 'beat:added', name)
redis.call('HDEL', P .. 'beat:rev', name)
redis.call('HDEL', P .. 'beat:run', name)
note(name)
return 1
`);

/**
 * ARGV: P, reader's epoch or "", since, a new epoch to name the table by if it has none
 * → {epoch, version, full 1/0, schedule rows (4 fields each) ..., "", removed names ...}.
 */
export const changesScript = beatScript(`
redis.call('SET', P .. 'beat:epoch', ARGV[4], 'NX')
local epoch = redis.call('GET', P .. 'beat:epoch')
local version = tonumber(redis.call('GET', P .. 'beat:version') or '0')
local forgotten = tonumber(redis.call('GET', P .. 'beat:forgotten') or '0')
local since = tonumber(ARGV[3])
local out = {epoch, version, 0}
if ARGV[2] ~= epoch or since < forgotten or since > version then
  out[3] = 1
  for _, name in ipairs(redis.call('HKEYS', P .. 'beat:s')) do row(out, name) end
  out[#out + 1] = ''
  return out
end
local removed = {}
for _, name in ipairs(redis.call('ZRANGEBYSCORE', P .. 'beat:log', '(' .. since, '+inf')) do
  if not row(out, name) then removed[#removed + 1] = name end
end
out[#out + 1] = ''
for _, name in ipairs(removed) do out[#out + 1] = name end
return out
`);

/** ARGV: P, holder, ttl ms, keeper's now or "" → {holder, token, expires at} of the lease in force afterwards. */
export const acquireScript = beatScript(`
local holder, ttl = ARGV[2], tonumber(ARGV[3])
local now = keeper_now(ARGV[4])
local current = lease_in_force(now)
if current and current.holder ~= holder then return {current.holder, current.token, current.exp} end
local token = current and current.token or redis.call('INCR', P .. 'beat:token')
redis.call('HSET', P .. 'beat:lease', 'holder', holder, 'token', token, 'exp', now + ttl)
return {holder, token, now + ttl}
`);

/** ARGV: P, holder, token → 1 if released. */
export const releaseScript = beatScript(`
local l = redis.call('HMGET', P .. 'beat:lease', 'holder', 'token')
if l[1] ~= ARGV[2] or tonumber(l[2]) ~= tonumber(ARGV[3]) then return 0 end
redis.call('DEL', P .. 'beat:lease')
return 1
`);

/** How many ARGV fields each run takes in `fireScript`. */
export const FIRE_RUN_FIELDS = 10;

/**
 * For the holder of the lease with `token`: record each run and publish the
 * message of each run to send, in one step.
 * ARGV: P, holder, token, now (for etas), keeper's now or "", then per run: schedule, instant,
 * send "1"/"0", exchange, routing key, priority, eta or "", expires or "", id, envelope bytes
 * → {"lost", current token} | {"ok", outcome, refusal ("" | "noexchange" | "unroutable"), ...}.
 */
export const fireScript = beatScript(`${PUBLISH_LUA}
local holder, token, now = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local lease = lease_in_force(keeper_now(ARGV[5]))
if not lease or lease.holder ~= holder or lease.token ~= token then
  return {'lost', tonumber(redis.call('GET', P .. 'beat:token') or '0')}
end
local out = {'ok'}
for i = 6, #ARGV, ${FIRE_RUN_FIELDS} do
  local name, instant = ARGV[i], tonumber(ARGV[i + 1])
  local last = redis.call('HGET', P .. 'beat:run', name)
  if redis.call('HEXISTS', P .. 'beat:s', name) == 0 then
    out[#out + 1] = 'removed'; out[#out + 1] = ''
  elseif last and instant <= tonumber(last) then
    out[#out + 1] = 'stale'; out[#out + 1] = ''
  else
    redis.call('HSET', P .. 'beat:run', name, ARGV[i + 1])
    note(name)
    if ARGV[i + 2] == '1' then
      local sent = publish(ARGV[i + 3], ARGV[i + 4], tonumber(ARGV[i + 5]), ARGV[i + 6], ARGV[i + 7], ARGV[i + 8], ARGV[i + 9], now, '1')
      out[#out + 1] = 'sent'
      out[#out + 1] = sent[1] == 'ok' and '' or sent[1]
    else
      out[#out + 1] = 'passed'; out[#out + 1] = ''
    end
  end
end
return out
`);
