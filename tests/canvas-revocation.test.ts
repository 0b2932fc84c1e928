/**
 * Revocation of workflow steps with the worker in another process: a
 * `celerity worker` child runs tests/fixtures/canvas-app.ts against a broker
 * node in this process. Every wait is bounded by a timeout that fails with
 * the worker's output; the worker and the node are stopped even when a test
 * fails.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { BrokerNode } from "../broker/node/node-server.ts";
import { chain } from "../dsl/combinators.ts";
import { createApp } from "../runtime/app.ts";
import { TaskRevokedError } from "../runtime/errors.ts";
import { serveResults } from "../runtime/results/result-service.ts";
import { seeded } from "./support/seeded-random.ts";
import { scaled, within } from "./support/waits.ts";
import { celerity, START_TIMEOUT_MS, type WatchedProcess } from "./support/watched-process.ts";

const CANVAS_APP = fileURLToPath(new URL("./fixtures/canvas-app.ts", import.meta.url));

/** Stop a worker gracefully (it finishes its running tasks) and wait for the exit: all its output is then read. */
const stopWorker = async (worker: WatchedProcess): Promise<void> => {
  await worker.stop("SIGTERM", scaled(15_000)).catch(() => worker.kill());
};

const setup = async (t: { after(fn: () => unknown): void }, concurrency: number) => {
  const node = await BrokerNode.start({ port: 0, log: () => {} });
  serveResults(node);
  const worker = celerity("worker", [
    "worker",
    "--app",
    CANVAS_APP,
    "--broker",
    node.url,
    "--concurrency",
    String(concurrency),
  ]);
  const logs: string[] = [];
  const app = createApp({ broker: node.url, log: (line) => logs.push(line) });
  t.after(async () => {
    await stopWorker(worker);
    await app.close().catch(() => {});
    await node.stop();
  });
  await worker.waitFor(/consuming with concurrency/, START_TIMEOUT_MS, { stream: "stderr" });
  const step = app.task("canvas.step", (tag: string) => tag);
  const next = app.task("canvas.next", (value: string) => value);
  const hold = app.task("canvas.hold", (path: string) => path);
  return { app, worker, step, next, hold };
};

describe("revoking workflow steps while a worker in another process runs them", () => {
  it("never runs a step it records REVOKED, and never advances a chain past a step that did not succeed, however the revocation races the step", async (t) => {
    const { app, worker, step, next } = await setup(t, 8);
    const seed = Number(process.env.CELERITY_TEST_SEED ?? Date.now() % 1_000_000);
    const random = seeded(seed);
    const chains: { first: string; second: string }[] = [];
    const CHAINS = 400;
    const BATCH = 20;
    for (let b = 0; b < CHAINS / BATCH; b++) {
      await Promise.all(
        Array.from({ length: BATCH }, async (_, i) => {
          const r = await chain(step.s(`c${b * BATCH + i}`), next.s()).apply();
          const first = r.parent!.id;
          chains.push({ first, second: r.id });
          // Revoke at a random moment: before delivery, while held, while running, or after the step finished.
          const wait = Math.floor(random() * 5);
          if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait - 1));
          await app.revoke([first]);
          await within(
            within(r.get(), scaled(5_000), "the step raced by its revocation").catch(() => undefined),
            scaled(20_000),
            `chain ${b * BATCH + i} to settle`,
            () => worker.tail(),
          );
        }),
      );
    }
    await stopWorker(worker);
    const ran = new Set(
      worker.printed.filter((l) => l.stream === "stdout" && l.line.startsWith("ran ")).map((l) => l.line.slice(4)),
    );
    let revoked = 0;
    let succeeded = 0;
    for (const { first, second } of chains) {
      const [one, two] = [await app.result(first).state(), await app.result(second).state()];
      const context = `seed ${seed}, chain ${first} → ${second}: first ${one}${ran.has(first) ? " (ran)" : ""}, second ${two}${ran.has(second) ? " (ran)" : ""}`;
      if (one === "SUCCESS") {
        succeeded++;
        assert.ok(ran.has(first), context);
        assert.equal(two, "SUCCESS", context);
        continue;
      }
      revoked++;
      assert.equal(one, "REVOKED", context);
      assert.equal(two, "FAILURE", context);
      assert.ok(!ran.has(second), `the step after a revoked step ran: ${context}`);
      const error = await app.result(second).error();
      assert.match(error?.message ?? "", /TaskRevokedError/, context);
      assert.ok(!ran.has(first), `a step recorded REVOKED ran: ${context}`);
    }
    t.diagnostic(`seed ${seed}: ${revoked} chains stopped at a revoked first step, ${succeeded} ran through`);
    // Both outcomes must occur, or the revokes did not race the steps at all.
    assert.ok(revoked > 0 && succeeded > 0, `seed ${seed}: ${revoked} revoked, ${succeeded} succeeded`);
  });

  it("revoking a running chain with terminate records every step REVOKED, and get() rejects with TaskRevokedError", async (t) => {
    const { app, worker, hold, next } = await setup(t, 2);
    const dir = mkdtempSync(join(tmpdir(), "celerity-canvas-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const r = await chain(hold.s(join(dir, "never")), next.s(), next.s()).apply();
    await worker.waitFor(new RegExp(`holding ${r.parent!.parent!.id}`), scaled(10_000), { stream: "stdout" });
    await r.revoke({ terminate: true });
    await assert.rejects(
      within(r.get(), scaled(10_000), "the chain to settle", () => worker.tail()),
      TaskRevokedError,
    );
    for (const id of [r.parent!.parent!.id, r.parent!.id, r.id]) {
      // The running step is recorded by its worker once it has abandoned it: wait for that write.
      await assert.rejects(
        within(app.result(id).get(), scaled(10_000), `step ${id} to settle`, () => worker.tail()),
        TaskRevokedError,
      );
      assert.equal(await app.result(id).state(), "REVOKED", `step ${id}`);
    }
    writeFileSync(join(dir, "never"), "");
  });
});
