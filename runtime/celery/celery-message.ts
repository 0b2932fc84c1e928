// Celery's task message, protocol version 2: the headers Celery's worker reads
// and the JSON body `[args, kwargs, embed]`, where the embed carries the rest
// of a canvas (the chain still to run, callbacks, the chord body). Transport
// neutral: kombu-redis-envelope.ts wraps it for Redis.
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { CeleryMessageError } from "./celery-errors.ts";
import { pythonRepr } from "./python-repr.ts";

/** A signature as Celery serializes it: a task call with its options, inside an embed. */
export interface CelerySignature {
  readonly task: string;
  readonly args: readonly unknown[];
  readonly kwargs: Readonly<Record<string, unknown>>;
  readonly options: Readonly<Record<string, unknown>>;
  readonly subtask_type: null | "chain" | "group" | "chord";
  readonly immutable: boolean;
  readonly chord_size?: number | null;
}

/** What follows a task: the chain still to run (last step first, as Celery stores it), callbacks, error callbacks, the chord body. */
export interface CeleryEmbed {
  readonly callbacks: readonly CelerySignature[] | null;
  readonly errbacks: readonly CelerySignature[] | null;
  readonly chain: readonly CelerySignature[] | null;
  readonly chord: CelerySignature | null;
}

export const EMPTY_EMBED: CeleryEmbed = Object.freeze({ callbacks: null, errbacks: null, chain: null, chord: null });

/** One task message, read from or to be written in Celery's protocol. */
export interface CeleryTaskMessage {
  readonly id: string;
  readonly task: string;
  readonly args: readonly unknown[];
  readonly kwargs: Readonly<Record<string, unknown>>;
  readonly embed: CeleryEmbed;
  readonly rootId: string;
  readonly parentId: string | null;
  readonly group: string | null;
  readonly groupIndex: number | null;
  readonly retries: number;
  /** Epoch ms: not before. */
  readonly eta: number | null;
  /** Epoch ms: not after. */
  readonly expires: number | null;
  /** Seconds, as Celery reads them: `[hard, soft]`. */
  readonly timeLimit: number | null;
  readonly softTimeLimit: number | null;
  readonly ignoreResult: boolean;
  /** Where it is sent: the queue's name (Celery's anonymous exchange routes by it). */
  readonly queue: string;
  /** 0..9; on Redis a lower number is served first, as Celery does there. */
  readonly priority: number;
}

const ORIGIN = `gen${process.pid}@${hostname()}`;

/**
 * ISO-8601 with an explicit offset (Celery reads a naive time in its own time
 * zone) and six fractional digits (Celery 5.2's parser reads the fraction as
 * microseconds whatever its length).
 */
export const isoWithOffset = (epochMs: number): string =>
  new Date(epochMs).toISOString().replace(/\.(\d{3})Z$/, ".$1000+00:00");

/** Epoch ms from Celery's ISO-8601 (with an offset, or naive meaning UTC), or null. */
export const parseCeleryTime = (value: unknown, field: string): number | null => {
  if (value === null || value === undefined) return null;
  if (typeof value !== "string")
    throw new CeleryMessageError({ reason: `header '${field}' is not an ISO-8601 string` });
  const zoned = /(?:Z|[+-]\d\d:?\d\d)$/i.test(value) ? value : `${value}Z`;
  const ms = Date.parse(zoned);
  if (Number.isNaN(ms))
    throw new CeleryMessageError({ reason: `header '${field}' is not an ISO-8601 time: ${JSON.stringify(value)}` });
  return ms;
};

/** The headers Celery 5.2's `as_task_v2` writes, in its order, with `lang: "js"`. */
export const celeryHeaders = (message: CeleryTaskMessage): Record<string, unknown> => ({
  lang: "js",
  task: message.task,
  id: message.id,
  shadow: null,
  eta: message.eta === null ? null : isoWithOffset(message.eta),
  expires: message.expires === null ? null : isoWithOffset(message.expires),
  group: message.group,
  group_index: message.groupIndex,
  retries: message.retries,
  timelimit: [message.timeLimit, message.softTimeLimit],
  root_id: message.rootId,
  parent_id: message.parentId,
  argsrepr: pythonRepr(message.args, true),
  kwargsrepr: pythonRepr(message.kwargs),
  origin: ORIGIN,
  ignore_result: message.ignoreResult,
});

/** The JSON body `[args, kwargs, embed]`. */
export const celeryBody = (message: CeleryTaskMessage): string =>
  JSON.stringify([message.args, message.kwargs, message.embed]);

const isObject = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === "object" && !Array.isArray(value);

const optionalString = (headers: Record<string, unknown>, field: string): string | null => {
  const value = headers[field];
  if (value === null || value === undefined) return null;
  if (typeof value !== "string") throw new CeleryMessageError({ reason: `header '${field}' is not a string` });
  return value;
};

const seconds = (value: unknown, which: string): number | null => {
  if (value === null || value === undefined) return null;
  if (typeof value !== "number" || !(value > 0))
    throw new CeleryMessageError({
      reason: `header 'timelimit' has a ${which} limit that is not a positive number of seconds`,
    });
  return value;
};

const signatureOf = (value: unknown, where: string): CelerySignature => {
  if (!isObject(value) || typeof value.task !== "string")
    throw new CeleryMessageError({ reason: `${where} is not a signature (an object with a 'task' name)` });
  const args = value.args ?? [];
  const kwargs = value.kwargs ?? {};
  if (!Array.isArray(args)) throw new CeleryMessageError({ reason: `${where}'s args are not a list` });
  if (!isObject(kwargs)) throw new CeleryMessageError({ reason: `${where}'s kwargs are not an object` });
  const options = isObject(value.options) ? value.options : {};
  const subtaskType = value.subtask_type ?? null;
  if (subtaskType !== null && subtaskType !== "chain" && subtaskType !== "group" && subtaskType !== "chord") {
    throw new CeleryMessageError({ reason: `${where} has an unknown subtask_type ${JSON.stringify(subtaskType)}` });
  }
  return { task: value.task, args, kwargs, options, subtask_type: subtaskType, immutable: value.immutable === true };
};

const signatures = (value: unknown, where: string): CelerySignature[] | null => {
  if (value === null || value === undefined) return null;
  if (!Array.isArray(value)) throw new CeleryMessageError({ reason: `${where} is not a list of signatures` });
  return value.map((item, index) => signatureOf(item, `${where}[${index}]`));
};

const embedOf = (value: unknown): CeleryEmbed => {
  if (value === null || value === undefined) return EMPTY_EMBED;
  if (!isObject(value)) throw new CeleryMessageError({ reason: "the body's embed (third element) is not an object" });
  return {
    callbacks: signatures(value.callbacks, "embed.callbacks"),
    errbacks: signatures(value.errbacks, "embed.errbacks"),
    chain: signatures(value.chain, "embed.chain"),
    chord: value.chord === null || value.chord === undefined ? null : signatureOf(value.chord, "embed.chord"),
  };
};

/**
 * Read a protocol-2 task message from its headers and decoded JSON body.
 * Throws CeleryMessageError naming the field that is wrong.
 */
export const parseCeleryMessage = (
  headers: unknown,
  body: unknown,
  queue: string,
  priority: number,
): CeleryTaskMessage => {
  if (!isObject(headers))
    throw new CeleryMessageError({ reason: "the message has no headers object (task protocol 1 is not supported)" });
  const id = headers.id;
  const task = headers.task;
  if (typeof task !== "string" || task.length === 0)
    throw new CeleryMessageError({ reason: "header 'task' is missing (task protocol 1 is not supported)" });
  if (typeof id !== "string" || id.length === 0) throw new CeleryMessageError({ reason: "header 'id' is missing" });
  if (!Array.isArray(body) || body.length < 2 || !Array.isArray(body[0]) || !isObject(body[1])) {
    throw new CeleryMessageError({ id, task, reason: "the body is not [args, kwargs, embed]" });
  }
  try {
    const retries = headers.retries ?? 0;
    if (typeof retries !== "number" || !Number.isInteger(retries) || retries < 0)
      throw new CeleryMessageError({ reason: "header 'retries' is not a non-negative integer" });
    const limits = headers.timelimit ?? [null, null];
    if (!Array.isArray(limits)) throw new CeleryMessageError({ reason: "header 'timelimit' is not [hard, soft]" });
    const groupIndex = headers.group_index ?? null;
    if (groupIndex !== null && typeof groupIndex !== "number")
      throw new CeleryMessageError({ reason: "header 'group_index' is not a number" });
    return {
      id,
      task,
      args: body[0],
      kwargs: body[1],
      embed: embedOf(body[2]),
      rootId: optionalString(headers, "root_id") ?? id,
      parentId: optionalString(headers, "parent_id"),
      group: optionalString(headers, "group"),
      groupIndex,
      retries,
      eta: parseCeleryTime(headers.eta, "eta"),
      expires: parseCeleryTime(headers.expires, "expires"),
      timeLimit: seconds(limits[0], "hard"),
      softTimeLimit: seconds(limits[1], "soft"),
      ignoreResult: headers.ignore_result === true,
      queue,
      priority,
    };
  } catch (error) {
    if (error instanceof CeleryMessageError && error.id === undefined)
      throw new CeleryMessageError({ id, task, reason: error.reason });
    throw error;
  }
};

/** A message to send for a signature taken from an embed (a chain's next step, a callback, a chord body). */
export const messageOfSignature = (
  signature: CelerySignature,
  extra: {
    readonly prepend?: readonly unknown[];
    readonly chain?: readonly CelerySignature[] | null;
    readonly parentId: string | null;
    readonly rootId: string | null;
    readonly queue: string;
  },
): CeleryTaskMessage => {
  const options = signature.options;
  const id = typeof options.task_id === "string" ? options.task_id : randomUUID();
  const args =
    extra.prepend !== undefined && !signature.immutable ? [...extra.prepend, ...signature.args] : signature.args;
  const chain =
    extra.chain === undefined
      ? Array.isArray(options.chain)
        ? (options.chain as CelerySignature[])
        : null
      : extra.chain;
  const chord = isObject(options.chord) ? (options.chord as unknown as CelerySignature) : null;
  return {
    id,
    task: signature.task,
    args,
    kwargs: signature.kwargs,
    embed: {
      callbacks: Array.isArray(options.link) ? (options.link as CelerySignature[]) : null,
      errbacks: Array.isArray(options.link_error) ? (options.link_error as CelerySignature[]) : null,
      chain: chain !== null && chain.length > 0 ? chain : null,
      chord,
    },
    rootId: extra.rootId ?? id,
    parentId: extra.parentId,
    group: typeof options.group_id === "string" ? options.group_id : null,
    groupIndex: typeof options.group_index === "number" ? options.group_index : null,
    retries: 0,
    eta: null,
    expires: null,
    timeLimit: typeof options.time_limit === "number" ? options.time_limit : null,
    softTimeLimit: typeof options.soft_time_limit === "number" ? options.soft_time_limit : null,
    ignoreResult: options.ignore_result === true,
    queue: typeof options.queue === "string" ? options.queue : extra.queue,
    priority: typeof options.priority === "number" ? options.priority : 0,
  };
};
