// Remote control on the wire, as in Celery's pidbox: a request is published
// to a fanout exchange that every worker's control queue (auto-delete, one
// per worker) is bound to; a worker whose name the request's `destination`
// lists (or every worker, without one) runs the command and publishes its
// reply to the reply exchange, keyed by the caller's reply queue. Bodies are
// msgpack maps with Celery's field names.
import { decode, encode } from "@msgpack/msgpack";
import { Data } from "effect";
import type { Envelope } from "../../broker/envelope.ts";

export const CONTROL_EXCHANGE = "celerity.control";
export const REPLY_EXCHANGE = "celerity.reply";

/** The commands a worker answers: Celery's inspect and control names. */
export const INSPECT_METHODS = [
  "ping",
  "active",
  "reserved",
  "scheduled",
  "registered",
  "stats",
  "revoked",
  "active_queues",
] as const;
export const CONTROL_METHODS = [
  "rate_limit",
  "time_limit",
  "shutdown",
  "pool_grow",
  "pool_shrink",
  "add_consumer",
  "cancel_consumer",
  "enable_events",
  "disable_events",
] as const;
export type InspectMethod = (typeof INSPECT_METHODS)[number];
export type ControlMethod = (typeof CONTROL_METHODS)[number];
export type Method = InspectMethod | ControlMethod;

export interface ControlRequest {
  readonly method: string;
  readonly arguments: Readonly<Record<string, unknown>>;
  /** Worker names that should answer; null for every worker. */
  readonly destination: readonly string[] | null;
  /** The caller's reply queue; null when no reply is wanted. */
  readonly reply_to: string | null;
  readonly ticket: string;
}

/**
 * One worker's raw reply to a command, as `app.control.broadcast` returns it: `value` when `ok`, else `error`.
 *
 * @example
 * const replies = await app.control.broadcast("rate_limit", { task_name: "fetch", rate_limit: "5/s" });
 * for (const reply of replies) console.log(reply.hostname, reply.ok ? reply.value : reply.error);
 */
export interface ControlReply {
  readonly ticket: string;
  readonly hostname: string;
  readonly ok: boolean;
  /** The answer when `ok`. */
  readonly value?: unknown;
  /** Why the command failed on that worker when not `ok`. */
  readonly error?: string;
}

/**
 * A control command's answer from one worker, in Celery's form.
 *
 * @example
 * const answers = await app.control.addConsumer("emails");
 * for (const [worker, answer] of Object.entries(answers)) console.log(worker, "ok" in answer ? answer.ok : answer.error);
 */
export type ControlAnswer = { readonly ok: string } | { readonly error: string };

/**
 * A worker answered an inspect command with an error.
 *
 * @example
 * await app.inspect.stats().catch((error) => {
 *   if (!(error instanceof ControlError)) throw error;
 *   console.error(`${error.worker} could not answer: ${error.reason}`);
 * });
 */
export class ControlError extends Data.TaggedError("ControlError")<{
  readonly method: string;
  readonly worker: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `'${this.method}' failed on worker ${this.worker}: ${this.reason}`;
  }
}

const HEADERS = { kind: "celerity-control" } as const;

export const requestEnvelope = (id: string, request: ControlRequest): Envelope => ({
  id,
  exchange: CONTROL_EXCHANGE,
  routingKey: "control",
  priority: 9,
  headers: HEADERS,
  body: encode(request),
});

export const replyEnvelope = (id: string, replyTo: string, reply: ControlReply): Envelope => ({
  id,
  exchange: REPLY_EXCHANGE,
  routingKey: replyTo,
  priority: 9,
  headers: HEADERS,
  body: encode(reply, { ignoreUndefined: true }),
});

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** Read a request; throws TypeError naming what is wrong. */
export const readRequest = (body: Uint8Array): ControlRequest => {
  const value = decode(body);
  if (!isRecord(value)) throw new TypeError("a control request is a map");
  const { method, arguments: args, destination, reply_to, ticket } = value;
  if (typeof method !== "string") throw new TypeError("a control request's method is a string");
  if (typeof ticket !== "string") throw new TypeError("a control request's ticket is a string");
  if (args !== undefined && args !== null && !isRecord(args))
    throw new TypeError("a control request's arguments are a map");
  if (
    destination !== null &&
    destination !== undefined &&
    (!Array.isArray(destination) || destination.some((d) => typeof d !== "string"))
  ) {
    throw new TypeError("a control request's destination is a list of worker names");
  }
  if (reply_to !== null && reply_to !== undefined && typeof reply_to !== "string")
    throw new TypeError("a control request's reply_to is a queue name");
  return {
    method,
    arguments: (args ?? {}) as Record<string, unknown>,
    destination: (destination ?? null) as string[] | null,
    reply_to: (reply_to ?? null) as string | null,
    ticket,
  };
};

/** Read a reply; throws TypeError naming what is wrong. */
export const readReply = (body: Uint8Array): ControlReply => {
  const value = decode(body);
  if (
    !isRecord(value) ||
    typeof value.ticket !== "string" ||
    typeof value.hostname !== "string" ||
    typeof value.ok !== "boolean"
  ) {
    throw new TypeError("a control reply is a map with ticket, hostname and ok");
  }
  return value as unknown as ControlReply;
};
