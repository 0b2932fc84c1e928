/**
 * celerity: a distributed task queue for TypeScript. This entry holds what an
 * application needs: the app and its tasks, canvases, results, options and the
 * errors an application catches. What embeds or extends celerity has entries
 * of its own: `celerity/node` (the broker node, its durable stores, its
 * client), `celerity/transport` (the transport contract, codec, embedded
 * broker), `celerity/transport/conformance` (the suite a new transport must
 * pass), `celerity/signing` (keys for signed messages) and `celerity/testing`
 * (a test app with a virtual clock).
 *
 * @example
 * import { createApp, chain } from "celerity";
 * const app = createApp();
 * const add = app.task("add", (x: number, y: number) => x + y);
 * await app.worker().start();
 * await (await chain(add.s(2, 2), add.s(4)).apply()).get(); // 8
 */
export { createApp, type App, type AppOptions, type CeleryProtocolOptions } from "../runtime/app.ts";
export {
  createCeleryApp,
  CeleryTask,
  type CeleryApp,
  type CeleryAppOptions,
  type CeleryCallOptions,
} from "../runtime/celery/celery-app.ts";
export { CeleryWorker, type CeleryTaskContext, type CeleryWorkerOptions } from "../runtime/celery/celery-worker.ts";
export { CeleryMessageError, CeleryCanvasError } from "../runtime/celery/celery-errors.ts";
export { Task, type TaskContext, type TaskOptions, type RetryPolicy, type HandlerResult } from "../runtime/task.ts";
export { Worker, type WorkerOptions, type WorkerStats, type StopOptions } from "../runtime/worker/worker.ts";
export type { PoolKind, PoolOptions, AutoscaleOptions } from "../runtime/pool/pool-options.ts";
export type { PoolStats } from "../runtime/pool/child-pool.ts";
export { WorkerLostError, PoolStartError } from "../runtime/pool/pool-errors.ts";
export {
  MemoryResultStore,
  type ResultStore,
  type ResultRecord,
  type MemoryResultStoreOptions,
} from "../runtime/results/result-store.ts";
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
  BulkSendError,
  RetryRequest,
  UpstreamFailure,
  WorkerError,
  MaxRetriesExceededError,
  WorkflowNotFoundError,
  ResultTooLargeError,
} from "../runtime/errors.ts";
export { chain, group, chord } from "../dsl/combinators.ts";
export { Signature, Chain, Group, Chord, type Canvas, type AnyCanvas } from "../dsl/canvas.ts";
export { CanvasError } from "../dsl/errors.ts";
export { compile, type CompileOptions } from "../dsl/compile.ts";
export type { MessageGraph, GraphNode, ValueRef } from "../dsl/graph.ts";
export type { CallOptions, RetryOptions, SendOptions, DedupeOptions } from "../dsl/options.ts";
export { SendOptionError } from "../runtime/send-reservation.ts";
export type {
  AsyncResult,
  TaskState,
  TaskFailure,
  RemoteErrorInfo,
  Progress,
  GetOptions,
  RevokeOptions,
  ProgressInfo,
  ProgressWatchOptions,
} from "../dsl/result.ts";
export { ProgressReportError, type ProgressReport } from "../runtime/task-progress.ts";
export {
  notifyFailures,
  FailureNotifier,
  type FailureNotifierOptions,
  type TaskFailed,
} from "../runtime/notifications/failure-notifier.ts";
export type { FailureNotice, NotificationChannel } from "../runtime/notifications/failure-notice.ts";
export {
  notifyFailuresFromEvents,
  errorOfEvent,
  type EventFailureNotifications,
} from "../runtime/notifications/event-failures.ts";
export type { NotificationLimits } from "../runtime/notifications/notification-gate.ts";
export {
  emailChannel,
  type EmailChannelOptions,
  type SmtpServerOptions,
} from "../runtime/notifications/email-channel.ts";
export { webhookChannel, type WebhookChannelOptions } from "../runtime/notifications/webhook-channel.ts";
export {
  httpTask,
  HttpTaskError,
  type HttpRequest,
  type HttpResponse,
  type HttpTaskOptions,
} from "../runtime/http/http-task.ts";
export {
  verifyHttpSignature,
  signHttpBody,
  HttpSignatureError,
  SIGNATURE_HEADER,
  DEFAULT_SIGNATURE_TOLERANCE_MS,
  type HttpSignatureCheck,
} from "../runtime/http/http-signature.ts";
export type {
  HookEvents,
  HookListener,
  WorkerHookEvent,
  TaskHookEvent,
  TaskPostrunEvent,
  TaskSuccessEvent,
  TaskErrorEvent,
} from "../runtime/hooks.ts";
export type { ResultOf, InputOf } from "../dsl/inference.ts";
export {
  EmbeddedBroker,
  createEmbeddedBroker,
  type EmbeddedBrokerOptions,
  type BrokerTotals,
} from "../broker/embedded/embedded-broker.ts";
export {
  BrokerClosedError,
  InvalidArgumentError,
  ExchangeNotFoundError,
  QueueNotFoundError,
  DeclarationConflictError,
  UnknownDeliveryError,
  UnroutableError,
} from "../broker/errors.ts";
export type { Transport, ExchangeType, QueueOptions, QueueStats, RevocationOptions } from "../broker/transport.ts";
export { systemClock, type Clock, type ClockTimer } from "../broker/clock.ts";
export { CodecError } from "../broker/codec.ts";
export { ConnectionLostError, RequestTimeoutError, ClientClosedError } from "../broker/node/client/node-client.ts";
export { ConnectionRefusedError, RemoteBrokerError, ProtocolError } from "../broker/node/protocol.ts";
export { FrameTooLargeError } from "../broker/node/wire-frame.ts";
export { SignatureError, SigningConfigError } from "../runtime/signing/signing-errors.ts";
export type { SigningOptions } from "../runtime/signing/signing-options.ts";
export {
  RateLimitError,
  type RateLimitSetting,
  type RateLimitOptions,
  type RateScope,
} from "../runtime/rate-limit/rate-setting.ts";
export type { RateLimitChange } from "../runtime/rate-limit/app-rate-limits.ts";
export { Beat, type BeatOptions, type TickReport } from "../runtime/schedule/beat.ts";
export { ManualClock, type BeatClock } from "../runtime/schedule/beat-clock.ts";
export type {
  When,
  CatchUp,
  ScheduleOptions,
  ScheduleEntry,
  ScheduledSignature,
} from "../runtime/schedule/schedule-definition.ts";
export {
  ScheduleError,
  LeaseLostError,
  ScheduleStoreConnectionLostError,
} from "../runtime/schedule/schedule-errors.ts";
export type { ScheduleStore } from "../runtime/schedule/schedule-store.ts";
export type { Schedules, ScheduleInfo } from "../runtime/schedule/app-schedules.ts";
export { runId as scheduledRunId } from "../runtime/schedule/run-id.ts";
export type {
  CelerityEvent,
  TaskEvent,
  WorkerEvent,
  EventType,
  TaskSentEvent,
  TaskReceivedEvent,
  TaskStartedEvent,
  TaskSucceededEvent,
  TaskFailedEvent,
  TaskRetriedEvent,
  TaskRevokedEvent,
  TaskRejectedEvent,
  WorkerOnlineEvent,
  WorkerHeartbeatEvent,
  WorkerOfflineEvent,
} from "../runtime/events/event-types.ts";
export { EVENT_TYPES, EVENTS_EXCHANGE } from "../runtime/events/event-types.ts";
export type {
  EventHandler,
  EventSubscription,
  SubscribeOptions,
  ReceivedEvent,
} from "../runtime/events/event-subscription.ts";
export { ClusterState, type WorkerView, type FailureView } from "../runtime/events/cluster-state.ts";
export type { Inspect, RemoteControl, ControlOptions, Replies } from "../runtime/control/app-control.ts";
export type { TaskInfo, ScheduledInfo, WorkerStatsInfo, QueueConsumed } from "../runtime/control/worker-commands.ts";
export { ControlError, type ControlAnswer, type ControlReply } from "../runtime/control/control-protocol.ts";
export { QueueManagementUnsupportedError, type Queues } from "../runtime/control/queue-management.ts";
export { queueAdminOf, type QueueAdmin, type QueueInfo } from "../broker/queue-admin.ts";
export {
  createHttpHandler,
  type HttpHandlerOptions,
  type ApiRoute,
} from "../runtime/monitor/http-api.ts";
export { HttpApiError } from "../runtime/monitor/http-api-errors.ts";
export type { HttpAuth } from "../runtime/monitor/http-auth.ts";
export type { TaskDetail } from "../runtime/monitor/api-queries.ts";
export { MonitorState, type MonitorStateOptions } from "../runtime/monitor/monitor-state.ts";
export {
  TaskHistory,
  MONITORED_STATES,
  type MonitoredState,
  type TaskView,
  type TaskQuery,
  type TimelineEntry,
} from "../runtime/monitor/task-history.ts";
export { ThroughputSeries, type ThroughputPoint } from "../runtime/monitor/throughput-series.ts";
export {
  startMonitor,
  MonitorExposedError,
  type MonitorOptions,
  type RunningMonitor,
} from "../runtime/monitor/start-monitor.ts";
export type { LiveSnapshot } from "../runtime/monitor/live-updates.ts";
