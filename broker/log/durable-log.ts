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
import { reopenDelay, reopenFromDurable } from "./log-reopen.ts";
import { type SegmentFile, syncDirectory } from "./segment-file.ts";

export type { DurableLogInternals, DurableLogOptions } from "./durable-log-options.ts";
export type { CorruptionReport, RecoveryReport } from "./log-recovery.ts";
export type { LogReopened } from "./durable-log-options.ts";

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
  /** The end of what a successful fsync covered: a reopen after a failure cuts the log back to it. */
  private syncedSeq: number;
  private syncedBytes: number;
  /** False once a failure leaves nothing known to reopen from (a compaction that failed after committing). */
  private reopenable = true;
  private reopenAttempts = 0;
  private reopenTimer: { unref(): unknown } | undefined;

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
    this.syncedSeq = seq;
    this.syncedBytes = activeBytes;
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
    if (this.reopenTimer) this.settings.reopenTimers.clearTimeout(this.reopenTimer);
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
      return Promise.reject(this.unusable());
    }
    return undefined;
  }

  private tooLarge(record: Uint8Array): Promise<never> | undefined {
    const max = this.settings.maxRecordBytes;
    return record.length > max ? Promise.reject(new RecordTooLargeError({ size: record.length, max })) : undefined;
  }

  private writeError(operation: LogWriteError["operation"], path: string, cause: unknown): LogWriteError {
    return cause instanceof LogWriteError
      ? cause
      : new LogWriteError({ segment: path, operation, code: errorCode(cause), detail: errorDetail(cause) });
  }

  private unusable(): LogUnusableError {
    return new LogUnusableError({
      dir: this.dir,
      failure: this.failure as LogWriteError,
      reopening: this.reopenable && this.closing === undefined,
    });
  }

  /**
   * Refuse appends from now on: what the file holds past the last fsync is
   * unknown. A later fsync is never trusted (the kernel may have dropped the
   * pages it could not write back and would report success), so the log is
   * reopened from what is known durable instead, after a backoff.
   */
  private fail(error: LogWriteError, seen: boolean): LogWriteError {
    if (this.failure === undefined) {
      this.failure = error;
      this.failureSeen = seen;
      this.settings.onFailure?.(error);
      this.scheduleReopen();
    }
    return error;
  }

  private scheduleReopen(): void {
    if (!this.reopenable || this.closing) return;
    const delay = reopenDelay(this.settings.reopenBackoff, this.reopenAttempts);
    this.reopenTimer = this.settings.reopenTimers.setTimeout(() => {
      this.reopenTimer = undefined;
      void this.commit.exclusive(() => this.reopen());
    }, delay);
    this.reopenTimer.unref();
  }

  private async reopen(): Promise<void> {
    const failure = this.failure;
    if (failure === undefined || this.closing) return;
    this.reopenAttempts += 1;
    const failed = this.file;
    this.file = undefined;
    await failed?.close().catch(() => undefined);
    let reopened;
    try {
      reopened = await reopenFromDurable(this.dir, this.settings.openSegment, {
        seq: this.syncedSeq,
        bytes: this.syncedBytes,
      });
    } catch (error) {
      this.settings.onReopenFailed?.(this.writeError("open", this.path, error), this.reopenAttempts);
      this.scheduleReopen();
      return;
    }
    // What the segments held past the durable point is gone.
    const lost = this.seq === this.syncedSeq ? this.activeBytes - this.syncedBytes : this.activeBytes;
    this.totalBytes = Math.max(0, this.totalBytes - lost);
    this.file = reopened.file;
    this.seq = this.syncedSeq = reopened.seq;
    this.path = join(this.dir, segmentName(reopened.seq));
    this.activeBytes = this.syncedBytes = 0;
    this.dirty = false;
    this.failure = undefined;
    this.failureSeen = true;
    const attempts = this.reopenAttempts;
    this.reopenAttempts = 0;
    // Told before any other append can come in: what the listener appends goes first.
    this.settings.onReopen?.({ failure, attempts, segment: this.path });
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
    if (this.failure) throw this.unusable();
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
    const upTo = this.activeBytes;
    this.dirty = false;
    await this.io("fsync", this.path, () => file.datasync());
    this.syncedBytes = upTo;
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
    this.syncedSeq = this.seq;
    this.syncedBytes = 0;
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
    if (this.failure) throw this.unusable();
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
      this.activeBytes = this.syncedBytes = last.bytes;
      this.syncedSeq = last.seq;
      this.totalBytes = written.reduce((sum, segment) => sum + segment.bytes, 0);
      this.dirty = false;
    } catch (error) {
      // Committed but not finished: the next open finishes it; until then nothing here is known to reopen from.
      this.reopenable = false;
      throw this.fail(this.writeError("write", this.path, error), true);
    }
  }
}
