import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import { createApp as createAppNow, type App, type AppOptions } from "../app.ts";
import type { TaskContext } from "../task.ts";
import { eventually } from "../test-support.ts";

/** Apps of the running test, closed after it even when it fails (a worker left running would keep the file's process alive). */
const opened: App[] = [];
const createApp = (options?: AppOptions): App => {
  const app = createAppNow(options);
  opened.push(app);
  return app;
};
afterEach(async () => {
  for (const app of opened.splice(0)) await app.close();
});

/** Most starts in any window of `windowMs` (from sorted start times). */
const mostInWindow = (starts: readonly number[], windowMs: number): number => {
  let most = 0;
  for (let i = 0, j = 0; j < starts.length; j++) {
    while (starts[j] - starts[i] > windowMs) i++;
    most = Math.max(most, j - i + 1);
  }
  return most;
};

/** Whether exactly `held` messages are still in the broker (queued, held by a worker, or handed back with an eta). */
const queueIsHeld = async (app: App, held: number) => {
  const stats = await app.broker.stats("celery");
  return stats.ready + stats.unacked + stats.delayed === held;
};

describe("rate limits on a worker", () => {
  // A task starts right after its token is taken, but the event loop may run it a few ms late
  // (a collection, a loaded machine), which can bring two starts closer than their tokens: one token of slack.
  it("starts a limited task at most burst + rate x T times in any window T (one token of slack for start lag)", async () => {
    const app = createApp();
    const starts: number[] = [];
    const tick = app.task("tick", () => void starts.push(Date.now()), { rateLimit: { rate: "20/s", burst: 3 } });
    await app.worker({ concurrency: 4 }).start();
    const results = await Promise.all(Array.from({ length: 25 }, () => tick.delay()));
    for (const r of results) await r.get({ timeout: 10_000 });
    starts.sort((a, b) => a - b);
    for (const windowMs of [0, 10, 49, 50, 100, 200, 500]) {
      const most = mostInWindow(starts, windowMs);
      const limit = 3 + (20 * windowMs) / 1_000 + 1;
      assert.ok(most <= limit, `${most} starts within ${windowMs} ms, limit ${limit}`);
    }
    // And over the whole run: 25 tasks need at least (25 - 3) / 20 s.
    assert.ok(starts[24] - starts[0] >= ((25 - 3 - 1) / 20) * 1_000, `25 starts in ${starts[24] - starts[0]} ms`);
    await app.close();
  });

  it("lets other task types through while a backlog of limited tasks waits", async () => {
    const app = createApp();
    let limitedStarted = 0;
    const slow = app.task("slow", () => void limitedStarted++, { rateLimit: "1/s" });
    const quick = app.task("quick", (n: number) => n);
    // One slot and little prefetch: without the gate, the first limited task would hold the only slot.
    const worker = app.worker({ concurrency: 1, prefetch: 4 });
    await worker.start();
    const started = Date.now();
    for (let i = 0; i < 20; i++) await slow.delay();
    const quicks = await Promise.all([1, 2, 3].map((n) => quick.delay(n)));
    for (const r of quicks) await r.get({ timeout: 8_000 });
    const elapsedS = (Date.now() - started) / 1_000;
    assert.ok(
      limitedStarted <= 1 + Math.ceil(elapsedS),
      `${limitedStarted} limited tasks started in ${elapsedS} s at 1/s`,
    );
    assert.ok(limitedStarted < 20);
    await app.close();
  });

  it("does not count waiting as a retry, and runs each limited task once", async () => {
    const app = createApp();
    const seen: number[] = [];
    const runs = new Map<string, number>();
    const once = app.task(
      "once",
      function (this: TaskContext) {
        seen.push(this.retries);
        runs.set(this.id, (runs.get(this.id) ?? 0) + 1);
      },
      { rateLimit: "200/s" },
    );
    // Prefetch 2 holds one delivery: most are handed back to the queue with an eta.
    await app.worker({ concurrency: 1, prefetch: 2 }).start();
    const results = await Promise.all(Array.from({ length: 30 }, () => once.delay()));
    for (const r of results) await r.get({ timeout: 10_000 });
    assert.deepEqual(new Set(seen), new Set([0]));
    assert.equal(runs.size, 30);
    assert.ok([...runs.values()].every((n) => n === 1));
    for (const r of results) assert.equal((await app.results.get(r.id))?.retries ?? 0, 0);
    await app.close();
  });

  it("changes a limit at run time: raising it releases the backlog, null removes it", async () => {
    const app = createApp();
    let ran = 0;
    const slow = app.task("slow", () => void ran++, { rateLimit: { rate: "1/h", burst: 1 } });
    await app.worker().start();
    const results = [];
    for (let i = 0; i < 5; i++) results.push(await slow.delay());
    await results[0].get({ timeout: 5_000 });
    await eventually(() => queueIsHeld(app, 4), 5_000, "four tasks held for a token");
    await app.control.rateLimit("slow", "1000/s");
    for (const r of results) await r.get({ timeout: 5_000 });
    await app.control.rateLimit("slow", "1/h");
    ran = 0;
    const more = [await slow.delay(), await slow.delay(), await slow.delay()];
    // The bucket raised to a burst of 1000 is clamped to the new burst of 1: at most one runs, the others wait.
    await eventually(
      async () => (await app.broker.stats("celery")).unacked + ran === 3,
      5_000,
      "the three tasks run or held",
    );
    assert.ok(ran <= 1, `${ran} ran after the limit was lowered to a burst of 1`);
    await app.control.rateLimit("slow", null);
    for (const r of more) await r.get({ timeout: 5_000 });
    await app.close();
  });

  it("gives each worker its own bucket with scope 'worker', and all of them one with scope 'global'", async () => {
    for (const [scope, expected] of [
      ["worker", 4],
      ["global", 2],
    ] as const) {
      const app = createApp();
      let started = 0;
      const t = app.task("t", () => void started++, { rateLimit: { rate: "1/h", burst: 2, scope } });
      // Prefetch 1: a worker holding one delivery for a token takes no more, so both workers get some.
      await app.worker({ concurrency: 2, prefetch: 1 }).start();
      await app.worker({ concurrency: 2, prefetch: 1 }).start();
      for (let i = 0; i < 6; i++) await t.delay();
      await eventually(
        async () => started === expected && (await queueIsHeld(app, 6 - expected)),
        5_000,
        `${expected} started with scope ${scope}`,
      );
      assert.equal(started, expected);
      await app.close();
    }
  });

  it("keeps a bucket per key", async () => {
    const app = createApp();
    const started: string[] = [];
    const fetch = app.task("fetch", (host: string, _path: string) => void started.push(host), {
      rateLimit: { rate: "1/h", burst: 1, key: (host: string) => host },
    });
    await app.worker().start();
    for (const [host, path] of [
      ["a", "/1"],
      ["a", "/2"],
      ["b", "/1"],
      ["c", "/1"],
      ["b", "/2"],
    ])
      await fetch.delay(host, path);
    await eventually(async () => started.length === 3 && (await queueIsHeld(app, 2)), 5_000, "one task per host");
    assert.deepEqual([...started].sort(), ["a", "b", "c"]);
    await app.close();
  });

  it("gives every key its turn when slots are scarce, not one key's backlog first", async () => {
    const app = createApp();
    const order: string[] = [];
    const fetch = app.task(
      "fetch",
      async (host: string) => {
        order.push(host);
        await new Promise((resolve) => setImmediate(resolve));
      },
      { rateLimit: { rate: "1000/s", burst: 1_000, key: (host: string) => host } },
    );
    const sent = [];
    for (let i = 0; i < 30; i++) sent.push(await fetch.delay("a"));
    sent.push(await fetch.delay("b"));
    // Room to hold all 31: the order is the gate's, not the hand-backs'.
    await app.worker({ concurrency: 1, prefetch: 80 }).start();
    for (const r of sent) await r.get({ timeout: 5_000 });
    // b arrives while a's first few run; from then on a and b alternate, so b does not wait for a's 30.
    assert.ok(order.indexOf("b") < 10, `host b ran ${order.indexOf("b") + 1}th of ${order.length}: ${order.join(" ")}`);
  });

  it("reports a key function that throws, and limits the task by its shared bucket", async () => {
    const logs: string[] = [];
    const app = createApp({ log: (line) => logs.push(line) });
    const fetch = app.task("fetch", (host: string) => host, {
      rateLimit: {
        rate: "100/s",
        key: (host: string) => {
          if (host === "bad") throw new Error("no host");
          return host;
        },
      },
    });
    await app.worker().start();
    assert.equal(await (await fetch.delay("bad")).get({ timeout: 5_000 }), "bad");
    assert.ok(
      logs.some((line) => /rate limit key of task 'fetch' failed .*no host/.test(line)),
      logs.join("\n"),
    );
    await app.close();
  });
});
