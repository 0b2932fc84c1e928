/**
 * Replay protection across a pool of worker processes. The replay guard
 * keeps a signed message to one run per process; a copy delivered to
 * another process of the pool is refused only if the processes share a
 * record of what was taken. Where the app's result store is shared (a
 * broker node, Redis, PostgreSQL), each worker claims a message there before
 * running it, for as long as the verifier would accept the message
 * (`maxAgeMs` from its signing time or eta). The one process that gets the
 * claim runs the message; any other refuses it as a replay.
 *
 * A message is claimed as a member of its signed batch: the set is the
 * batch's root, the member the first 48 bits of the message's leaf hash
 * (both checked by the verifier, so a copy claims exactly what its original
 * did). Claims made in one event-loop turn (a delivery batch) go to the
 * store in one call per batch (`reserveMembers`: one entry for the batch on a
 * node, sent with the turn's acks), not one per message. Stores without it
 * keep one reservation per message (member-reservations.ts).
 *
 * @example
 * const claims = new SharedClaims(reserveMembersOf(results));
 * claims.claim(checked.batch, checked.member, checked.until, {
 *   taken: (first) => (first ? run(delivery) : refuse(delivery)),
 *   failed: () => requeue(delivery),
 * });
 */
import { randomUUID } from "node:crypto";
import type { ReserveMembers } from "../../results/member-reservations.ts";

/** Told whether this process got the claim (true) or another has it (false), or why the store could not say. */
export interface ClaimOutcome {
  taken(first: boolean): void;
  failed(error: unknown): void;
}

interface Pending {
  readonly member: number;
  readonly outcome: ClaimOutcome;
}

/** The claims of one batch in one turn. */
interface BatchClaims {
  ttlMs: number;
  readonly pending: Pending[];
}

/** Tell one claimant; one that throws is reported as uncaught without keeping the others of its batch from being told. */
const tell = (told: () => void): void => {
  try {
    told();
  } catch (error) {
    queueMicrotask(() => {
      throw error;
    });
  }
};

/** The key the messages of the signed batch with `root` (base64url) are claimed under. */
export const claimKey = (root: string): string => `celerity.seen.${root}`;

export class SharedClaims {
  /** This process's name as a claimant. */
  readonly claimant = randomUUID();
  /** Claims lost to another process since start. */
  lost = 0;
  private pending = new Map<string, BatchClaims>();

  constructor(
    private readonly reserveMembers: ReserveMembers,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Claim `member` of the signed batch `batch` (its root), accepted until
   * `until` (epoch ms); `outcome` is told whether this process is the first.
   * A callback rather than a promise: this runs for every signed delivery.
   */
  claim(batch: string, member: number, until: number, outcome: ClaimOutcome): void {
    const ttlMs = Math.max(1, Math.ceil(until - this.now()));
    if (this.pending.size === 0) queueMicrotask(() => this.send());
    let claims = this.pending.get(batch);
    if (claims === undefined) this.pending.set(batch, (claims = { ttlMs, pending: [] }));
    else if (ttlMs > claims.ttlMs) claims.ttlMs = ttlMs;
    claims.pending.push({ member, outcome });
  }

  private send(): void {
    const batches = this.pending;
    this.pending = new Map();
    for (const [batch, { ttlMs, pending }] of batches) {
      this.reserveMembers(
        claimKey(batch),
        pending.map((p) => p.member),
        this.claimant,
        ttlMs,
      ).then(
        (held) => {
          for (let i = 0; i < pending.length; i++) {
            if (!held[i]) this.lost++;
            tell(() => pending[i].outcome.taken(held[i] === true));
          }
        },
        (error: unknown) => {
          for (const claim of pending) tell(() => claim.outcome.failed(error));
        },
      );
    }
  }
}
