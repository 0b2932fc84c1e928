// The tagged errors of the durable log (record too large, closed, write failed, unusable,
// directory not writable, recovery failed), and how an OS error's code and detail are read.
import { Data } from "effect";

/**
 * A record larger than the log's `maxRecordBytes`: it was not written.
 *
 * @example
 * await log.append(new Uint8Array(32 * 1024 * 1024)); // rejects: record of 33554432 bytes exceeds ...
 */
export class RecordTooLargeError extends Data.TaggedError("RecordTooLargeError")<{
  readonly size: number;
  readonly max: number;
}> {
  override get message(): string {
    return `record of ${this.size} bytes exceeds the log's maximum of ${this.max} bytes (maxRecordBytes)`;
  }
}

/**
 * The log was closed: nothing can be appended to or compacted in it any more.
 *
 * @example
 * await log.close();
 * await log.append(record); // rejects: durable log at /var/lib/celerity is closed (cannot append)
 */
export class LogClosedError extends Data.TaggedError("LogClosedError")<{
  readonly dir: string;
  readonly operation: string;
}> {
  override get message(): string {
    return `durable log at ${this.dir} is closed (cannot ${this.operation})`;
  }
}

/**
 * The operating system refused a write, fsync or file operation on a segment
 * (ENOSPC, EIO, ...). The records of the failed batch are not durable; a
 * partially written record fails its checksum on the next open, so it is never
 * read back as whole.
 *
 * @example
 * await log.append(record); // rejects: cannot write segment .../0000000000000003.log: ENOSPC (no space left on device)
 */
export class LogWriteError extends Data.TaggedError("LogWriteError")<{
  readonly segment: string;
  readonly operation: "write" | "fsync" | "open" | "close" | "truncate" | "rename" | "remove";
  readonly code: string;
  readonly detail: string;
}> {
  override get message(): string {
    // Directory fsyncs and the compaction marker fail through this error too; only call a segment a segment.
    const what = /\.log(\.compact)?$/.test(this.segment) ? `segment ${this.segment}` : this.segment;
    return `cannot ${this.operation} ${what}: ${this.code} (${this.detail})`;
  }
}

/**
 * An earlier write or fsync failed, so the log refuses records until it has
 * reopened itself from what is known durable (`reopening`), or for good when
 * nothing is known to reopen from (then open it again to recover).
 *
 * @example
 * await log.append(a); // rejects with LogWriteError (ENOSPC)
 * await log.append(b); // rejects: durable log at ... refuses records since a write failed (...): reopening ...
 */
export class LogUnusableError extends Data.TaggedError("LogUnusableError")<{
  readonly dir: string;
  readonly failure: LogWriteError;
  readonly reopening: boolean;
}> {
  override get message(): string {
    return this.reopening
      ? `durable log at ${this.dir} refuses records since a write failed (${this.failure.message}): it is reopening from what is known durable, retrying until the disk takes writes again`
      : `durable log at ${this.dir} stopped accepting records after an earlier failure (${this.failure.message}); open it again to recover`;
  }
}

/**
 * The log directory cannot be created or written (EACCES, EROFS, ENOTDIR, ...).
 *
 * @example
 * await DurableLog.open("/read-only/log"); // rejects: log directory /read-only/log is not writable: EROFS (...)
 */
export class DirectoryNotWritableError extends Data.TaggedError("DirectoryNotWritableError")<{
  readonly dir: string;
  readonly code: string;
  readonly detail: string;
}> {
  override get message(): string {
    return `log directory ${this.dir} is not writable: ${this.code} (${this.detail})`;
  }
}

/**
 * `open` found something it cannot recover from without guessing, such as an
 * unreadable compaction marker or a segment it cannot read; nothing was changed.
 *
 * @example
 * await DurableLog.open(dir); // rejects: cannot recover durable log at ...: compaction marker is unreadable
 */
export class LogRecoveryError extends Data.TaggedError("LogRecoveryError")<{
  readonly dir: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `cannot recover durable log at ${this.dir}: ${this.reason}`;
  }
}

/** The OS error code of `cause` ("ENOSPC"), or "UNKNOWN". */
export const errorCode = (cause: unknown): string =>
  typeof (cause as { code?: unknown })?.code === "string" ? (cause as { code: string }).code : "UNKNOWN";

/** The OS message of `cause` without Node's "CODE: " prefix. */
export const errorDetail = (cause: unknown): string => {
  const text = cause instanceof Error ? cause.message : String(cause);
  return text.replace(/^[A-Z0-9_]+: /, "");
};
