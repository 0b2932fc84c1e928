// Handles on results in Celery's Redis result backend: written by a Python
// worker or by a celerity worker on the Celery protocol, read the same way.
import type {
  AsyncResult,
  GetOptions,
  Progress,
  ProgressInfo,
  ProgressWatchOptions,
  RemoteErrorInfo,
  TaskState,
} from "../../dsl/result.ts";
import { firstError, fractionOf, groupProgress, watchProgress } from "../task-progress.ts";
import { RemoteTaskError, TaskRevokedError } from "../errors.ts";
import type { CeleryRedis } from "./celery-redis.ts";
import { EXCEPTION_STATES, fromCeleryException, READY, type CeleryResultMeta } from "./celery-result-meta.ts";

const stateOf = (meta: CeleryResultMeta | undefined): TaskState => {
  if (meta === undefined) return "PENDING";
  return meta.status === "IGNORED" ? "SUCCESS" : meta.status;
};

/** `get()` options within this module: a signal that ends the wait, so a chain's handle can stop waiting on its parents. */
interface CeleryGetOptions extends GetOptions {
  readonly signal?: AbortSignal;
}

/** Celery's own states; any other is a task's custom one (update_state). */
const STANDARD_STATES: ReadonlySet<string> = new Set([
  "PENDING",
  "RECEIVED",
  "STARTED",
  "RETRY",
  "SUCCESS",
  "FAILURE",
  "REVOKED",
  "IGNORED",
]);

const revocationNotSupported = (): Promise<never> =>
  Promise.reject(
    new Error(
      "revoking is not supported on the celery protocol yet (Celery revokes through worker remote control); see docs/celery-interop.md",
    ),
  );

/** The handle on one task's result in Celery's format. */
export class CeleryTaskResult<R> implements AsyncResult<R> {
  readonly children: readonly AsyncResult<unknown>[] = [];
  constructor(
    readonly id: string,
    private readonly backend: CeleryRedis,
    /** The task's name, when known, for the errors `get()` raises. */
    private readonly task = "?",
    readonly parent?: AsyncResult<unknown>,
  ) {}

  /**
   * Wait for the value; a failure rejects with RemoteTaskError carrying the
   * remote exception's type, message and traceback. As in Celery, a step
   * before this one that fails (a chain's, a chord's header) rejects it too:
   * the step after a failure is never sent, so its own record never comes.
   */
  async get(options: CeleryGetOptions = {}): Promise<R> {
    const outer = options.signal;
    if (this.parent === undefined) return this.valueOf(await this.backend.waitReady(this.id, options.timeout, outer));
    const done = new AbortController();
    const stop = () => done.abort(outer?.reason);
    outer?.addEventListener("abort", stop, { once: true });
    try {
      const parentFailed = this.parent
        .get({ ...options, signal: done.signal } as CeleryGetOptions)
        .then(() => new Promise<never>(() => undefined));
      parentFailed.catch(() => undefined);
      return this.valueOf(
        await Promise.race([this.backend.waitReady(this.id, options.timeout, done.signal), parentFailed]),
      );
    } finally {
      outer?.removeEventListener("abort", stop);
      done.abort(new Error("no longer waited for"));
    }
  }

  private valueOf(meta: CeleryResultMeta): R {
    if (meta.status === "SUCCESS" || meta.status === "IGNORED") return meta.result as R;
    if (meta.status === "REVOKED") throw new TaskRevokedError({ id: this.id, task: this.task, expired: false });
    throw new RemoteTaskError({
      id: this.id,
      task: this.task,
      remote: fromCeleryException(meta.result, meta.traceback),
    });
  }
  async state(): Promise<TaskState> {
    return stateOf(await this.backend.read(this.id));
  }
  async ready(): Promise<boolean> {
    const meta = await this.backend.read(this.id);
    return meta !== undefined && READY.has(meta.status);
  }
  async successful(): Promise<boolean> {
    return (await this.state()) === "SUCCESS";
  }
  async failed(): Promise<boolean> {
    return (await this.state()) === "FAILURE";
  }
  async progress(): Promise<Progress> {
    const state = await this.state();
    const succeeded = state === "SUCCESS" ? 1 : 0;
    const failed = state === "FAILURE" || state === "REVOKED" ? 1 : 0;
    const info = await this.info();
    return {
      total: 1,
      completed: succeeded + failed,
      succeeded,
      failed,
      fraction: fractionOf(state, info),
      ...(info !== undefined ? { info } : {}),
    };
  }
  /** A custom state a Celery task set with update_state, with its meta; undefined for the standard states. */
  async info(): Promise<ProgressInfo | undefined> {
    const meta = await this.backend.read(this.id);
    if (meta === undefined || STANDARD_STATES.has(meta.status)) return undefined;
    const fields = (typeof meta.result === "object" && meta.result !== null ? meta.result : {}) as {
      current?: unknown;
      total?: unknown;
    };
    return {
      state: meta.status,
      ...(typeof fields.current === "number" ? { done: fields.current } : {}),
      ...(typeof fields.total === "number" ? { total: fields.total } : {}),
      meta: meta.result,
    };
  }
  onProgress(listener: (progress: Progress) => void, options?: ProgressWatchOptions): () => void {
    return watchProgress(() => this.progress(), listener, options);
  }
  async error(): Promise<RemoteErrorInfo | undefined> {
    const meta = await this.backend.read(this.id);
    return meta !== undefined && EXCEPTION_STATES.has(meta.status)
      ? fromCeleryException(meta.result, meta.traceback)
      : undefined;
  }
  forget(): Promise<void> {
    return this.backend.forget(this.id);
  }
  revoke(): Promise<void> {
    return revocationNotSupported();
  }
}

/** The handle on a group: its members' results, in order. */
export class CeleryGroupResult<R> implements AsyncResult<R> {
  constructor(
    readonly id: string,
    readonly children: readonly AsyncResult<unknown>[],
    readonly parent?: AsyncResult<unknown>,
  ) {}
  async get(options: GetOptions = {}): Promise<R> {
    return (await Promise.all(this.children.map((child) => child.get(options)))) as R;
  }
  async state(): Promise<TaskState> {
    const states = await Promise.all(this.children.map((child) => child.state()));
    if (states.some((state) => state === "FAILURE")) return "FAILURE";
    if (states.every((state) => state === "SUCCESS")) return "SUCCESS";
    return states.some((state) => state !== "PENDING") ? "STARTED" : "PENDING";
  }
  async ready(): Promise<boolean> {
    return (await Promise.all(this.children.map((child) => child.ready()))).every(Boolean);
  }
  async successful(): Promise<boolean> {
    return (await this.state()) === "SUCCESS";
  }
  async failed(): Promise<boolean> {
    return (await this.state()) === "FAILURE";
  }
  async progress(): Promise<Progress> {
    return groupProgress(await Promise.all(this.children.map((child) => child.progress())));
  }
  async info(): Promise<ProgressInfo | undefined> {
    return undefined;
  }
  onProgress(listener: (progress: Progress) => void, options?: ProgressWatchOptions): () => void {
    return watchProgress(() => this.progress(), listener, options);
  }
  error(): Promise<RemoteErrorInfo | undefined> {
    return firstError(this.children);
  }
  async forget(): Promise<void> {
    await Promise.all(this.children.map((child) => child.forget()));
  }
  revoke(): Promise<void> {
    return revocationNotSupported();
  }
}
