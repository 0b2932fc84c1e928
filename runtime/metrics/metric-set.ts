/**
 * The Prometheus metrics celerity reports, declared once: their names, help
 * texts and labels, registered on one registry. The feeds (events, a
 * worker's hooks) and the queue sampler write to them; nothing else names a
 * metric.
 */
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { MetricsOptionError } from "./metrics-errors.ts";

/**
 * The run-time histogram's buckets, in seconds, unless told: from a few ms to five minutes.
 *
 * @example
 * await collectMetrics(app, { runtimeBuckets: [0.001, 0.002, ...DEFAULT_RUNTIME_BUCKETS] }); // finer for very short tasks
 */
export const DEFAULT_RUNTIME_BUCKETS: readonly number[] = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
];

/** What a task-state counter counts: a step of a task's life, as its event names it without "task-". */
export type TaskStateLabel =
  | "sent"
  | "received"
  | "started"
  | "succeeded"
  | "failed"
  | "retried"
  | "revoked"
  | "rejected";

export interface MetricSet {
  readonly tasks: Counter<"task" | "state">;
  readonly runtime: Histogram<"task">;
  readonly workersOnline: Gauge;
  readonly workerActive: Gauge<"worker">;
  /** Only with the event feed: a worker's own hooks have no stream to lag. */
  readonly eventsLag: Gauge | undefined;
  readonly queueMessages: Gauge<"queue" | "state">;
  readonly queueConsumers: Gauge<"queue">;
  /** Count one task reaching `state` (label children are kept, so a steady stream hashes no labels). */
  countTask(task: string, state: TaskStateLabel): void;
  observeRuntime(task: string, seconds: number): void;
}

/**
 * The name of each metric celerity reports (docs/metrics.md has their labels).
 *
 * @example
 * const failed = (await metrics.registry.getSingleMetricAsString(METRIC_NAMES.tasks)).split("\n").filter((line) => line.includes('state="failed"'));
 */
export const METRIC_NAMES = {
  tasks: "celerity_tasks_total",
  runtime: "celerity_task_runtime_seconds",
  workersOnline: "celerity_workers_online",
  workerActive: "celerity_worker_active_tasks",
  eventsLag: "celerity_events_lag_seconds",
  queueMessages: "celerity_queue_messages",
  queueConsumers: "celerity_queue_consumers",
} as const;

/** Remove celerity's metrics from `registry`. */
export const unregisterMetricSet = (registry: Registry): void => {
  for (const name of Object.values(METRIC_NAMES)) registry.removeSingleMetric(name);
};

/**
 * Register celerity's metrics on `registry` (the events-lag gauge only
 * `withEventsLag`); `sample` runs before a scrape reads the sampled gauges.
 */
export const registerMetricSet = (
  registry: Registry,
  buckets: readonly number[],
  withEventsLag: boolean,
  sample: () => Promise<void>,
): MetricSet => {
  for (const name of Object.values(METRIC_NAMES)) {
    if (name === METRIC_NAMES.eventsLag && !withEventsLag) continue;
    if (registry.getSingleMetric(name) !== undefined)
      throw new MetricsOptionError({
        option: "registry",
        reason: `it already holds ${name}: collect one app's metrics per registry`,
      });
  }
  const registers = [registry];
  // The gauges sampled at scrape time share one sampling per scrape: the first one collected runs it.
  let sampling: Promise<void> | undefined;
  const sampled = async (): Promise<void> => {
    sampling ??= sample().finally(() => queueMicrotask(() => (sampling = undefined)));
    await sampling;
  };
  const tasks = new Counter({
    name: METRIC_NAMES.tasks,
    help: "Tasks that reached each state, by task name (sent, received, started, succeeded, failed, retried, revoked, rejected)",
    labelNames: ["task", "state"] as const,
    registers,
  });
  const runtime = new Histogram({
    name: METRIC_NAMES.runtime,
    help: "Seconds a task's handler ran, for runs that succeeded, by task name",
    labelNames: ["task"] as const,
    buckets: [...buckets],
    registers,
  });
  const workersOnline = new Gauge({
    name: METRIC_NAMES.workersOnline,
    help: "Workers online (heard from within three heartbeats and not gone offline)",
    registers,
    collect: sampled,
  });
  const workerActive = new Gauge({
    name: METRIC_NAMES.workerActive,
    help: "Tasks each online worker is running",
    labelNames: ["worker"] as const,
    registers,
    collect: sampled,
  });
  const eventsLag = withEventsLag
    ? new Gauge({
        name: METRIC_NAMES.eventsLag,
        help: "Seconds between the latest event's timestamp (its sender's clock) and its arrival here",
        registers,
      })
    : undefined;
  const queueMessages = new Gauge({
    name: METRIC_NAMES.queueMessages,
    help: "Messages in each queue: ready to deliver, delivered and not yet acknowledged (unacked), waiting for their eta (delayed)",
    labelNames: ["queue", "state"] as const,
    registers,
    collect: sampled,
  });
  const queueConsumers = new Gauge({
    name: METRIC_NAMES.queueConsumers,
    help: "Consumers of each queue",
    labelNames: ["queue"] as const,
    registers,
    collect: sampled,
  });
  const taskChildren = new Map<string, Counter.Internal>();
  const runtimeChildren = new Map<string, Histogram.Internal<"task">>();
  return {
    tasks,
    runtime,
    workersOnline,
    workerActive,
    eventsLag,
    queueMessages,
    queueConsumers,
    countTask(task, state) {
      const key = `${state}\u0000${task}`;
      let child = taskChildren.get(key);
      if (child === undefined) taskChildren.set(key, (child = tasks.labels(task, state)));
      child.inc();
    },
    observeRuntime(task, seconds) {
      let child = runtimeChildren.get(task);
      if (child === undefined) runtimeChildren.set(task, (child = runtime.labels(task)));
      child.observe(seconds);
    },
  };
};

/** Check the run-time buckets: finite, positive, increasing. */
export const checkBuckets = (buckets: unknown): readonly number[] => {
  if (buckets === undefined) return DEFAULT_RUNTIME_BUCKETS;
  const fail = (reason: string) => new MetricsOptionError({ option: "runtimeBuckets", reason });
  if (!Array.isArray(buckets) || buckets.length === 0) throw fail("must be a non-empty array of seconds");
  buckets.forEach((bound, i) => {
    if (typeof bound !== "number" || !Number.isFinite(bound) || bound <= 0)
      throw fail(`bucket ${i + 1} is ${JSON.stringify(bound)}, not a positive number of seconds`);
    if (i > 0 && bound <= buckets[i - 1]) throw fail(`buckets must increase; ${bound} follows ${buckets[i - 1]}`);
  });
  return buckets;
};
