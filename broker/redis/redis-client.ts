// Makes the ioredis clients of the Redis transport and stores, loading ioredis on first use
// so that an app which never talks to Redis does not pay for loading it.
import { createRequire } from "node:module";
import type { Redis, RedisOptions } from "ioredis";

const require = createRequire(import.meta.url);
let RedisClient: typeof import("ioredis").Redis | undefined;

/**
 * A new ioredis client. ioredis is loaded on first use, not when this
 * module is: every app imports the url dispatch, and one that never talks to
 * Redis should not pay for loading the client (a third of a second on a
 * loaded machine).
 */
export const newRedisClient = (url: string, options: RedisOptions): Redis => {
  RedisClient ??= (require("ioredis") as typeof import("ioredis")).Redis;
  return new RedisClient(url, options);
};
