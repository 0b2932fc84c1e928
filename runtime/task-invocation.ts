import { Effect } from "effect";
import { RetryRequest, SoftTimeLimitExceeded, TimeLimitExceeded } from "./errors.ts";
import type { TaskContext, TaskDefinition } from "./task.ts";

/**
 * Calls one handler: sync, async or Effect, with its AbortSignal, soft and
 * hard time limits, and a way to abandon it from outside (revoke with
 * terminate, shutdown). JavaScript cannot kill a running function, so a hard
 * limit abandons the handler: its result is ignored and the slot is freed.
 */
export type InvocationOutcome = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: unknown };

export interface Invocation {
  readonly outcome: Promise<InvocationOutcome> | InvocationOutcome;
  /** Abort the signal and settle the outcome with `reason` at once (if it has not settled yet). */
  abandon(reason: unknown): void;
}

export interface InvocationRequest {
  readonly definition: TaskDefinition;
  readonly id: string;
  readonly retries: number;
  readonly args: readonly unknown[];
  readonly softTimeLimit?: number;
  readonly timeLimit?: number;
}

const retry: TaskContext["retry"] = (options) => {
  throw new RetryRequest(options ?? {});
};

const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  value !== null && (typeof value === "object" || typeof value === "function") && typeof (value as PromiseLike<unknown>).then === "function";

export const invoke = (request: InvocationRequest): Invocation => {
  const { definition } = request;
  const controller = new AbortController();
  const context: TaskContext = { id: request.id, name: definition.name, retries: request.retries, signal: controller.signal, retry };
  let returned: unknown;
  try {
    returned = definition.handler.apply(context, request.args as unknown[]);
  } catch (error) {
    return { outcome: { ok: false, error }, abandon: () => controller.abort() };
  }
  if (Effect.isEffect(returned)) returned = Effect.runPromise(returned as Effect.Effect<unknown, unknown, never>, { signal: controller.signal });
  if (!isThenable(returned)) return { outcome: { ok: true, value: returned }, abandon: () => controller.abort() };

  let settle!: (outcome: InvocationOutcome) => void;
  const outcome = new Promise<InvocationOutcome>((resolve) => (settle = resolve));
  const timers: NodeJS.Timeout[] = [];
  const finish = (result: InvocationOutcome) => {
    for (const timer of timers) clearTimeout(timer);
    settle(result);
  };
  const abandon = (reason: unknown) => {
    if (!controller.signal.aborted) controller.abort(reason);
    finish({ ok: false, error: reason });
  };
  returned.then(
    (value) => finish({ ok: true, value }),
    (error) => finish({ ok: false, error }),
  );
  if (request.softTimeLimit !== undefined) {
    const limitMs = request.softTimeLimit;
    timers.push(setTimeout(() => controller.abort(new SoftTimeLimitExceeded({ task: definition.name, limitMs })), limitMs));
  }
  if (request.timeLimit !== undefined) {
    const limitMs = request.timeLimit;
    timers.push(setTimeout(() => abandon(new TimeLimitExceeded({ task: definition.name, limitMs })), limitMs));
  }
  return { outcome, abandon };
};
