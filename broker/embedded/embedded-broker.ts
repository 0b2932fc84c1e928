// The embedded broker: the in-process Transport and QueueAdmin (queues, exchanges, delays,
// prefetch, dead letters, revocations) that apps use alone and the broker node serves over TCP.
import { clockOf, nowOf } from "../clock.ts";
import { DeadLetterBounds, lettersIn, takeLetters } from "./dead-letter-queues.ts";
import { ConsumerAttachments } from "./consumer-attachments.ts";
import { DelayScheduler } from "./delay-scheduler.ts";
import { DEFAULT_TURN_BUDGET, DrainScheduler } from "./drain-scheduler.ts";
import { EmbeddedConsumer, type ConsumerHost } from "./embedded-consumer.ts";
import { clampPriority, type DeadLetter, type Envelope } from "../envelope.ts";
import {
  BrokerClosedError,
  DeclarationConflictError,
  ExchangeNotFoundError,
  InvalidArgumentError,
  QueueNotFoundError,
  UnroutableError,
} from "../errors.ts";
import { Exchange } from "./exchange.ts";
import { checkEnvelope, checkMaxDeliveries, checkQueueName, checkTtl } from "../broker-arguments.ts";
import type { BrokerJournal } from "./broker-journal.ts";
import type { EmbeddedBrokerOptions } from "./embedded-broker-options.ts";
import type { QueueAdmin, QueueInfo } from "../queue-admin.ts";
import { QueuedMessage, QueueState } from "./queue-state.ts";
import { DEFAULT_REVOCATION_TTL_MS, Revocations, type RevocationListener } from "../revocations.ts";
import type {
  ConsumeOptions,
  DeliveryHandler,
  ExchangeType,
  PublishOptions,
  QueueOptions,
  QueueStats,
  RevocationOptions,
  Transport,
} from "../transport.ts";

export type { EmbeddedBrokerOptions } from "./embedded-broker-options.ts";
export type { BrokerJournal } from "./broker-journal.ts";

/**
 * Broker-wide counters, for monitoring and tests.
 *
 * @example
 * const { published, acked, deadLettered } = broker.totals();
 */
export interface BrokerTotals {
  /** Messages accepted by publish (a message routed to several queues counts once). */
  readonly published: number;
  /** Messages published to an exchange that routed them to no queue, and so dropped. */
  readonly unroutable: number;
  readonly delivered: number;
  readonly acked: number;
  /** Messages moved to a dead-letter queue (rejected, expired, or delivered too often). */
  readonly deadLettered: number;
  /** Revoked messages discarded instead of delivered. */
  readonly discardedRevoked: number;
  /** Dead letters dropped to keep a dead-letter queue within maxDeadLetters and maxDeadLetterBytes. */
  readonly deadLettersDropped: number;
}

const DEFAULT_MAX_DELIVERIES = 16;
/** How many unstarted returns (see ConsumeOptions.marksStarted) weigh as much as one delivery. */
const UNSTARTED_RETURNS_PER_DELIVERY = 4;
const EXCHANGE_TYPES: ReadonlySet<string> = new Set<ExchangeType>(["direct", "topic", "fanout"]);
/** What an operation applied at once returns (shared, so callers can tell it apart without awaiting). */
export const RESOLVED: Promise<void> = Promise.resolve();

type Queue = QueueState<EmbeddedConsumer>;

/**
 * Ready messages a queue holds before a paced publish into it waits for the
 * next turn (see EmbeddedBrokerOptions.paceSenders): a burst below it (the
 * next steps of a thousand chains, a group of a thousand) is never held up;
 * a producer that runs further ahead keeps less in memory the lower it is.
 */
const PACED_BACKLOG = DEFAULT_TURN_BUDGET / 4;
const isBacklogged = (queue: Queue): boolean => queue.ready.length >= PACED_BACKLOG;

interface DelayedMessage {
  readonly queue: Queue;
  readonly message: QueuedMessage;
  /** The queue's purge generation when it was routed: a purge since drops it. */
  readonly generation: number;
}

/**
 * The in-process broker: named queues with priorities, delayed delivery by
 * eta, expiry, dead-letter queues, direct / topic / fanout exchanges,
 * revocations, and consumers with prefetch served round-robin. Everything
 * lives in memory (nothing survives the process). `publish` only enqueues;
 * deliveries are made in batches on the microtask after, calling each
 * handler synchronously, so throughput is bounded by the handlers. A new
 * consumer's first delivery comes on the event-loop turn after `consume`
 * resolves. The delay timer keeps the process alive only while some consumer
 * is attached.
 *
 * @example
 * const broker = createEmbeddedBroker();
 * const consumer = await broker.consume("tasks", (d) => {
 *   run(d.envelope);
 *   consumer.ack(d.deliveryTag);
 * }, { prefetch: 8 });
 * await broker.publish({ id: randomUUID(), exchange: "", routingKey: "tasks", priority: 0, headers: {}, body });
 */
export class EmbeddedBroker implements Transport, QueueAdmin {
  private readonly now: () => number;
  private readonly defaultMaxDeliveries: number;
  private readonly onError: (error: unknown, context: string) => void;
  private readonly queues = new Map<string, Queue>();
  private readonly exchanges = new Map<string, Exchange<Queue>>();
  private readonly revocations: Revocations;
  private readonly delays: DelayScheduler<DelayedMessage>;
  private readonly drains: DrainScheduler;
  /** Queues that may have deliveries to make; each is in here at most once (see QueueState.pending). */
  private pendingQueues: Queue[] = [];
  private consumerCount = 0;
  private activeConsumers = 0;
  private closed = false;
  private readonly counts = {
    published: 0,
    unroutable: 0,
    delivered: 0,
    acked: 0,
    deadLettered: 0,
    discardedRevoked: 0,
    deadLettersDropped: 0,
  };
  private readonly deadLetterBounds: DeadLetterBounds;
  private readonly host: ConsumerHost;
  private readonly journal: BrokerJournal | undefined;
  private readonly paceSenders: boolean;
  private readonly attachments = new ConsumerAttachments<[EmbeddedConsumer, Queue]>(([consumer, queue]) => {
    consumer.start();
    this.markPending(queue);
  });

  constructor(options: EmbeddedBrokerOptions = {}) {
    const clock = clockOf(options);
    this.now = nowOf(clock);
    this.journal = options.journal;
    this.paceSenders = options.paceSenders !== false;
    this.defaultMaxDeliveries = checkMaxDeliveries(
      options.defaultMaxDeliveries ?? DEFAULT_MAX_DELIVERIES,
      "defaultMaxDeliveries",
    );
    const revocationTtlMs = checkTtl(options.revocationTtlMs ?? DEFAULT_REVOCATION_TTL_MS, "revocationTtlMs");
    const maxRevocations = options.maxRevocations ?? 100_000;
    if (!Number.isInteger(maxRevocations) || maxRevocations < 1) {
      throw new InvalidArgumentError({
        argument: "maxRevocations",
        reason: `must be a positive integer, got ${maxRevocations}`,
      });
    }
    this.deadLetterBounds = new DeadLetterBounds(options.maxDeadLetters, options.maxDeadLetterBytes);
    this.onError =
      options.onError ?? ((error, context) => console.error(`celerity embedded broker: ${context}`, error));
    this.revocations = new Revocations({
      now: this.now,
      defaultTtlMs: revocationTtlMs,
      maxEntries: maxRevocations,
      onListenerError: (error) => this.onError(error, "a revocation listener threw"),
    });
    this.delays = new DelayScheduler(clock, ({ queue, message, generation }) => {
      if (generation !== queue.generation || queue.deleted) return void this.journalOf(queue)?.removed(message);
      queue.delayed--;
      this.enqueueReady(queue, message);
    });
    this.drains = new DrainScheduler(
      (budget) => this.drain(budget),
      () => this.pendingQueues.length > 0,
    );
    this.host = this.consumerHost();
  }

  async declareQueue(name: string, options: QueueOptions = {}): Promise<void> {
    this.assertOpen("declare a queue");
    checkQueueName(name, "queue name");
    const deadLetterQueue = options.deadLetterQueue;
    if (deadLetterQueue !== undefined) {
      checkQueueName(deadLetterQueue, "deadLetterQueue");
      if (deadLetterQueue === name) {
        throw new InvalidArgumentError({
          argument: "deadLetterQueue",
          reason: `queue "${name}" cannot be its own dead-letter queue`,
        });
      }
    }
    const maxDeliveries =
      options.maxDeliveries === undefined ? undefined : checkMaxDeliveries(options.maxDeliveries, "maxDeliveries");
    const existing = this.queues.get(name);
    if (existing === undefined) {
      if (options.autoDelete === true) {
        // Transient: no dead-letter queue of its own (what it rejects is dropped) and nothing journalled.
        this.createQueue(name, true, deadLetterQueue, maxDeliveries, false).autoDelete = true;
        return;
      }
      this.createQueue(name, true, deadLetterQueue, maxDeliveries);
      this.journal?.queueDeclared(name, options);
      return;
    }
    if (options.autoDelete !== undefined && options.autoDelete !== existing.autoDelete) {
      throw new DeclarationConflictError({
        kind: "queue",
        name,
        reason: `it is ${existing.autoDelete ? "" : "not "}auto-delete`,
      });
    }
    if (existing.explicit) {
      if (deadLetterQueue !== undefined && deadLetterQueue !== existing.deadLetterQueue) {
        throw new DeclarationConflictError({
          kind: "queue",
          name,
          reason: `its dead-letter queue is "${existing.deadLetterQueue}", not "${deadLetterQueue}"`,
        });
      }
      if (maxDeliveries !== undefined && maxDeliveries !== existing.maxDeliveries) {
        throw new DeclarationConflictError({
          kind: "queue",
          name,
          reason: `its maxDeliveries is ${existing.maxDeliveries}, not ${maxDeliveries}`,
        });
      }
      return;
    }
    this.journal?.queueDeclared(name, options);
    // Created implicitly by a publish or a dead letter: the first explicit declaration sets its options.
    existing.explicit = true;
    if (deadLetterQueue !== undefined) {
      existing.deadLetterQueue = deadLetterQueue;
      this.ensureQueue(deadLetterQueue, false).isDeadLetterQueue = true;
    }
    if (maxDeliveries !== undefined) existing.maxDeliveries = maxDeliveries;
  }

  async declareExchange(name: string, type: ExchangeType): Promise<void> {
    this.assertOpen("declare an exchange");
    if (typeof name !== "string" || name === "") {
      throw new InvalidArgumentError({
        argument: "exchange name",
        reason: 'must be a non-empty string (the default exchange "" always exists)',
      });
    }
    if (!EXCHANGE_TYPES.has(type)) {
      throw new InvalidArgumentError({
        argument: "exchange type",
        reason: `must be "direct", "topic" or "fanout", got ${JSON.stringify(type)}`,
      });
    }
    const existing = this.exchanges.get(name);
    if (existing === undefined) {
      this.exchanges.set(name, new Exchange<Queue>(name, type));
      this.journal?.exchangeDeclared(name, type);
    } else if (existing.type !== type) {
      throw new DeclarationConflictError({
        kind: "exchange",
        name,
        reason: `it is a ${existing.type} exchange, not ${type}`,
      });
    }
  }

  async bindQueue(queue: string, exchange: string, pattern: string): Promise<void> {
    this.assertOpen("bind a queue");
    checkQueueName(queue, "queue name");
    if (exchange === "") {
      throw new InvalidArgumentError({
        argument: "exchange",
        reason: 'queues cannot be bound to the default exchange "" (it routes by queue name already)',
      });
    }
    if (typeof pattern !== "string") {
      throw new InvalidArgumentError({
        argument: "binding pattern",
        reason: `must be a string, got ${typeof pattern}`,
      });
    }
    const target = this.exchanges.get(exchange);
    if (target === undefined) throw new ExchangeNotFoundError({ exchange });
    const state = this.queues.get(queue);
    if (state === undefined) throw new QueueNotFoundError({ queue });
    target.bind(state, pattern);
    this.journalOf(state)?.queueBound(queue, exchange, pattern);
  }

  publish(envelope: Envelope, options?: PublishOptions): Promise<void> {
    if (this.closed) return Promise.reject(new BrokerClosedError({ operation: "publish" }));
    const invalid = checkEnvelope(envelope);
    if (invalid !== undefined) return Promise.reject(invalid);
    const priority = clampPriority(envelope.priority);
    const accepted = priority === envelope.priority ? envelope : { ...envelope, priority };
    let backlogged: boolean;
    if (accepted.exchange === "") {
      const queue = this.ensureQueue(accepted.routingKey);
      this.enqueue(queue, accepted, priority);
      backlogged = isBacklogged(queue);
    } else {
      const exchange = this.exchanges.get(accepted.exchange);
      if (exchange === undefined) return Promise.reject(new ExchangeNotFoundError({ exchange: accepted.exchange }));
      const targets = exchange.route(accepted.routingKey);
      if (targets.length === 0) {
        this.counts.unroutable++;
        if (options?.mandatory)
          return Promise.reject(new UnroutableError({ exchange: accepted.exchange, routingKey: accepted.routingKey }));
      }
      for (let i = 0; i < targets.length; i++) this.enqueue(targets[i], accepted, priority);
      backlogged = targets.some(isBacklogged);
    }
    this.counts.published++;
    if (!this.paceSenders || !backlogged) return RESOLVED;
    // Into a backlog while a consumer is being attached or deliveries wait for the next turn: confirmed after them.
    return this.attachments.started ?? this.drains.nextTurn() ?? RESOLVED;
  }

  async consume(queue: string, handler: DeliveryHandler, options: ConsumeOptions): Promise<EmbeddedConsumer> {
    this.assertOpen("consume");
    checkQueueName(queue, "queue name");
    if (typeof handler !== "function") {
      throw new InvalidArgumentError({ argument: "handler", reason: `must be a function, got ${typeof handler}` });
    }
    const prefetch = options?.prefetch;
    if (typeof prefetch !== "number" || !Number.isInteger(prefetch) || prefetch < 1) {
      throw new InvalidArgumentError({
        argument: "prefetch",
        reason: `must be an integer of at least 1, got ${String(prefetch)}`,
      });
    }
    const state = this.ensureQueue(queue);
    const consumer = new EmbeddedConsumer(
      `ctag-${++this.consumerCount}`,
      state,
      handler,
      prefetch,
      this.host,
      options.marksStarted === true,
    );
    state.addConsumer(consumer);
    // Like an open connection to a remote broker: while someone consumes, a delayed message is work the process waits for.
    if (++this.activeConsumers === 1) this.delays.keepAlive(true);
    this.attachments.add([consumer, state]);
    return consumer;
  }

  async revoke(ids: readonly string[], options: RevocationOptions = {}): Promise<void> {
    this.assertOpen("revoke");
    if (!Array.isArray(ids) || ids.some((id) => typeof id !== "string" || id === "")) {
      throw new InvalidArgumentError({ argument: "ids", reason: "must be an array of non-empty message id strings" });
    }
    const ttlMs = options.ttlMs === undefined ? undefined : checkTtl(options.ttlMs, "ttlMs");
    const terminate = options.terminate === true;
    this.journal?.revoked(ids, { ...(ttlMs !== undefined ? { ttlMs } : {}), terminate });
    for (const id of ids) this.revocations.revoke(id, ttlMs, terminate);
  }

  isRevoked(id: string): boolean {
    return this.revocations.has(id);
  }

  /** The revocations in force, with the ms each has left (what a remote client mirrors on connect). */
  activeRevocations(): [id: string, ttlMs: number][] {
    return this.revocations.active();
  }

  onRevoke(listener: RevocationListener): () => void {
    return this.revocations.onRevoke(listener);
  }

  /**
   * The messages in a dead-letter queue, with why and when each got there,
   * oldest first, including ones a consumer of that queue holds
   * unacknowledged; nothing is removed. `queue` names the dead-letter queue
   * (`"tasks.dlq"`); naming an ordinary queue instead (`"tasks"`) reads that
   * queue's dead-letter queue.
   */
  async deadLetters(queue: string): Promise<readonly DeadLetter[]> {
    this.assertOpen("read dead letters");
    const named = this.queues.get(queue);
    if (named === undefined) throw new QueueNotFoundError({ queue });
    const dlq = named.isDeadLetterQueue ? named : this.queues.get(named.deadLetterQueue);
    return dlq === undefined ? [] : lettersIn(dlq);
  }

  async stats(queue: string): Promise<QueueStats> {
    this.assertOpen("read queue stats");
    const state = this.queues.get(queue);
    if (state === undefined) throw new QueueNotFoundError({ queue });
    return state.stats();
  }

  async listQueues(): Promise<readonly QueueInfo[]> {
    this.assertOpen("list queues");
    const infos = [...this.queues.values()].map((state) => state.info());
    return infos.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async purge(queue: string): Promise<number> {
    this.assertOpen("purge a queue");
    const state = this.queues.get(queue);
    if (state === undefined) throw new QueueNotFoundError({ queue });
    const journal = this.journalOf(state);
    const purged = state.ready.length + state.delayed;
    if (journal !== undefined) for (const message of state.ready) journal.removed(message);
    state.ready.clear();
    state.delayed = 0;
    state.generation++;
    return purged;
  }

  async pause(queue: string): Promise<void> {
    this.setPaused(queue, true);
  }

  async resume(queue: string): Promise<void> {
    this.setPaused(queue, false);
  }

  private setPaused(queue: string, paused: boolean): void {
    this.assertOpen(paused ? "pause a queue" : "resume a queue");
    checkQueueName(queue, "queue name");
    const state = this.ensureQueue(queue);
    if (state.paused === paused) return;
    state.paused = paused;
    this.journalOf(state)?.paused?.(queue, paused);
    if (!paused) this.markPending(state);
  }

  async requeueDeadLetters(queue: string, ids?: readonly string[]): Promise<number> {
    this.assertOpen("requeue dead letters");
    const taken = this.takeDeadLetters(queue, ids);
    for (const message of taken) {
      const letter = message.deadLetter as DeadLetter;
      this.enqueue(this.ensureQueue(letter.queue), letter.envelope, message.priority);
    }
    return taken.length;
  }

  async discardDeadLetters(queue: string, ids?: readonly string[]): Promise<number> {
    this.assertOpen("discard dead letters");
    return this.takeDeadLetters(queue, ids).length;
  }

  /** Remove from `queue`'s dead-letter queue the ready dead letters `ids` selects (all without it), journalled as gone. */
  private takeDeadLetters(queue: string, ids: readonly string[] | undefined): QueuedMessage[] {
    const named = this.queues.get(queue);
    if (named === undefined) throw new QueueNotFoundError({ queue });
    const dlq = named.isDeadLetterQueue ? named : this.queues.get(named.deadLetterQueue);
    if (dlq === undefined) return [];
    const taken = takeLetters(dlq, ids);
    for (const message of taken) this.journal?.removed(message);
    return taken;
  }

  /** Forget an auto-delete queue whose last consumer has gone: its messages and bindings go with it. */
  private deleteQueue(state: Queue): void {
    if (this.queues.get(state.name) !== state) return;
    this.queues.delete(state.name);
    state.deleted = true;
    state.ready.clear();
    for (const exchange of this.exchanges.values()) exchange.unbind(state);
  }

  /** The journal for changes to `state`: none for an auto-delete queue, which nothing must bring back after a restart. */
  private journalOf(state: Queue): BrokerJournal | undefined {
    return state.autoDelete ? undefined : this.journal;
  }

  /** Broker-wide counters since creation, including messages dropped as unroutable. */
  totals(): BrokerTotals {
    return { ...this.counts };
  }

  /**
   * Stop: consumers are cancelled (their unacknowledged deliveries go back to
   * their queues), the delay timer is cleared, and every later call rejects
   * with BrokerClosedError. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const state of this.queues.values()) {
      for (const consumer of state.consumers) void consumer.cancel();
    }
    this.delays.stop();
    this.drains.stop();
  }

  private assertOpen(operation: string): void {
    if (this.closed) throw new BrokerClosedError({ operation });
  }

  /** The queue named `name`, created with default options if it does not exist yet. */
  private ensureQueue(name: string, withDeadLetterQueue = true): Queue {
    return this.queues.get(name) ?? this.createQueue(name, false, undefined, undefined, withDeadLetterQueue);
  }

  private createQueue(
    name: string,
    explicit: boolean,
    deadLetterQueue: string | undefined,
    maxDeliveries: number | undefined,
    withDeadLetterQueue = true,
  ): Queue {
    const state: Queue = new QueueState(
      name,
      explicit,
      deadLetterQueue ?? `${name}.dlq`,
      maxDeliveries ?? this.defaultMaxDeliveries,
    );
    this.queues.set(name, state);
    // Created with its queue so it can be consumed and inspected at once; a dead-letter queue's own one waits for first use.
    if (withDeadLetterQueue) this.ensureQueue(state.deadLetterQueue, false).isDeadLetterQueue = true;
    return state;
  }

  /**
   * Put a message straight into `queue` (declaring it if needed), as it was
   * before a restart: with the delivery count given, or as a dead letter. For
   * the durable node's recovery; the journal is told as for a publish.
   */
  restore(
    queue: string,
    envelope: Envelope,
    state: { readonly deliveryCount?: number; readonly deadLetter?: DeadLetter } = {},
  ): void {
    this.assertOpen("restore");
    const target = this.ensureQueue(queue, state.deadLetter === undefined);
    if (state.deadLetter !== undefined) {
      target.isDeadLetterQueue = true;
      const message = new QueuedMessage(envelope, clampPriority(envelope.priority));
      message.deadLetter = state.deadLetter;
      this.journal?.enqueued(message, queue, envelope, state.deadLetter);
      this.enqueueReady(target, message);
      return;
    }
    const message = this.enqueue(target, envelope, clampPriority(envelope.priority));
    message.deliveryCount = state.deliveryCount ?? 0;
  }

  private enqueue(state: Queue, envelope: Envelope, priority: number): QueuedMessage {
    const message = new QueuedMessage(envelope, priority);
    const journal = this.journal;
    // A queue that deletes itself is not journalled (it does not outlive its consumers).
    if (journal !== undefined && !state.autoDelete) {
      journal.enqueued(message, state.name, envelope);
      const write = journal.lastWrite;
      if (write !== undefined && write !== RESOLVED) {
        this.holdUntilDurable(write, state, message);
        return message;
      }
    }
    return this.place(state, message);
  }

  /** Messages whose record is being written, grouped by the write (a group commit shares one). */
  private awaitingWrite: { readonly write: Promise<void>; readonly messages: [Queue, QueuedMessage][] } | undefined;

  private holdUntilDurable(write: Promise<void>, state: Queue, message: QueuedMessage): void {
    let group = this.awaitingWrite;
    if (group === undefined || group.write !== write) {
      const held: [Queue, QueuedMessage][] = [];
      group = this.awaitingWrite = { write, messages: held };
      write.then(
        () => {
          if (this.awaitingWrite?.messages === held) this.awaitingWrite = undefined;
          if (this.closed) return;
          for (let i = 0; i < held.length; i++) this.place(held[i][0], held[i][1]);
        },
        () => {
          if (this.awaitingWrite?.messages === held) this.awaitingWrite = undefined;
          // Never durable, so never confirmed: it must never run either.
          for (let i = 0; i < held.length; i++) this.journal?.removed(held[i][1]);
        },
      );
    }
    group.messages.push([state, message]);
  }

  /** Into the ready queue, or the delay heap until its eta. */
  private place(state: Queue, message: QueuedMessage): QueuedMessage {
    const eta = message.envelope.eta;
    if (eta !== undefined && eta > this.now()) {
      state.delayed++;
      this.delays.add(eta, { queue: state, message, generation: state.generation });
      return message;
    }
    this.enqueueReady(state, message);
    return message;
  }

  private enqueueReady(state: Queue, message: QueuedMessage): void {
    state.ready.push(message, message.priority);
    this.markPending(state);
  }

  private markPending(state: Queue): void {
    // A queue without consumers has nobody to deliver to; adding a consumer (or resuming) marks it again.
    if (state.pending || state.paused || state.consumers.length === 0) return;
    state.pending = true;
    this.pendingQueues.push(state);
    this.drains.schedule();
  }

  private delivering = true;

  /**
   * Make no more deliveries until `resumeDelivering`: messages stay where they
   * are, and everything else goes on. The durable node pauses so while its log
   * cannot record acks, since a task run then would run again after a restart.
   */
  pauseDelivering(): void {
    this.delivering = false;
    this.drains.stop();
  }

  /** Deliver again after `pauseDelivering`, starting with what waited meanwhile. */
  resumeDelivering(): void {
    if (this.delivering || this.closed) return;
    this.delivering = true;
    this.drains.resume();
  }

  /** Make up to `budget` deliveries across the pending queues; returns how many were made. */
  private drain(budget: number): number {
    if (this.closed || !this.delivering) return 0;
    let delivered = 0;
    while (this.pendingQueues.length > 0 && delivered < budget) {
      const queues = this.pendingQueues;
      this.pendingQueues = [];
      for (let i = 0; i < queues.length; i++) {
        const state = queues[i];
        // Still flagged pending while drained, so acks and publishes made by its handlers do not re-list it.
        if (delivered < budget) delivered += this.drainQueue(state, budget - delivered);
        state.pending = false;
        if (delivered >= budget && state.ready.length > 0) this.markPending(state);
      }
    }
    this.counts.delivered += delivered;
    return delivered;
  }

  private drainQueue(state: Queue, budget: number): number {
    if (state.paused) return 0;
    let delivered = 0;
    while (delivered < budget && state.ready.length > 0) {
      const consumer = state.nextConsumerWithCapacity();
      if (consumer === undefined) break;
      const message = this.nextDeliverable(state);
      if (message === undefined) break;
      consumer.deliver(message);
      delivered++;
      if (this.closed) break;
    }
    return delivered;
  }

  /** The next message of `state` fit for delivery, discarding revoked ones and dead-lettering expired or exhausted ones on the way. */
  private nextDeliverable(state: Queue): QueuedMessage | undefined {
    for (;;) {
      const message = state.ready.shift();
      if (message === undefined) return undefined;
      const envelope = message.envelope;
      if (this.revocations.has(envelope.id)) {
        this.counts.discardedRevoked++;
        this.journalOf(state)?.removed(message);
        continue;
      }
      // A dead letter stays readable in its dead-letter queue after it expires.
      if (envelope.expires !== undefined && message.deadLetter === undefined && envelope.expires < this.now()) {
        this.deadLetter(state, message, "expired");
        continue;
      }
      if (message.deliveryCount >= state.maxDeliveries) {
        this.deadLetter(
          state,
          message,
          `delivered ${message.deliveryCount} times without an ack (maxDeliveries is ${state.maxDeliveries})`,
        );
        continue;
      }
      // A bound for when start marks are lost (a process killed mid-turn, before its marks went out):
      // a poison message then comes back uncounted, and must not do so for ever.
      if (message.unstartedReturns >= state.maxDeliveries * UNSTARTED_RETURNS_PER_DELIVERY) {
        this.deadLetter(
          state,
          message,
          `returned ${message.unstartedReturns} times by consumers that ended without starting it (at most maxDeliveries x ${UNSTARTED_RETURNS_PER_DELIVERY})`,
        );
        continue;
      }
      return message;
    }
  }

  private deadLetter(state: Queue, message: QueuedMessage, reason: string): void {
    if (state.autoDelete) return; // a transient queue's rejects are dropped (nothing journalled them)
    const target = this.ensureQueue(state.deadLetterQueue, false);
    target.isDeadLetterQueue = true;
    const dead = new QueuedMessage(message.envelope, message.priority);
    dead.deadLetter = { envelope: message.envelope, queue: state.name, reason, at: this.now() };
    this.counts.deadLettered++;
    this.journal?.deadLettered(message, dead, target.name, dead.deadLetter);
    this.enqueueReady(target, dead);
    for (const dropped of this.deadLetterBounds.admit(target, message.envelope.body.byteLength)) {
      this.counts.deadLettersDropped++;
      this.journalOf(target)?.removed(dropped);
    }
  }

  private consumerHost(): ConsumerHost {
    return {
      isClosed: () => this.closed,
      detached: (state) => {
        if (--this.activeConsumers === 0) this.delays.keepAlive(false);
        if (state.autoDelete && state.consumers.length === 0) this.deleteQueue(state);
      },
      requeue: (state, messages) => {
        for (let i = messages.length - 1; i >= 0; i--) state.ready.unshift(messages[i], messages[i].priority);
        if (messages.length > 0) this.markPending(state);
      },
      requeueAtTail: (state, messages) => {
        for (let i = 0; i < messages.length; i++) state.ready.push(messages[i], messages[i].priority);
        if (messages.length > 0) this.markPending(state);
      },
      deadLetter: (state, message, reason) => this.deadLetter(state, message, reason),
      acked: (state, message) => this.journalOf(state)?.removed(message),
      settled: (state, acked) => {
        if (acked) this.counts.acked++;
        this.markPending(state);
      },
      handlerFailed: (consumer, deliveryTag, message, error) => {
        const requeued = !this.closed && consumer.requeueFailed(deliveryTag);
        this.onError(
          error,
          `the handler of consumer ${consumer.tag} (queue "${consumer.queue}") failed on message ${message.envelope.id}` +
            (requeued ? "; the message was returned to the queue" : ""),
        );
      },
    };
  }
}

/**
 * Create an in-process broker; see EmbeddedBroker.
 *
 * @example
 * const broker = createEmbeddedBroker({ defaultMaxDeliveries: 5 });
 */
export const createEmbeddedBroker = (options?: EmbeddedBrokerOptions): EmbeddedBroker => new EmbeddedBroker(options);
