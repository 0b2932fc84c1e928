// A run whose handler has returned leaves its slot while a remote store records its outcome.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { eventually, within } from "../../tests/support/waits.ts";
import { createApp } from "../app.ts";
import { MemoryResultStore, type FinalOutcome, type ResultStore } from "../results/result-store.ts";

/** A memory store whose outcomes are recorded only when the test lets them, as a remote store that has not answered yet. */
const heldAnswersStore = () => {
  const memory = new MemoryResultStore();
  const held: (() => void)[] = [];
  let holding = true;
  const complete = (id: string, task: string, outcome: FinalOutcome): Promise<boolean> =>
    new Promise((resolve, reject) => {
      const answer = () => {
        try {
          resolve(memory.complete(id, task, outcome));
        } catch (error) {
          reject(error);
        }
      };
      if (holding) held.push(answer);
      else answer();
    });
  const store: ResultStore = new Proxy(memory, {
    get: (target, key, receiver) => (key === "complete" ? complete : Reflect.get(target, key, receiver)),
  });
  return {
    store,
    get waiting() {
      return held.length;
    },
    answerAll() {
      holding = false;
      for (const answer of held.splice(0)) answer();
    },
  };
};

const setUp = async (concurrency: number, prefetch?: number, acksLate = true) => {
  const results = heldAnswersStore();
  const app = createApp({ results: results.store, log: () => {} });
  const ran: number[] = [];
  const job = app.task(
    "aside.job",
    (n: number) => {
      ran.push(n);
      return n * 2;
    },
    { acksLate },
  );
  const worker = app.worker({ concurrency, ...(prefetch !== undefined ? { prefetch } : {}) });
  await worker.start();
  const stats = () => app.broker.stats("celery");
  return { app, results, job, ran, worker, stats };
};

describe("a run whose outcome a remote store is still recording", () => {
  it("frees its slot for the next task, and its message is acknowledged only once the outcome is recorded", async (t) => {
    const { app, results, job, ran, stats } = await setUp(1);
    t.after(() => app.close({ timeout: 1_000 }));
    const sent = [await job.delay(1), await job.delay(2), await job.delay(3)];
    await eventually(() => ran.length === 3, { what: "all three tasks to run on one slot" });
    assert.deepEqual(ran, [1, 2, 3]);
    assert.equal(results.waiting, 3, "no outcome recorded yet");
    assert.equal((await stats()).unacked, 3, "the messages are held until their outcomes are recorded");
    results.answerAll();
    assert.deepEqual(await Promise.all(sent.map((r) => within(r.get(), 2_000, "a result"))), [2, 4, 6]);
    await eventually(async () => (await stats()).unacked === 0, { what: "the messages to be acknowledged" });
  });

  it("keeps the slot once prefetch runs are settling, so early-acked tasks cannot pile up outcomes", async (t) => {
    const { app, results, job, ran } = await setUp(1, 2, false);
    t.after(() => app.close({ timeout: 1_000 }));
    for (let n = 0; n < 6; n++) await job.delay(n);
    // Two settle aside; the third keeps the one slot until an outcome is recorded.
    await eventually(() => ran.length === 3, { what: "three tasks to run" });
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(ran.length, 3, "a fourth task started while prefetch outcomes were unrecorded");
    results.answerAll();
    await eventually(() => ran.length === 6, { what: "the rest to run once outcomes are recorded" });
  });

  it("is waited for by stop(), which returns once every outcome is recorded and acknowledged", async (t) => {
    const { app, results, job, ran, worker, stats } = await setUp(2);
    t.after(() => app.close({ timeout: 1_000 }));
    const sent = [await job.delay(1), await job.delay(2)];
    await eventually(() => ran.length === 2, { what: "both tasks to run" });
    let stopped = false;
    const stopping = worker.stop().then(() => (stopped = true));
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(stopped, false, "stop() returned while outcomes were still being recorded");
    results.answerAll();
    await within(stopping, 2_000, "the worker to stop");
    assert.deepEqual(await Promise.all(sent.map((r) => r.get({ timeout: 2_000 }))), [2, 4]);
    const { ready, unacked } = await stats();
    assert.equal(ready + unacked, 0, "a recorded task went back to the queue");
  });
});
