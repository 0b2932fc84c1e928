// Calls one handler: sync, async or Effect, with its AbortSignal, soft and
// hard time limits, and a way to abandon it from outside (revoke with
// terminate, shutdown). JavaScript cannot kill a running function, so a hard
// limit abandons the handler: its result is ignored and the slot is freed.
//
// A handler that returns a plain value gives its outcome at once; only an
// asynchronous one gets an AsyncInvocation. This is the dispatch path, so it
// makes as few objects as it can.
import { Effect } from "effect";
import type { Clock, ClockTimer } from "../../broker/clock.ts";
import { RetryRequest, SoftTimeLimitExceeded, TimeLimitExceeded } from "../errors.ts";
import type { TaskContext, TaskDefinition } from "../task.ts";
import type { ProgressSink, ProgressReport } from "../task-progress.ts";

/** How a handler ended: its value, or what it threw. */
export type InvocationOutcome =
  /** `encoded`: the value already encoded with the app's codec (by a pool's thread or child). */
  | { readonly ok: true; readonly value: unknown; readonly encoded?: Uint8Array }
  | { readonly ok: false; readonly error: unknown };

/** A handler still running, here or in a pool: its outcome to come, and the means to give up on it. */
export interface Invocation {
  readonly outcome: Promise<InvocationOutcome>;
  /** Settle the outcome with `reason` at once and stop the handler as far as its pool can. */
  abandon(reason: unknown): void;
}

/**
 * The handler's `this`. The AbortController is made on first use: most tasks
 * never look at their signal, and creating one per task was a tenth of the
 * dispatch path's time.
 */
class RunningTask implements TaskContext {
  private controller: AbortController | undefined;
  constructor(
    readonly id: string,
    readonly name: string,
    readonly retries: number,
    private readonly recorder: ProgressSink | undefined,
  ) {}
  get signal(): AbortSignal {
    return (this.controller ??= new AbortController()).signal;
  }
  abort(reason: unknown): void {
    this.controller ??= new AbortController();
    if (!this.controller.signal.aborted) this.controller.abort(reason);
  }
  retry(options?: Parameters<TaskContext["retry"]>[0]): never {
    throw new RetryRequest(options ?? {});
  }
  progress(report: ProgressReport): Promise<void> {
    // A task whose result is not kept (ignoreResult) has nowhere to report to.
    if (this.recorder === undefined) return Promise.resolve();
    return this.recorder.record(this.id, this.name, this.retries, report);
  }
}

/** A handler still running: its outcome to come, and the means to give up on it. */
export class AsyncInvocation implements Invocation {
  readonly outcome: Promise<InvocationOutcome>;
  private settle!: (outcome: InvocationOutcome) => void;
  private timers: ClockTimer[] | undefined;
  private clock: Clock | undefined;

  constructor(
    private readonly context: RunningTask,
    running: PromiseLike<unknown>,
  ) {
    this.outcome = new Promise<InvocationOutcome>((resolve) => (this.settle = resolve));
    running.then(
      (value) => this.finish({ ok: true, value }),
      (error) => this.finish({ ok: false, error }),
    );
  }

  /** Abort the signal and settle the outcome with `reason` at once (if it has not settled yet). */
  abandon(reason: unknown): void {
    this.context.abort(reason);
    this.finish({ ok: false, error: reason });
  }

  limit(task: string, softTimeLimit: number | undefined, timeLimit: number | undefined, clock: Clock): void {
    if (softTimeLimit === undefined && timeLimit === undefined) return;
    this.clock = clock;
    if (softTimeLimit !== undefined) {
      (this.timers ??= []).push(
        clock.setTimeout(
          () => this.context.abort(new SoftTimeLimitExceeded({ task, limitMs: softTimeLimit })),
          softTimeLimit,
        ),
      );
    }
    if (timeLimit !== undefined) {
      (this.timers ??= []).push(
        clock.setTimeout(() => this.abandon(new TimeLimitExceeded({ task, limitMs: timeLimit })), timeLimit),
      );
    }
  }

  private finish(outcome: InvocationOutcome): void {
    if (this.timers !== undefined) for (const timer of this.timers) this.clock!.clearTimeout(timer);
    this.settle(outcome);
  }
}

const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  value !== null &&
  (typeof value === "object" || typeof value === "function") &&
  typeof (value as PromiseLike<unknown>).then === "function";

export const invoke = (
  definition: TaskDefinition,
  id: string,
  retries: number,
  args: readonly unknown[],
  softTimeLimit: number | undefined,
  timeLimit: number | undefined,
  clock: Clock,
  recorder?: ProgressSink,
): InvocationOutcome | AsyncInvocation => {
  const context = new RunningTask(id, definition.name, retries, recorder);
  let returned: unknown;
  try {
    returned = definition.handler.apply(context, args as unknown[]);
  } catch (error) {
    return { ok: false, error };
  }
  if (Effect.isEffect(returned))
    returned = Effect.runPromise(returned as Effect.Effect<unknown, unknown, never>, { signal: context.signal });
  if (!isThenable(returned)) return { ok: true, value: returned };
  const invocation = new AsyncInvocation(context, returned);
  invocation.limit(definition.name, softTimeLimit, timeLimit, clock);
  return invocation;
};
