import { Data } from "effect";
import type { RemoteErrorInfo } from "../dsl/result.ts";

/**
 * Errors the runtime raises or stores. Each is a tagged value carrying the
 * facts needed to act, and a real Error whose message says what to do.
 */

/**
 * A worker received a task it has no handler for; the message goes to the dead-letter queue.
 *
 * @example
 * await app.sendTask("nope", []).then((r) => r.get()).catch((error) => error instanceof RemoteTaskError); // the worker stored an UnknownTaskError
 */
export class UnknownTaskError extends Data.TaggedError("UnknownTaskError")<{
  readonly task: string;
  readonly queue: string;
  readonly worker: string;
  readonly registered: readonly string[];
}> {
  override get message(): string {
    const known = this.registered.length > 0 ? this.registered.join(", ") : "(none)";
    return `task '${this.task}' is not registered on worker ${this.worker} (queue '${this.queue}'); registered: ${known}`;
  }
}

/**
 * `get({ timeout })` gave up waiting; the task itself keeps running.
 *
 * @example
 * try {
 *   await result.get({ timeout: 1_000 });
 * } catch (error) {
 *   if (error instanceof TimeoutError) console.log(`still running: ${error.id}`);
 * }
 */
export class TimeoutError extends Data.TaggedError("TimeoutError")<{
  readonly id: string;
  readonly timeoutMs: number;
}> {
  override get message(): string {
    return `result of task ${this.id} not ready after ${this.timeoutMs} ms (the task keeps running)`;
  }
}

/**
 * A task failed on a worker; `remote` holds the original error's name, message and stack.
 *
 * @example
 * try {
 *   await (await fail.delay()).get();
 * } catch (error) {
 *   if (error instanceof RemoteTaskError) console.log(error.remote.name, error.remote.message, error.remote.stack);
 * }
 */
export class RemoteTaskError extends Data.TaggedError("RemoteTaskError")<{
  readonly id: string;
  readonly task: string;
  readonly remote: RemoteErrorInfo;
}> {
  override get message(): string {
    return `task '${this.task}' (${this.id}) failed: ${this.remote.name}: ${this.remote.message}`;
  }
  /** The traceback captured on the worker. */
  get traceback(): string | undefined {
    return this.remote.stack;
  }
}

/**
 * `get()` on a task that was revoked, or that expired before it started.
 *
 * @example
 * await result.revoke();
 * await result.get().catch((error) => error instanceof TaskRevokedError); // true
 */
export class TaskRevokedError extends Data.TaggedError("TaskRevokedError")<{
  readonly id: string;
  readonly task: string;
  /** Revoked because it had not started before its `expires` time. */
  readonly expired?: boolean;
}> {
  override get message(): string {
    return `task '${this.task}' (${this.id}) was revoked${this.expired ? " (expired before it started)" : ""}`;
  }
}

/**
 * `get()` on an id the result store does not know.
 *
 * @example
 * await app.result("no-such-id").get().catch((error) => error instanceof UnknownResultError); // true
 */
export class UnknownResultError extends Data.TaggedError("UnknownResultError")<{
  readonly id: string;
}> {
  override get message(): string {
    return `no task with id ${this.id} is known: it was never sent, its result was forgotten or expired, or it ignores its result`;
  }
}

/**
 * The reason `this.signal` aborts when a task passes its `softTimeLimit`: the task may clean up and finish.
 *
 * @example
 * app.task("crawl", async function () {
 *   this.signal.addEventListener("abort", () => {
 *     if (this.signal.reason instanceof SoftTimeLimitExceeded) saveProgress();
 *   });
 * }, { softTimeLimit: 10_000 });
 */
export class SoftTimeLimitExceeded extends Data.TaggedError("SoftTimeLimitExceeded")<{
  readonly task: string;
  readonly limitMs: number;
}> {
  override get message(): string {
    return `task '${this.task}' exceeded its soft time limit of ${this.limitMs} ms`;
  }
}

/**
 * A task passed its `timeLimit` and was abandoned: its stored failure.
 *
 * @example
 * app.task("slow", () => new Promise(() => {}), { timeLimit: 1_000 });
 * // get() rejects with a RemoteTaskError whose remote.name is "TimeLimitExceeded"
 */
export class TimeLimitExceeded extends Data.TaggedError("TimeLimitExceeded")<{
  readonly task: string;
  readonly limitMs: number;
}> {
  override get message(): string {
    return `task '${this.task}' exceeded its time limit of ${this.limitMs} ms and was abandoned`;
  }
}

/**
 * A message a worker could not decode; it goes to the dead-letter queue with this reason.
 *
 * @example
 * const letters = await app.broker.deadLetters("celery.dlq"); // reason: "message <id> is malformed: ..."
 */
export class MalformedMessageError extends Data.TaggedError("MalformedMessageError")<{
  readonly id: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `message ${this.id} is malformed: ${this.reason}`;
  }
}

/**
 * `app.task` refused a registration (a duplicate name, an invalid option).
 *
 * @example
 * app.task("add", add);
 * app.task("add", add); // throws TaskRegistrationError: cannot register task 'add': ...
 */
export class TaskRegistrationError extends Data.TaggedError("TaskRegistrationError")<{
  readonly task: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `cannot register task '${this.task}': ${this.reason}`;
  }
}

/**
 * A worker's own failure: options it cannot run with, or a task it abandoned when a stop timed out (the abort reason of the task's signal).
 *
 * @example
 *
 * app.worker({ concurrency: 0 }); // throws WorkerError: worker worker-1@123: concurrency must be a positive integer, got 0
 */
export class WorkerError extends Data.TaggedError("WorkerError")<{
  readonly worker: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `worker ${this.worker}: ${this.reason}`;
  }
}

/**
 * Thrown by `this.retry()` inside a task to ask for a retry.
 *
 * @example
 * app.task("poll", function () {
 *   if (!ready()) this.retry({ countdown: 1_000 }); // throws a RetryRequest
 * });
 */
export class RetryRequest extends Data.TaggedError("RetryRequest")<{
  readonly countdown?: number;
  readonly max?: number;
  readonly cause?: unknown;
}> {
  override get message(): string {
    return `retry requested${this.cause instanceof Error ? `: ${this.cause.message}` : ""}`;
  }
}

/**
 * `this.retry()` was called once too often, without a `cause` to report instead.
 *
 * @example
 * // get() rejects with a RemoteTaskError whose remote.name is "MaxRetriesExceededError"
 */
export class MaxRetriesExceededError extends Data.TaggedError("MaxRetriesExceededError")<{
  readonly task: string;
  readonly id: string;
  readonly retries: number;
}> {
  override get message(): string {
    return `task '${this.task}' (${this.id}) asked for another retry after ${this.retries} retries, its maximum`;
  }
}

/**
 * A step of a workflow did not run because one it depends on failed.
 *
 * @example
 * await (await chain(fail.s(), add.s(1)).apply()).get(); // rejects: the add step records an UpstreamFailure
 */
export class UpstreamFailure extends Data.TaggedError("UpstreamFailure")<{
  readonly kind: "chain" | "chord";
  readonly failedId: string;
  readonly failedTask: string;
  readonly cause: RemoteErrorInfo;
}> {
  override get message(): string {
    const what = this.kind === "chord" ? "chord member" : "previous step";
    return `${what} '${this.failedTask}' (${this.failedId}) failed: ${this.cause.name}: ${this.cause.message}`;
  }
}

/** Name, message and stack of anything thrown, ready to store. */
export const toErrorInfo = (error: unknown): RemoteErrorInfo => {
  if (error instanceof Error) {
    const tag = (error as { _tag?: unknown })._tag;
    return { name: typeof tag === "string" ? tag : error.name, message: error.message, ...(error.stack ? { stack: error.stack } : {}) };
  }
  return { name: "NonError", message: typeof error === "string" ? error : safeString(error) };
};

const safeString = (value: unknown): string => {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
};

/**
 * A workflow step finished but its workflow's graph is gone from the result store (expired, forgotten, or a store restarted).
 *
 * @example
 * // logged by the worker; give workflows' results a ttlMs longer than the workflows run
 */
export class WorkflowNotFoundError extends Data.TaggedError("WorkflowNotFoundError")<{
  readonly workflow: string;
}> {
  override get message(): string {
    return `workflow ${this.workflow} is unknown to the result store (expired, forgotten, or the store restarted): its later steps cannot be sent`;
  }
}
