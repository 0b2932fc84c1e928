// Decides which failures are notified, so a failure storm does not send a
// thousand mails: one notice per kind of failure (task and error) per
// de-duplication window, and at most `max` notices per `perMs` in all. A
// held-back failure is counted against its kind and reported with the next
// notice of that kind.
import { TokenBucket } from "../rate-limit/token-bucket.ts";

/**
 * How many notifications go out.
 *
 * @example
 * const limits: NotificationLimits = { dedupeWindowMs: 10 * 60_000, rate: { max: 10, perMs: 60 * 60_000 } };
 */
export interface NotificationLimits {
  /** One notice per task and error (name and message) per this many ms. Default 10 minutes; 0 notifies each. */
  readonly dedupeWindowMs?: number;
  /** At most `max` notices per `perMs`, over all kinds. Default 20 per hour. */
  readonly rate?: { readonly max: number; readonly perMs: number };
}

interface Kind {
  lastSent: number;
  suppressed: number;
}

const DEFAULT_WINDOW_MS = 10 * 60_000;
const DEFAULT_RATE = { max: 20, perMs: 60 * 60_000 };
/** Kinds remembered at most; the oldest are forgotten first (their held-back count with them). */
const MAX_KINDS = 10_000;

export class NotificationGate {
  private readonly window: number;
  private readonly bucket: TokenBucket;
  private readonly kinds = new Map<string, Kind>();

  constructor(limits: NotificationLimits, now: number) {
    const window = limits.dedupeWindowMs ?? DEFAULT_WINDOW_MS;
    if (typeof window !== "number" || !Number.isFinite(window) || window < 0) {
      throw new RangeError(
        `notifications: 'dedupeWindowMs' must be a number of ms of at least 0 (got ${String(window)})`,
      );
    }
    const rate = limits.rate ?? DEFAULT_RATE;
    if (!Number.isInteger(rate.max) || rate.max < 1 || !(rate.perMs > 0) || !Number.isFinite(rate.perMs)) {
      throw new RangeError(
        `notifications: 'rate' must be { max: a positive integer, perMs: a positive number } (got ${JSON.stringify(rate)})`,
      );
    }
    this.window = window;
    this.bucket = new TokenBucket({ count: rate.max, periodMs: rate.perMs, burst: rate.max }, now);
  }

  /**
   * Whether a failure of kind `key` is notified now: undefined if it is held
   * back, else how many of its kind were held back before it.
   */
  admit(key: string, now: number): number | undefined {
    let kind = this.kinds.get(key);
    if (kind !== undefined && now - kind.lastSent < this.window) {
      kind.suppressed++;
      return undefined;
    }
    if (this.bucket.take(now).granted === 0) {
      if (kind === undefined) this.remember(key, (kind = { lastSent: Number.NEGATIVE_INFINITY, suppressed: 0 }));
      kind.suppressed++;
      return undefined;
    }
    const suppressed = kind?.suppressed ?? 0;
    if (kind === undefined) this.remember(key, { lastSent: now, suppressed: 0 });
    else {
      kind.lastSent = now;
      kind.suppressed = 0;
      // Re-inserted: the map's order is the order of use, oldest first.
      this.kinds.delete(key);
      this.kinds.set(key, kind);
    }
    return suppressed;
  }

  private remember(key: string, kind: Kind): void {
    if (this.kinds.size >= MAX_KINDS) this.kinds.delete(this.kinds.keys().next().value as string);
    this.kinds.set(key, kind);
  }
}
