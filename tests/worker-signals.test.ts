/**
 * `celerity worker --pool threads` as a real process, stopped by signals
 * with tasks in flight: SIGTERM is a warm shutdown (running tasks finish,
 * held messages go back), a second signal a cold one (running tasks are
 * aborted and requeued). Nothing is lost either way. Every wait is on an
 * event with a deadline; every process is killed when the test ends.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it, type TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import { BrokerNode } from "../broker/node/node-server.ts";
import { createApp } from "../runtime/app.ts";
import { serveResults } from "../runtime/results/result-service.ts";
import { eventually, scaled, within } from "./support/waits.ts";

const CLI = fileURLToPath(new URL("../src/cli.js", import.meta.url));
const APP = fileURLToPath(new URL("./fixtures/pool-node-app.ts", import.meta.url));
const START_MS = scaled(30_000);

/** A node, a producer app, and a `celerity worker --pool threads` process, all stopped when the test ends. */
const setup = async (t: TestContext) => {
  const node = await BrokerNode.start({ port: 0, log: () => {} });
  serveResults(node);
  const dir = mkdtempSync(join(tmpdir(), "celerity-signals-"));
  const producer = createApp({ broker: node.url, log: () => {} });
  let output = "";
  const worker: ChildProcess = spawn(
    process.execPath,
    [CLI, "worker", "--app", APP, "--broker", node.url, "--pool", "threads", "--concurrency", "2"],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const exited = new Promise<number | null>((resolve) => worker.on("exit", (code) => resolve(code)));
  const lines: ((line: string) => void)[] = [];
  for (const stream of [worker.stdout!, worker.stderr!]) {
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      output += chunk;
      for (const listener of lines) listener(output);
    });
  }
  const waitFor = (pattern: RegExp, ms: number, what: string) =>
    within(
      new Promise<void>((resolve) => {
        if (pattern.test(output)) return resolve();
        lines.push((all) => pattern.test(all) && resolve());
      }),
      ms,
      what,
      () => output,
    );
  t.after(async () => {
    worker.kill("SIGKILL");
    await producer.close();
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  await waitFor(/consuming with concurrency 2 on the threads pool/, START_MS, "the worker to start");
  const runs = join(dir, "runs");
  const runCount = () => {
    try {
      return readFileSync(runs, "utf8").trim().split("\n").length;
    } catch {
      return 0;
    }
  };
  return { producer, worker, exited, waitFor, runs, runCount, output: () => output };
};

describe("celerity worker stopped by signals", () => {
  it("SIGTERM finishes the running tasks and gives the held messages back", async (t) => {
    const { producer, worker, exited, runs, runCount, output } = await setup(t);
    const sent = await Promise.all([0, 1, 2, 3].map(() => producer.sendTask("crunch", [1_500, runs])));
    await eventually(() => runCount() === 2, { timeoutMs: scaled(20_000), what: "two tasks running", intervalMs: 20 });
    worker.kill("SIGTERM");
    assert.equal(await within(exited, scaled(20_000), "the worker to exit", output), 0);
    const states = await Promise.all(sent.map((r) => r.state()));
    assert.equal(states.filter((state) => state === "SUCCESS").length, 2, `the running two finished: ${states}`);
    assert.equal((await producer.broker.stats("celery")).ready, 2, "the two held messages are back in the queue");
    assert.equal(runCount(), 2);
  });

  it("a second signal aborts the running tasks and requeues them, without waiting for them", async (t) => {
    const { producer, worker, exited, waitFor, runs, runCount, output } = await setup(t);
    const sent = await Promise.all([0, 1].map(() => producer.sendTask("crunch", [120_000, runs])));
    await eventually(() => runCount() === 2, { timeoutMs: scaled(20_000), what: "two tasks running", intervalMs: 20 });
    worker.kill("SIGTERM");
    await waitFor(/warm shutdown/, scaled(10_000), "the warm shutdown to begin");
    worker.kill("SIGINT");
    assert.equal(await within(exited, scaled(20_000), "the worker to exit", output), 0);
    assert.match(output(), /cold shutdown: aborting 2 running tasks/);
    assert.deepEqual(
      await Promise.all(sent.map((r) => r.state())),
      ["STARTED", "STARTED"],
      "neither finished nor failed",
    );
    assert.equal((await producer.broker.stats("celery")).ready, 2, "both messages are back in the queue");
  });
});
