// Dead-letter queues of the embedded broker: reading their letters, taking letters out
// (to requeue or discard), and keeping each one within its count and byte bounds.
import type { DeadLetter } from "../envelope.ts";
import { InvalidArgumentError } from "../errors.ts";
import type { QueuedMessage, QueueConsumer, QueueState } from "./queue-state.ts";

export const DEFAULT_MAX_DEAD_LETTERS = 10_000;
export const DEFAULT_MAX_DEAD_LETTER_BYTES = 64 * 1024 * 1024;

/** What a consumer holding dead letters can show of them. */
interface LetterHolder extends QueueConsumer {
  unackedMessages(): Iterable<QueuedMessage>;
}

const positiveBound = (value: number, argument: string): number => {
  if (!Number.isInteger(value) || value < 1)
    throw new InvalidArgumentError({ argument, reason: `must be a positive integer, got ${value}` });
  return value;
};

/** Every letter in `dlq`, those delivered and unacknowledged first, then those ready; nothing is removed. */
export const lettersIn = (dlq: QueueState<LetterHolder>): DeadLetter[] => {
  const letters: DeadLetter[] = [];
  for (const consumer of dlq.consumers) {
    for (const message of consumer.unackedMessages()) if (message.deadLetter) letters.push(message.deadLetter);
  }
  for (const message of dlq.ready) if (message.deadLetter) letters.push(message.deadLetter);
  return letters;
};

/** Remove from `dlq` the ready letters `ids` selects (all of them without it) and return them, in order. */
export const takeLetters = (dlq: QueueState, ids: readonly string[] | undefined): QueuedMessage[] => {
  if (ids !== undefined && (!Array.isArray(ids) || ids.some((id) => typeof id !== "string"))) {
    throw new InvalidArgumentError({ argument: "ids", reason: "must be an array of message id strings" });
  }
  const wanted = ids === undefined ? undefined : new Set(ids);
  const kept: QueuedMessage[] = [];
  const taken: QueuedMessage[] = [];
  for (const message of dlq.ready) {
    if (message.deadLetter !== undefined && (wanted === undefined || wanted.has(message.envelope.id)))
      taken.push(message);
    else kept.push(message);
  }
  if (taken.length === 0) return taken;
  dlq.ready.clear();
  for (const message of kept) dlq.ready.push(message, message.priority);
  return taken;
};

/**
 * The bounds every dead-letter queue is kept within. Past either, letters are
 * dropped (next in line first) down to nine tenths of it, so the byte count is
 * recounted once per tenth of the bound rather than on every letter.
 */
export class DeadLetterBounds {
  readonly maxCount: number;
  readonly maxBytes: number;
  /** Per dead-letter queue: an upper estimate of the body bytes it holds (recounted when it passes the bound). */
  private readonly bytes = new Map<string, number>();

  constructor(maxCount = DEFAULT_MAX_DEAD_LETTERS, maxBytes = DEFAULT_MAX_DEAD_LETTER_BYTES) {
    this.maxCount = positiveBound(maxCount, "maxDeadLetters");
    this.maxBytes = positiveBound(maxBytes, "maxDeadLetterBytes");
  }

  /** After a letter of `added` body bytes joined `dlq`: the letters dropped from it to keep it within bounds. */
  admit(dlq: QueueState, added: number): QueuedMessage[] {
    const { maxCount, maxBytes } = this;
    const within = (count: number, size: number) => count <= maxCount && size <= maxBytes;
    let bytes = (this.bytes.get(dlq.name) ?? 0) + added;
    const dropped: QueuedMessage[] = [];
    if (!within(dlq.ready.length, bytes)) {
      bytes = 0;
      for (const message of dlq.ready) bytes += message.envelope.body.byteLength;
      if (!within(dlq.ready.length, bytes)) {
        while (dlq.ready.length > 0 && (dlq.ready.length > maxCount * 0.9 || bytes > maxBytes * 0.9)) {
          const message = dlq.ready.shift() as QueuedMessage;
          bytes -= message.envelope.body.byteLength;
          dropped.push(message);
        }
      }
    }
    this.bytes.set(dlq.name, bytes);
    return dropped;
  }
}
