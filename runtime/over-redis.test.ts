import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { dropPrefix, redisSkipReason, testPrefix, TEST_REDIS_URL } from "../broker/redis/redis-test-support.ts";
import { RedisTransport } from "../broker/redis/redis-transport.ts";
import { chord, group } from "../dsl/combinators.ts";
import { createApp, type App } from "./app.ts";
import { PostgresResultStore } from "./results/postgres-result-store.ts";
import { dropSchema, postgresSkipReason, testSchema, TEST_POSTGRES_URL } from "./results/postgres-test-support.ts";
import { crossProcessConformance } from "./cross-process-conformance.ts";

/** Apps on one Redis prefix (each stands for a separate process), closed and cleaned up by `close`. */
const setup = () => {
  const prefix = testPrefix("app");
  const url = `${TEST_REDIS_URL}?prefix=${prefix.slice(0, -1)}`;
  const apps: App[] = [];
  const open = (results?: App["results"]): App => {
    const app = createApp({ broker: url, ...(results !== undefined ? { results } : {}), log: () => {} });
    apps.push(app);
    return app;
  };
  const connect = (results?: App["results"]) => {
    const app = open(results);
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
  return { url, open, connect, close };
};

const redisSkip = await redisSkipReason();
const postgresSkip = await postgresSkipReason();

if (redisSkip) it("runs the runtime across processes over Redis", { skip: redisSkip }, () => {});
else
  crossProcessConformance("Redis", async (t) => {
    const { open, close } = setup();
    t.after(close);
    return () => open();
  });

describe("the runtime over Redis", { skip: redisSkip }, () => {
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
