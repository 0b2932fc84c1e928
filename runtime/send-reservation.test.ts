import assert from "node:assert/strict";
import { describe, it, type TestContext } from "node:test";
import { BrokerNode } from "../broker/node/node-server.ts";
import { dropPrefix, redisSkipReason, testPrefix, TEST_REDIS_URL } from "../broker/redis/redis-test-support.ts";
import { createApp, type App } from "./app.ts";
import { serveResults } from "./results/result-service.ts";
import { SendOptionError } from "./send-reservation.ts";
import { TimeoutError } from "./errors.ts";
import { Codec } from "../broker/codec.ts";

/**
 * Two apps sharing a broker and result store (a producer and a worker side,
 * as two processes would), with a task that counts its runs. The worker runs
 * one task at a time, so a marker sent last finishes after any duplicate.
 */
type Setup = (t: TestContext) => Promise<{ producer: App; worker: App }>;

const embedded: Setup = async (t) => {
  const app = createApp({ log: () => {} });
  t.after(() => app.close());
  return { producer: app, worker: app };
};

const overNode: Setup = async (t) => {
  const node = await BrokerNode.start({ port: 0, log: () => {} });
  serveResults(node);
  const producer = createApp({ broker: node.url, log: () => {} });
  const worker = createApp({ broker: node.url, log: () => {} });
  t.after(async () => {
    await producer.close();
    await worker.close();
    await node.stop();
  });
  return { producer, worker };
};

const overRedis: Setup = async (t) => {
  const prefix = testPrefix("dedupe");
  const url = `${TEST_REDIS_URL}?prefix=${prefix.slice(0, -1)}`;
  const producer = createApp({ broker: url, log: () => {} });
  const worker = createApp({ broker: url, log: () => {} });
  t.after(async () => {
    await producer.close();
    await worker.close();
    await dropPrefix(prefix);
  });
  return { producer, worker };
};

const counting = async (t: TestContext, setup: Setup) => {
  const { producer, worker } = await setup(t);
  const runs: string[] = [];
  for (const app of new Set([producer, worker])) {
    app.task("charge", function (order: string) {
      runs.push(`${this.id}:${order}`);
      return `charged ${order}`;
    });
    app.task("marker", () => "done");
  }
  await worker.worker({ concurrency: 1 }).start();
  /** Wait until every task sent so far has run: the marker is consumed after them. */
  const drained = async () => {
    const marker = await producer.sendTask("marker", []);
    assert.equal(await marker.get({ timeout: 10_000 }), "done");
  };
  return { producer, runs, drained };
};

const redisSkip = await redisSkipReason();

for (const [name, setup, skip] of [
  ["embedded broker", embedded, false],
  ["broker node", overNode, false],
  ["Redis", overRedis, redisSkip],
] as const) {
  describe(`chosen task ids and de-duplication over the ${name}`, { skip }, () => {
    it("runs a task once when 100 concurrent sends share a de-duplication key, and gives every sender its handle", async (t) => {
      const { producer, runs, drained } = await counting(t, setup);
      const handles = await Promise.all(
        Array.from({ length: 100 }, () =>
          producer.sendTask("charge", ["order-1"], { dedupe: { key: "charge:order-1", ttl: 60_000 } }),
        ),
      );
      const ids = new Set(handles.map((handle) => handle.id));
      assert.equal(ids.size, 1, `100 sends got ${ids.size} different task ids`);
      assert.equal(await handles[99].get({ timeout: 10_000 }), "charged order-1");
      await drained();
      assert.deepEqual(runs, [`${handles[0].id}:order-1`]);
    });

    it("runs sends with different de-duplication keys each", async (t) => {
      const { producer, runs, drained } = await counting(t, setup);
      const a = await producer.sendTask("charge", ["a"], { dedupe: { key: "charge:a", ttl: 60_000 } });
      const b = await producer.sendTask("charge", ["b"], { dedupe: { key: "charge:b", ttl: 60_000 } });
      assert.notEqual(a.id, b.id);
      await drained();
      assert.equal(runs.length, 2);
    });

    it("runs a task under the id its caller chose, and a second send of that id returns the first's handle without running", async (t) => {
      const { producer, runs, drained } = await counting(t, setup);
      const id = `invoice-${Math.random().toString(36).slice(2)}`;
      const first = await producer.sendTask("charge", ["order-2"], { taskId: id });
      assert.equal(first.id, id);
      assert.equal(await first.get({ timeout: 10_000 }), "charged order-2");
      const concurrent = await Promise.all(
        Array.from({ length: 20 }, () => producer.sendTask("charge", ["other"], { taskId: id })),
      );
      for (const handle of concurrent) assert.equal(handle.id, id);
      await drained();
      assert.deepEqual(runs, [`${id}:order-2`]);
      assert.equal(await producer.result(id).get({ timeout: 1_000 }), "charged order-2");
    });
  });
}

describe("bad send options", () => {
  it("refuses an empty or overlong id, an empty key and a window that is not a positive number, naming the option, and sends nothing", async (t) => {
    const { producer, runs, drained } = await counting(t, embedded);
    const bad: [object, RegExp][] = [
      [{ taskId: "" }, /option 'taskId' must be a non-empty string/],
      [{ taskId: 42 }, /option 'taskId' must be a non-empty string \(got number\)/],
      [{ taskId: "x".repeat(600) }, /option 'taskId' is 600 characters long; at most 512/],
      [{ dedupe: { key: "", ttl: 1_000 } }, /option 'dedupe.key' must be a non-empty string/],
      [{ dedupe: { key: "k", ttl: 0 } }, /option 'dedupe.ttl' must be a positive number of milliseconds \(got 0\)/],
      [{ dedupe: { key: "k", ttl: Number.NaN } }, /option 'dedupe.ttl' must be a positive number/],
      [{ dedupe: "k" }, /option 'dedupe' must be \{ key, ttl \}/],
    ];
    for (const [options, message] of bad) {
      await assert.rejects(
        producer.sendTask("charge", ["x"], options as never),
        (error: unknown) => error instanceof SendOptionError && message.test(error.message),
      );
    }
    // Nothing was taken either: the same key and id work once fixed.
    const fixed = await producer.sendTask("charge", ["x"], { taskId: "fixed-id", dedupe: { key: "k", ttl: 1_000 } });
    assert.equal(await fixed.get({ timeout: 10_000 }), "charged x");
    await drained();
    assert.deepEqual(runs, ["fixed-id:x"]);
  });

  it("refuses arguments that cannot be sent before taking the de-duplication key", async (t) => {
    const { producer, runs, drained } = await counting(t, embedded);
    await assert.rejects(
      producer.sendTask("charge", [() => 1], { dedupe: { key: "fn", ttl: 60_000 } }),
      /argument 1 of task 'charge'/,
    );
    const handle = await producer.sendTask("charge", ["ok"], { dedupe: { key: "fn", ttl: 60_000 } });
    assert.equal(await handle.get({ timeout: 10_000 }), "charged ok");
    await drained();
    assert.equal(runs.length, 1);
  });
});

describe("a send that finds its key held", () => {
  it("gets a handle that waits for the holder's task even before the holder has recorded it", async (t) => {
    const { producer } = await counting(t, embedded);
    // Another sender reserved the key and has not yet recorded or published its task.
    await producer.results.reserve("dedupe:slow-holder", "holder-task", 60_000);
    const handle = await producer.sendTask("charge", ["x"], { dedupe: { key: "slow-holder", ttl: 60_000 } });
    assert.equal(handle.id, "holder-task");
    await assert.rejects(handle.get({ timeout: 50 }), (error: unknown) => error instanceof TimeoutError);
    const waiting = handle.get({ timeout: 5_000 });
    await producer.results.setState("holder-task", "charge", "PENDING");
    await producer.results.complete("holder-task", "charge", {
      state: "SUCCESS",
      value: new Codec().encode("charged by the holder"),
    });
    assert.equal(await waiting, "charged by the holder");
  });
});
