// One queue of the embedded broker: its ready messages and counts, its consumers in
// round-robin order, where its dead letters go, and the copy of a message it holds.
import type { DeadLetter, Envelope } from "../envelope.ts";
import type { QueueInfo } from "../queue-admin.ts";
import type { QueueStats } from "../transport.ts";
import { ReadyQueue } from "./ready-queue.ts";

/** One copy of a published message as it sits in one queue. */
export class QueuedMessage {
  /** How many times this copy has been handed to a consumer. */
  deliveryCount = 0;
  /** Whether the consumer holding this copy began processing it (see ConsumeOptions.marksStarted). */
  started = true;
  /** Times this copy came back from a consumer that never started it (those do not count as deliveries). */
  unstartedReturns = 0;
  /** Set when the message was moved into this queue by dead-lettering. */
  deadLetter: DeadLetter | undefined = undefined;
  /** The durable node's number for this copy in its log (see BrokerJournal); 0 when not journalled. */
  journalSeq = 0;

  constructor(
    readonly envelope: Envelope,
    readonly priority: number,
  ) {}
}

/** What the queue needs to know about a consumer to hand it messages. */
export interface QueueConsumer {
  /** True while the consumer is attached and has fewer unacknowledged deliveries than its prefetch. */
  hasCapacity(): boolean;
  deliver(message: QueuedMessage): void;
}

/**
 * A named queue's state inside the embedded broker: its ready messages, its
 * counts, its consumers in round-robin order, and where its dead letters go.
 */
export class QueueState<C extends QueueConsumer = QueueConsumer> {
  readonly ready = new ReadyQueue<QueuedMessage>();
  /** Messages routed here that wait in the delay heap for their eta. */
  delayed = 0;
  /** Deliveries handed out and not yet acked or nacked. */
  unacked = 0;
  /** Replaced, never mutated, so a drain iterating the old array is unaffected by a cancel. */
  consumers: readonly C[] = [];
  private nextConsumer = 0;
  /** Some queue dead-letters into this one. */
  isDeadLetterQueue = false;
  /** Whether the queue is in the broker's list of queues to drain. */
  pending = false;
  /** Paused queues keep receiving messages but deliver none until resumed. */
  paused = false;
  /** Deleted with its last consumer, and never journalled (see QueueOptions.autoDelete). */
  autoDelete = false;
  /** Set once an auto-delete queue is gone: delayed messages still due to it are dropped. */
  deleted = false;
  /** Bumped by a purge: delayed messages routed before it are dropped when due. */
  generation = 0;

  constructor(
    readonly name: string,
    /** False while the queue exists only because something was published or dead-lettered to it. */
    public explicit: boolean,
    public deadLetterQueue: string,
    public maxDeliveries: number,
  ) {}

  /** The next consumer in round-robin order that can take a delivery, or undefined when none can. */
  nextConsumerWithCapacity(): C | undefined {
    const consumers = this.consumers;
    const n = consumers.length;
    for (let tried = 0; tried < n; tried++) {
      if (this.nextConsumer >= n) this.nextConsumer = 0;
      const consumer = consumers[this.nextConsumer++];
      if (consumer.hasCapacity()) return consumer;
    }
    return undefined;
  }

  addConsumer(consumer: C): void {
    this.consumers = [...this.consumers, consumer];
  }

  removeConsumer(consumer: C): void {
    this.consumers = this.consumers.filter((c) => c !== consumer);
  }

  /** Its counts, as `Transport.stats` reports them. */
  stats(): QueueStats {
    return { ready: this.ready.length, delayed: this.delayed, unacked: this.unacked, consumers: this.consumers.length };
  }

  /** Its counts and settings, as `QueueAdmin.listQueues` reports them. */
  info(): QueueInfo {
    return {
      name: this.name,
      ...this.stats(),
      paused: this.paused,
      deadLetterQueue: this.isDeadLetterQueue || this.autoDelete ? "" : this.deadLetterQueue,
      isDeadLetterQueue: this.isDeadLetterQueue,
      autoDelete: this.autoDelete,
    };
  }
}
