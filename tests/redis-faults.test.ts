/**
 * Multi-process tests on Redis: `celerity worker --broker redis://…` child
 * processes killed with SIGKILL mid-task, connections cut at random byte
 * counts by a proxy in front of Redis, and canvases of a thousand steps
 * spread over three worker processes. Each test keeps to a key prefix of its
 * own and deletes it at the end; every process it started is stopped even
 * when it fails.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { dropPrefix, redisSkipReason, testPrefix, TEST_REDIS_URL } from "../broker/redis/redis-test-support.ts";
import { chain, chord, group } from "../dsl/combinators.ts";
import { createApp, type App } from "../runtime/app.ts";
import { CuttingProxy } from "./support/cutting-proxy.ts";
import { Scope } from "./support/scope.ts";
import { seeded } from "./support/seeded-random.ts";
import { scaled, within } from "./support/waits.ts";
import { celerity, START_TIMEOUT_MS, tails, type WatchedProcess } from "./support/watched-process.ts";

const FAULT_APP = fileURLToPath(new URL("./fixtures/fault-app.ts", import.meta.url));
/** Short leases, so that a killed worker's task comes back within the test's patience. */
const LEASE_MS = 1_500;

/** A prefix of the test's own in the tests' Redis, deleted when the scope closes; the url names it (and the lease). */
const isolated = (scope: Scope, base = TEST_REDIS_URL): { url: string; prefix: string } => {
  const prefix = testPrefix("faults");
  scope.defer(() => dropPrefix(prefix));
  return { url: `${base}?prefix=${prefix.slice(0, -1)}&leaseMs=${LEASE_MS}`, prefix };
};

const startWorker = async (scope: Scope, name: string, url: string, concurrency = 1): Promise<WatchedProcess> => {
  const child = celerity(name, [
    "worker",
    "--app",
    FAULT_APP,
    "--broker",
    url,
    "--concurrency",
    String(concurrency),
    "--name",
    name,
  ]);
  scope.defer(() => child.kill());
  await child.waitFor(/consuming with concurrency/, START_TIMEOUT_MS, { stream: "stderr" });
  return child;
};

const producerApp = (scope: Scope, url: string): App => {
  const app = createApp({ broker: url, log: () => {} });
  scope.defer(() => app.close());
  return app;
};

const skip = await redisSkipReason();

describe("fault tolerance on Redis across processes", { concurrency: false, skip }, () => {
  it("hands the task of a worker killed with SIGKILL mid-task to another worker once its lease runs out, and runs every other task once", {
    timeout: 180_000,
  }, async () => {
    const scope = new Scope();
    try {
      const dir = scope.tempDir("celerity-redis-faults-");
      const { url } = isolated(scope);
      const first = await startWorker(scope, "w1", url);
      const producer = producerApp(scope, url);
      const hung = await producer.sendTask<string>("fault.hang-once", [join(dir, "hang-once.marker")]);
      await first.waitFor(/^started fault\.hang-once \d+$/, scaled(10_000), { stream: "stdout" });
      const queued = await Promise.all(
        Array.from({ length: 20 }, (_, i) => producer.sendTask<string>("fault.echo", [`echo ${i}`])),
      );
      await first.kill("SIGKILL");
      const second = await startWorker(scope, "w2", url);
      const detail = tails(first, second);
      assert.equal(
        await within(hung.get({ timeout: 20_000 }), 25_000, "w2 to finish the hung task", detail),
        `finished by pid ${second.pid}`,
      );
      const echoes = await within(
        Promise.all(queued.map((r) => r.get({ timeout: 20_000 }))),
        25_000,
        "every queued echo",
        detail,
      );
      assert.deepEqual(
        echoes.map((value) => value.replace(/ from pid \d+$/, "")),
        Array.from({ length: 20 }, (_, i) => `echo ${i}`),
      );
    } finally {
      await scope.close();
    }
  });

  it("loses no confirmed task while a proxy cuts the producer's and the worker's connections at random points, and the worker resumes by itself", {
    timeout: 180_000,
  }, async () => {
    const scope = new Scope();
    try {
      const target = new URL(TEST_REDIS_URL);
      const proxy = new CuttingProxy(Number(target.port || 6379), seeded(7), 8);
      const port = await proxy.start();
      scope.defer(() => proxy.stop());
      const { url } = isolated(scope, `redis://127.0.0.1:${port}${target.pathname}`);
      const worker = await startWorker(scope, "w1", url, 4);
      const producer = producerApp(scope, url);
      const confirmed: { id: string; value: string; result: { get(o: { timeout: number }): Promise<string> } }[] = [];
      for (let i = 0; i < 150; i++) {
        const value = `cut ${i}`;
        try {
          const result = await producer.sendTask<string>("fault.echo", [value]);
          confirmed.push({ id: result.id, value, result });
        } catch (error) {
          // Not confirmed: the test makes no promise about it.
          if ((error as { _tag?: string })._tag !== "ConnectionLostError") throw error;
        }
      }
      assert.ok(proxy.cuts > 0, "the proxy cut no connection");
      assert.ok(confirmed.length >= 100, `only ${confirmed.length} of 150 publishes were confirmed`);
      const values = await within(
        Promise.all(confirmed.map((c) => c.result.get({ timeout: 40_000 }))),
        45_000,
        `results of ${confirmed.length} confirmed tasks`,
        tails(worker),
      );
      assert.deepEqual(
        values.map((v) => v.replace(/ from pid \d+$/, "")),
        confirmed.map((c) => c.value),
      );
    } finally {
      await scope.close();
    }
  });

  it("runs a chain, a group and a chord of 1,000 steps across three worker processes", {
    timeout: 300_000,
  }, async () => {
    const scope = new Scope();
    try {
      const { url } = isolated(scope);
      const workers = await Promise.all(["w1", "w2", "w3"].map((name) => startWorker(scope, name, url, 8)));
      const producer = producerApp(scope, url);
      const add = producer.task("fault.add", (a: number, b: number) => a + b);
      const tsum = producer.task("fault.tsum", (xs: number[]) => xs.reduce((s, x) => s + x, 0));
      const detail = tails(...workers);
      const n = 1_000;
      const members = Array.from({ length: n }, (_, i) => add.s(i, 1));
      const grouped = await within(
        (await group(...members).apply()).get({ timeout: 60_000 }),
        65_000,
        "the group of 1,000",
        detail,
      );
      assert.deepEqual(
        grouped,
        Array.from({ length: n }, (_, i) => i + 1),
      );
      const joined = await within(
        (await chord(group(...members), tsum.s()).apply()).get({ timeout: 60_000 }),
        65_000,
        "the chord of 1,000",
        detail,
      );
      assert.equal(joined, (n * (n + 1)) / 2);
      const steps = [add.s(0, 1), ...Array.from({ length: n - 1 }, () => add.s(1))] as const;
      const chained = await within(
        (await (chain as (...s: unknown[]) => ReturnType<typeof chain>)(...steps).apply()).get({ timeout: 90_000 }),
        95_000,
        "the chain of 1,000",
        detail,
      );
      assert.equal(chained, n);
    } finally {
      await scope.close();
    }
  });
});
