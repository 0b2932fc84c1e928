// The hook through which the embedded broker reports every change to what it holds, so
// the durable node can log the changes and replay them after a restart.
import type { DeadLetter, Envelope } from "../envelope.ts";
import type { ExchangeType, QueueOptions, RevocationOptions } from "../transport.ts";

/**
 * Told of every change to what the broker holds, so a durable node can log it
 * and rebuild the same state after a restart. Messages are named by an opaque
 * reference, one per copy in a queue. Calls are synchronous, made before the
 * operation that caused them returns.
 */
export interface BrokerJournal {
  queueDeclared(name: string, options: QueueOptions): void;
  exchangeDeclared(name: string, type: ExchangeType): void;
  queueBound(queue: string, exchange: string, pattern: string): void;
  /** A message entered `queue` (ready or delayed); `deadLetter` when it was restored as one. */
  /**
   * The pending write of the record just journalled, when records are made
   * durable asynchronously: a message enqueued by a publish is delivered only
   * once that write succeeds, and dropped if it fails (its publish is refused),
   * so no consumer ever runs a message the broker would lose.
   */
  readonly lastWrite?: Promise<void> | undefined;
  enqueued(ref: object, queue: string, envelope: Envelope, deadLetter?: DeadLetter): void;
  /** A message left its queue for good: acknowledged, or discarded because it was revoked. */
  removed(ref: object): void;
  /** A message moved to a dead-letter queue: `ref` is gone, `deadRef` now holds it. */
  deadLettered(ref: object, deadRef: object, dlq: string, letter: DeadLetter): void;
  revoked(ids: readonly string[], options: RevocationOptions): void;
  /** `queue` was paused or resumed (see QueueAdmin.pause). */
  paused?(queue: string, paused: boolean): void;
}
