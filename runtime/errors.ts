// Errors the runtime raises or stores. Each is a tagged value carrying the
// facts needed to act, and a real Error whose message says what to do.
import { Data } from "effect";
import type { RemoteErrorInfo } from "../dsl/result.ts";

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
 * A bulk send (`task.delayMany`, `task.applyAsyncMany`, `app.sendMany`) that cannot be made as asked: nothing is sent.
 *
 * @example
 * await add.applyAsyncMany([[1, 2]], { taskId: "x" } as never); // rejects with BulkSendError: cannot send 'add' in bulk: ...
 */
export class BulkSendError extends Data.TaggedError("BulkSendError")<{
  readonly task: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `cannot send '${this.task}' in bulk: ${this.reason}`;
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

/** Longest message or stack stored for a failure: an error's text is for people, and the whole record must cross the wire. */
export const MAX_ERROR_TEXT = 64 * 1024;

/**
 * Name, message and stack of anything thrown, ready to store. Never throws:
 * a getter that throws or a value that is not a string is reported as such
 * instead of failing the task a second time; a class that does not set its
 * `name` is named after its constructor; text longer than `MAX_ERROR_TEXT`
 * is cut, saying how much was left out.
 */
export const toErrorInfo = (error: unknown): RemoteErrorInfo => {
  if (!(error instanceof Error))
    return { name: "NonError", message: capped(typeof error === "string" ? error : safeString(error)) };
  const tag = read(error, "_tag");
  const name = typeof tag.value === "string" ? tag.value : nameOf(error);
  const message = read(error, "message");
  const stack = read(error, "stack");
  return {
    name,
    message: capped(
      message.ok ? textOf(message.value) : `(the error's message could not be read: ${reasonOf(message.value)})`,
    ),
    ...(stack.ok && stack.value !== undefined && stack.value !== "" ? { stack: capped(textOf(stack.value)) } : {}),
  };
};

const read = (error: Error, key: string): { ok: boolean; value: unknown } => {
  try {
    return { ok: true, value: (error as unknown as Record<string, unknown>)[key] };
  } catch (cause) {
    return { ok: false, value: cause };
  }
};

/** `name` as set on the error or its class; the constructor's name when only Error.prototype's "Error" is inherited. */
const nameOf = (error: Error): string => {
  const name = read(error, "name");
  if (!name.ok) return "Error";
  if (typeof name.value !== "string") return textOf(name.value);
  let holder: object | null = error;
  while (holder !== null && !Object.hasOwn(holder, "name")) holder = Object.getPrototypeOf(holder);
  if (holder !== Error.prototype) return name.value;
  const ctor = read(error, "constructor").value;
  return typeof ctor === "function" && typeof ctor.name === "string" && ctor.name !== "" ? ctor.name : name.value;
};

const textOf = (value: unknown): string => (typeof value === "string" ? value : safeString(value));

const reasonOf = (cause: unknown): string => {
  if (!(cause instanceof Error)) return safeString(cause);
  const message = read(cause, "message");
  return message.ok && typeof message.value === "string" ? message.value : "unreadable";
};

const capped = (text: string): string =>
  text.length <= MAX_ERROR_TEXT
    ? text
    : `${text.slice(0, MAX_ERROR_TEXT)}… (${text.length - MAX_ERROR_TEXT} more characters left out)`;

const safeString = (value: unknown): string => {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    try {
      return String(value);
    } catch {
      return Object.prototype.toString.call(value);
    }
  }
};

/**
 * A task's value is too large to store as its result: more than a broker node's frame holds.
 *
 * @example
 * // stored as the task's failure; get() rejects with RemoteTaskError whose remote.name is "ResultTooLargeError"
 */
export class ResultTooLargeError extends Data.TaggedError("ResultTooLargeError")<{
  readonly task: string;
  readonly id: string;
  /** Encoded size of the value, in bytes. */
  readonly size: number;
  /** The most a result may take, in bytes. */
  readonly max: number;
}> {
  override get message(): string {
    return (
      `result of task '${this.task}' (${this.id}) is ${mib(this.size)} encoded, over the limit of ${mib(this.max)} ` +
      `(a broker node's frame): store large data elsewhere and return a reference to it`
    );
  }
}

const mib = (bytes: number): string => `${bytes.toLocaleString("en")} bytes (${(bytes / 2 ** 20).toFixed(1)} MiB)`;

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
