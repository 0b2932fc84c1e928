// The durable log's options (fsync policy, segment and record sizes, corruption and failure
// listeners), its test seams, and the settings they resolve to with their defaults.
import { InvalidArgumentError } from "../errors.ts";
import type { CorruptionReport } from "./log-recovery.ts";
import { DEFAULT_REOPEN_BACKOFF, type ReopenBackoff } from "./log-reopen.ts";
import { type OpenSegment, openSegmentFile } from "./segment-file.ts";

/** A failed log written to again: what failed, how many attempts the reopen took, the fresh segment appends now go to. */
export interface LogReopened {
  readonly failure: Error;
  readonly attempts: number;
  readonly segment: string;
}

/**
 * How a durable log writes: when an append counts as durable, how large
 * segments and records may grow, and who hears about corruption found on open.
 *
 * @example
 * await DurableLog.open(dir, { fsync: { intervalMs: 100 }, segmentBytes: 8 * 1024 * 1024 });
 */
export interface DurableLogOptions {
  /**
   * "always" (default): an append resolves only after the write holding it is
   * fsynced (fdatasync), with group commit so one fsync covers every record
   * that arrived meanwhile. `{ intervalMs }`: appends resolve once written and
   * an fsync runs every intervalMs. Risk: up to intervalMs of acknowledged
   * records are lost on power loss or a kernel crash, or when that fsync
   * fails (the log reopens from the last successful one); a process crash
   * loses nothing, since the OS already has the writes.
   */
  readonly fsync?: "always" | { readonly intervalMs: number };
  /** Start a new segment file past this size. Default 64 MiB. */
  readonly segmentBytes?: number;
  /** Largest record accepted; default 16 MiB. */
  readonly maxRecordBytes?: number;
  /** Called for each corrupted or torn record found on open (also counted in the report). */
  readonly onCorruption?: (info: CorruptionReport) => void;
  /**
   * Called when a write, fsync or file operation fails. The log never retries
   * it (a retried fsync can report success for data the kernel has dropped):
   * appends are refused while the log reopens itself from what the last
   * successful fsync covered (after 100 ms, doubling to 5 s between attempts);
   * `onReopen` says when it is written to again.
   */
  readonly onFailure?: (error: Error) => void;
  /** Called when an attempt to reopen a failed log fails too (another follows, later). */
  readonly onReopenFailed?: (error: Error, attempts: number) => void;
  /**
   * Called when a failed log is reopened and takes appends again, before any
   * other append: records appended from here go first.
   */
  readonly onReopen?: (info: LogReopened) => void;
}

/**
 * Seams for tests: how segment files are opened (to put a failing or counting
 * disk behind the log) and a hook awaited after each durable step of a
 * compaction (to copy the directory as a crash would leave it).
 *
 * @example
 * await openDurableLog(dir, {}, { onCompactionStep: (step) => snapshot(dir, step) });
 */
export interface DurableLogInternals {
  readonly openSegment?: OpenSegment;
  readonly onCompactionStep?: (step: string) => void | Promise<void>;
  /** The waits between attempts to reopen a failed log (default 100 ms doubling to 5 s). */
  readonly reopenBackoff?: ReopenBackoff;
  /** What times those waits (default Node's timers): a test fires them when it chooses, for a run it can replay. */
  readonly reopenTimers?: ReopenTimers;
}

/**
 * Timers for the waits before reopening a failed log; a `Clock` of the
 * broker fits.
 *
 * @example
 * const timers: ReopenTimers = { setTimeout: (run) => (pending = run, { unref: () => {} }), clearTimeout: () => {} };
 */
export interface ReopenTimers {
  setTimeout(run: () => void, ms: number): { unref(): unknown };
  clearTimeout(timer: { unref(): unknown }): void;
}

const nodeTimers: ReopenTimers = {
  setTimeout: (run, ms) => setTimeout(run, ms),
  clearTimeout: (timer) => clearTimeout(timer as NodeJS.Timeout),
};

const MIB = 1024 * 1024;

/** The options with defaults filled in and checked, plus the seams. */
export interface Settings {
  readonly always: boolean;
  readonly intervalMs: number;
  readonly segmentBytes: number;
  readonly maxRecordBytes: number;
  readonly onCorruption?: (info: CorruptionReport) => void;
  readonly onFailure?: (error: Error) => void;
  readonly onReopenFailed?: (error: Error, attempts: number) => void;
  readonly onReopen?: (info: LogReopened) => void;
  readonly reopenBackoff: ReopenBackoff;
  readonly reopenTimers: ReopenTimers;
  readonly openSegment: OpenSegment;
  readonly step: (name: string) => Promise<void>;
}

const positiveInteger = (argument: string, value: number, max = Number.MAX_SAFE_INTEGER): number => {
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new InvalidArgumentError({ argument, reason: `expected a whole number from 1 to ${max}, got ${value}` });
  }
  return value;
};

/**
 * Fill in defaults and check `options`, throwing InvalidArgumentError naming a
 * nonsensical one.
 *
 * @example
 * settingsOf({ segmentBytes: 0 }, {}); // throws: invalid segmentBytes: expected a whole number from 1 to ...
 */
export const settingsOf = (options: DurableLogOptions, internals: DurableLogInternals): Settings => {
  const fsync = options.fsync ?? "always";
  const always = fsync === "always";
  const intervalMs = always ? 0 : fsync.intervalMs;
  if (!always && !(Number.isFinite(intervalMs) && intervalMs > 0)) {
    throw new InvalidArgumentError({
      argument: "fsync.intervalMs",
      reason: `expected a positive number, got ${intervalMs}`,
    });
  }
  const hook = internals.onCompactionStep;
  return {
    always,
    intervalMs,
    segmentBytes: positiveInteger("segmentBytes", options.segmentBytes ?? 64 * MIB),
    // The header stores the length in 32 bits.
    maxRecordBytes: positiveInteger("maxRecordBytes", options.maxRecordBytes ?? 16 * MIB, 0xffffffff),
    onCorruption: options.onCorruption,
    onFailure: options.onFailure,
    onReopenFailed: options.onReopenFailed,
    onReopen: options.onReopen,
    reopenBackoff: internals.reopenBackoff ?? DEFAULT_REOPEN_BACKOFF,
    reopenTimers: internals.reopenTimers ?? nodeTimers,
    openSegment: internals.openSegment ?? openSegmentFile,
    step: async (name) => {
      await hook?.(name);
    },
  };
};
