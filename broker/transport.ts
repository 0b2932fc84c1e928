// The contract every broker implements: the embedded broker, the broker node's client,
// the Redis and RabbitMQ transports. The runtime talks to nothing else, so the conformance
// suite over this interface (conformance.ts) proves a transport fit for the runtime.
import type { DeadLetter, Delivery, Envelope } from "./envelope.ts";

/**
 * How an exchange routes a message: `direct` to the queues bound with exactly its routing
 * key, `topic` by pattern (`*` one word, `#` zero or more), `fanout` to every bound queue.
 *
 * @example
 * await broker.declareExchange("events", "topic");
 * await broker.bindQueue("audit", "events", "order.#");
 */
export type ExchangeType = "direct" | "topic" | "fanout";

/**
 * Settings of a queue, fixed by its first declaration.
 *
 * @example
 * await broker.declareQueue("images", { deadLetterQueue: "images.failed", maxDeliveries: 5 });
 */
export interface QueueOptions {
  /** Queue that receives messages rejected without requeue, expired, or redelivered too often. Default: `${name}.dlq`. */
  readonly deadLetterQueue?: string;
  /** A message delivered this many times without an ack is dead-lettered instead of redelivered. Default 16. */
  readonly maxDeliveries?: number;
  /**
   * Delete the queue, with its messages and bindings, once its last consumer
   * is cancelled (or the connection that consumed it ends), as in AMQP. Such
   * a queue is never written to a durable log, and a message rejected from it
   * is dropped rather than dead-lettered. For per-subscriber queues: event
   * streams, control replies. Default false.
   */
  readonly autoDelete?: boolean;
}

/**
 * Options for one publish.
 *
 * @example
 * await broker.publish(envelope, { mandatory: true }); // UnroutableError if no queue receives it
 */
export interface PublishOptions {
  /** Refuse (UnroutableError) rather than drop a message that no queue receives. Default false, as in AMQP. */
  readonly mandatory?: boolean;
}

/**
 * A delivery's lease when the consumer names none (ConsumeOptions.leaseMs),
 * on every transport whose consumers are in other processes (a broker node,
 * Redis): 30 s, renewed while the consumer's process lives.
 *
 * @example
 * app.worker({ leaseMs: DEFAULT_LEASE_MS * 2 }); // a dead worker's tasks come back after a minute
 */
export const DEFAULT_LEASE_MS = 30_000;

/**
 * Options for one consumer.
 *
 * @example
 * await broker.consume("jobs", handle, { prefetch: 32, leaseMs: 60_000 });
 */
export interface ConsumeOptions {
  /** At most this many unacknowledged deliveries are outstanding to the consumer at once. */
  readonly prefetch: number;
  /**
   * Where the consumer is in another process (a broker node): each delivery is
   * leased for this long, and the lease of every delivery still held is renewed
   * while the consumer's process is alive. A delivery whose lease runs out is
   * redelivered to another consumer. Default DEFAULT_LEASE_MS (30 s). In-process brokers ignore it.
   */
  readonly leaseMs?: number;
  /**
   * The consumer calls `markStarted(deliveryTag)` as it begins to process each
   * delivery. A delivery that goes back to its queue without having been
   * started (its consumer was cancelled, or its process died, while it was
   * only held) then does not count towards its queue's `maxDeliveries`, so a
   * message that kills its consumer is dead-lettered alone, not with the
   * messages held beside it. Default false: every delivery counts.
   */
  readonly marksStarted?: boolean;
}

/**
 * A consumer's receiving callback; called with one delivery at a time.
 *
 * @example
 * const consumer = await broker.consume("jobs", (delivery) => consumer.ack(delivery.deliveryTag), { prefetch: 8 });
 */
export type DeliveryHandler = (delivery: Delivery) => void;

/**
 * A delivery as the broker that made it names it, for a result store on the
 * same connection to acknowledge along with the task's outcome (see
 * `Consumer.outcomeAck`).
 */
export interface OutcomeAck {
  /**
   * The connection the delivery came over, as an identity: the tags hold only
   * on it, so a store names the delivery only in a request written to it.
   */
  readonly via: unknown;
  readonly consumerTag: string;
  readonly deliveryTag: number;
}

/**
 * A subscription to one queue, returned by `consume`: settles its deliveries (`ack`, `nack`) and ends with `cancel`.
 *
 * @example
 * const consumer = await broker.consume("jobs", (delivery) => {
 *   if (handle(delivery.envelope)) consumer.ack(delivery.deliveryTag);
 *   else consumer.nack(delivery.deliveryTag, { requeue: false, reason: "cannot handle it" });
 * }, { prefetch: 8 });
 * await consumer.cancel();
 */
export interface Consumer {
  readonly tag: string;
  readonly queue: string;
  /** Acknowledge: the message is done and will never be delivered again. */
  ack(deliveryTag: number): void;
  /**
   * With `marksStarted`: processing of this delivery begins now, so it counts
   * as delivered if it comes back unacknowledged. A remote transport sends the
   * mark before returning, so it reaches the broker even if the work it
   * precedes kills the process. Optional: a transport without it counts every delivery.
   */
  markStarted?(deliveryTag: number): void;
  /**
   * Negative acknowledgement. With `requeue` the message goes back to its queue
   * (redelivered, delivery count kept); without, it goes to the dead-letter queue with `reason`.
   */
  nack(deliveryTag: number, options: { readonly requeue: boolean; readonly reason?: string }): void;
  /**
   * What lets the broker acknowledge this delivery itself once its task's
   * outcome is recorded, in the request that records it (a broker node that
   * serves the result store over the consumer's own connection); undefined
   * where it cannot. The delivery stays held here meanwhile: once the
   * outcome is recorded, `ackedWithOutcome` lets it go without a request;
   * if recording fails, ack or nack it as usual.
   */
  outcomeAck?(deliveryTag: number): OutcomeAck | undefined;
  /** The broker acknowledged this delivery with its task's outcome (see `outcomeAck`): forget it here. */
  ackedWithOutcome?(deliveryTag: number): void;
  /**
   * Stop receiving. Deliveries not yet acknowledged are returned to the queue and
   * redelivered to another consumer, so stopping never loses a message.
   */
  cancel(): Promise<void>;
}

/**
 * How long a revocation is kept, and whether it aborts a running task.
 *
 * @example
 * await broker.revoke([taskId], { ttlMs: 60 * 60_000, terminate: true });
 */
export interface RevocationOptions {
  /** Forget the revocation after this many ms (bounded memory). Default one day. */
  readonly ttlMs?: number;
  /** Also abort the task where it is already running. Default false: a running task finishes. */
  readonly terminate?: boolean;
}

/**
 * A queue's counts at one moment.
 *
 * @example
 * const { ready, unacked } = await broker.stats("celery");
 */
export interface QueueStats {
  readonly ready: number;
  readonly delayed: number;
  readonly unacked: number;
  readonly consumers: number;
}

/**
 * The contract between the runtime and a broker: queues, exchanges, publishing
 * with confirms, consumers with prefetch and acknowledgements, delays,
 * dead letters and revocations. Every transport passes the conformance suite
 * (`celerity/transport/conformance`); `createApp({ broker })` takes any.
 *
 * @example
 * const broker: Transport = createEmbeddedBroker();
 * const app = createApp({ broker });
 */
export interface Transport {
  /** Create a queue if it does not exist (idempotent). Publishing to the default exchange with a routing key that names no queue declares it. */
  declareQueue(name: string, options?: QueueOptions): Promise<void>;
  declareExchange(name: string, type: ExchangeType): Promise<void>;
  /** Route messages published to `exchange` into `queue`: for topic exchanges `pattern` may use `*` (one word) and `#` (zero or more words). */
  bindQueue(queue: string, exchange: string, pattern: string): Promise<void>;
  /**
   * Publish; resolves once the broker has accepted the message (publisher confirm).
   * With `mandatory`, a message its exchange routes to no queue is refused
   * (UnroutableError) instead of dropped.
   */
  publish(envelope: Envelope, options?: PublishOptions): Promise<void>;
  /**
   * Publish several envelopes in order in one request, confirmed together:
   * resolves once the broker has accepted all of them; rejects if any is
   * refused (the others are published). Optional: without it, callers
   * publish each one.
   */
  publishMany?(envelopes: readonly Envelope[], options?: PublishOptions): Promise<void>;
  /**
   * Start consuming `queue`; the handler receives deliveries until the consumer is cancelled.
   * No delivery is made before the returned promise resolves, so the handler can always ack through the Consumer.
   */
  consume(queue: string, handler: DeliveryHandler, options: ConsumeOptions): Promise<Consumer>;
  /** Record a revocation: a revoked message still queued or delayed is never delivered, and consumers that start later see it too. */
  revoke(ids: readonly string[], options?: RevocationOptions): Promise<void>;
  /** Whether `id` is revoked, as this transport currently knows it (a synchronous look-up on the delivery path). */
  isRevoked(id: string): boolean;
  /** Subscribe to revocations as they happen (to abort a task already running); returns an unsubscribe function. */
  onRevoke(
    listener: (id: string, options: { readonly terminate: boolean; readonly ttlMs?: number }) => void,
  ): () => void;
  /**
   * For a transport to a broker in another process: subscribe to the loss of
   * its connection, after which every delivery its consumers held is back in
   * its queue (and settling it does nothing). Returns an unsubscribe function.
   * Optional: an in-process broker never loses its consumers' deliveries so.
   */
  onConnectionLost?(listener: (reason: string) => void): () => void;
  /** Read the messages of a dead-letter queue (by its name, e.g. "celery.dlq") without removing them. */
  deadLetters(queue: string): Promise<readonly DeadLetter[]>;
  stats(queue: string): Promise<QueueStats>;
  /** Stop: unacknowledged deliveries are kept for redelivery where the transport is durable. */
  close(): Promise<void>;
}
