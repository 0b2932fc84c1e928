import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { UnroutableError } from "../../broker/errors.ts";
import { BrokerNode } from "../../broker/node/node-server.ts";
import { ProtocolError } from "../../broker/node/protocol.ts";
import type { AnyOperation } from "../../broker/node/operations.ts";
import { createApp } from "../app.ts";
import type { RemoteResultStore } from "./remote-result-store.ts";
import { resultOperations as ops } from "./result-operations.ts";
import { serveResults } from "./result-service.ts";

/**
 * A node serving results (without the batched operations when `older`, as a
 * node from before them), and an app on it whose requests are counted by name.
 */
const overNode = async (older = false, maxFrameBytes?: number) => {
  const node = await BrokerNode.start({
    port: 0,
    log: () => {},
    ...(maxFrameBytes === undefined ? {} : { maxFrameBytes }),
  });
  if (older) {
    const withoutBatches = Object.create(node) as BrokerNode;
    withoutBatches.serve = (group, handlers) => {
      const { startAll: _s, completeAll: _c, sendEach: _e, ...rest } = group as Record<string, AnyOperation>;
      const { startAll: _hs, completeAll: _hc, sendEach: _he, ...served } = handlers as Record<string, unknown>;
      node.serve(rest, served as never);
    };
    serveResults(withoutBatches);
  } else serveResults(node);
  const app = createApp({ broker: node.url, log: () => {} });
  const client = (app.results as RemoteResultStore).client;
  const sent = new Map<string, number>();
  const call = client.call.bind(client);
  client.call = (op, args, batched) => {
    sent.set(op.name, (sent.get(op.name) ?? 0) + 1);
    return call(op, args, batched);
  };
  const callWith = client.callWith.bind(client);
  client.callWith = (op, makeArgs) => {
    sent.set(op.name, (sent.get(op.name) ?? 0) + 1);
    return callWith(op, makeArgs);
  };
  const close = async () => {
    await app.close();
    await node.stop();
  };
  return { app, client, sent, close };
};

describe("a worker's starts and completions over a broker node", () => {
  it("go to the node as one request for the starts of a turn and one for their completions", async () => {
    const { app, sent, close } = await overNode();
    try {
      const add = app.task("add", (x: number, y: number) => x + y);
      await app.broker.declareQueue("celery");
      const results = await add.delayMany(Array.from({ length: 50 }, (_, i) => [i, 1] as [number, number]));
      await app.worker({ concurrency: 50 }).start();
      const values = await Promise.all(results.map((r) => r.get({ timeout: 5_000 })));
      assert.deepEqual(
        values,
        Array.from({ length: 50 }, (_, i) => i + 1),
      );
      assert.equal(await results[7].state(), "SUCCESS");
      const batches = (sent.get("results.startAll") ?? 0) + (sent.get("results.completeAll") ?? 0);
      assert.ok(batches > 0, `no batched request: ${JSON.stringify([...sent])}`);
      const singles = (sent.get("results.start") ?? 0) + (sent.get("results.complete") ?? 0);
      assert.ok(batches + singles < 100, `${batches} batches and ${singles} single requests for 50 tasks`);
    } finally {
      await close();
    }
  });

  it("each start and completion sent on its own to a node without the batched operations, with the same results", async () => {
    const { app, sent, close } = await overNode(true);
    try {
      const add = app.task("add", (x: number, y: number) => x + y);
      const fail = app.task("fail", () => {
        throw new Error("no");
      });
      await app.broker.declareQueue("celery");
      const results = await add.delayMany(Array.from({ length: 20 }, (_, i) => [i, 1] as [number, number]));
      const failed = await fail.delay();
      await app.worker({ concurrency: 20 }).start();
      assert.deepEqual(
        await Promise.all(results.map((r) => r.get({ timeout: 5_000 }))),
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
      await assert.rejects(failed.get({ timeout: 5_000 }), /no/);
      assert.equal(sent.get("results.start"), 21);
      assert.equal(sent.get("results.complete"), 21);
    } finally {
      await close();
    }
  });

  it("go on their own when a turn's completions would not fit in one of the node's frames", async () => {
    const { app, sent, close } = await overNode(false, 64 * 1024);
    try {
      const big = app.task("big", (n: number) => `${n}:${"x".repeat(3_000)}`);
      await app.broker.declareQueue("celery");
      const results = await big.delayMany(Array.from({ length: 40 }, (_, i) => [i] as [number]));
      await app.worker({ concurrency: 40 }).start();
      const values = await Promise.all(results.map((r) => r.get({ timeout: 5_000 })));
      assert.deepEqual(
        values.map((value) => value.slice(0, value.indexOf(":"))),
        Array.from({ length: 40 }, (_, i) => String(i)),
      );
      assert.ok((sent.get("results.complete") ?? 0) > 0, `no completion on its own: ${JSON.stringify([...sent])}`);
    } finally {
      await close();
    }
  });

  it("answers each entry as a start or complete of its own would: false for a task already final", async () => {
    const { client, close } = await overNode();
    try {
      const value = new Uint8Array([0xc3]);
      assert.deepEqual(
        await client.call(ops.startAll, [
          [
            ["t-1", "add", null],
            ["t-2", "add", { retries: 1 }],
          ],
        ]),
        [true, true],
      );
      assert.deepEqual(
        await client.call(ops.completeAll, [
          [
            ["t-1", "add", { state: "SUCCESS", value }],
            ["t-1", "add", { state: "SUCCESS", value }],
          ],
        ]),
        [true, false],
      );
      assert.deepEqual(
        await client.call(ops.startAll, [
          [
            ["t-1", "add", null],
            ["t-3", "add", null],
          ],
        ]),
        [false, true],
      );
      assert.deepEqual(await client.call(ops.startAll, [[]]), []);
    } finally {
      await close();
    }
  });

  it("refuses a malformed batch with a ProtocolError naming the bad entry, and records none of it", async () => {
    const { client, app, close } = await overNode();
    try {
      const value = new Uint8Array([0xc3]);
      const bad = [
        ["t-1", "add", { state: "SUCCESS", value }],
        ["", "add", { state: "SUCCESS", value }],
      ];
      await assert.rejects(
        client.call(ops.completeAll, [bad as never]),
        (error: unknown) =>
          error instanceof ProtocolError &&
          /completions\[1\] its task id must be a non-empty string/.test(error.reason),
      );
      assert.equal(await app.results.get("t-1"), undefined);
      await assert.rejects(
        client.call(ops.startAll, [[["t-2", "add", "soon"]] as never]),
        (error: unknown) =>
          error instanceof ProtocolError && /starts\[0\] its state details must be a map or nil/.test(error.reason),
      );
      await assert.rejects(
        client.call(ops.startAll, ["t-2" as never]),
        (error: unknown) => error instanceof ProtocolError && /starts must be an array/.test(error.reason),
      );
      await assert.rejects(
        client.call(ops.completeAll, [[["t-4", "add"]] as never]),
        (error: unknown) =>
          error instanceof ProtocolError &&
          /completions\[0\] must be \[task id, task name, outcome, delivery to acknowledge\?\]/.test(error.reason),
      );
    } finally {
      await close();
    }
  });
});

describe("an app's sends over a broker node", () => {
  it("go to the node as one request for the sends of a run, each answered with its own task", async () => {
    const { app, sent, close } = await overNode();
    try {
      const add = app.task("add", (x: number, y: number) => x + y);
      await app.broker.declareQueue("celery");
      const results = await Promise.all(Array.from({ length: 30 }, (_, i) => add.delay(i, 1)));
      assert.equal(new Set(results.map((r) => r.id)).size, 30);
      assert.equal(sent.get("results.sendEach"), 1, JSON.stringify([...sent]));
      assert.equal(sent.get("results.send"), undefined);
      assert.equal(await results[3].state(), "PENDING");
      await app.worker({ concurrency: 10 }).start();
      assert.deepEqual(
        await Promise.all(results.map((r) => r.get({ timeout: 5_000 }))),
        Array.from({ length: 30 }, (_, i) => i + 1),
      );
    } finally {
      await close();
    }
  });

  it("fail one at a time: a refused send rejects as it would alone, and the others of its run are published", async () => {
    const { app, sent, close } = await overNode();
    try {
      const add = app.task("add", (x: number, y: number) => x + y);
      await app.broker.declareQueue("celery");
      await app.broker.declareExchange("nowhere", "direct");
      const settled = await Promise.allSettled([
        add.delay(1, 1),
        add.applyAsync([2, 2], { exchange: "nowhere", routingKey: "nobody" }),
        add.delay(3, 3),
      ]);
      assert.equal(sent.get("results.sendEach"), 1);
      assert.equal(settled[1].status, "rejected");
      assert.ok((settled[1] as PromiseRejectedResult).reason instanceof UnroutableError);
      const alone = await add.applyAsync([2, 2], { exchange: "nowhere", routingKey: "nobody" }).then(
        () => undefined,
        (error: unknown) => error,
      );
      const refusal = (settled[1] as PromiseRejectedResult).reason as Error & { _tag: string };
      assert.equal(refusal._tag, (alone as { _tag: string })._tag);
      assert.equal(refusal.message, (alone as Error).message);
      await app.worker({ concurrency: 2 }).start();
      const fine = settled.filter((one) => one.status === "fulfilled").map((one) => one.value);
      assert.deepEqual(await Promise.all(fine.map((r) => r.get({ timeout: 5_000 }))), [2, 6]);
    } finally {
      await close();
    }
  });

  it("are not overtaken by a request made after them in the same run", async () => {
    const { app, close } = await overNode();
    try {
      const ran: number[] = [];
      const note = app.task("note", (n: number) => {
        ran.push(n);
      });
      await app.broker.declareQueue("celery");
      const first = note.delay(1);
      const then = note.delayMany([[2], [3]]);
      await Promise.all([first, then]);
      await app.worker({ concurrency: 1 }).start();
      const deadline = Date.now() + 5_000;
      while (ran.length < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.deepEqual(ran, [1, 2, 3]);
    } finally {
      await close();
    }
  });

  it("each go on its own to a node without sendEach, with the same results", async () => {
    const { app, sent, close } = await overNode(true);
    try {
      const add = app.task("add", (x: number, y: number) => x + y);
      await app.broker.declareQueue("celery");
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => add.delay(i, 1)));
      assert.ok((sent.get("results.sendEach") ?? 0) <= 1);
      assert.equal(sent.get("results.send"), 10);
      await app.worker({ concurrency: 10 }).start();
      assert.deepEqual(
        await Promise.all(results.map((r) => r.get({ timeout: 5_000 }))),
        Array.from({ length: 10 }, (_, i) => i + 1),
      );
    } finally {
      await close();
    }
  });
});
