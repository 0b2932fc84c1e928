/**
 * A worker process told to stop always exits, whatever happens to its node
 * at the same moment: stopped with it, gone before it, or gone while a task
 * runs.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApp } from "../runtime/app.ts";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { scaled } from "./support/waits.ts";
import { celerity, START_TIMEOUT_MS } from "./support/watched-process.ts";

const FAULT_APP = fileURLToPath(new URL("./fixtures/fault-app.ts", import.meta.url));

const startPair = async (t: { after: (fn: () => unknown) => void }) => {
  const broker = celerity("broker", ["broker", "--port", "0"]);
  t.after(() => broker.kill());
  const [, url] = await broker.waitFor(/listening on (celerity:\/\/\S+)/, START_TIMEOUT_MS);
  const worker = celerity("worker", ["worker", "--app", FAULT_APP, "--broker", url, "--concurrency", "2"]);
  t.after(() => worker.kill());
  await worker.waitFor(/consuming with concurrency/, START_TIMEOUT_MS);
  return { broker, worker, url };
};

describe("a stopping worker process", () => {
  it("exits when it and its node are stopped with SIGTERM together", { timeout: scaled(60_000) }, async (t) => {
    const { broker, worker } = await startPair(t);
    broker.child.kill("SIGTERM");
    worker.child.kill("SIGTERM");
    const exit = await worker.exit(scaled(15_000));
    assert.equal(exit.signal, null, `the worker exited by itself\n${worker.tail()}`);
    await broker.exit(scaled(15_000));
  });

  it("exits when told to stop after its node is gone", { timeout: scaled(60_000) }, async (t) => {
    const { broker, worker } = await startPair(t);
    await broker.stop("SIGKILL", scaled(10_000));
    worker.child.kill("SIGTERM");
    const exit = await worker.exit(scaled(15_000));
    assert.equal(exit.signal, null, `the worker exited by itself\n${worker.tail()}`);
  });

  it("exits when its node stops while a task runs, and the task then finishes", {
    timeout: scaled(90_000),
  }, async (t) => {
    const { broker, worker, url } = await startPair(t);
    const dir = mkdtempSync(join(tmpdir(), "celerity-exit-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const producer = createApp({ broker: url });
    t.after(() => producer.close({ timeout: 1_000 }).catch(() => {}));
    await producer.sendTask("fault.wait-file", [7, join(dir, "go")]);
    await worker.waitFor(/waiting 7/, START_TIMEOUT_MS);
    broker.child.kill("SIGTERM");
    worker.child.kill("SIGTERM");
    await broker.exit(scaled(15_000));
    writeFileSync(join(dir, "go"), "");
    const started = Date.now();
    const exit = await worker.exit(scaled(20_000));
    assert.equal(exit.signal, null, `the worker exited by itself\n${worker.tail()}`);
    assert.ok(
      Date.now() - started < 10_000,
      `the worker exited in ${Date.now() - started} ms, without waiting out a request timeout`,
    );
  });
});
