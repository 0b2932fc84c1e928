import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { dropPrefix, redisSkipReason, testPrefix, TEST_REDIS_URL } from "../broker/redis/redis-test-support.ts";
import { RedisTransport } from "../broker/redis/redis-transport.ts";
import { chain, chord, group } from "../dsl/combinators.ts";
import { createApp, type App } from "./app.ts";
import { RemoteTaskError } from "./errors.ts";
import { PostgresResultStore } from "./results/postgres-result-store.ts";
import { dropSchema, postgresSkipReason, testSchema, TEST_POSTGRES_URL } from "./results/postgres-test-support.ts";
import { deferred } from "./test-support.ts";

/** Apps on one Redis prefix (each stands for a separate process), closed and cleaned up by `close`. */
const setup = () => {
  const prefix = testPrefix("app");
  const url = `${TEST_REDIS_URL}?prefix=${prefix.slice(0, -1)}`;
  const apps: App[] = [];
  const connect = (results?: App["results"]) => {
    const app = createApp({ broker: url, ...(results !== undefined ? { results } : {}), log: () => {} });
    apps.push(app);
    const add = app.task("add", (x: number, y: number) => x + y);
    const tsum = app.task("tsum", (xs: number[]) => xs.reduce((a, b) => a + b, 0));
    const fail = app.task("fail", () => {
      throw new Error("boom over redis");
    });
    return { app, add, tsum, fail };
  };
  const close = async () => {
    for (const app of apps) await app.close();
    await dropPrefix(prefix);
  };
  return { url, connect, close };
};

const redisSkip = await redisSkipReason();
const postgresSkip = await postgresSkipReason();

describe("the runtime over Redis", { skip: redisSkip }, () => {
  it("runs tasks and canvases sent by one app on the worker of another, results readable from both", async (t) => {
    const { connect, close } = setup();
    t.after(close);
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
      (e: unknown) => e instanceof RemoteTaskError && /boom over redis/.test(e.message),
    );
    assert.equal(await producer.app.result("00000000-0000-4000-8000-000000000000").state(), "UNKNOWN");
  });

  it("holds a task sent with a countdown until it is due", async (t) => {
    const { connect, close } = setup();
    t.after(close);
    const producer = connect();
    const workerSide = connect();
    await workerSide.app.worker().start();
    const sent = Date.now();
    const r = await producer.add.applyAsync([1, 2], { countdown: 300 });
    assert.equal(await r.get({ timeout: 5_000 }), 3);
    assert.ok(Date.now() - sent >= 300, `ran ${Date.now() - sent} ms after sending`);
  });

  it("revokes a queued task from another process, and a worker started later never runs it", async (t) => {
    const { connect, close } = setup();
    t.after(close);
    const producer = connect();
    const ran: number[] = [];
    const record = producer.app.task("record", (n: number) => ran.push(n));
    const r = await record.delay(1);
    await r.revoke();
    const workerSide = connect();
    workerSide.app.task("record", (n: number) => ran.push(n));
    await workerSide.app.worker().start();
    await (await record.delay(2)).get({ timeout: 5_000 });
    assert.deepEqual(ran, [2]);
    assert.equal(await r.state(), "REVOKED");
  });

  it("hands a task whose worker stops mid-task to another worker, which completes it", async (t) => {
    const { connect, close } = setup();
    t.after(close);
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
  });

  it("keeps a global rate limit across workers of different processes, with the bucket in Redis", async (t) => {
    const { connect, close } = setup();
    t.after(close);
    const producer = connect();
    const sides = [connect(), connect()];
    const ranAt: number[] = [];
    for (const side of sides)
      side.app.task("limited", () => ranAt.push(Date.now()), {
        rateLimit: { rate: "10/s", burst: 1, scope: "global" },
      });
    const limited = producer.app.task("limited", () => 0, { rateLimit: { rate: "10/s", burst: 1, scope: "global" } });
    for (const side of sides) await side.app.worker({ concurrency: 4 }).start();
    const results = await Promise.all(Array.from({ length: 6 }, () => limited.delay()));
    for (const r of results) await r.get({ timeout: 5_000 });
    ranAt.sort((a, b) => a - b);
    // Six tasks at 10/s with a burst of one: the first at once, the other five one token (100 ms) apart.
    assert.ok(ranAt[5] - ranAt[0] >= 450, `six tasks ran within ${ranAt[5] - ranAt[0]} ms`);
  });

  it("records a run-time rate-limit change in Redis, where processes that start later read it", async (t) => {
    const { connect, close } = setup();
    t.after(close);
    const a = connect();
    const b = connect();
    await a.app.control.rateLimit("add", "1/m");
    const deadline = Date.now() + 2_000;
    const broker = b.app.broker;
    assert.ok(broker instanceof RedisTransport);
    for (;;) {
      const held: string | null = await broker.redis.hget(`${broker.prefix}rate-limits`, "add");
      if (held === "1 60000 1") break;
      if (Date.now() > deadline) assert.fail(`the change never reached Redis (held ${held})`);
      await new Promise((resolve) => setImmediate(resolve));
    }
  });

  it("keeps results in PostgreSQL with tasks on Redis", { skip: postgresSkip }, async (t) => {
    const schema = testSchema();
    const { connect, close } = setup();
    const stores: PostgresResultStore[] = [];
    t.after(async () => {
      await close();
      await dropSchema(schema);
    });
    const open = () => {
      const store = new PostgresResultStore(`${TEST_POSTGRES_URL}?schema=${schema}`, { poolSize: 3 });
      stores.push(store);
      return store;
    };
    const producer = connect(open());
    const workerSide = connect(open());
    await workerSide.app.worker({ concurrency: 4 }).start();
    assert.equal(
      await (await chord(group(producer.add.s(1, 1), producer.add.s(2, 2)), producer.tsum.s()).apply()).get({
        timeout: 5_000,
      }),
      6,
    );
    const r = await producer.add.delay(20, 22);
    assert.equal(await r.get({ timeout: 5_000 }), 42);
    const row = await stores[0].get(r.id);
    assert.equal(row?.state, "SUCCESS");
  });
});

after(() => {});
