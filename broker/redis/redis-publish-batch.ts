// The publishes of one turn of the event loop gathered into one script call
// (publishBatchScript), each settled with its own outcome.
import type { Redis } from "ioredis";
import { clampPriority, type Envelope } from "../envelope.ts";
import { publishBatchScript } from "./redis-broker-scripts.ts";
import { encodeEnvelope } from "./redis-envelope.ts";
import { text } from "./redis-script.ts";

/** One script call carries at most this many messages, so that no call holds Redis for long (a script runs alone). */
const MAX_BATCH = 500;

/** A publish's outcome as the script reports it. */
export type PublishOutcome = "ok" | "noexchange" | "unroutable";

interface Pending {
  readonly envelope: Envelope;
  /** Refuse it if no queue receives it. */
  readonly mandatory: boolean;
  resolve(outcome: PublishOutcome): void;
  reject(error: unknown): void;
}

/**
 * Gathers the publishes made in one turn and sends them, at the end of the
 * turn (or when `flush` is called first), in script calls of up to
 * MAX_BATCH messages: one command and one reply instead of one per
 * message, and each queue's consumers woken once. Order is kept: messages
 * are stored in the order `add` was called.
 *
 * @example
 * const batch = new PublishBatch(redis, "celerity:", (error) => error);
 * const outcome = await batch.add(envelope); // "ok", "noexchange" or "unroutable"
 */
export class PublishBatch {
  private pending: Pending[] = [];
  /** The 8 fields of each message, reused from one batch to the next. */
  private fields: (string | Uint8Array)[] = [];

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    /** What a failed call rejects each of its publishes with. */
    private readonly failure: (error: unknown) => unknown,
  ) {}

  /** Queue `envelope` for this turn's call; resolves with its outcome once Redis has stored it (or refused it). */
  add(envelope: Envelope, mandatory: boolean): Promise<PublishOutcome> {
    return new Promise((resolve, reject) => {
      if (this.pending.length === 0) queueMicrotask(this.flush);
      this.pending.push({ envelope, mandatory, resolve, reject });
    });
  }

  /** Send what has been gathered (ahead of any command issued after this call). */
  readonly flush = (): void => {
    if (this.pending.length === 0) return;
    const pending = this.pending;
    this.pending = [];
    if (pending.length <= MAX_BATCH) return this.send(pending);
    for (let from = 0; from < pending.length; from += MAX_BATCH) this.send(pending.slice(from, from + MAX_BATCH));
  };

  private send(batch: readonly Pending[]): void {
    const fields = this.fields;
    fields.length = 0;
    for (let i = 0; i < batch.length; i++) {
      const { envelope, mandatory } = batch[i];
      const priority = clampPriority(envelope.priority);
      const stored = priority === envelope.priority ? envelope : { ...envelope, priority };
      fields.push(
        envelope.exchange,
        envelope.routingKey,
        String(priority),
        envelope.eta === undefined ? "" : String(envelope.eta),
        envelope.expires === undefined ? "" : String(envelope.expires),
        envelope.id,
        encodeEnvelope(stored),
        mandatory ? "1" : "0",
      );
    }
    const packed = lengthPrefixed(fields);
    publishBatchScript.run(this.redis, [this.prefix, Date.now(), packed]).then(
      (reply) => {
        const outcomes = reply as unknown[];
        for (let i = 0; i < batch.length; i++) batch[i].resolve(text(outcomes[i]) as PublishOutcome);
      },
      (error: unknown) => {
        const failed = this.failure(error);
        for (const { reject } of batch) reject(failed);
      },
    );
  }
}

/** The fields as one buffer, each a 4-byte big-endian length and its bytes (strings as UTF-8), as the script reads them. */
const lengthPrefixed = (fields: readonly (string | Uint8Array)[]): Buffer => {
  let size = 0;
  for (const field of fields) size += 4 + (typeof field === "string" ? Buffer.byteLength(field) : field.byteLength);
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const field of fields) {
    if (typeof field === "string") {
      const length = out.write(field, at + 4);
      out.writeUInt32BE(length, at);
      at += 4 + length;
    } else {
      out.writeUInt32BE(field.byteLength, at);
      out.set(field, at + 4);
      at += 4 + field.byteLength;
    }
  }
  return out;
};
