/**
 * The result store's operations on a broker node (prefix `results`),
 * declared once for the node's result service and the remote store that
 * calls it.
 */
import type { Envelope } from "../../broker/envelope.ts";
import { type ArgumentCheck, check, operation, operationGroup } from "../../broker/node/operations.ts";
import { envelopeFromBytes } from "../../broker/node/encoded-envelope.ts";
import { ProtocolError, type WireError } from "../../broker/node/protocol.ts";
import type { MessageGraph } from "../../dsl/graph.ts";
import type { TaskState } from "../../dsl/result.ts";
import type { FinalOutcome, ResultRecord, StateDetails } from "./result-store.ts";

const TASK_STATES: readonly TaskState[] = ["PENDING", "RECEIVED", "STARTED", "RETRY", "SUCCESS", "FAILURE", "REVOKED"];

/** The state a task is recorded in as its message is sent: PENDING, or RETRY for a retry's message. */
export type SentState = "PENDING" | "RETRY";

/** A sent task's record: `[id, task, state, details]`. */
export type SentRecord = readonly [id: string, task: string, state: SentState, details: StateDetails | null];

/**
 * A task message on its way, and the record made of it as it is published
 * (none for a task whose result is ignored). The envelope is its wire form
 * encoded on its own (`envelopeBytes`), sent as `bin`, so the node journals
 * those bytes as they came.
 */
export type WireSentTask = readonly [envelope: Uint8Array, record: SentRecord | null];

/** A sent task as the node's handler receives it: the envelope decoded and checked, and its bytes (a view into the request). */
export interface ReceivedSentTask {
  readonly envelope: Envelope;
  readonly encoded: Uint8Array;
  readonly record: SentRecord | null;
}

const SENT_STATES: readonly unknown[] = ["PENDING", "RETRY"] satisfies SentState[];

const isMap = (value: unknown): boolean =>
  value !== null && typeof value === "object" && !Array.isArray(value) && !(value instanceof Uint8Array);

/** Why `record` is not a sent task's record, or undefined if it is one. */
const recordFault = (record: unknown): string | undefined => {
  if (!Array.isArray(record) || record.length !== 4) return "its record must be [id, task, state, details]";
  const [id, task, state, details] = record as unknown[];
  if (typeof id !== "string" || id === "") return "its record's task id must be a non-empty string";
  if (typeof task !== "string") return "its record's task name must be a string";
  if (!SENT_STATES.includes(state)) return `its record's state must be PENDING or RETRY, got ${String(state)}`;
  if (details !== null && !isMap(details)) return "its record's details must be a map or nil";
  return undefined;
};

const refuse = (op: string, reason: string): never => {
  throw new ProtocolError({ reason: `${op}: ${reason}` });
};

/** Sent tasks: each an envelope in its wire form and its record or nil, all checked (a ProtocolError names the first bad one). */
const sentTasks = (what: string): ArgumentCheck<readonly WireSentTask[], ReceivedSentTask[]> => ({
  what,
  check: (value, op) => {
    if (!Array.isArray(value)) return refuse(op, `${what} must be an array`);
    const received: ReceivedSentTask[] = new Array(value.length);
    for (let i = 0; i < value.length; i++) {
      const item = value[i] as unknown;
      if (!Array.isArray(item) || item.length !== 2) refuse(op, `${what}[${i}] must be [envelope, record or nil]`);
      const [encoded, record] = item as [unknown, unknown];
      if (!(encoded instanceof Uint8Array))
        return refuse(op, `${what}[${i}]: its envelope must be msgpack bytes (bin)`);
      let envelope: Envelope;
      try {
        envelope = envelopeFromBytes(encoded);
      } catch (error) {
        return refuse(op, `${what}[${i}]: ${error instanceof ProtocolError ? error.reason : String(error)}`);
      }
      if (record !== null && record !== undefined) {
        const fault = recordFault(record);
        if (fault !== undefined) refuse(op, `${what}[${i}]: ${fault}`);
        if ((record as SentRecord)[0] !== envelope.id)
          refuse(op, `${what}[${i}]: its record names task ${(record as SentRecord)[0]}, its envelope ${envelope.id}`);
      }
      received[i] = { envelope, encoded, record: (record ?? null) as SentRecord | null };
    }
    return received;
  },
});

/** A start in a batch (`results.startAll`): `[id, task, details or nil]`. */
export type WireStart = [id: string, task: string, details: StateDetails | null];

/**
 * The delivery a completion's connection holds, `[consumer tag, delivery
 * tag]` as the node named them: acknowledged by the node once the outcome is
 * recorded (see `Consumer.outcomeAck`).
 */
export type WireOutcomeAck = readonly [consumerTag: string, deliveryTag: number];

/** A completion in a batch (`results.completeAll`): `[id, task, outcome]`, and the delivery to acknowledge with it. */
export type WireCompletion = [id: string, task: string, outcome: FinalOutcome, ack?: WireOutcomeAck];

const isOutcomeAck = (value: unknown): value is WireOutcomeAck =>
  Array.isArray(value) &&
  value.length === 2 &&
  typeof value[0] === "string" &&
  Number.isInteger(value[1]) &&
  (value[1] as number) >= 0;

/**
 * Why `entry` is not `[id, task, map]` (the map optional when `mapOptional`;
 * a fourth item, a delivery to acknowledge, when `acks`), or undefined if it is.
 */
const entryFault = (entry: unknown, third: string, mapOptional: boolean, acks: boolean): string | undefined => {
  const shape = `must be [task id, task name, ${third}${acks ? ", delivery to acknowledge?" : ""}]`;
  if (!Array.isArray(entry) || !(entry.length === 3 || (acks && entry.length === 4))) return shape;
  const [id, task, map] = entry as unknown[];
  if (typeof id !== "string" || id === "") return "its task id must be a non-empty string";
  if (typeof task !== "string") return "its task name must be a string";
  if (mapOptional ? map !== null && map !== undefined && !isMap(map) : !isMap(map))
    return `its ${third} must be a map${mapOptional ? " or nil" : ""}`;
  if (entry.length === 4 && entry[3] !== null && !isOutcomeAck(entry[3]))
    return "its delivery to acknowledge must be [consumer tag, delivery tag] or nil";
  return undefined;
};

/** A batch of `[id, task, map]` entries, all checked (a ProtocolError names the first bad one). */
const entries = <T>(
  what: string,
  third: string,
  mapOptional: boolean,
  acks = false,
): ArgumentCheck<readonly T[], T[]> => ({
  what,
  check: (value, op) => {
    if (!Array.isArray(value)) return refuse(op, `${what} must be an array`);
    for (let i = 0; i < value.length; i++) {
      const fault = entryFault(value[i], third, mapOptional, acks);
      if (fault !== undefined) refuse(op, `${what}[${i}] ${fault}`);
    }
    return value as T[];
  },
});

/** A delivery to acknowledge with a completion. */
const outcomeAck: ArgumentCheck<WireOutcomeAck> = {
  what: "delivery to acknowledge",
  check: (value, op) =>
    isOutcomeAck(value) ? value : refuse(op, "delivery to acknowledge must be [consumer tag, delivery tag] or nil"),
};

export const resultOperations = operationGroup("results", {
  /** Sent without waiting for an answer (see RemoteResultStore.setState). */
  setState: operation<void>()(
    check.string("task id"),
    check.string("task name"),
    check.oneOf<TaskState>("state", TASK_STATES),
    check.optional(check.map<StateDetails>("state details")),
  ),
  /**
   * Publish task messages, recording each one's state (PENDING, or RETRY)
   * as part of its publish: one request for what took a state write and a
   * publish each. Answered once every record and message is durable; a
   * refused message (mandatory, and no queue takes it) leaves no record.
   */
  send: operation<void>()(sentTasks("sent tasks"), check.optional(check.boolean("mandatory"))),
  /**
   * As `send`, answered for each message in order: nil, or the error a
   * `send` of that message alone would have failed with (a refused one). An
   * app's sends of one turn go as one request; a node without it (an older
   * one) answers "unknown op", and each send goes on its own.
   */
  sendEach: operation<(WireError | null)[]>()(sentTasks("sent tasks"), check.optional(check.boolean("mandatory"))),
  /** Answered: the worker runs the task only if STARTED was recorded (no final state was there first). */
  start: operation<boolean>()(
    check.string("task id"),
    check.string("task name"),
    check.optional(check.map<StateDetails>("state details")),
  ),
  /**
   * Record a final state; with a delivery of this connection, acknowledge it
   * once the outcome is recorded (not if recording fails), so the worker
   * sends no ack of its own.
   */
  complete: operation<boolean>()(
    check.string("task id"),
    check.string("task name"),
    check.map<FinalOutcome>("outcome"),
    check.optional(outcomeAck),
  ),
  /**
   * Several starts in one request (a worker's starts of one turn): answers,
   * for each in order, what `start` would. A node without it (an older one)
   * answers "unknown op", and the remote store sends each start on its own.
   */
  startAll: operation<boolean[]>()(entries<WireStart>("starts", "state details", true)),
  /** Several completions in one request, answered as `startAll` is: what `complete` would, for each in order. */
  completeAll: operation<boolean[]>()(entries<WireCompletion>("completions", "outcome", false, true)),
  get: operation<ResultRecord | null>()(check.string("task id")),
  /** Subscribe this connection to the task's final record (pushed as a Notify on topic "result"). */
  watch: operation<null>()(check.string("task id")),
  forget: operation<void>()(check.string("task id")),
  saveGraph: operation<void>()(check.map<MessageGraph>("workflow graph")),
  graph: operation<MessageGraph | null>()(check.string("workflow id")),
  arrive: operation<number>()(check.string("join key"), check.number("member")),
  claim: operation<boolean>()(check.string("claim key")),
  release: operation<void>()(check.string("claim key")),
  /** Answers the id holding the key after the call (see ResultStore.reserve). */
  reserve: operation<string>()(
    check.string("reservation key"),
    check.string("task id"),
    check.number("reservation ttl"),
  ),
  /**
   * Several reservations for one id in one request: for each key in order,
   * `true` when the caller's id holds it after the call, else the id that
   * does (a batch of claims mostly wins, and a boolean is one byte to send
   * and no string to decode).
   */
  reserveAll: operation<(string | true)[]>()(
    check.strings("reservation keys"),
    check.string("task id"),
    check.numbers("reservation ttls"),
  ),
  /** Answers, for each member in order, whether the id holds it after the call (see ResultStore.reserveMembers). */
  reserveMembers: operation<readonly boolean[]>()(
    check.string("reservation key"),
    check.numbers("members"),
    check.string("task id"),
    check.number("reservation ttl"),
  ),
});
