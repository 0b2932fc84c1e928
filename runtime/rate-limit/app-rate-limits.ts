// An app's rate limiting: the table of limits in force, where "global"
// buckets live, and how a limit is changed at run time. With the embedded
// broker the global buckets are in this process (shared by every app on the
// same broker object); with a broker node they are on the node; with Redis, in Redis.
import { NodeTransport } from "../../broker/node/node-transport.ts";
import { RedisTransport } from "../../broker/redis/redis-transport.ts";
import { RedisRateLimits } from "./redis-rate-limits.ts";
import type { Transport } from "../../broker/transport.ts";
import { nowOf, systemClock, type Clock } from "../../broker/clock.ts";
import { BucketTable } from "./bucket-table.ts";
import { RateLimitTable, type LimitOverride } from "./limits-in-force.ts";
import { RateLimitError, defaultBurst, parseRate } from "./rate-setting.ts";
import { RemoteRateLimits } from "./node-rate-limit-client.ts";
import { LocalTokenSource, type TokenSource } from "./token-source.ts";

/**
 * A new limit for `app.control.rateLimit`: a rate ("5/s"), a rate and a burst, or null to remove the limit.
 *
 * @example
 * await app.control.rateLimit("fetch", { rate: "5/s", burst: 2 });
 * await app.control.rateLimit("fetch", null); // no limit
 */
export type RateLimitChange = string | number | { readonly rate: string | number; readonly burst?: number } | null;

export interface RateLimiting {
  readonly table: RateLimitTable;
  /** Where global-scope buckets live. */
  readonly global: TokenSource;
  /** Change `task`'s limit everywhere: resolves once the change is in force here and, with a node, on the node (which pushes it to every process). */
  change(task: string, limit: LimitOverride): Promise<void>;
}

// Apps sharing one embedded broker share its global buckets, as workers sharing a node do.
const localSources = new WeakMap<Transport, LocalTokenSource>();

export const rateLimitingFor = (
  broker: Transport,
  log: (message: string) => void,
  clock: Clock = systemClock,
): RateLimiting => {
  const table = new RateLimitTable();
  if (broker instanceof NodeTransport) {
    const remote = new RemoteRateLimits(broker.client, table, log);
    return {
      table,
      global: remote,
      async change(task, limit) {
        table.override(task, limit);
        await remote.change(task, limit);
      },
    };
  }
  if (broker instanceof RedisTransport) {
    const redis = new RedisRateLimits(broker, table, log);
    return {
      table,
      global: redis,
      async change(task, limit) {
        table.override(task, limit);
        await redis.change(task, limit);
      },
    };
  }
  let global = localSources.get(broker);
  if (global === undefined)
    localSources.set(broker, (global = new LocalTokenSource(new BucketTable({ now: nowOf(clock) }))));
  return {
    table,
    global,
    async change(task, limit) {
      table.override(task, limit);
    },
  };
};

/** Resolve a `app.control.rateLimit` argument; throws RateLimitError naming the task and the value. */
export const resolveChange = (task: string, change: RateLimitChange): LimitOverride => {
  if (typeof task !== "string" || task.length === 0)
    throw new RateLimitError({ task: String(task), value: String(task), reason: "a task name is a non-empty string" });
  if (change === null) return null;
  const rate = typeof change === "object" ? change.rate : change;
  const parsed = parseRate(task, rate);
  const burst = typeof change === "object" ? change.burst : undefined;
  if (burst !== undefined && (!Number.isInteger(burst) || burst < 1))
    throw new RateLimitError({ task, value: String(burst), reason: "burst must be a positive integer" });
  return { ...parsed, burst: burst ?? defaultBurst(parsed) };
};
