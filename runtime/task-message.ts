// The runtime's message: what a worker needs to run one task, and how it maps onto a
// broker Envelope. Routing facts and ids go in headers (the broker and future wire bridges
// read them without decoding the body); arguments and the per-call options travel in the
// body as `[args]` or `[args, options]`, in msgpack or JSON, maybe gzipped (body-format.ts).
// Expiry is the worker's to enforce (header `expires`), not the broker's, so an expired
// task is recorded as REVOKED instead of vanishing into a dead-letter queue.
import type { Envelope, HeaderValue } from "../broker/envelope.ts";
import { CodecError, type Codec } from "../broker/codec.ts";
import { clampPriority } from "../broker/envelope.ts";
import type { CallOptions } from "../dsl/options.ts";
import { MalformedMessageError } from "./errors.ts";
import { DEFAULT_BODY_FORMAT, TaskCodec } from "./body-format.ts";

/** What a worker needs to run one task. */
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
  /**
   * Set on a message that may be published more than once under the same id
   * (a beat's run whose schedule store resends runs it could not confirm):
   * a worker runs it only after a once-only claim of its id, and acks any
   * other copy without running it.
   */
  readonly claimOnce?: true;
  /** The id was made for this send (it never travels): the store records PENDING without looking for a record first. */
  readonly newId?: true;
}

export const DEFAULT_QUEUE = "celery";

const NO_OPTIONS: CallOptions = Object.freeze({});

export const queueOf = (options: CallOptions): string => options.queue ?? DEFAULT_QUEUE;

const toEpoch = (at: Date | number): number => (at instanceof Date ? at.getTime() : at);

const PUBLISH_TIME_ONLY = new Set(["countdown", "eta", "expires", "priority"]);

/** Options that must ride along in the body (the rest are routing facts, used up at publish time). */
const bodyOptions = (options: CallOptions): CallOptions | undefined => {
  let carried: Record<string, unknown> | undefined;
  for (const key in options) {
    const value = (options as Record<string, unknown>)[key];
    if (value === undefined || PUBLISH_TIME_ONLY.has(key)) continue;
    (carried ??= {})[key] = value;
  }
  return carried as CallOptions | undefined;
};

/** The header marking a message a worker claims once before running (TaskMessage.claimOnce). */
const CLAIM_ONCE_HEADER = "claim-once";

/** The message headers, built in one object (this runs once per publish). */
const headersOf = (message: TaskMessage, expiresAt: number | undefined): Record<string, HeaderValue> => {
  const headers: Record<string, HeaderValue> = { task: message.task, retries: message.retries };
  if (message.workflow !== undefined) {
    headers.workflow = message.workflow;
    headers.node = message.node;
  }
  if (message.target !== undefined) headers.target = message.target;
  if (expiresAt !== undefined) headers.expires = expiresAt;
  if (message.claimOnce === true) headers[CLAIM_ONCE_HEADER] = true;
  return headers;
};

/** Encode `[args]` or `[args, options]`, naming the argument (not the body's layout) when one cannot be sent. */
const encodeBody = (codec: Codec, message: TaskMessage, carried: CallOptions | undefined): Uint8Array => {
  try {
    const format = codec instanceof TaskCodec ? codec.bodies : DEFAULT_BODY_FORMAT;
    return format.encode(codec, carried === undefined ? [message.args] : [message.args, carried], "body");
  } catch (error) {
    if (!(error instanceof CodecError)) throw error;
    const argument = /^body\[0\]\[(\d+)\](.*)$/.exec(error.path);
    const path = argument
      ? `argument ${Number(argument[1]) + 1} of task '${message.task}'${argument[2]}`
      : `options of task '${message.task}'${error.path.replace(/^body\[1\]/, "")}`;
    throw new CodecError({ path, reason: error.reason });
  }
};

/** Throw the CodecError a send of `task` with `args` would, without sending (to refuse a canvas before any step goes out). */
export const checkArguments = (codec: Codec, task: string, args: readonly unknown[]): void => {
  encodeBody(codec, { id: "", task, args, options: NO_OPTIONS, retries: 0 }, undefined);
};

export const toEnvelope = (message: TaskMessage, codec: Codec, now: number): Envelope => {
  const { options } = message;
  const carried = bodyOptions(options);
  const body = encodeBody(codec, message, carried);
  const eta =
    options.eta !== undefined
      ? toEpoch(options.eta)
      : options.countdown !== undefined
        ? now + options.countdown
        : undefined;
  const expiresAt =
    message.expires ??
    (options.expires === undefined
      ? undefined
      : options.expires instanceof Date
        ? options.expires.getTime()
        : now + options.expires);
  const envelope: { -readonly [K in keyof Envelope]: Envelope[K] } = {
    id: message.id,
    exchange: options.exchange ?? "",
    routingKey: options.exchange !== undefined ? (options.routingKey ?? message.task) : queueOf(options),
    priority: clampPriority(options.priority),
    headers: headersOf(message, expiresAt),
    body,
  };
  if (eta !== undefined && eta > now) envelope.eta = eta;
  return envelope;
};

const malformed = (envelope: Envelope, reason: string): MalformedMessageError =>
  new MalformedMessageError({ id: envelope.id, reason });

const decodeBody = (envelope: Envelope, codec: Codec): unknown => {
  try {
    return DEFAULT_BODY_FORMAT.decode(codec, envelope.body);
  } catch (error) {
    throw malformed(envelope, error instanceof Error ? error.message : String(error));
  }
};

/** Read a TaskMessage out of an envelope; throws MalformedMessageError naming what is wrong. */
export const fromEnvelope = (envelope: Envelope, codec: Codec): TaskMessage => {
  const { headers } = envelope;
  const task = headers.task;
  if (typeof task !== "string" || task.length === 0) throw malformed(envelope, "header 'task' is missing");
  const retries = headers.retries ?? 0;
  if (typeof retries !== "number" || !Number.isInteger(retries) || retries < 0)
    throw malformed(envelope, "header 'retries' is not a non-negative integer");
  const decoded = decodeBody(envelope, codec);
  if (!Array.isArray(decoded) || decoded.length < 1 || decoded.length > 2 || !Array.isArray(decoded[0])) {
    throw malformed(envelope, "body is not [args] or [args, options]");
  }
  const args = decoded[0] as unknown[];
  const options = decoded[1] as unknown;
  if (options !== undefined && (options === null || typeof options !== "object" || Array.isArray(options))) {
    throw malformed(envelope, "options in the body are not an object");
  }
  const { expires, workflow, node, target } = headers;
  if (expires !== undefined && typeof expires !== "number")
    throw malformed(envelope, "header 'expires' is not a number");
  if (workflow !== undefined && (typeof workflow !== "string" || typeof node !== "number"))
    throw malformed(envelope, "workflow headers are malformed");
  const message: { -readonly [K in keyof TaskMessage]: TaskMessage[K] } = {
    id: envelope.id,
    task,
    args,
    options: (options ?? NO_OPTIONS) as CallOptions,
    retries,
  };
  if (typeof workflow === "string") {
    message.workflow = workflow;
    message.node = node as number;
  }
  if (typeof target === "string") message.target = target;
  if (typeof expires === "number") message.expires = expires;
  if (headers[CLAIM_ONCE_HEADER] === true) message.claimOnce = true;
  return message;
};
