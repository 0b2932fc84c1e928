// A registered task: a name, a handler and default options. Calling it sends
// a message (`delay`, `applyAsync`); `s` / `si` make signatures for canvases.
import type { Effect } from "effect";
import { Signature, type Dispatcher } from "../dsl/canvas.ts";
import { chunksGroup, mapSignature, starmapSignature } from "../dsl/combinators.ts";
import type { Group } from "../dsl/canvas.ts";
import type { CallOptions, RetryOptions, SendOptions } from "../dsl/options.ts";
import type { AsyncResult } from "../dsl/result.ts";
import type { RateLimitSetting } from "./rate-limit/rate-setting.ts";
import type { ProgressReport } from "./task-progress.ts";

/**
 * What a handler sees as `this`: the running task's facts, its AbortSignal and `retry()`.
 *
 * @example
 * app.task("fetchPage", async function (url: string) {
 *   const response = await fetch(url, { signal: this.signal });
 *   if (response.status === 503) this.retry({ countdown: 5_000 });
 *   return response.text();
 * });
 */
export interface TaskContext {
  readonly id: string;
  readonly name: string;
  /** How many times this task has been retried so far (0 on the first attempt). */
  readonly retries: number;
  /** Fires on the soft time limit, the hard time limit, revocation with terminate, and worker shutdown past its grace period. */
  readonly signal: AbortSignal;
  /**
   * Ask for a retry (throws; call as `this.retry()` or `throw this.retry()`). Counts against the retry maximum:
   * `max` here, else the task's retry policy, else 3. When it is used up, the task fails with `cause` (or MaxRetriesExceededError).
   */
  retry(options?: { readonly countdown?: number; readonly max?: number; readonly cause?: unknown }): never;
  /**
   * Report how far along the task is, or a state of its own with metadata
   * (Celery's `update_state`): read with `result.info()`, watched with
   * `result.onProgress(...)` from any process. Resolves once recorded;
   * rejects with a ProgressReportError for a report that cannot be recorded.
   *
   * @example
   * await this.progress({ done: 40, total: 100 });
   * await this.progress({ state: "UPLOADING", meta: { file: "a.png" } });
   */
  progress(report: ProgressReport): Promise<void>;
}

/** Handlers may be synchronous, async, or return an Effect (run with the task's AbortSignal). */
export type Handler<A extends readonly unknown[], R> = (
  this: TaskContext,
  ...args: A
) => R | Promise<R> | Effect.Effect<R, unknown, never>;

/**
 * A task's retry defaults: the per-call RetryOptions, plus which errors to retry.
 *
 * @example
 * app.task("charge", charge, { retry: { max: 5, delay: 1_000, backoff: 2, retryOn: (error) => !(error instanceof TypeError) } });
 */
export interface RetryPolicy extends RetryOptions {
  /** Retry only errors for which this returns true. Default: every error. */
  readonly retryOn?: (error: unknown) => boolean;
}

/**
 * Defaults for every call of a task (per-call options override them).
 *
 * @example
 * app.task("resize", resize, { queue: "images", timeLimit: 30_000, retry: { max: 3 } });
 */
export interface TaskOptions extends Omit<CallOptions, "retry"> {
  readonly retry?: RetryPolicy;
  /** Most executions per second, minute or hour ("10/s", "100/m", "1000/h"), across every worker by default: see docs/rate-limiting.md. */
  readonly rateLimit?: RateLimitSetting;
}

/**
 * Partial application, Celery's way: arguments given to `s()` are the
 * trailing ones, and the parent's result (prepended at run time) fills the
 * first. `Suffixes<A>` are the argument lists `s()` accepts; `Leading<A, P>`
 * is what is left for the parent to supply.
 */
export type Suffixes<A extends readonly unknown[]> = A extends readonly [unknown, ...infer Rest]
  ? A | Suffixes<Rest>
  : A;

type DropLast<A extends readonly unknown[], P extends readonly unknown[]> = P extends readonly [unknown, ...infer PRest]
  ? A extends readonly [...infer Head, unknown]
    ? DropLast<Head, PRest>
    : []
  : A;

export type Leading<A extends readonly unknown[], P extends readonly unknown[]> = P extends readonly []
  ? A
  : DropLast<Required<A>, P>;

export interface TaskDefinition {
  readonly name: string;
  readonly handler: Handler<any, any>;
  readonly options: TaskOptions;
  /** The serializable part of `options`: what a message of this task is sent with by default. */
  readonly defaults: CallOptions;
  /** Fewest arguments the handler takes (its declared parameters before the first default). */
  readonly minArgs: number;
}

export interface TaskSender {
  send<R>(task: string, args: readonly unknown[], options: SendOptions | undefined): Promise<AsyncResult<R>>;
  sendMany<R>(
    task: string,
    argsList: readonly (readonly unknown[])[],
    options: CallOptions | undefined,
  ): Promise<AsyncResult<R>[]>;
}

/**
 * A registered task, as `app.task` returns it: send it (`delay`, `applyAsync`)
 * or make signatures of it for canvases (`s`, `si`, `map`, `starmap`, `chunks`).
 *
 * @example
 * const add = app.task("add", (x: number, y: number) => x + y);
 * await (await add.delay(2, 2)).get(); // 4
 * await (await add.applyAsync([2, 2], { countdown: 1_000 })).get(); // 4, a second later
 * await (await chain(add.s(1, 2), add.s(3)).apply()).get(); // 6
 */
export class Task<A extends readonly unknown[], R> {
  constructor(
    readonly definition: TaskDefinition,
    private readonly sender: TaskSender,
    private readonly dispatcher: Dispatcher,
  ) {}

  get name(): string {
    return this.definition.name;
  }

  /**
   * Send the task with these arguments and the task's default options.
   *
   * @example
   * const r = await add.delay(2, 2); // AsyncResult<number>
   */
  delay(...args: A): Promise<AsyncResult<R>> {
    return this.sender.send(this.definition.name, args, undefined);
  }

  /**
   * Send with per-call options (queue, priority, countdown, eta, expires, retry, time limits, ...),
   * a chosen id (`taskId`) or de-duplication (`dedupe`): see SendOptions.
   */
  applyAsync(args: A, options?: SendOptions): Promise<AsyncResult<R>> {
    return this.sender.send(this.definition.name, args, options);
  }

  /**
   * Send the task once per argument list, with the task's default options, in
   * one request and one confirm (over a broker node; each its own publish
   * elsewhere). Resolves once every message is confirmed, with a result per
   * list, in order. Every list is serialized before anything is sent.
   *
   * @example
   * const results = await add.delayMany([[1, 2], [3, 4]]); // AsyncResult<number>[]
   */
  delayMany(argsList: readonly A[]): Promise<AsyncResult<R>[]> {
    return this.sender.sendMany(this.definition.name, argsList, undefined);
  }

  /**
   * `delayMany` with per-call options for every message (queue, priority,
   * countdown, …). A chosen id or de-duplication is for one send at a time.
   *
   * @example
   * await add.applyAsyncMany([[1, 2], [3, 4]], { queue: "math", priority: 5 });
   */
  applyAsyncMany(argsList: readonly A[], options?: CallOptions): Promise<AsyncResult<R>[]> {
    return this.sender.sendMany(this.definition.name, argsList, options);
  }

  /**
   * A mutable signature. The arguments given now are the last ones; in a
   * chain, the parent's result is prepended as the first.
   *
   * @example
   * const label = app.task("label", (n: number, unit: string) => `${n} ${unit}`);
   * chain(add.s(1, 1), label.s("kg")); // label(2, "kg")
   */
  s<const P extends Suffixes<Required<A>> | Suffixes<A>>(...args: P): Signature<Leading<A, P>, R> {
    return new Signature(this.definition.name, args, {}, false, this.dispatcher);
  }

  /** An immutable signature: complete arguments, and it ignores a parent's result. */
  si(...args: A): Signature<[_?: unknown], R> {
    return new Signature(this.definition.name, args, {}, true, this.dispatcher);
  }

  /** Apply the task to each item, in one message; the items may also come from the previous step. */
  map(items: readonly A[0][]): Signature<[], R[]>;
  map(): Signature<[items: readonly A[0][]], R[]>;
  map(items?: readonly A[0][]): Signature<any, R[]> {
    return mapSignature<A[0], R>(this.definition.name, items, this.dispatcher);
  }

  /** Apply the task to each argument tuple, in one message. */
  starmap(argsList: readonly A[]): Signature<[], R[]>;
  starmap(): Signature<[argsList: readonly A[]], R[]>;
  starmap(argsList?: readonly A[]): Signature<any, R[]> {
    return starmapSignature<A, R>(this.definition.name, argsList, this.dispatcher);
  }

  /** Split the argument tuples into chunks of `size`, one message per chunk: a group of lists. */
  chunks(argsList: readonly A[], size: number): Group<[], R[][]> {
    return chunksGroup<A, R>(this.definition.name, argsList, size, this.dispatcher);
  }
}

/**
 * The value a handler's return type stands for: an Effect's success, a Promise's value, or the value itself.
 *
 * @example
 * type Value = HandlerResult<Promise<number>>; // number
 */
export type HandlerResult<Ret> = Ret extends Effect.Effect<infer X, any, any> ? X : Awaited<Ret>;
