// The Transport on Redis: queues, exchanges, delays, priorities, leases and dead letters
// kept in Redis and changed only by Lua scripts (redis-broker-scripts.ts).
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import type { Redis } from "ioredis";
import { ChannelListeners } from "./channel-listeners.ts";
import { newRedisClient } from "./redis-client.ts";
import type { DeadLetter, Envelope } from "../envelope.ts";
import {
  BrokerClosedError,
  DeclarationConflictError,
  ExchangeNotFoundError,
  InvalidArgumentError,
  QueueNotFoundError,
  UnroutableError,
} from "../errors.ts";
import { checkEnvelope, checkMaxDeliveries, checkQueueName, checkTtl } from "../broker-arguments.ts";
import { DEFAULT_REVOCATION_TTL_MS, Revocations } from "../revocations.ts";
import {
  DEFAULT_LEASE_MS,
  type ConsumeOptions,
  type Consumer,
  type DeliveryHandler,
  type ExchangeType,
  type PublishOptions,
  type QueueOptions,
  type QueueStats,
  type RevocationOptions,
  type Transport,
} from "../transport.ts";
import type { QueueAdmin, QueueInfo } from "../queue-admin.ts";
import {
  attachScript,
  bindQueueScript,
  deadLettersScript,
  declareExchangeScript,
  declareQueueScript,
  revokeScript,
  statsScript,
  sweepScript,
} from "./redis-broker-scripts.ts";
import { listQueuesScript, purgeScript, setPausedScript, takeDeadLettersScript } from "./redis-queue-admin-scripts.ts";
import { RedisConsumer, type ConsumerHost } from "./redis-consumer.ts";
import { PublishBatch, type PublishOutcome } from "./redis-publish-batch.ts";
import { decodeEnvelope } from "./redis-envelope.ts";
import { connectionLoss } from "./redis-errors.ts";
import { MAX_RETRIES_PER_REQUEST, parseRedisUrl, type RedisTransportOptions } from "./redis-options.ts";
import { text } from "./redis-script.ts";

/** maxDeliveries: Infinity is kept as this (no message is delivered 2^31 times). */
const UNLIMITED = 2 ** 31;
/** Auto-delete queues whose consumers have all gone are swept every this many poll intervals. */
const SWEEP_POLLS = 5;
/** How long a new transport keeps trying to make its first connection before its calls fail. */
const CONNECT_TIMEOUT_MS = 30_000;
const EXCHANGE_TYPES: ReadonlySet<string> = new Set(["direct", "topic", "fanout"]);

/**
 * The Transport on Redis: queues, exchanges, delays, priorities, leases and
 * dead letters kept in Redis and changed only by Lua scripts (one atomic
 * step each), so any number of producers and workers on any number of
 * machines share them. See broker/redis/README.md for the design and
 * docs/scaling.md for what it guarantees.
 *
 * @example
 * const transport = await RedisTransport.connect("redis://127.0.0.1:6379/0");
 * const app = createApp({ broker: transport });
 */
export class RedisTransport implements Transport, QueueAdmin {
  /** The connection for commands and scripts (shared with the Redis rate limits of an app on this transport). */
  readonly redis: Redis;
  readonly prefix: string;
  readonly url: string;
  /** Settles once connected and the revocations in force are loaded. */
  readonly ready: Promise<void>;
  private readonly subscriber: Redis;
  private readonly log: (message: string) => void;
  private readonly pollMs: number;
  private readonly leaseMs: number;
  private readonly byQueue = new Map<string, Set<RedisConsumer>>();
  private readonly revoked = new Revocations();
  private readonly revokeListeners = new Set<
    (id: string, options: { readonly terminate: boolean; readonly ttlMs?: number }) => void
  >();
  /** Names this transport in revocation announcements, so it does not hear its own twice. */
  private readonly origin = randomUUID();
  private readonly host: ConsumerHost;
  private readonly channels: ChannelListeners;
  /** This turn's publishes, sent together at its end. */
  private readonly publishes: PublishBatch;
  private closed = false;
  /** Deletes the auto-delete queues whose consumers are gone, also those of processes that died. */
  private readonly sweeper: NodeJS.Timeout;

  private constructor(url: string, options: RedisTransportOptions) {
    const target = parseRedisUrl(url, options.prefix);
    this.url = url;
    this.prefix = target.prefix;
    this.log = options.log ?? ((message) => console.error(message));
    this.pollMs = options.pollMs ?? 1_000;
    this.leaseMs = options.leaseMs ?? target.leaseMs ?? DEFAULT_LEASE_MS;
    this.redis = newRedisClient(target.url, {
      enableAutoPipelining: true,
      maxRetriesPerRequest: MAX_RETRIES_PER_REQUEST,
    });
    this.publishes = new PublishBatch(this.redis, this.prefix, (error) => connectionLoss(url, "publish", error));
    this.subscriber = newRedisClient(target.url, { maxRetriesPerRequest: MAX_RETRIES_PER_REQUEST });
    this.redis.on("error", () => {});
    this.subscriber.on("error", () => {});
    this.channels = new ChannelListeners((channel) => this.run("listen", () => this.subscriber.subscribe(channel)));
    this.subscriber.on("message", (channel: string, message: string) => this.heard(channel, message));
    const revokeChannel = `${this.prefix}revoke`;
    let connectedBefore = false;
    this.subscriber.on("ready", () => {
      if (!connectedBefore) return;
      // Back after a lost connection: revocations made meanwhile and notifications missed are caught up.
      this.loadRevocations().catch((error: unknown) =>
        this.log(`redis transport: reloading revocations failed: ${describe(error)}`),
      );
      for (const consumers of this.byQueue.values()) for (const consumer of consumers) consumer.pump();
    });
    this.ready = this.start(revokeChannel).then(() => {
      connectedBefore = true;
    });
    this.ready.catch(() => {});
    // Every transport sweeps, so each does it rarely: abandoned queues go within a lease and a few poll intervals.
    this.sweeper = setInterval(() => this.sweep(), SWEEP_POLLS * Math.max(this.pollMs, 100));
    this.sweeper.unref();
    const self = this;
    this.host = {
      redis: this.redis,
      prefix: this.prefix,
      pollMs: this.pollMs,
      log: this.log,
      flushPublishes: () => this.publishes.flush(),
      forget(consumer) {
        self.detach(consumer);
      },
    };
  }

  /** Connect and return the transport once it is ready; it reconnects by itself afterwards. */
  static async connect(url: string, options: RedisTransportOptions = {}): Promise<RedisTransport> {
    const transport = RedisTransport.create(url, options);
    try {
      await transport.ready;
    } catch (error) {
      await transport.close();
      throw connectionLoss(url, "connect", error);
    }
    return transport;
  }

  /** Start connecting and return at once; calls wait for the connection. */
  static create(url: string, options: RedisTransportOptions = {}): RedisTransport {
    return new RedisTransport(url, options);
  }

  async declareQueue(name: string, options: QueueOptions = {}): Promise<void> {
    this.assertOpen("declare a queue");
    checkQueueName(name, "queue name");
    const { deadLetterQueue, maxDeliveries, autoDelete } = options;
    if (deadLetterQueue !== undefined) {
      checkQueueName(deadLetterQueue, "deadLetterQueue");
      if (deadLetterQueue === name)
        throw new InvalidArgumentError({
          argument: "deadLetterQueue",
          reason: `queue "${name}" cannot be its own dead-letter queue`,
        });
    }
    const max =
      maxDeliveries === undefined ? "" : Math.min(UNLIMITED, checkMaxDeliveries(maxDeliveries, "maxDeliveries"));
    const reply = (await this.run("declare a queue", () =>
      declareQueueScript.run(this.redis, [
        this.prefix,
        name,
        deadLetterQueue ?? "",
        max,
        autoDelete === undefined ? "" : autoDelete ? "1" : "0",
      ]),
    )) as unknown[];
    if (text(reply[0]) === "conflict")
      throw new DeclarationConflictError({ kind: "queue", name, reason: text(reply[1]) });
  }

  async declareExchange(name: string, type: ExchangeType): Promise<void> {
    this.assertOpen("declare an exchange");
    if (typeof name !== "string" || name === "") {
      throw new InvalidArgumentError({
        argument: "exchange name",
        reason: 'must be a non-empty string (the default exchange "" always exists)',
      });
    }
    if (!EXCHANGE_TYPES.has(type))
      throw new InvalidArgumentError({
        argument: "exchange type",
        reason: `must be "direct", "topic" or "fanout", got ${JSON.stringify(type)}`,
      });
    const reply = (await this.run("declare an exchange", () =>
      declareExchangeScript.run(this.redis, [this.prefix, name, type]),
    )) as unknown[];
    if (text(reply[0]) === "conflict")
      throw new DeclarationConflictError({
        kind: "exchange",
        name,
        reason: `it is a ${text(reply[1])} exchange, not ${type}`,
      });
  }

  async bindQueue(queue: string, exchange: string, pattern: string): Promise<void> {
    this.assertOpen("bind a queue");
    checkQueueName(queue, "queue name");
    if (exchange === "")
      throw new InvalidArgumentError({
        argument: "exchange",
        reason: 'queues cannot be bound to the default exchange "" (it routes by queue name already)',
      });
    if (typeof pattern !== "string")
      throw new InvalidArgumentError({
        argument: "binding pattern",
        reason: `must be a string, got ${typeof pattern}`,
      });
    const reply = (await this.run("bind a queue", () =>
      bindQueueScript.run(this.redis, [this.prefix, queue, exchange, pattern]),
    )) as unknown[];
    const outcome = text(reply[0]);
    if (outcome === "noqueue") throw new QueueNotFoundError({ queue });
    if (outcome === "noexchange") throw new ExchangeNotFoundError({ exchange });
  }

  async publish(envelope: Envelope, options?: PublishOptions): Promise<void> {
    this.assertOpen("publish");
    const invalid = checkEnvelope(envelope);
    if (invalid !== undefined) throw invalid;
    this.flushAcks();
    const outcome = await this.publishes.add(envelope, options?.mandatory === true);
    if (outcome !== "ok") throw refusal(outcome, envelope);
  }

  /** Every envelope in the same script call (or a few, for a large batch); rejects with the first refusal, the others stored. */
  async publishMany(envelopes: readonly Envelope[], options?: PublishOptions): Promise<void> {
    this.assertOpen("publish");
    for (const envelope of envelopes) {
      const invalid = checkEnvelope(envelope);
      if (invalid !== undefined) throw invalid;
    }
    this.flushAcks();
    const mandatory = options?.mandatory === true;
    const outcomes = await Promise.all(envelopes.map((envelope) => this.publishes.add(envelope, mandatory)));
    for (let i = 0; i < outcomes.length; i++) if (outcomes[i] !== "ok") throw refusal(outcomes[i], envelopes[i]);
  }

  async consume(queue: string, handler: DeliveryHandler, options: ConsumeOptions): Promise<Consumer> {
    this.assertOpen("consume");
    checkQueueName(queue, "queue name");
    if (typeof handler !== "function")
      throw new InvalidArgumentError({ argument: "handler", reason: `must be a function, got ${typeof handler}` });
    const { prefetch } = options;
    if (!Number.isInteger(prefetch) || prefetch < 1)
      throw new InvalidArgumentError({
        argument: "prefetch",
        reason: `must be an integer of at least 1, got ${String(prefetch)}`,
      });
    const leaseMs = options.leaseMs === undefined ? this.leaseMs : checkTtl(options.leaseMs, "leaseMs");
    await this.run("consume", () => this.ready);
    const tag = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    await this.run("consume", () => attachScript.run(this.redis, [this.prefix, queue, tag, Date.now() + leaseMs]));
    const consumer = new RedisConsumer(tag, queue, handler, prefetch, leaseMs, this.host);
    let consumers = this.byQueue.get(queue);
    if (consumers === undefined) {
      this.byQueue.set(queue, (consumers = new Set()));
      await this.run("consume", () => this.subscriber.subscribe(this.channel(queue)));
    }
    consumers.add(consumer);
    // The first pull answers after this promise has resolved, so no delivery precedes it.
    consumer.pump();
    return consumer;
  }

  async revoke(ids: readonly string[], options: RevocationOptions = {}): Promise<void> {
    this.assertOpen("revoke");
    if (!Array.isArray(ids) || ids.some((id) => typeof id !== "string" || id === "")) {
      throw new InvalidArgumentError({ argument: "ids", reason: "must be an array of non-empty message id strings" });
    }
    const ttlMs = Math.ceil(options.ttlMs === undefined ? DEFAULT_REVOCATION_TTL_MS : checkTtl(options.ttlMs, "ttlMs"));
    const terminate = options.terminate === true;
    if (ids.length === 0) return;
    await this.run("revoke", () =>
      revokeScript.run(this.redis, [this.prefix, ttlMs, Date.now(), this.origin, terminate ? "1" : "0", ...ids]),
    );
    for (const id of ids) this.revokedHere(id, terminate, ttlMs);
  }

  isRevoked(id: string): boolean {
    return this.revoked.has(id);
  }

  onRevoke(
    listener: (id: string, options: { readonly terminate: boolean; readonly ttlMs?: number }) => void,
  ): () => void {
    const subscription = (id: string, options: { readonly terminate: boolean; readonly ttlMs?: number }) =>
      listener(id, options);
    this.revokeListeners.add(subscription);
    return () => {
      this.revokeListeners.delete(subscription);
    };
  }

  async deadLetters(queue: string): Promise<readonly DeadLetter[]> {
    this.assertOpen("read dead letters");
    checkQueueName(queue, "queue name");
    const reply = await this.run("read dead letters", () => deadLettersScript.run(this.redis, [this.prefix, queue]));
    if (reply === -1) throw new QueueNotFoundError({ queue });
    const fields = reply as unknown[];
    const letters: DeadLetter[] = [];
    for (let i = 0; i + 4 < fields.length; i += 5) {
      const from = text(fields[i + 1]);
      letters.push({
        envelope: storedEnvelope(fields[i] as Buffer, text(fields[i + 4]), from),
        queue: from,
        reason: text(fields[i + 2]),
        at: Number(text(fields[i + 3])),
      });
    }
    return letters.sort((a, b) => a.at - b.at);
  }

  async stats(queue: string): Promise<QueueStats> {
    this.assertOpen("read queue stats");
    checkQueueName(queue, "queue name");
    const reply = await this.run("read queue stats", () =>
      statsScript.run(this.redis, [this.prefix, queue, Date.now()]),
    );
    if (reply === -1) throw new QueueNotFoundError({ queue });
    const [ready, delayed, unacked, consumers] = reply as number[];
    return { ready, delayed, unacked, consumers };
  }

  async listQueues(): Promise<readonly QueueInfo[]> {
    this.assertOpen("list queues");
    const fields = (await this.run("list queues", () =>
      listQueuesScript.run(this.redis, [this.prefix, Date.now()]),
    )) as unknown[];
    const queues: QueueInfo[] = [];
    for (let i = 0; i + 8 < fields.length; i += 9) {
      queues.push({
        name: text(fields[i]),
        ready: Number(fields[i + 1]),
        delayed: Number(fields[i + 2]),
        unacked: Number(fields[i + 3]),
        consumers: Number(fields[i + 4]),
        paused: Number(fields[i + 5]) === 1,
        deadLetterQueue: text(fields[i + 6]),
        isDeadLetterQueue: Number(fields[i + 7]) === 1,
        autoDelete: Number(fields[i + 8]) === 1,
      });
    }
    return queues.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async purge(queue: string): Promise<number> {
    this.assertOpen("purge a queue");
    checkQueueName(queue, "queue name");
    const removed = await this.run("purge a queue", () => purgeScript.run(this.redis, [this.prefix, queue]));
    if (removed === -1) throw new QueueNotFoundError({ queue });
    return Number(removed);
  }

  async pause(queue: string): Promise<void> {
    await this.setPaused(queue, true);
  }

  async resume(queue: string): Promise<void> {
    await this.setPaused(queue, false);
  }

  private async setPaused(queue: string, paused: boolean): Promise<void> {
    const operation = paused ? "pause a queue" : "resume a queue";
    this.assertOpen(operation);
    checkQueueName(queue, "queue name");
    await this.run(operation, () => setPausedScript.run(this.redis, [this.prefix, queue, paused ? "1" : "0"]));
  }

  requeueDeadLetters(queue: string, ids?: readonly string[]): Promise<number> {
    return this.takeDeadLetters("requeue dead letters", "requeue", queue, ids);
  }

  discardDeadLetters(queue: string, ids?: readonly string[]): Promise<number> {
    return this.takeDeadLetters("discard dead letters", "discard", queue, ids);
  }

  private async takeDeadLetters(
    operation: string,
    fate: "requeue" | "discard",
    queue: string,
    ids: readonly string[] | undefined,
  ): Promise<number> {
    this.assertOpen(operation);
    checkQueueName(queue, "queue name");
    if (ids !== undefined && (!Array.isArray(ids) || ids.some((id) => typeof id !== "string")))
      throw new InvalidArgumentError({ argument: "ids", reason: "must be an array of message id strings" });
    if (ids !== undefined && ids.length === 0) return 0;
    const taken = await this.run(operation, () =>
      takeDeadLettersScript.run(this.redis, [
        this.prefix,
        queue,
        fate,
        ids === undefined ? "all" : "some",
        ...(ids ?? []),
      ]),
    );
    if (taken === -1) throw new QueueNotFoundError({ queue });
    return Number(taken);
  }

  private sweep(): void {
    if (this.closed || this.redis.status !== "ready") return;
    sweepScript
      .run(this.redis, [this.prefix, Date.now()])
      .catch((error: unknown) => this.log(`redis transport: deleting abandoned queues failed: ${describe(error)}`));
  }

  /** Cancel this transport's consumers (their deliveries go back to their queues) and disconnect. Messages stay in Redis. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeper);
    const consumers = [...this.byQueue.values()].flatMap((set) => [...set]);
    await Promise.all(
      consumers.map((consumer) =>
        consumer
          .cancel()
          .catch((error: unknown) =>
            this.log(`redis transport: cancelling ${consumer.tag} failed: ${describe(error)}`),
          ),
      ),
    );
    await Promise.all([quit(this.redis), quit(this.subscriber)]);
  }

  /**
   * Hear what is published on channel `name` (under this transport's prefix)
   * over the transport's subscriber connection, for services that share the
   * transport's Redis (an app's rate-limit changes). Returns the unsubscribe.
   */
  listen(name: string, listener: (message: string) => void): Promise<() => void> {
    return this.channels.listen(`${this.prefix}${name}`, listener);
  }

  private channel(queue: string): string {
    return `${this.prefix}n:${queue}`;
  }

  private detach(consumer: RedisConsumer): void {
    const consumers = this.byQueue.get(consumer.queue);
    if (consumers === undefined) return;
    consumers.delete(consumer);
    if (consumers.size > 0) return;
    this.byQueue.delete(consumer.queue);
    if (!this.closed) this.subscriber.unsubscribe(this.channel(consumer.queue)).catch(() => {});
  }

  private heard(channel: string, message: string): void {
    if (this.channels.deliver(channel, message)) return;
    if (channel === `${this.prefix}revoke`) {
      const [origin, terminate, ttl, ...rest] = message.split("\t");
      if (origin === this.origin) return;
      this.revokedHere(rest.join("\t"), terminate === "1", Number(ttl));
      return;
    }
    const consumers = this.byQueue.get(channel.slice(this.prefix.length + 2));
    if (consumers !== undefined) for (const consumer of consumers) consumer.pump();
  }

  private revokedHere(id: string, terminate: boolean, ttlMs: number): void {
    this.revoked.revoke(id, ttlMs);
    for (const listener of this.revokeListeners) {
      try {
        listener(id, { terminate, ttlMs });
      } catch (error) {
        this.log(`redis transport: a revocation listener threw: ${describe(error)}`);
      }
    }
  }

  /** Subscribe to revocations and read those in force, trying again while the connection breaks, for at most CONNECT_TIMEOUT_MS. */
  private async start(revokeChannel: string): Promise<void> {
    const deadline = Date.now() + CONNECT_TIMEOUT_MS;
    for (;;) {
      try {
        await this.subscriber.subscribe(revokeChannel);
        await this.loadRevocations();
        return;
      } catch (error) {
        if ((error instanceof Error && error.name === "ReplyError") || Date.now() > deadline || this.closed)
          throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  /** Mirror the revocations in force (a transport started later sees the earlier ones). */
  private async loadRevocations(): Promise<void> {
    const now = Date.now();
    const entries = await this.redis.zrangebyscore(`${this.prefix}revocations`, now, "+inf", "WITHSCORES");
    for (let i = 0; i + 1 < entries.length; i += 2)
      this.revoked.revoke(entries[i], Math.max(1, Number(entries[i + 1]) - now));
  }

  /** Acks gathered this turn go out before what is sent next. */
  private flushAcks(): void {
    for (const consumers of this.byQueue.values()) for (const consumer of consumers) consumer.flushAcks();
  }

  private async run<T>(operation: string, command: () => Promise<T>): Promise<T> {
    // Acks and publishes gathered this turn go first, so that a command issued after them sees them applied.
    this.flushAcks();
    this.publishes.flush();
    try {
      return await command();
    } catch (error) {
      throw connectionLoss(this.url, operation, error);
    }
  }

  private assertOpen(operation: string): void {
    if (this.closed) throw new BrokerClosedError({ operation });
  }
}

/** A dead letter's envelope; bytes that are not one (written by something else) are kept whole as the body, so nothing is lost. */
const storedEnvelope = (bytes: Buffer, id: string, queue: string): Envelope => {
  try {
    return decodeEnvelope(bytes);
  } catch {
    return {
      id,
      exchange: "",
      routingKey: queue,
      priority: 0,
      headers: { malformed: true },
      body: new Uint8Array(bytes),
    };
  }
};

/** The contract's error for a publish the script refused. */
const refusal = (outcome: PublishOutcome, envelope: Envelope): Error =>
  outcome === "noexchange"
    ? new ExchangeNotFoundError({ exchange: envelope.exchange })
    : new UnroutableError({ exchange: envelope.exchange, routingKey: envelope.routingKey });

const quit = async (redis: Redis): Promise<void> => {
  // Not connected: nothing to finish, and QUIT would wait for a reconnection.
  if (redis.status !== "ready") return void redis.disconnect();
  try {
    await redis.quit();
  } catch {
    redis.disconnect();
  }
};

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error));
