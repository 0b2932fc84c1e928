// The schedules, last runs and lease of a node with a data directory, made durable: every
// change appended to a log in `<data-dir>/schedules`, replayed on start, compacted.
import { Codec } from "../../../broker/codec.ts";
import { lockDataDir } from "../../../broker/log/data-dir-lock.ts";
import { DurableLog, type DurableLogOptions } from "../../../broker/log/durable-log.ts";
import { ScheduleTable, type TableChange } from "../schedule-table.ts";

/**
 * The schedules, last runs and lease of a node with a data directory, made to
 * survive a restart of the node: every change to the ScheduleTable is
 * appended to a durable log (the broker's: checksummed records, group commit,
 * fsync before the answer by default) in `<data-dir>/schedules`, replayed when
 * the node starts, and compacted to the table's contents as it grows.
 *
 * @example
 * const schedules = await ScheduleLog.open(join(dataDir, "schedules"));
 * serveSchedules(node, { log: schedules });
 * // ...
 * await schedules.close();
 */
export class ScheduleLog {
  private readonly codec = new Codec();
  private lastWrite: Promise<void> = Promise.resolve();
  private failure: unknown;
  private sinceCompaction = 0;
  private compacting: Promise<void> | undefined;
  readonly table: ScheduleTable;

  private constructor(
    private readonly log: DurableLog,
    private readonly say: (message: string) => void,
    private readonly releaseLock: () => void,
  ) {
    this.table = new ScheduleTable((change) => this.append(change));
  }

  /** Lock `dir`, read its log back into a table, and compact it. */
  static async open(
    dir: string,
    options: { readonly fsync?: DurableLogOptions["fsync"]; readonly log?: (message: string) => void } = {},
  ): Promise<ScheduleLog> {
    const say = options.log ?? ((message: string) => console.error(`celerity schedules: ${message}`));
    const lock = lockDataDir(dir);
    let log: DurableLog | undefined;
    try {
      const opened = await DurableLog.open(dir, {
        ...(options.fsync !== undefined ? { fsync: options.fsync } : {}),
        onCorruption: (info) =>
          say(
            `corrupted record in ${info.segment} at offset ${info.offset} (${info.reason}); ${info.droppedBytes} bytes after it dropped`,
          ),
      });
      log = opened.log;
      const keeper = new ScheduleLog(log, say, () => lock.release());
      for (const record of opened.records) {
        try {
          keeper.table.restore(keeper.codec.decode(record) as TableChange);
        } catch (error) {
          say(`skipped an unreadable record: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
      await keeper.compact();
      say(`recovered ${keeper.table.size} schedules from ${opened.records.length} records`);
      return keeper;
    } catch (error) {
      await log?.close().catch(() => undefined);
      lock.release();
      throw error;
    }
  }

  /** Resolves once every change made so far is durable; rejects for ever once a write failed. */
  durable(): Promise<void> {
    return this.failure !== undefined ? Promise.reject(this.failure) : this.lastWrite;
  }

  private append(change: TableChange): void {
    const written = this.log.append(this.codec.encode(change, "schedule change"));
    written.catch((error: unknown) => {
      if (this.failure === undefined)
        this.say(
          `a write failed; schedule changes are refused from now on: ${error instanceof Error ? error.message : String(error)}`,
        );
      this.failure ??= error;
    });
    this.lastWrite = written;
    if (++this.sinceCompaction > Math.max(10_000, this.table.size * 4) && this.compacting === undefined)
      void this.compact();
  }

  /** Replace the log by the records that rebuild the table as it is now. */
  compact(): Promise<void> {
    this.compacting ??= this.log
      .compact(this.table.snapshot().map((change) => this.codec.encode(change, "schedule change")))
      .then(
        () => {
          this.sinceCompaction = 0;
        },
        (error: unknown) =>
          this.say(
            `compaction failed (the log is unchanged): ${error instanceof Error ? error.message : String(error)}`,
          ),
      )
      .finally(() => (this.compacting = undefined));
    return this.compacting;
  }

  async close(): Promise<void> {
    await this.lastWrite.catch(() => undefined);
    await this.compacting;
    try {
      await this.log.close();
    } finally {
      this.releaseLock();
    }
  }
}
