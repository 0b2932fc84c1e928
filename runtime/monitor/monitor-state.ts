/**
 * Everything a monitor knows from the event stream, in one place: the
 * workers (ClusterState, as `celerity events` draws them), the tasks
 * (TaskHistory, bounded), throughput and latency per second, and the
 * listeners told when something changed (the dashboard's live updates).
 */
import { ClusterState } from "../events/cluster-state.ts";
import { isTaskEvent, type CelerityEvent } from "../events/event-types.ts";
import { TaskHistory } from "./task-history.ts";
import { ThroughputSeries } from "./throughput-series.ts";

/**
 * How much a monitor remembers.
 *
 * @example
 * const state = new MonitorState({ maxTasks: 10_000 });
 */
export interface MonitorStateOptions {
  /** Most tasks remembered; the least recently changed are forgotten first. Default 100,000. */
  readonly maxTasks?: number;
  /** Seconds of throughput and latency kept for the charts. Default 120. */
  readonly seriesSeconds?: number;
  readonly now?: () => number;
}

/**
 * The monitor's picture of the cluster, fed with every event.
 *
 * @example
 * const state = new MonitorState();
 * await app.events.subscribe((event) => state.apply(event));
 * const handler = createHttpHandler(app, { state });
 */
export class MonitorState {
  readonly cluster: ClusterState;
  readonly tasks: TaskHistory;
  readonly series: ThroughputSeries;
  /** Task events applied since the start. */
  private taskEvents = 0;
  private readonly listeners = new Set<() => void>();
  private changed = false;

  constructor(options: MonitorStateOptions = {}) {
    const now = options.now ?? Date.now;
    this.cluster = new ClusterState(now);
    this.tasks = new TaskHistory(options.maxTasks ?? 100_000);
    this.series = new ThroughputSeries(options.seriesSeconds ?? 120, now);
  }

  /** Fold one event in. */
  apply(event: CelerityEvent): void {
    this.cluster.apply(event);
    if (isTaskEvent(event)) {
      this.taskEvents++;
      this.tasks.apply(event);
      if (event.type === "task-succeeded") this.series.succeeded(event.runtime);
      else if (event.type === "task-failed") this.series.failed();
    }
    this.changed = true;
  }

  /** Task events applied since the start. */
  get taskEventCount(): number {
    return this.taskEvents;
  }

  /**
   * Call `listener` after events changed the picture, at most once per
   * `flush()`; returns the function that removes it.
   */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Tell the listeners if anything changed since the last flush (the monitor calls it on a timer, so a burst of events is one update). */
  flush(): void {
    if (!this.changed) return;
    this.changed = false;
    for (const listener of this.listeners) listener();
  }
}
