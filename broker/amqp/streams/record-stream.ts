/**
 * State every transport on a RabbitMQ shares, kept as JSON records on a
 * stream (a replicated, append-only RabbitMQ queue that readers do not
 * consume away). Each transport reads the stream from its start when it
 * connects, so one started later knows what was written before it, and
 * then keeps reading it live, so a record reaches every transport within a
 * round trip. A transport is caught up once it reads back a marker it wrote
 * itself after opening: everything before it has been seen. Revocations
 * (revocation-stream.ts) and the queue registry (queue-registry.ts) are
 * kept this way.
 *
 * @module
 */
import { randomUUID } from "node:crypto";
import type { Channel, ConsumeMessage } from "amqplib";
import type { AmqpLink } from "../amqp-link.ts";
import type { ConfirmedPublisher } from "../confirmed-publisher.ts";

/** How long opening waits to read back its own marker. */
const CATCH_UP_MS = 30_000;

/** What the stream's reader is told of each record: `own` when this transport wrote it (and applied it already). */
export type RecordListener = (record: Record<string, unknown>, own: boolean) => void;

export class RecordStream {
  private channel: Channel | undefined;
  /** Records this transport wrote, by message id, until they are read back. */
  private readonly own = new Set<string>();
  private readonly markers = new Map<string, () => void>();
  /** The stream offset to read from after a reconnection: the one after the last read. */
  private nextOffset: number | "first" = "first";
  private declared = false;

  constructor(
    private readonly link: AmqpLink,
    private readonly publisher: ConfirmedPublisher,
    /** The stream's name, and what it is for in log lines ("revocation stream"). */
    readonly name: string,
    private readonly what: string,
    private readonly streamArguments: Record<string, unknown>,
    private readonly apply: RecordListener,
    private readonly log: (message: string) => void,
  ) {}

  /** Read the stream (again, after a reconnection) and resolve once caught up with it. */
  async open(): Promise<void> {
    if (!this.declared) {
      await this.link.withChannel(`declare the ${this.what}`, (channel) =>
        channel.assertQueue(this.name, {
          durable: true,
          arguments: {
            "x-queue-type": "stream",
            "x-stream-max-segment-size-bytes": 1_000_000,
            ...this.streamArguments,
          },
        }),
      );
      this.declared = true;
    }
    const connection = await this.link.current(`read the ${this.what}`);
    const channel = await connection.createChannel();
    channel.on("error", (error: Error) => this.log(`${this.what} "${this.name}": ${error.message}`));
    // Streams require a prefetch; acks only return credit.
    await channel.prefetch(1_000);
    this.channel = channel;
    await channel.consume(this.name, (message) => this.receive(channel, message), {
      noAck: false,
      arguments: { "x-stream-offset": this.nextOffset },
    });
    await this.catchUp();
  }

  /** Write a record (already applied here by the caller); resolves on RabbitMQ's confirm. */
  async append(record: Record<string, unknown>): Promise<void> {
    const messageId = randomUUID();
    this.own.add(messageId);
    try {
      await this.send(record, messageId);
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

  private send(record: Record<string, unknown>, messageId: string): Promise<void> {
    return this.publisher.send(
      "",
      this.name,
      Buffer.from(JSON.stringify(record)),
      { messageId, persistent: true, mandatory: true },
      { kind: "queue", name: this.name },
    );
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
              `did not read its own marker back from the ${this.what} "${this.name}" within ${CATCH_UP_MS / 1000} s`,
            ),
          ),
        CATCH_UP_MS,
      );
    });
    try {
      await this.send({ marker }, marker);
      await Promise.race([seen, late]);
    } finally {
      clearTimeout(timer);
      this.markers.delete(marker);
    }
  }

  private receive(channel: Channel, message: ConsumeMessage | null): void {
    if (message === null) {
      this.log(`RabbitMQ cancelled the reader of the ${this.what} "${this.name}"`);
      return;
    }
    channel.ack(message);
    const offset = message.properties.headers?.["x-stream-offset"];
    if (typeof offset === "number") this.nextOffset = offset + 1;
    let record: unknown;
    try {
      record = JSON.parse(message.content.toString("utf8"));
    } catch {
      record = undefined;
    }
    if (record === null || typeof record !== "object" || Array.isArray(record)) {
      this.log(`${this.what} "${this.name}": skipped a message that is not a record`);
      return;
    }
    const fields = record as Record<string, unknown>;
    if (typeof fields.marker === "string") {
      this.markers.get(fields.marker)?.();
      return;
    }
    const messageId = message.properties.messageId as string | undefined;
    this.apply(fields, messageId !== undefined && this.own.delete(messageId));
  }
}
