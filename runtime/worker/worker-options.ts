// What a worker is given and what it reports: its options, stop options, counts,
// and what it needs from its app.
import type { EventDispatcher } from "../events/event-dispatcher.ts";
import type { PoolStats } from "../pool/child-pool.ts";
import type { PoolKind, PoolOptions } from "../pool/pool-options.ts";
import type { RateLimiting } from "../rate-limit/app-rate-limits.ts";
import type { RunnerEnvironment } from "./task-runner.ts";
import type { Worker } from "./worker.ts";

/**
 * How a worker runs: its name, queues, concurrency, prefetch, lease, events, control and pool; every field is optional.
 *
 * @example
 * await app.worker({ name: "images-1", queues: ["images", "celery"], concurrency: 16 }).start();
 */
export interface WorkerOptions extends PoolOptions {
  /**
   * The worker's name: in errors, logs, events (`hostname`) and as the
   * destination of remote control. Default `<pid>@<host>`, as in Celery
   * (`<pid>-<n>@<host>` for the n-th worker of one process).
   */
  readonly name?: string;
  /** Send task and worker events (docs/monitoring.md). Default false: then they cost nothing. */
  readonly events?: boolean;
  /** Answer remote control and inspection (docs/control.md). Default true. */
  readonly control?: boolean;
  /** Queues to consume. Default ["celery"]. */
  readonly queues?: readonly string[];
  /** Tasks run at once (on a threads or process pool: its threads or children). Default 8; with `autoscale`, its `min`. */
  readonly concurrency?: number;
  /** Unacknowledged messages held per queue (running plus waiting). Default concurrency (autoscale: its max) x 4. */
  readonly prefetch?: number;
  /**
   * On a broker node: how long each delivery is leased to this worker. The
   * worker renews the leases of what it holds while its process is alive, so
   * a long task keeps its message; a worker that stops renewing (its event
   * loop blocked that long) loses it to another worker. Default 30 s.
   */
  readonly leaseMs?: number;
}

/**
 * How long `worker.stop()` and `app.close()` wait for running tasks.
 *
 * @example
 * await worker.stop({ timeout: 10_000 });
 */
export interface StopOptions {
  /**
   * Wait at most this many ms for running tasks; then abort them (stopping
   * the threads or children running them) and return their messages to the
   * queue. Default: wait for them. Calling stop again while stopping with a
   * shorter timeout (0: a cold shutdown) cuts the wait short.
   */
  readonly timeout?: number;
}

/**
 * A worker's counts since it started: tasks running and waiting for a slot, and how the finished ones ended.
 *
 * @example
 * const { running, succeeded, failed } = worker.stats();
 */
export interface WorkerStats {
  readonly running: number;
  readonly waiting: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly retried: number;
  readonly revoked: number;
  readonly rejected: number;
  /**
   * In signed mode: deliveries refused before they reached a worker of this
   * app (unsigned, forged, untrusted, outside the window, replayed, misrouted),
   * dead-lettered without running.
   */
  readonly refused?: number;
  /** Tasks the worker runs at once now (grows and shrinks with autoscale, poolGrow, poolShrink). */
  readonly concurrency: number;
  readonly pool: PoolKind;
  /** A threads or process pool's own counts. */
  readonly children?: PoolStats;
}

/** A worker's remote control, started by its app; closed when the worker stops. */
export interface WorkerControlHandle {
  close(): Promise<void>;
}

/** What a worker needs from its app. */
export type WorkerEnvironment = RunnerEnvironment & {
  readonly rateLimits?: RateLimiting;
  /** What a keyed rate limit's key becomes before it leaves the process (signed mode with encryption: a keyed hash). */
  readonly rateLimitKeyDigest?: (task: string, key: string) => string;
  /** In signed mode: how many deliveries the app's signed transport refused so far. */
  readonly signedRefusals?: () => number;
  /** The app's event dispatcher (made on first use). */
  readonly events?: () => EventDispatcher;
  /** Start answering remote control for `worker`. */
  readonly startControl?: (worker: Worker) => Promise<WorkerControlHandle>;
  /** The app's module (createApp({ module })), loaded by each thread or child of a pool. */
  readonly appModule?: string;
};
