import assert from "node:assert/strict";
import { after, describe, it, type TestContext } from "node:test";
import { RemoteTaskError } from "../errors.ts";
import { eventually } from "../test-support.ts";
import type { WorkerOptions } from "../worker/worker.ts";
import { scaled, within } from "../../tests/support/waits.ts";
import { START_TIMEOUT_MS } from "../../tests/support/watched-process.ts";
import {
  add,
  app,
  exit,
  fail,
  hold,
  retrying,
  send,
  softly,
  spin,
  unclonable,
  whereami,
} from "./test-fixtures/pool-app.ts";

/** Starting a thread loads the app module through the TypeScript loader: seconds on a loaded machine. */
/**
 * A result, or a state, that may wait for a thread or child the pool starts now (after a kill, a crash, a
 * recycle, or to grow): such a start loads the app, as the pool's first start does, so its limit is part of this one.
 */
const RESULT_MS = START_TIMEOUT_MS + scaled(20_000);

after(() => app.close({ timeout: 0 }));

/** A worker on a threads pool consuming `queue` alone (each test its own queue), stopped when the test ends. */
const threadWorker = async (t: TestContext, queue: string, options: WorkerOptions = {}) => {
  const worker = app.worker({ pool: "threads", concurrency: 1, queues: [queue], ...options });
  t.after(() => worker.stop({ timeout: 0 }));
  await within(worker.start(), START_TIMEOUT_MS, "the pool to start");
  return worker;
};

const failureOf = async (promise: Promise<unknown>): Promise<RemoteTaskError> => {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof RemoteTaskError, `expected a RemoteTaskError, got ${String(error)}`);
    return error;
  }
  assert.fail("the task succeeded");
};

describe("a worker on a threads pool", () => {
  it("stops a task that never returns at its hard time limit, and runs the next task on a fresh thread", async (t) => {
    const worker = await threadWorker(t, "threads.hard-limit");
    const on = { queue: "threads.hard-limit" };
    const before = await (await whereami.applyAsync([], on)).get({ timeout: RESULT_MS });
    const stuck = await spin.applyAsync([], { ...on, timeLimit: 200 });
    const error = await failureOf(stuck.get({ timeout: RESULT_MS }));
    assert.equal(error.remote.name, "TimeLimitExceeded");
    assert.equal(await (await add.applyAsync([2, 3], on)).get({ timeout: RESULT_MS }), 5);
    const afterwards = await (await whereami.applyAsync([], on)).get({ timeout: RESULT_MS });
    assert.notEqual(afterwards, before, "the thread that ran the stuck task was replaced");
    assert.equal(worker.stats().children?.killed, 1);
  });

  it("stops a running task's thread when the task is revoked with terminate", async (t) => {
    const worker = await threadWorker(t, "threads.terminate");
    const stuck = await spin.applyAsync([], { queue: "threads.terminate" });
    await eventually(async () => (await stuck.state()) === "STARTED", RESULT_MS, "the task to start");
    await stuck.revoke({ terminate: true });
    await assert.rejects(
      stuck.get({ timeout: RESULT_MS }),
      (e: unknown) => e instanceof Error && e.name === "TaskRevokedError",
    );
    assert.equal(worker.stats().children?.killed, 1);
    assert.equal(await (await add.applyAsync([1, 2], { queue: "threads.terminate" })).get({ timeout: RESULT_MS }), 3);
  });

  it("applies the retry policy to a task stopped by its hard time limit", async (t) => {
    await threadWorker(t, "threads.limit-retry");
    const stuck = await spin.applyAsync([], {
      queue: "threads.limit-retry",
      timeLimit: 100,
      retry: { max: 1, delay: 0 },
    });
    const error = await failureOf(stuck.get({ timeout: RESULT_MS }));
    assert.equal(error.remote.name, "TimeLimitExceeded");
    assert.equal((await app.results.get(stuck.id))?.retries, 1, "it ran once more before failing for good");
  });

  it("fails only the task whose thread exits, and the pool goes on with a fresh thread", async (t) => {
    const worker = await threadWorker(t, "threads.exit");
    const on = { queue: "threads.exit" };
    const error = await failureOf((await exit.applyAsync([3], on)).get({ timeout: RESULT_MS }));
    assert.equal(error.remote.name, "WorkerLostError");
    assert.match(error.remote.message, /exited with code 3/);
    assert.equal(await (await add.applyAsync([1, 1], on)).get({ timeout: RESULT_MS }), 2);
    assert.equal(worker.stats().children?.lost, 1);
  });

  it("keeps an error's name, message and fields across the thread, and honours this.retry()", async (t) => {
    await threadWorker(t, "threads.errors");
    const on = { queue: "threads.errors" };
    const error = await failureOf((await fail.applyAsync(["E42"], on)).get({ timeout: RESULT_MS }));
    assert.equal(error.remote.name, "RangeError");
    assert.equal(error.remote.message, "failed with E42");
    assert.equal(await (await retrying.applyAsync([], on)).get({ timeout: RESULT_MS }), 2);
    const bare = await failureOf((await unclonable.applyAsync([], on)).get({ timeout: RESULT_MS }));
    assert.equal(bare.remote.message, "carries a socket", "an error whose fields cannot cross still fails its task");
  });

  it("aborts the task's signal in its thread at the soft time limit", async (t) => {
    await threadWorker(t, "threads.soft");
    const error = await failureOf(
      (await softly.applyAsync([10_000], { queue: "threads.soft", softTimeLimit: 100 })).get({ timeout: RESULT_MS }),
    );
    assert.equal(error.remote.name, "SoftTimeLimitExceeded");
  });

  it("says a pooled task needs a broker node to send tasks when the app uses the embedded broker", async (t) => {
    await threadWorker(t, "threads.send");
    const error = await failureOf((await send.applyAsync([], { queue: "threads.send" })).get({ timeout: RESULT_MS }));
    assert.match(error.remote.message, /use a broker node/);
  });

  it("replaces a thread after maxTasksPerChild tasks", async (t) => {
    const worker = await threadWorker(t, "threads.max-tasks", { maxTasksPerChild: 2 });
    const on = { queue: "threads.max-tasks" };
    const where: string[] = [];
    for (let i = 0; i < 4; i++) where.push(await (await whereami.applyAsync([], on)).get({ timeout: RESULT_MS }));
    assert.equal(where[0], where[1]);
    assert.equal(where[2], where[3]);
    assert.notEqual(where[1], where[2]);
    assert.equal(worker.stats().children?.recycled, 2);
  });

  it("replaces a thread whose heap grew past maxMemoryPerChild after its task", async (t) => {
    // A thread with the app loaded weighs about 50 MB of heap; holding 128 MB more crosses a 100 MB cap.
    const worker = await threadWorker(t, "threads.max-memory", { maxMemoryPerChild: 100 * 2 ** 20 });
    const on = { queue: "threads.max-memory" };
    const small = await (await hold.applyAsync([1], on)).get({ timeout: RESULT_MS });
    assert.equal(
      await (await whereami.applyAsync([], on)).get({ timeout: RESULT_MS }),
      small,
      "under the cap the thread stays",
    );
    const big = await (await hold.applyAsync([128], on)).get({ timeout: RESULT_MS });
    assert.equal(big, small);
    assert.notEqual(
      await (await whereami.applyAsync([], on)).get({ timeout: RESULT_MS }),
      big,
      "past the cap the thread was replaced",
    );
    assert.equal(worker.stats().children?.recycled, 1);
  });

  it("grows and shrinks with poolGrow and poolShrink", async (t) => {
    const worker = await threadWorker(t, "threads.resize");
    assert.equal(worker.poolGrow(2), 3);
    assert.equal(worker.stats().children?.size, 3);
    const on = { queue: "threads.resize" };
    const where = await Promise.all(
      [0, 1, 2].map(async () => (await whereami.applyAsync([], on)).get({ timeout: RESULT_MS })),
    );
    assert.equal(where.length, 3);
    assert.equal(worker.poolShrink(5), 1, "never fewer than one");
    assert.equal(worker.stats().concurrency, 1);
    assert.equal(await (await add.applyAsync([2, 2], on)).get({ timeout: RESULT_MS }), 4);
    await eventually(() => worker.stats().children?.size === 1, 5_000, "the pool to keep one thread");
  });
});
