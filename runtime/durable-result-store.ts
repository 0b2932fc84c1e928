import { lockDataDir } from "../broker/data-dir-lock.ts";
import { DurableLog, type DurableLogOptions } from "../broker/durable-log.ts";
import type { MessageGraph } from "../dsl/graph.ts";
import type { TaskState } from "../dsl/result.ts";
import { ResultLogEncoder, replayResultLog } from "./result-log.ts";
import {
  MemoryResultStore,
  type FinalOutcome,
  type MemoryResultStoreOptions,
  type ResultRecord,
  type ResultStore,
  type StateDetails,
} from "./result-store.ts";

/**
 * How a durable result store keeps its log: the in-memory store's bounds and
 * expiry, plus the log's fsync policy and when it is compacted.
 *
 * @example
 * await DurableResultStore.open("./data/results", { fsync: { intervalMs: 100 }, maxResults: 50_000 });
 */
export interface DurableResultStoreOptions extends MemoryResultStoreOptions {
  /** Fsync policy of the log (see DurableLogOptions). Default "always": a write is answered once it is on disk. */
  readonly fsync?: DurableLogOptions["fsync"];
  /** Segment size of the log. Default 64 MiB. */
  readonly segmentBytes?: number;
  /**
   * Compact the log while running once it is larger than this and than four
   * times its size after the last compaction. Default 64 MiB.
   */
  readonly compactAtBytes?: number;
  /** Where recovery, corruption and compaction are reported. Default: stderr. */
  readonly log?: (message: string) => void;
}

/** Writes between two looks at the log's size (a look is cheap; this keeps it off every write). */
const COMPACTION_CHECK_EVERY = 1_024;

/**
 * A result store that survives a crash of its process: a MemoryResultStore
 * whose every write (task states and results, forgets, workflow graphs, join
 * arrivals, once-only claims and their release) is appended to a durable log
 * before it is answered, and replayed when the store is opened again. The log
 * is the broker's (CRC-checked records, group commit, fsync before the answer
 * by default, crash-safe compaction), in a directory of its own, so the node's
 * queue journal knows nothing of tasks. The log stays bounded: it is compacted
 * to the records the store still holds, which the store itself bounds and
 * expires.
 *
 * Writes change the store at once, as in memory; what waits for the disk is
 * every answer, reads and pushes to waiters included, so nobody acts on a
 * state that a crash could take back.
 *
 * @example
 * const results = await DurableResultStore.open("./data/results");
 * serveResults(node, results);
 * // ...
 * await results.close();
 */
export class DurableResultStore implements ResultStore {
  private readonly records = new ResultLogEncoder();
  /** The append of the last write: the log makes appends durable in order, so every answer waits for this one. */
  private lastWrite: Promise<void> | undefined;
  private writesSinceCheck = 0;
  private compactedSize: number;
  private compacting: Promise<void> | undefined;

  private constructor(
    private readonly memory: MemoryResultStore,
    private readonly log: DurableLog,
    private readonly now: () => number,
    private readonly options: DurableResultStoreOptions,
    private readonly say: (message: string) => void,
    private readonly releaseLock: () => void,
  ) {
    this.compactedSize = log.size;
  }

  /**
   * Open (creating it if needed) the store in `dir`: lock the directory, read
   * the log (a torn or corrupted tail is reported and cut away, the records
   * before it kept), put back what it holds, then compact it.
   *
   * @example
   * const results = await DurableResultStore.open(join(dataDir, "results"), { log: (m) => console.error(m) });
   */
  static async open(dir: string, options: DurableResultStoreOptions = {}): Promise<DurableResultStore> {
    const say = options.log ?? ((message: string) => console.error(`celerity results: ${message}`));
    const now = options.now ?? Date.now;
    const lock = lockDataDir(dir);
    let log: DurableLog | undefined;
    try {
      const opened = await DurableLog.open(dir, {
        ...(options.fsync !== undefined ? { fsync: options.fsync } : {}),
        ...(options.segmentBytes !== undefined ? { segmentBytes: options.segmentBytes } : {}),
        onCorruption: (info) => say(`corrupted record in ${info.segment} at offset ${info.offset} (${info.reason}); ${info.droppedBytes} bytes after it dropped`),
      });
      log = opened.log;
      const memory = new MemoryResultStore({ ...options, now });
      const ttl = options.ttlMs ?? 24 * 60 * 60 * 1000;
      const { entries, summary } = replayResultLog(opened.records, ttl, now(), (reason) => say(`log: ${reason}`));
      for (const entry of entries) memory.restore(entry);
      const store = new DurableResultStore(memory, log, now, options, say, () => lock.release());
      await log.compact(store.snapshot());
      store.compactedSize = log.size;
      const corrupted = opened.report.corrupted.length;
      say(
        `recovered ${summary.records} task results, ${summary.graphs} workflow graphs, ${summary.joins} joins and ${summary.claims} claims from ${opened.records.length} records` +
          (corrupted > 0 ? ` (${corrupted} corrupted records reported)` : ""),
      );
      return store;
    } catch (error) {
      await log?.close().catch(() => undefined);
      lock.release();
      throw error;
    }
  }

  setState(id: string, task: string, state: TaskState, details?: StateDetails): Promise<void> {
    this.memory.setState(id, task, state, details);
    const record = this.memory.peek(id);
    // A final record is left as it was: nothing to log.
    if (record !== undefined && record.state === state) this.append(this.records.record(record));
    return this.settled(undefined);
  }

  complete(id: string, task: string, outcome: FinalOutcome): Promise<boolean> {
    const first = this.memory.complete(id, task, outcome);
    const record = first ? this.memory.peek(id) : undefined;
    if (record !== undefined) this.append(this.records.record(record));
    return this.settled(first);
  }

  get(id: string): Promise<ResultRecord | undefined> {
    return this.memory.get(id).then((record) => this.settled(record));
  }

  waitFinal(id: string, timeoutMs: number | undefined, onTimeout: () => Error): Promise<ResultRecord> {
    // The write that finishes the task has been appended by the time its waiters run: wait for it to be durable.
    return this.memory.waitFinal(id, timeoutMs, onTimeout).then((record) => this.settled(record));
  }

  forget(id: string): Promise<void> {
    void this.memory.forget(id);
    this.append(this.records.forget(id));
    return this.settled(undefined);
  }

  saveGraph(graph: MessageGraph): Promise<void> {
    void this.memory.saveGraph(graph);
    this.append(this.records.graph(graph, this.now()));
    return this.settled(undefined);
  }

  graph(id: string): Promise<MessageGraph | undefined> {
    return this.memory.graph(id).then((graph) => this.settled(graph));
  }

  arrive(key: string, member: number): Promise<number> {
    // Applied by the call itself; the promise only carries the count.
    const arrived = this.memory.arrive(key, member);
    this.append(this.records.arrive(key, [member], this.now()));
    return arrived.then((count) => this.settled(count));
  }

  claim(key: string): Promise<boolean> {
    // Logged whether or not it is the first: the replay applies the same rule, in the same order.
    const first = this.memory.claim(key);
    this.append(this.records.claim(key, this.now()));
    return first.then((claimed) => this.settled(claimed));
  }

  release(key: string): Promise<void> {
    void this.memory.release(key);
    this.append(this.records.release(key));
    return this.settled(undefined);
  }

  /**
   * Replace the log by the records of what the store holds now; appends go on
   * meanwhile. Also runs by itself once the log has grown (compactAtBytes).
   *
   * @example
   * await results.compact();
   */
  compact(): Promise<void> {
    if (this.compacting !== undefined) return this.compacting;
    const before = this.log.size;
    this.compacting = this.log
      .compact(this.snapshot())
      .then(
        () => {
          this.compactedSize = this.log.size;
          this.say(`compacted the results log from ${before} to ${this.log.size} bytes`);
        },
        (error: unknown) => this.say(`compaction of the results log failed (the log is unchanged): ${error instanceof Error ? error.message : String(error)}`),
      )
      .finally(() => (this.compacting = undefined));
    return this.compacting;
  }

  /** Flush the log and close it; waiters are dropped. */
  async close(): Promise<void> {
    await this.compacting;
    await this.memory.close();
    try {
      await this.log.close();
    } finally {
      this.releaseLock();
    }
  }

  /** The records that rebuild the store as it is now (taken at once: writes made after it follow it in the log). */
  private snapshot(): Uint8Array[] {
    const live: Uint8Array[] = [];
    for (const entry of this.memory.contents()) live.push(this.records.entry(entry));
    return live;
  }

  private append(bytes: Uint8Array): void {
    const write = this.log.append(bytes);
    // A failed append fails every answer that waits for it (see settled); the log is unusable from then on.
    write.catch(() => undefined);
    this.lastWrite = write;
    if (++this.writesSinceCheck >= COMPACTION_CHECK_EVERY) {
      this.writesSinceCheck = 0;
      const threshold = Math.max(this.options.compactAtBytes ?? 64 * 1024 * 1024, this.compactedSize * 4);
      if (this.compacting === undefined && this.log.size >= threshold) void this.compact();
    }
  }

  /** `value` once every write made so far is durable. */
  private settled<T>(value: T): Promise<T> {
    const write = this.lastWrite;
    return write === undefined ? Promise.resolve(value) : write.then(() => value);
  }
}
