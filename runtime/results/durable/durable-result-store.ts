// The result store of a broker node with a data directory: the in-memory store made to
// survive a restart by a durable log of its writes, every answer waiting for the disk.
import { lockDataDir } from "../../../broker/log/data-dir-lock.ts";
import { describeCorruption } from "../../../broker/log/log-recovery.ts";
import {
  openDurableLog,
  type DurableLog,
  type DurableLogInternals,
  type DurableLogOptions,
  type LogReopened,
} from "../../../broker/log/durable-log.ts";
import { type LogShare, SharedLog } from "../../../broker/log/shared-log.ts";
import type { MessageGraph } from "../../../dsl/graph.ts";
import type { TaskState } from "../../../dsl/result.ts";
import { DeferredStarts } from "./deferred-starts.ts";
import { logEntry, ResultLogEncoder, replayResultLog, type LogEntry } from "./result-log.ts";
import {
  MemoryResultStore,
  type FinalOutcome,
  type MemoryResultStoreOptions,
  type ResultRecord,
  type ResultStore,
  type StateDetails,
  DEFAULT_RESULT_TTL_MS,
} from "../result-store.ts";

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

/**
 * How long a task's STARTED waits before it is logged: one that finishes
 * sooner has its final record logged instead, and its STARTED never is.
 */
export const STARTED_LOG_DELAY_MS = 100;

/** A result can be as large as a frame (16 MiB): its entry must still fit in a record. */
export const MAX_RESULT_RECORD_BYTES = 64 * 1024 * 1024;

/**
 * A write waiting for its hand-over: the id of a task whose record (as it is
 * then) is to be logged, or an entry of workflow bookkeeping.
 */
type Change = string | LogEntry;

/**
 * A result store that survives a crash of its process: a MemoryResultStore
 * whose every write (task states and results, forgets, workflow graphs, join
 * arrivals, once-only claims and their release) is appended to a durable log
 * before it is answered, and replayed when the store is opened again. The log
 * is the broker's (CRC-checked records, group commit, fsync before the answer
 * by default, crash-safe compaction): a directory of its own (`open`), or a
 * full node's own log, beside the message journal (`restore`), where one
 * fsync covers both. The log stays bounded: it is compacted to the records
 * the store still holds, which the store itself bounds and expires.
 *
 * Writes change the store at once, as in memory; what waits for the disk is
 * every answer, reads and pushes to waiters included, so nobody acts on a
 * state that a crash could take back. Writes gather while the log writes and
 * fsyncs the batch before them, and a task's record is encoded when the log
 * cuts the next batch: the states a task goes through meanwhile (PENDING,
 * STARTED, SUCCESS) cost one entry. STARTED waits longer
 * (STARTED_LOG_DELAY_MS): most tasks finish first, and their final record
 * makes it moot; a read of the task logs it at once.
 *
 * @example
 * const results = await DurableResultStore.open("./data/results");
 * serveResults(node, results);
 * // ...
 * await results.close();
 */
export class DurableResultStore implements ResultStore {
  private readonly encoder = new ResultLogEncoder();
  /**
   * Writes since the last hand-over, in order: a task's record under its id
   * (one key however often it was written), each other write under a number
   * (the id as it came is the key: no key string to build and hash per write).
   */
  private readonly changes = new Map<string | number, Change>();
  private nextChange = 0;
  /** The log's batch the writes since the last hand-over go into (it takes them when it is cut). */
  private gathering: Promise<void> | undefined;
  /** The batch last handed over, until it is durable (or has failed). */
  private writing: Promise<void> | undefined;
  /** Why the log failed, if it did: every answer fails with it until the log is reopened. */
  private failure: unknown;
  private share!: LogShare;
  /** Tasks whose STARTED is held in memory only, for now. */
  private readonly starts = new DeferredStarts(STARTED_LOG_DELAY_MS, (ids) => {
    for (const id of ids) this.logIfStarted(id);
  });

  private constructor(
    private readonly memory: MemoryResultStore,
    private readonly now: () => number,
    private readonly say: (message: string) => void,
    private readonly closeLog: () => Promise<void>,
  ) {}

  /**
   * A store holding what `records` (a results log's, oldest first) hold, that
   * writes through `share` from then on: a full node's result store, in the
   * node's own log. Closing it leaves the log to its opener. What was found is
   * said through `options.log`.
   *
   * @example
   * await BrokerNode.start({ dataDir }, {}, [{ owner: 1, recover: (records, share) => { store = DurableResultStore.restore(records, share, {}); }, snapshot: () => store.snapshot() }]);
   */
  static restore(
    records: readonly Uint8Array[],
    share: LogShare,
    options: DurableResultStoreOptions,
    opener: { readonly closeLog?: () => Promise<void>; readonly corrupted?: number } = {},
  ): DurableResultStore {
    const corrupted = opener.corrupted ?? 0;
    const say = options.log ?? ((message: string) => console.error(`celerity results: ${message}`));
    const now = options.now ?? Date.now;
    const memory = new MemoryResultStore({ ...options, now });
    const ttl = options.ttlMs ?? DEFAULT_RESULT_TTL_MS;
    const { entries, summary } = replayResultLog(records, ttl, now(), (reason) => say(`log: ${reason}`));
    for (const entry of entries) memory.restore(entry);
    say(
      `recovered ${summary.records} task results, ${summary.graphs} workflow graphs, ${summary.joins} joins and ${summary.claims} claims from ${records.length} records` +
        (corrupted > 0 ? ` (${corrupted} corrupted records reported)` : ""),
    );
    const store = new DurableResultStore(memory, now, say, opener.closeLog ?? (async () => {}));
    store.share = share;
    return store;
  }

  /**
   * Open (creating it if needed) the store in `dir`: lock the directory, read
   * the log (a torn or corrupted tail is reported and cut away, the records
   * before it kept), put back what it holds, then compact it.
   *
   * `internals` are the log's test seams (a failing disk).
   *
   * @example
   * const results = await DurableResultStore.open(join(dataDir, "results"), { log: (m) => console.error(m) });
   */
  static async open(
    dir: string,
    options: DurableResultStoreOptions = {},
    internals: DurableLogInternals = {},
  ): Promise<DurableResultStore> {
    const say = options.log ?? ((message: string) => console.error(`celerity results: ${message}`));
    const lock = lockDataDir(dir);
    let log: DurableLog | undefined;
    let store: DurableResultStore | undefined;
    try {
      const logOptions: DurableLogOptions = {
        ...(options.fsync !== undefined ? { fsync: options.fsync } : {}),
        ...(options.segmentBytes !== undefined ? { segmentBytes: options.segmentBytes } : {}),
        maxRecordBytes: MAX_RESULT_RECORD_BYTES,
        onCorruption: (info) => say(describeCorruption(info)),
        onFailure: (error) =>
          say(
            `the results log failed (${error.message}): writes are refused until it is reopened from what the last successful fsync covered, trying again after 100 ms, doubling to 5 s`,
          ),
        onReopenFailed: (error, attempts) =>
          say(`the results log is not reopened yet (attempt ${attempts}): ${error.message}`),
        onReopen: (info) => store?.reopened(info),
      };
      const opened = await openDurableLog(dir, logOptions, internals);
      const own = opened.log;
      log = own;
      const shared = new SharedLog(own, {
        compactAtBytes: options.compactAtBytes ?? 64 * 1024 * 1024,
        name: "the results log",
        say,
      });
      const share = shared.share(0, () => store?.snapshot() ?? []);
      store = DurableResultStore.restore(opened.records, share, options, {
        corrupted: opened.report.corrupted.length,
        closeLog: async () => {
          try {
            await own.close();
          } finally {
            lock.release();
          }
        },
      });
      await own.compact(shared.liveRecords());
      shared.compacted();
      return store;
    } catch (error) {
      await log?.close().catch(() => undefined);
      lock.release();
      throw error;
    }
  }

  setState(id: string, task: string, state: TaskState, details?: StateDetails): Promise<void> {
    this.memory.setState(id, task, state, details);
    // A new id's state is always written; otherwise a final record is left as it was: nothing to log, only wait as any answer does.
    return details?.newId === true || this.memory.peek(id)?.state === state ? this.record(id) : this.settled(undefined);
  }

  /** Log `id`'s STARTED now if it is still held back: an answer is about to rest on it. */
  private startedNow(id: string): void {
    if (this.starts.size > 0 && this.starts.take(id)) this.logIfStarted(id);
  }

  private logIfStarted(id: string): void {
    if (this.memory.peek(id)?.state === "STARTED") void this.record(id);
  }

  /**
   * Answered without waiting for STARTED to be durable, the one answer that
   * does not wait: a crash that took STARTED back leaves the task where a
   * crash during its run leaves it (PENDING or STARTED, neither final, its
   * message redelivered when acked late), so the worker may act on it as on a
   * durable one. It is logged after STARTED_LOG_DELAY_MS if the task is
   * still running then, or at once when an answer rests on it (a read, a
   * revocation refused because the task started): readers still see STARTED
   * only once it is durable. A refusal (a final state is there) waits as
   * every answer does.
   */
  start(id: string, task: string, details?: StateDetails): boolean | Promise<boolean> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (!this.memory.start(id, task, details)) return this.settled(false);
    this.starts.add(id);
    return true;
  }

  complete(id: string, task: string, outcome: FinalOutcome): Promise<boolean> {
    const first = this.memory.complete(id, task, outcome);
    if (!first) this.startedNow(id);
    return (first ? this.record(id) : this.settled(undefined)).then(() => first);
  }

  get(id: string): Promise<ResultRecord | undefined> {
    this.startedNow(id);
    return this.memory.get(id).then((record) => this.settled(record));
  }

  waitFinal(id: string, timeoutMs: number | undefined, onTimeout: () => Error): Promise<ResultRecord> {
    // The write that finishes the task is gathered by the time its waiters run: wait for it to be durable.
    return this.memory.waitFinal(id, timeoutMs, onTimeout).then((record) => this.settled(record));
  }

  forget(id: string): Promise<void> {
    void this.memory.forget(id);
    // Logged as the record's absence at the hand-over (a write after the forget is logged instead).
    return this.record(id);
  }

  saveGraph(graph: MessageGraph): Promise<void> {
    void this.memory.saveGraph(graph);
    return this.write(logEntry.graph(graph, this.now()));
  }

  graph(id: string): Promise<MessageGraph | undefined> {
    return this.memory.graph(id).then((graph) => this.settled(graph));
  }

  arrive(key: string, member: number): Promise<number> {
    // Applied by the call itself; the promise only carries the count.
    const arrived = this.memory.arrive(key, member);
    const written = this.write(logEntry.arrive(key, [member], this.now()));
    return arrived.then((count) => written.then(() => count));
  }

  claim(key: string): Promise<boolean> {
    // Logged whether or not it is the first: the replay applies the same rule, in the same order.
    const first = this.memory.claim(key);
    const written = this.write(logEntry.claim(key, this.now()));
    return first.then((claimed) => written.then(() => claimed));
  }

  release(key: string): Promise<void> {
    void this.memory.release(key);
    return this.write(logEntry.release(key));
  }

  reserve(key: string, id: string, ttlMs: number): Promise<string> {
    const until = this.now() + ttlMs;
    const holder = this.memory.reserveNow(key, id, until);
    // Found held: nothing changed, but the answer still waits for the write that took it to be durable.
    if (holder !== id) return this.settled(holder);
    return this.write(logEntry.reserve(key, id, until)).then(() => holder);
  }

  /** `reserve` of each key, with one answer once every write so far is durable. */
  reserveAll(keys: readonly string[], id: string, ttlsMs: readonly number[]): Promise<string[]> {
    const now = this.now();
    const holders: string[] = [];
    // Every write of the loop goes into the same gathering batch: its promise is the last one's.
    let written: Promise<void> | undefined;
    for (let i = 0; i < keys.length; i++) {
      const until = now + ttlsMs[i];
      const holder = this.memory.reserveNow(keys[i], id, until);
      if (holder === id) written = this.write(logEntry.reserve(keys[i], id, until));
      holders.push(holder);
    }
    return written === undefined ? this.settled(holders) : written.then(() => holders);
  }

  /** `reserveMembers`, answered once every write so far is durable. */
  reserveMembers(key: string, members: readonly number[], id: string, ttlMs: number): Promise<boolean[]> {
    const until = this.now() + ttlMs;
    const { held, taken } = this.memory.reserveMembersNow(key, members, id, until);
    // Logged when it took a member; one that took none still waits for what took them to be durable.
    if (taken.length === 0) return this.settled(held);
    return this.write(logEntry.reserveMembers(key, id, taken, until)).then(() => held);
  }

  /**
   * Replace the log by the records of what the store holds now (and, in a
   * node's log, of what the node holds); appends go on meanwhile. Also runs by
   * itself once the log has grown (compactAtBytes).
   *
   * @example
   * await results.compact();
   */
  compact(): Promise<void> {
    return this.share.compact();
  }

  /**
   * Its log takes writes again (told by the log's opener): answer again, and
   * rewrite the whole store into the log, since the writes refused meanwhile
   * changed the store but not the log (a task's final state, once held, is
   * never logged again by itself).
   */
  reopened(info: LogReopened): void {
    this.failure = undefined;
    this.say(
      `the results log is written again after ${info.attempts} attempt(s) (it had failed: ${info.failure.message}); rewriting the store into it`,
    );
    void this.compact();
  }

  /** Write what is gathered, then close the log if the store opened it; waiters are dropped. */
  async close(): Promise<void> {
    const held = this.starts.takeAll();
    if (this.failure === undefined) for (const id of held) this.logIfStarted(id);
    while (this.gathering !== undefined || this.writing !== undefined)
      await (this.gathering ?? this.writing)?.catch(() => undefined);
    await this.memory.close();
    await this.closeLog();
  }

  /**
   * The records that rebuild the store as it is now (taken at once: writes
   * made after it follow it in the log), for a compaction.
   */
  snapshot(): Uint8Array[] {
    const entries: LogEntry[] = [];
    for (const entry of this.memory.contents()) entries.push(logEntry.of(entry));
    return this.encoder.encode(entries);
  }

  /** Log task `id`'s record as it is at the next hand-over. */
  private record(id: string): Promise<void> {
    // Keyed by id: a task written again before the hand-over keeps its one place.
    this.changes.set(id, id);
    return this.gather();
  }

  private write(entry: LogEntry): Promise<void> {
    this.changes.set(this.nextChange++, entry);
    return this.gather();
  }

  /**
   * The log's batch the latest write goes into. The writes gather until the
   * log cuts that batch (while the one before it is written and fsynced), so
   * they share its write and fsync with the node's own records.
   */
  private gather(): Promise<void> {
    if (this.gathering !== undefined) return this.gathering;
    const batch = this.share.appendDeferred(() => this.handOver());
    this.gathering = batch;
    batch.then(
      () => this.afterWrite(batch),
      (error: unknown) => {
        // Every later answer fails with it too, until the log is reopened.
        this.failure ??= error;
        this.afterWrite(batch);
      },
    );
    return batch;
  }

  /** The entries gathered, as records, taken when the log cuts the batch. */
  private handOver(): Uint8Array[] {
    this.writing = this.gathering;
    this.gathering = undefined;
    const entries: LogEntry[] = [];
    for (const change of this.changes.values()) {
      if (typeof change !== "string") entries.push(change);
      else {
        const record = this.memory.peek(change);
        entries.push(record === undefined ? logEntry.forget(change) : logEntry.record(record));
      }
    }
    this.changes.clear();
    this.share.wrote(entries.length);
    return this.encoder.encode(entries);
  }

  private afterWrite(batch: Promise<void>): void {
    if (this.writing === batch) this.writing = undefined;
    // Refused before it was cut (the log is closed or failed): what it gathered is not written.
    if (this.gathering === batch) {
      this.gathering = undefined;
      this.changes.clear();
    }
  }

  /** `value` once every write made so far is durable. */
  private settled<T>(value: T): Promise<T> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const pending = this.gathering ?? this.writing;
    return pending === undefined ? Promise.resolve(value) : pending.then(() => value);
  }
}
