import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createApp } from "./app.ts";
import { RemoteTaskError, TaskRevokedError } from "./errors.ts";
import { retryDelay } from "./worker/retry-policy.ts";
import { deferred, eventually } from "./test-support.ts";
import { scaled, within } from "../tests/support/waits.ts";

const quietApp = () => createApp({ log: () => {} });

describe("options: retries", () => {
  it("retries a failing task up to its maximum, then fails with the last error", async () => {
    const app = quietApp();
    let attempts = 0;
    const flaky = app.task(
      "flaky",
      () => {
        attempts++;
        throw new Error(`attempt ${attempts}`);
      },
      { retry: { max: 2, delay: 1 } },
    );
    await app.worker().start();
    const r = await flaky.delay();
    await assert.rejects(r.get({ timeout: 2_000 }), /attempt 3/);
    assert.equal(attempts, 3);
    await app.close();
  });

  it("succeeds on a retry and shows RETRY in between", async () => {
    const app = quietApp();
    const retrying = deferred();
    const gate = deferred();
    let attempts = 0;
    const flaky = app.task(
      "flaky",
      async function () {
        attempts++;
        if (attempts === 1) throw new Error("first try fails");
        if (attempts === 2) {
          retrying.resolve();
          await gate.promise;
        }
        return this.retries;
      },
      { retry: { max: 3, delay: 1 } },
    );
    await app.worker().start();
    const r = await flaky.delay();
    await retrying.promise;
    assert.equal(await r.state(), "STARTED");
    gate.resolve();
    assert.equal(await r.get({ timeout: 2_000 }), 1);
    await app.close();
  });

  it("retries only errors that retryOn accepts", async () => {
    const app = quietApp();
    let attempts = 0;
    const picky = app.task(
      "picky",
      () => {
        attempts++;
        throw new TypeError("not retryable");
      },
      { retry: { max: 5, delay: 1, retryOn: (e) => !(e instanceof TypeError) } },
    );
    await app.worker().start();
    await assert.rejects((await picky.delay()).get({ timeout: 2_000 }), /not retryable/);
    assert.equal(attempts, 1);
    await app.close();
  });

  it("retries when the task calls this.retry(), honouring its countdown and maximum", async () => {
    const app = quietApp();
    const times: number[] = [];
    const polling = app.task("polling", function () {
      times.push(Date.now());
      if (this.retries < 2) this.retry({ countdown: 30, max: 5 });
      return "ready";
    });
    const exhausted = app.task("exhausted", function () {
      this.retry({ countdown: 1, max: 1, cause: new Error("still not ready") });
    });
    await app.worker().start();
    assert.equal(await (await polling.delay()).get({ timeout: 2_000 }), "ready");
    assert.equal(times.length, 3);
    assert.ok(times[1] - times[0] >= 25, `the retry waited ${times[1] - times[0]} ms`);
    await assert.rejects((await exhausted.delay()).get({ timeout: 2_000 }), /still not ready/);
    await app.close();
  });

  it("computes exponential backoff with a cap, and full jitter within it", () => {
    const policy = { max: 10, delay: 100, backoff: 2, maxDelay: 1_000 };
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5].map((n) => retryDelay(policy, n)),
      [100, 200, 400, 800, 1_000, 1_000],
    );
    assert.equal(
      retryDelay({ ...policy, jitter: true }, 2, () => 0.5),
      200,
    );
    assert.equal(
      retryDelay({ ...policy, jitter: true }, 2, () => 0),
      0,
    );
  });
});

describe("options: timing, priority, routing", () => {
  it("does not run a task before its countdown", async () => {
    const app = quietApp();
    const at = app.task("at", () => Date.now());
    await app.worker().start();
    const sent = Date.now();
    const r = await at.applyAsync([], { countdown: 60 });
    assert.ok((await r.get({ timeout: 2_000 })) - sent >= 55);
    await app.close();
  });

  it("does not run a task before its eta", async () => {
    const app = quietApp();
    const at = app.task("at", () => Date.now());
    await app.worker().start();
    const eta = new Date(Date.now() + 50);
    const r = await at.applyAsync([], { eta });
    assert.ok((await r.get({ timeout: 2_000 })) >= eta.getTime());
    await app.close();
  });

  it("revokes a task that expired before a worker took it", async () => {
    const app = quietApp();
    const ran: string[] = [];
    const job = app.task("job", () => ran.push("ran"));
    const r = await job.applyAsync([], { expires: new Date(Date.now() - 1) });
    await app.worker().start();
    await assert.rejects(r.get({ timeout: 2_000 }), (e: unknown) => e instanceof TaskRevokedError);
    assert.equal(await r.state(), "REVOKED");
    assert.deepEqual(ran, []);
    await app.close();
  });

  it("runs higher-priority tasks first", async () => {
    const app = quietApp();
    const order: number[] = [];
    const job = app.task("job", (p: number) => order.push(p));
    const results = [];
    for (const p of [0, 5, 9, 1]) results.push(await job.applyAsync([p], { priority: p }));
    await app.worker({ concurrency: 1, prefetch: 1 }).start();
    await Promise.all(results.map((r) => r.get({ timeout: 2_000 })));
    assert.deepEqual(order, [9, 5, 1, 0]);
    await app.close();
  });

  it("routes to the queue a task names, consumed only by workers of that queue", async () => {
    const app = quietApp();
    const where: string[] = [];
    const heavy = app.task("heavy", () => where.push("heavy"), { queue: "heavy" });
    await app.worker({ queues: ["celery"] }).start();
    const r = await heavy.delay();
    assert.equal(await r.state(), "PENDING");
    assert.equal((await app.broker.stats("heavy")).ready, 1);
    await app.worker({ queues: ["heavy"] }).start();
    await r.get({ timeout: 2_000 });
    assert.deepEqual(where, ["heavy"]);
    await app.close();
  });

  it("routes through a topic exchange", async () => {
    const app = quietApp();
    await app.broker.declareExchange("events", "topic");
    await app.broker.declareQueue("audit");
    await app.broker.bindQueue("audit", "events", "user.#");
    const audit = app.task("audit", (what: string) => `audited ${what}`);
    await app.worker({ queues: ["audit"] }).start();
    const r = await audit.applyAsync(["login"], { exchange: "events", routingKey: "user.login.ok" });
    assert.equal(await r.get({ timeout: 2_000 }), "audited login");
    await app.close();
  });
});

describe("options: time limits and acknowledgement", () => {
  it("aborts the task's signal at the soft time limit and lets it finish", async () => {
    const app = quietApp();
    const soft = app.task(
      "soft",
      function () {
        return new Promise<string>((resolve) =>
          this.signal.addEventListener("abort", () => resolve(`aborted: ${(this.signal.reason as Error).name}`)),
        );
      },
      { softTimeLimit: 20 },
    );
    await app.worker().start();
    assert.equal(await (await soft.delay()).get({ timeout: 2_000 }), "aborted: SoftTimeLimitExceeded");
    await app.close();
  });

  it("abandons a task at its hard time limit and fails it with TimeLimitExceeded", async () => {
    const app = quietApp();
    const hang = app.task("hang", () => new Promise<never>(() => {}), { timeLimit: 20 });
    const add = app.task("add", (x: number, y: number) => x + y);
    await app.worker({ concurrency: 1 }).start();
    const r = await hang.delay();
    const error = await r.get({ timeout: 2_000 }).catch((e: unknown) => e);
    assert.ok(error instanceof RemoteTaskError);
    assert.equal(error.remote.name, "TimeLimitExceeded");
    // The slot was freed: the next task runs on the single-slot worker.
    assert.equal(await (await add.delay(1, 1)).get({ timeout: 2_000 }), 2);
    await app.close();
  });

  it("acknowledges early when acksLate is false, so a stopped worker does not redeliver", async () => {
    const app = quietApp();
    const started = deferred();
    const early = app.task(
      "early",
      () => {
        started.resolve();
        return new Promise<never>(() => {});
      },
      { acksLate: false },
    );
    const worker = app.worker();
    await worker.start();
    await early.delay();
    await started.promise;
    const stats = await app.broker.stats("celery");
    assert.equal(stats.unacked, 0);
    await worker.stop({ timeout: 10 });
    assert.equal((await app.broker.stats("celery")).ready, 0);
    await app.close();
  });

  it("keeps a late-acked task unacknowledged while it runs, and hands it back when its worker stops", async () => {
    const app = quietApp();
    const started = deferred();
    let runs = 0;
    const late = app.task("late", () => {
      runs++;
      if (runs === 1) {
        started.resolve();
        return new Promise<string>(() => {});
      }
      return "second worker finished it";
    });
    const first = app.worker({ name: "first" });
    await first.start();
    const r = await late.delay();
    await started.promise;
    assert.equal((await app.broker.stats("celery")).unacked, 1);
    await first.stop({ timeout: 10 });
    await app.worker({ name: "second" }).start();
    assert.equal(await r.get({ timeout: 2_000 }), "second worker finished it");
    assert.equal(runs, 2);
    await app.close();
  });

  it("finishes running tasks before a graceful stop returns", async () => {
    const app = quietApp();
    const started = deferred();
    const gate = deferred();
    const job = app.task("job", async () => {
      started.resolve();
      await gate.promise;
      return "finished";
    });
    const worker = app.worker();
    await worker.start();
    const r = await job.delay();
    await started.promise;
    const stopping = worker.stop();
    gate.resolve();
    await stopping;
    assert.equal(await r.state(), "SUCCESS");
    await app.close();
  });
});

describe("revocation", () => {
  it("never runs a revoked task that is still queued, and records REVOKED", async () => {
    const app = quietApp();
    const ran: number[] = [];
    const job = app.task("job", (n: number) => ran.push(n));
    const r = await job.delay(1);
    await r.revoke();
    assert.equal(await r.state(), "REVOKED");
    await app.worker().start();
    const other = await job.delay(2);
    await other.get({ timeout: 2_000 });
    assert.deepEqual(ran, [2]);
    await assert.rejects(within(r.get(), scaled(5_000), "the revoked task's result"), TaskRevokedError);
    await app.close();
  });

  it("never runs a revoked delayed task", async () => {
    const app = quietApp();
    const ran: number[] = [];
    const job = app.task("job", (n: number) => ran.push(n));
    await app.worker().start();
    const r = await job.applyAsync([1], { countdown: 200 });
    await r.revoke();
    const later = await job.applyAsync([2], { countdown: 250 });
    await later.get({ timeout: 2_000 });
    assert.deepEqual(ran, [2]);
    await app.close();
  });

  it("aborts a running task when revoked with terminate", async () => {
    const app = quietApp();
    const started = deferred();
    let aborted = false;
    const job = app.task("job", function () {
      started.resolve();
      this.signal.addEventListener("abort", () => (aborted = true));
      return new Promise<never>(() => {});
    });
    await app.worker().start();
    const r = await job.delay();
    await started.promise;
    await r.revoke({ terminate: true });
    await assert.rejects(r.get({ timeout: 2_000 }), TaskRevokedError);
    await eventually(() => aborted, 2_000, "the abort signal");
    await app.close();
  });

  it("revokes every step of a workflow through its result", async () => {
    const app = quietApp();
    const ran: string[] = [];
    const step = app.task("step", (label: string) => ran.push(label));
    const { chain } = await import("../dsl/combinators.ts");
    const r = await chain(step.si("a"), step.si("b")).apply();
    await r.revoke();
    await app.worker().start();
    await assert.rejects(r.get({ timeout: 2_000 }), TaskRevokedError);
    assert.deepEqual(ran, []);
    await app.close();
  });
});
