// The instants a schedule runs at, and the runs due at a tick under its catch-up policy.
// An interval counts from its `start` (or the Unix epoch), so every beat finds the same
// instants without asking anyone; a cron expression is Effect's `Cron`, in the schedule's
// time zone.
//
// Daylight-saving time, as Effect's Cron resolves it: a wall-clock time the
// clocks skip (02:30 on the spring-forward day in Europe/Berlin) runs once,
// shifted forward by the gap (03:30 local); a time that occurs twice on the
// fall-back day runs once, at its first occurrence.
import { Cron } from "effect";
import { cronOf, type ScheduleEntry } from "./schedule-definition.ts";

/**
 * The first instant of `entry`'s schedule strictly after `after`, or undefined past its end.
 *
 * @example
 * nextInstant(entry, Date.now()); // the first instant strictly after now, or undefined past `end`
 */
export const nextInstant = (entry: ScheduleEntry, after: number): number | undefined => {
  const from = entry.startAt !== undefined && after < entry.startAt ? entry.startAt - 1 : after;
  let next: number;
  if (entry.every !== undefined) {
    const base = entry.startAt ?? 0;
    next = base + (Math.floor((from - base) / entry.every) + 1) * entry.every;
  } else {
    next = nextCronInstant(entry.cron as string, entry.tz, from);
  }
  return entry.endAt !== undefined && next > entry.endAt ? undefined : next;
};

/**
 * Effect's Cron.next with a time zone costs 0.1 to 0.4 ms; schedules sharing
 * an expression (every hour, every night at 3) usually ask it the same
 * question after the same last run, so answers are kept (a bounded memo).
 */
const answers = new Map<string, number>();
const nextCronInstant = (expression: string, tz: string | undefined, after: number): number => {
  const key = `${after}\u0000${tz ?? "UTC"}\u0000${expression}`;
  let next = answers.get(key);
  if (next === undefined) {
    next = Cron.next(cronOf(expression, tz), after).getTime();
    if (answers.size >= 50_000) answers.clear();
    answers.set(key, next);
  }
  return next;
};

/** What a beat finds due for one schedule at one tick. */
export interface DueRuns {
  /** The instants to send, oldest first. */
  readonly send: readonly number[];
  /** Missed instants not sent (by the catch-up policy). */
  readonly skipped: number;
  /** True when `skipped` is an estimate (a cron schedule missed more than 10,000 runs). */
  readonly estimated: boolean;
  /** The oldest skipped instant, for the log. */
  readonly skippedFrom?: number;
  /** The newest due instant (sent or skipped): the schedule's last run from now on; undefined if none was due. */
  readonly last: number | undefined;
}

const NOTHING_DUE: DueRuns = { send: [], skipped: 0, estimated: false, last: undefined };
const MAX_SCAN = 10_000;

/**
 * The runs of `entry` due at `now` after its last run `since` (exclusive),
 * as its catch-up policy says: an instant older than `now - graceMs` was
 * missed (no beat sent it in time); the newer ones are on time and always
 * sent. Of the missed, "skip" sends none, "once" the newest, "all" the newest
 * `catchUpLimit`.
 */
export const dueRuns = (entry: ScheduleEntry, since: number, now: number, graceMs: number): DueRuns => {
  const first = nextInstant(entry, since);
  if (first === undefined || first > now) return NOTHING_DUE;
  const keep = entry.catchUp === "skip" ? 0 : entry.catchUp === "once" ? 1 : entry.catchUpLimit;
  const lateBefore = now - graceMs;
  const send: number[] = [];
  let missedCount = 0;
  let newestMissed: number | undefined;
  let estimated = false;
  let cursor: number | undefined = first;
  if (entry.every !== undefined && first < lateBefore) {
    // An interval's missed instants are counted, not walked: a beat back after a year must not loop a year's worth.
    const every = entry.every;
    const highest = entry.endAt !== undefined ? Math.min(lateBefore - 1, entry.endAt) : lateBefore - 1;
    newestMissed = first + Math.floor((highest - first) / every) * every;
    missedCount = (newestMissed - first) / every + 1;
    for (let i = Math.max(0, missedCount - keep); i < missedCount; i++) send.push(first + i * every);
    cursor = nextInstant(entry, newestMissed);
  } else {
    while (cursor !== undefined && cursor < lateBefore) {
      missedCount++;
      newestMissed = cursor;
      if (keep > 0) {
        send.push(cursor);
        if (send.length > keep) send.shift();
      }
      if (missedCount % MAX_SCAN === 0) {
        // Jump close to the end of the missed stretch, keeping room for the newest `keep` (estimating how many were passed over).
        const gap = (cursor - first) / (missedCount - 1);
        const target = lateBefore - gap * (keep + 2);
        if (target > cursor) {
          missedCount += Math.floor((target - cursor) / gap);
          estimated = true;
          cursor = target;
        }
      }
      cursor = nextInstant(entry, cursor);
    }
  }
  const skipped = missedCount - send.length;
  let last = newestMissed;
  while (cursor !== undefined && cursor <= now) {
    send.push(cursor);
    last = cursor;
    cursor = nextInstant(entry, cursor);
  }
  if (skipped === 0) return { send, skipped, estimated, last };
  return { send, skipped, estimated, last, skippedFrom: first };
};
