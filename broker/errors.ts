// The tagged errors every transport raises for the same mistakes (closed broker, bad
// argument, unknown queue or exchange, conflicting declaration, unknown delivery, unroutable).
import { Data } from "effect";

/**
 * The broker was closed: nothing can be published, consumed, declared or
 * acknowledged through it any more.
 *
 * @example
 * await broker.close();
 * await broker.publish(envelope); // rejects: broker is closed (cannot publish)
 */
export class BrokerClosedError extends Data.TaggedError("BrokerClosedError")<{
  readonly operation: string;
}> {
  override get message(): string {
    return `broker is closed (cannot ${this.operation})`;
  }
}

/**
 * An argument the broker cannot act on, such as an empty queue name or a prefetch below 1; `argument` names it.
 *
 * @example
 * await broker.declareQueue(""); // rejects with InvalidArgumentError: queue name ...
 */
export class InvalidArgumentError extends Data.TaggedError("InvalidArgumentError")<{
  readonly argument: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `invalid ${this.argument}: ${this.reason}`;
  }
}

/**
 * Publishing to, or binding to, an exchange that was never declared.
 *
 * @example
 * await broker.bindQueue("audit", "no-such-exchange", "#"); // rejects with ExchangeNotFoundError
 */
export class ExchangeNotFoundError extends Data.TaggedError("ExchangeNotFoundError")<{
  readonly exchange: string;
}> {
  override get message(): string {
    return `exchange "${this.exchange}" is not declared (declare it with declareExchange first)`;
  }
}

/**
 * Binding, or reading the stats or dead letters of, a queue that was never declared.
 *
 * @example
 * await broker.stats("no-such-queue"); // rejects with QueueNotFoundError
 */
export class QueueNotFoundError extends Data.TaggedError("QueueNotFoundError")<{
  readonly queue: string;
}> {
  override get message(): string {
    return `queue "${this.queue}" is not declared (declare it with declareQueue first)`;
  }
}

/**
 * A queue or exchange declared again with settings that contradict its first declaration.
 *
 * @example
 * await broker.declareExchange("events", "topic");
 * await broker.declareExchange("events", "fanout"); // rejects with DeclarationConflictError
 */
export class DeclarationConflictError extends Data.TaggedError("DeclarationConflictError")<{
  readonly kind: "queue" | "exchange";
  readonly name: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `${this.kind} "${this.name}" is already declared differently: ${this.reason}`;
  }
}

/**
 * `ack` or `nack` named a delivery tag the consumer has no unacknowledged
 * delivery for: settled already (a double ack), never issued, or returned to
 * the queue when the consumer was cancelled. All three are bugs in the caller.
 *
 * @example
 * consumer.ack(delivery.deliveryTag);
 * consumer.ack(delivery.deliveryTag); // throws UnknownDeliveryError
 */
export class UnknownDeliveryError extends Data.TaggedError("UnknownDeliveryError")<{
  readonly operation: "ack" | "nack";
  readonly deliveryTag: number;
  readonly consumer: string;
  readonly queue: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `cannot ${this.operation} delivery ${this.deliveryTag} on consumer ${this.consumer} (queue "${this.queue}"): ${this.reason}`;
  }
}

/**
 * A mandatory publish that its exchange routes to no queue: nothing was enqueued.
 *
 * @example
 * await add.applyAsync([1, 2], { exchange: "events", routingKey: "nobody.listens" }); // rejects with UnroutableError
 */
export class UnroutableError extends Data.TaggedError("UnroutableError")<{
  readonly exchange: string;
  readonly routingKey: string;
}> {
  override get message(): string {
    return `exchange "${this.exchange}" routes routing key "${this.routingKey}" to no queue (bind a queue to it), so the message was not accepted`;
  }
}

/**
 * Whether a failed call's outcome is unknown: the connection was lost (or no
 * answer came in time) after the request may have reached the broker, so it
 * may or may not have been applied. Every transport raises these under the
 * same tags: `ConnectionLostError` (the node, Redis), `RequestTimeoutError`
 * (the node), `AmqpConnectionError` (RabbitMQ, after its own retries). A
 * publish that failed this way is safe to send again only where a copy is
 * recognised (a task id claimed once).
 *
 * @example
 * await broker.publish(envelope).catch((error) => (outcomeUnknown(error) ? keepForResend(envelope) : drop(envelope)));
 */
export const outcomeUnknown = (error: unknown): boolean => {
  const tag = (error as { _tag?: unknown } | null)?._tag;
  return tag === "ConnectionLostError" || tag === "RequestTimeoutError" || tag === "AmqpConnectionError";
};
