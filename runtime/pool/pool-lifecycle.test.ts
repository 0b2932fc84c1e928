import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, it, type TestContext } from "node:test";
import { RemoteTaskError } from "../errors.ts";
import { eventually } from "../test-support.ts";
import type { Worker, WorkerOptions } from "../worker/worker.ts";
import { scaled, within } from "../../tests/support/waits.ts";
import { START_TIMEOUT_MS } from "../../tests/support/watched-process.ts";
import { add, app, burn, exit, gate, spin, wait, whereami } from "./test-fixtures/pool-app.ts";

/**
 * A result, or a state, that may wait for a thread or child the pool starts now (after a kill, a crash, a
 * recycle, or to grow): such a start loads the app, as the pool's first start does, so its limit is part of this one.
 */
const RESULT_MS = START_TIMEOUT_MS + scaled(20_000);

after(() => app.close({ timeout: 0 }));

const pooled = async (t: TestContext, queue: string, options: WorkerOptions): Promise<Worker> => {
  const worker = app.worker({ concurrency: 1, queues: [queue], ...options });
  t.after(() => worker.stop({ timeout: 0 }));
  await within(worker.start(), START_TIMEOUT_MS, "the pool to start");
  return worker;
};

describe("a worker on a process pool", () => {
  it("kills a child stuck past its hard time limit, fails only that task and runs the next one", async (t) => {
    const worker = await pooled(t, "process.hard-limit", { pool: "process" });
    const on = { queue: "process.hard-limit" };
    const stuck = await spin.applyAsync([], { ...on, timeLimit: 200 });
    await assert.rejects(
      stuck.get({ timeout: RESULT_MS }),
      (e: unknown) => e instanceof RemoteTaskError && e.remote.name === "TimeLimitExceeded",
    );
    assert.equal(await (await add.applyAsync([2, 3], on)).get({ timeout: RESULT_MS }), 5);
    assert.equal(worker.stats().children?.killed, 1);
  });

  it("fails only the task whose child process exits, and runs the next one in a fresh child", async (t) => {
    await pooled(t, "process.exit", { pool: "process" });
    const on = { queue: "process.exit" };
    const before = await (await whereami.applyAsync([], on)).get({ timeout: RESULT_MS });
    await assert.rejects(
      (await exit.applyAsync([7], on)).get({ timeout: RESULT_MS }),
      (e: unknown) =>
        e instanceof RemoteTaskError &&
        e.remote.name === "WorkerLostError" &&
        /process \d+ .*exited with code 7/.test(e.remote.message),
    );
    const afterwards = await (await whereami.applyAsync([], on)).get({ timeout: RESULT_MS });
    assert.notEqual(afterwards.split("/")[0], before.split("/")[0]);
  });

  it("replaces a child process after maxTasksPerChild tasks", async (t) => {
    const worker = await pooled(t, "process.max-tasks", { pool: "process", maxTasksPerChild: 1 });
    const on = { queue: "process.max-tasks" };
    const first = await (await whereami.applyAsync([], on)).get({ timeout: RESULT_MS });
    const second = await (await whereami.applyAsync([], on)).get({ timeout: RESULT_MS });
    assert.notEqual(first.split("/")[0], second.split("/")[0]);
    assert.equal(worker.stats().children?.recycled, 2);
  });
});

describe("shutting a pooled worker down", () => {
  it("warm: finishes the running tasks, then gives the held messages back (nothing lost)", async (t) => {
    const queue = "lifecycle.warm";
    const worker = await pooled(t, queue, { pool: "threads", concurrency: 2 });
    const results = await Promise.all([0, 1, 2, 3].map(() => wait.applyAsync([400], { queue })));
    await eventually(() => worker.stats().running === 2, RESULT_MS, "two tasks running");
    await within(worker.stop(), RESULT_MS, "the warm shutdown");
    const states = await Promise.all(results.map((r) => r.state()));
    assert.equal(states.filter((s) => s === "SUCCESS").length, 2, `the running two finished: ${states}`);
    assert.equal((await app.broker.stats(queue)).ready, 2, "the two held ones are back in the queue");
    const next = app.worker({ queues: [queue] });
    t.after(() => next.stop({ timeout: 0 }));
    await next.start();
    for (const r of results) await r.get({ timeout: RESULT_MS });
  });

  it("cold: a second stop with timeout 0 kills the running tasks' threads and requeues their messages", async (t) => {
    const queue = "lifecycle.cold";
    const worker = await pooled(t, queue, { pool: "threads", concurrency: 2 });
    const results = await Promise.all([0, 1].map(() => burn.applyAsync([60_000], { queue })));
    await eventually(() => worker.stats().running === 2, RESULT_MS, "two tasks running");
    const warm = worker.stop();
    const cold = worker.stop({ timeout: 0 });
    await within(Promise.all([warm, cold]), RESULT_MS, "the cold shutdown");
    assert.deepEqual(
      await Promise.all(results.map((r) => r.state())),
      ["STARTED", "STARTED"],
      "neither failed nor finished",
    );
    assert.equal((await app.broker.stats(queue)).ready, 2, "both messages are back in the queue");
    assert.equal(worker.stats().children?.killed, 2);
  });
});

describe("an autoscaled pool", () => {
  it("grows with the backlog up to max and shrinks back to min when idle", async (t) => {
    const queue = "lifecycle.autoscale";
    const worker = await pooled(t, queue, {
      pool: "threads",
      autoscale: { max: 3, min: 1, idleMs: 300, intervalMs: 50 },
    });
    assert.equal(worker.stats().concurrency, 1);
    // The backlog runs until released, so it outlasts the new threads' start however long that takes.
    const release = join(mkdtempSync(join(tmpdir(), "celerity-autoscale-")), "release");
    t.after(() => rmSync(dirname(release), { recursive: true, force: true }));
    const results = await Promise.all([0, 1, 2, 3, 4, 5].map(() => gate.applyAsync([release], { queue })));
    await eventually(
      () => worker.stats().concurrency === 3 && worker.stats().children?.size === 3,
      RESULT_MS,
      "the pool to grow to 3",
    );
    // The new threads take the backlog once they have loaded the app (seconds on a loaded machine).
    await eventually(
      () => (worker.stats().children?.busy ?? 0) >= 2,
      RESULT_MS,
      "tasks running on two threads at once",
    );
    writeFileSync(release, "");
    for (const r of results) await r.get({ timeout: RESULT_MS * 2 });
    await eventually(() => worker.stats().concurrency === 1, RESULT_MS, "the pool to shrink back to 1");
    await eventually(() => worker.stats().children?.size === 1, RESULT_MS, "one thread kept");
  });
});
