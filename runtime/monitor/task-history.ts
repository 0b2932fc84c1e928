/**
 * The tasks a monitor has heard of, folded from their events: each task's
 * state, arguments, result or traceback, retries, the worker that ran it,
 * the workflow it belongs to and the timeline of its events. Bounded: at
 * most `maxTasks` are kept and the one least recently touched goes first,
 * so a monitor following a busy cluster for days holds a steady amount of
 * memory.
 */
import { LRUCache } from "lru-cache";
import { READY_STATES, type TaskState } from "../../dsl/result.ts";
import type { TaskEvent } from "../events/event-types.ts";

/**
 * A task's state as its events tell it: the result store's states, plus
 * REJECTED (a worker refused the message; it went to the dead-letter queue).
 *
 * @example
 * const failed: MonitoredState = "FAILURE";
 */
export type MonitoredState = TaskState | "REJECTED";

/**
 * Every state a monitored task can be in, in the order of a task's life.
 *
 * @example
 * for (const state of MONITORED_STATES) console.log(state, monitor.state.tasks.counts()[state]);
 */
export const MONITORED_STATES: readonly MonitoredState[] = [
  "PENDING",
  "RECEIVED",
  "STARTED",
  "RETRY",
  "SUCCESS",
  "FAILURE",
  "REVOKED",
  "REJECTED",
];

/**
 * One event of a task's timeline.
 *
 * @example
 * const line = (entry: TimelineEntry) => `${entry.type} on ${entry.hostname} at ${entry.timestamp}`;
 */
export interface TimelineEntry {
  readonly type: TaskEvent["type"];
  /** Seconds since the epoch, as the event's sender stamped it. */
  readonly timestamp: number;
  readonly hostname: string;
  /** What the event said beyond its type: the result, the exception, why it was rejected. */
  readonly detail?: string;
}

/**
 * A task as the monitor knows it from its events.
 *
 * @example
 * const view = history.get(id);
 * if (view?.state === "FAILURE") console.error(view.exception, view.traceback);
 */
export interface TaskView {
  readonly id: string;
  readonly name: string;
  readonly state: MonitoredState;
  /** The worker that received or ran it last. */
  readonly hostname?: string;
  readonly args?: string;
  readonly kwargs?: string;
  readonly result?: string;
  readonly exception?: string;
  readonly traceback?: string;
  readonly retries: number;
  readonly queue?: string;
  /** The workflow's id for a workflow step (Celery's root_id), else absent. */
  readonly rootId?: string;
  readonly parentId?: string;
  /** Seconds since the epoch, from the events. */
  readonly sentAt?: number;
  readonly receivedAt?: number;
  readonly startedAt?: number;
  readonly finishedAt?: number;
  /** Seconds the handler ran (task-succeeded). */
  readonly runtime?: number;
  readonly timeline: readonly TimelineEntry[];
}

type MutableView = { -readonly [K in keyof TaskView]: TaskView[K] } & { timeline: TimelineEntry[] };

/** Timeline entries kept per task: a task retried without end keeps its latest ones. */
const MAX_TIMELINE = 64;

const STATE_OF_EVENT: { readonly [T in TaskEvent["type"]]: MonitoredState } = {
  "task-sent": "PENDING",
  "task-received": "RECEIVED",
  "task-started": "STARTED",
  "task-succeeded": "SUCCESS",
  "task-failed": "FAILURE",
  "task-retried": "RETRY",
  "task-revoked": "REVOKED",
  "task-rejected": "REJECTED",
};

const isFinal = (state: MonitoredState): boolean => state === "REJECTED" || READY_STATES.has(state);

/** Distinct names and hostnames shared rather than copied per task; past this many, new ones are kept as they come. */
const MAX_SHARED_STRINGS = 10_000;

/**
 * Filters for `TaskHistory.list`.
 *
 * @example
 * history.list({ state: "FAILURE", name: "send_email", limit: 50 });
 */
export interface TaskQuery {
  readonly state?: MonitoredState;
  /** Tasks whose name contains this text. */
  readonly name?: string;
  /** Tasks whose id starts with this text. */
  readonly idPrefix?: string;
  /** At most this many, newest first. Default 100. */
  readonly limit?: number;
}

/**
 * The bounded, most-recent-first memory of tasks a monitor keeps.
 *
 * @example
 * const history = new TaskHistory(100_000);
 * await app.events.subscribe((event) => { if (isTaskEvent(event)) history.apply(event); });
 * history.list({ state: "FAILURE" });
 */
export class TaskHistory {
  private readonly tasks: LRUCache<string, MutableView>;
  private readonly stateCounts = new Map<MonitoredState, number>();
  /** Each decoded event brings its own copy of the task's name and the worker's; 100,000 tasks share a few. */
  private readonly shared = new Map<string, string>();

  constructor(readonly maxTasks = 100_000) {
    if (!Number.isSafeInteger(maxTasks) || maxTasks < 1)
      throw new RangeError(`maxTasks must be a positive integer, got ${maxTasks}`);
    this.tasks = new LRUCache({
      max: maxTasks,
      dispose: (view) => this.count(view.state, -1),
    });
  }

  private share(text: string): string {
    const known = this.shared.get(text);
    if (known !== undefined) return known;
    if (this.shared.size < MAX_SHARED_STRINGS) this.shared.set(text, text);
    return text;
  }

  /** Fold one task event in; returns the task as it now stands. */
  apply(event: TaskEvent): TaskView {
    let view = this.tasks.get(event.uuid);
    if (view === undefined) {
      view = {
        id: event.uuid,
        name: this.share(event.name),
        state: STATE_OF_EVENT[event.type],
        retries: 0,
        timeline: [],
      };
      this.count(view.state, 1);
      this.tasks.set(event.uuid, view);
    } else {
      this.changeState(view, event);
    }
    this.record(view, event);
    return view;
  }

  private changeState(view: MutableView, event: TaskEvent): void {
    const next = STATE_OF_EVENT[event.type];
    // Events from different processes can cross (the producer's task-sent after the worker's first events): a final state stays.
    if (isFinal(view.state) || (event.type === "task-sent" && view.state !== "PENDING")) return;
    this.count(view.state, -1);
    view.state = next;
    this.count(next, 1);
  }

  private record(view: MutableView, event: TaskEvent): void {
    const hostname = this.share(event.hostname);
    let detail: string | undefined;
    switch (event.type) {
      case "task-sent":
        view.sentAt ??= event.timestamp;
        view.args = event.args;
        view.kwargs = event.kwargs;
        view.queue = this.share(event.queue);
        if (event.root_id !== event.uuid) view.rootId = event.root_id;
        if (event.parent_id !== null) view.parentId = event.parent_id;
        break;
      case "task-received":
        view.receivedAt = event.timestamp;
        view.hostname = hostname;
        view.args ??= event.args;
        view.kwargs ??= event.kwargs;
        view.retries = Math.max(view.retries, event.retries);
        if (event.root_id !== event.uuid) view.rootId = event.root_id;
        if (event.parent_id !== null) view.parentId = event.parent_id;
        break;
      case "task-started":
        view.startedAt = event.timestamp;
        view.hostname = hostname;
        break;
      case "task-succeeded":
        view.finishedAt = event.timestamp;
        view.result = event.result;
        view.runtime = event.runtime;
        detail = event.result;
        break;
      case "task-failed":
        view.finishedAt = event.timestamp;
        view.exception = event.exception;
        view.traceback = event.traceback;
        detail = event.exception;
        break;
      case "task-retried":
        view.retries++;
        view.exception = event.exception;
        view.traceback = event.traceback;
        detail = event.exception;
        break;
      case "task-revoked":
        view.finishedAt = event.timestamp;
        detail = event.expired ? "expired" : event.terminated ? "terminated" : "revoked";
        break;
      case "task-rejected":
        view.finishedAt = event.timestamp;
        detail = event.reason;
        break;
    }
    const entry: TimelineEntry = {
      type: event.type,
      timestamp: event.timestamp,
      hostname,
      ...(detail !== undefined ? { detail } : {}),
    };
    view.timeline.push(entry);
    if (view.timeline.length > MAX_TIMELINE) view.timeline.splice(0, view.timeline.length - MAX_TIMELINE);
  }

  private count(state: MonitoredState, delta: number): void {
    this.stateCounts.set(state, (this.stateCounts.get(state) ?? 0) + delta);
  }

  /** The task with this id, if it is remembered (reading it does not make it recent). */
  get(id: string): TaskView | undefined {
    return this.tasks.peek(id);
  }

  /** How many tasks are remembered. */
  get size(): number {
    return this.tasks.size;
  }

  /** How many remembered tasks are in each state. */
  counts(): Readonly<Record<MonitoredState, number>> {
    const counts = {} as Record<MonitoredState, number>;
    for (const state of MONITORED_STATES) counts[state] = this.stateCounts.get(state) ?? 0;
    return counts;
  }

  /** The remembered tasks matching `query`, most recently changed first. */
  list(query: TaskQuery = {}): TaskView[] {
    const limit = query.limit ?? 100;
    const name = query.name?.toLowerCase();
    const found: TaskView[] = [];
    if (limit <= 0) return found;
    for (const view of this.tasks.values()) {
      if (query.state !== undefined && view.state !== query.state) continue;
      if (name !== undefined && !view.name.toLowerCase().includes(name)) continue;
      if (query.idPrefix !== undefined && !view.id.startsWith(query.idPrefix)) continue;
      found.push(view);
      if (found.length >= limit) break;
    }
    return found;
  }
}
