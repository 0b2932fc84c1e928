/**
 * Rate limits across processes: a `celerity broker` node and several
 * `celerity worker` processes sharing one global limit. Start times are
 * taken by the tasks themselves (one machine, one clock) and checked against
 * burst + rate x T. Every wait is on an event (a log line, a result),
 * bounded by a timeout that fails with the children's output; every process
 * started is killed at the end, even when the test fails.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { createApp } from "../runtime/app.ts";
import { scaled } from "./support/waits.ts";
import { celerity, START_TIMEOUT_MS, type WatchedProcess } from "./support/watched-process.ts";

const RATE_APP = fileURLToPath(new URL("./fixtures/rate-app.ts", import.meta.url));
const RATE_PER_S = 20;
const BURST = 5;

/** Most starts in any window of `windowMs` (sorted start times). */
const mostInWindow = (starts: readonly number[], windowMs: number): number => {
  let most = 0;
  for (let i = 0, j = 0; j < starts.length; j++) {
    while (starts[j] - starts[i] > windowMs) i++;
    most = Math.max(most, j - i + 1);
  }
  return most;
};

describe("a global rate limit across worker processes", () => {
  it("keeps three worker processes on one node together under burst + rate x T, measured from task start times", async () => {
    const children: WatchedProcess[] = [];
    let producer: ReturnType<typeof createApp> | undefined;
    try {
      const broker = celerity("broker", ["broker", "--port", "0"]);
      children.push(broker);
      const [, url] = await broker.waitFor(/listening on (celerity:\/\/[\d.]+:\d+)/, START_TIMEOUT_MS);
      const workers = [1, 2, 3].map((n) =>
        celerity(`worker-${n}`, [
          "worker",
          "--app",
          RATE_APP,
          "--broker",
          url,
          "--concurrency",
          "2",
          "--name",
          `w${n}`,
        ]),
      );
      children.push(...workers);
      await Promise.all(workers.map((worker) => worker.waitFor(/consuming with concurrency/, START_TIMEOUT_MS)));

      producer = createApp({ broker: url, log: () => {} });
      const results = [];
      for (let i = 0; i < 60; i++) results.push(await producer.sendTask<[number, number]>("rate.tick", []));
      const outcomes = await Promise.all(results.map((r) => r.get({ timeout: scaled(30_000) })));
      const starts = outcomes.map(([at]) => at).sort((a, b) => a - b);
      const pids = new Set(outcomes.map(([, pid]) => pid));
      assert.ok(pids.size >= 2, `the work was shared (ran on ${pids.size} worker processes)`);

      // A token is granted on the node and the task starts after the reply reaches its worker: starts may
      // lag their grant by that latency, and two starts may come closer than their tokens did. Allowed: 100 ms.
      const lagMs = 100;
      for (const windowMs of [0, 25, 50, 100, 250, 500, 1_000, 2_000]) {
        const most = mostInWindow(starts, windowMs);
        const limit = BURST + (RATE_PER_S * (windowMs + lagMs)) / 1_000;
        assert.ok(
          most <= limit,
          `${most} starts within ${windowMs} ms across ${pids.size} workers; the limit allows ${limit}`,
        );
      }
      // Per-worker buckets would have let the three run at three times the rate.
      const spanMs = starts[starts.length - 1] - starts[0];
      assert.ok(spanMs >= ((60 - BURST) / RATE_PER_S) * 1_000 - lagMs, `60 starts took ${spanMs} ms`);
    } finally {
      await producer?.close();
      for (const child of children.reverse()) await child.kill();
    }
  });
});
