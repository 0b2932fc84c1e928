/**
 * Acknowledgements of one channel, sent together: every ack made in an
 * event-loop turn goes out at the end of it, as one `basic.ack` with
 * `multiple` for those at or below the highest tag under which every
 * delivery is settled, plus one plain ack for each tag above it. Workers finish tasks roughly in
 * delivery order, so most turns send one frame instead of one per task, and
 * RabbitMQ (usually the busier side) handles one ack instead of many.
 * A multiple ack never covers a delivery still held: only tags that are
 * settled (acked, or nacked one by one through `settled`) move the floor.
 *
 * @module
 */
import type { Channel, Message } from "amqplib";

export class AckBatch {
  /** Every tag up to this one is settled. */
  private floor = 0;
  /** Settled tags above the floor. */
  private readonly above = new Set<number>();
  private pending: number[] = [];
  private scheduled = false;

  constructor(readonly channel: Channel) {}

  /** Acknowledge `tag` (RabbitMQ's delivery tag on this channel) at the end of this turn. */
  ack(tag: number): void {
    this.pending.push(tag);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  /** Record that `tag` was settled another way (a nack), so the floor can pass it. */
  settled(tag: number): void {
    this.above.add(tag);
    this.advance();
  }

  /** Send what is pending now (before the channel closes). */
  flush(): void {
    this.scheduled = false;
    const pending = this.pending;
    if (pending.length === 0) return;
    this.pending = [];
    for (const tag of pending) this.above.add(tag);
    this.advance();
    // RabbitMQ refuses (and closes the channel over) a multiple ack whose own tag is no longer outstanding,
    // so it names the highest tag acked in this turn that the floor covers, never the floor itself.
    let covered = 0;
    for (const tag of pending) if (tag <= this.floor && tag > covered) covered = tag;
    try {
      if (covered > 0) this.channel.ack(tagged(covered), true);
      for (const tag of pending) if (tag > this.floor) this.channel.ack(tagged(tag));
    } catch {
      // The channel closed meanwhile: RabbitMQ requeues what it held, so there is nothing left to acknowledge.
    }
  }

  private advance(): void {
    while (this.above.delete(this.floor + 1)) this.floor++;
  }
}

/** amqplib reads only the delivery tag of the message it acknowledges. */
const tagged = (deliveryTag: number): Message => ({ fields: { deliveryTag } }) as unknown as Message;
