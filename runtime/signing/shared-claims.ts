/**
 * Replay protection across a pool of worker processes. The replay guard
 * keeps a signed message to one run per process; a copy delivered to
 * another process of the pool is refused only if the processes share a
 * record of what was taken. Where the app's result store is shared (a
 * broker node, Redis, PostgreSQL), each worker claims a message's digest
 * there before running it, for as long as the verifier would accept the
 * message (`maxAgeMs` from its signing time or eta): the store's `reserve`,
 * `SET NX PX` on Redis. The one process that gets the claim runs the
 * message; any other refuses it as a replay.
 *
 * Claims made in one event-loop turn (a delivery batch) are sent together,
 * back to back without waiting for answers in between, so a batch costs
 * about one round trip to the store, not one per message.
 *
 * @example
 * const claims = new SharedClaims((key, id, ttlMs) => results.reserve(key, id, ttlMs));
 * if (await claims.claim(checked.digest, checked.until)) run(delivery);
 */
import { randomUUID } from "node:crypto";

/** Reserve `key` for `id` for `ttlMs` unless someone holds it; resolves to the holder afterwards (ResultStore.reserve). */
export type Reserve = (key: string, id: string, ttlMs: number) => PromiseLike<string>;

interface Pending {
  readonly key: string;
  readonly ttlMs: number;
  readonly resolve: (first: boolean) => void;
  readonly reject: (error: unknown) => void;
}

/** The key a message's digest is claimed under. */
export const claimKey = (digest: string): string =>
  `celerity.seen.${Buffer.from(digest, "latin1").toString("base64url")}`;

export class SharedClaims {
  /** This process's name as a claimant. */
  readonly claimant = randomUUID();
  /** Claims lost to another process since start. */
  lost = 0;
  private pending: Pending[] = [];

  constructor(
    private readonly reserve: Reserve,
    private readonly now: () => number = Date.now,
  ) {}

  /** Claim the message with `digest` (latin1), accepted until `until` (epoch ms): true if this process is the first. */
  claim(digest: string, until: number): Promise<boolean> {
    const ttlMs = Math.max(1, Math.ceil(until - this.now()));
    return new Promise((resolve, reject) => {
      if (this.pending.length === 0) queueMicrotask(() => this.send());
      this.pending.push({ key: claimKey(digest), ttlMs, resolve, reject });
    });
  }

  private send(): void {
    const batch = this.pending;
    this.pending = [];
    for (const { key, ttlMs, resolve, reject } of batch) {
      this.reserve(key, this.claimant, ttlMs).then((holder) => {
        const first = holder === this.claimant;
        if (!first) this.lost++;
        resolve(first);
      }, reject);
    }
  }
}
