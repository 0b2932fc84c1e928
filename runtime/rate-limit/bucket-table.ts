// Token buckets by id (a task, or a task and a key), bounded in memory. A
// bucket left alone long enough to refill completely is forgotten (swept
// as the table grows): a new one starts full, so forgetting it changes
// nothing. Past `max` buckets at once, the least recently used is dropped
// early (and would start full again): `max` is a memory bound, to be set
// well above the number of keys active at once.
//
// Expiry is checked against the buckets' own clock, not a cache TTL: a TTL
// measured by a coarser clock could drop a bucket before it is full, and
// hand out its burst again.
//
// A bucket follows the limit it is asked with: a changed limit is applied
// with TokenBucket.setLimit, so a lowered limit never lets the old burst through.
import { LRUCache } from "lru-cache";
import { TokenBucket, sameLimit, type BucketLimit, type Grant } from "./token-bucket.ts";

/** How many buckets a table keeps at most, and the clock it reads. */
export interface BucketTableOptions {
  /** Most buckets kept. Default 100,000. */
  readonly max?: number;
  /** The clock (ms). Default Date.now. */
  readonly now?: () => number;
}

/** Sweep for idle buckets once the table holds this many (and then at twice what the last sweep left). */
const SWEEP_FROM = 1_024;

export class BucketTable {
  private readonly buckets: LRUCache<string, TokenBucket>;
  private readonly now: () => number;
  private sweepAt = SWEEP_FROM;

  constructor(options: BucketTableOptions = {}) {
    this.now = options.now ?? Date.now;
    this.buckets = new LRUCache<string, TokenBucket>({ max: options.max ?? 100_000 });
  }

  /** Take up to `want` tokens from bucket `id` under `limit`. */
  take(id: string, limit: BucketLimit, want = 1): Grant {
    const now = this.now();
    let bucket = this.buckets.get(id);
    if (bucket !== undefined && !sameLimit(bucket.current, limit)) bucket.setLimit(limit, now);
    if (bucket === undefined) {
      bucket = new TokenBucket(limit, now);
      if (this.buckets.size >= this.sweepAt) this.sweep(now);
      this.buckets.set(id, bucket);
    }
    return bucket.take(now, want);
  }

  /** Forget the buckets that are full (idle long enough): the table then holds only buckets in use. */
  private sweep(now: number): void {
    const idle: string[] = [];
    for (const [id, bucket] of this.buckets.entries()) if (bucket.isFull(now)) idle.push(id);
    for (const id of idle) this.buckets.delete(id);
    this.sweepAt = Math.max(SWEEP_FROM, this.buckets.size * 2);
  }

  /** Give back tokens taken and not used. */
  refund(id: string, tokens: number): void {
    this.buckets.get(id)?.refund(this.now(), tokens);
  }

  get size(): number {
    return this.buckets.size;
  }
}

/** The id of a task's bucket, per key when the task has one. */
export const bucketId = (task: string, key: string | undefined): string =>
  key === undefined ? task : `${task}\u0000${key}`;
