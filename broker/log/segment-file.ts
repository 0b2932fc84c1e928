// The log's only way to the disk: one open segment file written at explicit positions, and
// fsync of a directory. A test puts a failing disk behind the same interface.
import * as fs from "node:fs";

/**
 * One open file of the log, written at explicit positions. The log reaches the
 * disk only through this interface, so a test can put a failing disk behind it.
 *
 * @example
 * const file = await openSegmentFile("/var/lib/celerity/0000000000000001.log");
 * await file.write(frame, 0);
 * await file.datasync();
 * await file.close();
 */
export interface SegmentFile {
  /** Write all of `data` at byte `position`; rejects if the OS stops short (ENOSPC, EIO, ...). */
  write(data: Uint8Array, position: number): Promise<void>;
  /** fdatasync: the data written so far (and the size) reaches stable storage. */
  datasync(): Promise<void>;
  /** Cut the file to `length` bytes. */
  truncate(length: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * Opens `path` for writing, creating it if missing and never truncating it.
 *
 * @example
 * const open: OpenSegment = async (path) => countingWrapper(await openSegmentFile(path));
 */
export type OpenSegment = (path: string) => Promise<SegmentFile>;

const call = <T>(run: (done: (error: NodeJS.ErrnoException | null, value?: T) => void) => void): Promise<T> =>
  new Promise((resolve, reject) => run((error, value) => (error ? reject(error) : resolve(value as T))));

// A regular file only writes short when the device is full; the next call would report why.
const deviceFull = (): Error =>
  Object.assign(new Error("ENOSPC: no space left on device, write returned 0 bytes"), { code: "ENOSPC" });

/**
 * Writes up to this size go to the page cache on the calling thread: a write
 * that small returns in microseconds, while a trip through libuv's thread
 * pool (queue, wake a thread, signal back) cost about as much again as the
 * fdatasync that follows it. Larger writes (a compaction, a big batch) stay
 * off the event loop.
 */
const INLINE_WRITE_BYTES = 64 * 1024;

/**
 * A batch of up to this many bytes is fdatasynced on the calling thread too,
 * while the disk's syncs take at most INLINE_SYNC_MAX_NS (a running average):
 * a lone send then waits for the sync alone, not also for a thread's wake-up
 * and the signal back (on the machines measured, a fifth of a durable send).
 * A larger batch (more than a record or two) means more work is arriving,
 * which the event loop gets on with while a thread syncs: at a steady 2,000
 * sends a second, syncing batches of up to 4 KiB inline held deliveries
 * back for each sync's 200 µs, a fifth of send-to-start at the median. A
 * slow disk would stall the loop, so it never syncs inline.
 */
const INLINE_SYNC_BYTES = 512;
const INLINE_SYNC_MAX_NS = 500_000;
/**
 * Once syncs are slow, every this many small batches one is synced inline
 * anyway, to measure the disk again: a sync through the pool is timed with
 * its hand-off, so its times cannot tell when the disk is fast again (a few
 * slow syncs at start-up used to keep a fast disk on the pool for good).
 */
const INLINE_SYNC_PROBE_EVERY = 32;

/**
 * Where each fdatasync runs: on the calling thread for a small batch while
 * inline syncs average at most INLINE_SYNC_MAX_NS (and now and then to
 * measure again), else in the thread pool.
 *
 * @example
 * const placement = new SyncPlacement();
 * placement.inline(200); // true: a small batch, and no slow sync seen
 * placement.timedInline(2_000_000); // a 2 ms sync moves the average towards it
 */
export class SyncPlacement {
  /** A running average of how long an inline fdatasync took, in ns. */
  private averageNs = 0;
  /** Small batches sent to the pool since the last inline sync. */
  private pooled = 0;

  /** Whether a sync of `bytes` unsynced bytes runs inline; a caller that syncs inline reports its time to `timedInline`. */
  inline(bytes: number): boolean {
    if (bytes > INLINE_SYNC_BYTES) return false;
    if (this.averageNs <= INLINE_SYNC_MAX_NS || ++this.pooled >= INLINE_SYNC_PROBE_EVERY) {
      this.pooled = 0;
      return true;
    }
    return false;
  }

  timedInline(ns: number): void {
    this.averageNs += (ns - this.averageNs) / 8;
  }
}

/**
 * The file is grown ahead of its writes in steps of this size, so that the
 * fdatasync after an append has only data to flush: an append that moves the
 * file's size also has the inode's new size to journal, which measured about
 * half as much again per sync (ext4: 120 against 78 µs for a 174-byte append).
 * The grown part is a hole, taking no disk space and read back as zeros;
 * close() cuts the file back to what was written, and recovery cuts the zero
 * tail a crash leaves behind.
 */
const GROW_BYTES = 1024 * 1024;

// The callback API on a raw descriptor, not FileHandle: measured the same speed
// for write + fdatasync, with one allocation less per call and no handle to leak.
class NodeSegmentFile implements SegmentFile {
  /** Where the bytes written end: the segment's length once closed. */
  private written: number;

  constructor(
    private readonly fd: number,
    /** The file's size, past `written` while grown ahead of the writes. */
    private size: number,
  ) {
    this.written = size;
  }

  /** Bytes written since the last fdatasync began. */
  private unsynced = 0;
  private readonly placement = new SyncPlacement();

  async write(data: Uint8Array, position: number): Promise<void> {
    this.unsynced += data.length;
    this.growFor(position + data.length);
    if (data.length <= INLINE_WRITE_BYTES) return this.writeInline(data, position);
    let done = 0;
    while (done < data.length) {
      const written = await call<number>((cb) =>
        fs.write(this.fd, data, done, data.length - done, position + done, cb),
      );
      if (written === 0) throw deviceFull();
      done += written;
    }
    this.written = Math.max(this.written, position + done);
  }

  /** Grow the file ahead of a write that would pass its size (see GROW_BYTES). */
  private growFor(end: number): void {
    if (end <= this.size) return;
    const size = Math.ceil(end / GROW_BYTES) * GROW_BYTES;
    try {
      fs.ftruncateSync(this.fd, size);
      this.size = size;
    } catch {
      // Only a speed-up: the write itself grows the file, and reports what is wrong with it.
    }
  }

  private writeInline(data: Uint8Array, position: number): void {
    let done = 0;
    while (done < data.length) {
      const written = fs.writeSync(this.fd, data, done, data.length - done, position + done);
      if (written === 0) throw deviceFull();
      done += written;
    }
    this.written = Math.max(this.written, position + done);
  }

  datasync(): Promise<void> {
    const inline = this.placement.inline(this.unsynced);
    this.unsynced = 0;
    if (!inline) return call((cb) => fs.fdatasync(this.fd, cb));
    const started = process.hrtime.bigint();
    try {
      fs.fdatasyncSync(this.fd);
    } catch (error) {
      return Promise.reject(error);
    }
    this.placement.timedInline(Number(process.hrtime.bigint() - started));
    return Promise.resolve();
  }

  async truncate(length: number): Promise<void> {
    await call((cb) => fs.ftruncate(this.fd, length, cb));
    this.size = length;
    this.written = length;
  }

  /** Cut the part grown ahead and not written, durably (a later segment must never follow a zero tail), then close. */
  async close(): Promise<void> {
    try {
      if (this.size > this.written) {
        await call((cb) => fs.ftruncate(this.fd, this.written, cb));
        this.size = this.written;
        await call((cb) => fs.fdatasync(this.fd, cb));
      }
    } finally {
      await call((cb) => fs.close(this.fd, cb));
    }
  }
}

/**
 * Open a segment file with Node's fs: write-only, created when missing (mode
 * 0644), never truncated.
 *
 * @example
 * const file = await openSegmentFile(join(dir, segmentName(1)));
 */
export const openSegmentFile: OpenSegment = async (path) => {
  const fd = await call<number>((cb) => fs.open(path, fs.constants.O_WRONLY | fs.constants.O_CREAT, 0o644, cb));
  try {
    const { size } = await call<fs.Stats>((cb) => fs.fstat(fd, cb));
    return new NodeSegmentFile(fd, size);
  } catch (error) {
    fs.close(fd, () => {});
    throw error;
  }
};

/**
 * fsync a directory, so that files created, renamed or removed in it stay so
 * after a power loss.
 *
 * @example
 * await rename(join(dir, "a.tmp"), join(dir, "a"));
 * await syncDirectory(dir);
 */
export const syncDirectory = async (dir: string): Promise<void> => {
  const fd = await call<number>((cb) => fs.open(dir, fs.constants.O_RDONLY, cb));
  try {
    await call((cb) => fs.fsync(fd, cb));
  } finally {
    await call((cb) => fs.close(fd, cb));
  }
};
