// The hook through which the embedded broker reports every change to what it holds, so
// the durable node can log the changes and replay them after a restart.
import type { DeadLetter, Envelope } from "../envelope.ts";
import type { ExchangeType, QueueOptions, RevocationOptions } from "../transport.ts";

/**
 * A copy of a message in a queue, as the journal names it: the journal keeps
 * its own number for the copy in `journalSeq` (0 until it numbers it). A field
 * rather than a WeakMap beside the broker: one entry per message in a WeakMap
 * cost the garbage collector more than the rest of the journal's bookkeeping.
 */
export interface JournalRef {
  journalSeq: number;
}

/**
 * Told of every change to what the broker holds, so a durable node can log it
 * and rebuild the same state after a restart. Messages are named by their
 * copy in a queue (a JournalRef). Calls are synchronous, made before the
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
  enqueued(ref: JournalRef, queue: string, envelope: Envelope, deadLetter?: DeadLetter): void;
  /** A message left its queue for good: acknowledged, or discarded because it was revoked. */
  removed(ref: JournalRef): void;
  /** A message moved to a dead-letter queue: `ref` is gone, `deadRef` now holds it. */
  deadLettered(ref: JournalRef, deadRef: JournalRef, dlq: string, letter: DeadLetter): void;
  revoked(ids: readonly string[], options: RevocationOptions): void;
  /** `queue` was paused or resumed (see QueueAdmin.pause). */
  paused?(queue: string, paused: boolean): void;
}
