/**
 * Remembers which signed messages this process has received, so that each
 * runs here at most once however it arrives: a copy replayed onto the
 * broker, or the same message redelivered (a consumer that held it
 * disconnected) while this process still runs it or after it ran it. A
 * message is known by its signed digest, which covers its id, its signing
 * time and everything else: a retry (same id, signed anew) is a new message,
 * while an exact copy is not.
 *
 * A redelivery of a message this process holds right now waits for it (see
 * `admit`): if it settles for good, the redelivery is dropped; if it goes
 * back to the queue unsettled, the redelivery runs. A message settled here
 * for good is remembered until the verifier would refuse it on its time
 * alone (its signing time, or its eta, plus the window), so the memory
 * covers the whole window whatever the traffic. It is bounded by `size`
 * digests: when full, the digests closest to leaving the window are
 * forgotten first, and from then on a message as old as them is refused
 * (`floor`), never let through unrecognized.
 */

/** What to do with a delivery. */
export type Admission =
  | { readonly kind: "run" }
  /** A copy of a message this process holds or settled: refuse it. */
  | { readonly kind: "replay"; readonly reason: string }
  /** A redelivery of a message this process ran for good: drop it without running. */
  | { readonly kind: "ran" }
  /** A redelivery of a message this process holds: `settled` resolves true if that one settled for good (drop this one), false if it went back unsettled (then this one is held in its place and runs). */
  | { readonly kind: "wait"; readonly settled: Promise<boolean> };

/** The waiters of a message held with none waiting: shared, never pushed to (admit replaces it first). */
const NO_WAITERS: ((final: boolean) => void)[] = [];

/** Digests forgotten together: those leaving the window within the same slice of time. */
const SLICE_MS = 10_000;

export class ReplayGuard {
  /** Settled digests with the time after which the verifier refuses them anyway. */
  private readonly settled = new Map<string, number>();
  /** Settled digests by the slice of time they leave the window in. */
  private readonly slices = new Map<number, string[]>();
  private oldestSlice = Number.POSITIVE_INFINITY;
  /** Messages held now (one delivery each), by digest, with the redeliveries waiting for them to settle. */
  private readonly holding = new Map<string, ((final: boolean) => void)[]>();
  /** Messages leaving the window before this are refused: their digests may have been forgotten. */
  private floor = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly size = 250_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** How many settled digests are remembered. */
  get remembered(): number {
    return this.settled.size;
  }

  /** Admit a delivery of `digest`, a message the verifier accepts until `until` (epoch ms). */
  admit(digest: string, until: number, redelivered: boolean): Admission {
    this.forgetExpired();
    if (this.settled.has(digest))
      return redelivered
        ? { kind: "ran" }
        : { kind: "replay", reason: "a replay: this worker process has already run this exact signed message" };
    if (until <= this.floor)
      return {
        kind: "replay",
        reason: `older than this worker process can tell from a replay (it remembers ${this.size} messages; raise signing.replayCacheSize or lower signing.maxAgeMs)`,
      };
    let held = this.holding.get(digest);
    if (held !== undefined) {
      if (!redelivered)
        return { kind: "replay", reason: "a replay: this worker process holds this exact signed message right now" };
      if (held === NO_WAITERS) this.holding.set(digest, (held = []));
      const waiters = held;
      return { kind: "wait", settled: new Promise((resolve) => waiters.push(resolve)) };
    }
    this.holding.set(digest, NO_WAITERS);
    return { kind: "run" };
  }

  /** The delivery of `digest` was settled: for good (`final`, accepted until `until`), or handed back to the queue. */
  release(digest: string, final: boolean, until: number): void {
    const waiting = this.holding.get(digest);
    if (final) this.remember(digest, until);
    if (waiting === undefined) return;
    if (!final && waiting.length > 0) {
      // Handed back unsettled: the first redelivery waiting takes its place (still held), the others wait on.
      (waiting.shift() as (final: boolean) => void)(false);
      return;
    }
    this.holding.delete(digest);
    for (const wake of waiting) wake(final);
  }

  private remember(digest: string, until: number): void {
    if (this.settled.has(digest) || until <= this.now()) return;
    this.settled.set(digest, until);
    const slice = Math.floor(until / SLICE_MS);
    let members = this.slices.get(slice);
    if (members === undefined) {
      this.slices.set(slice, (members = []));
      if (slice < this.oldestSlice) this.oldestSlice = slice;
    }
    members.push(digest);
    while (this.settled.size > this.size) this.dropOldestSlice(true);
  }

  private forgetExpired(): void {
    const current = Math.floor(this.now() / SLICE_MS);
    while (this.oldestSlice < current) this.dropOldestSlice(false);
  }

  /** Forget the slice leaving the window first; when it is forgotten early (`full`), refuse what is as old from now on. */
  private dropOldestSlice(full: boolean): void {
    const slice = this.oldestSlice;
    const members = this.slices.get(slice);
    this.slices.delete(slice);
    if (members !== undefined) for (const digest of members) this.settled.delete(digest);
    if (full) this.floor = Math.max(this.floor, (slice + 1) * SLICE_MS);
    let next = Number.POSITIVE_INFINITY;
    for (const key of this.slices.keys()) if (key < next) next = key;
    this.oldestSlice = next;
  }
}
