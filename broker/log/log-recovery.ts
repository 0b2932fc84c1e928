// Opening a log directory: settle an interrupted compaction, scan every segment, cut a torn
// tail, quarantine damaged stretches, and report what was found.
import { constants } from "node:fs";
import { access, mkdir, readFile, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import {
  DirectoryNotWritableError,
  errorCode,
  errorDetail,
  LogRecoveryError,
  LogWriteError,
} from "./durable-log-errors.ts";
import { settleCompaction } from "./log-compaction.ts";
import { listLogDirectory, segmentName } from "./log-directory.ts";
import { scanSegment } from "./log-record.ts";
import type { OpenSegment } from "./segment-file.ts";

/**
 * Damage found on open. `"damaged"`: bytes in the middle of a segment that
 * hold no intact record, with intact records after them: those records are
 * kept, and the damaged bytes are copied to `quarantine` (they leave the
 * segment only when a compaction rewrites it). `"torn"`: a tail with no
 * intact record behind it (a write cut short by a crash, never confirmed):
 * its `droppedBytes` are cut off the segment.
 */
export interface CorruptionReport {
  readonly kind: "damaged" | "torn";
  readonly segment: string;
  readonly offset: number;
  readonly reason: string;
  /** Bytes of the damaged stretch, or of the torn tail. */
  readonly length: number;
  /** Bytes cut off the segment: the torn tail's length; 0 for damage in the middle. */
  readonly droppedBytes: number;
  /** Where a damaged stretch's bytes were copied. */
  readonly quarantine?: string;
}

/** One log line for a report. */
export const describeCorruption = (info: CorruptionReport): string =>
  info.kind === "damaged"
    ? `damaged record in ${info.segment} at offset ${info.offset} (${info.reason}): ${info.length} bytes skipped, every intact record after them kept; the damaged bytes are in ${info.quarantine}`
    : `torn tail in ${info.segment} at offset ${info.offset} (${info.reason}): ${info.droppedBytes} bytes of an unfinished write cut off`;

/** The folder, inside a log directory, where damaged bytes are kept for inspection. */
export const QUARANTINE_DIR = "quarantine";

const quarantine = async (dir: string, segment: string, offset: number, bytes: Uint8Array): Promise<string> => {
  const folder = join(dir, QUARANTINE_DIR);
  const path = join(folder, `${basename(segment)}@${offset}.damaged`);
  try {
    await mkdir(folder, { recursive: true });
    // The same damage found again on a later open is the same file: written once.
    await writeFile(path, bytes, { flag: "wx" }).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== "EEXIST") throw error;
    });
  } catch (cause) {
    throw new LogRecoveryError({
      dir,
      reason: `cannot keep the damaged bytes of ${segment} at offset ${offset} in ${path}: ${errorCode(cause)} (${errorDetail(cause)})`,
    });
  }
  return path;
};

const keepDamaged = async (
  dir: string,
  segment: string,
  offset: number,
  reason: string,
  damaged: Uint8Array,
): Promise<CorruptionReport> => ({
  kind: "damaged",
  segment,
  offset,
  reason,
  length: damaged.length,
  droppedBytes: 0,
  quarantine: await quarantine(dir, segment, offset, damaged),
});

/**
 * Segments are numbered without gaps (appends and compactions both number the
 * next one on), so a missing number is a file removed or renamed by hand:
 * recovery cannot tell what it held, and refuses rather than start without it.
 */
const refuseGaps = (dir: string, segments: readonly number[]): void => {
  for (let i = 1; i < segments.length; i++) {
    if (segments[i] === segments[i - 1] + 1) continue;
    const missing = segmentName(segments[i - 1] + 1);
    throw new LogRecoveryError({
      dir,
      reason: `segment ${missing} is missing between ${segmentName(segments[i - 1])} and ${segmentName(segments[i])} (removed or renamed?): restore it, or move the segments after the gap aside to start without them; nothing was changed`,
    });
  }
};

/** What `open` found: intact records returned, segments read, and every corruption cut away. */
export interface RecoveryReport {
  readonly records: number;
  readonly segments: number;
  readonly corrupted: readonly CorruptionReport[];
}

/**
 * The state of a log directory after recovery: its intact records in append
 * order, the report, the last segment (where appends go) and the bytes on disk.
 * `created` says the last segment does not exist yet and must be created.
 *
 * @example
 * const recovered = await recoverLog(dir, { maxRecordBytes, openSegment });
 * recovered.records.length === recovered.report.records; // true
 */
export interface RecoveredLog {
  readonly records: Uint8Array[];
  readonly report: RecoveryReport;
  readonly lastSeq: number;
  readonly lastBytes: number;
  readonly totalBytes: number;
  readonly created: boolean;
}

const NOT_WRITABLE = new Set(["EACCES", "EPERM", "EROFS", "ENOTDIR", "EEXIST"]);

/**
 * Create `dir` if needed and check it can be written, naming the OS reason
 * when not.
 *
 * @example
 * await ensureWritableDirectory("/var/lib/celerity/log");
 */
export const ensureWritableDirectory = async (dir: string): Promise<void> => {
  try {
    await mkdir(dir, { recursive: true });
    await access(dir, constants.W_OK | constants.X_OK);
  } catch (cause) {
    throw new DirectoryNotWritableError({ dir, code: errorCode(cause), detail: errorDetail(cause) });
  }
};

/** The error for a segment the OS would not open for writing: a directory problem or a disk one. */
export const openFailure = (dir: string, path: string, cause: unknown): DirectoryNotWritableError | LogWriteError =>
  NOT_WRITABLE.has(errorCode(cause))
    ? new DirectoryNotWritableError({ dir, code: errorCode(cause), detail: errorDetail(cause) })
    : new LogWriteError({ segment: path, operation: "open", code: errorCode(cause), detail: errorDetail(cause) });

const cutTail = async (openSegment: OpenSegment, dir: string, path: string, length: number): Promise<void> => {
  let file;
  try {
    file = await openSegment(path);
  } catch (cause) {
    throw openFailure(dir, path, cause);
  }
  try {
    await file.truncate(length);
    await file.datasync();
  } catch (cause) {
    throw new LogWriteError({
      segment: path,
      operation: "truncate",
      code: errorCode(cause),
      detail: errorDetail(cause),
    });
  } finally {
    await file.close().catch(() => undefined);
  }
};

/** Whether every byte of `bytes` from `from` on is zero. */
const isZeroFilled = (bytes: Uint8Array, from: number): boolean => {
  for (let i = from; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
};

/**
 * Bring `dir` to one whole log (settling an interrupted compaction), then read
 * every segment in order, keeping every intact record. Damage in the middle
 * of a segment is reported and its bytes quarantined, and reading resumes at
 * the next intact record; only a torn tail of the last segment (no intact
 * record behind it) is cut off, and a tail of zeros there silently (the part
 * of a segment grown ahead of its writes that a crash leaves): the same in
 * an earlier segment is damage, and is quarantined like the rest. A gap in
 * the segments' numbers, or a damaged compaction marker, stops recovery with
 * a LogRecoveryError and nothing changed.
 *
 * @example
 * const { records, report } = await recoverLog(dir, { maxRecordBytes: 1 << 24, openSegment: openSegmentFile });
 */
export const recoverLog = async (
  dir: string,
  settings: {
    readonly maxRecordBytes: number;
    readonly openSegment: OpenSegment;
    readonly onCorruption?: (info: CorruptionReport) => void;
  },
): Promise<RecoveredLog> => {
  await ensureWritableDirectory(dir);
  await settleCompaction(dir);
  const { segments } = await listLogDirectory(dir);
  refuseGaps(dir, segments);
  const records: Uint8Array[] = [];
  const corrupted: CorruptionReport[] = [];
  let totalBytes = 0;
  let lastBytes = 0;
  for (const seq of segments) {
    const path = join(dir, segmentName(seq));
    let bytes: Uint8Array;
    try {
      bytes = await readFile(path);
    } catch (cause) {
      throw new LogRecoveryError({
        dir,
        reason: `cannot read segment ${path}: ${errorCode(cause)} (${errorDetail(cause)})`,
      });
    }
    const scan = scanSegment(bytes, settings.maxRecordBytes);
    for (const record of scan.records) records.push(record);
    for (const region of scan.damaged) {
      const damaged = bytes.subarray(region.offset, region.offset + region.length);
      const info = await keepDamaged(dir, path, region.offset, region.reason, damaged);
      corrupted.push(info);
      settings.onCorruption?.(info);
    }
    const sealed = seq !== segments[segments.length - 1];
    if (scan.torn && sealed) {
      // Appends went on in a later segment, so these bytes were not the write a crash cut short.
      const info = await keepDamaged(dir, path, scan.torn.offset, scan.torn.reason, bytes.subarray(scan.end));
      corrupted.push(info);
      settings.onCorruption?.(info);
    } else if (scan.torn && isZeroFilled(bytes, scan.end)) {
      // What a segment grown ahead of its writes (segment-file.ts) holds past them after a crash: no write was cut short.
      await cutTail(settings.openSegment, dir, path, scan.end);
    } else if (scan.torn) {
      const info: CorruptionReport = {
        kind: "torn",
        segment: path,
        offset: scan.torn.offset,
        reason: scan.torn.reason,
        length: bytes.length - scan.end,
        droppedBytes: bytes.length - scan.end,
      };
      // Cut before telling anyone, so appends never land behind bytes a later open would stop at.
      await cutTail(settings.openSegment, dir, path, scan.end);
      corrupted.push(info);
      settings.onCorruption?.(info);
    }
    totalBytes += sealed ? bytes.length : scan.end;
    lastBytes = scan.end;
  }
  const created = segments.length === 0;
  return {
    records,
    report: { records: records.length, segments: segments.length, corrupted },
    lastSeq: created ? 1 : segments[segments.length - 1],
    lastBytes: created ? 0 : lastBytes,
    totalBytes,
    created,
  };
};
