// The Redis transport's one error of its own: a command whose outcome is unknown because
// the connection was lost; Redis's own refusals pass through unchanged.
import { Data } from "effect";

/**
 * A Redis command whose outcome is unknown: the connection was lost (or
 * could not be made) before its answer came. A publish that fails this way
 * may have been stored; one that Redis refused fails with Redis's own error.
 * The tag is the one every connection-based transport uses for this case,
 * so the runtime treats it alike (it keeps the task's PENDING record).
 *
 * @example
 * try {
 *   await add.delay(1, 2);
 * } catch (error) {
 *   if (error instanceof RedisConnectionLostError) retryLater(); // it may have been sent: make the task idempotent
 * }
 */
export class RedisConnectionLostError extends Data.TaggedError("ConnectionLostError")<{
  readonly url: string;
  readonly operation: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `lost the connection to Redis at ${this.url} during ${this.operation} (it may or may not have been applied): ${this.reason}`;
  }
}

/** Redis answered with an error (ReplyError) or the connection failed: the first is rethrown as is, the second becomes RedisConnectionLostError. */
export const connectionLoss = (url: string, operation: string, error: unknown): unknown => {
  if (error instanceof Error && error.name === "ReplyError") return error;
  return new RedisConnectionLostError({
    url,
    operation,
    reason: error instanceof Error ? error.message : String(error),
  });
};
