import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BrokerNode } from "../broker/node/node-server.ts";
import { chain, chord, group } from "../dsl/combinators.ts";
import { createApp } from "./app.ts";
import { RemoteTaskError } from "./errors.ts";
import { serveResults } from "./results/result-service.ts";
import { deferred } from "./test-support.ts";

/** A node serving results, and a factory of apps connected to it (each stands for a separate process). */
const setup = async () => {
  const node = await BrokerNode.start({ port: 0, log: () => {} });
  serveResults(node);
  const apps: ReturnType<typeof createApp>[] = [];
  const connect = () => {
    const app = createApp({ broker: node.url, log: () => {} });
    apps.push(app);
    const add = app.task("add", (x: number, y: number) => x + y);
    const tsum = app.task("tsum", (xs: number[]) => xs.reduce((a, b) => a + b, 0));
    const fail = app.task("fail", () => {
      throw new Error("boom over tcp");
    });
    return { app, add, tsum, fail };
  };
  const close = async () => {
    for (const app of apps) await app.close();
    await node.stop();
  };
  return { node, connect, close };
};

describe("the runtime over a broker node", () => {
  it("runs tasks and canvases sent by one app on the worker of another, results readable from both", async () => {
    const { connect, close } = await setup();
    const producer = connect();
    const workerSide = connect();
    await workerSide.app.worker({ concurrency: 4 }).start();

    const r = await producer.add.delay(2, 2);
    assert.equal(await r.get({ timeout: 5_000 }), 4);
    assert.equal(await workerSide.app.result(r.id).get({ timeout: 5_000 }), 4);
    assert.equal(
      await (await chain(producer.add.s(2, 2), producer.add.s(4), producer.add.s(8)).apply()).get({ timeout: 5_000 }),
      16,
    );
    assert.deepEqual(
      await (await group(producer.add.s(1, 1), producer.add.s(2, 2)).apply()).get({ timeout: 5_000 }),
      [2, 4],
    );
    assert.equal(
      await (await chord(group(producer.add.s(1, 1), producer.add.s(2, 2)), producer.tsum.s()).apply()).get({
        timeout: 5_000,
      }),
      6,
    );
    const failed = await producer.fail.delay();
    await assert.rejects(
      failed.get({ timeout: 5_000 }),
      (e: unknown) => e instanceof RemoteTaskError && /boom over tcp/.test(e.message),
    );
    assert.equal(await producer.app.result("00000000-0000-4000-8000-000000000000").state(), "UNKNOWN");
    await close();
  });

  it("revokes a queued task from another process and the worker never runs it", async () => {
    const { connect, close } = await setup();
    const producer = connect();
    const ran: number[] = [];
    const workerSide = connect();
    workerSide.app.task("record", (n: number) => ran.push(n));
    const record = producer.app.task("record", (n: number) => ran.push(n));
    const r = await record.delay(1);
    await r.revoke();
    await workerSide.app.worker().start();
    await (await record.delay(2)).get({ timeout: 5_000 });
    assert.deepEqual(ran, [2]);
    assert.equal(await r.state(), "REVOKED");
    await close();
  });

  it("hands a task whose worker stops mid-task to another worker, which completes it", async () => {
    const { connect, close } = await setup();
    const producer = connect();
    const first = connect();
    const second = connect();
    const started = deferred();
    let runs = 0;
    for (const side of [first, second]) {
      side.app.task("slow", async () => {
        runs++;
        if (runs === 1) {
          started.resolve();
          return new Promise<string>(() => {});
        }
        return "finished by the second worker";
      });
    }
    const slow = producer.app.task("slow", async () => "unused");
    const firstWorker = first.app.worker({ name: "first" });
    await firstWorker.start();
    const r = await slow.delay();
    await started.promise;
    await firstWorker.stop({ timeout: 10 });
    await second.app.worker({ name: "second" }).start();
    assert.equal(await r.get({ timeout: 5_000 }), "finished by the second worker");
    await close();
  });
});

describe("an app on a node that keeps no results", () => {
  it("is told so when it sends, with the node that would keep them", async (t) => {
    const node = await BrokerNode.start({ port: 0, log: () => {} });
    t.after(() => node.stop());
    const app = createApp({ broker: node.url, log: () => {} });
    t.after(() => app.close());
    const add = app.task("add", (x: number, y: number) => x + y);
    await assert.rejects(
      add.delay(1, 2),
      /this node does not serve the 'results' operations \(a node started by `celerity broker` or startFullNode serves them all\)/,
    );
  });
});
