// One consumer of a Redis queue: pulls leased deliveries up to its free prefetch when woken
// or polled, renews their leases while the process lives, and settles them by script.
import type { Redis } from "ioredis";
import type { Delivery } from "../envelope.ts";
import { UnknownDeliveryError } from "../errors.ts";
import type { Consumer, DeliveryHandler } from "../transport.ts";
import { ackScript, cancelScript, fetchScript, nackScript, renewScript } from "./redis-broker-scripts.ts";
import { decodeEnvelope } from "./redis-envelope.ts";
import { text } from "./redis-script.ts";

/** What a consumer needs of its transport. */
export interface ConsumerHost {
  readonly redis: Redis;
  readonly prefix: string;
  readonly pollMs: number;
  readonly log: (message: string) => void;
  /** Send the publishes gathered so far: a delivery is settled after what was published before its settling. */
  flushPublishes(): void;
  /** The consumer is cancelled: stop waking it. */
  forget(consumer: RedisConsumer): void;
}

interface Held {
  readonly seq: string;
  /** Names this delivery of the message: a lease that ran out and went to someone else is no longer ours to settle. */
  readonly token: string;
}

/**
 * One consumer of a Redis queue. It pulls (one script call leases up to its
 * free prefetch), when told something is ready (a notification on the
 * queue's channel), when a delivery is settled, at the next eta or lease
 * deadline the queue reported, and every `pollMs` as a safety net. Every
 * delivery it holds is leased for `leaseMs` and renewed while the process
 * lives; if the process dies, the lease runs out and any other consumer of
 * the queue takes the message back.
 */
export class RedisConsumer implements Consumer {
  private readonly held = new Map<number, Held>();
  private nextTag = 1;
  private fetching: Promise<void> | undefined;
  private again = false;
  private cancelled = false;
  private wakeTimer: NodeJS.Timeout | undefined;
  private wakeAt = Number.POSITIVE_INFINITY;
  private readonly poll: NodeJS.Timeout;
  private readonly renewal: NodeJS.Timeout;
  /** Seq and token pairs acknowledged this turn, not yet sent. */
  private acks: string[] = [];
  private refillQueued = false;

  constructor(
    readonly tag: string,
    readonly queue: string,
    private readonly handler: DeliveryHandler,
    private readonly prefetch: number,
    private readonly leaseMs: number,
    private readonly host: ConsumerHost,
  ) {
    this.poll = setInterval(() => this.pump(), host.pollMs);
    this.poll.unref();
    // Three renewals per lease: one late renewal never costs a delivery.
    this.renewal = setInterval(() => this.renew(), Math.max(10, Math.floor(leaseMs / 3)));
    this.renewal.unref();
  }

  /** Lease as many ready messages as prefetch allows, unless a fetch is already under way (then once more after it). */
  pump(): void {
    if (this.cancelled) return;
    if (this.fetching !== undefined) {
      this.again = true;
      return;
    }
    const want = this.prefetch - this.held.size;
    if (want <= 0) return;
    this.again = false;
    const now = Date.now();
    const deadline = now + this.leaseMs;
    this.fetching = fetchScript
      .run(this.host.redis, [this.host.prefix, this.queue, want, now, deadline, this.tag, deadline])
      .then(
        (reply) => {
          // More is ready (or messages skipped as revoked or expired made this fetch short): fetch again.
          if (this.receive(reply as unknown[]) > 0) this.again = true;
        },
        (error: unknown) =>
          this.host.log(`redis consumer ${this.tag} of "${this.queue}": fetching failed: ${describe(error)}`),
      )
      .finally(() => {
        this.fetching = undefined;
        if (this.again) this.pump();
      });
  }

  /** Hand the fetched deliveries to the handler; returns how many ready messages the queue still holds. */
  private receive(reply: unknown[]): number {
    this.schedule(Number(text(reply[0])));
    for (let i = 2; i + 2 < reply.length; i += 3) {
      const seq = text(reply[i]);
      const deliveryCount = Number(reply[i + 1]);
      const tag = this.nextTag++;
      this.held.set(tag, { seq, token: `${this.tag}:${deliveryCount}` });
      // Cancelled while the fetch was in flight: held, so cancel() returns it to the queue.
      if (this.cancelled) continue;
      let delivery: Delivery;
      try {
        delivery = {
          envelope: decodeEnvelope(reply[i + 2] as Buffer),
          queue: this.queue,
          deliveryTag: tag,
          redelivered: deliveryCount > 1,
          deliveryCount,
        };
      } catch (error) {
        this.nack(tag, { requeue: false, reason: `not an envelope: ${describe(error)}` });
        continue;
      }
      try {
        this.handler(delivery);
      } catch (error) {
        this.host.log(
          `redis consumer ${this.tag} of "${this.queue}": the handler threw, requeueing: ${describe(error)}`,
        );
        if (this.held.has(tag)) this.nack(tag, { requeue: true });
      }
    }
    return Number(reply[1]);
  }

  /** Pull again at `at` (the queue's next eta or lease deadline), unless already due sooner. */
  private schedule(at: number): void {
    if (at < 0 || at >= this.wakeAt || this.cancelled) return;
    if (this.wakeTimer !== undefined) clearTimeout(this.wakeTimer);
    this.wakeAt = at;
    this.wakeTimer = setTimeout(
      () => {
        this.wakeTimer = undefined;
        this.wakeAt = Number.POSITIVE_INFINITY;
        this.pump();
      },
      Math.max(1, at - Date.now() + 1),
    );
    this.wakeTimer.unref();
  }

  ack(deliveryTag: number): void {
    const { seq, token } = this.take("ack", deliveryTag);
    // Acks of one turn go out as one script call; the transport flushes them before any other command of its own.
    if (this.acks.length === 0) queueMicrotask(this.flushAcks);
    this.acks.push(seq, token);
    this.refill();
  }

  /** Send the acks gathered so far (in one script call), ahead of whatever is sent next. */
  readonly flushAcks = (): void => {
    if (this.acks.length === 0) return;
    this.host.flushPublishes();
    const pairs = this.acks;
    this.acks = [];
    ackScript.run(this.host.redis, [this.host.prefix, this.queue, ...pairs]).catch((error: unknown) => {
      this.host.log(
        `redis consumer ${this.tag} of "${this.queue}": ack failed (the messages will be redelivered when their leases run out): ${describe(error)}`,
      );
    });
  };

  /** Pull again once half the prefetch is free (or at once with the first free slot of a small prefetch), in one fetch per turn. */
  private refill(): void {
    if (this.refillQueued || this.held.size > this.prefetch >> 1) return;
    this.refillQueued = true;
    queueMicrotask(() => {
      this.refillQueued = false;
      this.flushAcks();
      this.pump();
    });
  }

  nack(deliveryTag: number, options: { readonly requeue: boolean; readonly reason?: string }): void {
    const { seq, token } = this.take("nack", deliveryTag);
    this.flushAcks();
    this.host.flushPublishes();
    nackScript
      .run(this.host.redis, [
        this.host.prefix,
        this.queue,
        seq,
        token,
        options.requeue ? "1" : "0",
        options.reason ?? "rejected by consumer",
        Date.now(),
      ])
      .catch((error: unknown) => {
        this.host.log(
          `redis consumer ${this.tag} of "${this.queue}": nack failed (the message will be redelivered when its lease runs out): ${describe(error)}`,
        );
      });
    this.refill();
  }

  /** Stop pulling and return every delivery still held to the queue. */
  async cancel(): Promise<void> {
    if (this.cancelled) return;
    this.cancelled = true;
    clearInterval(this.poll);
    clearInterval(this.renewal);
    if (this.wakeTimer !== undefined) clearTimeout(this.wakeTimer);
    this.host.forget(this);
    this.flushAcks();
    await this.fetching;
    const pairs: string[] = [];
    for (const { seq, token } of this.held.values()) pairs.push(seq, token);
    this.held.clear();
    await cancelScript.run(this.host.redis, [this.host.prefix, this.queue, this.tag, Date.now(), ...pairs]);
  }

  /** Extend the lease of every delivery still held (however long its task runs) and the consumer's registration. */
  private renew(): void {
    const pairs: string[] = [];
    for (const { seq, token } of this.held.values()) pairs.push(seq, token);
    const deadline = Date.now() + this.leaseMs;
    renewScript
      .run(this.host.redis, [this.host.prefix, this.queue, this.tag, deadline, deadline, ...pairs])
      .catch((error: unknown) => {
        this.host.log(`redis consumer ${this.tag} of "${this.queue}": renewing leases failed: ${describe(error)}`);
      });
  }

  private take(operation: "ack" | "nack", deliveryTag: number): Held {
    const held = this.held.get(deliveryTag);
    if (held !== undefined) {
      this.held.delete(deliveryTag);
      return held;
    }
    const reason =
      !Number.isInteger(deliveryTag) || deliveryTag < 1 || deliveryTag >= this.nextTag
        ? "no delivery with this tag was ever issued to this consumer"
        : this.cancelled
          ? "the consumer was cancelled, which returned its unacknowledged deliveries to the queue for redelivery"
          : "it was already acknowledged or rejected (settling a delivery twice is a bug in the caller)";
    throw new UnknownDeliveryError({ operation, deliveryTag, consumer: this.tag, queue: this.queue, reason });
  }
}

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error));
