// The picture of a cluster that its event stream draws: the workers (online,
// offline, or lost when their heartbeats stopped), how many events of each
// type arrived per second lately and in all, and the latest failures. What
// `celerity events` shows; a monitor can fold the stream into one the same way.
import type { CelerityEvent, EventType, TaskFailedEvent } from "./event-types.ts";

/**
 * A worker as `ClusterState.workers()` shows it.
 *
 * @example
 * const state = new ClusterState();
 * await app.events.subscribe((event) => state.apply(event));
 * state.workers(); // [{ name: "1234@host", status: "online", active: 2, ... }]
 */
export interface WorkerView {
  readonly name: string;
  /** "lost": no heartbeat for three heartbeat periods, without a worker-offline. */
  readonly status: "online" | "offline" | "lost";
  readonly active: number;
  readonly processed: number;
  readonly loadavg: readonly number[];
  /** Seconds since the epoch of its last event. */
  readonly lastSeen: number;
}

/**
 * A task failure as `ClusterState.failures()` keeps it.
 *
 * @example
 * for (const failure of state.failures()) console.log(failure.name, failure.uuid, failure.hostname, failure.exception);
 */
export interface FailureView {
  readonly uuid: string;
  readonly name: string;
  readonly hostname: string;
  readonly exception: string;
  readonly timestamp: number;
}

interface WorkerEntry {
  status: "online" | "offline";
  active: number;
  processed: number;
  loadavg: readonly number[];
  lastSeen: number;
  freq: number;
}

/** Seconds of history kept for rates. */
const WINDOW_S = 10;

/**
 * Folds events into what `celerity events` shows: the workers, each event
 * type's rate and total, the latest failures (ten unless told).
 *
 * @example
 * const state = new ClusterState();
 * await app.events.subscribe((event) => state.apply(event));
 * setInterval(() => console.log(state.rate("task-succeeded"), "tasks/s,", state.total("task-failed"), "failed"), 1_000);
 */
export class ClusterState {
  private readonly workerEntries = new Map<string, WorkerEntry>();
  private readonly counts = new Map<EventType, number>();
  /** Per type, counts per second over the last WINDOW_S seconds (ring indexed by second). */
  private readonly buckets = new Map<EventType, { second: number[]; count: number[] }>();
  private readonly latestFailures: FailureView[] = [];

  constructor(
    private readonly now: () => number = Date.now,
    private readonly keepFailures = 10,
  ) {}

  apply(event: CelerityEvent): void {
    this.counts.set(event.type, (this.counts.get(event.type) ?? 0) + 1);
    this.countRecent(event.type);
    const worker = this.workerOf(event.hostname, event.timestamp);
    if (event.type === "worker-online" || event.type === "worker-heartbeat") {
      worker.status = "online";
      worker.freq = event.freq;
      if (event.type === "worker-heartbeat") {
        worker.active = event.active;
        worker.processed = event.processed;
        worker.loadavg = event.loadavg;
      }
    } else if (event.type === "worker-offline") {
      worker.status = "offline";
      worker.active = 0;
    } else if (event.type === "task-failed") {
      this.failed(event);
    }
  }

  private workerOf(name: string, timestamp: number): WorkerEntry {
    let worker = this.workerEntries.get(name);
    if (worker === undefined)
      this.workerEntries.set(
        name,
        (worker = { status: "online", active: 0, processed: 0, loadavg: [], lastSeen: timestamp, freq: 2 }),
      );
    worker.lastSeen = Math.max(worker.lastSeen, timestamp);
    return worker;
  }

  private failed(event: TaskFailedEvent): void {
    this.latestFailures.unshift({
      uuid: event.uuid,
      name: event.name,
      hostname: event.hostname,
      exception: event.exception,
      timestamp: event.timestamp,
    });
    if (this.latestFailures.length > this.keepFailures) this.latestFailures.length = this.keepFailures;
  }

  private countRecent(type: EventType): void {
    const second = Math.floor(this.now() / 1000);
    let ring = this.buckets.get(type);
    if (ring === undefined)
      this.buckets.set(
        type,
        (ring = { second: new Array<number>(WINDOW_S).fill(-1), count: new Array<number>(WINDOW_S).fill(0) }),
      );
    const slot = second % WINDOW_S;
    if (ring.second[slot] !== second) {
      ring.second[slot] = second;
      ring.count[slot] = 0;
    }
    ring.count[slot]++;
  }

  /** The workers seen, by name. */
  workers(): WorkerView[] {
    const now = this.now() / 1000;
    return [...this.workerEntries]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, w]) => ({
        name,
        status: w.status === "online" && now - w.lastSeen > w.freq * 3 ? "lost" : w.status,
        active: w.active,
        processed: w.processed,
        loadavg: w.loadavg,
        lastSeen: w.lastSeen,
      }));
  }

  /** Events of `type` per second over the last ten seconds (the current second included). */
  rate(type: EventType): number {
    const ring = this.buckets.get(type);
    if (ring === undefined) return 0;
    const second = Math.floor(this.now() / 1000);
    let sum = 0;
    for (let i = 0; i < WINDOW_S; i++) if (ring.second[i] > second - WINDOW_S) sum += ring.count[i];
    return sum / WINDOW_S;
  }

  /** Events of `type` received in all. */
  total(type: EventType): number {
    return this.counts.get(type) ?? 0;
  }

  /** The latest task failures, newest first. */
  failures(): readonly FailureView[] {
    return this.latestFailures;
  }
}
