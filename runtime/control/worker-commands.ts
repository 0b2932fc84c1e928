// What a worker answers to each remote control command: Celery's inspect
// commands (what it runs, holds, knows) and control commands (change a
// limit, the pool, the queues consumed, events; shut down). Each takes the
// request's arguments and returns the reply's value; a throw is replied as
// an error naming the worker.
import type { Codec } from "../../broker/codec.ts";
import type { Delivery } from "../../broker/envelope.ts";
import type { Transport } from "../../broker/transport.ts";
import { repr } from "../events/event-repr.ts";
import { UnknownTaskError } from "../errors.ts";
import type { RateLimitChange, RateLimiting } from "../rate-limit/app-rate-limits.ts";
import { resolveChange } from "../rate-limit/app-rate-limits.ts";
import { fromEnvelope } from "../task-message.ts";
import type { TaskDefinition } from "../task.ts";
import type { Worker } from "../worker/worker.ts";
import type { Method } from "./control-protocol.ts";

/** What a command runs against: the worker, its transport, codec, tasks and rate limits. */
export interface CommandContext {
  readonly worker: Worker;
  readonly transport: Transport;
  readonly codec: Codec;
  readonly tasks: ReadonlyMap<string, TaskDefinition>;
  readonly rateLimits: RateLimiting | undefined;
}

/**
 * A task as `inspect active` and `inspect reserved` show it (Celery's request info).
 *
 * @example
 * for (const task of Object.values(await app.inspect.active()).flat()) console.log(task.hostname, task.id, task.name, task.time_start);
 */
export interface TaskInfo {
  readonly id: string;
  readonly name: string;
  readonly args: string;
  readonly kwargs: string;
  readonly hostname: string;
  /** Seconds since the epoch when it started; null when it has not. */
  readonly time_start: number | null;
  readonly acknowledged: boolean;
  readonly delivery_info: { readonly routing_key: string; readonly redelivered: boolean; readonly priority: number };
  readonly worker_pid: number;
}

/**
 * A task the worker holds until a time (for a rate-limit token), as `inspect scheduled` shows it.
 *
 * @example
 * for (const { eta, request } of Object.values(await app.inspect.scheduled()).flat()) console.log(request.name, "waits until", eta);
 */
export interface ScheduledInfo {
  readonly eta: string | null;
  readonly priority: number;
  readonly request: TaskInfo;
}

/**
 * What `inspect stats` answers.
 *
 * @example
 * for (const [worker, stats] of Object.entries(await app.inspect.stats())) {
 *   console.log(worker, `${stats.pool.running}/${stats.pool["max-concurrency"]} running`, stats.total.failed, "failed");
 * }
 */
export interface WorkerStatsInfo {
  readonly hostname: string;
  readonly pid: number;
  /** Seconds since the worker started. */
  readonly uptime: number;
  readonly pool: { readonly "max-concurrency": number; readonly running: number; readonly waiting: number };
  readonly prefetch_count: number;
  readonly total: {
    readonly succeeded: number;
    readonly failed: number;
    readonly retried: number;
    readonly revoked: number;
    readonly rejected: number;
  };
  readonly events: boolean;
  readonly queues: readonly string[];
  readonly rusage: { readonly utime: number; readonly stime: number; readonly maxrss: number };
}

/**
 * A queue as `inspect active_queues` shows it.
 *
 * @example
 * const consumed = await app.inspect.activeQueues({ destination: "4121@web-1" });
 * console.log(consumed["4121@web-1"]?.map((queue) => queue.name)); // ["celerity", "emails"]
 */
export interface QueueConsumed {
  readonly name: string;
  readonly exchange: string;
  readonly routing_key: string;
}

const heldInfo = (context: CommandContext, delivery: Delivery): TaskInfo => {
  const { envelope } = delivery;
  let name = typeof envelope.headers.task === "string" ? envelope.headers.task : "(unknown)";
  let args = `<${envelope.body.byteLength} bytes>`;
  try {
    const message = fromEnvelope(envelope, context.codec);
    name = message.target === undefined ? message.task : `${message.task}(${message.target})`;
    args = repr(message.args);
  } catch {
    // malformed: shown by id and header only
  }
  return {
    id: envelope.id,
    name,
    args,
    kwargs: "{}",
    hostname: context.worker.name,
    time_start: null,
    acknowledged: false,
    delivery_info: { routing_key: delivery.queue, redelivered: delivery.redelivered, priority: envelope.priority },
    worker_pid: process.pid,
  };
};

const stringArgument = (args: Readonly<Record<string, unknown>>, name: string): string => {
  const value = args[name];
  if (typeof value !== "string" || value.length === 0)
    throw new TypeError(`argument '${name}' must be a non-empty string, got ${repr(value)}`);
  return value;
};

const countArgument = (args: Readonly<Record<string, unknown>>): number => {
  const n = args.n ?? 1;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1)
    throw new TypeError(`argument 'n' must be a positive integer, got ${repr(n)}`);
  return n;
};

const optionalMs = (args: Readonly<Record<string, unknown>>, name: string): number | undefined => {
  const value = args[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !(value > 0))
    throw new TypeError(`argument '${name}' must be a positive number of ms, got ${repr(value)}`);
  return value;
};

const revokedIds = (transport: Transport): string[] => {
  let current: unknown = transport;
  for (let depth = 0; depth < 4 && current !== undefined; depth++) {
    const active = (current as { activeRevocations?: () => [string, number][] }).activeRevocations;
    if (typeof active === "function") return active.call(current).map(([id]) => id);
    current = (current as { inner?: unknown }).inner;
  }
  return [];
};

type Command = (context: CommandContext, args: Readonly<Record<string, unknown>>) => unknown;

export const COMMANDS: { readonly [M in Method]: Command } = {
  ping: () => "pong",
  active: (context): TaskInfo[] =>
    [...context.worker.runningTasks()].map((running) => ({
      id: running.message.id,
      name:
        running.message.target === undefined
          ? running.message.task
          : `${running.message.task}(${running.message.target})`,
      args: repr(running.message.args),
      kwargs: "{}",
      hostname: context.worker.name,
      time_start: running.startedAt / 1000,
      acknowledged: false,
      delivery_info: { routing_key: running.queue, redelivered: false, priority: 0 },
      worker_pid: process.pid,
    })),
  reserved: (context): TaskInfo[] =>
    context.worker.heldDeliveries().waiting.map((delivery) => heldInfo(context, delivery)),
  scheduled: (context): ScheduledInfo[] =>
    context.worker.heldDeliveries().rateLimited.map((delivery) => ({
      eta: delivery.envelope.eta === undefined ? null : new Date(delivery.envelope.eta).toISOString(),
      priority: delivery.envelope.priority,
      request: heldInfo(context, delivery),
    })),
  registered: (context): string[] => [...context.tasks.keys()].sort(),
  stats: (context): WorkerStatsInfo => {
    const { worker } = context;
    const stats = worker.stats();
    const usage = process.resourceUsage();
    return {
      hostname: worker.name,
      pid: process.pid,
      uptime: Math.round((Date.now() - worker.startedAt) / 1000),
      pool: { "max-concurrency": worker.poolSize, running: stats.running, waiting: stats.waiting },
      prefetch_count: worker.prefetchCount,
      total: {
        succeeded: stats.succeeded,
        failed: stats.failed,
        retried: stats.retried,
        revoked: stats.revoked,
        rejected: stats.rejected,
      },
      events: worker.sendsEvents,
      queues: worker.consumedQueues,
      rusage: { utime: usage.userCPUTime / 1e6, stime: usage.systemCPUTime / 1e6, maxrss: usage.maxRSS },
    };
  },
  revoked: (context): string[] => revokedIds(context.transport),
  active_queues: (context): QueueConsumed[] =>
    context.worker.consumedQueues.map((name) => ({ name, exchange: "", routing_key: name })),

  rate_limit: (context, args) => {
    const task = stringArgument(args, "task_name");
    if (!context.tasks.has(task))
      throw new UnknownTaskError({
        task,
        queue: "",
        worker: context.worker.name,
        registered: [...context.tasks.keys()],
      });
    if (context.rateLimits === undefined) throw new Error("this worker keeps no rate limits");
    context.rateLimits.table.override(task, resolveChange(task, (args.rate_limit ?? null) as RateLimitChange));
    return {
      ok:
        args.rate_limit === null || args.rate_limit === undefined
          ? "rate limit disabled successfully"
          : "new rate limit set successfully",
    };
  },
  time_limit: (context, args) => {
    const task = stringArgument(args, "task_name");
    if (!context.tasks.has(task))
      throw new UnknownTaskError({
        task,
        queue: "",
        worker: context.worker.name,
        registered: [...context.tasks.keys()],
      });
    context.worker.setTimeLimits(task, optionalMs(args, "soft"), optionalMs(args, "hard"));
    return { ok: "time limits set successfully" };
  },
  shutdown: (context) => {
    // After the reply is on its way: stopping cancels the very consumer this request came through.
    setImmediate(() => void context.worker.stop());
    return { ok: "shutting down" };
  },
  pool_grow: (context, args) => ({ ok: `pool will grow to ${context.worker.poolGrow(countArgument(args))}` }),
  pool_shrink: (context, args) => ({ ok: `pool will shrink to ${context.worker.poolShrink(countArgument(args))}` }),
  add_consumer: async (context, args) => {
    const queue = stringArgument(args, "queue");
    return (await context.worker.addConsumer(queue))
      ? { ok: `add consumer ${queue}` }
      : { ok: `already consuming from ${queue}` };
  },
  cancel_consumer: async (context, args) => {
    const queue = stringArgument(args, "queue");
    return (await context.worker.cancelConsumer(queue))
      ? { ok: `no longer consuming from ${queue}` }
      : { ok: `was not consuming from ${queue}` };
  },
  enable_events: (context) => {
    const already = context.worker.sendsEvents;
    context.worker.enableEvents();
    return { ok: already ? "events already enabled" : "events enabled" };
  },
  disable_events: (context) => {
    const was = context.worker.sendsEvents;
    context.worker.disableEvents();
    return { ok: was ? "events disabled" : "events already disabled" };
  },
};
