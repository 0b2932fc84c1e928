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

/** An argument the broker cannot act on, such as an empty queue name or a prefetch below 1; `argument` names it. */
export class InvalidArgumentError extends Data.TaggedError("InvalidArgumentError")<{
  readonly argument: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `invalid ${this.argument}: ${this.reason}`;
  }
}

/** Publishing to, or binding to, an exchange that was never declared. */
export class ExchangeNotFoundError extends Data.TaggedError("ExchangeNotFoundError")<{
  readonly exchange: string;
}> {
  override get message(): string {
    return `exchange "${this.exchange}" is not declared (declare it with declareExchange first)`;
  }
}

/** Binding, or reading the stats or dead letters of, a queue that was never declared. */
export class QueueNotFoundError extends Data.TaggedError("QueueNotFoundError")<{
  readonly queue: string;
}> {
  override get message(): string {
    return `queue "${this.queue}" is not declared (declare it with declareQueue first)`;
  }
}

/** A queue or exchange declared again with settings that contradict its first declaration. */
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

/** A mandatory publish that its exchange routes to no queue: nothing was enqueued. */
export class UnroutableError extends Data.TaggedError("UnroutableError")<{
  readonly exchange: string;
  readonly routingKey: string;
}> {
  override get message(): string {
    return `exchange "${this.exchange}" routes routing key "${this.routingKey}" to no queue (bind a queue to it), so the message was not accepted`;
  }
}
