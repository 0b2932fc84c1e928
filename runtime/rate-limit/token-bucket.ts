/**
 * A token bucket: it holds at most `burst` tokens, refills at `count` tokens
 * per `periodMs`, and each execution takes one. Over any window of length T
 * it lets through at most `burst + count / periodMs x T` takes: a burst of
 * what it holds, then the steady rate.
 *
 * Pure: time is passed in (`now`, epoch ms or any monotonic ms), so tests can
 * drive it with a clock of their own. Credit is kept in units of
 * "token x periodMs", so that with integer times and integer counts (every
 * "10/s", "100/m", "1000/h") the arithmetic is exact: no token ever appears a
 * rounding error early.
 *
 * @example
 * const bucket = new TokenBucket({ count: 10, periodMs: 1000, burst: 10 }, Date.now());
 * const { granted, waitMs } = bucket.take(Date.now(), 1); // granted 1, or 0 and how long until a token is due
 */
export interface BucketLimit {
  /** Tokens added per `periodMs`. */
  readonly count: number;
  readonly periodMs: number;
  /** Most tokens held at once (a positive integer). */
  readonly burst: number;
}

export interface Grant {
  /** Tokens taken now (0 to the number asked for). */
  readonly granted: number;
  /** When fewer were granted than asked: ms until the next token is due. 0 otherwise. */
  readonly waitMs: number;
}

export class TokenBucket {
  private limit: BucketLimit;
  /** Tokens held, times periodMs. */
  private credit: number;
  private last: number;

  /** A new bucket starts full: the first `burst` executions go through at once. */
  constructor(limit: BucketLimit, now: number) {
    this.limit = limit;
    this.credit = limit.burst * limit.periodMs;
    this.last = now;
  }

  get current(): BucketLimit {
    return this.limit;
  }

  /** Tokens held at `now` (fractional while refilling). */
  tokens(now: number): number {
    this.refill(now);
    return this.credit / this.limit.periodMs;
  }

  /** Take up to `want` tokens at `now`. */
  take(now: number, want = 1): Grant {
    this.refill(now);
    const { periodMs, count } = this.limit;
    const granted = Math.min(want, Math.floor(this.credit / periodMs));
    this.credit -= granted * periodMs;
    if (granted >= want) return { granted, waitMs: 0 };
    // Ceiled, so that at now + waitMs the credit is sure to cover a token.
    return { granted, waitMs: Math.max(1, Math.ceil((periodMs - this.credit) / count)) };
  }

  /** Give back tokens taken but not used (never more than the bucket holds). */
  refund(now: number, tokens: number): void {
    this.refill(now);
    this.credit = Math.min(this.limit.burst * this.limit.periodMs, this.credit + tokens * this.limit.periodMs);
  }

  /**
   * Change the limit at `now`. Tokens already earned are kept, but never more
   * than the new burst: lowering a limit cannot let a burst of the old size through.
   */
  setLimit(limit: BucketLimit, now: number): void {
    this.refill(now);
    const tokens = Math.min(this.credit / this.limit.periodMs, limit.burst);
    this.limit = limit;
    this.credit = tokens * limit.periodMs;
  }

  /** Whether the bucket is full at `now` (an idle bucket that may be forgotten: a new one would be the same). */
  isFull(now: number): boolean {
    this.refill(now);
    return this.credit >= this.limit.burst * this.limit.periodMs;
  }

  private refill(now: number): void {
    // A clock that steps back earns nothing (and must not make the next refill count twice).
    if (now <= this.last) return;
    const cap = this.limit.burst * this.limit.periodMs;
    this.credit = Math.min(cap, this.credit + (now - this.last) * this.limit.count);
    this.last = now;
  }
}

/** Two limits are the same limit. */
export const sameLimit = (a: BucketLimit, b: BucketLimit): boolean =>
  a.count === b.count && a.periodMs === b.periodMs && a.burst === b.burst;
