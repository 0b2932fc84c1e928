// One consumer of the embedded broker: its prefetch window, unacked deliveries, ack, nack
// and cancel; it calls back into the broker (ConsumerHost) for anything touching a queue.
import { DeliveryTags } from "../delivery-tags.ts";
import type { Delivery } from "../envelope.ts";
import { BrokerClosedError, UnknownDeliveryError } from "../errors.ts";
import type { QueuedMessage, QueueState } from "./queue-state.ts";
import type { Consumer, DeliveryHandler } from "../transport.ts";

/** The broker operations a consumer calls back into. */
export interface ConsumerHost {
  isClosed(): boolean;
  /** The consumer was cancelled (and has left `queue`'s consumers). */
  detached(queue: QueueState<EmbeddedConsumer>): void;
  /** Put messages back at the head of `queue` (in the order given) and schedule a drain. */
  requeue(queue: QueueState<EmbeddedConsumer>, messages: readonly QueuedMessage[]): void;
  /** Put messages back at the tail of `queue` (in the order given) and schedule a drain. */
  requeueAtTail(queue: QueueState<EmbeddedConsumer>, messages: readonly QueuedMessage[]): void;
  deadLetter(queue: QueueState<EmbeddedConsumer>, message: QueuedMessage, reason: string): void;
  /** A message was acknowledged: it is gone for good. */
  acked(queue: QueueState<EmbeddedConsumer>, message: QueuedMessage): void;
  /** A delivery was settled: the queue may have capacity again. */
  settled(queue: QueueState<EmbeddedConsumer>, acked: boolean): void;
  handlerFailed(consumer: EmbeddedConsumer, deliveryTag: number, message: QueuedMessage, error: unknown): void;
}

const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  typeof value === "object" && value !== null && typeof (value as { then?: unknown }).then === "function";

/** A delivery that goes back unstarted leaves no mark against its message. */
const uncountIfUnstarted = (message: QueuedMessage): void => {
  if (!message.started) {
    message.deliveryCount--;
    message.unstartedReturns++;
    message.started = true;
  }
};

/**
 * A consumer of the embedded broker: receives deliveries while it has fewer
 * than `prefetch` unacknowledged, names each with a tag unique to it, and
 * settles them with ack / nack. Created by `EmbeddedBroker.consume`.
 */
export class EmbeddedConsumer implements Consumer {
  private readonly unacked = new DeliveryTags<QueuedMessage>();
  /** Deliveries start on the turn after `consume` resolves, so a handler can use the consumer it was given. */
  private attached = false;
  private cancelled = false;

  constructor(
    readonly tag: string,
    private readonly state: QueueState<EmbeddedConsumer>,
    private readonly handler: DeliveryHandler,
    readonly prefetch: number,
    private readonly host: ConsumerHost,
    /** Deliveries count towards maxDeliveries only once marked started (ConsumeOptions.marksStarted). */
    private readonly marksStarted = false,
  ) {}

  get queue(): string {
    return this.state.name;
  }

  /** Deliveries handed to this consumer and not yet settled. */
  get outstanding(): number {
    return this.unacked.size;
  }

  /** The messages handed out and not yet settled, oldest first. */
  unackedMessages(): readonly QueuedMessage[] {
    return this.unacked.values();
  }

  start(): void {
    this.attached = true;
  }

  hasCapacity(): boolean {
    return this.attached && !this.cancelled && this.unacked.size < this.prefetch;
  }

  deliver(message: QueuedMessage): void {
    const deliveryCount = ++message.deliveryCount;
    message.started = !this.marksStarted;
    const deliveryTag = this.unacked.add(message);
    this.state.unacked++;
    const delivery: Delivery = {
      envelope: message.envelope,
      queue: this.state.name,
      deliveryTag,
      redelivered: deliveryCount > 1,
      deliveryCount,
    };
    try {
      const result: unknown = this.handler(delivery);
      if (isThenable(result)) {
        result.then(undefined, (error: unknown) => this.host.handlerFailed(this, deliveryTag, message, error));
      }
    } catch (error) {
      this.host.handlerFailed(this, deliveryTag, message, error);
    }
  }

  /** The holder began processing `deliveryTag` (ignored once it is settled or taken back). */
  markStarted(deliveryTag: number): void {
    const message = this.unacked.get(deliveryTag);
    if (message !== undefined) message.started = true;
  }

  ack(deliveryTag: number): void {
    const message = this.take("ack", deliveryTag);
    this.host.acked(this.state, message);
    this.host.settled(this.state, true);
  }

  nack(deliveryTag: number, options: { readonly requeue: boolean; readonly reason?: string }): void {
    const message = this.take("nack", deliveryTag);
    if (options?.requeue) {
      this.host.requeue(this.state, [message]);
    } else {
      this.host.deadLetter(this.state, message, options?.reason ?? "rejected by consumer");
    }
    this.host.settled(this.state, false);
  }

  /**
   * Stop receiving and return every unacknowledged delivery to the head of
   * the queue, oldest first; with marksStarted, the newest of those that were
   * begun goes to its back instead, so no two begun ones stay side by side.
   */
  cancel(): Promise<void> {
    if (!this.cancelled) {
      this.cancelled = true;
      this.state.removeConsumer(this);
      this.host.detached(this.state);
      const returned = this.unacked.values();
      this.unacked.clear();
      this.state.unacked -= returned.length;
      if (!this.marksStarted) {
        this.host.requeue(this.state, returned);
        return Promise.resolve();
      }
      // What was begun is split up: if one of them killed its consumer, the others running beside it must not
      // be paired with it again on every redelivery (each pairing counts against them too). The newest goes to
      // the back; the others to the head, where the next consumer starts each beside a different neighbour.
      const begun = returned.filter((message) => message.started);
      const held = returned.filter((message) => !message.started);
      for (let i = 0; i < held.length; i++) uncountIfUnstarted(held[i]);
      const newest = begun.pop();
      this.host.requeue(this.state, begun.length === 0 ? held : [...begun, ...held]);
      if (newest !== undefined) this.host.requeueAtTail(this.state, [newest]);
    }
    return Promise.resolve();
  }

  /**
   * Take one delivery back from a holder that stopped answering for it (its
   * lease ran out): back to the queue, counted as a delivery only if it was
   * started. Returns whether the delivery was still held.
   */
  takeBack(deliveryTag: number): boolean {
    const message = this.unacked.take(deliveryTag);
    if (message === undefined) return false;
    this.state.unacked--;
    uncountIfUnstarted(message);
    this.host.requeue(this.state, [message]);
    this.host.settled(this.state, false);
    return true;
  }

  /**
   * Return one delivery to the queue after its handler failed, unless it was
   * settled before the failure surfaced. Returns whether it was requeued.
   */
  requeueFailed(deliveryTag: number): boolean {
    const message = this.unacked.take(deliveryTag);
    if (message === undefined) return false;
    this.state.unacked--;
    this.host.requeue(this.state, [message]);
    return true;
  }

  private take(operation: "ack" | "nack", deliveryTag: number): QueuedMessage {
    const message = this.unacked.take(deliveryTag);
    if (message !== undefined) {
      this.state.unacked--;
      return message;
    }
    if (this.host.isClosed()) throw new BrokerClosedError({ operation });
    throw new UnknownDeliveryError({
      operation,
      deliveryTag,
      consumer: this.tag,
      queue: this.state.name,
      reason: this.unknownReason(deliveryTag),
    });
  }

  private unknownReason(deliveryTag: number): string {
    if (!Number.isInteger(deliveryTag) || deliveryTag < 1 || deliveryTag > this.unacked.issued) {
      return "no delivery with this tag was ever issued to this consumer";
    }
    if (this.cancelled) {
      return "the consumer was cancelled, which returned its unacknowledged deliveries to the queue for redelivery";
    }
    return "it was already acknowledged or rejected (settling a delivery twice is a bug in the caller)";
  }
}
