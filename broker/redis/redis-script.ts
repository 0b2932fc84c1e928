// Running a Lua script on Redis by its SHA1 (EVALSHA), sending its text (EVAL) when the
// server does not know it, with replies kept raw so binary envelopes survive.
import { createHash } from "node:crypto";
import type { Redis } from "ioredis";

/**
 * A Lua script run atomically on Redis: by its SHA1 (EVALSHA), falling back
 * to sending its text (EVAL) the first time a server does not know it (after
 * a restart, a failover or SCRIPT FLUSH). Replies come back raw: bulk strings
 * as Buffers, integers as numbers, so binary envelopes survive untouched.
 *
 * @example
 * const ping = new RedisScript("return ARGV[1]");
 * await ping.run(redis, ["pong"]); // Buffer "pong"
 */
export class RedisScript {
  readonly sha: string;

  constructor(readonly lua: string) {
    this.sha = createHash("sha1").update(lua).digest("hex");
  }

  /** Run with `args` as ARGV (the scripts take no KEYS: every key lives under one prefix, so one hash slot). */
  async run(redis: Redis, args: readonly (string | Buffer | number)[]): Promise<unknown> {
    // The Buffer variants exist at run time but are not in ioredis's types; `callBuffer` loses its command under auto-pipelining.
    const raw = redis as unknown as RawScripting;
    try {
      return await raw.evalshaBuffer(this.sha, 0, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith("NOSCRIPT")) throw error;
      return raw.evalBuffer(this.lua, 0, ...args);
    }
  }
}

interface RawScripting {
  evalshaBuffer(sha: string, keys: number, ...args: (string | Buffer | number)[]): Promise<unknown>;
  evalBuffer(lua: string, keys: number, ...args: (string | Buffer | number)[]): Promise<unknown>;
}

/** A reply element as text (Redis hands bulk strings back as Buffers). */
export const text = (value: unknown): string => (Buffer.isBuffer(value) ? value.toString("utf8") : String(value));
