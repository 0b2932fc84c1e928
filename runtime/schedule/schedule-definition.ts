// What a periodic task is: when it runs, the task and arguments it sends, and
// what happens to the runs no beat was there to send. A `ScheduleEntry` is
// plain data (it is stored in the broker and read by every beat), built from
// what a user writes by `defineSchedule`, which refuses anything it cannot
// keep with a ScheduleError.
import { Cron, Result } from "effect";
import type { CallOptions } from "../../dsl/options.ts";
import { durationTextMs, formatDurationMs } from "../duration.ts";
import { ScheduleError } from "./schedule-errors.ts";

/**
 * When a schedule runs: at a fixed interval, or by a cron expression in a time zone.
 *
 * @example
 * app.schedule("cleanup", { every: "30s" }, cleanup.s());
 * app.schedule("report", { cron: "0 3 * * 1-5", tz: "Europe/Berlin" }, report.s("daily"), { catchUp: "all", expires: "1h" });
 */
export type When =
  /** A fixed interval ("30s", "5m", "1h", "1d", or ms), counted from `start` if given, else from the Unix epoch: every beat agrees on the instants. */
  | { readonly every: string | number }
  /** A cron expression (5 fields, or 6 with seconds first), in the time zone `tz` (IANA name; default UTC). */
  | { readonly cron: string; readonly tz?: string };

/**
 * What a beat does with the runs whose instant passed while no beat was
 * running (longer ago than the beat's `graceMs` when it finds them):
 * - "skip": send none of them;
 * - "once" (default): send one run, for the newest of them;
 * - "all": send each of them (the newest `catchUpLimit` at most).
 * The runs not sent are recorded as passed and logged.
 *
 * @example
 * app.schedule("sync", { every: "5m" }, sync.s(), { catchUp: "all", catchUpLimit: 12 }); // an hour's worth at most
 */
export type CatchUp = "skip" | "once" | "all";

/**
 * A schedule's options: catch-up of missed runs, jitter, per-run expiry, and
 * the dates it runs between.
 *
 * @example
 * const options: ScheduleOptions = { catchUp: "skip", jitter: "10s", expires: "5m", start: new Date("2026-04-01"), end: new Date("2026-12-31") };
 */
export interface ScheduleOptions {
  /** What to do with runs missed while no beat ran. Default "once". */
  readonly catchUp?: CatchUp;
  /** With catchUp "all": at most this many missed runs are sent at once (the newest). Default 100. */
  readonly catchUpLimit?: number;
  /** Delay each run's message by up to this long (ms or "10s"), the same for a given run on every beat. Default 0. */
  readonly jitter?: string | number;
  /** A run not started within this long (ms or "10m") after its instant is not run (REVOKED). Default: never expires. */
  readonly expires?: string | number;
  /** No run before this time. */
  readonly start?: Date | number;
  /** No run after this time. */
  readonly end?: Date | number;
}

/**
 * A schedule as stored and read by every beat: plain, serializable values only.
 *
 * @example
 * const [info] = await app.schedules.list();
 * info.entry.cron; // "0 3 * * 1-5"
 * info.entry.tz; // "Europe/Berlin"
 */
export interface ScheduleEntry {
  readonly name: string;
  readonly task: string;
  readonly args: readonly unknown[];
  readonly options: CallOptions;
  /** The built-in map / starmap's target task. */
  readonly target?: string;
  /** Interval in ms, for `{ every }`. */
  readonly every?: number;
  /** Cron expression and its time zone, for `{ cron }`. */
  readonly cron?: string;
  readonly tz?: string;
  readonly catchUp: CatchUp;
  readonly catchUpLimit: number;
  readonly jitterMs: number;
  readonly expiresMs?: number;
  readonly startAt?: number;
  readonly endAt?: number;
}

/**
 * The part of a task signature a schedule sends (any `task.s(...)`, or a
 * plain object naming a task registered in another process).
 *
 * @example
 * app.schedule("nightly", { cron: "0 2 * * *" }, report.s("daily").set({ queue: "reports" }));
 * await app.schedules.add("remote", { every: "1h" }, { task: "billing.invoice", args: [], options: {} });
 */
export interface ScheduledSignature {
  readonly task: string;
  readonly args: readonly unknown[];
  readonly options: CallOptions;
  readonly target?: string;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: a schedule name may hold no NUL.
const NAME = /^[^\s\u0000]{1,200}$/;

/** A duration in ms from "30s", "5m", "1.5h", "2d", "250ms", "1h30m" or a number of ms; throws ScheduleError naming `what`. */
export const parseDuration = (schedule: string, what: string, value: unknown, allowZero = false): number => {
  let ms: number | undefined;
  if (typeof value === "number") ms = value;
  else if (typeof value === "string") ms = durationTextMs(value);
  if (ms === undefined || !Number.isFinite(ms) || ms < 0 || (!allowZero && ms === 0) || !Number.isInteger(ms)) {
    throw new ScheduleError({
      schedule,
      reason: `${what} must be a ${allowZero ? "non-negative" : "positive"} whole number of ms or a duration like "30s", "5m", "1h", "1d", got ${describe(value)}`,
    });
  }
  return ms;
};

const crons = new Map<string, Cron.Cron>();

/** The parsed cron of an entry (kept: parsing costs more than computing an instant). */
export const cronOf = (expression: string, tz: string | undefined): Cron.Cron => {
  const key = `${tz ?? "UTC"}\u0000${expression}`;
  let cron = crons.get(key);
  if (cron === undefined) {
    cron = Result.getOrThrow(Cron.parse(expression, tz ?? "UTC"));
    if (crons.size >= 10_000) crons.clear();
    crons.set(key, cron);
  }
  return cron;
};

const toEpoch = (schedule: string, what: string, value: unknown): number => {
  const ms = value instanceof Date ? value.getTime() : value;
  if (typeof ms !== "number" || !Number.isFinite(ms))
    throw new ScheduleError({ schedule, reason: `${what} must be a Date or epoch ms, got ${describe(value)}` });
  return ms;
};

/**
 * Check and resolve what a user wrote into a ScheduleEntry; throws
 * ScheduleError naming the schedule and what is wrong.
 */
export const defineSchedule = (
  name: string,
  when: When,
  signature: ScheduledSignature,
  options: ScheduleOptions = {},
): ScheduleEntry => {
  if (typeof name !== "string" || !NAME.test(name)) {
    throw new ScheduleError({
      schedule: String(name),
      reason: "a schedule needs a name of 1 to 200 characters without spaces",
    });
  }
  if (
    signature === null ||
    typeof signature !== "object" ||
    typeof signature.task !== "string" ||
    !Array.isArray(signature.args)
  ) {
    throw new ScheduleError({
      schedule: name,
      reason: "the third argument must be a task signature, such as report.s('daily')",
    });
  }
  const entry: { -readonly [K in keyof ScheduleEntry]: ScheduleEntry[K] } = {
    name,
    task: signature.task,
    args: signature.args,
    options: signature.options ?? {},
    catchUp: "once",
    catchUpLimit: 100,
    jitterMs: 0,
  };
  if (signature.target !== undefined) entry.target = signature.target;
  if (when !== null && typeof when === "object" && "every" in when) {
    entry.every = parseDuration(name, "every", when.every);
  } else if (when !== null && typeof when === "object" && "cron" in when) {
    if (typeof when.cron !== "string")
      throw new ScheduleError({
        schedule: name,
        reason: `cron must be a string like "0 3 * * 1-5", got ${describe(when.cron)}`,
      });
    if (when.tz !== undefined && typeof when.tz !== "string")
      throw new ScheduleError({
        schedule: name,
        reason: `tz must be an IANA time zone name, got ${describe(when.tz)}`,
      });
    const parsed = Cron.parse(when.cron, when.tz ?? "UTC");
    if (Result.isFailure(parsed))
      throw new ScheduleError({
        schedule: name,
        reason: `cron "${when.cron}"${when.tz !== undefined ? ` in ${when.tz}` : ""}: ${parsed.failure.message}`,
      });
    entry.cron = when.cron;
    if (when.tz !== undefined) entry.tz = when.tz;
  } else {
    throw new ScheduleError({
      schedule: name,
      reason: `when must be { every: "30s" } or { cron: "0 3 * * *", tz?: "Europe/Berlin" }, got ${describe(when)}`,
    });
  }
  const { catchUp, catchUpLimit, jitter, expires, start, end } = options;
  if (catchUp !== undefined) {
    if (catchUp !== "skip" && catchUp !== "once" && catchUp !== "all")
      throw new ScheduleError({
        schedule: name,
        reason: `catchUp must be "skip", "once" or "all", got ${describe(catchUp)}`,
      });
    entry.catchUp = catchUp;
  }
  if (catchUpLimit !== undefined) {
    if (!Number.isInteger(catchUpLimit) || catchUpLimit < 1 || catchUpLimit > 10_000) {
      throw new ScheduleError({
        schedule: name,
        reason: `catchUpLimit must be a whole number from 1 to 10000, got ${describe(catchUpLimit)}`,
      });
    }
    entry.catchUpLimit = catchUpLimit;
  }
  if (jitter !== undefined) entry.jitterMs = parseDuration(name, "jitter", jitter, true);
  if (expires !== undefined) entry.expiresMs = parseDuration(name, "expires", expires);
  if (start !== undefined) entry.startAt = toEpoch(name, "start", start);
  if (end !== undefined) entry.endAt = toEpoch(name, "end", end);
  if (entry.startAt !== undefined && entry.endAt !== undefined && entry.endAt < entry.startAt) {
    throw new ScheduleError({
      schedule: name,
      reason: `end (${new Date(entry.endAt).toISOString()}) is before start (${new Date(entry.startAt).toISOString()})`,
    });
  }
  return entry;
};

/** How a schedule's timing reads in a list: "every 30000 ms" or "cron 0 3 * * 1-5 (Europe/Berlin)". */
export const describeWhen = (entry: ScheduleEntry): string =>
  entry.every !== undefined ? `every ${formatDurationMs(entry.every)}` : `cron "${entry.cron}" (${entry.tz ?? "UTC"})`;

const describe = (value: unknown): string => {
  if (typeof value === "string") return JSON.stringify(value);
  if (value === undefined || value === null || typeof value !== "object") return String(value);
  try {
    return JSON.stringify(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
};
