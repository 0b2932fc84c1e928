/**
 * celerity/node: the standalone broker node, from code. `startFullNode` runs
 * what `celerity broker` runs (queues, durable results, cluster rate limits,
 * periodic task schedules);
 * the parts are here too for a node assembled by hand, and the client side
 * (`NodeTransport`, `RemoteResultStore`) for connection settings of your own.
 *
 * @example
 * import { createApp } from "celerity";
 * import { startFullNode } from "celerity/node";
 *
 * const full = await startFullNode({ port: 0, dataDir: "./data" });
 * const app = createApp({ broker: full.url });
 * const add = app.task("add", (x: number, y: number) => x + y);
 * await app.worker().start();
 * console.log(await (await add.delay(2, 2)).get({ timeout: 5_000 })); // 4
 * await app.close();
 * await full.stop();
 *
 * @module
 */
export { startFullNode, type FullNode, type FullNodeOptions } from "../runtime/full-node.ts";
export { BrokerNode, DEFAULT_NODE_PORT, type BrokerNodeOptions } from "../broker/node/node-server.ts";
export { DurableResultStore, type DurableResultStoreOptions } from "../runtime/results/durable/durable-result-store.ts";
export { MemoryResultStore, type ResultStore, type MemoryResultStoreOptions } from "../runtime/results/result-store.ts";
export { serveResults } from "../runtime/results/result-service.ts";
export { serveRateLimits } from "../runtime/rate-limit/node-rate-limit-service.ts";
export { serveSchedules, type ScheduleServiceOptions } from "../runtime/schedule/schedule-service.ts";
export { ScheduleLog } from "../runtime/schedule/stores/schedule-log.ts";
export { DataDirLockedError } from "../broker/log/data-dir-lock.ts";
export {
  DirectoryNotWritableError,
  LogClosedError,
  LogRecoveryError,
  LogUnusableError,
  LogWriteError,
  RecordTooLargeError,
} from "../broker/log/durable-log-errors.ts";
export type { DurableLogOptions } from "../broker/log/durable-log-options.ts";
export { NodeTransport } from "../broker/node/client/node-transport.ts";
export { RemoteResultStore } from "../runtime/results/remote-result-store.ts";
export {
  ConnectionLostError,
  RequestTimeoutError,
  ClientClosedError,
  type NodeClientOptions,
} from "../broker/node/client/node-client.ts";
export { ConnectionRefusedError, RemoteBrokerError, ProtocolError, PROTOCOL_VERSION } from "../broker/node/protocol.ts";
export { FrameTooLargeError, MalformedFrameError } from "../broker/node/wire-frame.ts";
