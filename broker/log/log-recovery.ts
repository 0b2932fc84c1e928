import { constants } from "node:fs";
import { access, mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import {
  DirectoryNotWritableError,
  errorCode,
  errorDetail,
  LogRecoveryError,
  LogWriteError,
} from "./durable-log-errors.ts";
import { settleCompaction } from "./log-compaction.ts";
import { listLogDirectory, segmentName } from "./log-directory.ts";
import { scanRecords } from "./log-record.ts";
import type { OpenSegment } from "./segment-file.ts";

/** A corrupted or torn record found on open, and the bytes of its segment cut away from there. */
export interface CorruptionReport {
  readonly segment: string;
  readonly offset: number;
  readonly reason: string;
  readonly droppedBytes: number;
}

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
    throw new LogWriteError({ segment: path, operation: "truncate", code: errorCode(cause), detail: errorDetail(cause) });
  } finally {
    await file.close().catch(() => undefined);
  }
};

/**
 * Bring `dir` to one whole log (settling an interrupted compaction), then read
 * every segment in order. A segment's scan stops at its first torn or damaged
 * record: the records before it are kept, the rest of that segment is reported
 * and truncated away, and the next segment is read as usual.
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
      throw new LogRecoveryError({ dir, reason: `cannot read segment ${path}: ${errorCode(cause)} (${errorDetail(cause)})` });
    }
    const scan = scanRecords(bytes, settings.maxRecordBytes);
    for (const record of scan.records) records.push(record);
    if (scan.damage) {
      const info: CorruptionReport = {
        segment: path,
        offset: scan.damage.offset,
        reason: scan.damage.reason,
        droppedBytes: bytes.length - scan.end,
      };
      // Cut before telling anyone, so appends never land behind bytes a later open would stop at.
      await cutTail(settings.openSegment, dir, path, scan.end);
      corrupted.push(info);
      settings.onCorruption?.(info);
    }
    totalBytes += scan.end;
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
