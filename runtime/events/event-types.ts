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

/** Published by the app that sent the task (with `events: true`), just before the task's message. */
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

/** The worker received the task's message (it may wait for a free slot or a rate-limit token before it starts). */
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

export interface TaskStartedEvent extends TaskEventBase {
  readonly type: "task-started";
}

export interface TaskSucceededEvent extends TaskEventBase {
  readonly type: "task-succeeded";
  readonly result: string;
  /** Seconds the handler ran. */
  readonly runtime: number;
}

export interface TaskFailedEvent extends TaskEventBase {
  readonly type: "task-failed";
  /** `ErrorName('message')`, as Celery's repr of the exception. */
  readonly exception: string;
  readonly traceback: string;
}

/** The task failed and was sent again, to run after its retry delay. */
export interface TaskRetriedEvent extends TaskEventBase {
  readonly type: "task-retried";
  readonly exception: string;
  readonly traceback: string;
}

export interface TaskRevokedEvent extends TaskEventBase {
  readonly type: "task-revoked";
  /** Aborted while it ran (revoke with `terminate`). */
  readonly terminated: boolean;
  /** Always null: tasks run in the worker's process, there is no signal. */
  readonly signum: null;
  /** Skipped because its `expires` had passed, rather than revoked. */
  readonly expired: boolean;
}

/** The worker refused the message (malformed, or a task it does not know): it went to the dead-letter queue. */
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

export interface WorkerOnlineEvent extends WorkerEventBase {
  readonly type: "worker-online";
}

export interface WorkerHeartbeatEvent extends WorkerEventBase {
  readonly type: "worker-heartbeat";
  /** Tasks running now. */
  readonly active: number;
  /** Tasks finished since the worker started (succeeded, failed, retried, revoked, rejected). */
  readonly processed: number;
  /** The machine's load averages over 1, 5 and 15 minutes. */
  readonly loadavg: readonly [number, number, number];
}

export interface WorkerOfflineEvent extends WorkerEventBase {
  readonly type: "worker-offline";
}

export type TaskEvent =
  | TaskSentEvent
  | TaskReceivedEvent
  | TaskStartedEvent
  | TaskSucceededEvent
  | TaskFailedEvent
  | TaskRetriedEvent
  | TaskRevokedEvent
  | TaskRejectedEvent;

export type WorkerEvent = WorkerOnlineEvent | WorkerHeartbeatEvent | WorkerOfflineEvent;

/** Any event of the stream. */
export type CelerityEvent = TaskEvent | WorkerEvent;

export type EventType = CelerityEvent["type"];

/** Every event type, in the order of a task's life then a worker's. */
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

/** The fanout exchange every event is published to, in batches (one envelope holds the events of one turn). */
export const EVENTS_EXCHANGE = "celerity.events";

/** Distributes `Omit` over a union, so each event type keeps its own fields. */
export type EventFields<E> = E extends unknown ? Omit<E, keyof EventBase> : never;

export const isTaskEvent = (event: CelerityEvent): event is TaskEvent => event.type.startsWith("task-");
