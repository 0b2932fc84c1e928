// A task's rate limit, as a user writes it and as the runtime keeps it.
// Rates are Celery's strings: "10/s", "100/m", "1000/h", or a bare number
// (or numeric string) meaning per second.
import { Data } from "effect";
import type { BucketLimit } from "./token-bucket.ts";

/**
 * Where a limit's bucket lives: "global", one for every worker together (kept by the broker
 * node, Redis, or this process with the embedded broker), or "worker", one per worker.
 *
 * @example
 * app.task("fetch", fetchPage, { rateLimit: "10/s" });
 * app.task("call", callApi, { rateLimit: { rate: "100/m", burst: 5, scope: "worker", key: (host: string) => host } });
 */
export type RateScope = "global" | "worker";

/**
 * The full form of a rate limit: rate, burst, scope and key.
 *
 * @example
 * app.task("call", callApi, { rateLimit: { rate: "100/m", burst: 5, key: (host: string) => host } });
 */
export interface RateLimitOptions {
  /** The steady rate: "10/s", "100/m", "1000/h", or a number per second. */
  readonly rate: string | number;
  /** Most executions at once after a quiet spell (a positive integer). Default: one second's worth of the rate, at least 1. */
  readonly burst?: number;
  /**
   * "global" (default): one bucket for every worker together, kept by the
   * broker node (or in this process with the embedded broker).
   * "worker": a bucket per worker, as in Celery.
   */
  readonly scope?: RateScope;
  /** A bucket per key of the task's arguments (per customer, per host). */
  readonly key?: (...args: never[]) => string;
}

/**
 * What `rateLimit` accepts: a rate, or the full form.
 *
 * @example
 * app.task("fetch", fetchPage, { rateLimit: "10/s" });
 */
export type RateLimitSetting = string | number | RateLimitOptions;

/** A resolved limit. */
export interface RateLimit extends BucketLimit {
  /** The rate as given, for messages. */
  readonly rate: string;
  readonly scope: RateScope;
  readonly key?: (...args: never[]) => string;
}

/**
 * A rate limit that cannot be used as written: the task and the value are named.
 *
 * @example
 * app.task("fetch", fetchPage, { rateLimit: "ten per second" }); // throws RateLimitError
 */
export class RateLimitError extends Data.TaggedError("RateLimitError")<{
  readonly task: string;
  readonly value: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `rate limit of task '${this.task}': ${this.reason}, got ${this.value}`;
  }
}

const PERIOD_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000 };
const RATE = /^(\d+(?:\.\d+)?)(?:\/([smh]))?$/;

/** Parse a rate ("10/s", "100/m", "1000/h", "5", 5) into tokens per period; throws RateLimitError naming the task and the value. */
export const parseRate = (task: string, rate: unknown): { count: number; periodMs: number } => {
  if (typeof rate === "number") {
    if (!Number.isFinite(rate) || rate <= 0)
      throw new RateLimitError({
        task,
        value: String(rate),
        reason: "a rate must be a positive number of executions per second",
      });
    return { count: rate, periodMs: 1_000 };
  }
  if (typeof rate !== "string")
    throw new RateLimitError({
      task,
      value: describe(rate),
      reason: 'a rate is a string like "10/s", "100/m" or "1000/h", or a number per second',
    });
  const match = RATE.exec(rate);
  if (match === null)
    throw new RateLimitError({
      task,
      value: `'${rate}'`,
      reason: 'a rate looks like "10/s", "100/m" or "1000/h" (or a bare number, per second)',
    });
  const count = Number(match[1]);
  if (count <= 0)
    throw new RateLimitError({
      task,
      value: `'${rate}'`,
      reason: "a rate must be above zero (to remove a limit, set it to null)",
    });
  return { count, periodMs: PERIOD_MS[match[2] ?? "s"] };
};

/** One second's worth of the rate, at least one token. */
export const defaultBurst = (limit: { count: number; periodMs: number }): number =>
  Math.max(1, Math.floor((limit.count * 1_000) / limit.periodMs));

/** Resolve a `rateLimit` option; throws RateLimitError naming the task and what is wrong. */
export const resolveRateLimit = (task: string, setting: RateLimitSetting): RateLimit => {
  if (typeof setting === "string" || typeof setting === "number") {
    const parsed = parseRate(task, setting);
    return { ...parsed, burst: defaultBurst(parsed), rate: String(setting), scope: "global" };
  }
  if (setting === null || typeof setting !== "object")
    throw new RateLimitError({
      task,
      value: describe(setting),
      reason: "rateLimit is a rate string or { rate, burst?, scope?, key? }",
    });
  const parsed = parseRate(task, setting.rate);
  const { burst, scope, key } = setting;
  if (burst !== undefined && (!Number.isInteger(burst) || burst < 1))
    throw new RateLimitError({ task, value: describe(burst), reason: "burst must be a positive integer" });
  if (scope !== undefined && scope !== "global" && scope !== "worker")
    throw new RateLimitError({ task, value: describe(scope), reason: 'scope must be "global" or "worker"' });
  if (key !== undefined && typeof key !== "function")
    throw new RateLimitError({
      task,
      value: describe(key),
      reason: "key must be a function of the task's arguments returning a string",
    });
  return {
    ...parsed,
    burst: burst ?? defaultBurst(parsed),
    rate: String(setting.rate),
    scope: scope ?? "global",
    ...(key !== undefined ? { key } : {}),
  };
};

const describe = (value: unknown): string =>
  typeof value === "string"
    ? `'${value}'`
    : typeof value === "function"
      ? "a function"
      : (JSON.stringify(value) ?? String(value));
