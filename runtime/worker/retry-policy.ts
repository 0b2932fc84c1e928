// When to retry and how long to wait: exponential backoff capped at
// `maxDelay`, with optional full jitter (a delay drawn from [0, computed]),
// which spreads a burst of failing tasks instead of retrying them in lockstep.
import type { RetryOptions } from "../../dsl/options.ts";

export const DEFAULT_RETRY_DELAY = 1_000;
export const DEFAULT_MAX_RETRY_DELAY = 10 * 60 * 1_000;

/** Delay before retry number `attempt` (0 for the first retry). */
export const retryDelay = (policy: RetryOptions, attempt: number, random: () => number = Math.random): number => {
  const base = policy.delay ?? DEFAULT_RETRY_DELAY;
  const factor = policy.backoff ?? 1;
  const cap = policy.maxDelay ?? DEFAULT_MAX_RETRY_DELAY;
  const computed = Math.min(cap, base * factor ** attempt);
  return policy.jitter ? Math.floor(random() * computed) : computed;
};

/** Whether a task that has been retried `retries` times may be retried again. */
export const mayRetry = (policy: RetryOptions | undefined, retries: number, maxOverride?: number): boolean =>
  retries < (maxOverride ?? policy?.max ?? 0);
