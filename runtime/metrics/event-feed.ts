/**
 * Metrics fed by the event stream (`app.events.subscribe`): what any process
 * that sees the events can report, a monitor's above all. Task events count
 * tasks by name and state, task-succeeded's `runtime` fills the run-time
 * histogram, worker events keep the picture of the workers
 * (`ClusterState`), and every event's arrival measures the stream's lag.
 */
import { ClusterState } from "../events/cluster-state.ts";
import type { ReceivedEvent } from "../events/event-subscription.ts";
import type { MetricSet, TaskStateLabel } from "./metric-set.ts";

const STATE_OF_EVENT: Readonly<Record<string, TaskStateLabel>> = {
  "task-sent": "sent",
  "task-received": "received",
  "task-started": "started",
  "task-succeeded": "succeeded",
  "task-failed": "failed",
  "task-retried": "retried",
  "task-revoked": "revoked",
  "task-rejected": "rejected",
};

/** Folds events into the metrics; `workers` says, at scrape time, which workers are online and how busy. */
export class EventFeed {
  readonly cluster = new ClusterState();

  constructor(private readonly metrics: MetricSet) {}

  readonly apply = (event: ReceivedEvent): void => {
    this.metrics.eventsLag?.set(event.local_received - event.timestamp);
    this.cluster.apply(event);
    const state = STATE_OF_EVENT[event.type];
    if (state === undefined || !("name" in event)) return;
    this.metrics.countTask(event.name, state);
    if (event.type === "task-succeeded") this.metrics.observeRuntime(event.name, event.runtime);
  };

  /** The online workers, with the tasks each runs (from its latest heartbeat). */
  workers(): ReadonlyMap<string, number> {
    const online = new Map<string, number>();
    for (const worker of this.cluster.workers()) if (worker.status === "online") online.set(worker.name, worker.active);
    return online;
  }
}
