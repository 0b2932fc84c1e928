// The durable log: an append-only sequence of records in segment files, with group commit,
// recovery on open and compaction. It stores bytes; what a record means is its user's business.
import { join, resolve } from "node:path";
import {
  errorCode,
  errorDetail,
  LogClosedError,
  LogUnusableError,
  LogWriteError,
  RecordTooLargeError,
} from "./durable-log-errors.ts";
import { type DurableLogInternals, type DurableLogOptions, type Settings, settingsOf } from "./durable-log-options.ts";
import { GroupCommit } from "./group-commit.ts";
import {
  abandonCompaction,
  type CompactionContext,
  commitCompaction,
  finishCompaction,
  prepareCompaction,
  stageCompaction,
} from "./log-compaction.ts";
import { segmentName } from "./log-directory.ts";
import { frameBytes, writeRecord } from "./log-record.ts";
import { openFailure, type RecoveryReport, recoverLog } from "./log-recovery.ts";
import { type SegmentFile, syncDirectory } from "./segment-file.ts";

export type { DurableLogInternals, DurableLogOptions } from "./durable-log-options.ts";
export type { CorruptionReport, RecoveryReport } from "./log-recovery.ts";

/** One write's buffer at most; a larger batch takes several writes, still with one fsync. */
const MAX_WRITE_BYTES = 4 * 1024 * 1024;

/**
 * Open the log in `dir` with test seams; `DurableLog.open` is this without them.
 *
 * @example
 * const { log } = await openDurableLog(dir, { segmentBytes: 4096 }, { openSegment: failingDisk });
 */
export const openDurableLog = async (
  dir: string,
  options: DurableLogOptions = {},
  internals: DurableLogInternals = {},
): Promise<{ log: DurableLog; records: Uint8Array[]; report: RecoveryReport }> => {
  const settings = settingsOf(options, internals);
  const root = resolve(dir);
  const recovered = await recoverLog(root, settings);
  const path = join(root, segmentName(recovered.lastSeq));
  let file: SegmentFile;
  try {
    file = await settings.openSegment(path);
  } catch (cause) {
    throw openFailure(root, path, cause);
  }
  if (recovered.created) {
    // The new first segment must survive a power loss as much as the records in it.
    await syncDirectory(root).catch(async (cause: unknown) => {
      await file.close().catch(() => undefined);
      throw new LogWriteError({
        segment: root,
        operation: "fsync",
        code: errorCode(cause),
        detail: errorDetail(cause),
      });
    });
  }
  const log = new DurableLog(root, settings, file, recovered.lastSeq, recovered.lastBytes, recovered.totalBytes);
  return { log, records: recovered.records, report: recovered.report };
};

/**
 * An append-only log of opaque records in segment files under one directory,
 * for the standalone broker's state. Appends in flight share one write and one
 * fsync (group commit); `open` returns every intact record in append order and
 * cuts away a torn or corrupted tail; `compact` replaces the log by the records
 * still live, crash-safely. One process at a time may open a directory.
 *
 * @example
 * const { log, records } = await DurableLog.open("/var/lib/celerity/log");
 * for (const record of records) state.apply(decode(record));
 * await log.append(encode({ kind: "enqueued", id }));
 * await log.compact(state.liveRecords());
 * await log.close();
 */
export class DurableLog {
  private readonly commit = new GroupCommit<Uint8Array>((records) => this.writeBatch(records));
  private readonly timer: NodeJS.Timeout | undefined;
  private file: SegmentFile | undefined;
  private path: string;
  private dirty = false;
  private syncQueued = false;
  private closing: Promise<void> | undefined;
  private failure: LogWriteError | undefined;
  /** False while a failure is known only to the log (a background fsync), so `close` must still report it. */
  private failureSeen = true;

  /** Use `DurableLog.open`. */
  constructor(
    private readonly dir: string,
    private readonly settings: Settings,
    file: SegmentFile,
    private seq: number,
    private activeBytes: number,
    private totalBytes: number,
  ) {
    this.file = file;
    this.path = join(dir, segmentName(seq));
    if (!settings.always) {
      this.timer = setInterval(() => this.syncInBackground(), settings.intervalMs);
      this.timer.unref();
    }
  }

  /**
   * Open (creating the directory if needed) and recover: returns the log, every
   * intact record in append order, and what was found.
   *
   * @example
   * const { log, records, report } = await DurableLog.open(dir, { onCorruption: (c) => console.warn(c) });
   */
  static open(
    dir: string,
    options?: DurableLogOptions,
  ): Promise<{ log: DurableLog; records: Uint8Array[]; report: RecoveryReport }> {
    return openDurableLog(dir, options);
  }

  /** Bytes on disk across segments. */
  get size(): number {
    return this.totalBytes;
  }

  /**
   * Append one record; resolves when it is durable under the fsync policy. The
   * bytes are read when the batch is written, so leave them unchanged until the
   * promise settles. A rejected append may or may not be found on the next open.
   *
   * @example
   * await log.append(new TextEncoder().encode("hello"));
   */
  append(record: Uint8Array): Promise<void> {
    const refused = this.refuse("append") ?? this.tooLarge(record);
    return refused ?? this.commit.add(record);
  }

  /**
   * Append several records at once, in order, in one write.
   *
   * @example
   * await log.appendMany([a, b, c]);
   */
  appendMany(records: readonly Uint8Array[]): Promise<void> {
    let refused = this.refuse("append");
    for (let i = 0; refused === undefined && i < records.length; i++) refused = this.tooLarge(records[i]);
    return refused ?? this.commit.addAll(records);
  }

  /**
   * Append the records `produce` returns when the batch being gathered is cut,
   * just before its write: a writer folds the changes it gathers until then
   * into fewer records, and they share that batch's write and fsync with every
   * other append. Resolves as `append` does. A produced record over the size
   * limit fails the whole batch (the log stays usable), so a writer should
   * keep its records within `maxRecordBytes`.
   *
   * @example
   * await log.appendDeferred(() => [encode(changesSoFar())]);
   */
  appendDeferred(produce: () => readonly Uint8Array[]): Promise<void> {
    return (
      this.refuse("append") ??
      this.commit.addDeferred(() => {
        const records = produce();
        for (const record of records) if (record.length > this.settings.maxRecordBytes) throw this.oversize(record);
        return records;
      })
    );
  }

  /**
   * Replace the whole log by `live` (new segments written and fsynced, then the
   * old ones removed). A crash at any step leaves either the old or the new log
   * for the next open, never a mix. Appends issued before `compact` belong to
   * the log being replaced; those issued after it follow the live records.
   *
   * @example
   * await log.compact(queue.pending().map(encodeEnqueued));
   */
  compact(live: Iterable<Uint8Array>): Promise<void> {
    return this.refuse("compact") ?? this.commit.exclusive(() => this.replaceBy(live));
  }

  /**
   * Flush pending appends (fsync) and close the files. Rejects if that last
   * fsync fails, or if a background fsync failed without any append reporting it.
   *
   * @example
   * await log.close();
   */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    if (this.timer) clearInterval(this.timer);
    this.closing = this.commit.exclusive(async () => {
      let error: unknown;
      if (!this.failure && this.dirty)
        error = await this.syncActive().then(
          () => undefined,
          (e: unknown) => e,
        );
      const file = this.file;
      this.file = undefined;
      await file?.close().catch((cause: unknown) => {
        error ??= this.writeError("close", this.path, cause);
      });
      if (error === undefined && this.failure && !this.failureSeen) error = this.failure;
      this.failureSeen = true;
      if (error !== undefined) throw error;
    });
    return this.closing;
  }

  private refuse(operation: string): Promise<never> | undefined {
    if (this.closing) return Promise.reject(new LogClosedError({ dir: this.dir, operation }));
    if (this.failure) {
      this.failureSeen = true;
      return Promise.reject(new LogUnusableError({ dir: this.dir, failure: this.failure }));
    }
    return undefined;
  }

  private tooLarge(record: Uint8Array): Promise<never> | undefined {
    return record.length > this.settings.maxRecordBytes ? Promise.reject(this.oversize(record)) : undefined;
  }

  private oversize(record: Uint8Array): RecordTooLargeError {
    return new RecordTooLargeError({ size: record.length, max: this.settings.maxRecordBytes });
  }

  private writeError(operation: LogWriteError["operation"], path: string, cause: unknown): LogWriteError {
    return cause instanceof LogWriteError
      ? cause
      : new LogWriteError({ segment: path, operation, code: errorCode(cause), detail: errorDetail(cause) });
  }

  /** Stop the log: what the file holds past the last fsync is unknown until the next open scans it. */
  private fail(error: LogWriteError, seen: boolean): LogWriteError {
    if (this.failure === undefined) {
      this.failure = error;
      this.failureSeen = seen;
      this.settings.onFailure?.(error);
    }
    return error;
  }

  private async io(operation: LogWriteError["operation"], path: string, run: () => Promise<void>): Promise<void> {
    try {
      await run();
    } catch (cause) {
      throw this.writeError(operation, path, cause);
    }
  }

  private activeFile(): SegmentFile {
    if (this.file === undefined) {
      throw new LogWriteError({ segment: this.path, operation: "open", code: "EBADF", detail: "segment is not open" });
    }
    return this.file;
  }

  private async writeBatch(records: Uint8Array[]): Promise<void> {
    if (this.failure) throw new LogUnusableError({ dir: this.dir, failure: this.failure });
    try {
      let next = 0;
      while (next < records.length) {
        if (this.activeBytes > 0 && this.activeBytes + frameBytes(records[next].length) > this.settings.segmentBytes) {
          await this.rotate();
        }
        // One write: the records that fit in this segment and in one buffer (always at least one).
        let end = next;
        let bytes = 0;
        while (end < records.length) {
          const size = frameBytes(records[end].length);
          const full = bytes + size > MAX_WRITE_BYTES || this.activeBytes + bytes + size > this.settings.segmentBytes;
          if (end > next && full) break;
          bytes += size;
          end += 1;
        }
        const buffer = new Uint8Array(bytes);
        let at = 0;
        for (let i = next; i < end; i++) at = writeRecord(buffer, at, records[i]);
        const file = this.activeFile();
        const position = this.activeBytes;
        await this.io("write", this.path, () => file.write(buffer, position));
        this.activeBytes += bytes;
        this.totalBytes += bytes;
        this.dirty = true;
        next = end;
      }
      if (this.settings.always && this.dirty) await this.syncActive();
    } catch (error) {
      throw this.fail(this.writeError("write", this.path, error), true);
    }
  }

  private async syncActive(): Promise<void> {
    const file = this.activeFile();
    this.dirty = false;
    await this.io("fsync", this.path, () => file.datasync());
  }

  // Records of a segment are durable before any later segment holds records, so
  // a torn write can only ever be at the end of the last segment.
  private async rotate(): Promise<void> {
    if (this.dirty) await this.syncActive();
    const old = this.activeFile();
    this.file = undefined;
    await this.io("close", this.path, () => old.close());
    this.seq += 1;
    this.path = join(this.dir, segmentName(this.seq));
    const path = this.path;
    try {
      this.file = await this.settings.openSegment(path);
    } catch (cause) {
      throw this.writeError("open", path, cause);
    }
    this.activeBytes = 0;
    await this.io("fsync", this.dir, () => syncDirectory(this.dir));
  }

  private syncInBackground(): void {
    if (!this.dirty || this.syncQueued || this.failure || this.closing) return;
    this.syncQueued = true;
    void this.commit.exclusive(async () => {
      this.syncQueued = false;
      if (!this.dirty || this.failure) return;
      try {
        await this.syncActive();
      } catch (error) {
        this.fail(this.writeError("fsync", this.path, error), false);
      }
    });
  }

  private async replaceBy(live: Iterable<Uint8Array>): Promise<void> {
    if (this.failure) throw new LogUnusableError({ dir: this.dir, failure: this.failure });
    const { dir, settings } = this;
    const context: CompactionContext = { dir, ...settings };
    const base = this.seq + 1;
    let written;
    try {
      written = await stageCompaction(context, base, live);
      await prepareCompaction(context, base, written[written.length - 1].seq);
    } catch (error) {
      // Not committed: the old segments are still the log and appends go on there.
      await abandonCompaction(dir).catch(() => undefined);
      throw error;
    }
    try {
      await commitCompaction(context);
      const old = this.activeFile();
      this.file = undefined;
      await this.io("close", this.path, () => old.close());
      await finishCompaction(dir, base, settings.step);
      const last = written[written.length - 1];
      this.seq = last.seq;
      this.path = join(dir, segmentName(last.seq));
      const path = this.path;
      this.file = await settings.openSegment(path).catch((cause: unknown) => {
        throw this.writeError("open", path, cause);
      });
      this.activeBytes = last.bytes;
      this.totalBytes = written.reduce((sum, segment) => sum + segment.bytes, 0);
      this.dirty = false;
    } catch (error) {
      throw this.fail(this.writeError("write", this.path, error), true);
    }
  }
}
