/**
 * The unit a broker moves. A broker reads only the routing fields
 * (exchange, routing key, priority, eta, expires) and the id; `headers` and
 * `body` belong to whoever published the envelope and pass through untouched.
 *
 * @example
 * const headers: Record<string, HeaderValue> = { task: "add", retries: 0 };
 */
export type HeaderValue = string | number | boolean | null | undefined;

/**
 * A message as a broker sees it: routing facts, headers and an opaque body.
 *
 * @example
 * await broker.publish({ id: randomUUID(), exchange: "", routingKey: "jobs", priority: 0, headers: { kind: "resize" }, body: new Uint8Array([1]) });
 */
export interface Envelope {
  /** Unique message id (a UUID); also the key a revocation names. */
  readonly id: string;
  /** Exchange to route through; "" is the default exchange (routing key = queue name). */
  readonly exchange: string;
  readonly routingKey: string;
  /** 0 (lowest, the default) to 9 (highest). */
  readonly priority: number;
  /** Epoch milliseconds before which the message must not be delivered. */
  readonly eta?: number;
  /** Epoch milliseconds after which the message is dropped to the dead-letter queue instead of delivered. */
  readonly expires?: number;
  /** Publisher-defined metadata, opaque to the broker. */
  readonly headers: Readonly<Record<string, HeaderValue>>;
  /** Encoded payload (see codec.ts), opaque to the broker. */
  readonly body: Uint8Array;
}

/**
 * An envelope handed to a consumer, with the facts of this delivery.
 *
 * @example
 * await broker.consume("jobs", (delivery) => console.log(delivery.envelope.id, delivery.deliveryCount), { prefetch: 1 });
 */
export interface Delivery {
  readonly envelope: Envelope;
  readonly queue: string;
  /** Unique per consumer; names the delivery in ack / nack. */
  readonly deliveryTag: number;
  /** True when an earlier delivery of this message was not acknowledged. */
  readonly redelivered: boolean;
  /** 1 on first delivery, incremented on every redelivery. */
  readonly deliveryCount: number;
}

/**
 * Why a message ended up in a dead-letter queue.
 *
 * @example
 * for (const letter of await broker.deadLetters("celery.dlq")) console.log(letter.envelope.id, letter.reason);
 */
export interface DeadLetter {
  readonly envelope: Envelope;
  readonly queue: string;
  readonly reason: string;
  readonly at: number;
}

/**
 * The lowest priority, and the default.
 *
 * @example
 * await add.applyAsync([1, 2], { priority: MIN_PRIORITY });
 */
export const MIN_PRIORITY = 0;
/**
 * The highest priority: delivered before everything lower in its queue.
 *
 * @example
 * await add.applyAsync([1, 2], { priority: MAX_PRIORITY });
 */
export const MAX_PRIORITY = 9;

export const clampPriority = (priority: number | undefined): number =>
  priority === undefined || !Number.isFinite(priority)
    ? MIN_PRIORITY
    : Math.min(MAX_PRIORITY, Math.max(MIN_PRIORITY, Math.trunc(priority)));
