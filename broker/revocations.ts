/** Settings of a Revocations set; every field is optional. */
export interface RevocationsOptions {
  readonly now?: () => number;
  /** How long a revocation is remembered unless `revoke` says otherwise. Default one day. */
  readonly defaultTtlMs?: number;
  /** At most this many revocations are remembered; past it the oldest are forgotten first. Default 100 000. */
  readonly maxEntries?: number;
  /** Receives an error thrown by a listener (default console.error). */
  readonly onListenerError?: (error: unknown) => void;
}

/** Told about each revocation as it is made; `terminate` asks to abort the task where it already runs. */
export type RevocationListener = (
  id: string,
  options: { readonly terminate: boolean; readonly ttlMs?: number },
) => void;

/** How long a revocation is remembered when nobody says otherwise: one day. */
export const DEFAULT_REVOCATION_TTL_MS = 24 * 60 * 60 * 1000;
const DEFAULT_MAX_ENTRIES = 100_000;

/**
 * The set of revoked message ids, each forgotten after its ttl so memory stays
 * bounded, and capped at `maxEntries` (oldest revocation forgotten first).
 * Listeners hear about every revocation as it is made.
 *
 * @example
 * const revocations = new Revocations({ defaultTtlMs: 60_000 });
 * const stop = revocations.onRevoke((id, { terminate }) => terminate && abort(id));
 * revocations.revoke("6f1c…", undefined, true);
 * revocations.has("6f1c…"); // true for the next minute
 */
export class Revocations {
  private readonly now: () => number;
  private readonly defaultTtlMs: number;
  private readonly maxEntries: number;
  private readonly onListenerError: (error: unknown) => void;
  /** id → expiry; Map iteration order is revocation order, which eviction relies on. */
  private readonly expiries = new Map<string, number>();
  private readonly listeners = new Set<RevocationListener>();
  /** No entry expires before this, so sweeping earlier would find nothing. */
  private earliestExpiry = Number.POSITIVE_INFINITY;

  constructor(options: RevocationsOptions = {}) {
    this.now = options.now ?? Date.now;
    this.defaultTtlMs = options.defaultTtlMs ?? DEFAULT_REVOCATION_TTL_MS;
    this.maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
    this.onListenerError = options.onListenerError ?? ((error) => console.error("revocation listener failed:", error));
  }

  get size(): number {
    return this.expiries.size;
  }

  /** Revoke `id` for `ttlMs` (default: the configured ttl), then tell every listener. */
  revoke(id: string, ttlMs = this.defaultTtlMs, terminate = false): void {
    const expiry = this.now() + ttlMs;
    const previous = this.expiries.get(id);
    // Re-revoking extends, never shortens, and moves the id to the back of the eviction order.
    this.expiries.delete(id);
    this.expiries.set(id, previous === undefined ? expiry : Math.max(previous, expiry));
    if (expiry < this.earliestExpiry) this.earliestExpiry = expiry;
    if (this.expiries.size > this.maxEntries) this.shrink();
    const options = { terminate, ttlMs };
    for (const listener of this.listeners) {
      try {
        listener(id, options);
      } catch (error) {
        this.onListenerError(error);
      }
    }
  }

  /** Whether `id` is revoked and its revocation has not expired. */
  has(id: string): boolean {
    if (this.expiries.size === 0) return false;
    const expiry = this.expiries.get(id);
    if (expiry === undefined) return false;
    if (expiry >= this.now()) return true;
    this.expiries.delete(id);
    return false;
  }

  /** Every revocation still in force, with the ms it has left. */
  active(): [id: string, ttlMs: number][] {
    const now = this.now();
    const out: [string, number][] = [];
    for (const [id, expiry] of this.expiries) if (expiry >= now) out.push([id, expiry - now]);
    return out;
  }

  /** Call `listener` with each id revoked from now on; returns the unsubscribe function. */
  onRevoke(listener: RevocationListener): () => void {
    // Wrapped so the same function subscribed twice is two subscriptions, each removed by its own unsubscribe.
    const subscription: RevocationListener = (id, options) => listener(id, options);
    this.listeners.add(subscription);
    return () => {
      this.listeners.delete(subscription);
    };
  }

  private shrink(): void {
    const now = this.now();
    if (now > this.earliestExpiry) {
      let earliest = Number.POSITIVE_INFINITY;
      for (const [id, expiry] of this.expiries) {
        if (expiry < now) this.expiries.delete(id);
        else if (expiry < earliest) earliest = expiry;
      }
      this.earliestExpiry = earliest;
    }
    // Still full: forget the oldest tenth at once so the next revocations do not each pay for a pass.
    if (this.expiries.size > this.maxEntries) {
      let excess = this.expiries.size - Math.max(1, Math.floor(this.maxEntries * 0.9));
      for (const id of this.expiries.keys()) {
        if (excess-- <= 0) break;
        this.expiries.delete(id);
      }
    }
  }
}
