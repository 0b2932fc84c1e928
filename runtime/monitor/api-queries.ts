/**
 * What the HTTP API reads from the cluster, answered as JSON-ready values:
 * a task from the result store and the monitor's events, a workflow's
 * steps with their states, a group's progress, the workers (their events
 * and their stats), the queues with their dead-letter counts, rate limits.
 * An id known to neither the result store nor the events is a 404, never
 * PENDING.
 */
import { type GraphNode, leavesOf, type MessageGraph } from "../../dsl/graph.ts";
import { READY_STATES, type TaskState } from "../../dsl/result.ts";
import type { App } from "../app.ts";
import { TaskCodec } from "../body-format.ts";
import type { WorkerStatsInfo, ScheduledInfo } from "../control/worker-commands.ts";
import { tasksOf } from "../pool/app-tasks.ts";
import { resolveChange, type RateLimitChange } from "../rate-limit/app-rate-limits.ts";
import type { ResultRecord } from "../results/result-store.ts";
import { badRequest, notFound } from "./http-api-errors.ts";
import type { HttpHandlerOptions } from "./http-api.ts";
import type { MonitoredState, TaskView } from "./task-history.ts";

/** Most workflow steps whose states one request reads. */
const MAX_WORKFLOW_STEPS = 500;
/** How long the workers' answers (stats, registered tasks) are reused. */
const WORKER_ANSWERS_MS = 2_000;

/**
 * A task as `GET /api/tasks/{id}` answers it.
 *
 * @example
 * const task = (await (await fetch(`${base}/api/tasks/${id}`)).json()) as TaskDetail;
 * if (task.state === "FAILURE") console.error(task.error?.traceback);
 */
export interface TaskDetail {
  readonly id: string;
  readonly name: string;
  readonly state: MonitoredState;
  /** Where the answer came from: the result store's record, the monitor's events, or both. */
  readonly sources: readonly ("results" | "events")[];
  readonly retries: number;
  /** The value returned, on SUCCESS (from the result store; else the event's text of it). */
  readonly result?: unknown;
  readonly error?: { readonly name: string; readonly message: string; readonly traceback: string | null };
  /** What the task last reported of itself (`this.progress(...)`). */
  readonly progress?: unknown;
  readonly workflow?: { readonly id: string; readonly step: number };
  readonly updatedAt?: string;
  readonly worker?: string;
  readonly args?: string;
  readonly queue?: string;
  readonly runtime?: number;
  readonly timeline: TaskView["timeline"];
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** Cache one promise for `ttlMs`, so a burst of requests asks the workers once. */
const reused = <T>(ttlMs: number, load: () => Promise<T>): (() => Promise<T>) => {
  let cached: { value: Promise<T>; at: number } | undefined;
  return () => {
    const now = Date.now();
    if (cached === undefined || now - cached.at > ttlMs) {
      const value = load();
      cached = { value, at: now };
      value.catch(() => (cached = undefined));
    }
    return cached.value;
  };
};

export class ApiQueries {
  private readonly codec = new TaskCodec();
  private readonly rateLimitChanges = new Map<string, { readonly limit: RateLimitChange; readonly at: string }>();
  private readonly stats: () => Promise<Record<string, WorkerStatsInfo>>;
  private readonly workerTasks: () => Promise<Record<string, string[]>>;

  constructor(
    private readonly app: App,
    private readonly options: HttpHandlerOptions,
  ) {
    const timeout = options.controlTimeoutMs ?? 500;
    this.stats = reused(WORKER_ANSWERS_MS, () => app.inspect.stats({ timeout }));
    this.workerTasks = reused(WORKER_ANSWERS_MS, () => app.inspect.registered({ timeout }));
  }

  private decode(bytes: Uint8Array | undefined): unknown {
    if (bytes === undefined) return undefined;
    try {
      return this.codec.decode(bytes);
    } catch (error) {
      return { undecodable: error instanceof Error ? error.message : String(error), bytes: bytes.byteLength };
    }
  }

  async task(id: string): Promise<TaskDetail> {
    const [record, view] = [await this.app.results.get(id), this.options.state?.tasks.get(id)];
    if (record === undefined && view === undefined)
      throw notFound(
        "unknown_task",
        `no task with id '${id}' is known: the result store has no record of it${this.options.state === undefined ? "" : " and no event named it"}`,
      );
    return this.detailOf(id, record, view);
  }

  private detailOf(id: string, record: ResultRecord | undefined, view: TaskView | undefined): TaskDetail {
    const sources: ("results" | "events")[] = [];
    if (record !== undefined) sources.push("results");
    if (view !== undefined) sources.push("events");
    // The store is written by the worker as the task moves; events may lag or be lost. A REJECTED task has no final record.
    const state: MonitoredState =
      record !== undefined && (record.state !== "PENDING" || view === undefined || view.state === "PENDING")
        ? record.state
        : (view?.state ?? "PENDING");
    const error =
      record?.error !== undefined
        ? { name: record.error.name, message: record.error.message, traceback: record.error.stack ?? null }
        : view?.exception !== undefined && (state === "FAILURE" || state === "RETRY")
          ? { name: view.exception.split("(")[0], message: view.exception, traceback: view.traceback ?? null }
          : undefined;
    const result =
      record?.state === "SUCCESS" ? this.decode(record.value) : view?.state === "SUCCESS" ? view.result : undefined;
    const progress = this.decode(record?.info);
    return {
      id,
      name: record?.task ?? view?.name ?? "",
      state,
      sources,
      retries: Math.max(record?.retries ?? 0, view?.retries ?? 0),
      ...(result !== undefined || state === "SUCCESS" ? { result: result ?? null } : {}),
      ...(error !== undefined ? { error } : {}),
      ...(progress !== undefined ? { progress } : {}),
      ...(record?.workflow !== undefined ? { workflow: { id: record.workflow, step: record.node ?? 0 } } : {}),
      ...(record !== undefined ? { updatedAt: iso(record.updatedAt) } : {}),
      ...(view?.hostname !== undefined ? { worker: view.hostname } : {}),
      ...(view?.args !== undefined ? { args: view.args } : {}),
      ...(view?.queue !== undefined ? { queue: view.queue } : {}),
      ...(view?.runtime !== undefined ? { runtime: view.runtime } : {}),
      timeline: view?.timeline ?? [],
    };
  }

  private async graphOf(id: string, what: string): Promise<MessageGraph> {
    const graph = await this.app.results.graph(id);
    if (graph === undefined)
      throw notFound(`unknown_${what}`, `no ${what} with id '${id}' is known: the result store holds no graph for it`);
    return graph;
  }

  private async stateOf(node: { readonly id: string }): Promise<MonitoredState> {
    const record = await this.app.results.get(node.id);
    return record?.state ?? this.options.state?.tasks.get(node.id)?.state ?? "PENDING";
  }

  /** A workflow's steps (each with its parents, children and state) and the steps its value is made of. */
  async workflow(id: string) {
    const graph = await this.graphOf(id, "workflow");
    const nodes: GraphNode[] = graph.nodes.slice(0, MAX_WORKFLOW_STEPS);
    const states = await Promise.all(nodes.map((node) => this.stateOf(node)));
    return {
      id: graph.id,
      steps: nodes.map((node, i) => ({
        step: node.index,
        id: node.id,
        task: node.target === undefined ? node.task : `${node.task}(${node.target})`,
        state: states[i],
        after: node.after === undefined ? [] : leavesOf(node.after),
        next: node.next,
      })),
      truncated: graph.nodes.length > nodes.length,
      output: leavesOf(graph.output),
      errbacks: graph.errbacks.map((errback) => ({ id: errback.id, task: errback.task })),
    };
  }

  /** How far a group (a workflow whose value is a list of results) has got. */
  async groupProgress(id: string) {
    const graph = await this.graphOf(id, "group");
    const members = leavesOf(graph.output).map((index) => graph.nodes[index]);
    const states = await Promise.all(members.map((node) => this.stateOf(node)));
    const count = (predicate: (state: MonitoredState) => boolean) => states.filter(predicate).length;
    const succeeded = count((state) => state === "SUCCESS");
    const failed = count((state) => state === "FAILURE" || state === "REVOKED" || state === "REJECTED");
    return {
      id,
      total: members.length,
      completed: succeeded + failed,
      succeeded,
      failed,
      running: count((state) => state === "STARTED"),
      waiting: count((state) => !READY_STATES.has(state as TaskState) && state !== "STARTED" && state !== "REJECTED"),
      ready: succeeded + failed === members.length,
      members: members.map((node, i) => ({ id: node.id, task: node.task, state: states[i] })),
    };
  }

  /** The task names that may be applied: this app's, the options', the workers'. */
  async registeredTasks(): Promise<string[]> {
    const names = new Set<string>([...(tasksOf(this.app)?.keys() ?? []), ...(this.options.tasks ?? [])]);
    try {
      for (const tasks of Object.values(await this.workerTasks())) for (const name of tasks) names.add(name);
    } catch {
      // A worker answering with an error leaves its tasks out; the others still count.
    }
    return [...names].sort();
  }

  /** Throws a 404 for a task nobody registered, a 400 for too few arguments where the handler is known. */
  async checkApplicable(task: string, args: readonly unknown[]): Promise<void> {
    const local = tasksOf(this.app)?.get(task);
    if (local !== undefined) {
      if (args.length < local.minArgs)
        throw badRequest(`task '${task}' takes at least ${local.minArgs} argument(s), got ${args.length}`);
      return;
    }
    const registered = await this.registeredTasks();
    if (!registered.includes(task))
      throw notFound(
        "unknown_task",
        `task '${task}' is not registered${registered.length === 0 ? " (no task is: start a worker)" : `; registered: ${registered.join(", ")}`}`,
      );
  }

  /** The workers, from their events (status, heartbeat) and their stats (pool, queues). */
  async workers() {
    let stats: Record<string, WorkerStatsInfo> = {};
    try {
      stats = await this.stats();
    } catch {
      // Events alone still describe the workers.
    }
    const seen = this.options.state?.cluster.workers() ?? [];
    const names = [...new Set([...seen.map((worker) => worker.name), ...Object.keys(stats)])].sort();
    return names.map((name) => {
      const events = seen.find((worker) => worker.name === name);
      const info = stats[name];
      return {
        name,
        status: events?.status ?? "online",
        lastHeartbeat: events === undefined ? null : iso(events.lastSeen * 1000),
        active: events?.active ?? info?.pool.running ?? 0,
        processed:
          events?.processed ??
          (info === undefined ? 0 : Object.values(info.total).reduce((sum, count) => sum + count, 0)),
        loadavg: events?.loadavg ?? [],
        pool:
          info === undefined
            ? null
            : { concurrency: info.pool["max-concurrency"], running: info.pool.running, waiting: info.pool.waiting },
        queues: info?.queues ?? [],
        uptime: info?.uptime ?? null,
        pid: info?.pid ?? null,
        events: info?.events ?? events !== undefined,
      };
    });
  }

  /** The queues with their depths and how many dead letters each has; internal ones only with `all`. */
  async queues(all: boolean) {
    const queues = await this.app.queues.list();
    const byName = new Map(queues.map((queue) => [queue.name, queue]));
    return queues
      .filter((queue) => all || !queue.name.startsWith("celerity."))
      .map((queue) => {
        const deadLetters = queue.deadLetterQueue === "" ? undefined : byName.get(queue.deadLetterQueue);
        return {
          ...queue,
          deadLettered: deadLetters === undefined ? 0 : deadLetters.ready + deadLetters.unacked,
        };
      });
  }

  async deadLetters(queue: string) {
    const letters = await this.app.queues.deadLetters(queue);
    return letters.map((letter) => ({
      id: letter.envelope.id,
      task: typeof letter.envelope.headers.task === "string" ? letter.envelope.headers.task : null,
      queue: letter.queue,
      reason: letter.reason,
      at: iso(letter.at),
      bytes: letter.envelope.body.byteLength,
    }));
  }

  /** Limits changed through this API, and the tasks each worker holds waiting for a rate-limit token. */
  async rateLimits() {
    let scheduled: Record<string, ScheduledInfo[]> = {};
    try {
      scheduled = await this.app.inspect.scheduled({ timeout: this.options.controlTimeoutMs ?? 500 });
    } catch {
      // A worker's error leaves its held tasks out.
    }
    return {
      changes: [...this.rateLimitChanges].map(([task, change]) => ({ task, limit: change.limit, at: change.at })),
      waiting: Object.fromEntries(
        Object.entries(scheduled).map(([worker, held]) => [
          worker,
          held.map((item) => ({ id: item.request.id, task: item.request.name })),
        ]),
      ),
    };
  }

  async changeRateLimit(task: string, rate: unknown, burst: unknown) {
    if (rate === undefined)
      throw badRequest(`'rate' is required: a rate such as "10/s" or "100/m", or null to remove the limit`);
    if (rate !== null && typeof rate !== "string" && typeof rate !== "number")
      throw badRequest(
        `'rate' must be a rate such as "10/s", a number per second, or null, got ${JSON.stringify(rate)}`,
      );
    if (burst !== undefined && (typeof burst !== "number" || !Number.isInteger(burst) || burst < 1))
      throw badRequest(`'burst' must be a positive integer, got ${JSON.stringify(burst)}`);
    const change: RateLimitChange = rate === null ? null : burst === undefined ? rate : { rate, burst };
    resolveChange(task, change);
    await this.app.control.rateLimit(task, change);
    this.rateLimitChanges.set(task, { limit: change, at: new Date().toISOString() });
    return { task, limit: change };
  }
}
