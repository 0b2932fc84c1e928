// Reopening a log whose write or fsync failed: the failed segment is cut back to what
// the last successful fsync covered and read back to check it, and appends go on in a
// fresh segment. The backoff between attempts lives here too.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { errorCode, errorDetail, LogWriteError } from "./durable-log-errors.ts";
import { segmentName } from "./log-directory.ts";
import { scanSegment } from "./log-record.ts";
import { type OpenSegment, type SegmentFile, syncDirectory } from "./segment-file.ts";

/** The end of what is known durable: a segment and how many of its bytes a successful fsync covered. */
export interface DurablePoint {
  readonly seq: number;
  readonly bytes: number;
}

/** How long to wait before each attempt to reopen: `firstMs`, doubling up to `maxMs`. */
export interface ReopenBackoff {
  readonly firstMs: number;
  readonly maxMs: number;
}

/** 100 ms, doubling to 5 s: quick after a passing fault, patient with a disk that stays full. */
export const DEFAULT_REOPEN_BACKOFF: ReopenBackoff = { firstMs: 100, maxMs: 5_000 };

/**
 * The wait before attempt `attempt` (0 for the first).
 *
 * @example
 * reopenDelay(DEFAULT_REOPEN_BACKOFF, 3); // 800
 */
export const reopenDelay = (backoff: ReopenBackoff, attempt: number): number =>
  Math.min(backoff.maxMs, backoff.firstMs * 2 ** Math.min(attempt, 30));

/** A reopened log: the fresh, empty segment appends go to. */
export interface ReopenedSegment {
  readonly file: SegmentFile;
  readonly seq: number;
}

const attempt = async <T>(operation: LogWriteError["operation"], path: string, run: () => Promise<T>): Promise<T> => {
  try {
    return await run();
  } catch (cause) {
    throw cause instanceof LogWriteError
      ? cause
      : new LogWriteError({ segment: path, operation, code: errorCode(cause), detail: errorDetail(cause) });
  }
};

/** Cut segment `point.seq` to `point.bytes`, fsync the cut, and check by reading it back that it ends on a whole record. */
const cutToDurable = async (dir: string, openSegment: OpenSegment, point: DurablePoint): Promise<void> => {
  const path = join(dir, segmentName(point.seq));
  const file = await attempt("open", path, () => openSegment(path));
  try {
    await attempt("truncate", path, () => file.truncate(point.bytes));
    await attempt("fsync", path, () => file.datasync());
  } finally {
    await file.close().catch(() => undefined);
  }
  const bytes = await attempt("open", path, () => readFile(path));
  const scan = scanSegment(bytes, Number.MAX_SAFE_INTEGER);
  if (bytes.length !== point.bytes || scan.torn !== undefined) {
    const found =
      bytes.length !== point.bytes ? `${bytes.length} bytes` : `a torn record at offset ${scan.torn?.offset}`;
    throw new LogWriteError({
      segment: path,
      operation: "truncate",
      code: "EIO",
      detail: `read back after cutting it to its last fsynced byte ${point.bytes}, it holds ${found}`,
    });
  }
};

/**
 * Reopen a failed log from what is known durable: cut the failed segment back
 * to `point` (dropping whatever the failed writes left), then start segment
 * `point.seq + 1`, empty, and fsync it and the directory. Safe to run again
 * after it fails part-way.
 *
 * @example
 * const { file, seq } = await reopenFromDurable(dir, openSegmentFile, { seq: 3, bytes: 4096 });
 */
export const reopenFromDurable = async (
  dir: string,
  openSegment: OpenSegment,
  point: DurablePoint,
): Promise<ReopenedSegment> => {
  await cutToDurable(dir, openSegment, point);
  const seq = point.seq + 1;
  const path = join(dir, segmentName(seq));
  const file = await attempt("open", path, () => openSegment(path));
  try {
    // An earlier attempt may have left bytes here.
    await attempt("truncate", path, () => file.truncate(0));
    await attempt("fsync", path, () => file.datasync());
    await attempt("fsync", dir, () => syncDirectory(dir));
    return { file, seq };
  } catch (error) {
    await file.close().catch(() => undefined);
    throw error;
  }
};
