// The keys Celery and kombu keep in Redis, read and written as they do: queues, the
// `unacked` bookkeeping, bindings, results with their channel, chord counters.
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { newRedisClient } from "../../broker/redis/redis-client.ts";
import { TimeoutError } from "../errors.ts";
import { KOMBU_SEP, encodeKombuEnvelope, priorityList } from "./kombu-redis-envelope.ts";
import type { CeleryTaskMessage } from "./celery-message.ts";
import { META_PREFIX, READY, TASKSET_PREFIX, type CeleryResultMeta } from "./celery-result-meta.ts";

/**
 * The keys Celery and kombu keep in Redis, read and written as they do:
 * queues as lists (with priority sub-lists), the `unacked` hash and
 * `unacked_index` sorted set of messages being worked on, the bindings set,
 * results under `celery-task-meta-<id>` with a publish on the same channel,
 * and the chord counters `celery-taskset-meta-<gid>.j/.s/.t`.
 */
export class CeleryRedis {
  readonly redis: Redis;
  private subscriber: Redis | undefined;
  private readonly blocking: Redis[] = [];
  private readonly waiters = new Map<string, Set<(meta: CeleryResultMeta) => void>>();
  private closed = false;

  constructor(
    readonly url: string,
    /** Seconds a result (and a chord's counters) is kept: Celery's `result_expires`. */
    readonly resultExpires: number,
  ) {
    this.redis = newRedisClient(url, { lazyConnect: false, maxRetriesPerRequest: 3 });
  }

  /** Push a task message on its queue's list (or priority sub-list), as kombu's producer does. */
  async publish(message: CeleryTaskMessage): Promise<void> {
    await this.redis.lpush(priorityList(message.queue, message.priority), encodeKombuEnvelope(message));
  }

  /** Record a chord's header size: only the member that sees it, and every member finished, sends the body. */
  async setChordSize(group: string, size: number): Promise<void> {
    await this.redis.setex(`${TASKSET_PREFIX}${group}.s`, this.resultExpires, String(size));
  }

  /** Declare `queue` as Celery does, so producers publishing through the exchange named after it find it. */
  async bind(queue: string): Promise<void> {
    await this.redis.sadd(`_kombu.binding.${queue}`, `${queue}${KOMBU_SEP}${KOMBU_SEP}${queue}`);
  }

  /** Store a task's result record and wake whoever waits on it (Celery's SETEX + PUBLISH in one transaction). */
  async store(meta: CeleryResultMeta): Promise<void> {
    const key = `${META_PREFIX}${meta.task_id}`;
    const json = JSON.stringify(meta);
    await this.redis.multi().setex(key, this.resultExpires, json).publish(key, json).exec();
  }

  /** The stored record of a task, or undefined while it is PENDING (Celery never stores PENDING). */
  async read(id: string): Promise<CeleryResultMeta | undefined> {
    const json = await this.redis.get(`${META_PREFIX}${id}`);
    return json === null ? undefined : (JSON.parse(json) as CeleryResultMeta);
  }

  /** Forget a task's result. */
  async forget(id: string): Promise<void> {
    await this.redis.del(`${META_PREFIX}${id}`);
  }

  /**
   * Wait for a ready record: subscribe first, then read, so a result stored in
   * between is not missed. `signal` ends the wait (rejecting with its reason).
   */
  async waitReady(id: string, timeoutMs?: number, signal?: AbortSignal): Promise<CeleryResultMeta> {
    const channel = `${META_PREFIX}${id}`;
    let wake!: (meta: CeleryResultMeta) => void;
    const woken = new Promise<CeleryResultMeta>((resolve) => (wake = resolve));
    const onMeta = (meta: CeleryResultMeta) => {
      if (READY.has(meta.status)) wake(meta);
    };
    let set = this.waiters.get(channel);
    if (set === undefined) {
      set = new Set();
      this.waiters.set(channel, set);
      await this.subscriberConnection().subscribe(channel);
    }
    set.add(onMeta);
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    try {
      const stored = await this.read(id);
      if (stored !== undefined && READY.has(stored.status)) return stored;
      const endings: Promise<never>[] = [];
      if (timeoutMs !== undefined)
        endings.push(
          new Promise<never>(
            (_, reject) => (timer = setTimeout(() => reject(new TimeoutError({ id, timeoutMs })), timeoutMs)),
          ),
        );
      if (signal !== undefined) {
        endings.push(
          new Promise<never>((_, reject) => {
            onAbort = () => reject(signal.reason);
            if (signal.aborted) onAbort();
            else signal.addEventListener("abort", onAbort, { once: true });
          }),
        );
      }
      return await (endings.length === 0 ? woken : Promise.race([woken, ...endings]));
    } finally {
      clearTimeout(timer);
      if (onAbort !== undefined) signal?.removeEventListener("abort", onAbort);
      set.delete(onMeta);
      if (set.size === 0 && this.waiters.get(channel) === set) {
        this.waiters.delete(channel);
        if (!this.closed) await this.subscriber?.unsubscribe(channel).catch(() => undefined);
      }
    }
  }

  private subscriberConnection(): Redis {
    if (this.subscriber === undefined) {
      const subscriber = newRedisClient(this.url, { lazyConnect: false });
      subscriber.on("message", (channel: string, json: string) => {
        const set = this.waiters.get(channel);
        if (set === undefined) return;
        const meta = JSON.parse(json) as CeleryResultMeta;
        for (const waiter of set) waiter(meta);
      });
      this.subscriber = subscriber;
    }
    return this.subscriber;
  }

  /** A connection of its own for a consumer's blocking pops (closed with this). */
  blockingConnection(): Redis {
    const connection = newRedisClient(this.url, { lazyConnect: false });
    this.blocking.push(connection);
    return connection;
  }

  /** Note a popped message as being worked on, as kombu does: a message whose worker dies stays recoverable. */
  async markUnacked(tag: string, raw: string, exchange: string, routingKey: string, now: number): Promise<void> {
    await this.redis
      .multi()
      .zadd("unacked_index", now / 1000, tag)
      .hset("unacked", tag, `[${raw}, ${JSON.stringify(exchange)}, ${JSON.stringify(routingKey)}]`)
      .exec();
  }

  /** Acknowledge: the message is done with. */
  async ack(tag: string): Promise<void> {
    await this.redis.multi().zrem("unacked_index", tag).hdel("unacked", tag).exec();
  }

  /**
   * Put back on their queues the messages taken more than `visibilityTimeout`
   * seconds ago and never acknowledged (their worker died), as kombu does:
   * under its `unacked_mutex` lock, at most `batch` at a time, each marked
   * `redelivered` and pushed at the end that is popped next. Returns how many.
   */
  async restoreUnacked(visibilityTimeout: number, now: number, batch = 10): Promise<number> {
    const token = randomUUID();
    if ((await this.redis.set("unacked_mutex", token, "EX", 300, "NX")) === null) return 0;
    let restored = 0;
    try {
      const tags = await this.redis.zrevrangebyscore(
        "unacked_index",
        `(${now / 1000 - visibilityTimeout}`,
        0,
        "LIMIT",
        0,
        batch,
      );
      for (const tag of tags) {
        const stored = await this.redis.hget("unacked", tag);
        if (stored === null) {
          await this.redis.zrem("unacked_index", tag);
          continue;
        }
        const [envelope, , routingKey] = JSON.parse(stored) as [Record<string, any>, string, string];
        envelope.headers = { ...envelope.headers, redelivered: true };
        envelope.properties = {
          ...envelope.properties,
          delivery_info: { ...envelope.properties?.delivery_info, redelivered: true },
        };
        const list = priorityList(
          routingKey,
          typeof envelope.properties.priority === "number" ? envelope.properties.priority : 0,
        );
        // Moved only if nobody acknowledged or restored it since it was read.
        restored += (await this.redis.eval(
          RESTORE,
          3,
          "unacked",
          "unacked_index",
          list,
          tag,
          stored,
          JSON.stringify(envelope),
        )) as number;
      }
    } finally {
      await this.redis.eval(UNLOCK, 1, "unacked_mutex", token);
    }
    return restored;
  }

  /** Keep a message celerity cannot run, with the reason, on `<queue>.dead-letter`. */
  async deadLetter(queue: string, raw: string, reason: string, now: number): Promise<void> {
    await this.redis.lpush(
      `${queue}.dead-letter`,
      JSON.stringify({ reason, at: new Date(now).toISOString(), message: raw }),
    );
  }

  /**
   * Record one chord member's outcome, as Celery's Redis backend does; returns
   * whether this member completes the chord (the header size is known and
   * every member, plus any added later, has arrived).
   */
  async chordPart(group: string, index: number | null, entry: string): Promise<boolean> {
    const key = `${TASKSET_PREFIX}${group}`;
    const replies = await this.redis
      .multi()
      .zadd(`${key}.j`, index === null ? "+inf" : String(index), entry)
      .zcount(`${key}.j`, "-inf", "+inf")
      .get(`${key}.t`)
      .get(`${key}.s`)
      .expire(`${key}.j`, this.resultExpires)
      .expire(`${key}.t`, this.resultExpires)
      .expire(`${key}.s`, this.resultExpires)
      .exec();
    if (replies === null) return false;
    const count = replies[1]![1] as number;
    const added = Number(replies[2]![1] ?? 0);
    const size = replies[3]![1] as string | null;
    return size !== null && count === Number(size) + added;
  }

  /** A finished chord's member entries in header order; the counters are deleted. */
  async chordEntries(group: string): Promise<string[]> {
    const key = `${TASKSET_PREFIX}${group}`;
    const entries = await this.redis.zrange(`${key}.j`, "0", "-1");
    await this.redis.del(`${key}.j`, `${key}.t`, `${key}.s`);
    return entries;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const connection of this.blocking) connection.disconnect();
    this.subscriber?.disconnect();
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

const RESTORE = `
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('RPUSH', KEYS[3], ARGV[3])
return 1`;

const UNLOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0`;
