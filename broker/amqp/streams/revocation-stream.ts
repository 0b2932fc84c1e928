/**
 * Revocations on RabbitMQ: every revocation is a record on a stream
 * (record-stream.ts), kept for the stream's retention. Each transport reads
 * the stream from its start when it connects, so a worker started later
 * still knows what was revoked before it, and then keeps reading it live, so
 * a revocation reaches every worker within a round trip.
 *
 * @module
 */
import type { Revocations } from "../../revocations.ts";
import type { AmqpLink } from "../amqp-link.ts";
import type { ConfirmedPublisher } from "../confirmed-publisher.ts";
import { RecordStream } from "./record-stream.ts";

export class RevocationStream {
  private readonly stream: RecordStream;

  constructor(
    link: AmqpLink,
    publisher: ConfirmedPublisher,
    readonly name: string,
    retention: string,
    private readonly revocations: Revocations,
    log: (message: string) => void,
  ) {
    this.stream = new RecordStream(
      link,
      publisher,
      name,
      "revocation stream",
      { "x-max-age": retention },
      (record, own) => {
        // A revocation this transport wrote was applied when it was made.
        if (!own) this.applyRecord(record);
      },
      log,
    );
  }

  /** Read the stream (again, after a reconnection) and resolve once caught up with it. */
  open(): Promise<void> {
    return this.stream.open();
  }

  /** Write a revocation (already applied here by the caller); resolves on RabbitMQ's confirm. */
  publish(ids: readonly string[], ttlMs: number, terminate: boolean): Promise<void> {
    return this.stream.append({ ids, ttlMs, terminate, at: Date.now() });
  }

  close(): Promise<void> {
    return this.stream.close();
  }

  private applyRecord(record: Record<string, unknown>): void {
    const { ids, ttlMs, terminate, at } = record;
    if (!Array.isArray(ids) || typeof ttlMs !== "number" || typeof at !== "number") return;
    const remaining = at + ttlMs - Date.now();
    if (remaining <= 0) return;
    for (const id of ids) if (typeof id === "string") this.revocations.revoke(id, remaining, terminate === true);
  }
}
