// The state every beat shares, kept by the broker: the schedules, the last
// run of each, and the beat lease. Whoever keeps it (this process for the
// embedded broker, the node for a node) runs each operation as one atomic
// step; `fire` checks the lease's fencing token and records the runs in the
// same step as the caller publishes them, so a beat that lost its lease (a
// pause past its expiry, a new leader after a SIGKILL) can neither send a run
// twice nor record one it did not send.
//
// Every change is reported to `onChange` (the node appends it to its log).
import { randomUUID } from "node:crypto";
import { LeaseLostError } from "./schedule-errors.ts";
import type { ScheduleEntry } from "./schedule-definition.ts";

/** A schedule as the table keeps it: its entry, when it was added, its last run, its revision. */
export interface StoredSchedule {
  readonly entry: ScheduleEntry;
  /** When the schedule was first added: instants before this never count as missed. */
  readonly addedAt: number;
  /** The newest instant sent or passed over; runs are due only after it. */
  readonly lastRun: number | undefined;
  /** Changes with every `put`: a beat recomputes what it derived from the definition. */
  readonly revision: number;
}

/** What changed in a table since a version a reader had: all of it (`full`) when the reader is too far behind. */
export interface TableChanges {
  /** Which table the versions count in: a node restarted (or a new table) starts a new epoch. */
  readonly epoch: string;
  readonly version: number;
  readonly full: boolean;
  readonly schedules: readonly StoredSchedule[];
  readonly removed: readonly string[];
}

/** Who leads, with which fencing token, until when (the keeper's clock). */
export interface Lease {
  readonly holder: string;
  readonly token: number;
  readonly expiresAt: number;
}

/** One run a leader asks to record: sent (`send`) or passed over by the catch-up policy. */
export interface RunRequest {
  readonly schedule: string;
  readonly instant: number;
  readonly send: boolean;
}

/** What became of one RunRequest: "sent"/"passed" recorded now, "stale" (recorded before: not sent again), "removed" (no such schedule). */
export type RunOutcome = "sent" | "passed" | "stale" | "removed";

export type TableChange =
  | { readonly kind: "put"; readonly schedule: StoredSchedule }
  | { readonly kind: "remove"; readonly name: string }
  | { readonly kind: "run"; readonly name: string; readonly instant: number }
  | { readonly kind: "lease"; readonly lease: Lease | undefined; readonly lastToken: number };

export class ScheduleTable {
  private readonly schedules = new Map<string, StoredSchedule>();
  private lease: Lease | undefined;
  private lastToken = 0;
  /** Bumped by every change to a schedule. */
  private version = 0;
  /** The schedules changed (put, run, removed) by version, oldest first, from `changedFrom` on. */
  private readonly changed: { readonly version: number; readonly name: string }[] = [];
  private changedFrom = 0;
  /** The log up to this version was dropped: a reader behind it gets the whole table. */
  private forgottenUpTo = 0;
  private readonly epoch = randomUUID();

  constructor(private readonly onChange: (change: TableChange) => void = () => undefined) {}

  /** Add a schedule, or replace its definition keeping when it was added and its last run. */
  put(entry: ScheduleEntry, now: number): StoredSchedule {
    const existing = this.schedules.get(entry.name);
    const schedule: StoredSchedule = {
      entry,
      addedAt: existing?.addedAt ?? now,
      lastRun: existing?.lastRun,
      revision: this.note(entry.name),
    };
    this.schedules.set(entry.name, schedule);
    this.onChange({ kind: "put", schedule });
    return schedule;
  }

  remove(name: string): boolean {
    if (!this.schedules.delete(name)) return false;
    this.note(name);
    this.onChange({ kind: "remove", name });
    return true;
  }

  get(name: string): StoredSchedule | undefined {
    return this.schedules.get(name);
  }

  list(): StoredSchedule[] {
    return [...this.schedules.values()];
  }

  /**
   * The schedules changed (added, replaced, run) and removed after version
   * `since`; everything, with `full`, for a reader at 0 or too far behind.
   */
  changesSince(epoch: string | undefined, since: number): TableChanges {
    if (epoch !== this.epoch || since < this.forgottenUpTo || since > this.version) {
      return { epoch: this.epoch, version: this.version, full: true, schedules: this.list(), removed: [] };
    }
    const log = this.changed;
    let low = this.changedFrom;
    let high = log.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (log[middle].version > since) high = middle;
      else low = middle + 1;
    }
    const names = new Set<string>();
    for (let i = low; i < log.length; i++) names.add(log[i].name);
    const schedules: StoredSchedule[] = [];
    const removed: string[] = [];
    for (const name of names) {
      const schedule = this.schedules.get(name);
      if (schedule === undefined) removed.push(name);
      else schedules.push(schedule);
    }
    return { epoch: this.epoch, version: this.version, full: false, schedules, removed };
  }

  /** Log a change to `name` under a new version; the log keeps at least twice the table's size of the newest changes. */
  private note(name: string): number {
    const version = ++this.version;
    this.changed.push({ version, name });
    const live = this.changed.length - this.changedFrom;
    if (live > Math.max(4_096, this.schedules.size * 4)) {
      const drop = live >>> 1;
      this.forgottenUpTo = this.changed[this.changedFrom + drop - 1].version;
      this.changedFrom += drop;
      if (this.changedFrom * 2 > this.changed.length) {
        this.changed.splice(0, this.changedFrom);
        this.changedFrom = 0;
      }
    }
    return version;
  }

  get size(): number {
    return this.schedules.size;
  }

  currentLease(now: number): Lease | undefined {
    return this.lease !== undefined && this.lease.expiresAt > now ? this.lease : undefined;
  }

  /**
   * Lead, or go on leading: a holder whose lease is still valid keeps its
   * token and gets a new expiry; anyone else gets the lease only once it is
   * free or expired, with a new, larger token. Returns the lease in force.
   */
  acquire(holder: string, ttlMs: number, now: number): Lease {
    const current = this.currentLease(now);
    if (current !== undefined && current.holder !== holder) return current;
    const token = current !== undefined ? current.token : ++this.lastToken;
    this.lease = { holder, token, expiresAt: now + ttlMs };
    this.onChange({ kind: "lease", lease: this.lease, lastToken: this.lastToken });
    return this.lease;
  }

  /** Give the lease up (a beat stopping), so another leads at once rather than after the expiry. */
  release(holder: string, token: number): void {
    if (this.lease === undefined || this.lease.holder !== holder || this.lease.token !== token) return;
    this.lease = undefined;
    this.onChange({ kind: "lease", lease: undefined, lastToken: this.lastToken });
  }

  /**
   * Record runs for the leader holding `token`: throws LeaseLostError (and
   * records nothing) unless that lease is still in force. A run at or before
   * its schedule's last run is "stale" and must not be sent. `publish` is
   * called for each run to send, in the same step, before the next is looked at.
   */
  fire<R extends RunRequest>(
    holder: string,
    token: number,
    runs: readonly R[],
    now: number,
    publish: (run: R) => void,
  ): RunOutcome[] {
    const lease = this.currentLease(now);
    if (lease === undefined || lease.token !== token || lease.holder !== holder) {
      throw new LeaseLostError({ holder, token, current: lease?.token ?? this.lastToken });
    }
    const outcomes: RunOutcome[] = [];
    for (const run of runs) {
      const schedule = this.schedules.get(run.schedule);
      if (schedule === undefined) {
        outcomes.push("removed");
        continue;
      }
      if (schedule.lastRun !== undefined && run.instant <= schedule.lastRun) {
        outcomes.push("stale");
        continue;
      }
      this.schedules.set(run.schedule, { ...schedule, lastRun: run.instant });
      this.note(run.schedule);
      this.onChange({ kind: "run", name: run.schedule, instant: run.instant });
      if (run.send) publish(run);
      outcomes.push(run.send ? "sent" : "passed");
    }
    return outcomes;
  }

  /** Put back state from the keeper's log (a node restarting). */
  restore(change: TableChange): void {
    switch (change.kind) {
      case "put":
        this.version = Math.max(this.version, change.schedule.revision);
        this.schedules.set(change.schedule.entry.name, change.schedule);
        break;
      case "remove":
        this.schedules.delete(change.name);
        break;
      case "run": {
        const schedule = this.schedules.get(change.name);
        if (schedule !== undefined) this.schedules.set(change.name, { ...schedule, lastRun: change.instant });
        break;
      }
      case "lease":
        this.lease = change.lease;
        this.lastToken = Math.max(this.lastToken, change.lastToken);
        break;
    }
  }

  /** The changes that rebuild this table (to compact the keeper's log). */
  snapshot(): TableChange[] {
    const changes: TableChange[] = [{ kind: "lease", lease: this.lease, lastToken: this.lastToken }];
    for (const schedule of this.schedules.values()) changes.push({ kind: "put", schedule });
    return changes;
  }
}
