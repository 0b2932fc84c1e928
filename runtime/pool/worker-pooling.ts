// What a worker runs beside its consumers, by its pool options: the threads
// or child processes of a pool, the autoscaler, and on the async pool the
// watch for a blocked event loop. The worker calls it at start and stop and
// hands the runner `pool`, `blockWarnMs` and `blocked`.
import type { ResultStore } from "../results/result-store.ts";
import { ProgressRecorder } from "../task-progress.ts";
import type { Codec } from "../../broker/codec.ts";
import { Autoscaler } from "./autoscaler.ts";
import { ChildPool, type PoolStats } from "./child-pool.ts";
import { EventLoopWatch } from "./event-loop-watch.ts";
import type { PoolKind, ResolvedPoolOptions } from "./pool-options.ts";

/** What the pooling reads of its worker, and the one thing it changes (its size). */
export interface PooledWorker {
  readonly name: string;
  /** Messages held for a free slot. */
  backlog(): number;
  /** Tasks running. */
  busy(): number;
  /** Tasks the worker runs at once now. */
  concurrency(): number;
  resize(size: number): void;
  /** Async handlers running now, by task id. */
  running(): Iterable<[string, { readonly task: string }]>;
  /** The last task whose handler finished asynchronously, and how many have. */
  lastFinished(): { readonly task: { readonly task: string; readonly id: string } | undefined; readonly count: number };
}

const SUSPECTS_NAMED = 5;

export class WorkerPooling {
  readonly kind: PoolKind;
  readonly pool: ChildPool | undefined;
  readonly blockWarnMs: number;
  private readonly autoscaler: Autoscaler | undefined;
  private readonly watch: EventLoopWatch | undefined;
  private lastReported = -Infinity;

  constructor(
    options: ResolvedPoolOptions,
    size: number,
    private readonly worker: PooledWorker,
    private readonly env: {
      readonly codec: Codec;
      readonly log: (message: string) => void;
      readonly store?: ResultStore;
    },
  ) {
    this.kind = options.kind;
    this.blockWarnMs = options.blockWarnMs;
    this.pool =
      options.kind === "async"
        ? undefined
        : new ChildPool({
            kind: options.kind,
            appModule: options.appModule as string,
            worker: worker.name,
            size,
            maxTasksPerChild: options.maxTasksPerChild,
            maxMemoryPerChild: options.maxMemoryPerChild,
            codec: env.codec,
            log: env.log,
            ...(env.store !== undefined
              ? { progress: progressRecording(new ProgressRecorder(env.store, env.codec), env.log) }
              : {}),
          });
    this.autoscaler =
      options.autoscale &&
      new Autoscaler(options.autoscale, {
        backlog: () => worker.backlog(),
        busy: () => worker.busy(),
        size: () => worker.concurrency(),
        resize: (to) => worker.resize(to),
      });
    this.watch =
      this.pool === undefined
        ? new EventLoopWatch({
            warnMs: this.blockWarnMs,
            running: () => {
              const names: string[] = [];
              for (const [id, { task }] of worker.running())
                if (names.push(`'${task}' (${id})`) === SUSPECTS_NAMED) break;
              return names;
            },
            lastFinished: () => {
              const { task, count } = worker.lastFinished();
              return { label: task && `'${task.task}' (${task.id})`, count };
            },
            lastReported: () => this.lastReported,
            report: (ms, suspects) =>
              this.warn(suspects.length === 1 ? `task ${suspects[0]}` : `one of the tasks ${suspects.join(", ")}`, ms),
          })
        : undefined;
  }

  /** Before consuming: start the pool's threads or children (each loads the app module). */
  async start(): Promise<void> {
    await this.pool?.start();
  }

  /** Once consuming. */
  consuming(): void {
    this.autoscaler?.start();
    this.watch?.start();
  }

  /** As the worker begins to stop: no more resizing or watching. */
  stopping(): void {
    this.autoscaler?.stop();
    this.watch?.stop();
  }

  /** Once nothing runs any more (or a start failed): end the threads or children. */
  async close(): Promise<void> {
    await this.pool?.close();
  }

  resize(size: number): void {
    this.pool?.resize(size);
  }

  stats(): PoolStats | undefined {
    return this.pool?.stats();
  }

  /** The runner timed a handler's synchronous run past blockWarnMs. */
  blocked(task: string, id: string, ms: number): void {
    this.warn(`task '${task}' (${id})`, ms);
  }

  private warn(what: string, ms: number): void {
    this.lastReported = performance.now();
    this.env.log(
      `${this.worker.name}: ${what} blocked the event loop for ${Math.round(ms)} ms (warning at ${this.blockWarnMs} ms): heartbeats and lease renewals wait meanwhile, and a broker node gives away deliveries whose lease runs out. Run CPU-bound tasks on a threads or process pool (docs/workers.md)`,
    );
  }
}

/** Record a pooled task's report; a failed write is logged (the task goes on, as a report is only ever informative). */
const progressRecording =
  (recorder: ProgressRecorder, log: (message: string) => void) =>
  (id: string, task: string, retries: number, info: Uint8Array): void => {
    Promise.resolve()
      .then(() => recorder.recordEncoded(id, task, retries, info))
      .catch((error: unknown) =>
        log(
          `recording the progress of task '${task}' (${id}) failed: ${error instanceof Error ? error.message : String(error)}`,
        ),
      );
  };
