// Errors as they cross back from a pool's thread or child to the worker, rebuilt there as
// the runtime's own classes where they are one.
import { CodecError, DecodeError } from "../../broker/codec.ts";
import {
  MaxRetriesExceededError,
  RetryRequest,
  SoftTimeLimitExceeded,
  TaskRevokedError,
  TimeLimitExceeded,
  UnknownTaskError,
} from "../errors.ts";

/**
 * An error thrown in a pool's thread or child, as it crosses back to the
 * worker: name, tag, message, stack and its own data fields. The worker
 * rebuilds the runtime's own errors as their classes (a `this.retry()` must
 * arrive as a RetryRequest); any other error arrives as an Error with the same
 * name, message, stack and fields, so `retryOn` can test `error.name` or a
 * field such as `error.code` (an `instanceof` of the user's own class cannot
 * hold across a thread boundary).
 */
export interface CrossingError {
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
  readonly fields?: Record<string, unknown>;
  /** Set when the thrown value was not an Error. */
  readonly nonError?: true;
}

type Rebuild = new (fields: any) => Error;

const KNOWN: Record<string, Rebuild> = {
  RetryRequest,
  SoftTimeLimitExceeded,
  TimeLimitExceeded,
  TaskRevokedError,
  MaxRetriesExceededError,
  UnknownTaskError,
  CodecError,
  DecodeError,
};

const NESTED = "__crossingError";

const crossValue = (value: unknown, depth: number): unknown => {
  if (value instanceof Error)
    return depth > 4
      ? { [NESTED]: { name: value.name, message: value.message } }
      : { [NESTED]: toCrossing(value, depth + 1) };
  if (typeof value === "function" || typeof value === "symbol") return undefined;
  return value;
};

/** The crossing form of anything thrown. */
export const toCrossing = (error: unknown, depth = 0): CrossingError => {
  if (!(error instanceof Error)) {
    return {
      name: "NonError",
      message: typeof error === "string" ? error : String(error),
      fields: { value: crossValue(error, depth) },
      nonError: true,
    };
  }
  let fields: Record<string, unknown> | undefined;
  // `cause` is an own property that is not enumerable (Error's own option, and Effect's tagged errors).
  const keys = Object.hasOwn(error, "cause") ? [...Object.keys(error), "cause"] : Object.keys(error);
  for (const key of keys) {
    if (key === "stack" || key === "message") continue;
    const value = crossValue((error as unknown as Record<string, unknown>)[key], depth);
    if (value !== undefined) (fields ??= {})[key] = value;
  }
  const tag = (error as { _tag?: unknown })._tag;
  return {
    name: typeof tag === "string" ? tag : error.name,
    message: error.message,
    ...(error.stack ? { stack: error.stack } : {}),
    ...(fields ? { fields } : {}),
  };
};

const restoreValue = (value: unknown): unknown =>
  value !== null && typeof value === "object" && NESTED in value
    ? fromCrossing((value as Record<string, CrossingError>)[NESTED])
    : value;

/** The error to hand to the retry policy and the result store, rebuilt from its crossing form. */
export const fromCrossing = (crossing: CrossingError): unknown => {
  const fields: Record<string, unknown> = {};
  if (crossing.fields !== undefined)
    for (const key of Object.keys(crossing.fields)) fields[key] = restoreValue(crossing.fields[key]);
  if (crossing.nonError) return fields.value ?? crossing.message;
  const Known = Object.hasOwn(KNOWN, crossing.name) ? KNOWN[crossing.name] : undefined;
  let error: Error;
  if (Known !== undefined) {
    const { _tag: _, ...data } = fields;
    error = new Known(data);
  } else {
    error = new Error(crossing.message);
    Object.assign(error, fields);
    if (error.name !== crossing.name)
      Object.defineProperty(error, "name", { value: crossing.name, configurable: true, writable: true });
  }
  if (crossing.stack !== undefined)
    Object.defineProperty(error, "stack", { value: crossing.stack, configurable: true, writable: true });
  return error;
};
