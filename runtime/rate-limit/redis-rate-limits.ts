// Rate limiting through Redis, for apps on the Redis transport or with their
// results in Redis: the buckets of global-scope limits live in Redis (`P tb:<bucket>`), taken from and
// refunded to by Lua scripts on Redis's own clock, so any number of workers
// on any number of machines together stay under a limit. Limit changes made
// with `app.control.rateLimit` are kept in `P rate-limits` (read by
// processes that start later) and published on `P rate-limit`.
//
// The bucket is TokenBucket's arithmetic (credit in token × periodMs, exact
// for integer rates): a new bucket starts full, a changed limit keeps the
// tokens earned up to the new burst, and an idle bucket expires once full.
import { RedisScript } from "../../broker/redis/redis-script.ts";
import type { Redis } from "ioredis";
import { bucketId } from "./bucket-table.ts";
import type { LimitOverride, RateLimitTable } from "./limits-in-force.ts";
import type { TokenSource } from "./token-source.ts";
import type { BucketLimit, Grant } from "./token-bucket.ts";

const BUCKET = `
local key = ARGV[1] .. 'tb:' .. ARGV[2]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', key, 'c', 'l', 'n', 'p', 'b')
local function refill(credit, last, count, period, burst)
  if now > last then credit = math.min(burst * period, credit + (now - last) * count) end
  return credit
end
local function store(credit, count, period, burst)
  redis.call('HSET', key, 'c', string.format('%.17g', credit), 'l', string.format('%.0f', now), 'n', count, 'p', period, 'b', burst)
  redis.call('PEXPIRE', key, math.ceil((burst * period - credit) / count) + 1000)
end
`;

/** ARGV: P, bucket, count, periodMs, burst, want → {granted, waitMs}. */
const takeScript = new RedisScript(`${BUCKET}
local count, period, burst, want = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local credit = burst * period
if b[1] then
  local oc, op, ob = tonumber(b[3]), tonumber(b[4]), tonumber(b[5])
  credit = refill(tonumber(b[1]), tonumber(b[2]), oc, op, ob)
  if oc ~= count or op ~= period or ob ~= burst then credit = math.min(credit / op, burst) * period end
end
local granted = math.min(want, math.floor(credit / period))
credit = credit - granted * period
local wait = 0
if granted < want then wait = math.max(1, math.ceil((period - credit) / count)) end
store(credit, count, period, burst)
return {granted, wait}
`);

/** ARGV: P, bucket, tokens. */
const refundScript = new RedisScript(`${BUCKET}
if not b[1] then return 0 end
local count, period, burst = tonumber(b[3]), tonumber(b[4]), tonumber(b[5])
local credit = refill(tonumber(b[1]), tonumber(b[2]), count, period, burst)
credit = math.min(burst * period, credit + tonumber(ARGV[3]) * period)
store(credit, count, period, burst)
return 1
`);

/** A limit as Redis keeps it: "count periodMs burst", or "" for a removed limit. */
const toText = (limit: LimitOverride): string =>
  limit === null ? "" : `${limit.count} ${limit.periodMs} ${limit.burst}`;
const fromText = (text: string): LimitOverride => {
  if (text === "") return null;
  const [count, periodMs, burst] = text.split(" ").map(Number);
  return { count, periodMs, burst };
};

/**
 * Where the buckets live: a Redis connection, the key prefix, and a channel
 * to hear limit changes on. The Redis transport is one, and so is the Redis
 * result store (for apps on a broker that keeps no shared state).
 */
export interface RedisBucketHost {
  readonly redis: Redis;
  readonly prefix: string;
  listen(name: string, listener: (message: string) => void): Promise<() => void>;
}

export class RedisRateLimits implements TokenSource {
  /** Settles once the changes made so far are applied and later ones will be heard. */
  readonly ready: Promise<void>;

  constructor(
    private readonly transport: RedisBucketHost,
    private readonly table: RateLimitTable,
    private readonly log: (message: string) => void,
  ) {
    this.ready = this.watch();
    this.ready.catch((error: unknown) =>
      log(
        `rate limits: could not read limit changes from Redis: ${error instanceof Error ? error.message : String(error)}`,
      ),
    );
  }

  take(task: string, key: string | undefined, limit: BucketLimit, want: number): Promise<Grant> {
    return takeScript
      .run(this.transport.redis, [
        this.transport.prefix,
        bucketId(task, key),
        limit.count,
        limit.periodMs,
        limit.burst,
        want,
      ])
      .then((reply) => {
        const [granted, waitMs] = reply as [number, number];
        return { granted, waitMs };
      });
  }

  refund(task: string, key: string | undefined, tokens: number): void {
    refundScript
      .run(this.transport.redis, [this.transport.prefix, bucketId(task, key), tokens])
      .catch((error: unknown) => {
        this.log(
          `rate limits: refunding ${tokens} tokens of '${task}' failed: ${error instanceof Error ? error.message : String(error)}`,
        );
      });
  }

  /** Record a change in Redis and announce it to every process on the same prefix. */
  async change(task: string, limit: LimitOverride): Promise<void> {
    const text = toText(limit);
    await this.transport.redis
      .multi()
      .hset(`${this.transport.prefix}rate-limits`, task, text)
      .publish(`${this.transport.prefix}rate-limit`, `${task}\t${text}`)
      .exec();
  }

  private async watch(): Promise<void> {
    await this.transport.listen("rate-limit", (message) => {
      const tab = message.lastIndexOf("\t");
      this.table.override(message.slice(0, tab), fromText(message.slice(tab + 1)));
    });
    const changes = await this.transport.redis.hgetall(`${this.transport.prefix}rate-limits`);
    for (const [task, text] of Object.entries(changes)) this.table.override(task, fromText(text));
  }
}
