// An app's rate limiting: the table of limits in force, where "global"
// buckets live, and how a limit is changed at run time. With the embedded
// broker the global buckets are in this process (shared by every app on the
// same broker object); with a broker node they are on the node; with Redis, in Redis.
import { NodeTransport } from "../../broker/node/client/node-transport.ts";
import { RedisTransport } from "../../broker/redis/redis-transport.ts";
import { AmqpTransport } from "../../broker/amqp/amqp-transport.ts";
import { PostgresResultStore } from "../results/postgres-result-store.ts";
import { RedisResultStore } from "../results/redis-result-store.ts";
import { RemoteResultStore } from "../results/remote-result-store.ts";
import type { ResultStore } from "../results/result-store.ts";
import { PostgresRateLimits } from "./postgres-rate-limits.ts";
import { RedisRateLimits } from "./redis-rate-limits.ts";
import type { Transport } from "../../broker/transport.ts";
import { nowOf, systemClock, type Clock } from "../../broker/clock.ts";
import { BucketTable } from "./bucket-table.ts";
import { type LimitOverride, RateLimitTable } from "./limits-in-force.ts";
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

/** A token source every process shares, with its way of announcing a changed limit. */
type SharedSource = TokenSource & { change(task: string, limit: LimitOverride): Promise<void> };

const sharedBy = (source: SharedSource, table: RateLimitTable): RateLimiting => ({
  table,
  global: source,
  async change(task, limit) {
    table.override(task, limit);
    await source.change(task, limit);
  },
});

/**
 * Where an app's global buckets live: on the broker when it keeps shared
 * state (a node, Redis); otherwise (RabbitMQ) in the result store when every
 * process shares it (a node, Redis, PostgreSQL); otherwise in this process,
 * which on a broker that other processes share makes limits per process,
 * said once in the log.
 */
export const rateLimitingFor = (
  broker: Transport,
  log: (message: string) => void,
  clock: Clock = systemClock,
  results?: ResultStore,
): RateLimiting => {
  const table = new RateLimitTable();
  if (broker instanceof NodeTransport) return sharedBy(new RemoteRateLimits(broker.client, table, log), table);
  if (broker instanceof RedisTransport) return sharedBy(new RedisRateLimits(broker, table, log), table);
  if (broker instanceof AmqpTransport) {
    if (results instanceof RemoteResultStore) return sharedBy(new RemoteRateLimits(results.client, table, log), table);
    if (results instanceof RedisResultStore) return sharedBy(new RedisRateLimits(results, table, log), table);
    if (results instanceof PostgresResultStore) return sharedBy(new PostgresRateLimits(results, table, log), table);
    return perProcess(broker, table, clock, () =>
      log(
        "rate limits: global limits are kept in each process, since neither RabbitMQ nor this app's result store is shared by every worker; give results a redis://, postgres:// or celerity:// url for limits every worker shares",
      ),
    );
  }
  return perProcess(broker, table, clock);
};

const perProcess = (broker: Transport, table: RateLimitTable, clock: Clock, warn?: () => void): RateLimiting => {
  let global = localSources.get(broker);
  if (global === undefined)
    localSources.set(broker, (global = new LocalTokenSource(new BucketTable({ now: nowOf(clock) }))));
  return {
    table,
    global: warn === undefined ? global : warnOnFirstTake(global, warn),
    async change(task, limit) {
      table.override(task, limit);
    },
  };
};

const warnOnFirstTake = (source: TokenSource, warn: () => void): TokenSource => {
  let warned = false;
  return {
    take(task, key, limit, want) {
      if (!warned) {
        warned = true;
        warn();
      }
      return source.take(task, key, limit, want);
    },
    refund: (task, key, tokens) => source.refund(task, key, tokens),
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
