// The result store on Redis, shared by every process on the same Redis and prefix: atomic
// writes as Lua scripts, waiters woken through pub/sub, everything expiring.
import { decode, encode } from "@msgpack/msgpack";
import type { Redis } from "ioredis";
import { ChannelListeners } from "../../broker/redis/channel-listeners.ts";
import { newRedisClient } from "../../broker/redis/redis-client.ts";
import { connectionLoss } from "../../broker/redis/redis-errors.ts";
import { MAX_RETRIES_PER_REQUEST, parseRedisUrl } from "../../broker/redis/redis-options.ts";
import { RedisScript, text } from "../../broker/redis/redis-script.ts";
import type { MessageGraph } from "../../dsl/graph.ts";
import type { RemoteErrorInfo, TaskState } from "../../dsl/result.ts";
import { READY_STATES } from "../../dsl/result.ts";
import {
  DEFAULT_RESULT_TTL_MS,
  type FinalOutcome,
  type ResultRecord,
  type ResultStore,
  type StateDetails,
} from "./result-store.ts";
import { ResultWaiters } from "./result-waiters.ts";

/**
 * Settings of a RedisResultStore; every field is optional.
 *
 * @example
 * const results = new RedisResultStore("redis://127.0.0.1:6379/0", { prefix: "shop:", ttlMs: 60 * 60 * 1_000 });
 */
export interface RedisResultStoreOptions {
  /** Prefix of every key and channel; default `{celerity}:` (the url's `?prefix=` sets it too). */
  readonly prefix?: string;
  /** Records, graphs, joins and claims expire this long after their last write. Default one day. */
  readonly ttlMs?: number;
  /**
   * Write through this connection (the Redis transport's, when results live in
   * the broker's Redis) instead of one of the store's own. Commands on one
   * connection are applied in order, so `setState` is then sent without
   * waiting for its answer: the PENDING written before a publish, and the
   * STARTED before a completion, still land first. The store does not close it.
   */
  readonly connection?: Redis;
  /** Where a failed unanswered write is reported. Default console.error. */
  readonly log?: (message: string) => void;
}

/**
 * A record is a hash `P t:<id>`: s (state), t (task), r (retries), u (updated at),
 * w and n (workflow and node), v (value bytes), e (msgpack error), i (the task's own progress report). The first
 * final state wins inside the script, and the completion is published on
 * `P done:<id>` with the whole record, so waiters in any process wake on the write.
 */
const FINAL = `local final = { SUCCESS = true, FAILURE = true, REVOKED = true }\n`;

/** ARGV: P, id, task, state, now, ttl, retries or "", workflow or "", node or "", info or "" → 1 if written, 0 if a final state is recorded. */
const setStateScript = new RedisScript(`${FINAL}
local key = ARGV[1] .. 't:' .. ARGV[2]
local current = redis.call('HGET', key, 's')
if current and final[current] then return 0 end
redis.call('HSET', key, 's', ARGV[4], 't', ARGV[3], 'u', ARGV[5])
if not current then redis.call('HSETNX', key, 'r', '0') end
if ARGV[7] ~= '' then redis.call('HSET', key, 'r', ARGV[7]) end
if ARGV[8] ~= '' then redis.call('HSET', key, 'w', ARGV[8], 'n', ARGV[9]) end
if ARGV[10] and ARGV[10] ~= '' then redis.call('HSET', key, 'i', ARGV[10]) end
redis.call('PEXPIRE', key, ARGV[6])
return 1
`);

/** ARGV: P, id, task, state, now, ttl, value or "", error or "", unless started "1"/"0" → 1 if first, else 0. */
const completeScript = new RedisScript(`${FINAL}
local key = ARGV[1] .. 't:' .. ARGV[2]
local current = redis.call('HGET', key, 's')
if current and final[current] then return 0 end
if current == 'STARTED' and ARGV[9] == '1' then return 0 end
redis.call('HSET', key, 's', ARGV[4], 't', ARGV[3], 'u', ARGV[5])
if not current then redis.call('HSET', key, 'r', '0') end
if ARGV[4] == 'SUCCESS' then redis.call('HSET', key, 'v', ARGV[7]) else redis.call('HSET', key, 'e', ARGV[8]) end
redis.call('PEXPIRE', key, ARGV[6])
redis.call('PUBLISH', ARGV[1] .. 'done:' .. ARGV[2], '')
return 1
`);

/** ARGV: P, key, member, ttl → distinct members arrived. */
const arriveScript = new RedisScript(`
local key = ARGV[1] .. 'j:' .. ARGV[2]
redis.call('SADD', key, ARGV[3])
redis.call('PEXPIRE', key, ARGV[4])
return redis.call('SCARD', key)
`);

/** ARGV: P, key, id, ttl → the id holding the key after the call. */
const reserveScript = new RedisScript(`
local key = ARGV[1] .. 'k:' .. ARGV[2]
local held = redis.call('GET', key)
if held then return held end
redis.call('SET', key, ARGV[3], 'PX', ARGV[4])
return ARGV[3]
`);

/**
 * The result store on Redis: every process pointed at the same Redis (and
 * prefix) shares task states, results, workflow graphs, chord joins and
 * claims. Writes that must be atomic (first final state wins, a join counts
 * each member once) are Lua scripts; a waiter subscribes to its task's channel,
 * so `get()` wakes on the write that finishes the task, never by polling.
 * Everything expires `ttlMs` after its last write.
 *
 * @example
 * const app = createApp({ broker: "redis://127.0.0.1:6379/0", results: "redis://127.0.0.1:6379/0" });
 */
export class RedisResultStore implements ResultStore {
  /** The command connection, shared with what else keeps state beside the results (global rate-limit buckets). */
  readonly redis: Redis;
  private readonly subscriber: Redis;
  /** Prefix of every key and channel. */
  readonly prefix: string;
  private readonly channels: ChannelListeners;
  private readonly ttl: number;
  private readonly waiters = new ResultWaiters();
  private readonly url: string;
  private readonly shared: boolean;
  private readonly log: (message: string) => void;

  constructor(url: string, options: RedisResultStoreOptions = {}) {
    const target = parseRedisUrl(url, options.prefix);
    this.url = url;
    this.prefix = target.prefix;
    this.ttl = Math.ceil(options.ttlMs ?? DEFAULT_RESULT_TTL_MS);
    this.shared = options.connection !== undefined;
    this.log = options.log ?? ((message) => console.error(message));
    this.redis =
      options.connection ??
      newRedisClient(target.url, { enableAutoPipelining: true, maxRetriesPerRequest: MAX_RETRIES_PER_REQUEST });
    this.subscriber = newRedisClient(target.url, { maxRetriesPerRequest: MAX_RETRIES_PER_REQUEST });
    this.redis.on("error", () => {});
    this.subscriber.on("error", () => {});
    let connectedBefore = false;
    this.subscriber.on("ready", () => {
      // Back after a lost connection: a completion published meanwhile was missed, so read each waited task again.
      if (connectedBefore) for (const id of [...this.waiters.ids()]) this.recheck(id);
      connectedBefore = true;
    });
    this.channels = new ChannelListeners((channel) => this.run("listen", () => this.subscriber.subscribe(channel)));
    this.subscriber.on("message", (channel: string, message: string) => {
      if (!this.channels.deliver(channel, message)) this.recheck(channel.slice(this.prefix.length + 5));
    });
  }

  /**
   * Hear what is published on `<prefix><name>` (rate-limit changes, for apps
   * whose broker keeps no shared state). Resolves once subscribed; the
   * returned function stops listening.
   *
   * @example
   * const stop = await store.listen("rate-limit", (message) => console.log(message));
   */
  listen(name: string, listener: (message: string) => void): Promise<() => void> {
    return this.channels.listen(`${this.prefix}${name}`, listener);
  }

  setState(id: string, task: string, state: TaskState, details?: StateDetails): Promise<void> | void {
    const written = this.write(id, task, state, details).then(() => undefined);
    if (!this.shared) return written;
    written.catch((error: unknown) =>
      this.log(
        `redis results: recording ${state} for task ${id} failed: ${error instanceof Error ? error.message : String(error)}`,
      ),
    );
  }

  async start(id: string, task: string, details?: StateDetails): Promise<boolean> {
    return (await this.write(id, task, "STARTED", details)) === 1;
  }

  /** Record a non-final state unless a final one is recorded; resolves to 1 if written. */
  private write(id: string, task: string, state: TaskState, details: StateDetails | undefined): Promise<unknown> {
    return this.run("setState", () =>
      setStateScript.run(this.redis, [
        this.prefix,
        id,
        task,
        state,
        Date.now(),
        this.ttl,
        details?.retries ?? "",
        details?.workflow ?? "",
        details?.workflow === undefined ? "" : (details.node ?? 0),
        details?.info === undefined
          ? ""
          : Buffer.from(details.info.buffer, details.info.byteOffset, details.info.byteLength),
      ]),
    );
  }

  async complete(id: string, task: string, outcome: FinalOutcome): Promise<boolean> {
    const value =
      outcome.state === "SUCCESS"
        ? Buffer.from(outcome.value.buffer, outcome.value.byteOffset, outcome.value.byteLength)
        : "";
    const error = outcome.state === "SUCCESS" ? "" : Buffer.from(encode(outcome.error));
    const unlessStarted = outcome.state === "REVOKED" && outcome.unlessStarted === true ? "1" : "0";
    const first = await this.run("complete", () =>
      completeScript.run(this.redis, [
        this.prefix,
        id,
        task,
        outcome.state,
        Date.now(),
        this.ttl,
        value,
        error,
        unlessStarted,
      ]),
    );
    return first === 1;
  }

  get(id: string): Promise<ResultRecord | undefined> {
    return this.run("get", () => this.read(id));
  }

  async waitFinal(id: string, timeoutMs: number | undefined, onTimeout: () => Error): Promise<ResultRecord> {
    const { promise, first } = this.waiters.wait(id, timeoutMs, onTimeout);
    // On a timeout nobody may be left waiting for this task: then stop listening for it. (The caller holds `promise`,
    // so this handler also keeps a timeout during the subscription from counting as unhandled.)
    promise.catch(() => {
      if (!this.waiters.has(id)) this.subscriber.unsubscribe(this.channel(id)).catch(() => {});
    });
    // Subscribe first, then read: a completion landing between the two is caught by one or the other.
    if (first) await this.run("waitFinal", () => this.subscriber.subscribe(this.channel(id)));
    const current = await this.get(id);
    if (current !== undefined && READY_STATES.has(current.state)) this.finished(id, current);
    return promise;
  }

  async forget(id: string): Promise<void> {
    await this.run("forget", () => this.redis.del(`${this.prefix}t:${id}`));
  }

  async saveGraph(graph: MessageGraph): Promise<void> {
    await this.run("saveGraph", () =>
      this.redis.set(`${this.prefix}g:${graph.id}`, Buffer.from(encode(graph)), "PX", this.ttl),
    );
  }

  async graph(id: string): Promise<MessageGraph | undefined> {
    const bytes = await this.run("graph", () => this.redis.getBuffer(`${this.prefix}g:${id}`));
    return bytes === null ? undefined : (decode(bytes) as MessageGraph);
  }

  async arrive(key: string, member: number): Promise<number> {
    return Number(await this.run("arrive", () => arriveScript.run(this.redis, [this.prefix, key, member, this.ttl])));
  }

  async claim(key: string): Promise<boolean> {
    return (
      (await this.run("claim", () => this.redis.set(`${this.prefix}c:${key}`, "1", "PX", this.ttl, "NX"))) === "OK"
    );
  }

  async release(key: string): Promise<void> {
    await this.run("release", () => this.redis.del(`${this.prefix}c:${key}`));
  }

  async reserve(key: string, id: string, ttlMs: number): Promise<string> {
    return text(
      await this.run("reserve", () =>
        reserveScript.run(this.redis, [this.prefix, key, id, Math.max(1, Math.ceil(ttlMs))]),
      ),
    );
  }

  async close(): Promise<void> {
    this.waiters.clear();
    await Promise.all([this.shared ? undefined : quit(this.redis), quit(this.subscriber)]);
  }

  /** Wake the waiters of `id` if its task has finished. */
  private recheck(id: string): void {
    if (!this.waiters.has(id)) return;
    this.read(id).then(
      (record) => {
        if (record !== undefined && READY_STATES.has(record.state)) this.finished(id, record);
      },
      () => {},
    );
  }

  private finished(id: string, record: ResultRecord): void {
    if (!this.waiters.has(id)) return;
    this.waiters.wake(id, record);
    this.subscriber.unsubscribe(this.channel(id)).catch(() => {});
  }

  private channel(id: string): string {
    return `${this.prefix}done:${id}`;
  }

  private async read(id: string): Promise<ResultRecord | undefined> {
    const fields = await this.redis.hgetallBuffer(`${this.prefix}t:${id}`);
    if (fields.s === undefined) return undefined;
    const record: { -readonly [K in keyof ResultRecord]: ResultRecord[K] } = {
      id,
      task: text(fields.t),
      state: text(fields.s) as TaskState,
      retries: Number(text(fields.r ?? "0")),
      updatedAt: Number(text(fields.u)),
    };
    if (fields.w !== undefined) {
      record.workflow = text(fields.w);
      record.node = Number(text(fields.n));
    }
    if (fields.v !== undefined) record.value = new Uint8Array(fields.v);
    if (fields.e !== undefined) record.error = decode(fields.e) as RemoteErrorInfo;
    if (fields.i !== undefined) record.info = new Uint8Array(fields.i);
    return record;
  }

  private async run<T>(operation: string, command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch (error) {
      throw connectionLoss(this.url, `results.${operation}`, error);
    }
  }
}

const quit = async (redis: Redis): Promise<void> => {
  // Not connected: nothing to finish, and QUIT would wait for a reconnection.
  if (redis.status !== "ready") return void redis.disconnect();
  try {
    await redis.quit();
  } catch {
    redis.disconnect();
  }
};
