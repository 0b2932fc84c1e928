// Refusing replayed signed messages: the digests this process settled or holds, bounded in
// memory, told apart from the broker's own redeliveries.
import { GenerationalMap } from "../results/generational-map.ts";

/**
 * Remembers which signed messages this process has settled (acknowledged or
 * dead-lettered) and which it holds now, so that a copy of a message replayed
 * onto the broker is refused. A message is known by its signed digest, which
 * covers its id, its signing time and everything else: a retry (same id,
 * signed anew) is a new message, while an exact copy is not.
 *
 * A redelivery (the broker's own, after a requeue or a lost connection) is
 * not a replay: a message returned to the queue without being settled may
 * come back, and one flagged redelivered may arrive while this process still
 * holds the earlier delivery that the broker took back.
 *
 * Memory is bounded: at most `size` settled digests are kept, forgotten in
 * bulk oldest first (each survives at least `size / 2` later ones; see
 * GenerationalMap, cheaper on this per-message path than an LRU); a message older than the verifier's window is refused
 * on its time alone, so the set needs to cover only that window.
 */
export class ReplayGuard {
  private readonly settled: GenerationalMap<string, true>;
  private readonly holding = new Map<string, number>();

  constructor(size = 250_000) {
    this.settled = new GenerationalMap(Math.max(2, size));
  }

  /** Admit a delivery of `digest`; false when it is a replay. */
  admit(digest: string, redelivered: boolean): boolean {
    if (this.settled.has(digest)) return false;
    const held = this.holding.get(digest);
    if (held !== undefined && !redelivered) return false;
    this.holding.set(digest, (held ?? 0) + 1);
    return true;
  }

  /** The delivery of `digest` was settled: for good (`final`), or handed back to the queue. */
  release(digest: string, final: boolean): void {
    const held = this.holding.get(digest);
    if (held !== undefined) {
      if (held <= 1) this.holding.delete(digest);
      else this.holding.set(digest, held - 1);
    }
    if (final) this.settled.set(digest, true);
  }
}
