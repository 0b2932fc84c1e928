/**
 * The leases of the deliveries one consumer holds on the node. A delivery is
 * leased for `leaseMs` when it is handed out; the client renews the leases of
 * what it still holds while it is alive, however long a task runs. A lease
 * that runs out means the holder stopped renewing (stuck, or a client that
 * never renews): the node takes the delivery back and redelivers it.
 *
 * Every lease of a consumer has the same length, so a Map in insertion order
 * is also in deadline order once a renewal re-inserts at the end: expiry
 * looks only at the head, and a delivery costs one set and one delete.
 */
export class LeaseTable {
  private readonly deadlines = new Map<number, number>();
  /** Tags taken back recently, so a late ack can be told apart from a bug. */
  private readonly expiredTags = new Set<number>();

  constructor(readonly leaseMs: number) {}

  get size(): number {
    return this.deadlines.size;
  }

  lease(deliveryTag: number, now: number): void {
    this.deadlines.set(deliveryTag, now + this.leaseMs);
  }

  /** The delivery was settled: its lease ends. */
  release(deliveryTag: number): void {
    this.deadlines.delete(deliveryTag);
  }

  /** Extend the leases of `deliveryTags` still held; returns how many were. */
  renew(deliveryTags: readonly number[], now: number): number {
    let renewed = 0;
    const deadline = now + this.leaseMs;
    for (const tag of deliveryTags) {
      if (!this.deadlines.delete(tag)) continue;
      this.deadlines.set(tag, deadline);
      renewed++;
    }
    return renewed;
  }

  /** Remove and return the tags whose lease ran out by `now`, oldest first. */
  expire(now: number): number[] {
    const expired: number[] = [];
    for (const [tag, deadline] of this.deadlines) {
      if (deadline > now) break;
      expired.push(tag);
    }
    for (const tag of expired) {
      this.deadlines.delete(tag);
      this.remember(tag);
    }
    return expired;
  }

  /** Whether `deliveryTag` was taken back because its lease ran out (recently: the memory is bounded). */
  wasExpired(deliveryTag: number): boolean {
    return this.expiredTags.has(deliveryTag);
  }

  private remember(tag: number): void {
    if (this.expiredTags.size >= 10_000) {
      const oldest = this.expiredTags.values().next().value;
      if (oldest !== undefined) this.expiredTags.delete(oldest);
    }
    this.expiredTags.add(tag);
  }
}
