// Caller-chosen task ids and de-duplicated sends: before a task with
// `{ taskId }` or `{ dedupe }` is published, its keys are reserved in the
// result store (atomically, so every process sharing the store agrees), and
// a send that finds a key held publishes nothing and hands back the holder.
import { randomUUID } from "node:crypto";
import { Data } from "effect";
import type { CallOptions, SendOptions } from "../dsl/options.ts";
import type { GetOptions } from "../dsl/result.ts";
import { TimeoutError } from "./errors.ts";
import { settle, TaskResult } from "./results/async-result.ts";
import { DEFAULT_RESULT_TTL_MS, type ResultStore } from "./results/result-store.ts";

/**
 * A send's `taskId` or `dedupe` option cannot be used; nothing was sent.
 *
 * @example
 * await add.applyAsync([1, 2], { dedupe: { key: "", ttl: 1_000 } }).catch((error) => error instanceof SendOptionError); // true
 */
export class SendOptionError extends Data.TaggedError("SendOptionError")<{
  readonly task: string;
  readonly option: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `cannot send task '${this.task}': option '${this.option}' ${this.reason}; nothing was sent`;
  }
}

/** Longest caller-chosen id or de-duplication key: ids ride in every header and result key. */
export const MAX_KEY_LENGTH = 512;

/** How long a caller-chosen id stays taken: as long as a result is kept by default. */
export const TASK_ID_TTL_MS = DEFAULT_RESULT_TTL_MS;

/** What a send goes on with: the id to publish under, or the id of the task that already holds one of its keys. */
export type Reservation = { readonly send: true; readonly id: string } | { readonly send: false; readonly id: string };

const checkKey = (task: string, option: string, value: unknown): string => {
  if (typeof value !== "string" || value.length === 0)
    throw new SendOptionError({
      task,
      option,
      reason: `must be a non-empty string (got ${value === "" ? "an empty string" : typeof value})`,
    });
  if (value.length > MAX_KEY_LENGTH)
    throw new SendOptionError({
      task,
      option,
      reason: `is ${value.length} characters long; at most ${MAX_KEY_LENGTH}`,
    });
  return value;
};

/**
 * Split a send's options into what the message carries and its reservation
 * facts, refusing bad ones with a SendOptionError before anything is stored.
 */
export const sendFacts = (
  task: string,
  options: SendOptions,
): {
  readonly call: CallOptions;
  readonly taskId?: string;
  readonly dedupe?: { readonly key: string; readonly ttl: number };
} => {
  const { taskId, dedupe, ...call } = options;
  const facts: { call: CallOptions; taskId?: string; dedupe?: { key: string; ttl: number } } = { call };
  if (taskId !== undefined) facts.taskId = checkKey(task, "taskId", taskId);
  if (dedupe !== undefined) {
    if (typeof dedupe !== "object" || dedupe === null)
      throw new SendOptionError({ task, option: "dedupe", reason: "must be { key, ttl }" });
    const key = checkKey(task, "dedupe.key", dedupe.key);
    const ttl = dedupe.ttl;
    if (typeof ttl !== "number" || !Number.isFinite(ttl) || ttl <= 0) {
      throw new SendOptionError({
        task,
        option: "dedupe.ttl",
        reason: `must be a positive number of milliseconds (got ${String(ttl)})`,
      });
    }
    facts.dedupe = { key, ttl };
  }
  return facts;
};

/**
 * Reserve a send's keys. The de-duplication key first: a send that finds it
 * held takes nothing else and answers the holder. Then the chosen id, under
 * a token of this send's own, since the id itself cannot tell this send from
 * an earlier one of the same id.
 */
export const reserveSend = async (
  store: ResultStore,
  taskId: string | undefined,
  dedupe: { readonly key: string; readonly ttl: number } | undefined,
): Promise<Reservation> => {
  const id = taskId ?? randomUUID();
  if (dedupe !== undefined) {
    const holder = await store.reserve(`dedupe:${dedupe.key}`, id, dedupe.ttl);
    if (holder !== id) return { send: false, id: holder };
  }
  if (taskId !== undefined) {
    const token = randomUUID();
    if ((await store.reserve(`task-id:${taskId}`, token, TASK_ID_TTL_MS)) !== token) return { send: false, id: taskId };
  }
  return { send: true, id };
};

/**
 * The handle a send gets when another send holds its key. That send may not
 * have recorded its task yet (it reserved, then records and publishes), so
 * `get()` waits for the task rather than calling an id without a record
 * unknown, as a handle made from a bare id does.
 */
export class HeldTaskResult<R> extends TaskResult<R> {
  override async get(options: GetOptions = {}): Promise<R> {
    const { store, codec } = this.context;
    if ((await store.get(this.id)) !== undefined) return super.get(options);
    const record = await store.waitFinal(
      this.id,
      options.timeout,
      () => new TimeoutError({ id: this.id, timeoutMs: options.timeout ?? 0 }),
    );
    return settle(record, codec) as R;
  }
}
