// A full node's durable result store, kept in the node's own log beside the message
// journal (one fsync covers a send's message and its PENDING record), and the move of a
// results log that an earlier version kept in `<dataDir>/results` into it.
import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import { type LogReopened, openDurableLog } from "../../../broker/log/durable-log.ts";
import { describeCorruption } from "../../../broker/log/log-recovery.ts";
import type { LogGuest, LogShare } from "../../../broker/log/shared-log.ts";
import { DurableResultStore, type DurableResultStoreOptions, MAX_RESULT_RECORD_BYTES } from "./durable-result-store.ts";

/** The results' owner number in a node's log (the journal's records are owner 0's). */
export const RESULTS_OWNER = 1;

/**
 * The result store as a guest of a broker node's log: handed to
 * `BrokerNode.start`, it gets its records back when the node opens the log,
 * then `store` is the store to serve.
 *
 * @example
 * const results = new NodeLogResults({ maxResults: 1_000_000 }, join(dataDir, "results"));
 * await results.readEarlier();
 * const node = await BrokerNode.start({ dataDir }, {}, [results]);
 * await results.retireEarlier();
 * serveResults(node, results.store);
 */
export class NodeLogResults implements LogGuest {
  readonly owner = RESULTS_OWNER;
  readonly maxRecordBytes = MAX_RESULT_RECORD_BYTES;
  private restored: DurableResultStore | undefined;
  private share: LogShare | undefined;
  private earlier: Uint8Array[] = [];

  /** `earlierDir`: where an earlier version kept the results log of its own. */
  constructor(
    private readonly options: DurableResultStoreOptions,
    private readonly earlierDir: string,
  ) {}

  /** The store, once the node has opened its log. */
  get store(): DurableResultStore {
    if (this.restored === undefined) throw new Error("the result store is restored when the node opens its log");
    return this.restored;
  }

  /** Read the results log of `earlierDir` if there is one: its records are replayed before those in the node's log. */
  async readEarlier(): Promise<void> {
    if (!existsSync(this.earlierDir)) return;
    const say = this.say;
    const { log, records } = await openDurableLog(this.earlierDir, {
      maxRecordBytes: MAX_RESULT_RECORD_BYTES,
      onCorruption: (info) => say(describeCorruption(info)),
    });
    await log.close();
    this.earlier = records;
  }

  recover(records: readonly Uint8Array[], share: LogShare): void {
    this.share = share;
    const all = this.earlier.length === 0 ? records : [...this.earlier, ...records];
    this.restored = DurableResultStore.restore(all, share, this.options);
  }

  snapshot(): Iterable<Uint8Array> {
    return this.store.snapshot();
  }

  reopened(info: LogReopened): void {
    this.restored?.reopened(info);
  }

  /**
   * Once the node has started: write what was read from `earlierDir` into the
   * node's log, then remove that directory. A crash before the removal reads
   * it again at the next start, before the node's log, which is newer.
   */
  async retireEarlier(): Promise<void> {
    if (this.earlier.length === 0 || this.share === undefined) return;
    const live = this.store.snapshot();
    await this.share.appendDeferred(() => live);
    this.earlier = [];
    await rm(this.earlierDir, { recursive: true, force: true });
    this.say(`moved the results log of ${this.earlierDir} into the node's log, and removed that directory`);
  }

  private get say(): (message: string) => void {
    return this.options.log ?? ((message: string) => console.error(`celerity results: ${message}`));
  }
}
