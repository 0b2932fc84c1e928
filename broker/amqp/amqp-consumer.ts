/**
 * One consumer of a RabbitMQ queue: a channel of its own with `basic.qos`
 * set to the prefetch, manual acknowledgements, and the contract's delivery
 * facts. RabbitMQ's classic queues keep no delivery count, so this consumer
 * keeps it in the message: a requeue republishes the message with the number
 * of deliveries so far (then acks the original), and a message RabbitMQ
 * redelivers after a consumer died is counted the same way before anyone
 * runs it. That is what makes `maxDeliveries` stop a message that crashes
 * every worker it reaches. Revoked messages are dropped and expired ones
 * dead-lettered here, before the handler sees them.
 *
 * @module
 */
import type { Channel, ConsumeMessage } from "amqplib";
import type { Delivery, Envelope } from "../envelope.ts";
import { UnknownDeliveryError } from "../errors.ts";
import type { Consumer, DeliveryHandler } from "../transport.ts";
import { AckBatch } from "./ack-batch.ts";
import { envelopeOf, Header } from "./amqp-message.ts";
import type { AmqpLink } from "./amqp-link.ts";

/** What a consumer needs from its transport. */
export interface ConsumerHost {
  readonly link: AmqpLink;
  isRevoked(id: string): boolean;
  /** The dead-letter queue and delivery limit of `queue`. */
  settingsOf(queue: string): { readonly deadLetterQueue: string; readonly maxDeliveries: number };
  /** Publish `envelope` to `queue`'s dead-letter queue with `reason`; resolves on the confirm. */
  deadLetter(envelope: Envelope, queue: string, reason: string): Promise<void>;
  /** Publish `envelope` to the back of `queue`, recording `deliveries` made so far; resolves on the confirm. */
  requeue(envelope: Envelope, queue: string, deliveries: number): Promise<void>;
  /** Whether the queues count deliveries themselves (quorum queues): a requeue is then a plain nack. */
  readonly countedByQueue: boolean;
  /** Count deliveries held by this process's consumers (for `stats`). */
  held(queue: string, change: 1 | -1): void;
  /** The consumer was cancelled: it is not to be reopened after a reconnection. */
  cancelled(consumer: AmqpConsumer): void;
  /** Whether `queue` is paused (QueueAdmin.pause): its consumers receive nothing until it is resumed. */
  isPaused(queue: string): boolean;
  /** When `queue` was last purged: a delayed message sent before then is dropped when it comes due. */
  purgedAt(queue: string): number | undefined;
  log(message: string): void;
}

interface Held {
  readonly message: ConsumeMessage;
  readonly channel: Channel;
  readonly deliveryCount: number;
  readonly envelope: Envelope;
}

export class AmqpConsumer implements Consumer {
  private channel: Channel | undefined;
  private consumerTag = "";
  private cancelled = false;
  private started = false;
  private early: [Channel, ConsumeMessage][] = [];
  private readonly deliveries = new Map<number, Held>();
  /** The acks of the current channel, sent together at the end of each turn. */
  private acks: AckBatch | undefined;
  /** Copies being published (requeues, dead letters) whose originals are acked once they are confirmed. */
  private readonly moving = new Set<Promise<void>>();
  private nextTag = 1;
  /** Tags below this were issued on a channel that is gone: settling one is a no-op (RabbitMQ requeued it). */
  private firstLiveTag = 1;

  constructor(
    readonly tag: string,
    readonly queue: string,
    private readonly handler: DeliveryHandler,
    private readonly prefetch: number,
    private readonly host: ConsumerHost,
  ) {}

  /** Open the consumer on the current connection (again, after a reconnection). */
  async open(): Promise<void> {
    if (this.cancelled) return;
    this.forgetHeld();
    const connection = await this.host.link.current("consume");
    const channel = await connection.createChannel();
    channel.on("error", (error: Error) =>
      this.host.log(`consumer of "${this.queue}": channel error: ${error.message}`),
    );
    let consuming = false;
    channel.on("close", () => {
      if (this.channel !== channel || this.cancelled) return;
      this.channel = undefined;
      this.forgetHeld();
      // A lost connection closes its channels first: its own recovery reopens every consumer. A lone
      // channel that was consuming, closed on a connection that stays up, is reopened here (one that
      // failed to start consuming is the caller's error, not something to retry).
      if (!consuming) return;
      const generation = this.host.link.generation;
      setTimeout(() => {
        if (
          this.cancelled ||
          this.channel !== undefined ||
          !this.host.link.connected ||
          this.host.link.generation !== generation
        )
          return;
        this.open().catch((error) => this.host.log(`consumer of "${this.queue}" could not reopen: ${String(error)}`));
      }, REOPEN_DELAY_MS);
    });
    await channel.prefetch(this.prefetch);
    // Set before consuming: deliveries can arrive before consume() resolves, and are settled on this channel.
    this.channel = channel;
    this.consumerTag = "";
    try {
      // A paused queue's consumer keeps its channel and starts consuming when the queue is resumed.
      if (!this.host.isPaused(this.queue)) {
        await this.consumeOn(channel);
        // Paused while the consume was under way: paused() found nothing to cancel yet.
        if (this.host.isPaused(this.queue)) await this.paused(true);
      }
      consuming = true;
    } catch (error) {
      if (this.channel === channel) this.channel = undefined;
      throw error;
    }
  }

  private async consumeOn(channel: Channel): Promise<void> {
    const reply = await channel.consume(this.queue, (message) => this.onMessage(channel, message), { noAck: false });
    this.consumerTag = reply.consumerTag;
  }

  /**
   * The queue was paused (stop: RabbitMQ delivers nothing more; what it
   * delivered is still settled on this channel) or resumed (consume again).
   */
  async paused(paused: boolean): Promise<void> {
    const channel = this.channel;
    if (this.cancelled || channel === undefined) return;
    if (paused && this.consumerTag !== "") {
      const tag = this.consumerTag;
      this.consumerTag = "";
      await channel.cancel(tag);
    } else if (!paused && this.consumerTag === "") {
      await this.consumeOn(channel);
    }
  }

  /** Let deliveries through: none reaches the handler before consume() has resolved. */
  start(): void {
    this.started = true;
    const early = this.early;
    this.early = [];
    for (const [channel, message] of early) this.receive(channel, message);
  }

  ack(deliveryTag: number): void {
    const held = this.take("ack", deliveryTag);
    if (held !== undefined) this.ackOn(held.channel, held.message);
  }

  nack(deliveryTag: number, options: { readonly requeue: boolean; readonly reason?: string }): void {
    const held = this.take("nack", deliveryTag);
    if (held === undefined) return;
    const { maxDeliveries } = this.host.settingsOf(this.queue);
    if (!options.requeue)
      return this.settleBy(held, this.host.deadLetter(held.envelope, this.queue, options.reason ?? "rejected"));
    if (held.deliveryCount >= maxDeliveries)
      return this.settleBy(
        held,
        this.host.deadLetter(held.envelope, this.queue, tooManyDeliveries(held.deliveryCount, maxDeliveries)),
      );
    if (this.host.countedByQueue) {
      this.requeueOn(held.channel, held.message);
      return;
    }
    this.settleBy(held, this.host.requeue(held.envelope, this.queue, held.deliveryCount));
  }

  async cancel(): Promise<void> {
    if (this.cancelled) return;
    this.cancelled = true;
    this.host.cancelled(this);
    if (this.channel !== undefined && this.consumerTag !== "")
      await this.channel.cancel(this.consumerTag).catch(() => {});
    // Let copies in flight be confirmed and their originals acked first, or closing would requeue those too.
    await Promise.allSettled([...this.moving]);
    const channel = this.channel;
    this.acks?.flush();
    this.channel = undefined;
    this.forgetHeld();
    // Closing the channel hands every unacknowledged delivery back to the queue.
    if (channel !== undefined) await channel.close().catch(() => {});
  }

  private onMessage(channel: Channel, message: ConsumeMessage | null): void {
    if (this.cancelled) return; // closing the channel hands it back
    if (message === null) {
      if (!this.cancelled) this.host.log(`RabbitMQ cancelled the consumer of "${this.queue}" (the queue was deleted?)`);
      return;
    }
    if (!this.started) this.early.push([channel, message]);
    else this.receive(channel, message);
  }

  private receive(channel: Channel, message: ConsumeMessage): void {
    const { envelope, previousDeliveries, countedByQueue } = envelopeOf(message);
    if (message.fields.redelivered && !countedByQueue && !this.host.countedByQueue) {
      // RabbitMQ gives it back after a consumer went away without acking: count that delivery before anyone runs it.
      const deliveries = previousDeliveries + 1;
      const { maxDeliveries } = this.host.settingsOf(this.queue);
      const next =
        deliveries >= maxDeliveries
          ? this.host.deadLetter(envelope, this.queue, tooManyDeliveries(deliveries, maxDeliveries))
          : this.host.requeue(envelope, this.queue, deliveries);
      return this.settleBy({ message, channel }, next, false);
    }
    if (this.host.isRevoked(envelope.id)) return this.ackOn(channel, message);
    const sentAt = message.properties.headers?.[Header.sentAt];
    if (typeof sentAt === "number" && sentAt <= (this.host.purgedAt(this.queue) ?? Number.NEGATIVE_INFINITY))
      return this.ackOn(channel, message); // delayed past a purge of its queue
    if (envelope.expires !== undefined && envelope.expires <= Date.now()) {
      return this.settleBy({ message, channel }, this.host.deadLetter(envelope, this.queue, "expired"), false);
    }
    const deliveryTag = this.nextTag++;
    const deliveryCount = previousDeliveries + 1;
    this.deliveries.set(deliveryTag, { message, channel, deliveryCount, envelope });
    this.host.held(this.queue, 1);
    const delivery: Delivery = {
      envelope,
      queue: this.queue,
      deliveryTag,
      redelivered: deliveryCount > 1,
      deliveryCount,
    };
    this.handler(delivery);
  }

  /** Ack the original once its copy (requeued or dead-lettered) is confirmed; if the copy failed, give the original back. */
  private settleBy(held: Pick<Held, "message" | "channel">, copied: Promise<void>, logFailure = true): void {
    const settled = copied.then(
      () => {
        this.ackOn(held.channel, held.message);
      },
      (error) => {
        if (logFailure || !(error instanceof Error && /closed/.test(error.message))) {
          this.host.log(
            `consumer of "${this.queue}": could not move message ${String(held.message.properties.messageId)}: ${String(error)}; it stays in the queue`,
          );
        }
        this.requeueOn(held.channel, held.message);
      },
    );
    this.moving.add(settled);
    void settled.finally(() => this.moving.delete(settled));
  }

  private take(operation: "ack" | "nack", deliveryTag: number): Held | undefined {
    const held = this.deliveries.get(deliveryTag);
    if (held !== undefined) {
      this.deliveries.delete(deliveryTag);
      this.host.held(this.queue, -1);
      return held;
    }
    if (Number.isInteger(deliveryTag) && deliveryTag > 0 && deliveryTag < this.firstLiveTag) return undefined;
    const reason =
      deliveryTag >= 1 && deliveryTag < this.nextTag ? "it was already settled" : "no such delivery was made";
    throw new UnknownDeliveryError({ operation, deliveryTag, consumer: this.tag, queue: this.queue, reason });
  }

  private live(channel: Channel): boolean {
    return channel === this.channel;
  }

  private ackOn(channel: Channel, message: ConsumeMessage): void {
    if (this.live(channel)) this.acksOf(channel).ack(message.fields.deliveryTag);
  }

  private requeueOn(channel: Channel, message: ConsumeMessage): void {
    if (!this.live(channel)) return;
    this.acksOf(channel).settled(message.fields.deliveryTag);
    channel.nack(message, false, true);
  }

  private acksOf(channel: Channel): AckBatch {
    let batch = this.acks;
    if (batch === undefined || batch.channel !== channel) this.acks = batch = new AckBatch(channel);
    return batch;
  }

  /** Deliveries of a lost or closed channel: RabbitMQ requeues them, so settling them later does nothing. */
  private forgetHeld(): void {
    for (let i = 0; i < this.deliveries.size; i++) this.host.held(this.queue, -1);
    this.deliveries.clear();
    this.early = [];
    this.firstLiveTag = this.nextTag;
  }
}

/** Wait before reopening a consumer whose channel alone was closed, so a persistent refusal cannot spin. */
const REOPEN_DELAY_MS = 100;

const tooManyDeliveries = (deliveries: number, maxDeliveries: number): string =>
  `delivered ${deliveries} times without an acknowledgement (maxDeliveries ${maxDeliveries})`;
