/**
 * The events of a cluster, with Celery's names and fields, so a monitor
 * written for Celery's event stream reads them as they are. Every event has
 * `type`, `hostname` (the worker's name, or the producing app's),
 * `timestamp` (seconds since the epoch, a float, as in Celery), `utcoffset`,
 * `pid` and `clock` (a counter per emitting process); task events also carry
 * the task's `name` (Celery has it only on task-sent and task-received; a
 * subscriber filters on it). Values (`args`, `result`, `exception`) are short
 * readable strings, cut at 256 characters, as Celery sends reprs.
 *
 * @example
 * app.events.subscribe((event) => {
 *   if (event.type === "task-failed") console.log(event.uuid, event.exception);
 * });
 */
export interface EventBase {
  readonly hostname: string;
  readonly timestamp: number;
  readonly utcoffset: number;
  readonly pid: number;
  readonly clock: number;
}

interface TaskEventBase extends EventBase {
  readonly uuid: string;
  readonly name: string;
}

/**
 * Published by the app that sent the task (with `events: true`), just before the task's message.
 *
 * @example
 * await app.events.subscribe((event) => {
 *   if (event.type === "task-sent") console.log(event.name, event.uuid, "to", event.queue, event.eta ?? "now");
 * }, { types: "task-sent" });
 */
export interface TaskSentEvent extends TaskEventBase {
  readonly type: "task-sent";
  readonly args: string;
  readonly kwargs: string;
  readonly retries: number;
  /** ISO 8601, or null. */
  readonly eta: string | null;
  readonly expires: string | null;
  readonly queue: string;
  readonly exchange: string;
  readonly routing_key: string;
  /** The workflow's id for a workflow step, else the task's own id. */
  readonly root_id: string;
  readonly parent_id: string | null;
}

/**
 * The worker received the task's message (it may wait for a free slot or a rate-limit token before it starts).
 *
 * @example
 * await app.events.subscribe((event) => {
 *   if (event.type === "task-received") console.log(event.hostname, "holds", event.uuid, event.args);
 * }, { types: "task-received" });
 */
export interface TaskReceivedEvent extends TaskEventBase {
  readonly type: "task-received";
  readonly args: string;
  readonly kwargs: string;
  readonly retries: number;
  readonly eta: string | null;
  readonly expires: string | null;
  readonly root_id: string;
  readonly parent_id: string | null;
}

/**
 * The worker is about to run the task's handler.
 *
 * @example
 * const startedAt = new Map<string, number>();
 * await app.events.subscribe((event) => {
 *   if (event.type === "task-started") startedAt.set(event.uuid, event.timestamp);
 * }, { types: "task-started" });
 */
export interface TaskStartedEvent extends TaskEventBase {
  readonly type: "task-started";
}

/**
 * The task's handler returned and its result is stored.
 *
 * @example
 * await app.events.subscribe((event) => {
 *   if (event.type === "task-succeeded") console.log(event.name, event.result, `${event.runtime} s`);
 * }, { types: "task-succeeded" });
 */
export interface TaskSucceededEvent extends TaskEventBase {
  readonly type: "task-succeeded";
  readonly result: string;
  /** Seconds the handler ran. */
  readonly runtime: number;
}

/**
 * The task failed for good: no retry follows.
 *
 * @example
 * await app.events.subscribe((event) => {
 *   if (event.type === "task-failed") console.error(event.name, event.uuid, event.exception, event.traceback);
 * }, { types: "task-failed" });
 */
export interface TaskFailedEvent extends TaskEventBase {
  readonly type: "task-failed";
  /** `ErrorName('message')`, as Celery's repr of the exception. */
  readonly exception: string;
  readonly traceback: string;
}

/**
 * The task failed and was sent again, to run after its retry delay.
 *
 * @example
 * await app.events.subscribe((event) => {
 *   if (event.type === "task-retried") console.warn(event.name, event.uuid, "will run again after", event.exception);
 * }, { types: "task-retried" });
 */
export interface TaskRetriedEvent extends TaskEventBase {
  readonly type: "task-retried";
  readonly exception: string;
  readonly traceback: string;
}

/**
 * The task was skipped because it was revoked or its `expires` had passed, or it was aborted while it ran.
 *
 * @example
 * await app.events.subscribe((event) => {
 *   if (event.type === "task-revoked") console.log(event.uuid, event.expired ? "expired" : event.terminated ? "aborted" : "revoked");
 * }, { types: "task-revoked" });
 */
export interface TaskRevokedEvent extends TaskEventBase {
  readonly type: "task-revoked";
  /** Aborted while it ran (revoke with `terminate`). */
  readonly terminated: boolean;
  /** Always null: tasks run in the worker's process, there is no signal. */
  readonly signum: null;
  /** Skipped because its `expires` had passed, rather than revoked. */
  readonly expired: boolean;
}

/**
 * The worker refused the message (malformed, or a task it does not know): it went to the dead-letter queue.
 *
 * @example
 * await app.events.subscribe((event) => {
 *   if (event.type === "task-rejected") console.error(event.hostname, "rejected", event.uuid, event.reason);
 * }, { types: "task-rejected" });
 */
export interface TaskRejectedEvent extends TaskEventBase {
  readonly type: "task-rejected";
  readonly requeue: boolean;
  /** Why it was refused (not in Celery). */
  readonly reason: string;
}

interface WorkerEventBase extends EventBase {
  /** Seconds between heartbeats. */
  readonly freq: number;
  readonly sw_ident: string;
  readonly sw_ver: string;
  readonly sw_sys: string;
}

/**
 * A worker started, or its events were enabled.
 *
 * @example
 * await app.events.subscribe((event) => {
 *   if (event.type === "worker-online") console.log(event.hostname, "is up:", event.sw_ident, event.sw_ver, event.sw_sys);
 * }, { types: "worker-online" });
 */
export interface WorkerOnlineEvent extends WorkerEventBase {
  readonly type: "worker-online";
}

/**
 * Sent by a worker with events on every `freq` seconds: what it runs and has run, and its machine's load.
 *
 * @example
 * await app.events.subscribe((event) => {
 *   if (event.type === "worker-heartbeat") console.log(event.hostname, event.active, "running,", event.processed, "done, load", event.loadavg[0]);
 * }, { types: "worker-heartbeat" });
 */
export interface WorkerHeartbeatEvent extends WorkerEventBase {
  readonly type: "worker-heartbeat";
  /** Tasks running now. */
  readonly active: number;
  /** Tasks finished since the worker started (succeeded, failed, retried, revoked, rejected). */
  readonly processed: number;
  /** The machine's load averages over 1, 5 and 15 minutes. */
  readonly loadavg: readonly [number, number, number];
}

/**
 * A worker stopped, or its events were disabled.
 *
 * @example
 * await app.events.subscribe((event) => {
 *   if (event.type === "worker-offline") console.log(event.hostname, "has stopped");
 * }, { types: "worker-offline" });
 */
export interface WorkerOfflineEvent extends WorkerEventBase {
  readonly type: "worker-offline";
}

/**
 * An event of a task's life, from task-sent to its outcome; each carries the task's `uuid` and `name`.
 *
 * @example
 * const describe = (event: TaskEvent) => `${event.type} ${event.name}[${event.uuid}] on ${event.hostname}`;
 */
export type TaskEvent =
  | TaskSentEvent
  | TaskReceivedEvent
  | TaskStartedEvent
  | TaskSucceededEvent
  | TaskFailedEvent
  | TaskRetriedEvent
  | TaskRevokedEvent
  | TaskRejectedEvent;

/**
 * An event a worker sends about itself: online, heartbeat, offline.
 *
 * @example
 * const lastSeen = new Map<string, number>();
 * const note = (event: WorkerEvent) => lastSeen.set(event.hostname, event.timestamp);
 */
export type WorkerEvent = WorkerOnlineEvent | WorkerHeartbeatEvent | WorkerOfflineEvent;

/**
 * Any event of the stream.
 *
 * @example
 * const print = (event: CelerityEvent) => console.log(new Date(event.timestamp * 1000).toISOString(), event.hostname, event.type);
 * await app.events.subscribe(print);
 */
export type CelerityEvent = TaskEvent | WorkerEvent;

/**
 * The name of an event, from `"task-sent"` to `"worker-offline"`.
 *
 * @example
 * const types: EventType[] = ["task-failed", "task-rejected"];
 * await app.events.subscribe((event) => console.error(event.type, event.hostname), { types });
 */
export type EventType = CelerityEvent["type"];

/**
 * Every event type, in the order of a task's life then a worker's.
 *
 * @example
 * const workerEvents = EVENT_TYPES.filter((type) => type.startsWith("worker-"));
 * await app.events.subscribe((event) => console.log(event.hostname, event.type), { types: workerEvents });
 */
export const EVENT_TYPES: readonly EventType[] = [
  "task-sent",
  "task-received",
  "task-started",
  "task-succeeded",
  "task-failed",
  "task-retried",
  "task-revoked",
  "task-rejected",
  "worker-online",
  "worker-heartbeat",
  "worker-offline",
];

/**
 * The fanout exchange every event is published to, in batches (one envelope holds the events of one turn).
 *
 * @example
 * const subscribers = (await app.queues.list()).filter((queue) => queue.name.startsWith(`${EVENTS_EXCHANGE}.`));
 * console.log(subscribers.length, "event subscribers connected");
 */
export const EVENTS_EXCHANGE = "celerity.events";

/** Distributes `Omit` over a union, so each event type keeps its own fields. */
export type EventFields<E> = E extends unknown ? Omit<E, keyof EventBase> : never;

export const isTaskEvent = (event: CelerityEvent): event is TaskEvent => event.type.startsWith("task-");
