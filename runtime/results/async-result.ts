// Result handles on one task, a group and a workflow: state, value, progress and error read
// from the result store, forgetting and revoking through the app.
import type { Codec } from "../../broker/codec.ts";
import type {
  AsyncResult,
  GetOptions,
  Progress,
  ProgressWatchOptions,
  RemoteErrorInfo,
  RevokeOptions,
  ProgressInfo,
  TaskState,
} from "../../dsl/result.ts";
import { READY_STATES } from "../../dsl/result.ts";
import { RemoteTaskError, TaskRevokedError, TimeoutError, UnknownResultError } from "../errors.ts";
import type { ResultRecord, ResultStore } from "./result-store.ts";
import { firstError, fractionOf, groupProgress, watchProgress } from "../task-progress.ts";

/** What a result handle needs from its app. */
export interface ResultContext {
  readonly store: ResultStore;
  readonly codec: Codec;
  revoke(ids: readonly string[], options?: RevokeOptions): Promise<void>;
}

/** The value of a final record, or the error it stands for. */
export const settle = (record: ResultRecord, codec: Codec): unknown => {
  switch (record.state) {
    case "SUCCESS":
      return record.value === undefined ? undefined : codec.decode(record.value);
    case "REVOKED":
      throw new TaskRevokedError({ id: record.id, task: record.task });
    default:
      throw new RemoteTaskError({
        id: record.id,
        task: record.task,
        remote: record.error ?? { name: "Error", message: "unknown failure" },
      });
  }
};

/**
 * The handle on one sent task.
 *
 * @example
 * const r = await add.delay(2, 2);
 * await r.get({ timeout: 5_000 }); // 4
 */
export class TaskResult<R> implements AsyncResult<R> {
  readonly children: readonly AsyncResult<unknown>[] = [];
  constructor(
    readonly id: string,
    protected readonly context: ResultContext,
    /** Made on first use: a chain of 5,000 steps need not build 5,000 handles up front. */
    private readonly parentOf?: () => AsyncResult<unknown> | undefined,
  ) {}

  get parent(): AsyncResult<unknown> | undefined {
    return this.parentOf?.();
  }

  async get(options: GetOptions = {}): Promise<R> {
    const { store, codec } = this.context;
    const current = await store.get(this.id);
    if (current === undefined) throw new UnknownResultError({ id: this.id });
    const record = READY_STATES.has(current.state)
      ? current
      : await store.waitFinal(
          this.id,
          options.timeout,
          () => new TimeoutError({ id: this.id, timeoutMs: options.timeout ?? 0 }),
        );
    return settle(record, codec) as R;
  }

  async state(): Promise<TaskState> {
    return (await this.context.store.get(this.id))?.state ?? "UNKNOWN";
  }
  async ready(): Promise<boolean> {
    return READY_STATES.has(await this.state());
  }
  async successful(): Promise<boolean> {
    return (await this.state()) === "SUCCESS";
  }
  async failed(): Promise<boolean> {
    return (await this.state()) === "FAILURE";
  }
  async progress(): Promise<Progress> {
    const record = await this.context.store.get(this.id);
    const state = record?.state ?? "UNKNOWN";
    const info = this.infoOf(record);
    return {
      total: 1,
      completed: READY_STATES.has(state) ? 1 : 0,
      succeeded: state === "SUCCESS" ? 1 : 0,
      failed: state === "FAILURE" || state === "REVOKED" ? 1 : 0,
      fraction: fractionOf(state, info),
      ...(info !== undefined ? { info } : {}),
    };
  }
  async info(): Promise<ProgressInfo | undefined> {
    return this.infoOf(await this.context.store.get(this.id));
  }
  onProgress(listener: (progress: Progress) => void, options?: ProgressWatchOptions): () => void {
    return watchProgress(() => this.progress(), listener, options);
  }
  private infoOf(record: ResultRecord | undefined): ProgressInfo | undefined {
    return record?.info === undefined ? undefined : (this.context.codec.decode(record.info) as ProgressInfo);
  }
  async error(): Promise<RemoteErrorInfo | undefined> {
    return (await this.context.store.get(this.id))?.error;
  }
  forget(): Promise<void> {
    return this.context.store.forget(this.id);
  }
  revoke(options?: RevokeOptions): Promise<void> {
    return this.context.revoke([this.id], options);
  }
}

/**
 * The handle on a group: its members' handles, in order. `get()` resolves to
 * the list of values (rejecting with the first failure); `progress()` counts
 * finished members for a progress bar.
 *
 * @example
 * const members = await group(add.s(1, 1), add.s(2, 2)).apply();
 * await members.get(); // [2, 4]
 * await members.progress(); // { total: 2, completed: 2, succeeded: 2, failed: 0 }
 */
export class GroupResult<R> implements AsyncResult<R> {
  constructor(
    readonly id: string,
    readonly children: readonly AsyncResult<unknown>[],
    /** For an empty group after a step: that step, whose failure is the group's. */
    private readonly gate?: AsyncResult<unknown>,
    private readonly parentOf?: () => AsyncResult<unknown> | undefined,
  ) {}

  get parent(): AsyncResult<unknown> | undefined {
    return this.parentOf?.();
  }

  async get(options: GetOptions = {}): Promise<R> {
    if (this.gate !== undefined) {
      await this.gate.get(options);
      return [] as R;
    }
    if (options.timeout === undefined) return (await Promise.all(this.children.map((child) => child.get()))) as R;
    const deadline = Date.now() + options.timeout;
    const values: unknown[] = [];
    for (const child of this.children) {
      const left = deadline - Date.now();
      if (left <= 0 && !(await child.ready())) throw new TimeoutError({ id: this.id, timeoutMs: options.timeout });
      try {
        values.push(await child.get({ timeout: Math.max(left, 0) }));
      } catch (error) {
        if (error instanceof TimeoutError) throw new TimeoutError({ id: this.id, timeoutMs: options.timeout });
        throw error;
      }
    }
    return values as R;
  }

  async state(): Promise<TaskState> {
    if (this.gate !== undefined) return this.gate.state();
    const states = await Promise.all(this.children.map((child) => child.state()));
    if (states.some((s) => s === "FAILURE")) return "FAILURE";
    if (states.some((s) => s === "REVOKED")) return "REVOKED";
    if (states.every((s) => s === "SUCCESS")) return "SUCCESS";
    if (states.some((s) => s === "UNKNOWN")) return "UNKNOWN";
    if (states.some((s) => s === "STARTED" || s === "SUCCESS" || s === "RETRY")) return "STARTED";
    return "PENDING";
  }
  async ready(): Promise<boolean> {
    if (this.gate !== undefined) return this.gate.ready();
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
  async revoke(options?: RevokeOptions): Promise<void> {
    await Promise.all(this.children.map((child) => child.revoke(options)));
  }
}

/**
 * A workflow's result: it reads as its output (one task or a group) but
 * revoking or forgetting it covers every step of the workflow.
 */
export class WorkflowResult<R> implements AsyncResult<R> {
  constructor(
    private readonly output: AsyncResult<R>,
    private readonly stepIds: readonly string[],
    private readonly context: ResultContext,
  ) {}
  get id(): string {
    return this.output.id;
  }
  get children(): readonly AsyncResult<unknown>[] {
    return this.output.children;
  }
  get parent(): AsyncResult<unknown> | undefined {
    return this.output.parent;
  }
  get(options?: GetOptions): Promise<R> {
    return this.output.get(options);
  }
  state(): Promise<TaskState> {
    return this.output.state();
  }
  ready(): Promise<boolean> {
    return this.output.ready();
  }
  successful(): Promise<boolean> {
    return this.output.successful();
  }
  failed(): Promise<boolean> {
    return this.output.failed();
  }
  progress(): Promise<Progress> {
    return this.output.progress();
  }
  info(): Promise<ProgressInfo | undefined> {
    return this.output.info();
  }
  onProgress(listener: (progress: Progress) => void, options?: ProgressWatchOptions): () => void {
    return this.output.onProgress(listener, options);
  }
  error(): Promise<RemoteErrorInfo | undefined> {
    return this.output.error();
  }
  async forget(): Promise<void> {
    await Promise.all(this.stepIds.map((id) => this.context.store.forget(id)));
  }
  revoke(options?: RevokeOptions): Promise<void> {
    return this.context.revoke(this.stepIds, options);
  }
}
