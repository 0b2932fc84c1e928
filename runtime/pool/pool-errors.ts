// The pools' errors: a thread or child that ended while running a task (WorkerLostError),
// and a pool that could not start (PoolStartError).
import { Data } from "effect";

/**
 * The thread or child process running a task ended before the task did
 * (process.exit, a crash, out of memory). Stored as the task's failure;
 * only that task fails, and a fresh thread or child takes its place.
 *
 * @example
 * try {
 *   await result.get();
 * } catch (error) {
 *   if (error instanceof RemoteTaskError && error.remote.name === "WorkerLostError") console.error("the task's process died");
 * }
 */
export class WorkerLostError extends Data.TaggedError("WorkerLostError")<{
  readonly task: string;
  readonly id: string;
  /** "thread 12" or "process 4711". */
  readonly child: string;
  readonly exitCode: number | null;
  readonly signal?: string;
}> {
  override get message(): string {
    const how = this.signal !== undefined ? `was killed by ${this.signal}` : `exited with code ${this.exitCode}`;
    return `${this.child} running task '${this.task}' (${this.id}) ${how} before the task finished; a fresh one took its place`;
  }
}

/**
 * A thread or child process of a pool could not load the app's module, so
 * the pool cannot run its tasks: `worker.start()` rejects with it.
 *
 * @example
 * try {
 *   await app.worker({ pool: "threads" }).start();
 * } catch (error) {
 *   if (error instanceof PoolStartError) console.error(`fix ${error.module}: ${error.reason}`);
 * }
 */
export class PoolStartError extends Data.TaggedError("PoolStartError")<{
  readonly worker: string;
  readonly module: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `worker ${this.worker}: a pool child could not load the app module ${this.module}: ${this.reason}`;
  }
}
