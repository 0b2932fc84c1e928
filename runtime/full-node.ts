// A full node: a broker node that also serves what apps and workers need besides messages
// (results and workflow state, rate limits, periodic task schedules), durable with a data dir.
import { join } from "node:path";
import { BrokerNode, type BrokerNodeOptions } from "../broker/node/node-server.ts";
import type { DurableResultStoreOptions } from "./results/durable/durable-result-store.ts";
import { NodeLogResults } from "./results/durable/node-log-results.ts";
import { serveResults } from "./results/result-service.ts";
import { MemoryResultStore, type MemoryResultStoreOptions, type ResultStore } from "./results/result-store.ts";
import { serveRateLimits } from "./rate-limit/node-rate-limit-service.ts";
import { ScheduleLog } from "./schedule/stores/schedule-log.ts";
import { serveSchedules } from "./schedule/schedule-service.ts";

/**
 * What a full node is made of: the broker node's options, and how the results it serves are kept.
 *
 * @example
 * await startFullNode({ port: 5690, dataDir: "./data", results: { maxResults: 1_000_000 } });
 */
export interface FullNodeOptions extends BrokerNodeOptions {
  /**
   * Bounds and expiry of the result store. With `dataDir`, results and
   * workflow state are kept in the node's own log, beside its messages (one
   * fsync covers both; the log's segment size and compaction threshold are
   * then the node's own); without it, in memory only.
   */
  readonly results?: MemoryResultStoreOptions & Pick<DurableResultStoreOptions, "segmentBytes" | "compactAtBytes">;
}

/**
 * A running full node: the broker node and the result store it serves.
 *
 * @example
 * const full: FullNode = await startFullNode({ port: 0 });
 * const app = createApp({ broker: full.url });
 */
export interface FullNode {
  readonly node: BrokerNode;
  readonly results: ResultStore;
  /** `celerity://host:port`: the url apps and workers connect to. */
  readonly url: string;
  /** Stop listening, close every connection, then flush and close the logs. */
  stop(): Promise<void>;
}

/**
 * Start a broker node that serves everything apps and workers use, as
 * `celerity broker` does: queues and exchanges, the result store (durable in
 * `<dataDir>/results` when `dataDir` is set), the cluster's rate limits, and
 * periodic task schedules (durable in `<dataDir>/schedules`).
 *
 * @example
 * import { startFullNode } from "celerity/node";
 * const full = await startFullNode({ port: 5690, dataDir: "./data", fsync: { intervalMs: 100 } });
 * // createApp({ broker: full.url }) in producers and workers
 * await full.stop();
 */
export const startFullNode = async (options: FullNodeOptions = {}): Promise<FullNode> => {
  const { results: resultOptions = {}, ...nodeOptions } = options;
  const log = nodeOptions.log ?? ((message: string) => console.error(`celerity broker: ${message}`));
  const dataDir = nodeOptions.dataDir;
  // Durable results are a guest in the node's log: one fsync covers a send's message and its record.
  const guest =
    dataDir === undefined
      ? undefined
      : new NodeLogResults(
          { ...resultOptions, log: (message) => log(`results: ${message}`) },
          join(dataDir, "results"),
        );
  await guest?.readEarlier();
  const schedules =
    dataDir === undefined
      ? undefined
      : await ScheduleLog.open(join(dataDir, "schedules"), {
          ...(nodeOptions.fsync !== undefined ? { fsync: nodeOptions.fsync } : {}),
          log: (message) => log(`schedules: ${message}`),
        });
  // The node opens its log, and with it the results, before it listens: no client ever finds the results ops missing.
  const node = await BrokerNode.start(nodeOptions, {}, guest === undefined ? [] : [guest]).catch(
    async (error: unknown) => {
      await schedules?.close();
      throw error;
    },
  );
  const results: ResultStore = guest?.store ?? new MemoryResultStore(resultOptions);
  serveResults(node, results);
  serveRateLimits(node);
  serveSchedules(node, schedules !== undefined ? { log: schedules } : {});
  await guest?.retireEarlier().catch((error: unknown) => {
    log(
      `results: the earlier results log was kept where it is: ${error instanceof Error ? error.message : String(error)}`,
    );
  });
  return {
    node,
    results,
    url: node.url,
    stop: async () => {
      await node.stop();
      await results.close();
      await schedules?.close();
    },
  };
};
