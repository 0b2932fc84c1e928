// The result store a broker node serves to every process connected to it
// (ops `results.*`): a MemoryResultStore on the node (a DurableResultStore
// when the node has a data directory), and a push (Notify
// frame, topic "result") to each connection waiting for a task to finish,
// so a `get()` from any process wakes on the write, never by polling.
import { InvalidArgumentError } from "../../broker/errors.ts";
import type { NodeConnection } from "../../broker/node/node-connection.ts";
import type { BrokerNode } from "../../broker/node/node-server.ts";
import type { WireError } from "../../broker/node/protocol.ts";
import { errorToWire } from "../../broker/node/wire-errors.ts";
import { MemoryResultStore, type ResultRecord, type ResultStore } from "./result-store.ts";
import { reserveMembersOf } from "./member-reservations.ts";
import { type ReceivedSentTask, resultOperations, type WireOutcomeAck } from "./result-operations.ts";

/**
 * The Notify topic on which the node pushes a finished task's record to the connections waiting for it.
 */
export const RESULT_TOPIC = "result";

const envelopeOf = (task: ReceivedSentTask) => task.envelope;
const encodedOf = (task: ReceivedSentTask) => task.encoded;

/** Refused, so never sent: leave no record that would wait for ever. */
const forgetRefused =
  (store: ResultStore, sent: readonly ReceivedSentTask[]) =>
  (index: number): Promise<void> | undefined => {
    const record = sent[index].record;
    return record === null ? undefined : store.forget(record[0]);
  };

/**
 * Answered once the messages are durable, as when the state was sent without a
 * reply: the message is what a crash must not lose. A record that fails first
 * fails the answer; one that fails later fails every later answer of the store.
 */
const answeredWhenPublished = (published: Promise<void>, writes: readonly Promise<void>[]): Promise<void> =>
  new Promise<void>((resolve, reject) => {
    published.then(resolve, reject);
    for (const write of writes) write.catch(reject);
  });

/** `answer` of each entry in order: at once when every answer is, else once they all are. */
const answerEach = <E>(
  entries: readonly E[],
  answer: (entry: E) => boolean | Promise<boolean>,
): boolean[] | Promise<boolean[]> => {
  const answers: (boolean | Promise<boolean>)[] = new Array(entries.length);
  let waits = false;
  for (let i = 0; i < entries.length; i++) {
    const answered = answer(entries[i]);
    if (answered instanceof Promise) waits = true;
    answers[i] = answered;
  }
  return waits ? Promise.all(answers) : (answers as boolean[]);
};

/**
 * Record each sent task's state, then publish the messages; answered once
 * both are durable. A refused message leaves no record, and fails the answer,
 * unless `tell` is given: then it is told the refusal, and the answer is for
 * the others.
 */
const publishRecorded = (
  node: BrokerNode,
  store: ResultStore,
  sent: readonly ReceivedSentTask[],
  mandatory: boolean,
  tell?: (index: number, error: unknown) => void,
): Promise<void> => {
  // Recorded before the publish: a fast worker's STARTED and SUCCESS always land after it.
  let writes: Promise<void>[] | undefined;
  for (const { record } of sent) {
    if (record === null) continue;
    const written = store.setState(record[0], record[1], record[2], record[3] ?? undefined);
    if (written instanceof Promise && !writes?.includes(written)) (writes ??= []).push(written);
  }
  const forget = forgetRefused(store, sent);
  const published = node.publishReceived(sent.map(envelopeOf), mandatory, {
    encoded: sent.map(encodedOf),
    refused: (index, error) => {
      tell?.(index, error);
      return forget(index);
    },
    refusalsTold: tell !== undefined,
  });
  return writes === undefined ? published : answeredWhenPublished(published, writes);
};

/**
 * A completion's answer, having acknowledged the delivery it names (if any)
 * once the outcome is recorded: a failed write acknowledges nothing, and the
 * worker settles the delivery itself.
 */
const ackedOnceRecorded = (
  answered: boolean | Promise<boolean>,
  ack: WireOutcomeAck | null | undefined,
  connection: NodeConnection,
): boolean | Promise<boolean> => {
  if (ack === null || ack === undefined) return answered;
  if (!(answered instanceof Promise)) {
    ackQuietly(connection, ack);
    return answered;
  }
  return answered.then((first) => {
    ackQuietly(connection, ack);
    return first;
  });
};

const ackQuietly = (connection: NodeConnection, [consumerTag, deliveryTag]: WireOutcomeAck): void => {
  try {
    connection.ack(consumerTag, deliveryTag);
  } catch {
    // Cancelled or closed meanwhile: the delivery went back to its queue, and the outcome now recorded
    // lets its redelivery finish without running the task again.
  }
};

/**
 * Serve a result store on a broker node (ops `results.*`) to every process
 * connected to it; returns the store. Default: a new MemoryResultStore.
 *
 * @example
 * const node = await BrokerNode.start({ port: 5690, dataDir: "./data" });
 * serveResults(node, await DurableResultStore.open("./data/results"));
 */
export const serveResults = <S extends ResultStore = MemoryResultStore>(
  node: BrokerNode,
  store: S = new MemoryResultStore() as ResultStore as S,
): S => {
  const reserveMembers = reserveMembersOf(store);
  node.serve(resultOperations, {
    setState: ([id, task, state, details]) => store.setState(id, task, state, details ?? undefined),
    send: ([sent, mandatory]) => publishRecorded(node, store, sent, mandatory === true),
    sendEach: ([sent, mandatory]) => {
      const answers: (WireError | null)[] = new Array(sent.length).fill(null);
      return publishRecorded(node, store, sent, mandatory === true, (index, error) => {
        answers[index] = errorToWire(error);
      }).then(() => answers);
    },
    start: ([id, task, details]) => store.start(id, task, details ?? undefined),
    complete: ([id, task, outcome, ack], connection) =>
      ackedOnceRecorded(store.complete(id, task, outcome), ack, connection),
    startAll: ([starts]) => answerEach(starts, (start) => store.start(start[0], start[1], start[2] ?? undefined)),
    completeAll: ([completions], connection) =>
      answerEach(completions, (done) =>
        ackedOnceRecorded(store.complete(done[0], done[1], done[2]), done[3], connection),
      ),
    get: ([id]) => store.get(id).then((record) => record ?? null),
    watch: ([id], connection) => {
      let done = false;
      // Resolves now if final, else when the write that finishes the task lands.
      store
        .waitFinal(id, undefined, () => new Error("unreachable"))
        .then((record: ResultRecord) => {
          if (!done) connection.notify(RESULT_TOPIC, [id, record]);
        });
      connection.onClose(() => (done = true));
      return null;
    },
    forget: ([id]) => store.forget(id),
    saveGraph: ([graph]) => store.saveGraph(graph),
    graph: ([id]) => store.graph(id).then((graph) => graph ?? null),
    arrive: ([key, member]) => store.arrive(key, member),
    claim: ([key]) => store.claim(key),
    release: ([key]) => store.release(key),
    reserve: ([key, id, ttlMs]) => store.reserve(key, id, ttlMs),
    reserveAll: ([keys, id, ttlsMs]) => {
      if (ttlsMs.length !== keys.length)
        throw new InvalidArgumentError({
          argument: "reservation ttls",
          reason: `${ttlsMs.length} ttls for ${keys.length} keys: give one per key`,
        });
      const held = (holders: readonly string[]) => holders.map((holder) => (holder === id ? true : holder));
      if (store.reserveAll !== undefined) return store.reserveAll(keys, id, ttlsMs).then(held);
      return Promise.all(keys.map((key, i) => store.reserve(key, id, ttlsMs[i]))).then(held);
    },
    reserveMembers: ([key, members, id, ttlMs]) => reserveMembers(key, members, id, ttlMs),
  });
  // Forgetting a final record lets it be written again: a result rewrite, for administrators when the node has roles.
  node.requireAdmin(resultOperations, ["forget"]);
  return store;
};
