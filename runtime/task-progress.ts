// A task's own report of its progress: how it is recorded (encoded on its
// result record, never over a final state), read back, and watched.
import { Data } from "effect";
import { CodecError, type Codec } from "../broker/codec.ts";
import type { AsyncResult, Progress, ProgressWatchOptions, ProgressInfo, RemoteErrorInfo } from "../dsl/result.ts";
import { READY_STATES } from "../dsl/result.ts";
import type { ResultStore } from "./results/result-store.ts";

/**
 * What a running task may report: `this.progress({ done: 3, total: 10 })`,
 * or a state of its own with metadata: `this.progress({ state: "RESIZING", meta: { width } })`.
 *
 * @example
 * app.task("import", async function (rows: string[]) {
 *   for (let i = 0; i < rows.length; i++) await this.progress({ done: i, total: rows.length });
 * });
 */
export interface ProgressReport {
  /** A state name of the task's own (up to 64 characters). Default "PROGRESS". */
  readonly state?: string;
  readonly done?: number;
  readonly total?: number;
  /** Anything the codec can send. */
  readonly meta?: unknown;
}

/**
 * A task's progress report cannot be recorded; the task goes on (unless it lets the error through).
 *
 * @example
 * await this.progress({ done: -1 }).catch((error) => error instanceof ProgressReportError); // true
 */
export class ProgressReportError extends Data.TaggedError("ProgressReportError")<{
  readonly task: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `task '${this.task}' reported progress that cannot be recorded: ${this.reason}`;
  }
}

const MAX_STATE_LENGTH = 64;

const checkCount = (task: string, name: string, value: unknown): void => {
  if (value !== undefined && (typeof value !== "number" || !Number.isFinite(value) || value < 0)) {
    throw new ProgressReportError({
      task,
      reason: `'${name}' must be a finite number of at least 0 (got ${String(value)})`,
    });
  }
};

/** The report as stored, refusing what is not a report with a ProgressReportError. */
export const toTaskInfo = (task: string, report: ProgressReport): ProgressInfo => {
  if (typeof report !== "object" || report === null)
    throw new ProgressReportError({ task, reason: "a report is an object such as { done, total }" });
  const state = report.state ?? "PROGRESS";
  if (typeof state !== "string" || state.length === 0 || state.length > MAX_STATE_LENGTH) {
    throw new ProgressReportError({ task, reason: `'state' must be a string of 1 to ${MAX_STATE_LENGTH} characters` });
  }
  checkCount(task, "done", report.done);
  checkCount(task, "total", report.total);
  const info: { state: string; done?: number; total?: number; meta?: unknown } = { state };
  if (report.done !== undefined) info.done = report.done;
  if (report.total !== undefined) info.total = report.total;
  if (report.meta !== undefined) info.meta = report.meta;
  return info;
};

/** Where a running task's `this.progress(...)` goes: the result store, or (in a pool's thread or child) the worker. */
export interface ProgressSink {
  record(id: string, task: string, retries: number, report: ProgressReport): Promise<void>;
}

/** The report checked and encoded as stored; a ProgressReportError if it cannot be. */
export const encodeProgress = (codec: Codec, task: string, report: ProgressReport): Uint8Array => {
  const info = toTaskInfo(task, report);
  try {
    return codec.encode(info, "progress");
  } catch (error) {
    if (error instanceof CodecError) throw new ProgressReportError({ task, reason: `${error.path}: ${error.reason}` });
    throw error;
  }
};

/**
 * Records running tasks' reports in the result store; one per worker. The
 * record's state stays STARTED: a report is what the task says of itself,
 * and a report arriving after the task finished changes nothing.
 */
export class ProgressRecorder implements ProgressSink {
  constructor(
    private readonly store: ResultStore,
    private readonly codec: Codec,
  ) {}

  async record(id: string, task: string, retries: number, report: ProgressReport): Promise<void> {
    await this.store.setState(id, task, "STARTED", stateDetails(retries, encodeProgress(this.codec, task, report)));
  }

  /** Record a report already checked and encoded (by a pool's thread or child). */
  recordEncoded(id: string, task: string, retries: number, info: Uint8Array): Promise<void> | void {
    return this.store.setState(id, task, "STARTED", stateDetails(retries, info));
  }
}

const stateDetails = (retries: number, info: Uint8Array) => (retries === 0 ? { info } : { retries, info });

/** How far along a task is, from its state and its last report. */
/**
 * The progress of a group from its members': counts added up, the fraction
 * weighted by leaves (a nested group counts as many members as it holds); an
 * empty group is done.
 *
 * @example
 * groupProgress([{ total: 1, completed: 1, succeeded: 1, failed: 0, fraction: 1 }]); // fraction 1
 */
export const groupProgress = (parts: readonly Progress[]): Progress => {
  let total = 0;
  let completed = 0;
  let succeeded = 0;
  let failed = 0;
  let done = 0;
  for (const p of parts) {
    total += p.total;
    completed += p.completed;
    succeeded += p.succeeded;
    failed += p.failed;
    done += p.fraction * p.total;
  }
  return { total, completed, succeeded, failed, fraction: total === 0 ? 1 : done / total };
};

/** The error of the first member (in order) that has one, for a group's `error()`. */
export const firstError = async (members: readonly AsyncResult<unknown>[]): Promise<RemoteErrorInfo | undefined> => {
  for (const member of members) {
    const error = await member.error();
    if (error !== undefined) return error;
  }
  return undefined;
};

export const fractionOf = (state: string, info: ProgressInfo | undefined): number => {
  if (READY_STATES.has(state as never)) return 1;
  if (info?.done === undefined || info.total === undefined || info.total <= 0) return 0;
  return Math.min(1, info.done / info.total);
};

const DEFAULT_INTERVAL_MS = 250;

/**
 * Call `listener` each time `read()` gives a different progress, and a last
 * time once every member has finished; stop with the function returned. A
 * failed read is retried at the next tick, and reported to `onError`.
 */
export const watchProgress = (
  read: () => Promise<Progress>,
  listener: (progress: Progress) => void,
  options: ProgressWatchOptions = {},
): (() => void) => {
  const interval = options.interval ?? DEFAULT_INTERVAL_MS;
  if (typeof interval !== "number" || !Number.isFinite(interval) || interval <= 0) {
    throw new RangeError(`onProgress: 'interval' must be a positive number of ms (got ${String(interval)})`);
  }
  let stopped = false;
  let last = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const tick = async (): Promise<void> => {
    timer = undefined;
    let progress: Progress;
    try {
      progress = await read();
    } catch {
      // A store briefly out of reach: look again at the next tick.
      if (!stopped) timer = setTimeout(tick, interval);
      return;
    }
    if (stopped) return;
    const key = JSON.stringify(progress);
    if (key !== last) {
      last = key;
      listener(progress);
    }
    if (progress.completed < progress.total) timer = setTimeout(tick, interval);
  };
  void tick();
  return () => {
    stopped = true;
    if (timer !== undefined) clearTimeout(timer);
  };
};
