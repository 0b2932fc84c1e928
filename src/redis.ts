/**
 * celerity/redis: Redis as the broker and as the result store, from code.
 * An app needs none of this to use Redis: `createApp({ broker: "redis://…" })`
 * picks both; this entry is for settings of your own (a prefix, a lease) and
 * for the errors to tell apart.
 *
 * @example
 * import { createApp } from "celerity";
 * import { RedisTransport, RedisResultStore } from "celerity/redis";
 *
 * const url = "redis://127.0.0.1:6379/0";
 * const broker = RedisTransport.create(url, { prefix: "shop:", leaseMs: 60_000 });
 * const app = createApp({ broker, results: new RedisResultStore(url, { prefix: "shop:" }) });
 *
 * @module
 */
export { RedisTransport } from "../broker/redis/redis-transport.ts";
export { DEFAULT_LEASE_MS } from "../broker/transport.ts";
export type { RedisTransportOptions } from "../broker/redis/redis-options.ts";
export { RedisConnectionLostError } from "../broker/redis/redis-errors.ts";
export { RedisResultStore, type RedisResultStoreOptions } from "../runtime/results/redis-result-store.ts";
export { RedisScheduleStore } from "../runtime/schedule/stores/redis-schedule-store.ts";
