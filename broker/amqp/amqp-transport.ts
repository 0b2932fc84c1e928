/**
 * The Transport on RabbitMQ (AMQP 0-9-1, through amqplib). Queues are durable
 * classic queues with priorities 0-9; publishes wait for publisher confirms;
 * consumers ack manually with a prefetch; delays go through a ladder of TTL
 * queues in RabbitMQ (delay-ladder.ts), never a worker's memory; delivery
 * counts, requeues and dead letters are kept in the messages
 * (amqp-consumer.ts); revocations live on a RabbitMQ stream that every
 * transport reads (revocation-stream.ts). The connection recovers by itself
 * and reopens every consumer (amqp-link.ts).
 *
 * @example
 * const transport = await AmqpTransport.connect("amqp://guest:guest@127.0.0.1:5672");
 * const app = createApp({ broker: transport, results });
 *
 * @module
 */
import type { DeadLetter, Envelope } from "../envelope.ts";
import { BrokerClosedError, InvalidArgumentError, QueueNotFoundError } from "../errors.ts";
import type { QueueAdmin, QueueInfo } from "../queue-admin.ts";
import { DEFAULT_REVOCATION_TTL_MS, Revocations } from "../revocations.ts";
import type {
  ConsumeOptions,
  Consumer,
  DeliveryHandler,
  ExchangeType,
  PublishOptions,
  QueueOptions,
  QueueStats,
  RevocationOptions,
  Transport,
} from "../transport.ts";
import { AmqpConsumer, type ConsumerHost } from "./amqp-consumer.ts";
import { AmqpConnectionError, ReplyCode, mapAmqpError, replyCode } from "./amqp-errors.ts";
import { AmqpLink } from "./amqp-link.ts";
import { checkName } from "./amqp-names.ts";
import { AmqpQueueAdmin } from "./amqp-queue-admin.ts";
import { Header, deadLetterOf, originHeaders, publishOptions } from "./amqp-message.ts";
import { redactUrl, resolveAmqpOptions, type AmqpTransportOptions, type ResolvedAmqpOptions } from "./amqp-options.ts";
import { ConfirmedPublisher } from "./confirmed-publisher.ts";
import { DelayLadder, routeOf } from "./delay-ladder.ts";
import { RevocationStream } from "./streams/revocation-stream.ts";
import { QueueRegistry } from "./streams/queue-registry.ts";
import { deadLetterQueueArguments, workQueueArguments } from "./queue-arguments.ts";

const DEFAULT_MAX_DELIVERIES = 16;

const EXCHANGE_TYPES: readonly ExchangeType[] = ["direct", "topic", "fanout"];

/**
 * The transport contract on RabbitMQ: durable queues, publisher confirms,
 * manual acks with a prefetch, delays in a ladder of TTL queues, delivery
 * counts and dead letters, revocations on a stream, and a connection that
 * recovers by itself and reopens its consumers (see docs/scaling.md).
 *
 * @example
 * const broker = await AmqpTransport.connect("amqp://guest:guest@127.0.0.1:5672/%2F", { queueType: "quorum" });
 * const app = createApp({ broker, results });
 * await app.close(); // closes the transport too
 */
export class AmqpTransport implements Transport, QueueAdmin {
  private readonly options: ResolvedAmqpOptions;
  private readonly link: AmqpLink;
  private readonly publisher: ConfirmedPublisher;
  private readonly ladder: DelayLadder;
  private readonly revocations = new Revocations();
  private readonly stream: RevocationStream;
  private readonly registry: QueueRegistry;
  private readonly consumers = new Set<AmqpConsumer>();
  private readonly settings = new Map<string, QueueSettings>();
  /** Names known to exist on RabbitMQ, so a publish checks each at most once. */
  private readonly knownQueues = new Set<string>();
  private readonly knownExchanges = new Set<string>();
  private readonly routes = new Set<string>();
  private ladderDeclared: Promise<void> | undefined;
  private readonly heldCounts = new Map<string, number>();
  private consumerTags = 0;
  private closed = false;
  private readonly host: ConsumerHost;
  private readonly admin: AmqpQueueAdmin;

  /** Resolves once connected and caught up with the revocation stream. */
  readonly ready: Promise<void>;

  private constructor(url: string, options: AmqpTransportOptions) {
    this.options = resolveAmqpOptions(url, options);
    this.link = new AmqpLink(this.options);
    this.publisher = new ConfirmedPublisher(this.link);
    this.ladder = new DelayLadder(this.options.prefix, this.options.queueType);
    this.stream = new RevocationStream(
      this.link,
      this.publisher,
      `${this.options.prefix}.revocations`,
      this.options.revocationRetention,
      this.revocations,
      this.options.log,
    );
    this.registry = new QueueRegistry(this.link, this.publisher, `${this.options.prefix}.queues`, this.options.log);
    this.registry.onPause((queue, paused) => {
      for (const consumer of this.consumers)
        if (consumer.queue === queue)
          consumer
            .paused(paused)
            .catch((error) =>
              this.options.log(
                `consumer of "${queue}" could not ${paused ? "pause" : "resume"}: ${error instanceof Error ? error.message : String(error)}`,
              ),
            );
    });
    this.host = {
      link: this.link,
      isPaused: (queue) => this.registry.isPaused(queue),
      purgedAt: (queue) => this.registry.purgedAt(queue),
      isRevoked: (id) => this.revocations.has(id),
      settingsOf: (queue) => this.settingsOf(queue),
      deadLetter: (envelope, queue, reason) => this.deadLetter(envelope, queue, reason),
      requeue: (envelope, queue, deliveries) =>
        this.send(envelope, queue, { ...originHeaders(envelope), [Header.deliveries]: deliveries }),
      countedByQueue: this.options.queueType === "quorum",
      held: (queue, change) => this.heldCounts.set(queue, (this.heldCounts.get(queue) ?? 0) + change),
      cancelled: (consumer) => this.consumers.delete(consumer),
      log: this.options.log,
    };
    this.admin = new AmqpQueueAdmin({
      link: this.link,
      registry: this.registry,
      open: (operation) => this.open(operation),
      whenReady: (operation) => this.whenReady(operation),
      ensureQueue: (queue) => this.ensureQueue(queue),
      deadLetterQueueOf: (queue) => this.deadLetterQueueOf(queue),
      exists: (queue) => this.exists(queue),
      requeue: (letter) => this.send(letter.envelope, letter.queue, originHeaders(letter.envelope)),
    });
    let connected!: () => void;
    this.ready = new Promise<void>((resolve) => (connected = resolve));
    this.link.onConnected(async () => {
      await this.stream.open();
      await this.registry.open();
      connected();
      for (const consumer of this.consumers) {
        // One consumer that cannot reopen (its queue was deleted) must not keep the others closed.
        await consumer
          .open()
          .catch((error) =>
            this.options.log(`consumer of "${consumer.queue}" could not reopen after reconnecting: ${String(error)}`),
          );
      }
    });
    this.link.start();
  }

  /** Start connecting and return at once; operations wait for the connection. */
  static create(url: string, options: AmqpTransportOptions = {}): AmqpTransport {
    return new AmqpTransport(url, options);
  }

  /** Connect, read the revocations so far, and return the transport; it reconnects by itself afterwards. */
  static async connect(url: string, options: AmqpTransportOptions = {}): Promise<AmqpTransport> {
    const transport = new AmqpTransport(url, options);
    try {
      await transport.whenReady("connect");
    } catch (error) {
      await transport.close();
      throw error;
    }
    return transport;
  }

  async declareQueue(name: string, options: QueueOptions = {}): Promise<void> {
    this.open("declare a queue");
    checkName("queue name", name);
    const deadLetterQueue = options.deadLetterQueue ?? `${name}.dlq`;
    checkName("deadLetterQueue", deadLetterQueue);
    if (deadLetterQueue === name)
      throw new InvalidArgumentError({
        argument: "deadLetterQueue",
        reason: `queue "${name}" cannot be its own dead-letter queue`,
      });
    const maxDeliveries = options.maxDeliveries ?? DEFAULT_MAX_DELIVERIES;
    if (!Number.isInteger(maxDeliveries) || maxDeliveries < 1)
      throw new InvalidArgumentError({
        argument: "maxDeliveries",
        reason: `must be an integer of at least 1, got ${String(maxDeliveries)}`,
      });
    if (options.autoDelete === true) return this.declareTransientQueue(name, maxDeliveries);
    const type = this.options.queueType;
    await this.link.withChannel("declare a queue", async (channel) => {
      for (const [queue, args] of [
        [deadLetterQueue, deadLetterQueueArguments(type)],
        [name, workQueueArguments(type, deadLetterQueue, maxDeliveries)],
      ] as const) {
        await channel.assertQueue(queue, { durable: true, arguments: args }).catch((error) => {
          throw mapAmqpError(error, "queue.declare", { kind: "queue", name: queue });
        });
        this.knownQueues.add(queue);
      }
    });
    this.settings.set(name, { deadLetterQueue, maxDeliveries, autoDelete: false });
    await this.whenReady("declare a queue");
    await this.registry.declare({
      name: deadLetterQueue,
      deadLetterQueue: "",
      isDeadLetterQueue: true,
      autoDelete: false,
    });
    await this.registry.declare({ name, deadLetterQueue, isDeadLetterQueue: false, autoDelete: false });
  }

  /**
   * An auto-delete queue: RabbitMQ deletes it (with its bindings) when its
   * last consumer is cancelled or its connection closes, also when the
   * process dies. It is a classic, non-durable queue whatever the queue
   * type (quorum queues cannot be), with no dead-letter queue: what it
   * rejects is dropped.
   */
  private async declareTransientQueue(name: string, maxDeliveries: number): Promise<void> {
    await this.link.withChannel("declare a queue", (channel) =>
      channel
        .assertQueue(name, { durable: false, autoDelete: true, arguments: { "x-max-priority": 9 } })
        .catch((error) => {
          throw mapAmqpError(error, "queue.declare", { kind: "queue", name });
        }),
    );
    this.knownQueues.add(name);
    this.settings.set(name, { deadLetterQueue: "", maxDeliveries, autoDelete: true });
    await this.whenReady("declare a queue");
    await this.registry.declare({ name, deadLetterQueue: "", isDeadLetterQueue: false, autoDelete: true });
  }

  async declareExchange(name: string, type: ExchangeType): Promise<void> {
    this.open("declare an exchange");
    if (typeof name !== "string" || name.length === 0) {
      throw new InvalidArgumentError({
        argument: "exchange name",
        reason: 'must be a non-empty string (the default exchange "" always exists)',
      });
    }
    if (!EXCHANGE_TYPES.includes(type))
      throw new InvalidArgumentError({
        argument: "exchange type",
        reason: `must be "direct", "topic" or "fanout", got ${JSON.stringify(type)}`,
      });
    await this.link.withChannel("declare an exchange", (channel) =>
      channel.assertExchange(name, type, { durable: true }).catch((error) => {
        throw mapAmqpError(error, "exchange.declare", { kind: "exchange", name });
      }),
    );
    this.knownExchanges.add(name);
  }

  async bindQueue(queue: string, exchange: string, pattern: string): Promise<void> {
    this.open("bind a queue");
    checkName("queue name", queue);
    if (exchange === "")
      throw new InvalidArgumentError({
        argument: "exchange",
        reason: 'queues cannot be bound to the default exchange "" (it routes by queue name already)',
      });
    checkName("exchange", exchange);
    if (typeof pattern !== "string")
      throw new InvalidArgumentError({
        argument: "binding pattern",
        reason: `must be a string, got ${typeof pattern}`,
      });
    await this.link.withChannel("bind a queue", (channel) =>
      channel.bindQueue(queue, exchange, pattern).catch((error) => {
        const missingQueue = replyCode(error) === ReplyCode.notFound && /no queue/.test(String(error));
        throw mapAmqpError(
          error,
          "queue.bind",
          missingQueue ? { kind: "queue", name: queue } : { kind: "exchange", name: exchange },
        );
      }),
    );
  }

  publish(envelope: Envelope, options: PublishOptions = {}): Promise<void> {
    if (this.closed) return Promise.reject(new BrokerClosedError({ operation: "publish" }));
    try {
      checkEnvelope(envelope);
    } catch (error) {
      return Promise.reject(error);
    }
    const known =
      envelope.exchange === "" ? this.knownQueues.has(envelope.routingKey) : this.knownExchanges.has(envelope.exchange);
    // The hot path (a known destination, no delay) publishes at once; the rest first checks or declares.
    if (!known || (envelope.eta !== undefined && envelope.eta > Date.now()))
      return this.publishFirst(envelope, options);
    return this.publishNow(envelope, options);
  }

  private publishNow(envelope: Envelope, options: PublishOptions): Promise<void> {
    return this.publisher.send(
      envelope.exchange,
      envelope.routingKey,
      bufferOf(envelope.body),
      { ...publishOptions(envelope, this.options.persistent), mandatory: options.mandatory === true },
      envelope.exchange === ""
        ? { kind: "queue", name: envelope.routingKey }
        : { kind: "exchange", name: envelope.exchange },
    );
  }

  private async publishFirst(envelope: Envelope, options: PublishOptions): Promise<void> {
    if (envelope.exchange === "") await this.ensureQueue(envelope.routingKey);
    else await this.ensureExchange(envelope.exchange);
    const delay = envelope.eta === undefined ? 0 : Math.ceil(envelope.eta - Date.now());
    if (delay > 0) return this.publishDelayed(envelope, delay);
    await this.publishNow(envelope, options);
  }

  async consume(queue: string, handler: DeliveryHandler, options: ConsumeOptions): Promise<Consumer> {
    this.open("consume");
    checkName("queue name", queue);
    if (typeof handler !== "function")
      throw new InvalidArgumentError({ argument: "handler", reason: `must be a function, got ${typeof handler}` });
    const prefetch = options?.prefetch;
    if (!Number.isInteger(prefetch) || prefetch < 1)
      throw new InvalidArgumentError({
        argument: "prefetch",
        reason: `must be an integer of at least 1, got ${String(prefetch)}`,
      });
    await this.whenReady("consume");
    await this.ensureQueue(queue);
    this.open("consume");
    const consumer = new AmqpConsumer(`amqp-${++this.consumerTags}`, queue, handler, prefetch, this.host);
    await consumer.open();
    this.consumers.add(consumer);
    // A macrotask, so the caller's `await consume(...)` has its consumer before the first delivery.
    setImmediate(() => consumer.start());
    return consumer;
  }

  async revoke(ids: readonly string[], options: RevocationOptions = {}): Promise<void> {
    this.open("revoke");
    if (!Array.isArray(ids) || ids.some((id) => typeof id !== "string" || id.length === 0)) {
      throw new InvalidArgumentError({ argument: "ids", reason: "must be an array of non-empty message id strings" });
    }
    const ttlMs = options.ttlMs ?? DEFAULT_REVOCATION_TTL_MS;
    if (!Number.isFinite(ttlMs) || ttlMs <= 0)
      throw new InvalidArgumentError({
        argument: "ttlMs",
        reason: `must be a positive number of ms, got ${String(ttlMs)}`,
      });
    const terminate = options.terminate === true;
    for (const id of ids) this.revocations.revoke(id, ttlMs, terminate);
    await this.whenReady("revoke");
    await this.stream.publish(ids, ttlMs, terminate);
  }

  isRevoked(id: string): boolean {
    return this.revocations.has(id);
  }

  onRevoke(
    listener: (id: string, options: { readonly terminate: boolean; readonly ttlMs?: number }) => void,
  ): () => void {
    return this.revocations.onRevoke(listener);
  }

  /**
   * The messages of a dead-letter queue, in order, left in place: they are
   * fetched unacknowledged and handed back when the read ends, so a consumer
   * of the queue counts the read as one delivery of each.
   */
  async deadLetters(queue: string): Promise<readonly DeadLetter[]> {
    this.open("read dead letters");
    checkName("queue name", queue);
    await this.whenReady("read dead letters");
    if (!(await this.exists(queue))) throw new QueueNotFoundError({ queue });
    const deadLetterQueue = this.deadLetterQueueOf(queue);
    if (deadLetterQueue === "" || (deadLetterQueue !== queue && !(await this.exists(deadLetterQueue)))) return [];
    return this.link.withChannel("read dead letters", async (channel) => {
      const letters: DeadLetter[] = [];
      for (;;) {
        const message = await channel.get(deadLetterQueue, { noAck: false });
        if (message === false) return letters;
        letters.push(deadLetterOf(message));
      }
    });
  }

  /**
   * `ready` and `consumers` as RabbitMQ counts them; `unacked`, the
   * deliveries this process's consumers hold (AMQP reports no more);
   * `delayed`, the messages in this prefix's delay ladder, for every queue
   * (the ladder is shared, and RabbitMQ cannot count it by destination).
   */
  async stats(queue: string): Promise<QueueStats> {
    this.open("read stats");
    checkName("queue name", queue);
    await this.ensureLadder();
    return this.link.withChannel("read stats", async (channel) => {
      const counted = await channel.checkQueue(queue).catch((error) => {
        throw mapAmqpError(error, "queue.declare", { kind: "queue", name: queue });
      });
      const levels = await Promise.all(this.ladder.queues().map((level) => channel.checkQueue(level)));
      return {
        ready: counted.messageCount,
        delayed: levels.reduce((sum, level) => sum + level.messageCount, 0),
        unacked: this.heldCounts.get(queue) ?? 0,
        consumers: counted.consumerCount,
      };
    });
  }

  listQueues(): Promise<readonly QueueInfo[]> {
    return this.admin.listQueues();
  }

  purge(queue: string): Promise<number> {
    return this.admin.purge(queue);
  }

  pause(queue: string): Promise<void> {
    return this.admin.pause(queue);
  }

  resume(queue: string): Promise<void> {
    return this.admin.resume(queue);
  }

  requeueDeadLetters(queue: string, ids?: readonly string[]): Promise<number> {
    return this.admin.requeueDeadLetters(queue, ids);
  }

  discardDeadLetters(queue: string, ids?: readonly string[]): Promise<number> {
    return this.admin.discardDeadLetters(queue, ids);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const consumer of [...this.consumers]) await consumer.cancel().catch(() => {});
    await this.registry.close();
    await this.stream.close();
    await this.link.close();
  }

  private open(operation: string): void {
    if (this.closed) throw new BrokerClosedError({ operation });
  }

  /** Wait until connected and caught up with revocations; fail with AmqpConnectionError after `connectTimeoutMs`. */
  private async whenReady(operation: string): Promise<void> {
    if (this.closed) throw new BrokerClosedError({ operation });
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new AmqpConnectionError({
              url: redactUrl(this.options.url),
              reason: `not ready within ${this.options.connectTimeoutMs} ms; last error: ${this.link.lastError}`,
            }),
          ),
        this.options.connectTimeoutMs,
      );
    });
    try {
      await Promise.race([this.ready, late]);
    } finally {
      clearTimeout(timer);
    }
    if (this.closed) throw new BrokerClosedError({ operation });
  }

  /** `queue` itself if it is a dead-letter queue (or one celerity did not declare), else where its dead letters go ("" for none). */
  private deadLetterQueueOf(queue: string): string {
    const registered = this.registry.get(queue);
    if (registered === undefined) return this.settings.get(queue)?.deadLetterQueue ?? queue;
    return registered.isDeadLetterQueue ? queue : registered.deadLetterQueue;
  }

  /** Whether RabbitMQ holds `queue` (asked on a channel of its own: RabbitMQ closes one that asks about a missing queue). */
  private exists(queue: string): Promise<boolean> {
    return this.link
      .withChannel("check a queue", (channel) => channel.checkQueue(queue))
      .then(
        () => true,
        (error: unknown) => {
          if (replyCode(error) === ReplyCode.notFound) return false;
          throw mapAmqpError(error, "queue.declare", { kind: "queue", name: queue });
        },
      );
  }

  private settingsOf(queue: string): QueueSettings {
    const declared = this.settings.get(queue);
    if (declared !== undefined) return declared;
    const registered = this.registry.get(queue);
    if (registered?.autoDelete === true)
      return { deadLetterQueue: "", maxDeliveries: DEFAULT_MAX_DELIVERIES, autoDelete: true };
    return {
      deadLetterQueue: registered?.deadLetterQueue || `${queue}.dlq`,
      maxDeliveries: DEFAULT_MAX_DELIVERIES,
      autoDelete: false,
    };
  }

  /** Declare `queue` with the defaults unless it exists (declared by anyone, with any settings). */
  private async ensureQueue(queue: string, role: "work" | "dead-letter" = "work"): Promise<void> {
    if (this.knownQueues.has(queue)) return;
    // A quorum queue dead-letters by itself: its dead-letter queue must exist before anything is dropped there.
    if (role === "work" && this.options.queueType === "quorum")
      await this.ensureQueue(this.settingsOf(queue).deadLetterQueue, "dead-letter");
    try {
      await this.link.withChannel("check a queue", (channel) => channel.checkQueue(queue));
    } catch (error) {
      if (replyCode(error) !== ReplyCode.notFound)
        throw mapAmqpError(error, "queue.declare", { kind: "queue", name: queue });
      await this.link.withChannel("declare a queue", (channel) =>
        channel
          .assertQueue(queue, { durable: true, arguments: this.defaultArguments(queue, role) })
          .catch((declareError) => {
            throw mapAmqpError(declareError, "queue.declare", { kind: "queue", name: queue });
          }),
      );
    }
    this.knownQueues.add(queue);
    if (this.registry.get(queue) === undefined) {
      // Found or declared here with the defaults: listed from now on (an auto-delete queue registers itself when declared).
      const { deadLetterQueue } = this.settingsOf(queue);
      await this.whenReady("declare a queue");
      await this.registry.declare(
        role === "dead-letter"
          ? { name: queue, deadLetterQueue: "", isDeadLetterQueue: true, autoDelete: false }
          : { name: queue, deadLetterQueue, isDeadLetterQueue: false, autoDelete: false },
      );
    }
  }

  private defaultArguments(queue: string, role: "work" | "dead-letter"): Record<string, unknown> {
    if (role === "dead-letter") return deadLetterQueueArguments(this.options.queueType);
    const { deadLetterQueue, maxDeliveries } = this.settingsOf(queue);
    return workQueueArguments(this.options.queueType, deadLetterQueue, maxDeliveries);
  }

  private async ensureExchange(exchange: string): Promise<void> {
    if (this.knownExchanges.has(exchange)) return;
    await this.link.withChannel("check an exchange", (channel) =>
      channel.checkExchange(exchange).catch((error) => {
        throw mapAmqpError(error, "exchange.declare", { kind: "exchange", name: exchange });
      }),
    );
    this.knownExchanges.add(exchange);
  }

  private ensureLadder(): Promise<void> {
    if (this.ladderDeclared === undefined) {
      const declaring = this.link.withChannel("declare the delay ladder", (channel) => this.ladder.declare(channel));
      this.ladderDeclared = declaring;
      declaring.catch(() => {
        if (this.ladderDeclared === declaring) this.ladderDeclared = undefined;
      });
    }
    return this.ladderDeclared;
  }

  private async publishDelayed(envelope: Envelope, delayMs: number): Promise<void> {
    const route = routeOf(envelope.exchange, envelope.routingKey);
    const entry = this.ladder.entry(delayMs, route);
    await this.ensureLadder();
    if (!this.routes.has(route)) {
      await this.link.withChannel("bind a delay route", (channel) =>
        this.ladder.bindRoute(channel, envelope.exchange, envelope.routingKey),
      );
      this.routes.add(route);
    }
    await this.publisher.send(
      entry.exchange,
      envelope.routingKey,
      bufferOf(envelope.body),
      publishOptions(envelope, this.options.persistent, {
        ...entry.headers,
        [Header.exchange]: envelope.exchange,
        [Header.sentAt]: Date.now(),
      }),
      { kind: "exchange", name: entry.exchange },
    );
  }

  private async deadLetter(envelope: Envelope, queue: string, reason: string): Promise<void> {
    const { deadLetterQueue, autoDelete } = this.settingsOf(queue);
    if (autoDelete) return; // a transient queue's rejects are dropped
    await this.ensureQueue(deadLetterQueue, "dead-letter");
    await this.send(envelope, deadLetterQueue, {
      ...originHeaders(envelope),
      [Header.deadReason]: reason,
      [Header.deadQueue]: queue,
      [Header.deadAt]: Date.now(),
    });
  }

  /** Publish a copy of `envelope` straight to `queue` (a requeue or a dead letter). */
  private send(envelope: Envelope, queue: string, extra: Record<string, unknown>): Promise<void> {
    return this.publisher.send(
      "",
      queue,
      bufferOf(envelope.body),
      { ...publishOptions(envelope, this.options.persistent, extra), mandatory: true },
      { kind: "queue", name: queue },
    );
  }
}

/** What this transport knows of a queue's dead-lettering. */
interface QueueSettings {
  /** "" for an auto-delete queue: what it rejects is dropped. */
  readonly deadLetterQueue: string;
  readonly maxDeliveries: number;
  readonly autoDelete: boolean;
}

const checkEnvelope = (envelope: Envelope): void => {
  if (envelope === null || typeof envelope !== "object")
    throw new InvalidArgumentError({ argument: "envelope", reason: "must be an object" });
  if (typeof envelope.id !== "string" || envelope.id.length === 0)
    throw new InvalidArgumentError({ argument: "envelope id", reason: "must be a non-empty string" });
  if (typeof envelope.exchange !== "string")
    throw new InvalidArgumentError({
      argument: "envelope exchange",
      reason: `must be a string, got ${typeof envelope.exchange}`,
    });
  if (envelope.exchange === "") checkName("routing key (the queue, on the default exchange)", envelope.routingKey);
  else if (typeof envelope.routingKey !== "string")
    throw new InvalidArgumentError({
      argument: "routing key",
      reason: `must be a string, got ${typeof envelope.routingKey}`,
    });
  if (!(envelope.body instanceof Uint8Array))
    throw new InvalidArgumentError({ argument: "envelope body", reason: "must be a Uint8Array" });
};

/** The body as a Buffer over the same bytes (no copy). */
const bufferOf = (body: Uint8Array): Buffer =>
  Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
