/**
 * Metrics fed in-process by an app's own workers, through its hooks: no
 * event stream needed, so a worker that sends no events can still be
 * scraped (`celerity worker --metrics-port`). It sees what its workers run:
 * tasks started and their outcomes (succeeded, failed, retried, revoked),
 * the run time of each success, its workers and how busy they are. Sent,
 * received and rejected tasks are the event stream's to report.
 */
import type { App } from "../app.ts";
import type { MetricSet } from "./metric-set.ts";

export class WorkerFeed {
  private readonly startedAt = new Map<string, number>();
  private readonly online = new Map<string, number>();
  private readonly removers: (() => void)[];

  constructor(app: App, metrics: MetricSet) {
    this.removers = [
      app.on("workerReady", ({ worker }) => void this.online.set(worker, this.online.get(worker) ?? 0)),
      app.on("workerShutdown", ({ worker }) => void this.online.delete(worker)),
      app.on("taskPrerun", ({ id, task, worker }) => {
        this.startedAt.set(id, performance.now());
        this.online.set(worker, (this.online.get(worker) ?? 0) + 1);
        metrics.countTask(task, "started");
      }),
      app.on("taskPostrun", ({ id, task, worker, outcome }) => {
        const started = this.startedAt.get(id);
        this.startedAt.delete(id);
        const active = this.online.get(worker);
        if (active !== undefined && active > 0) this.online.set(worker, active - 1);
        metrics.countTask(task, outcome);
        if (outcome === "succeeded" && started !== undefined)
          metrics.observeRuntime(task, (performance.now() - started) / 1000);
      }),
    ];
  }

  /** This app's running workers, with the tasks each runs now. */
  workers(): ReadonlyMap<string, number> {
    return this.online;
  }

  close(): void {
    for (const remove of this.removers) remove();
  }
}
