/**
 * The operations a broker node serves, each declared once with its name on
 * the wire, the types of its arguments and its answer, and the check its
 * arguments pass when they arrive at the node. Client and node both derive
 * from these declarations: `client.call(op, args)` takes the op's argument
 * types and resolves to its answer type, and `node.serve(group, handlers)`
 * gets each handler typed by the op it serves. A misspelled operation or a
 * wrong payload is a compile error on either side; arguments that arrive
 * malformed are refused with a ProtocolError naming the operation and the
 * argument.
 *
 * @example
 * const greetings = operationGroup("greet", {
 *   hello: operation<string>()(check.string("name")),
 * });
 * node.serve(greetings, { hello: ([name]) => `hello ${name}` });
 * await client.call(greetings.hello, ["Ada"]); // "hello Ada"
 */
import type { Envelope } from "../envelope.ts";
import type { QueueInfo } from "../queue-admin.ts";
import type { ExchangeType, QueueOptions, QueueStats, RevocationOptions } from "../transport.ts";
import { ProtocolError, envelopeFromWire, type WireEnvelope } from "./protocol.ts";

/**
 * Checks one argument as it arrives: returns it (or the value it decodes
 * to) or throws a ProtocolError. `Sent` is what the client passes; `Received`
 * what the node's handler gets.
 */
export interface ArgumentCheck<Sent, Received = Sent> {
  readonly what: string;
  readonly check: (value: unknown, op: string) => Received;
  /** Never set: carries the type the client sends. */
  readonly sent?: Sent;
}

/** One operation: its wire name, the arguments' checks, and (as a type only) its answer. */
export interface Operation<Sent extends readonly unknown[], Received extends readonly unknown[], Answer> {
  readonly name: string;
  readonly checks: readonly ArgumentCheck<unknown, unknown>[];
  /** Never set: carries the types. */
  readonly types?: { readonly sent: Sent; readonly received: Received; readonly answer: Answer };
}

export type AnyOperation = Operation<any, any, any>;
export type SentOf<O> = O extends Operation<infer S, infer _R, infer _A> ? S : never;
export type ReceivedOf<O> = O extends Operation<infer _S, infer R, infer _A> ? R : never;
export type AnswerOf<O> = O extends Operation<infer _S, infer _R, infer A> ? A : never;

type SentTuple<C extends readonly ArgumentCheck<unknown, unknown>[]> = {
  -readonly [K in keyof C]: C[K] extends ArgumentCheck<infer S, infer _R> ? S : never;
};
type ReceivedTuple<C extends readonly ArgumentCheck<unknown, unknown>[]> = {
  -readonly [K in keyof C]: C[K] extends ArgumentCheck<infer _S, infer R> ? R : never;
};

/** An operation not yet named: `operationGroup` names it after its key. */
export interface UnnamedOperation<Sent extends readonly unknown[], Received extends readonly unknown[], Answer> {
  readonly checks: readonly ArgumentCheck<unknown, unknown>[];
  readonly types?: Operation<Sent, Received, Answer>["types"];
}

/**
 * Declare an operation answering `Answer`, with one check per argument:
 * `operation<boolean>()(check.string("task id"))`.
 */
export const operation =
  <Answer>() =>
  <const C extends readonly ArgumentCheck<any, any>[]>(
    ...checks: C
  ): UnnamedOperation<SentTuple<C>, ReceivedTuple<C>, Answer> => ({ checks });

/** Operations named `${prefix}.${key}` (no prefix: named by their key alone). */
export type OperationGroup<
  T extends Record<string, UnnamedOperation<readonly unknown[], readonly unknown[], unknown>>,
> = {
  readonly [K in keyof T]: T[K] extends UnnamedOperation<infer S, infer R, infer A> ? Operation<S, R, A> : never;
};

export const operationGroup = <
  T extends Record<string, UnnamedOperation<readonly unknown[], readonly unknown[], unknown>>,
>(
  prefix: string,
  operations: T,
): OperationGroup<T> => {
  const named: Record<string, Operation<readonly unknown[], readonly unknown[], unknown>> = {};
  for (const [key, op] of Object.entries(operations))
    named[key] = { name: prefix === "" ? key : `${prefix}.${key}`, checks: op.checks };
  return named as OperationGroup<T>;
};

/**
 * Check `args` against `op` in place (the array is the request's own, freshly
 * decoded): each position is replaced by what its check returns.
 */
export const checkArguments = <O extends AnyOperation>(op: O, args: unknown[]): ReceivedOf<O> => {
  const { checks, name } = op;
  if (args.length > checks.length)
    throw new ProtocolError({ reason: `${name} takes ${checks.length} arguments, got ${args.length}` });
  for (let i = 0; i < checks.length; i++) args[i] = checks[i].check(args[i], name);
  return args as ReceivedOf<O>;
};

const refuse = (op: string, what: string, expected: string, value: unknown): never => {
  throw new ProtocolError({ reason: `${op}: ${what} must be ${expected}, got ${describe(value)}` });
};

const describe = (value: unknown): string => {
  if (value === null || value === undefined) return "nothing";
  if (Array.isArray(value)) return "an array";
  if (value instanceof Uint8Array) return "binary";
  return typeof value === "string"
    ? `the string '${value.length > 40 ? `${value.slice(0, 40)}…` : value}'`
    : `a ${typeof value}`;
};

const isMap = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === "object" && !Array.isArray(value) && !(value instanceof Uint8Array);

/** The argument checks operations are declared with. */
export const check = {
  string: (what: string): ArgumentCheck<string> => ({
    what,
    check: (value, op) => (typeof value === "string" ? value : refuse(op, what, "a string", value)),
  }),
  number: (what: string): ArgumentCheck<number> => ({
    what,
    check: (value, op) =>
      typeof value === "number" && !Number.isNaN(value) ? value : refuse(op, what, "a number", value),
  }),
  boolean: (what: string): ArgumentCheck<boolean> => ({
    what,
    check: (value, op) => (typeof value === "boolean" ? value : refuse(op, what, "true or false", value)),
  }),
  strings: (what: string): ArgumentCheck<readonly string[]> => ({
    what,
    check: (value, op) =>
      Array.isArray(value) && value.every((item) => typeof item === "string")
        ? (value as string[])
        : refuse(op, what, "an array of strings", value),
  }),
  numbers: (what: string): ArgumentCheck<readonly number[]> => ({
    what,
    check: (value, op) =>
      Array.isArray(value) && value.every((item) => typeof item === "number")
        ? (value as number[])
        : refuse(op, what, "an array of numbers", value),
  }),
  /** A map whose fields the handler reads itself (and the layer below checks). */
  map: <T>(what: string): ArgumentCheck<T> => ({
    what,
    check: (value, op) => (isMap(value) ? (value as T) : refuse(op, what, "a map", value)),
  }),
  /** An array whose items the handler reads itself. */
  array: <T extends readonly unknown[]>(what: string): ArgumentCheck<T> => ({
    what,
    check: (value, op) => (Array.isArray(value) ? (value as unknown as T) : refuse(op, what, "an array", value)),
  }),
  oneOf: <const T extends string>(what: string, allowed: readonly T[]): ArgumentCheck<T> => ({
    what,
    check: (value, op) =>
      allowed.includes(value as T) ? (value as T) : refuse(op, what, `one of ${allowed.join(", ")}`, value),
  }),
  /** Any msgpack value: for values the layer above stores as they are. */
  value: <T>(what: string): ArgumentCheck<T> => ({ what, check: (value) => value as T }),
  /** `inner`, or nil (sent as null; a missing trailing argument counts as nil). */
  optional: <S, R>(inner: ArgumentCheck<S, R>): ArgumentCheck<S | null, R | null> => ({
    what: inner.what,
    check: (value, op) => (value === null || value === undefined ? null : inner.check(value, op)),
  }),
  /** An envelope in its wire form, decoded and validated (throws naming the bad field). */
  envelope: (what: string): ArgumentCheck<WireEnvelope, Envelope> => ({
    what,
    check: (value) => envelopeFromWire(value),
  }),
  /** Envelopes in their wire form, each decoded and validated (throws naming the bad one and its field). */
  envelopes: (what: string): ArgumentCheck<readonly WireEnvelope[], Envelope[]> => ({
    what,
    check: (value, op) => {
      if (!Array.isArray(value)) return refuse(op, what, "an array of envelopes", value);
      const envelopes: Envelope[] = new Array(value.length);
      for (let i = 0; i < value.length; i++) {
        try {
          envelopes[i] = envelopeFromWire(value[i]);
        } catch (error) {
          throw new ProtocolError({
            reason: `${op}: ${what}[${i}]: ${error instanceof ProtocolError ? error.reason : String(error)}`,
          });
        }
      }
      return envelopes;
    },
  }),
} as const;

/** A dead letter on the wire: [queue, reason, at, envelope]. */
export type WireDeadLetter = [queue: string, reason: string, at: number, envelope: WireEnvelope];

/** The node's own operations: the transport contract, served over TCP. */
export const brokerOperations = operationGroup("", {
  publish: operation<void>()(check.envelope("envelope"), check.optional(check.boolean("mandatory"))),
  /** Several envelopes in one request, confirmed together once all are durable. */
  publishMany: operation<void>()(check.envelopes("envelopes"), check.optional(check.boolean("mandatory"))),
  /** Sent without a reply on the hot path. */
  ack: operation<void>()(check.string("consumer tag"), check.number("delivery tag")),
  /** Several acks of one consumer in one request, sent without a reply; to a node whose Welcome says `batchedAcks`. */
  acks: operation<void>()(check.string("consumer tag"), check.numbers("delivery tags")),
  nack: operation<void>()(
    check.string("consumer tag"),
    check.number("delivery tag"),
    check.boolean("requeue"),
    check.optional(check.string("reason")),
  ),
  consume: operation<string>()(
    check.string("queue"),
    check.number("prefetch"),
    check.optional(check.number("lease ms")),
    check.optional(check.boolean("marks started")),
  ),
  /** Sent without a reply, before the consumer begins processing the deliveries named. */
  started: operation<void>()(check.string("consumer tag"), check.numbers("delivery tags")),
  renew: operation<number>()(check.string("consumer tag"), check.numbers("delivery tags")),
  cancel: operation<void>()(check.string("consumer tag")),
  declareQueue: operation<void>()(check.string("queue"), check.optional(check.map<QueueOptions>("queue options"))),
  declareExchange: operation<void>()(
    check.string("exchange"),
    check.oneOf<ExchangeType>("exchange type", ["direct", "topic", "fanout"]),
  ),
  bindQueue: operation<void>()(check.string("queue"), check.string("exchange"), check.string("binding pattern")),
  revoke: operation<void>()(
    check.strings("task ids"),
    check.optional(check.map<RevocationOptions>("revocation options")),
  ),
  revocations: operation<[id: string, ttlMs: number][]>()(),
  deadLetters: operation<WireDeadLetter[]>()(check.string("queue")),
  stats: operation<QueueStats>()(check.string("queue")),
});

/** Queue management (QueueAdmin) over TCP: served by the node beside its broker operations. */
export const queueAdminOperations = operationGroup("", {
  listQueues: operation<readonly QueueInfo[]>()(),
  purge: operation<number>()(check.string("queue")),
  pause: operation<void>()(check.string("queue")),
  resume: operation<void>()(check.string("queue")),
  /** Dead letters of the queue, all (nil) or by message id, back to the queue each came from. */
  requeueDeadLetters: operation<number>()(check.string("queue"), check.optional(check.strings("message ids"))),
  discardDeadLetters: operation<number>()(check.string("queue"), check.optional(check.strings("message ids"))),
});
