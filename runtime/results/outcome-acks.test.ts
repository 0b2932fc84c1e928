// A broker node acknowledges a delivery in the request that records its task's outcome.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BrokerNode } from "../../broker/node/node-server.ts";
import { ProtocolError } from "../../broker/node/protocol.ts";
import { eventually } from "../../tests/support/waits.ts";
import { createApp } from "../app.ts";
import type { RemoteResultStore } from "./remote-result-store.ts";
import { resultOperations as ops } from "./result-operations.ts";
import { serveResults } from "./result-service.ts";
import { type FinalOutcome, MemoryResultStore, type ResultStore } from "./result-store.ts";

/** The node's store refuses the first `refusals` outcomes, as a full disk would. */
const refusingStore = (refusals: number): ResultStore => {
  const memory = new MemoryResultStore();
  let left = refusals;
  const complete = (id: string, task: string, outcome: FinalOutcome): Promise<boolean> =>
    left-- > 0
      ? Promise.reject(new Error("ENOSPC: no space left on device"))
      : Promise.resolve(memory.complete(id, task, outcome));
  return new Proxy(memory, {
    get: (target, key, receiver) => (key === "complete" ? complete : Reflect.get(target, key, receiver)),
  });
};

/** A node serving `store`, an app on it, and the operations (with their arguments) the app's connection sends. */
const overNode = async (store?: ResultStore) => {
  const node = await BrokerNode.start({ port: 0, log: () => {} });
  serveResults(node, store);
  const app = createApp({ broker: node.url, log: () => {} });
  const client = (app.results as RemoteResultStore).client;
  const sent: [op: string, args: readonly unknown[]][] = [];
  const call = client.call.bind(client);
  const tell = client.tell.bind(client);
  client.call = (op, args) => {
    sent.push([op.name, args]);
    return call(op, args);
  };
  client.tell = (op, args, keep) => {
    sent.push([op.name, args]);
    tell(op, args, keep);
  };
  const callWith = client.callWith.bind(client);
  client.callWith = (op, makeArgs) =>
    callWith(op, () => {
      const args = makeArgs();
      sent.push([op.name, args]);
      return args;
    });
  const close = async () => {
    await app.close();
    await node.stop();
  };
  const queue = () => app.broker.stats("celery");
  /** Wait until the queue holds nothing, ready or delivered. */
  const emptied = (what: string) =>
    eventually(
      async () => {
        const { ready, unacked } = await queue();
        return ready + unacked === 0;
      },
      { what },
    );
  return { node, app, client, sent, close, queue, emptied };
};

/** The worker's own acknowledgements among the requests sent. */
const acksSent = (sent: readonly [string, readonly unknown[]][]) =>
  sent.filter(([op]) => op === "ack" || op === "acks");

const completions = (sent: readonly [string, readonly unknown[]][]) =>
  sent.flatMap(([op, args]) =>
    op === ops.completeAll.name ? (args[0] as unknown[][]) : op === ops.complete.name ? [args as unknown[]] : [],
  );

describe("a task's outcome recorded on a broker node", () => {
  it("acknowledges its delivery in the same request: the worker sends no ack of its own", async () => {
    const { app, sent, close, queue } = await overNode();
    try {
      const add = app.task("add", (x: number, y: number) => x + y);
      await app.worker({ concurrency: 4 }).start();
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => add.delay(i, 1)));
      assert.deepEqual(
        await Promise.all(results.map((r) => r.get({ timeout: 5_000 }))),
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
      await eventually(async () => (await queue()).unacked === 0, { what: "every delivery acknowledged" });
      const outcomes = completions(sent);
      assert.equal(outcomes.length, 20);
      for (const completion of outcomes) assert.equal(completion.length, 4, "each completion names its delivery");
      assert.deepEqual(acksSent(sent), [], "the worker acknowledged a delivery the node had acknowledged");
    } finally {
      await close();
    }
  });

  it("leaves the delivery unacknowledged when the outcome cannot be recorded, so it runs again", async () => {
    const { app, close, emptied } = await overNode(refusingStore(1));
    try {
      let runs = 0;
      const job = app.task("job", () => {
        runs++;
        return "done";
      });
      await app.worker({ concurrency: 1 }).start();
      const r = await job.delay();
      assert.equal(await r.get({ timeout: 10_000 }), "done");
      assert.equal(runs, 2, "the message was not redelivered after its outcome was refused");
      await emptied("the queue to empty");
    } finally {
      await close();
    }
  });

  it("leaves acknowledging to the worker when the node does not take acks with outcomes", async () => {
    const { app, client, sent, close, queue } = await overNode();
    try {
      const add = app.task("add", (x: number, y: number) => x + y);
      await app.broker.declareQueue("celery");
      client.acksWithOutcomes = false; // as an older node's Welcome leaves it
      await app.worker({ concurrency: 2 }).start();
      const r = await add.delay(2, 3);
      assert.equal(await r.get({ timeout: 5_000 }), 5);
      await eventually(async () => (await queue()).unacked === 0, { what: "the delivery acknowledged" });
      for (const completion of completions(sent)) assert.equal(completion.length, 3);
      assert.ok(acksSent(sent).length > 0, "the worker sent no ack, and nothing else acknowledged the delivery");
    } finally {
      await close();
    }
  });

  it("names no delivery in a completion written after a reconnection, whose tags belong to the lost connection", async () => {
    const { app, client, sent, close, emptied } = await overNode();
    try {
      let runs = 0;
      const job = app.task("job", async () => {
        runs++;
        if (runs === 1) {
          // The connection drops while the task runs, and the client knows it before the task ends:
          // its completion waits for the next connection.
          (client as unknown as { socket: { destroy(): void } }).socket.destroy();
          await eventually(() => !client.connected, { what: "the client to see its connection lost" });
        }
        return "done";
      });
      await app.worker({ concurrency: 1 }).start();
      const r = await job.delay();
      await eventually(async () => (await r.state().catch(() => "unknown: reconnecting")) === "SUCCESS", {
        what: "the task's success, recorded over the new connection",
      });
      assert.equal(await r.get({ timeout: 10_000 }), "done");
      const outcomes = completions(sent);
      assert.ok(outcomes.length >= 1);
      assert.equal(outcomes[0].length, 3, "the completion named a delivery of the lost connection");
      await emptied("the redelivered message to be settled");
      assert.ok(runs <= 2);
    } finally {
      await close();
    }
  });

  it("refuses a completion whose delivery to acknowledge is malformed, naming it", async () => {
    const { client, close } = await overNode();
    try {
      const outcome: FinalOutcome = { state: "SUCCESS", value: new Uint8Array([0xc0]) };
      await assert.rejects(
        client.call(ops.completeAll, [[["id-1", "add", outcome, ["ctag-1", -1] as never]]]),
        (error: unknown) =>
          error instanceof ProtocolError &&
          /completions\[0\] its delivery to acknowledge must be \[consumer tag, delivery tag\] or nil/.test(
            error.message,
          ),
      );
      await assert.rejects(
        client.call(ops.complete, ["id-1", "add", outcome, "ctag-1" as never]),
        /delivery to acknowledge must be \[consumer tag, delivery tag\] or nil/,
      );
    } finally {
      await close();
    }
  });
});
