// A task's result in the format of Celery's Redis result backend: the JSON
// under `celery-task-meta-<id>`, published on the channel of the same name.
import type { RemoteErrorInfo } from "../../dsl/result.ts";

/** Celery's task states, as its result backend records them. */
export type CeleryState = "PENDING" | "RECEIVED" | "STARTED" | "RETRY" | "SUCCESS" | "FAILURE" | "REVOKED" | "IGNORED";

export interface CeleryResultMeta {
  readonly status: CeleryState;
  readonly result: unknown;
  readonly traceback: string | null;
  readonly children: readonly unknown[];
  readonly date_done: string | null;
  readonly task_id: string;
  readonly group_id?: string;
  readonly parent_id?: string;
}

/** Celery's serialized exception: `{exc_type, exc_message, exc_module}`. */
export interface CeleryException {
  readonly exc_type: string;
  readonly exc_message: readonly unknown[] | string;
  readonly exc_module: string | null;
}

export const META_PREFIX = "celery-task-meta-";
export const TASKSET_PREFIX = "celery-taskset-meta-";
export const READY: ReadonlySet<CeleryState> = new Set(["SUCCESS", "FAILURE", "REVOKED", "IGNORED"]);
export const EXCEPTION_STATES: ReadonlySet<CeleryState> = new Set(["FAILURE", "RETRY", "REVOKED"]);

/**
 * A JavaScript error as Celery stores one. `exc_module` is null: Python then
 * makes an exception class named after `exc_type`, so `AsyncResult.get()`
 * raises with the error's message.
 */
export const toCeleryException = (error: unknown): CeleryException => {
  if (error instanceof Error)
    return { exc_type: error.name || "Error", exc_message: [error.message], exc_module: null };
  return { exc_type: "Error", exc_message: [String(error)], exc_module: null };
};

/** Python's `str(exc)` for Celery's stored `exc_message`. */
const messageOf = (message: unknown): string => {
  if (typeof message === "string") return message;
  if (Array.isArray(message))
    return message.length === 1
      ? String(message[0])
      : message.map((item) => (typeof item === "string" ? item : JSON.stringify(item))).join(", ");
  return message === undefined || message === null ? "" : JSON.stringify(message);
};

/** A stored Celery exception as celerity's error info: Python's type (qualified by its module, unless builtins), message and traceback. */
export const fromCeleryException = (stored: unknown, traceback: string | null): RemoteErrorInfo => {
  const exception = (stored ?? {}) as Partial<CeleryException>;
  const type = typeof exception.exc_type === "string" ? exception.exc_type : "Exception";
  const module =
    typeof exception.exc_module === "string" && exception.exc_module !== "builtins" ? `${exception.exc_module}.` : "";
  return {
    name: `${module}${type}`,
    message: messageOf(exception.exc_message),
    ...(traceback !== null ? { stack: traceback } : {}),
  };
};

/** `date_done` as Celery 5.3+ writes it (aware, UTC). */
const dateDone = (epochMs: number): string => new Date(epochMs).toISOString().replace("Z", "+00:00");

/** The record a finished (or retrying) task leaves in the backend. */
export const resultMeta = (
  id: string,
  status: CeleryState,
  result: unknown,
  facts: {
    readonly traceback?: string | null;
    readonly children?: readonly unknown[];
    readonly group?: string | null;
    readonly parent?: string | null;
    readonly now: number;
  },
): CeleryResultMeta => {
  const meta: { -readonly [K in keyof CeleryResultMeta]: CeleryResultMeta[K] } = {
    status,
    result,
    traceback: facts.traceback ?? null,
    children: facts.children ?? [],
    date_done: READY.has(status) ? dateDone(facts.now) : null,
    task_id: id,
  };
  if (facts.group !== undefined && facts.group !== null) meta.group_id = facts.group;
  if (facts.parent !== undefined && facts.parent !== null) meta.parent_id = facts.parent;
  return meta;
};
