// Where Celery's task messages travel: kombu's Redis lists or RabbitMQ
// queues. The worker and the app program against this; results stay in
// Celery's Redis result backend either way.
import type { CeleryMessageError } from "./celery-errors.ts";
import type { CeleryTaskMessage } from "./celery-message.ts";
import type { KombuDelivery } from "./kombu-redis-envelope.ts";

/** One message received: read (or the reason it could not be), with the raw form kept for a dead letter. */
export interface CeleryInbound {
  readonly queue: string;
  /** The message as received, for the dead-letter queue. */
  readonly raw: string;
  readonly delivery: KombuDelivery | CeleryMessageError;
  /** Done with it: remove it from the broker. */
  ack(): Promise<void>;
  /** Give it back without running it (the broker keeps it for another delivery). */
  abandon(): Promise<void>;
}

/** A running consumer; `stop()` ends it once the message being popped (if any) is handed over. */
export interface CeleryConsumption {
  stop(): Promise<void>;
}

export interface CeleryBroker {
  /** Send a task message to its queue. */
  publish(message: CeleryTaskMessage): Promise<void>;
  /** Declare the queues as Celery does and receive their messages, at most `prefetch` unacknowledged at once. */
  consume(
    queues: readonly string[],
    prefetch: number,
    onMessage: (inbound: CeleryInbound) => void,
  ): Promise<CeleryConsumption>;
  /** Keep a message that cannot run, with the reason, on `<queue>.dead-letter`. */
  deadLetter(queue: string, raw: string, reason: string, now: number): Promise<void>;
  close(): Promise<void>;
}
