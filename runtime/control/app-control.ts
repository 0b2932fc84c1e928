// `app.inspect` and the remote control part of `app.control`: each call
// broadcasts one command and resolves, after the timeout (default 1 s) or
// once every named worker has answered, with the answers keyed by worker
// name. No worker answering is an empty object, not an error.
import { DEFAULT_CONTROL_TIMEOUT_MS, type BroadcastOptions, type ControlClient } from "./control-client.ts";
import { ControlError, type ControlAnswer, type ControlReply } from "./control-protocol.ts";
import type { QueueConsumed, ScheduledInfo, TaskInfo, WorkerStatsInfo } from "./worker-commands.ts";

/**
 * Which workers a call asks, and how long it waits for their answers.
 *
 * @example
 * await app.inspect.active({ destination: ["4121@web-1"], timeout: 3_000 });
 */
export interface ControlOptions {
  /** Only these workers (by name). Default: every worker. */
  readonly destination?: string | readonly string[];
  /** How long to wait for replies, in ms. Default 1000. */
  readonly timeout?: number;
}

/**
 * Answers keyed by the name of the worker that gave them.
 *
 * @example
 * const replies: Replies<"pong"> = await app.inspect.ping();
 * console.log(Object.keys(replies)); // ["4121@web-1", "4388@web-2"]
 */
export type Replies<T> = Record<string, T>;

/**
 * `app.inspect`: ask the workers what they run, hold and know, each answer keyed by worker name.
 *
 * @example
 * const running = await app.inspect.active();
 * for (const [worker, tasks] of Object.entries(running)) console.log(worker, tasks.map((task) => task.name));
 */
export interface Inspect {
  /** `"pong"` from every worker that is up. */
  ping(options?: ControlOptions): Promise<Replies<"pong">>;
  /** The tasks each worker is running. */
  active(options?: ControlOptions): Promise<Replies<TaskInfo[]>>;
  /** The tasks each worker holds, waiting for a free slot. */
  reserved(options?: ControlOptions): Promise<Replies<TaskInfo[]>>;
  /** The tasks each worker holds until a time: waiting for a rate-limit token (eta tasks wait in the broker: see `app.queues.list()`). */
  scheduled(options?: ControlOptions): Promise<Replies<ScheduledInfo[]>>;
  /** The task names each worker knows. */
  registered(options?: ControlOptions): Promise<Replies<string[]>>;
  stats(options?: ControlOptions): Promise<Replies<WorkerStatsInfo>>;
  /** The revoked task ids each worker knows of. */
  revoked(options?: ControlOptions): Promise<Replies<string[]>>;
  /** The queues each worker consumes. */
  activeQueues(options?: ControlOptions): Promise<Replies<QueueConsumed[]>>;
}

/**
 * The commands of `app.control` that change running workers: time limits,
 * pool size, queues consumed, events, shutdown. Each answers `{ ok }` or
 * `{ error }` per worker.
 *
 * @example
 * await app.control.poolGrow(4, { destination: "4121@web-1" });
 * await app.control.addConsumer("emails");
 * await app.control.timeLimit("fetch", { soft: 10_000, hard: 15_000 });
 */
export interface RemoteControl {
  /** Change `task`'s time limits (ms; undefined for none) on the workers, winning over what messages carry. */
  timeLimit(
    task: string,
    limits: { readonly soft?: number; readonly hard?: number },
    options?: ControlOptions,
  ): Promise<Replies<ControlAnswer>>;
  /** Stop the workers gracefully: running tasks finish, held messages go back to their queues; a `celerity worker` process then exits 0. */
  shutdown(options?: ControlOptions): Promise<Replies<ControlAnswer>>;
  /** Run `n` more tasks at once on each worker (default 1). */
  poolGrow(n?: number, options?: ControlOptions): Promise<Replies<ControlAnswer>>;
  /** Run `n` fewer tasks at once on each worker (never below 1). */
  poolShrink(n?: number, options?: ControlOptions): Promise<Replies<ControlAnswer>>;
  /** Have the workers consume `queue` too. */
  addConsumer(queue: string, options?: ControlOptions): Promise<Replies<ControlAnswer>>;
  /** Have the workers stop consuming `queue` (what they hold of it goes back to it). */
  cancelConsumer(queue: string, options?: ControlOptions): Promise<Replies<ControlAnswer>>;
  enableEvents(options?: ControlOptions): Promise<Replies<ControlAnswer>>;
  disableEvents(options?: ControlOptions): Promise<Replies<ControlAnswer>>;
  /**
   * Any command by its Celery name (`"rate_limit"`, `"ping"`, ...) with its
   * arguments; the raw replies. For a rate limit on chosen workers only:
   * `broadcast("rate_limit", { task_name: "fetch", rate_limit: "5/s" }, { destination: "w1@host" })`.
   */
  broadcast(
    method: string,
    args?: Readonly<Record<string, unknown>>,
    options?: ControlOptions,
  ): Promise<ControlReply[]>;
}

const toBroadcast = (options: ControlOptions | undefined): BroadcastOptions => ({
  timeout: options?.timeout ?? DEFAULT_CONTROL_TIMEOUT_MS,
  ...(options?.destination !== undefined ? { destination: options.destination } : {}),
});

/** Inspect answers keyed by worker; a worker's error is thrown as ControlError. */
const inspectCall =
  <T>(client: ControlClient, method: string) =>
  async (options?: ControlOptions): Promise<Replies<T>> => {
    const replies = await client.broadcast(method, {}, toBroadcast(options));
    const answers: Replies<T> = {};
    for (const reply of replies) {
      if (!reply.ok)
        throw new ControlError({ method, worker: reply.hostname, reason: reply.error ?? "no reason given" });
      answers[reply.hostname] = reply.value as T;
    }
    return answers;
  };

const controlCall = async (
  client: ControlClient,
  method: string,
  args: Record<string, unknown>,
  options?: ControlOptions,
): Promise<Replies<ControlAnswer>> => {
  const replies = await client.broadcast(method, args, toBroadcast(options));
  const answers: Replies<ControlAnswer> = {};
  for (const reply of replies)
    answers[reply.hostname] = reply.ok ? (reply.value as ControlAnswer) : { error: reply.error ?? "no reason given" };
  return answers;
};

export const inspectOf = (client: ControlClient): Inspect => ({
  ping: inspectCall(client, "ping"),
  active: inspectCall(client, "active"),
  reserved: inspectCall(client, "reserved"),
  scheduled: inspectCall(client, "scheduled"),
  registered: inspectCall(client, "registered"),
  stats: inspectCall(client, "stats"),
  revoked: inspectCall(client, "revoked"),
  activeQueues: inspectCall(client, "active_queues"),
});

export const remoteControlOf = (client: ControlClient): RemoteControl => ({
  timeLimit: (task, limits, options) =>
    controlCall(
      client,
      "time_limit",
      { task_name: task, soft: limits.soft ?? null, hard: limits.hard ?? null },
      options,
    ),
  shutdown: (options) => controlCall(client, "shutdown", {}, options),
  poolGrow: (n = 1, options) => controlCall(client, "pool_grow", { n }, options),
  poolShrink: (n = 1, options) => controlCall(client, "pool_shrink", { n }, options),
  addConsumer: (queue, options) => controlCall(client, "add_consumer", { queue }, options),
  cancelConsumer: (queue, options) => controlCall(client, "cancel_consumer", { queue }, options),
  enableEvents: (options) => controlCall(client, "enable_events", {}, options),
  disableEvents: (options) => controlCall(client, "disable_events", {}, options),
  broadcast: (method, args = {}, options) => client.broadcast(method, args, toBroadcast(options)),
});
