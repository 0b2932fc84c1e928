/**
 * `celerity worker --pool threads` as a real process, stopped by signals
 * with tasks in flight: SIGTERM is a warm shutdown (running tasks finish,
 * held messages go back), a second signal a cold one (running tasks are
 * aborted and requeued). Nothing is lost either way. Every wait is on an
 * event with a deadline; every process is killed when the test ends.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it, type TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import { BrokerNode } from "../broker/node/node-server.ts";
import { createApp } from "../runtime/app.ts";
import { serveResults } from "../runtime/results/result-service.ts";
import { eventually, scaled } from "./support/waits.ts";
import { celerity, START_TIMEOUT_MS } from "./support/watched-process.ts";

const APP = fileURLToPath(new URL("./fixtures/pool-node-app.ts", import.meta.url));

/** A node, a producer app, and a `celerity worker --pool threads` process, all stopped when the test ends. */
const setup = async (t: TestContext) => {
  const node = await BrokerNode.start({ port: 0, log: () => {} });
  serveResults(node);
  const dir = mkdtempSync(join(tmpdir(), "celerity-signals-"));
  const producer = createApp({ broker: node.url, log: () => {} });
  const worker = celerity("worker", [
    "worker",
    "--app",
    APP,
    "--broker",
    node.url,
    "--pool",
    "threads",
    "--concurrency",
    "2",
  ]);
  t.after(async () => {
    await worker.kill();
    await producer.close();
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  await worker.waitFor(/consuming with concurrency 2 on the threads pool/, START_TIMEOUT_MS);
  const runs = join(dir, "runs");
  const runCount = () => {
    try {
      return readFileSync(runs, "utf8").trim().split("\n").length;
    } catch {
      return 0;
    }
  };
  return { producer, worker, runs, runCount };
};

describe("celerity worker stopped by signals", () => {
  it("SIGTERM finishes the running tasks and gives the held messages back", async (t) => {
    const { producer, worker, runs, runCount } = await setup(t);
    const sent = await Promise.all([0, 1, 2, 3].map(() => producer.sendTask("crunch", [1_500, runs])));
    await eventually(() => runCount() === 2, { timeoutMs: scaled(20_000), what: "two tasks running", intervalMs: 20 });
    assert.equal((await worker.stop("SIGTERM", scaled(20_000))).code, 0);
    const states = await Promise.all(sent.map((r) => r.state()));
    assert.equal(states.filter((state) => state === "SUCCESS").length, 2, `the running two finished: ${states}`);
    assert.equal((await producer.broker.stats("celery")).ready, 2, "the two held messages are back in the queue");
    assert.equal(runCount(), 2);
  });

  it("a second signal aborts the running tasks and requeues them, without waiting for them", async (t) => {
    const { producer, worker, runs, runCount } = await setup(t);
    const sent = await Promise.all([0, 1].map(() => producer.sendTask("crunch", [120_000, runs])));
    await eventually(() => runCount() === 2, { timeoutMs: scaled(20_000), what: "two tasks running", intervalMs: 20 });
    worker.child.kill("SIGTERM");
    await worker.waitFor(/warm shutdown/, scaled(10_000));
    assert.equal((await worker.stop("SIGINT", scaled(20_000))).code, 0);
    assert.match(worker.output, /cold shutdown: aborting 2 running tasks/);
    assert.deepEqual(
      await Promise.all(sent.map((r) => r.state())),
      ["STARTED", "STARTED"],
      "neither finished nor failed",
    );
    assert.equal((await producer.broker.stats("celery")).ready, 2, "both messages are back in the queue");
  });
});
