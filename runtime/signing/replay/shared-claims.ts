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
 * Claims made in one event-loop turn (a delivery batch) go to the store in
 * one call (`reserveAll`: one request to a node), so a batch costs one
 * round trip, not one per message.
 *
 * @example
 * const claims = new SharedClaims(reserveAllOf(results));
 * if (await claims.claim(checked.digest, checked.until)) run(delivery);
 */
import { randomUUID } from "node:crypto";
import type { ResultStore } from "../../results/result-store.ts";

/** Reserve each key for `id` for its ttl unless someone holds it; resolves to each key's holder afterwards (ResultStore.reserveAll). */
export type ReserveAll = (
  keys: readonly string[],
  id: string,
  ttlsMs: readonly number[],
) => PromiseLike<readonly string[]>;

/** A store's `reserveAll`, or its `reserve` once per key where it has none. */
export const reserveAllOf =
  (store: Pick<ResultStore, "reserve" | "reserveAll">): ReserveAll =>
  (keys, id, ttlsMs) =>
    store.reserveAll !== undefined
      ? store.reserveAll(keys, id, ttlsMs)
      : Promise.all(keys.map((key, i) => store.reserve(key, id, ttlsMs[i])));

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
    private readonly reserveAll: ReserveAll,
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
    this.reserveAll(
      batch.map((p) => p.key),
      this.claimant,
      batch.map((p) => p.ttlMs),
    ).then(
      (holders) => {
        for (let i = 0; i < batch.length; i++) {
          const first = holders[i] === this.claimant;
          if (!first) this.lost++;
          batch[i].resolve(first);
        }
      },
      (error: unknown) => {
        for (const pending of batch) pending.reject(error);
      },
    );
  }
}
