// A worker's rate gate: deliveries of rate-limited tasks wait here for a
// token, outside the worker's concurrency count, so they never hold a slot
// that a task of another type could use. A token is taken only when the
// worker has a free slot, and the task starts at once: a token taken is an
// execution started, which is what keeps starts under the limit.
//
// Deliveries held here still count against the consumer's prefetch, so the
// gate holds at most `maxHeld` (half the prefetch by default). Past that, a
// limited delivery is handed back to its queue with an eta at about the time
// its token is due (acknowledged once the copy is confirmed): the messages
// behind it in the queue keep flowing. A hand-back is not a retry (the retry
// count is unchanged) and not a failure.
import type { Delivery } from "../../broker/envelope.ts";
import type { Consumer, Transport } from "../../broker/transport.ts";
import type { Codec } from "../../broker/codec.ts";
import { clockOf, nowOf, type Clock, type ClockTimer } from "../../broker/clock.ts";
import { BucketTable } from "./bucket-table.ts";
import { MAP_TASK, STARMAP_TASK } from "../../dsl/combinators.ts";
import { toErrorInfo } from "../errors.ts";
import type { RateLimit } from "./rate-setting.ts";
import type { RateLimitTable } from "./limits-in-force.ts";
import { fromEnvelope } from "../task-message.ts";
import type { Grant } from "./token-bucket.ts";
import { LocalTokenSource, type TokenSource } from "./token-source.ts";

/**
 * What the gate needs of its worker: its transport and codec, free slots, and ways to run or settle a delivery.
 */
export interface GateHost {
  readonly name: string;
  readonly transport: Transport;
  readonly codec: Codec;
  /** Slots free right now (0 unless the worker is running). */
  freeSlots(): number;
  /** Run the delivery now, in a slot. */
  start(delivery: Delivery, consumer: Consumer): void;
  /** Run the delivery as the worker would without a limit (its limit was removed while it waited). */
  admit(delivery: Delivery, consumer: Consumer): void;
  /** Acknowledge (or requeue) through the worker, which knows whether the consumer is still live. */
  settle(consumer: Consumer, delivery: Delivery, how: "ack" | "requeue"): void;
  log(message: string): void;
}

export interface RateGateOptions {
  readonly table: RateLimitTable;
  /** Where global-scope buckets live (this process, or the broker node). */
  readonly global: TokenSource;
  /** This worker's own buckets (worker scope). Default: new ones in this process. */
  readonly local?: TokenSource;
  /** Deliveries held at most (the rest are handed back with an eta). */
  readonly maxHeld: number;
  /**
   * A delivery handed back is due again at most this far ahead, even when its
   * token is further away: a raised limit reaches it within this time. Default 5,000 ms.
   */
  readonly maxHandBackMs?: number;
  /** The clock for tokens due and hand-back etas. Default the system clock. */
  readonly clock?: Clock;
  /**
   * What a keyed limit's key becomes before it is used (and sent to a node's
   * shared buckets): in signed mode with encryption a keyed hash, so nothing
   * derived from a task's arguments leaves the worker in the clear. Default: the key itself.
   */
  readonly keyDigest?: (task: string, key: string) => string;
  /** Only the clock's time (ms). Default `clock.now`. */
  readonly now?: () => number;
}

interface Held {
  readonly delivery: Delivery;
  readonly consumer: Consumer;
}

/** The deliveries waiting for one bucket, in arrival order. */
interface Line {
  readonly id: string;
  readonly task: string;
  readonly key: string | undefined;
  readonly items: Held[];
  head: number;
  timer: ClockTimer | undefined;
  asking: boolean;
}

export class RateGate {
  private readonly lines = new Map<string, Line>();
  /** Per bucket: the eta the last delivery handed back was given (the next goes one token later). */
  private readonly handedBackUntil = new Map<string, number>();
  /** This worker's own buckets (worker scope). */
  private readonly local: TokenSource;
  private readonly now: () => number;
  private readonly clock: Clock;
  private heldCount = 0;
  private pumping = false;
  private pumpAgain = false;
  private stopped = false;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly options: RateGateOptions,
    private readonly host: GateHost,
  ) {
    this.clock = clockOf(options);
    this.now = nowOf(this.clock);
    this.local = options.local ?? new LocalTokenSource(new BucketTable({ now: this.now }));
    this.unsubscribe = options.table.onChange((task) => this.changed(task));
  }

  /** A task's limit changed: its lines stop waiting for a token due under the old limit and ask again. */
  private changed(task: string): void {
    this.handedBackUntil.clear();
    for (const line of this.lines.values()) {
      if (line.task !== task || line.timer === undefined) continue;
      this.clock.clearTimeout(line.timer);
      line.timer = undefined;
    }
    this.pump();
  }

  /** Deliveries waiting for a token. */
  get held(): number {
    return this.heldCount;
  }

  /** The deliveries held for a token, in each line's order (for `inspect`). */
  *heldDeliveries(): IterableIterator<Delivery> {
    for (const line of this.lines.values()) {
      for (let i = line.head; i < line.items.length; i++) yield line.items[i].delivery;
    }
  }

  /**
   * Take `delivery` in if its task is rate-limited (then it runs or is handed
   * back later, through the host); false if it is not limited and the worker
   * runs it as usual. On every delivery's path: a look-up when no limit applies.
   */
  hold(delivery: Delivery, consumer: Consumer): boolean {
    if (this.stopped || this.options.table.size === 0) return false;
    const { headers, id } = delivery.envelope;
    let task = headers.task;
    if (task === MAP_TASK || task === STARMAP_TASK) task = headers.target;
    if (typeof task !== "string") return false;
    const limit = this.options.table.get(task);
    // A revoked task needs no token: the runner records it REVOKED at once.
    if (limit === undefined || this.host.transport.isRevoked(id)) return false;
    const key = limit.key === undefined ? undefined : this.keyOf(task, limit, delivery);
    const lineId = key === undefined ? task : `${task}\u0000${key}`;
    if (this.heldCount >= this.options.maxHeld) {
      this.handBack(lineId, limit, delivery, consumer);
      return true;
    }
    let line = this.lines.get(lineId);
    if (line === undefined) {
      line = { id: lineId, task, key, items: [], head: 0, timer: undefined, asking: false };
      this.lines.set(lineId, line);
    }
    line.items.push({ delivery, consumer });
    this.heldCount++;
    this.pump();
    return true;
  }

  /** Start what may start: called when a delivery is held, when a slot frees, and when a token is due. */
  pump(): void {
    if (this.heldCount === 0 || this.stopped) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        for (const line of this.lines.values()) {
          this.pumpLine(line);
          if (this.host.freeSlots() === 0) break;
        }
      } while (this.pumpAgain && !this.stopped);
    } finally {
      this.pumping = false;
    }
  }

  /** Forget every held delivery (the worker's consumers are being cancelled: the broker takes them back). */
  stop(): void {
    this.stopped = true;
    this.unsubscribe();
    for (const line of this.lines.values()) if (line.timer !== undefined) this.clock.clearTimeout(line.timer);
    this.lines.clear();
    this.heldCount = 0;
  }

  private pumpLine(line: Line): void {
    while (line.head < line.items.length && line.timer === undefined && !line.asking && !this.stopped) {
      const free = this.host.freeSlots();
      if (free === 0) return;
      const limit = this.options.table.get(line.task);
      if (limit === undefined) return this.release(line);
      const want = Math.min(free, line.items.length - line.head);
      const source = limit.scope === "worker" ? this.local : this.options.global;
      const grant = source.take(line.task, line.key, limit, want);
      if (grant instanceof Promise) {
        line.asking = true;
        grant.then(
          (answer) => {
            line.asking = false;
            if (this.stopped) return source.refund(line.task, line.key, answer.granted);
            if (this.granted(line, answer, source)) this.pump();
          },
          (error: unknown) => {
            line.asking = false;
            this.host.log(
              `${this.host.name}: rate limit of '${line.task}': ${toErrorInfo(error).message}; asking again in a second`,
            );
            this.wait(line, 1_000);
          },
        );
        return;
      }
      if (!this.granted(line, grant, source)) return;
    }
  }

  /** Start as many as were granted (giving back what cannot start now); false when the line must wait. */
  private granted(line: Line, grant: Grant, source: TokenSource): boolean {
    let tokens = grant.granted;
    while (tokens > 0 && line.head < line.items.length && this.host.freeSlots() > 0 && !this.stopped) {
      tokens--;
      const { delivery, consumer } = line.items[line.head++];
      this.heldCount--;
      this.host.start(delivery, consumer);
    }
    if (tokens > 0) source.refund(line.task, line.key, tokens);
    if (tokens < grant.granted && line.head < line.items.length && this.lines.get(line.id) === line) {
      // Served: to the back, so that when slots are scarce every key's line gets its turn.
      this.lines.delete(line.id);
      this.lines.set(line.id, line);
    }
    this.tidy(line);
    if (line.head >= line.items.length) return false;
    if (grant.waitMs > 0) {
      this.wait(line, grant.waitMs);
      return false;
    }
    return true;
  }

  private wait(line: Line, ms: number): void {
    if (this.stopped) return;
    line.timer = this.clock.setTimeout(() => {
      line.timer = undefined;
      this.tidy(line);
      this.pump();
    }, ms);
  }

  /** The task's limit was removed while its deliveries waited: they run as any other now. */
  private release(line: Line): void {
    const items = line.items.slice(line.head);
    this.heldCount -= items.length;
    line.head = line.items.length;
    this.tidy(line);
    for (const { delivery, consumer } of items) this.host.admit(delivery, consumer);
  }

  private tidy(line: Line): void {
    if (line.head < line.items.length) {
      // Drop the started prefix once it is most of the array.
      if (line.head > 64 && line.head * 2 > line.items.length) {
        line.items.splice(0, line.head);
        line.head = 0;
      }
      return;
    }
    if (line.timer === undefined && !line.asking) this.lines.delete(line.id);
    line.items.length = 0;
    line.head = 0;
  }

  /**
   * Give the delivery back to its queue, due when its token should be: one
   * token's time after the last one handed back for this bucket, and no
   * sooner than the deliveries held here ahead of it need. Published to the
   * queue itself (not its exchange, which might route it to other queues
   * too), then acknowledged; if the copy cannot be published, the delivery
   * goes back to the queue as it was.
   */
  private handBack(lineId: string, limit: RateLimit, delivery: Delivery, consumer: Consumer): void {
    const now = this.now();
    const tokenMs = limit.periodMs / limit.count;
    const line = this.lines.get(lineId);
    const ahead = line === undefined ? 0 : line.items.length - line.head;
    const due = Math.ceil(Math.max(this.handedBackUntil.get(lineId) ?? 0, now + ahead * tokenMs) + tokenMs);
    const eta = Math.min(due, now + (this.options.maxHandBackMs ?? 1_000));
    this.handedBackUntil.set(lineId, eta);
    if (this.handedBackUntil.size > 1_024)
      for (const [id, until] of this.handedBackUntil) if (until < now) this.handedBackUntil.delete(id);
    const copy = { ...delivery.envelope, exchange: "", routingKey: delivery.queue, eta };
    this.host.transport.publish(copy, { mandatory: true }).then(
      () => this.host.settle(consumer, delivery, "ack"),
      (error: unknown) => {
        this.host.log(
          `${this.host.name}: could not hand rate-limited task ${delivery.envelope.id} back to its queue (${toErrorInfo(error).message}); requeued`,
        );
        this.host.settle(consumer, delivery, "requeue");
      },
    );
  }

  /** The bucket key of a keyed task; a key function that throws or returns no string is reported, and the task shares the unkeyed bucket. */
  private keyOf(task: string, limit: RateLimit, delivery: Delivery): string | undefined {
    try {
      const message = fromEnvelope(delivery.envelope, this.host.codec);
      const key: unknown = (limit.key as (...args: readonly unknown[]) => unknown)(...message.args);
      if (typeof key === "string")
        return this.options.keyDigest === undefined ? key : this.options.keyDigest(task, key);
      this.host.log(
        `${this.host.name}: the rate limit key of task '${task}' returned ${typeof key}, not a string; task ${delivery.envelope.id} uses the task's shared bucket`,
      );
    } catch (error) {
      this.host.log(
        `${this.host.name}: the rate limit key of task '${task}' failed for task ${delivery.envelope.id} (${toErrorInfo(error).message}); it uses the task's shared bucket`,
      );
    }
    return undefined;
  }
}
