/**
 * What the peers bench asks of every system it measures: celerity (embedded
 * and TCP node) and its peers (BullMQ, bee-queue, Celery). Each system is one
 * module in systems/ that returns a `System`; the harness drives every one of
 * them through the same `Instance` calls, so a workload is written once.
 *
 * Every task a worker runs is counted on the worker's side (a `Window`: how
 * many ran since the last reset, when the first started and the last ended,
 * in wall-clock ms), which is how the harness learns that a workload is done
 * without asking each system for results in its own way.
 */

/** Tasks run since the last reset, and when (wall-clock ms, sub-millisecond) the first started and the last ended. */
export interface Window {
  readonly count: number;
  readonly first: number;
  readonly last: number;
}

export type EnqueueMode = "single" | "bulk";

export interface Instance {
  /** Send `n` no-op tasks to a queue no worker consumes: one call at a time, each awaited ("single"), or through the system's bulk call in batches of `batch` ("bulk"). */
  enqueue(n: number, mode: EnqueueMode, batch: number): Promise<void>;
  /** Empty the queue that `enqueue` fills (untimed). */
  purgeIdle(): Promise<void>;
  /** Send `n` no-op tasks to the work queue in bulk batches (the worker is stopped: a backlog). */
  fill(n: number, batch: number): Promise<void>;
  startWorker(): Promise<void>;
  /** Stop consuming once the tasks under way are done. */
  stopWorker(): Promise<void>;
  /** Zero the worker's count, window and latency samples. */
  reset(): Promise<void>;
  /** Resolves once the worker has run at least `count` tasks since the reset (rejects after `timeoutMs`). */
  waitFor(count: number, timeoutMs: number): Promise<Window>;
  /** Send `n` no-op tasks to the work queue while the worker runs, `inFlight` calls at a time where the client allows it. */
  send(n: number, inFlight: number): Promise<void>;
  /** Start `k` chains of 10 add steps (all in flight together); 10k tasks run. */
  chains(k: number): Promise<void>;
  /** Start one fan-out of `n` add tasks joined by one sum task; n + 1 tasks run. */
  chord(n: number): Promise<void>;
  /** Send `n` stamp tasks at `rate` per second, paced by the clock; each records its send-to-start latency on the worker. */
  paced(n: number, rate: number): Promise<void>;
  /** Send-to-start latencies (ms) recorded since the reset. */
  latencies(): Promise<number[]>;
  /** The worker process's CPU time so far (µs), where the worker has a process of its own (for --profile). */
  workerCpu?(): Promise<number>;
  close(): Promise<void>;
}

export interface SystemConfig {
  readonly concurrency: number;
  readonly echo: boolean;
  /** Extra node options for a system's Node processes (e.g. --cpu-prof ...), by process: "node" (celerity's broker node) or "worker". */
  readonly nodeArgs?: (process: "node" | "worker") => readonly string[];
}

export interface System {
  /** Short id used by --only. */
  readonly id: string;
  /** Shown in tables and the chart. */
  readonly label: string;
  /** How it is set up, in one line (for the docs' method section). */
  readonly setup: string;
  /** Task counts are the workloads' base sizes times this, so that a run takes a second or two on a small machine. */
  readonly speed: number;
  /** Workloads it has no way to run, each with the reason. */
  readonly unsupported: Readonly<Record<string, string>>;
  /** Undefined when it can run here; else why not (its service is not reachable, a package is missing). */
  unavailable(): Promise<string | undefined>;
  /** Versions of everything it runs on (library, server, interpreter). */
  versions(): Promise<Record<string, string>>;
  start(config: SystemConfig): Promise<Instance>;
}

/** Chains are built from this many add steps. */
export const CHAIN_LENGTH = 10;
/** The queues every system uses: the worker consumes WORK_QUEUE; IDLE_QUEUE only ever receives. */
export const WORK_QUEUE = "celerity-peers-work";
export const IDLE_QUEUE = "celerity-peers-idle";
