// The result store of a broker node, from a client: every call a request to the node,
// waiting for a result a subscription to the node's push.
import type { Envelope } from "../../broker/envelope.ts";
import type { OutcomeAck } from "../../broker/transport.ts";
import { envelopeBytes } from "../../broker/node/encoded-envelope.ts";
import { FrameType, type WireError } from "../../broker/node/protocol.ts";
import { FrameTooLargeError } from "../../broker/node/wire-frame.ts";
import { errorFromWire } from "../../broker/node/wire-errors.ts";
import type { NodeClient } from "../../broker/node/client/node-client.ts";
import type { MessageGraph } from "../../dsl/graph.ts";
import type { TaskState } from "../../dsl/result.ts";
import { READY_STATES } from "../../dsl/result.ts";
import type { FinalOutcome, ResultRecord, ResultStore, StateDetails } from "./result-store.ts";
import { RESULT_TOPIC } from "./result-service.ts";
import { type BatchFailure, BatchedCalls, booleanAnswer, type EntryAnswer } from "./batched-calls.ts";
import {
  resultOperations as ops,
  type SentRecord,
  type WireCompletion,
  type WireOutcomeAck,
  type WireSentTask,
  type WireStart,
} from "./result-operations.ts";
import { ResultWaiters } from "./result-waiters.ts";

/** A task message to send, and the record to make of it as it is published (none when its result is ignored). */
export interface SentTask {
  readonly envelope: Envelope;
  readonly record: SentRecord | undefined;
}

/** A value at most this long is sent in a batch of completions; a longer one in a request of its own. */
const BATCHED_VALUE_BYTES = 4_096;

/** What a failed batch of operation `name` means: an older node that lacks it, a frame over the node's limit, or neither. */
const batchFailure =
  (name: string) =>
  (error: unknown): BatchFailure =>
    error instanceof FrameTooLargeError
      ? "too large"
      : error instanceof Error && error.message.includes(`unknown op '${name}'`)
        ? "unserved"
        : "failed";

/** The answer of `sendEach` for one message: nil when it was published, else the error its own `send` would have failed with. */
const sendAnswer: EntryAnswer<void> = (answer) => {
  if (answer !== null) throw errorFromWire(answer as WireError, ops.send.name);
};

/** A completion waiting to be sent, with the delivery the node is to acknowledge with it, if any. */
type PendingCompletion = readonly [id: string, task: string, outcome: FinalOutcome, ack?: OutcomeAck];

/**
 * A completion as it is written to the node now: naming its delivery only
 * if the request goes over the connection the delivery came on (after a
 * reconnection, its tags may name another delivery, and the node has put it
 * back in its queue already).
 */
const onConnection = (client: NodeClient, [id, task, outcome, ack]: PendingCompletion): WireCompletion =>
  ack !== undefined && ack.via === client.connection
    ? [id, task, outcome, [ack.consumerTag, ack.deliveryTag]]
    : [id, task, outcome];

/**
 * `results.complete` of one completion: sent with three items unless it
 * acknowledges a delivery, since a node without `acksWithOutcomes` takes no
 * fourth.
 */
const completeOne = (client: NodeClient, completion: PendingCompletion): Promise<boolean> =>
  client.callWith(
    ops.complete,
    () => onConnection(client, completion) as [string, string, FinalOutcome, WireOutcomeAck | null],
  );

/**
 * The result store of a broker node, from a client: every call is a request
 * to the node, and waiting for a result subscribes to the node's push, so
 * `app.result(id).get()` works from any process connected to the node.
 *
 * @example
 * const transport = NodeTransport.create("celerity://127.0.0.1:5690", { requestTimeoutMs: 5_000 });
 * const app = createApp({ broker: transport, results: new RemoteResultStore(transport.client) });
 */
export class RemoteResultStore implements ResultStore {
  private readonly waiters = new ResultWaiters();
  /** A turn's starts, as one `results.startAll` (a worker starts a burst of deliveries at once). */
  private readonly starts: BatchedCalls<WireStart, boolean>;
  /** A turn's successes with small values, as one `results.completeAll`. */
  private readonly completions: BatchedCalls<PendingCompletion, boolean>;
  /** A run's sends of one task each, as one `results.sendEach`. */
  private readonly sends: BatchedCalls<WireSentTask, void>;

  /** @param client the node connection results go through; global rate-limit buckets use it too when the broker keeps none. */
  constructor(readonly client: NodeClient) {
    this.starts = new BatchedCalls(
      (batch) => client.call(ops.startAll, [batch]),
      (start) => client.call(ops.start, start),
      batchFailure(ops.startAll.name),
      booleanAnswer,
      queueMicrotask,
    );
    this.completions = new BatchedCalls(
      (batch) =>
        client.callWith(ops.completeAll, (): [WireCompletion[]] => [
          batch.map((completion) => onConnection(client, completion)),
        ]),
      (completion) => completeOne(client, completion),
      batchFailure(ops.completeAll.name),
      booleanAnswer,
      queueMicrotask,
    );
    // Through sendSoon: nothing the app asks of the node after a send overtakes it.
    this.sends = new BatchedCalls(
      (batch) => client.call(ops.sendEach, [batch, true]),
      (sent) => client.call(ops.send, [[sent], true]),
      batchFailure(ops.sendEach.name),
      sendAnswer,
      (flush) => client.sendSoon(flush),
    );
    client.onFrame(FrameType.Notify, (payload) => {
      const [topic, body] = payload as [string, unknown];
      if (topic !== RESULT_TOPIC) return;
      const [id, record] = body as [string, ResultRecord];
      this.waiters.wake(id, record);
    });
    // Subscriptions live on a connection: renew them after a reconnection.
    client.onConnected(async () => {
      for (const id of this.waiters.ids()) await client.callNow(ops.watch, [id]);
    });
  }

  /**
   * Sent without waiting for an answer: requests on one connection are applied
   * in order, so a PENDING sent before its publish lands before it. A round
   * trip per task saved. (STARTED is `start`, which the worker waits for.)
   */
  setState(id: string, task: string, state: TaskState, details?: StateDetails): void {
    this.client.tell(ops.setState, [id, task, state, details ?? null], true);
  }
  /**
   * Publish task messages and record each one's state in one request to the
   * node (op `results.send`); resolves once the node has made both durable.
   */
  async send(sent: readonly SentTask[], mandatory: boolean): Promise<void> {
    if (sent.length === 1 && mandatory) {
      const envelope = envelopeBytes(sent[0].envelope);
      return this.sends.add([envelope, sent[0].record ?? null], envelope.byteLength);
    }
    const wire: WireSentTask[] = new Array(sent.length);
    for (let i = 0; i < sent.length; i++) wire[i] = [envelopeBytes(sent[i].envelope), sent[i].record ?? null];
    await this.client.call(ops.send, [wire, mandatory]);
  }

  /** A request, not a tell: the worker must know whether it may run the task. Sent with the turn's other starts. */
  start(id: string, task: string, details?: StateDetails): Promise<boolean> {
    return this.starts.add([id, task, details ?? null]);
  }
  /** A success with a small value goes with the turn's others; anything else on its own (a failure's traceback has no bound). */
  complete(id: string, task: string, outcome: FinalOutcome): Promise<boolean> {
    if (outcome.state === "SUCCESS" && outcome.value.byteLength <= BATCHED_VALUE_BYTES)
      return this.completions.add([id, task, outcome], outcome.value.byteLength + id.length + task.length);
    return completeOne(this.client, [id, task, outcome]);
  }
  /**
   * A success with a small value, sent with the turn's others, and the
   * delivery the node acknowledges once it has recorded it: when `ack` came
   * over this store's own connection to a node that takes it (else undefined).
   */
  completeAndAck(id: string, task: string, outcome: FinalOutcome, ack: OutcomeAck): Promise<boolean> | undefined {
    if (ack.via !== this.client.connection || !this.client.acksWithOutcomes) return undefined;
    if (outcome.state !== "SUCCESS" || outcome.value.byteLength > BATCHED_VALUE_BYTES) return undefined;
    return this.completions.add([id, task, outcome, ack], outcome.value.byteLength + id.length + task.length);
  }
  async get(id: string): Promise<ResultRecord | undefined> {
    return (await this.client.call(ops.get, [id])) ?? undefined;
  }
  async waitFinal(id: string, timeoutMs: number | undefined, onTimeout: () => Error): Promise<ResultRecord> {
    const current = await this.get(id);
    if (current !== undefined && READY_STATES.has(current.state)) return current;
    const { promise, first } = this.waiters.wait(id, timeoutMs, onTimeout);
    if (first) await this.client.call(ops.watch, [id]);
    return promise;
  }
  async forget(id: string): Promise<void> {
    await this.client.call(ops.forget, [id]);
  }
  async saveGraph(graph: MessageGraph): Promise<void> {
    await this.client.call(ops.saveGraph, [graph]);
  }
  async graph(id: string): Promise<MessageGraph | undefined> {
    return (await this.client.call(ops.graph, [id])) ?? undefined;
  }
  async arrive(key: string, member: number): Promise<number> {
    return this.client.call(ops.arrive, [key, member]);
  }
  async claim(key: string): Promise<boolean> {
    return this.client.call(ops.claim, [key]);
  }
  async release(key: string): Promise<void> {
    await this.client.call(ops.release, [key]);
  }
  async reserve(key: string, id: string, ttlMs: number): Promise<string> {
    return this.client.call(ops.reserve, [key, id, ttlMs]);
  }
  async reserveAll(keys: readonly string[], id: string, ttlsMs: readonly number[]): Promise<readonly string[]> {
    // Made for a batch of deliveries, whose acks go out at the end of the turn: one write carries both.
    const held = await this.client.call(ops.reserveAll, [keys, id, ttlsMs], true);
    return held.map((holder) => (holder === true ? id : holder));
  }
  async reserveMembers(
    key: string,
    members: readonly number[],
    id: string,
    ttlMs: number,
  ): Promise<readonly boolean[]> {
    // Made for a batch of deliveries, as reserveAll: sent with the turn's acks.
    return this.client.call(ops.reserveMembers, [key, members, id, ttlMs], true);
  }
  async close(): Promise<void> {
    this.waiters.clear();
  }
}
