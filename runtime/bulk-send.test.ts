import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { CodecError } from "../broker/codec.ts";
import { UnroutableError } from "../broker/errors.ts";
import { NodeTransport } from "../broker/node/client/node-transport.ts";
import { BrokerNode } from "../broker/node/node-server.ts";
import { ProtocolError } from "../broker/node/protocol.ts";
import { envelopeBytes } from "../broker/node/encoded-envelope.ts";
import { createApp } from "./app.ts";
import { BulkSendError } from "./errors.ts";
import { startFullNode } from "./full-node.ts";
import type { RemoteResultStore } from "./results/remote-result-store.ts";
import { resultOperations } from "./results/result-operations.ts";
import { serveResults } from "./results/result-service.ts";

/** A node serving results, an app connected to it, and the names of the operations the app's connection sends. */
const overNode = async () => {
  const node = await BrokerNode.start({ port: 0, log: () => {} });
  serveResults(node);
  const app = createApp({ broker: node.url, log: () => {} });
  const client = (app.results as RemoteResultStore).client;
  const sent: string[] = [];
  const call = client.call.bind(client);
  const tell = client.tell.bind(client);
  client.call = (op, args) => {
    sent.push(op.name);
    return call(op, args);
  };
  client.tell = (op, args, keep) => {
    sent.push(op.name);
    tell(op, args, keep);
  };
  const close = async () => {
    await app.close();
    await node.stop();
  };
  return { node, app, client, sent, close };
};

describe("sending a task over a broker node", () => {
  it("records the task as PENDING and publishes its message in one request", async () => {
    const { app, sent, close } = await overNode();
    try {
      const add = app.task("add", (x: number, y: number) => x + y);
      await app.broker.declareQueue("celery");
      sent.length = 0;
      const r = await add.delay(1, 2);
      assert.deepEqual(sent, ["results.send"]);
      assert.equal(await r.state(), "PENDING");
      await app.worker({ concurrency: 2 }).start();
      assert.equal(await r.get({ timeout: 5_000 }), 3);
    } finally {
      await close();
    }
  });

  it("leaves no record of a task whose message no queue takes", async () => {
    const { app, close } = await overNode();
    try {
      const add = app.task("add", (x: number, y: number) => x + y);
      await app.broker.declareExchange("nowhere", "direct");
      await assert.rejects(
        add.applyAsync([1, 2], { exchange: "nowhere", routingKey: "nobody", taskId: "refused-1" }),
        UnroutableError,
      );
      assert.equal(await app.result("refused-1").state(), "UNKNOWN");
    } finally {
      await close();
    }
  });

  it("refuses a malformed send with a ProtocolError naming the bad item, and records nothing", async () => {
    const { app, client, close } = await overNode();
    try {
      const envelope = envelopeBytes({
        id: "t-1",
        exchange: "",
        routingKey: "celery",
        priority: 0,
        headers: {},
        body: new Uint8Array([1]),
      });
      await assert.rejects(
        client.call(resultOperations.send, [[[envelope, ["t-2", "add", "PENDING", null]]], true]),
        (error: unknown) =>
          error instanceof ProtocolError && /sent tasks\[0\]: its record names task t-2/.test(error.reason),
      );
      await assert.rejects(
        client.call(resultOperations.send, [[[envelope, ["t-1", "add", "SUCCESS", null]]] as never, true]),
        (error: unknown) => error instanceof ProtocolError && /state must be PENDING or RETRY/.test(error.reason),
      );
      await assert.rejects(
        client.call(resultOperations.send, [[[new Uint8Array([0xc1]), null]], true]),
        (error: unknown) =>
          error instanceof ProtocolError && /sent tasks\[0\]: undecodable envelope/.test(error.reason),
      );
      assert.equal(await app.result("t-1").state(), "UNKNOWN");
      assert.equal((await app.broker.stats("celery").catch(() => ({ ready: 0 }))).ready, 0);
    } finally {
      await close();
    }
  });
});

describe("sending many tasks at once", () => {
  it("sends every argument list over a node in one request, with a result per list in order", async () => {
    const { app, sent, close } = await overNode();
    try {
      const add = app.task("add", (x: number, y: number) => x + y);
      await app.broker.declareQueue("celery");
      sent.length = 0;
      const results = await add.delayMany(Array.from({ length: 500 }, (_, i) => [i, i] as [number, number]));
      assert.deepEqual(sent, ["results.send"]);
      assert.equal(results.length, 500);
      assert.equal(await results[7].state(), "PENDING");
      await app.worker({ concurrency: 8 }).start();
      const values = await Promise.all(results.map((r) => r.get({ timeout: 10_000 })));
      assert.deepEqual(
        values,
        Array.from({ length: 500 }, (_, i) => 2 * i),
      );
    } finally {
      await close();
    }
  });

  it("keeps every message of a confirmed bulk send on a durable node across a restart", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "celerity-bulk-"));
    try {
      const first = await startFullNode({ port: 0, dataDir, log: () => {} });
      const producer = createApp({ broker: first.url, log: () => {} });
      producer.task("add", (x: number, y: number) => x + y, { queue: "sums" });
      await producer.broker.declareQueue("sums");
      const sent = await producer.sendMany<number>("add", [
        [1, 2],
        [3, 4],
        [5, 6],
      ]);
      await producer.close();
      await first.stop();

      const second = await startFullNode({ port: 0, dataDir, log: () => {} });
      const app = createApp({ broker: second.url, log: () => {} });
      try {
        app.task("add", (x: number, y: number) => x + y, { queue: "sums" });
        await app.worker({ queues: ["sums"], concurrency: 2 }).start();
        const values = await Promise.all(sent.map((r) => app.result<number>(r.id).get({ timeout: 10_000 })));
        assert.deepEqual(values, [3, 7, 11]);
      } finally {
        await app.close();
        await second.stop();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it("takes per-call options for every message of a bulk send (app.sendMany by name)", async () => {
    const { app, close } = await overNode();
    try {
      app.task("add", (x: number, y: number) => x + y);
      await app.broker.declareQueue("math");
      await app.sendMany(
        "add",
        [
          [1, 1],
          [2, 2],
          [3, 3],
        ],
        { queue: "math" },
      );
      assert.equal((await app.broker.stats("math")).ready, 3);
    } finally {
      await close();
    }
  });

  it("runs a bulk send on the embedded broker too", async () => {
    const app = createApp({ log: () => {} });
    try {
      const add = app.task("add", (x: number, y: number) => x + y);
      const quiet = app.task("quiet", (_n: number) => {}, { ignoreResult: true });
      await app.worker({ concurrency: 4 }).start();
      const results = await add.delayMany([
        [1, 2],
        [3, 4],
      ]);
      assert.deepEqual(await Promise.all(results.map((r) => r.get({ timeout: 5_000 }))), [3, 7]);
      assert.equal((await quiet.delayMany([[1], [2], [3]])).length, 3);
    } finally {
      await app.close();
    }
  });

  it("sends messages of ignored results in one publishMany when the results live elsewhere", async () => {
    const node = await BrokerNode.start({ port: 0, log: () => {} });
    const transport = NodeTransport.create(node.url, { requestTimeoutMs: 5_000 });
    const app = createApp({ broker: transport, log: () => {} });
    try {
      const quiet = app.task("quiet", (_n: number) => {}, { ignoreResult: true, queue: "quiet" });
      await app.broker.declareQueue("quiet");
      const names: string[] = [];
      const call = transport.client.call.bind(transport.client);
      transport.client.call = (op, args) => {
        names.push(op.name);
        return call(op, args);
      };
      await quiet.delayMany([[1], [2], [3]]);
      assert.deepEqual(names, ["publishMany"]);
      assert.equal((await app.broker.stats("quiet")).ready, 3);
    } finally {
      await app.close();
      await node.stop();
    }
  });

  it("sends nothing when one argument list cannot be serialized", async () => {
    const { app, sent, close } = await overNode();
    try {
      const echo = app.task("echo", (value: unknown) => value);
      await app.broker.declareQueue("celery");
      sent.length = 0;
      await assert.rejects(echo.delayMany([[1], [() => 2], [3]]), CodecError);
      assert.deepEqual(sent, []);
      assert.equal((await app.broker.stats("celery")).ready, 0);
    } finally {
      await close();
    }
  });

  it("refuses a chosen id or de-duplication in a bulk send, and argument lists that are not lists", async () => {
    const app = createApp({ log: () => {} });
    try {
      const add = app.task("add", (x: number, y: number) => x + y);
      await assert.rejects(
        add.applyAsyncMany([[1, 2]], { taskId: "one" } as never),
        (error: unknown) =>
          error instanceof BulkSendError && error.task === "add" && /send such tasks one at a time/.test(error.message),
      );
      await assert.rejects(
        app.sendMany("add", [[1, 2], 3 as never]),
        (error: unknown) => error instanceof BulkSendError && /argument list 1 is not an array/.test(error.message),
      );
      await assert.rejects(
        app.sendMany("add", "no" as never),
        (error: unknown) => error instanceof BulkSendError && /must be an array of arrays/.test(error.message),
      );
    } finally {
      await app.close();
    }
  });

  it("refuses a publishMany with a malformed envelope, naming which one", async () => {
    const node = await BrokerNode.start({ port: 0, log: () => {} });
    const transport = NodeTransport.create(node.url, { requestTimeoutMs: 5_000 });
    try {
      const good = { id: "a", exchange: "", routingKey: "q", priority: 0, headers: {}, body: new Uint8Array([1]) };
      await assert.rejects(
        transport.publishMany([good, { ...good, id: "" }]),
        (error: unknown) => error instanceof ProtocolError && /envelopes\[1\]: envelope id must be/.test(error.reason),
      );
      await transport.publishMany([good, { ...good, id: "b" }]);
      assert.equal((await transport.stats("q")).ready, 2);
    } finally {
      await transport.close();
      await node.stop();
    }
  });
});
