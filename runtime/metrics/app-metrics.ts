/**
 * `collectMetrics(app)`: an app's Prometheus metrics on a registry, fed by
 * the event stream (the default, for a monitor or any process that sees the
 * events) or by the app's own workers in-process (`feed: "workers"`), with
 * the queues' depths and the workers online sampled at each scrape.
 */
import { Registry } from "prom-client";
import type { App } from "../app.ts";
import type { EventSubscription } from "../events/event-subscription.ts";
import { EventFeed } from "./event-feed.ts";
import { checkBuckets, registerMetricSet, unregisterMetricSet, type MetricSet } from "./metric-set.ts";
import { MetricsOptionError } from "./metrics-errors.ts";
import { sampleQueueDepths } from "./queue-depth.ts";
import { WorkerFeed } from "./worker-feed.ts";

/**
 * How an app's metrics are collected.
 *
 * @example
 * const options: MetricsOptions = { feed: "workers", queues: ["celery", "emails"], runtimeBuckets: [0.1, 1, 10] };
 */
export interface MetricsOptions {
  /**
   * A prom-client registry to register on, for an application that already
   * serves one. Default: a registry of celerity's own (never prom-client's
   * global one).
   */
  readonly registry?: Registry;
  /**
   * Where task and worker counts come from: `"events"` (default) subscribes
   * to the event stream, which needs workers started with `events: true`;
   * `"workers"` listens to this app's own workers in this process.
   */
  readonly feed?: "events" | "workers";
  /**
   * The queues whose depth is reported. Default: every queue the broker
   * lists but auto-delete ones (embedded broker, broker node); on a
   * transport that lists none (Redis, RabbitMQ), the default queue `celery`.
   */
  readonly queues?: readonly string[];
  /** The run-time histogram's upper bounds, in seconds, increasing. Default from 5 ms to 300 s. */
  readonly runtimeBuckets?: readonly number[];
  /** Where a scrape that could not read the queues says why (its queue gauges are left out). Default console.error. */
  readonly log?: (message: string) => void;
}

/**
 * An app's metrics being collected.
 *
 * @example
 * const metrics = await collectMetrics(app);
 * console.log(await metrics.registry.metrics()); // the text exposition format
 * await metrics.close();
 */
export interface AppMetrics {
  /** The registry holding the metrics: serve `await registry.metrics()` with `registry.contentType`. */
  readonly registry: Registry;
  /** Stop collecting: the subscription or hooks are removed (the metrics stay registered). */
  close(): Promise<void>;
}

const FEEDS = ["events", "workers"] as const;

const checkOptions = (options: MetricsOptions): void => {
  if (options === null || typeof options !== "object")
    throw new MetricsOptionError({ option: "options", reason: "must be an object" });
  if (options.feed !== undefined && !FEEDS.includes(options.feed))
    throw new MetricsOptionError({
      option: "feed",
      reason: `${JSON.stringify(options.feed)} is not a feed; use "events" or "workers"`,
    });
  if (options.log !== undefined && typeof options.log !== "function")
    throw new MetricsOptionError({ option: "log", reason: "must be a function" });
  if (options.registry !== undefined && !(options.registry instanceof Registry))
    throw new MetricsOptionError({ option: "registry", reason: "must be a prom-client Registry" });
  const { queues } = options;
  if (
    queues !== undefined &&
    (!Array.isArray(queues) || queues.some((queue) => typeof queue !== "string" || queue.length === 0))
  )
    throw new MetricsOptionError({ option: "queues", reason: "must be an array of queue names" });
};

/**
 * Collect `app`'s Prometheus metrics (docs/metrics.md): tasks by name and
 * state, the run time of successful runs, workers online and their running
 * tasks, the event stream's lag, and each queue's depth and consumers.
 * Resolves once the feed is attached (with the event feed, every event
 * published from then on is counted).
 *
 * @example
 * import { collectMetrics } from "celerity/metrics";
 * const metrics = await collectMetrics(app);
 * const text = await metrics.registry.metrics(); // celerity_tasks_total{task="add",state="succeeded"} 12 ...
 */
export const collectMetrics = async (app: App, options: MetricsOptions = {}): Promise<AppMetrics> => {
  checkOptions(options);
  const buckets = checkBuckets(options.runtimeBuckets);
  const registry = options.registry ?? new Registry();
  const log = options.log ?? ((message: string) => console.error(message));
  let workers: () => ReadonlyMap<string, number> = () => new Map();
  const fromEvents = options.feed !== "workers";
  const metrics: MetricSet = registerMetricSet(registry, buckets, fromEvents, async () => {
    const online = workers();
    metrics.workersOnline.set(online.size);
    metrics.workerActive.reset();
    for (const [worker, active] of online) metrics.workerActive.set({ worker }, active);
    metrics.queueMessages.reset();
    metrics.queueConsumers.reset();
    let depths: Awaited<ReturnType<typeof sampleQueueDepths>>;
    try {
      depths = await sampleQueueDepths(app.broker, options.queues);
    } catch (error) {
      // The counters are still worth a scrape: only the queue gauges are missing from this one.
      return log(`metrics: queue depths could not be read: ${error instanceof Error ? error.message : String(error)}`);
    }
    for (const queue of depths) {
      metrics.queueMessages.set({ queue: queue.name, state: "ready" }, queue.ready);
      // A count the broker cannot tell is left out rather than reported as 0.
      if (queue.unacked !== undefined)
        metrics.queueMessages.set({ queue: queue.name, state: "unacked" }, queue.unacked);
      if (queue.delayed !== undefined)
        metrics.queueMessages.set({ queue: queue.name, state: "delayed" }, queue.delayed);
      metrics.queueConsumers.set({ queue: queue.name }, queue.consumers);
    }
  });
  if (!fromEvents) {
    const feed = new WorkerFeed(app, metrics);
    workers = () => feed.workers();
    return { registry, close: async () => feed.close() };
  }
  const feed = new EventFeed(metrics);
  workers = () => feed.workers();
  let subscription: EventSubscription;
  try {
    subscription = await app.events.subscribe(feed.apply);
  } catch (error) {
    unregisterMetricSet(registry);
    throw error;
  }
  return { registry, close: () => subscription.close() };
};
