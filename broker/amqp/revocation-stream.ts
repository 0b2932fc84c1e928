/**
 * Revocations on RabbitMQ: every revocation is a message on a stream (a
 * replicated, append-only RabbitMQ queue that readers do not consume away),
 * kept for the stream's retention. Each transport reads the stream from its
 * start when it connects, so a worker started later still knows what was
 * revoked before it, and then keeps reading it live, so a revocation reaches
 * every worker within a round trip. A transport is caught up once it reads a
 * marker it wrote itself after opening: everything before it has been seen.
 *
 * @module
 */
import { randomUUID } from "node:crypto";
import type { Channel, ConsumeMessage } from "amqplib";
import type { Revocations } from "../revocations.ts";
import type { AmqpLink } from "./amqp-link.ts";
import type { ConfirmedPublisher } from "./confirmed-publisher.ts";

/** One revocation as written on the stream. */
interface RevocationRecord {
  readonly ids?: readonly string[];
  readonly ttlMs?: number;
  readonly terminate?: boolean;
  readonly at?: number;
  readonly marker?: string;
}

/** How long opening waits to read back its own marker. */
const CATCH_UP_MS = 30_000;

export class RevocationStream {
  private channel: Channel | undefined;
  /** Revocations this transport wrote: already applied when made, so their echo is skipped. */
  private readonly own = new Set<string>();
  private readonly markers = new Map<string, () => void>();
  /** The stream offset to read from after a reconnection: the one after the last read. */
  private nextOffset: number | "first" = "first";
  private declared = false;

  constructor(
    private readonly link: AmqpLink,
    private readonly publisher: ConfirmedPublisher,
    readonly name: string,
    private readonly retention: string,
    private readonly revocations: Revocations,
    private readonly log: (message: string) => void,
  ) {}

  /** Read the stream (again, after a reconnection) and resolve once caught up with it. */
  async open(): Promise<void> {
    if (!this.declared) {
      await this.link.withChannel("declare the revocation stream", (channel) =>
        channel.assertQueue(this.name, {
          durable: true,
          arguments: {
            "x-queue-type": "stream",
            "x-max-age": this.retention,
            "x-stream-max-segment-size-bytes": 1_000_000,
          },
        }),
      );
      this.declared = true;
    }
    const connection = await this.link.current("read revocations");
    const channel = await connection.createChannel();
    channel.on("error", (error: Error) => this.log(`revocation stream "${this.name}": ${error.message}`));
    // Streams require a prefetch; acks only return credit.
    await channel.prefetch(1_000);
    this.channel = channel;
    await channel.consume(this.name, (message) => this.receive(channel, message), {
      noAck: false,
      arguments: { "x-stream-offset": this.nextOffset },
    });
    await this.catchUp();
  }

  /** Write a revocation (already applied here by the caller); resolves on RabbitMQ's confirm. */
  async publish(ids: readonly string[], ttlMs: number, terminate: boolean): Promise<void> {
    const messageId = randomUUID();
    this.own.add(messageId);
    const record: RevocationRecord = { ids, ttlMs, terminate, at: Date.now() };
    try {
      await this.publisher.send(
        "",
        this.name,
        Buffer.from(JSON.stringify(record)),
        { messageId, persistent: true, mandatory: true },
        { kind: "queue", name: this.name },
      );
    } catch (error) {
      this.own.delete(messageId);
      throw error;
    }
  }

  async close(): Promise<void> {
    const channel = this.channel;
    this.channel = undefined;
    for (const wake of this.markers.values()) wake();
    if (channel !== undefined) await channel.close().catch(() => {});
  }

  private async catchUp(): Promise<void> {
    const marker = randomUUID();
    const seen = new Promise<void>((resolve) => this.markers.set(marker, resolve));
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(
              `did not read its own marker back from the revocation stream "${this.name}" within ${CATCH_UP_MS / 1000} s`,
            ),
          ),
        CATCH_UP_MS,
      );
    });
    try {
      await this.publisher.send(
        "",
        this.name,
        Buffer.from(JSON.stringify({ marker })),
        { messageId: marker, persistent: true, mandatory: true },
        { kind: "queue", name: this.name },
      );
      await Promise.race([seen, late]);
    } finally {
      clearTimeout(timer);
      this.markers.delete(marker);
    }
  }

  private receive(channel: Channel, message: ConsumeMessage | null): void {
    if (message === null) {
      this.log(`RabbitMQ cancelled the reader of the revocation stream "${this.name}"`);
      return;
    }
    channel.ack(message);
    const offset = message.properties.headers?.["x-stream-offset"];
    if (typeof offset === "number") this.nextOffset = offset + 1;
    let record: RevocationRecord;
    try {
      record = JSON.parse(message.content.toString("utf8")) as RevocationRecord;
    } catch {
      this.log(`revocation stream "${this.name}": skipped a message that is not a revocation record`);
      return;
    }
    if (record.marker !== undefined) {
      this.markers.get(record.marker)?.();
      return;
    }
    const messageId = message.properties.messageId as string | undefined;
    if (messageId !== undefined && this.own.delete(messageId)) return;
    if (!Array.isArray(record.ids) || typeof record.ttlMs !== "number" || typeof record.at !== "number") return;
    const remaining = record.at + record.ttlMs - Date.now();
    if (remaining <= 0) return;
    for (const id of record.ids)
      if (typeof id === "string") this.revocations.revoke(id, remaining, record.terminate === true);
  }
}
