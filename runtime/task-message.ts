import type { Envelope } from "../broker/envelope.ts";
import { CodecError, type Codec } from "../broker/codec.ts";
import { clampPriority } from "../broker/envelope.ts";
import type { CallOptions } from "../dsl/options.ts";
import { MalformedMessageError } from "./errors.ts";

/**
 * The runtime's message: what a worker needs to run one task, and how it maps
 * onto a broker Envelope. Routing facts and ids go in headers (the broker and
 * future wire bridges read them without decoding the body); arguments and the
 * per-call options travel in the msgpack body as `[args]` or `[args, options]`.
 * Expiry is the worker's to enforce (header `expires`), not the broker's, so an
 * expired task is recorded as REVOKED instead of vanishing into a dead-letter queue.
 */
export interface TaskMessage {
  readonly id: string;
  readonly task: string;
  readonly args: readonly unknown[];
  readonly options: CallOptions;
  readonly retries: number;
  /** Workflow (graph) id and node index, when the task is a step of a canvas. */
  readonly workflow?: string;
  readonly node?: number;
  /** The task a built-in map / starmap applies. */
  readonly target?: string;
  /** Epoch ms after which the task must not start (it is revoked instead). */
  readonly expires?: number;
}

export const DEFAULT_QUEUE = "celery";

export const queueOf = (options: CallOptions): string => options.queue ?? DEFAULT_QUEUE;

const toEpoch = (at: Date | number): number => (at instanceof Date ? at.getTime() : at);

/** Absolute eta / expiry (epoch ms) from the relative or absolute forms in options. */
export const timingOf = (options: CallOptions, now: number): { eta?: number; expires?: number } => {
  const eta = options.eta !== undefined ? toEpoch(options.eta) : options.countdown !== undefined ? now + options.countdown : undefined;
  const expires =
    options.expires === undefined ? undefined : options.expires instanceof Date ? options.expires.getTime() : now + options.expires;
  return { ...(eta !== undefined && eta > now ? { eta } : {}), ...(expires !== undefined ? { expires } : {}) };
};

/** Options that must ride along in the body (the rest are routing facts, used up at publish time). */
const bodyOptions = (options: CallOptions): CallOptions | undefined => {
  const { countdown: _c, eta: _e, expires: _x, priority: _p, ...rest } = options;
  for (const key in rest) if ((rest as Record<string, unknown>)[key] !== undefined) return rest;
  return undefined;
};

/** Encode `[args]` or `[args, options]`, naming the argument (not the body's layout) when one cannot be sent. */
const encodeBody = (codec: Codec, message: TaskMessage, carried: CallOptions | undefined): Uint8Array => {
  try {
    return codec.encode(carried === undefined ? [message.args] : [message.args, carried], "body");
  } catch (error) {
    if (!(error instanceof CodecError)) throw error;
    const argument = /^body\[0\]\[(\d+)\](.*)$/.exec(error.path);
    const path = argument
      ? `argument ${Number(argument[1]) + 1} of task '${message.task}'${argument[2]}`
      : `options of task '${message.task}'${error.path.replace(/^body\[1\]/, "")}`;
    throw new CodecError({ path, reason: error.reason });
  }
};

export const toEnvelope = (message: TaskMessage, codec: Codec, now: number): Envelope => {
  const { options } = message;
  const carried = bodyOptions(options);
  const body = encodeBody(codec, message, carried);
  const { eta, expires } = timingOf(options, now);
  const expiresAt = message.expires ?? expires;
  return {
    id: message.id,
    exchange: options.exchange ?? "",
    routingKey: options.exchange !== undefined ? (options.routingKey ?? message.task) : queueOf(options),
    priority: clampPriority(options.priority),
    ...(eta !== undefined ? { eta } : {}),
    headers: {
      task: message.task,
      retries: message.retries,
      ...(message.workflow !== undefined ? { workflow: message.workflow, node: message.node } : {}),
      ...(message.target !== undefined ? { target: message.target } : {}),
      ...(expiresAt !== undefined ? { expires: expiresAt } : {}),
    },
    body,
  };
};

/** Read a TaskMessage out of an envelope; throws MalformedMessageError naming what is wrong. */
export const fromEnvelope = (envelope: Envelope, codec: Codec): TaskMessage => {
  const { headers } = envelope;
  const fail = (reason: string): never => {
    throw new MalformedMessageError({ id: envelope.id, reason });
  };
  if (typeof headers.task !== "string" || headers.task.length === 0) fail("header 'task' is missing");
  const retries = headers.retries ?? 0;
  if (typeof retries !== "number" || !Number.isInteger(retries) || retries < 0) fail("header 'retries' is not a non-negative integer");
  let decoded: unknown;
  try {
    decoded = codec.decode(envelope.body);
  } catch (error) {
    return fail(error instanceof Error ? error.message : String(error));
  }
  if (!Array.isArray(decoded) || decoded.length < 1 || decoded.length > 2 || !Array.isArray(decoded[0])) {
    fail("body is not [args] or [args, options]");
  }
  const [args, options] = decoded as [unknown[], unknown];
  if (options !== undefined && (options === null || typeof options !== "object" || Array.isArray(options))) fail("options in the body are not an object");
  if (headers.expires !== undefined && typeof headers.expires !== "number") fail("header 'expires' is not a number");
  const workflow = headers.workflow;
  const node = headers.node;
  if (workflow !== undefined && (typeof workflow !== "string" || typeof node !== "number")) fail("workflow headers are malformed");
  return {
    id: envelope.id,
    task: headers.task as string,
    args,
    options: (options ?? {}) as CallOptions,
    retries: retries as number,
    ...(typeof workflow === "string" ? { workflow, node: node as number } : {}),
    ...(typeof headers.target === "string" ? { target: headers.target } : {}),
    ...(typeof headers.expires === "number" ? { expires: headers.expires } : {}),
  };
};
