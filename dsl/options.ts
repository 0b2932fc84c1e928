/**
 * Options that travel with a message: per task (as defaults) and per call.
 * Everything here is serializable; policies holding functions (retryOn) are
 * part of a task's definition on the worker instead (see TaskDefinitionOptions in runtime).
 * All durations are milliseconds.
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
  /** Discard the message (result: FAILURE, expired) if it has not started by then: ms from now, or a Date. */
  readonly expires?: Date | number;
  readonly retry?: RetryOptions;
  /** After this many ms the task's AbortSignal fires; the task may still finish. */
  readonly softTimeLimit?: number;
  /** After this many ms the task is abandoned and fails with TimeLimitExceeded. */
  readonly timeLimit?: number;
  /** Store no result (state and value); workflows still pass the value on. */
  readonly ignoreResult?: boolean;
  /** Acknowledge after the task finishes (at-least-once) rather than when it starts (at-most-once). Default true. */
  readonly acksLate?: boolean;
}

/** Later options win; undefined fields never override defined ones. */
export const mergeOptions = (base: CallOptions, override: CallOptions | undefined): CallOptions => {
  if (override === undefined) return base;
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(override)) if (value !== undefined) merged[key] = value;
  return merged as CallOptions;
};
