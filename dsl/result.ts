/**
 * The shape of a handle on a sent task or workflow. The DSL only names it (so
 * `apply()` can be typed); the runtime implements it against a result store.
 *
 * @example
 * if ((await result.state()) === "FAILURE") console.log(await result.error());
 */
export type TaskState = "UNKNOWN" | "PENDING" | "RECEIVED" | "STARTED" | "RETRY" | "SUCCESS" | "FAILURE" | "REVOKED";

export const READY_STATES: ReadonlySet<TaskState> = new Set(["SUCCESS", "FAILURE", "REVOKED"]);

/**
 * A remote failure, as stored with the result: the error's name, message and stack (the traceback).
 *
 * @example
 * const info = await result.error(); // { name: "Error", message: "boom", stack: "Error: boom\n    at ..." }
 */
export interface RemoteErrorInfo {
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
}

/**
 * Prepended to an error callback's arguments (see `onError`).
 *
 * @example
 * const report = app.task("report", (failure: TaskFailure) => console.error(failure.id, failure.error.message));
 * await add.s(1, 2).onError(report.s()).apply();
 */
export interface TaskFailure {
  readonly id: string;
  readonly task: string;
  readonly error: RemoteErrorInfo;
}

/**
 * How many members of a task, group or workflow have finished, for a progress bar.
 *
 * @example
 * const { completed, total } = await result.progress();
 */
export interface Progress {
  readonly total: number;
  readonly completed: number;
  readonly succeeded: number;
  readonly failed: number;
  /**
   * How far along, from 0 to 1: a finished task counts 1, a running one that
   * reported `{ done, total }` counts done / total, any other 0; a group
   * averages its members'.
   */
  readonly fraction: number;
  /** For a single task: what it last reported of itself (`this.progress(...)`), if anything. */
  readonly info?: ProgressInfo;
}

/**
 * What a running task reported of itself with `this.progress(...)`: a state
 * of its own ("PROGRESS" unless it named one), how far along it is, and any
 * metadata. Read with `result.info()`; the task's `state()` stays `STARTED`.
 *
 * @example
 * const info = await result.info(); // { state: "PROGRESS", done: 40, total: 100 }
 */
export interface ProgressInfo {
  readonly state: string;
  readonly done?: number;
  readonly total?: number;
  readonly meta?: unknown;
}

/**
 * How often `onProgress` looks at the store, and for how long.
 *
 * @example
 * const stop = result.onProgress((p) => console.log(p.fraction), { interval: 100 });
 */
export interface ProgressWatchOptions {
  /** Ms between reads of the store. Default 250. */
  readonly interval?: number;
}

/**
 * How long `get()` waits.
 *
 * @example
 * await result.get({ timeout: 5_000 }); // rejects with TimeoutError after 5 s
 */
export interface GetOptions {
  /** Reject with a TimeoutError after this many ms (the task keeps running). Default: wait indefinitely. */
  readonly timeout?: number;
}

/**
 * What `revoke()` does to a task already running.
 *
 * @example
 * await result.revoke({ terminate: true }); // aborts the running task's signal too
 */
export interface RevokeOptions {
  /** Also abort the task if it is running (its AbortSignal fires and the worker abandons it). */
  readonly terminate?: boolean;
}

/**
 * The handle on a sent task, group or workflow: wait for its value, read its state, revoke or forget it.
 *
 * @example
 * const result: AsyncResult<number> = await add.delay(2, 2);
 * await result.get({ timeout: 5_000 }); // 4
 * await result.state(); // "SUCCESS"
 */
export interface AsyncResult<R> {
  /** The task id (UUID); for a group, the id of the group. */
  readonly id: string;
  /** For a group: its members' results, in order. Empty for a single task. */
  readonly children: readonly AsyncResult<unknown>[];
  /**
   * The handle on the step this one came after, as in Celery: in
   * `chain(a, b, c)`, the result's parent is `b`'s and its parent `a`'s; a
   * chord body's parent is its header. Undefined for a first step, a task
   * sent on its own, a handle made from an id (`app.result(id)`), and a
   * group whose members do not all follow the same step.
   */
  readonly parent?: AsyncResult<unknown>;
  /** Wait for the value; rejects with the remote error if the task failed. */
  get(options?: GetOptions): Promise<R>;
  state(): Promise<TaskState>;
  ready(): Promise<boolean>;
  successful(): Promise<boolean>;
  failed(): Promise<boolean>;
  /** Counts of finished members (a single task counts as one; `failed` counts failed and revoked), for progress bars. */
  progress(): Promise<Progress>;
  /** What the task last reported of itself with `this.progress(...)`; undefined if it reported nothing (and for a group). */
  info(): Promise<ProgressInfo | undefined>;
  /**
   * Call `listener` with the progress each time it changes, from any process
   * sharing the result store, and a last time once finished; returns a
   * function that stops watching. Reads the store every `interval` ms.
   */
  onProgress(listener: (progress: Progress) => void, options?: ProgressWatchOptions): () => void;
  /** The stored failure (name, message, traceback), if the task failed. */
  error(): Promise<RemoteErrorInfo | undefined>;
  /** Drop the stored result. */
  forget(): Promise<void>;
  /** Revoke the task (for a group or workflow, every member): queued or delayed, it never runs; running, it finishes unless `terminate` is set. */
  revoke(options?: RevokeOptions): Promise<void>;
}
