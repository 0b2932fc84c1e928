// Test helpers for the Redis transport and stores: the tests' Redis url, the skip when it
// is unreachable, a key prefix per test and its cleanup, a transport isolated under one.
import { randomUUID } from "node:crypto";
import { serviceSkipReason } from "../../tests/support/service-probe.ts";
import { Redis } from "ioredis";
import { RedisTransport } from "./redis-transport.ts";
import type { RedisTransportOptions } from "./redis-options.ts";

/** The Redis the tests use: CELERITY_TEST_REDIS_URL, else database 11 on loopback (each test keeps to a prefix of its own). */
export const TEST_REDIS_URL = process.env.CELERITY_TEST_REDIS_URL ?? "redis://127.0.0.1:6379/11";

/**
 * Whether the tests' Redis answers. When it does not, the tests that need
 * it skip with this reason, unless CELERITY_REQUIRE_SERVICES=1 (CI), where
 * they run and fail.
 */
export const redisSkipReason = (): Promise<string | false> =>
  serviceSkipReason("Redis", TEST_REDIS_URL, 6379, "CELERITY_TEST_REDIS_URL");

/** A key prefix no other test shares. */
export const testPrefix = (label = "test"): string => `celerity-${label}-${randomUUID().slice(0, 8)}:`;

/** Delete every key under `prefix`. */
export const dropPrefix = async (prefix: string, url = TEST_REDIS_URL): Promise<void> => {
  const redis = new Redis(url, { lazyConnect: true });
  try {
    await redis.connect();
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${escapeGlob(prefix)}*`, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
};

const escapeGlob = (text: string): string => text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);

/** A transport on its own prefix, whose close also deletes everything it left in Redis. */
export const isolatedTransport = async (options: RedisTransportOptions = {}): Promise<RedisTransport> => {
  const prefix = options.prefix ?? testPrefix();
  const transport = await RedisTransport.connect(TEST_REDIS_URL, { pollMs: 200, ...options, prefix });
  const close = transport.close.bind(transport);
  transport.close = async () => {
    await close();
    await dropPrefix(prefix);
  };
  return transport;
};
