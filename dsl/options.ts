/**
 * Options that travel with a message: per task (as defaults) and per call.
 * Everything here is serializable; a policy holding a function (`retryOn`)
 * belongs to the task's definition instead (TaskOptions in runtime/task.ts).
 * All durations are milliseconds.
 *
 * @example
 * await add.applyAsync([1, 2], { retry: { max: 3, delay: 1_000, backoff: 2, maxDelay: 30_000, jitter: true } });
 */
export interface RetryOptions {
  /** Retries after the first attempt; 0 disables retrying. */
  readonly max: number;
  /** Delay before the first retry. Default 1000 ms. */
  readonly delay?: number;
  /** Multiply the delay by this factor per retry (exponential backoff). Default 1 (constant). */
  readonly backoff?: number;
  /** Upper bound of a computed delay. Default 10 minutes. */
  readonly maxDelay?: number;
  /** Full jitter: a delay drawn uniformly from [0, computed delay]. Default false. */
  readonly jitter?: boolean;
}

/**
 * Options for one call of a task (`applyAsync`, `apply`, `sendTask`); a task's own defaults fill in the rest.
 *
 * @example
 * await add.applyAsync([2, 2], { queue: "fast", priority: 9, countdown: 5_000, expires: 60_000 });
 */
export interface CallOptions {
  /** Queue to route to (default exchange, routing key = queue). Default "celery". */
  readonly queue?: string;
  /** Publish through this exchange (direct / topic / fanout) instead of straight to a queue. */
  readonly exchange?: string;
  /** Routing key used with `exchange`. Default: the task name. */
  readonly routingKey?: string;
  /** 0 (lowest, default) to 9 (highest). */
  readonly priority?: number;
  /** Run no sooner than this many ms from now. */
  readonly countdown?: number;
  /** Run no sooner than this time (Date or epoch ms). */
  readonly eta?: Date | number;
  /** If the task has not started by then it is not run and its result is REVOKED: ms from now (unlike `eta`), or a Date. */
  readonly expires?: Date | number;
  readonly retry?: RetryOptions;
  /** After this many ms the task's AbortSignal fires; the task may still finish. */
  readonly softTimeLimit?: number;
  /** After this many ms the task is abandoned and fails with TimeLimitExceeded. */
  readonly timeLimit?: number;
  /** Store no PENDING/STARTED states and no value (a failure is still recorded); workflow steps keep theirs, since the next step needs them. */
  readonly ignoreResult?: boolean;
  /** Acknowledge after the task finishes (at-least-once) rather than when it starts (at-most-once). Default true. */
  readonly acksLate?: boolean;
}

/**
 * Options of a single send (`applyAsync`, `sendTask`): the call's options,
 * plus the task's id and de-duplication, which name one send and so are never
 * a task's defaults or a canvas step's.
 *
 * @example
 * await charge.applyAsync([order.id], { taskId: `charge-${order.id}`, dedupe: { key: `charge-${order.id}`, ttl: 60_000 } });
 */
export interface SendOptions extends CallOptions {
  /**
   * The task's id, instead of a new UUID. While the id is taken (one day, as
   * long as a result is kept by default) a second send of it publishes
   * nothing and returns the handle of the first.
   */
  readonly taskId?: string;
  /** A second send with the same `key` within `ttl` ms publishes nothing and returns the first's handle. */
  readonly dedupe?: DedupeOptions;
}

/**
 * De-duplication of sends: one run per key per window.
 *
 * @example
 * await report.applyAsync([day], { dedupe: { key: `report-${day}`, ttl: 10 * 60_000 } });
 */
export interface DedupeOptions {
  readonly key: string;
  /** The window, in ms from the first send. */
  readonly ttl: number;
}

/** Later options win; undefined fields never override defined ones. */
export const mergeOptions = (base: CallOptions, override: CallOptions | undefined): CallOptions => {
  if (override === undefined) return base;
  let merged: Record<string, unknown> | undefined;
  for (const key in override) {
    const value = (override as Record<string, unknown>)[key];
    if (value !== undefined) (merged ??= { ...base })[key] = value;
  }
  return (merged ?? base) as CallOptions;
};
