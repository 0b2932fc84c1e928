// One durable log shared by several owners (a node's message journal and its result store):
// one group commit, so one write and one fsync, covers the records of all of them; on open
// each owner gets back its own records; a compaction writes every owner's live records.
//
// The first owner's records are written as they are, so a log written before it was shared
// reads back unchanged. Every other owner's record starts with a two-byte mark: 0xC1, a byte
// that begins no msgpack value (the owners' records are msgpack), then the owner's number.
import type { DurableLog, LogReopened } from "./durable-log.ts";

const MARK = 0xc1;

/** Who a record belongs to: 0 for the log's first owner (records unmarked), 1 to 255 for the others. */
export type LogOwner = number;

/**
 * `record` as it is written for `owner`: the first owner's as it is, any
 * other's behind its mark (a copy).
 *
 * @example
 * markRecord(1, encode(entries)); // [0xc1, 1, ...entries]
 */
export const markRecord = (owner: LogOwner, record: Uint8Array): Uint8Array => {
  if (owner === 0) return record;
  const marked = new Uint8Array(record.length + 2);
  marked[0] = MARK;
  marked[1] = owner;
  marked.set(record, 2);
  return marked;
};

/**
 * Recovered records split by owner, each owner's in append order (views past
 * the mark, not copies); `owners` is how many there are. A record marked for
 * an owner beyond them is reported and left out.
 *
 * @example
 * const [journal, results] = recordsByOwner(recovered.records, 2, (reason) => log(reason));
 */
export const recordsByOwner = (
  records: readonly Uint8Array[],
  owners: number,
  report: (reason: string) => void,
): Uint8Array[][] => {
  const split: Uint8Array[][] = Array.from({ length: owners }, () => []);
  for (let i = 0; i < records.length; i++) {
    const record = records[i];
    if (record.length === 0 || record[0] !== MARK) {
      split[0].push(record);
      continue;
    }
    const owner = record.length > 1 ? record[1] : -1;
    if (owner > 0 && owner < owners) split[owner].push(record.subarray(2));
    else report(`record ${i} belongs to owner ${owner}, which this log does not have: left out`);
  }
  return split;
};

/** When a shared log compacts itself, and where it says so. */
export interface SharedLogPolicy {
  /** Compact once the log is larger than this and than four times its size after the last compaction. */
  readonly compactAtBytes: number;
  /** What the log is called in what is said ("the log", "the results log"). */
  readonly name: string;
  readonly say: (message: string) => void;
}

/** Writes between two looks at the log's size. */
const WRITES_PER_CHECK = 1_024;

/**
 * A durable log whose records belong to several owners, each writing through
 * its `LogShare`. Every owner names its live records (`share`'s snapshot), so
 * a compaction, which any owner may start, keeps them all.
 *
 * @example
 * const shared = new SharedLog(log, { compactAtBytes: 64 << 20, name: "the log", say: console.error });
 * const journal = shared.share(0, () => journalSnapshot());
 * const results = shared.share(1, () => resultsSnapshot());
 * await Promise.all([journal.append(a), results.append(b)]); // one write, one fsync
 */
export class SharedLog {
  private readonly snapshots = new Map<LogOwner, () => Iterable<Uint8Array>>();
  private compactedSize: number;
  private writesSinceCheck = 0;
  /** The compaction in flight, if any. */
  compacting: Promise<void> | undefined;

  constructor(
    readonly log: DurableLog,
    private readonly policy: SharedLogPolicy,
  ) {
    this.compactedSize = log.size;
  }

  /** The way into the log of `owner`, whose live records `snapshot` names (unmarked). */
  share(owner: LogOwner, snapshot: () => Iterable<Uint8Array>): LogShare {
    this.snapshots.set(owner, snapshot);
    return new LogShare(this, owner);
  }

  /** Bytes on disk, every owner's records together. */
  get size(): number {
    return this.log.size;
  }

  /** Take the log's size now as its size after a compaction (one its opener made). */
  compacted(): void {
    this.compactedSize = this.log.size;
  }

  /** Every owner's live records as they are now, marked (all taken at once). */
  liveRecords(): Uint8Array[] {
    const records: Uint8Array[] = [];
    for (const [owner, snapshot] of this.snapshots)
      for (const record of snapshot()) records.push(markRecord(owner, record));
    return records;
  }

  /** Count writes; every so many, compact if the log has grown enough (appends go on meanwhile). */
  wrote(count = 1): void {
    this.writesSinceCheck += count;
    if (this.compacting !== undefined || this.writesSinceCheck < WRITES_PER_CHECK) return;
    this.writesSinceCheck = 0;
    if (this.log.size >= Math.max(this.policy.compactAtBytes, this.compactedSize * 4)) void this.compact();
  }

  /**
   * Replace the log by every owner's live records (taken now: what is written
   * after follows them). A failure is said, and leaves the log as it was.
   */
  compact(): Promise<void> {
    if (this.compacting !== undefined) return this.compacting;
    const { log, policy } = this;
    const before = log.size;
    this.compacting = log
      .compact(this.liveRecords())
      .then(
        () => {
          this.compactedSize = log.size;
          policy.say(`compacted ${policy.name} from ${before} to ${log.size} bytes`);
        },
        (error: unknown) =>
          policy.say(
            `compaction of ${policy.name} failed (the log is unchanged): ${error instanceof Error ? error.message : String(error)}`,
          ),
      )
      .finally(() => (this.compacting = undefined));
    return this.compacting;
  }
}

/**
 * One owner's way into a shared log: its appends are marked as its own and
 * share the log's group commit with every other owner's.
 *
 * @example
 * await share.appendDeferred(() => [encode(changes)]);
 */
export class LogShare {
  constructor(
    private readonly shared: SharedLog,
    readonly owner: LogOwner,
  ) {}

  /** Bytes on disk of the whole log. */
  get size(): number {
    return this.shared.size;
  }

  /** Append one record (see DurableLog.append). */
  append(record: Uint8Array): Promise<void> {
    return this.shared.log.append(markRecord(this.owner, record));
  }

  /** Append the records `produce` returns when the batch being gathered is cut (see DurableLog.appendDeferred). */
  appendDeferred(produce: () => readonly Uint8Array[]): Promise<void> {
    const { owner } = this;
    return this.shared.log.appendDeferred(owner === 0 ? produce : () => produce().map((r) => markRecord(owner, r)));
  }

  /** Count `count` writes towards the log's next look at its size. */
  wrote(count = 1): void {
    this.shared.wrote(count);
  }

  /** Compact the whole log now, every owner's live records kept. */
  compact(): Promise<void> {
    return this.shared.compact();
  }
}

/**
 * An owner other than the first, in a log that another owner opens (a
 * node's result store in the node's log): given its own records on open, and
 * asked for its live records at every compaction.
 *
 * @example
 * await BrokerNode.start({ dataDir }, {}, [resultsGuest]);
 */
export interface LogGuest {
  /** 1 to 255, one per guest of a log. */
  readonly owner: LogOwner;
  /** The largest record it writes, when above the log's default. */
  readonly maxRecordBytes?: number;
  /** Put back what `records` (its own, oldest first) hold, then write through `share`. */
  recover(records: readonly Uint8Array[], share: LogShare): void | Promise<void>;
  /** Its live records now, unmarked. */
  snapshot(): Iterable<Uint8Array>;
  /** The log failed and has been reopened: what the guest wrote meanwhile was refused (see DurableLogOptions.onReopen). */
  reopened?(info: LogReopened): void;
}
