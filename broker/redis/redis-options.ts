// The Redis transport's settings (prefix, poll interval, lease), their defaults, and the
// `redis://` url with its `?prefix=` and `?leaseMs=` read into a connection target.
import { InvalidArgumentError } from "../errors.ts";

/**
 * Settings of a RedisTransport; every field is optional.
 *
 * @example
 * const transport = RedisTransport.create("redis://127.0.0.1:6379/0", { prefix: "shop:", leaseMs: 60_000 });
 */
export interface RedisTransportOptions {
  /**
   * Prefix of every key and channel the transport uses, so several apps (or
   * tests) share one Redis without meeting. Default `{celerity}:`; the braces
   * make it a hash tag, which keeps every key in one slot of a cluster. The
   * url's `?prefix=` sets it too. A prefix that does not end in `:` gets one
   * (`shop` and `shop:` both mean `shop:`), in the option as in the url.
   */
  readonly prefix?: string;
  /**
   * How often an idle consumer looks for work that no notification announced
   * (a notification lost while reconnecting, a lease run out elsewhere). Default 1000 ms.
   */
  readonly pollMs?: number;
  /**
   * The lease of a delivery whose consumer names none (ConsumeOptions.leaseMs):
   * how long a message held by a process that died stays unavailable. Renewed
   * while the process lives, so it never limits how long a task runs. Default
   * 30 s; the url's `?leaseMs=` sets it too.
   */
  readonly leaseMs?: number;
  /** Where the transport reports a failed acknowledgement or a lost connection. Default console.error. */
  readonly log?: (message: string) => void;
}

/** The connection url (without the transport's own parameters) and the transport settings it names. */
export interface RedisTarget {
  readonly url: string;
  readonly prefix: string;
  /** The url's `?leaseMs=`, if given. */
  readonly leaseMs?: number;
}

export const DEFAULT_PREFIX = "{celerity}:";

/**
 * How many reconnection attempts a command waits through before it fails
 * with a connection-lost error. A cut connection comes back at the first
 * attempt; a Redis that is down fails calls within about a second instead of
 * holding them for a minute (consumers keep polling and resume by themselves).
 */
export const MAX_RETRIES_PER_REQUEST = 4;

/**
 * Read a `redis://[:password@]host[:port][/db][?prefix=name&leaseMs=n]` (or `rediss://`) url:
 * the url for the client, the key prefix (`prefix`, when given, instead of the url's; either
 * ends in `:`, added if missing) and the default lease.
 *
 * @example
 * parseRedisUrl("redis://127.0.0.1:6379/2?prefix=shop"); // { url: "redis://127.0.0.1:6379/2", prefix: "shop:" }
 */
export const parseRedisUrl = (url: string, prefix?: string): RedisTarget => {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidArgumentError({
      argument: "redis url",
      reason: `cannot parse ${JSON.stringify(url)} (expected redis://host:port/db)`,
    });
  }
  if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:") {
    throw new InvalidArgumentError({
      argument: "redis url",
      reason: `${JSON.stringify(url)} is not a redis:// or rediss:// url`,
    });
  }
  const db = parsed.pathname.replace(/^\//, "");
  if (db !== "" && !/^\d+$/.test(db)) {
    throw new InvalidArgumentError({
      argument: "redis url",
      reason: `the database in ${JSON.stringify(url)} must be a number, got ${JSON.stringify(db)}`,
    });
  }
  const named = parsed.searchParams.get("prefix");
  parsed.searchParams.delete("prefix");
  const lease = parsed.searchParams.get("leaseMs");
  parsed.searchParams.delete("leaseMs");
  const leaseMs = lease === null ? undefined : Number(lease);
  if (leaseMs !== undefined && !(Number.isInteger(leaseMs) && leaseMs > 0)) {
    throw new InvalidArgumentError({
      argument: "redis url",
      reason: `leaseMs in ${JSON.stringify(url)} must be a positive integer of milliseconds, got ${JSON.stringify(lease)}`,
    });
  }
  const given = prefix ?? named ?? DEFAULT_PREFIX;
  if (given.length === 0) throw new InvalidArgumentError({ argument: "prefix", reason: "must not be empty" });
  // The option and the url's parameter name the same keys: "shop" and "shop:" both mean "shop:".
  const chosen = given.endsWith(":") ? given : `${given}:`;
  return { url: parsed.toString(), prefix: chosen, ...(leaseMs !== undefined ? { leaseMs } : {}) };
};
