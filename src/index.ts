/**
 * celerity: a distributed task queue for TypeScript.
 *
 * @example
 * import { createApp, chain } from "celerity";
 * const app = createApp();
 * const add = app.task("add", (x: number, y: number) => x + y);
 * await app.worker().start();
 * await (await chain(add.s(2, 2), add.s(4)).apply()).get(); // 8
 */
export { createApp, type App, type AppOptions } from "../runtime/app.ts";
export { Task, type TaskContext, type TaskOptions, type RetryPolicy, type HandlerResult } from "../runtime/task.ts";
export { Worker, type WorkerOptions, type WorkerStats, type StopOptions } from "../runtime/worker/worker.ts";
export type { PoolKind, PoolOptions, AutoscaleOptions } from "../runtime/pool/pool-options.ts";
export type { PoolStats } from "../runtime/pool/child-pool.ts";
export { WorkerLostError, PoolStartError } from "../runtime/pool/pool-errors.ts";
export { MemoryResultStore, type ResultStore, type ResultRecord, type MemoryResultStoreOptions } from "../runtime/results/result-store.ts";
export { TaskResult, GroupResult } from "../runtime/results/async-result.ts";
export {
  UnknownTaskError,
  TimeoutError,
  RemoteTaskError,
  TaskRevokedError,
  UnknownResultError,
  SoftTimeLimitExceeded,
  TimeLimitExceeded,
  MalformedMessageError,
  TaskRegistrationError,
  RetryRequest,
  UpstreamFailure,
  WorkerError,
  MaxRetriesExceededError,
  WorkflowNotFoundError,
} from "../runtime/errors.ts";
export { chain, group, chord } from "../dsl/combinators.ts";
export { Signature, Chain, Group, Chord, type Canvas, type AnyCanvas } from "../dsl/canvas.ts";
export { CanvasError } from "../dsl/errors.ts";
export { compile, type CompileOptions } from "../dsl/compile.ts";
export type { MessageGraph, GraphNode, ValueRef } from "../dsl/graph.ts";
export type { CallOptions, RetryOptions } from "../dsl/options.ts";
export type { AsyncResult, TaskState, TaskFailure, RemoteErrorInfo, Progress, GetOptions, RevokeOptions } from "../dsl/result.ts";
export type { ResultOf, InputOf } from "../dsl/inference.ts";
export { EmbeddedBroker, createEmbeddedBroker, type EmbeddedBrokerOptions, type BrokerTotals } from "../broker/embedded/embedded-broker.ts";
export {
  BrokerClosedError,
  InvalidArgumentError,
  ExchangeNotFoundError,
  QueueNotFoundError,
  DeclarationConflictError,
  UnknownDeliveryError,
  UnroutableError,
} from "../broker/errors.ts";
export type {
  Transport,
  Consumer,
  ExchangeType,
  QueueOptions,
  ConsumeOptions,
  PublishOptions,
  QueueStats,
  RevocationOptions,
} from "../broker/transport.ts";
export type { Envelope, Delivery, DeadLetter } from "../broker/envelope.ts";
export { Codec, CodecError, DecodeError } from "../broker/codec.ts";
export { BrokerNode, DEFAULT_NODE_PORT, type BrokerNodeOptions } from "../broker/node/node-server.ts";
export { DataDirLockedError } from "../broker/log/data-dir-lock.ts";
export { NodeTransport } from "../broker/node/node-transport.ts";
export { ConnectionLostError, RequestTimeoutError, ClientClosedError, type NodeClientOptions } from "../broker/node/node-client.ts";
export { ConnectionRefusedError, RemoteBrokerError, ProtocolError, PROTOCOL_VERSION } from "../broker/node/protocol.ts";
export { FrameTooLargeError, MalformedFrameError } from "../broker/node/wire-frame.ts";
export { serveResults } from "../runtime/results/result-service.ts";
export { SignatureError, SigningConfigError } from "../runtime/signing/signing-errors.ts";
export type { SigningOptions } from "../runtime/signing/signing-options.ts";
export { generateKeyPair, writeKeyPair, keyIdOf, type KeyPair } from "../runtime/signing/signing-keys.ts";
export { RemoteResultStore } from "../runtime/results/remote-result-store.ts";
export { RateLimitError, type RateLimitSetting, type RateLimitOptions, type RateScope } from "../runtime/rate-limit/rate-setting.ts";
export type { RateLimitChange } from "../runtime/rate-limit/app-rate-limits.ts";
export { serveRateLimits } from "../runtime/rate-limit/node-rate-limit-service.ts";
