/**
 * The runtime on RabbitMQ: apps standing for separate processes share a
 * vhost (the broker) and a broker node's result store (the results), as
 * producers and workers on several machines would.
 */
import assert from "node:assert/strict";
import { after, describe, it, type TestContext } from "node:test";
import { testVhost } from "../broker/amqp/amqp-test-broker.ts";
import { NodeClient } from "../broker/node/client/node-client.ts";
import { BrokerNode } from "../broker/node/node-server.ts";
import { createApp, type App } from "./app.ts";
import { RemoteResultStore } from "./results/remote-result-store.ts";
import { serveRateLimits } from "./rate-limit/node-rate-limit-service.ts";
import { serveResults } from "./results/result-service.ts";
import { dropPrefix, redisSkipReason, TEST_REDIS_URL, testPrefix } from "../broker/redis/redis-test-support.ts";
import { PostgresResultStore } from "./results/postgres-result-store.ts";
import { dropSchema, postgresSkipReason, TEST_POSTGRES_URL, testSchema } from "./results/postgres-test-support.ts";
import { RedisResultStore } from "./results/redis-result-store.ts";
import type { ResultStore } from "./results/result-store.ts";
import { crossProcessConformance } from "./cross-process-conformance.ts";

const server = await testVhost("runtime");

if ("skip" in server) {
  it("runs the runtime on RabbitMQ", { skip: server.skip }, () => {});
} else {
  after(() => server.dispose());

  /** A node serving results, and apps on RabbitMQ that share it; everything is closed when the test ends. */
  const setup = async (t: TestContext) => {
    const node = await BrokerNode.start({ port: 0, log: () => {} });
    serveResults(node);
    const apps: App[] = [];
    const clients: NodeClient[] = [];
    t.after(async () => {
      for (const app of apps) await app.close();
      for (const client of clients) client.close();
      await node.stop();
    });
    return (): App => {
      const client = new NodeClient(node.url, { name: "results" });
      void client.start().catch(() => {});
      clients.push(client);
      const app = createApp({ broker: server.url, results: new RemoteResultStore(client), log: () => {} });
      apps.push(app);
      return app;
    };
  };

  const arithmetic = (app: App) => ({
    add: app.task("add", (x: number, y: number) => x + y),
    tsum: app.task("tsum", (xs: number[]) => xs.reduce((a, b) => a + b, 0)),
  });

  crossProcessConformance("RabbitMQ", setup);

  describe("the runtime over RabbitMQ", () => {
    it("runs a task with a countdown no earlier than asked, and retries with a countdown", async (t) => {
      const connect = await setup(t);
      const producer = connect();
      const worker = connect();
      let attempts = 0;
      const flaky = function (this: { retry(options: { countdown: number }): never }) {
        attempts++;
        if (attempts < 3) this.retry({ countdown: 100 });
        return `done after ${attempts}`;
      };
      worker.task("flaky", flaky);
      const sent = producer.task("flaky", flaky);
      const { add } = arithmetic(producer);
      arithmetic(worker);
      await worker.worker().start();
      const before = Date.now();
      const later = await add.applyAsync([1, 2], { countdown: 300 });
      assert.equal(await later.get({ timeout: 10_000 }), 3);
      assert.ok(Date.now() - before >= 300, `ran ${Date.now() - before} ms after sending, before its countdown`);
      assert.equal(await (await sent.delay()).get({ timeout: 10_000 }), "done after 3");
    });
  });

  const redisSkip = await redisSkipReason();
  const postgresSkip = await postgresSkipReason();

  /** Result stores every process shares, each opened anew per app (as each process would) and cleaned up after. */
  const sharedStores: {
    readonly name: string;
    readonly skip: string | false;
    readonly open: (t: TestContext) => Promise<() => ResultStore>;
  }[] = [
    {
      name: "a broker node",
      skip: false,
      async open(t) {
        const node = await BrokerNode.start({ port: 0, log: () => {} });
        serveResults(node);
        serveRateLimits(node);
        const clients: NodeClient[] = [];
        t.after(async () => {
          for (const client of clients) client.close();
          await node.stop();
        });
        return () => {
          const client = new NodeClient(node.url, { name: "results" });
          void client.start().catch(() => {});
          clients.push(client);
          return new RemoteResultStore(client);
        };
      },
    },
    {
      name: "Redis",
      skip: redisSkip,
      async open(t) {
        const prefix = testPrefix("amqp-rates");
        t.after(() => dropPrefix(prefix));
        return () => new RedisResultStore(TEST_REDIS_URL, { prefix });
      },
    },
    {
      name: "PostgreSQL",
      skip: postgresSkip,
      async open(t) {
        const schema = testSchema();
        t.after(() => dropSchema(schema));
        return () => new PostgresResultStore(`${TEST_POSTGRES_URL}?schema=${schema}`, { poolSize: 3 });
      },
    },
  ];

  describe("global rate limits on RabbitMQ, kept in the shared result store", () => {
    for (const store of sharedStores) {
      it(`holds workers of different processes to one limit, with results on ${store.name}`, {
        skip: store.skip,
      }, async (t) => {
        const openStore = await store.open(t);
        const apps: App[] = [];
        t.after(async () => {
          for (const app of apps) await app.close();
        });
        const connect = () => {
          const app = createApp({ broker: server.url, results: openStore(), log: () => {} });
          apps.push(app);
          return app;
        };
        const producer = connect();
        const sides = [connect(), connect()];
        const ranAt: number[] = [];
        const limit = { rate: "10/s", burst: 1, scope: "global" } as const;
        for (const side of sides) side.task("limited", () => ranAt.push(Date.now()), { rateLimit: limit });
        const limited = producer.task("limited", () => 0, { rateLimit: limit });
        for (const side of sides) await side.worker({ concurrency: 4 }).start();
        const results = await Promise.all(Array.from({ length: 6 }, () => limited.delay()));
        for (const r of results) await r.get({ timeout: 20_000 });
        ranAt.sort((a, b) => a - b);
        // Six tasks at 10/s with a burst of one: the first at once, the other five a token (100 ms) apart.
        assert.ok(ranAt[5] - ranAt[0] >= 450, `six tasks ran within ${ranAt[5] - ranAt[0]} ms`);

        // A change made in one process reaches the others: at 1/m, at most one of three more runs in a second (the
        // token earned under the old limit while the change was on its way); at 10/s all three would, within 300 ms.
        await producer.control.rateLimit("limited", { rate: "1/m", burst: 1 });
        const before = ranAt.length;
        const more = await Promise.all(Array.from({ length: 3 }, () => limited.delay()));
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        assert.ok(ranAt.length - before <= 1, `${ranAt.length - before} of three ran under a limit of one a minute`);
        for (const r of more) await r.revoke();
      });
    }

    it("says once that limits are per process when no shared store holds them", async (t) => {
      const logs: string[] = [];
      const app = createApp({ broker: server.url, log: (line) => logs.push(line) });
      t.after(() => app.close());
      const limited = app.task("limited-alone", () => 1, { rateLimit: { rate: "100/s", scope: "global" } });
      await app.worker({ concurrency: 2 }).start();
      for (const r of await Promise.all(Array.from({ length: 3 }, () => limited.delay())))
        await r.get({ timeout: 10_000 });
      const said = logs.filter((line) => /global limits are kept in each process/.test(line));
      assert.equal(said.length, 1, logs.join("\n"));
      assert.match(said[0], /give results a redis:\/\/, postgres:\/\/ or celerity:\/\/ url/);
    });
  });
}
