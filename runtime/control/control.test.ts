import assert from "node:assert/strict";
import { describe, it, type TestContext } from "node:test";
import { BrokerNode } from "../../broker/node/node-server.ts";
import { EmbeddedBroker } from "../../broker/embedded/embedded-broker.ts";
import { createApp, type App, type AppOptions } from "../app.ts";
import { serveResults } from "../results/result-service.ts";
import { MemoryResultStore } from "../results/result-store.ts";
import { deferred, eventually } from "../test-support.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeKeyPair } from "../signing/signing-keys.ts";
import { testVhost } from "../../broker/amqp/amqp-test-broker.ts";
import { dropPrefix, redisSkipReason, testPrefix, TEST_REDIS_URL } from "../../broker/redis/redis-test-support.ts";

const WAIT_MS = 5_000;

const embeddedApp = (t: TestContext, options: AppOptions = {}): App => {
  const app = createApp({ log: () => {}, ...options });
  t.after(() => app.close());
  return app;
};

const nodeApp = async (t: TestContext): Promise<App> => {
  const node = await BrokerNode.start({ port: 0, log: () => {} });
  serveResults(node, new MemoryResultStore());
  const app = createApp({ broker: node.url, log: () => {} });
  t.after(async () => {
    await app.close();
    await node.stop();
  });
  return app;
};

/** A task that runs until the test lets it go (or it is aborted). */
const blocking = (app: App, name = "block") => {
  const gate = deferred();
  const started: string[] = [];
  const task = app.task(name, async function (n: number) {
    started.push(this.id);
    await new Promise<void>((resolve, reject) => {
      this.signal.addEventListener("abort", () => reject(this.signal.reason));
      void gate.promise.then(resolve);
    });
    return n;
  });
  return { task, release: gate.resolve, started };
};

for (const [transport, make] of [
  ["the embedded broker", async (t: TestContext) => embeddedApp(t)],
  ["a broker node", nodeApp],
] as const) {
  describe(`remote control over ${transport}`, () => {
    it("gathers a ping from every worker, and only from the ones named", async (t) => {
      const app = await make(t);
      await app.worker({ name: "a@test" }).start();
      await app.worker({ name: "b@test" }).start();
      assert.deepEqual(await app.inspect.ping(), { "a@test": "pong", "b@test": "pong" });
      assert.deepEqual(await app.inspect.ping({ destination: "b@test", timeout: WAIT_MS }), { "b@test": "pong" });
    });

    it("answers a destination that names no worker with nothing, once the timeout has passed", async (t) => {
      const app = await make(t);
      await app.worker({ name: "a@test" }).start();
      const t0 = Date.now();
      assert.deepEqual(await app.inspect.ping({ destination: "nobody@nowhere", timeout: 200 }), {});
      const waited = Date.now() - t0;
      assert.ok(waited >= 190 && waited < 2_000, `waited ${waited} ms for a 200 ms timeout`);
    });

    it("shows the tasks a worker runs and the ones it holds for a free slot", async (t) => {
      const app = await make(t);
      const { task, release, started } = blocking(app);
      await app.worker({ name: "busy@test", concurrency: 1 }).start();
      const running = await task.delay(1);
      const held = await task.delay(2);
      await eventually(() => started.length === 1, WAIT_MS, "the first task to start");
      const active = (await app.inspect.active())["busy@test"];
      assert.deepEqual(
        active.map((info) => [info.id, info.name, info.args, info.hostname]),
        [[running.id, "block", "[1]", "busy@test"]],
      );
      assert.ok(active[0].time_start !== null && Math.abs(active[0].time_start - Date.now() / 1000) < 10);
      await eventually(
        async () => ((await app.inspect.reserved())["busy@test"] ?? []).length === 1,
        WAIT_MS,
        "the held task to show",
      );
      const [reserved] = (await app.inspect.reserved())["busy@test"];
      assert.deepEqual([reserved.id, reserved.args, reserved.time_start], [held.id, "[2]", null]);
      release();
      assert.equal(await held.get({ timeout: WAIT_MS }), 2);
    });

    it("lists what each worker knows: registered tasks, stats, queues consumed, revocations", async (t) => {
      const app = await make(t);
      app.task("b.task", () => 1);
      app.task("a.task", () => 2);
      await app.worker({ name: "w@test", queues: ["celery", "extra"], concurrency: 3 }).start();
      await app.revoke(["some-id"]);
      assert.deepEqual(await app.inspect.registered(), { "w@test": ["a.task", "b.task"] });
      assert.deepEqual(
        (await app.inspect.activeQueues())["w@test"].map((q) => q.name),
        ["celery", "extra"],
      );
      const stats = (await app.inspect.stats())["w@test"];
      assert.deepEqual(
        [stats.hostname, stats.pid, stats.pool["max-concurrency"], stats.prefetch_count, stats.events],
        ["w@test", process.pid, 3, 12, false],
      );
      await eventually(
        async () => ((await app.inspect.revoked())["w@test"] ?? []).includes("some-id"),
        WAIT_MS,
        "the revocation to show",
      );
    });

    it("grows and shrinks a worker's pool: a held task starts once the pool grows", async (t) => {
      const app = await make(t);
      const { task, release, started } = blocking(app);
      const worker = app.worker({ name: "pool@test", concurrency: 1 });
      await worker.start();
      await task.delay(1);
      await task.delay(2);
      await eventually(() => started.length === 1, WAIT_MS, "the first task to start");
      assert.deepEqual(await app.control.poolGrow(1, { destination: "pool@test" }), {
        "pool@test": { ok: "pool will grow to 2" },
      });
      await eventually(() => started.length === 2, WAIT_MS, "the held task to start after the pool grew");
      assert.deepEqual(await app.control.poolShrink(5), { "pool@test": { ok: "pool will shrink to 1" } });
      assert.equal(worker.poolSize, 1);
      release();
    });

    it("starts and stops consuming a queue on command", async (t) => {
      const app = await make(t);
      const echo = app.task("echo", (x: number) => x);
      await app.worker({ name: "q@test" }).start();
      assert.deepEqual(await app.control.addConsumer("side"), { "q@test": { ok: "add consumer side" } });
      assert.equal(await (await echo.applyAsync([7], { queue: "side" })).get({ timeout: WAIT_MS }), 7);
      assert.deepEqual(await app.control.cancelConsumer("side"), { "q@test": { ok: "no longer consuming from side" } });
      assert.deepEqual(
        (await app.inspect.activeQueues())["q@test"].map((q) => q.name),
        ["celery"],
      );
    });

    it("shuts a worker down gracefully: its running task finishes and what it held goes back to the queue", async (t) => {
      const app = await make(t);
      const { task, release, started } = blocking(app);
      const first = app.worker({ name: "first@test", concurrency: 1 });
      await first.start();
      const running = await task.delay(1);
      const held = await task.delay(2);
      await eventually(() => started.length === 1, WAIT_MS, "the first task to start");
      assert.deepEqual(await app.control.shutdown({ destination: "first@test" }), {
        "first@test": { ok: "shutting down" },
      });
      release();
      await first.done;
      assert.equal(await running.get({ timeout: WAIT_MS }), 1);
      await app.worker({ name: "second@test" }).start();
      assert.equal(await held.get({ timeout: WAIT_MS }), 2);
      assert.deepEqual(Object.keys(await app.inspect.ping()), ["second@test"]);
    });
  });
}

describe("remote control", () => {
  it("sets a task's time limits on a worker, above what its messages carry", async (t) => {
    const app = embeddedApp(t);
    const sleepy = app.task("sleepy", () => new Promise((resolve) => setTimeout(resolve, 10_000).unref()), {
      timeLimit: 60_000,
    });
    await app.worker({ name: "tl@test" }).start();
    assert.deepEqual(await app.control.timeLimit("sleepy", { hard: 50 }), {
      "tl@test": { ok: "time limits set successfully" },
    });
    const result = await sleepy.delay();
    await assert.rejects(result.get({ timeout: WAIT_MS }), /TimeLimitExceeded|time limit/i);
  });

  it("sets a rate limit on the workers named", async (t) => {
    const app = embeddedApp(t);
    app.task("fetch", () => 1);
    await app.worker({ name: "rl@test" }).start();
    const replies = await app.control.broadcast("rate_limit", { task_name: "fetch", rate_limit: "5/s" });
    assert.deepEqual(
      replies.map((r) => [r.hostname, r.ok, r.value]),
      [["rl@test", true, { ok: "new rate limit set successfully" }]],
    );
  });

  it("answers an unknown command or a bad argument with an error naming it", async (t) => {
    const app = embeddedApp(t);
    await app.worker({ name: "err@test" }).start();
    const [unknown] = await app.control.broadcast("reboot");
    assert.equal(unknown.ok, false);
    assert.match(unknown.error ?? "", /unknown command 'reboot'/);
    assert.match(
      ((await app.control.poolGrow(0))["err@test"] as { error: string }).error,
      /argument 'n' must be a positive integer/,
    );
    assert.match(
      ((await app.control.timeLimit("nope", { hard: 5 }))["err@test"] as { error: string }).error,
      /'nope' is not registered/,
    );
    await assert.rejects(app.inspect.ping({ destination: [] }), /destination must be a worker name/);
  });

  it("turns a worker's events on and off", async (t) => {
    const app = embeddedApp(t);
    const worker = app.worker({ name: "ev@test" });
    await worker.start();
    assert.deepEqual(await app.control.enableEvents(), { "ev@test": { ok: "events enabled" } });
    assert.equal(worker.sendsEvents, true);
    assert.deepEqual(await app.control.disableEvents(), { "ev@test": { ok: "events disabled" } });
    assert.equal(worker.sendsEvents, false);
  });

  it("works between signed apps, and a worker ignores a request its trusted keys did not sign", async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "celerity-control-signed-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const keys = {
      admin: writeKeyPair(join(dir, "admin")),
      worker: writeKeyPair(join(dir, "worker")),
      stranger: writeKeyPair(join(dir, "other", "stranger")),
    };
    const broker = new EmbeddedBroker();
    const signed = (key: string, trusted: string) => embeddedApp(t, { broker, signing: { key, trusted: [trusted] } });
    const workerApp = signed(keys.worker.secretPath, join(dir, "*.pub"));
    await workerApp.worker({ name: "signed@test" }).start();
    const admin = signed(keys.admin.secretPath, join(dir, "*.pub"));
    assert.deepEqual(await admin.inspect.ping(), { "signed@test": "pong" });
    const stranger = signed(keys.stranger.secretPath, join(dir, "*.pub"));
    assert.deepEqual(await stranger.inspect.ping({ timeout: 300 }), {});
  });

  it("answers no remote control for a worker started with control off", async (t) => {
    const app = embeddedApp(t);
    await app.worker({ name: "deaf@test", control: false }).start();
    assert.deepEqual(await app.inspect.ping({ timeout: 100 }), {});
  });
});

/** Apps on one broker and one result store, each standing for a process of its own; all closed, then the broker, when the test ends. */
type Cluster = (t: TestContext) => Promise<() => App>;

const cluster =
  (start: () => Promise<{ options: AppOptions; dispose: () => Promise<void> }>): Cluster =>
  async (t) => {
    const { options, dispose } = await start();
    const apps: App[] = [];
    t.after(async () => {
      for (const app of apps) await app.close();
      await dispose();
    });
    return () => {
      const app = createApp({ log: () => {}, ...options });
      apps.push(app);
      return app;
    };
  };

const embeddedCluster = cluster(async () => ({
  options: { broker: new EmbeddedBroker(), results: new MemoryResultStore() },
  dispose: async () => {},
}));

const nodeCluster = cluster(async () => {
  const node = await BrokerNode.start({ port: 0, log: () => {} });
  serveResults(node, new MemoryResultStore());
  return { options: { broker: node.url }, dispose: () => node.stop() };
});

const redisCluster = cluster(async () => {
  const prefix = testPrefix("queues");
  return {
    options: { broker: `${TEST_REDIS_URL}?prefix=${encodeURIComponent(prefix.slice(0, -1))}` },
    dispose: () => dropPrefix(prefix),
  };
});

const rabbitCluster = cluster(async () => {
  const server = await testVhost("queue-management");
  if ("skip" in server) throw new Error(server.skip);
  return { options: { broker: server.url, results: new MemoryResultStore() }, dispose: () => server.dispose() };
});

const redisSkip = await redisSkipReason();
const rabbitProbe = await testVhost("queue-management-probe");
const rabbitSkip = "skip" in rabbitProbe ? rabbitProbe.skip : (await rabbitProbe.dispose(), false);

// On RabbitMQ a paused queue's workers cancel their RabbitMQ consumers until it is resumed: it counts none meanwhile.
for (const [transport, makeCluster, skip, pausedConsumers] of [
  ["the embedded broker", embeddedCluster, false, 2],
  ["a broker node", nodeCluster, false, 2],
  ["Redis", redisCluster, redisSkip, 2],
  ["RabbitMQ", rabbitCluster, rabbitSkip, 0],
] as const) {
  describe(`queue management over ${transport}`, { skip }, () => {
    it("pauses a queue for every worker, also one started later, and resumes it", async (t) => {
      const connect = await makeCluster(t);
      const app = connect();
      const one = connect();
      const two = connect();
      for (const each of [one, two]) each.task("echo", (x: number) => x);
      const echo = app.task("echo", (x: number) => x);
      await one.worker({ name: "one@test" }).start();
      await app.queues.pause("celery");
      await two.worker({ name: "two@test" }).start();
      const results = await Promise.all([1, 2, 3, 4].map((n) => echo.delay(n)));
      await eventually(
        async () => (await app.queues.list()).find((q) => q.name === "celery")?.ready === 4,
        WAIT_MS,
        "four messages waiting",
      );
      const celery = (await app.queues.list()).find((q) => q.name === "celery");
      assert.deepEqual([celery?.paused, celery?.consumers], [true, pausedConsumers]);
      assert.ok(celery?.unacked === 0 || celery?.unacked === undefined, "nothing was delivered");
      await app.queues.resume("celery");
      assert.deepEqual(await Promise.all(results.map((r) => r.get({ timeout: WAIT_MS }))), [1, 2, 3, 4]);
    });

    it("purges a queue and says how many messages went", async (t) => {
      const app = (await makeCluster(t))();
      const echo = app.task("echo", (x: number) => x);
      await echo.delay(1);
      await echo.applyAsync([2], { countdown: 60_000 });
      const countsDelayed = (await app.queues.list()).find((q) => q.name === "celery")?.delayed !== undefined;
      assert.equal(await app.queues.purge("celery"), countsDelayed ? 2 : 1);
      await assert.rejects(app.queues.purge("never-declared"), /queue "never-declared" is not declared/);
    });

    it("runs a dead-lettered task again once it is requeued, keeping the new outcome", async (t) => {
      const connect = await makeCluster(t);
      const old = connect();
      const oldWorker = old.worker({ name: "old@test" });
      await oldWorker.start();
      const sent = await old.sendTask<number>("late.task", [20]);
      await assert.rejects(sent.get({ timeout: WAIT_MS }), /not registered/);
      // The failure is recorded as the message is dead-lettered: on a remote broker the letter may land a moment later.
      await eventually(async () => (await old.queues.deadLetters("celery")).length === 1, WAIT_MS, "the dead letter");
      const [letter] = await old.queues.deadLetters("celery");
      assert.equal(letter.envelope.id, sent.id);
      await oldWorker.stop();

      const fixed = connect();
      fixed.task("late.task", (x: number) => x + 1);
      await fixed.worker({ name: "new@test" }).start();
      assert.equal(await fixed.queues.requeue("celery", [sent.id]), 1);
      assert.equal(await fixed.result<number>(sent.id).get({ timeout: WAIT_MS }), 21);
      assert.deepEqual(await fixed.queues.deadLetters("celery"), []);
    });

    it("discards dead letters", async (t) => {
      const app = (await makeCluster(t))();
      await app.worker().start();
      const sent = await app.sendTask("nobody.knows", []);
      await assert.rejects(sent.get({ timeout: WAIT_MS }), /not registered/);
      await eventually(async () => (await app.queues.deadLetters("celery")).length === 1, WAIT_MS, "the dead letter");
      assert.equal(await app.queues.discard("celery.dlq"), 1);
      assert.deepEqual(await app.queues.deadLetters("celery"), []);
    });
  });
}
