/**
 * A CPU-bound task on a pooled worker over a broker node: the worker's own
 * event loop stays free to renew its leases, so a task far longer than the
 * lease is not given to anyone else. On the async pool the same task starves
 * the renewals and the node takes its delivery back.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { BrokerNode } from "../broker/node/node-server.ts";
import { serveResults } from "../runtime/results/result-service.ts";
import { scaled, within } from "./support/waits.ts";
import { START_TIMEOUT_MS } from "./support/watched-process.ts";

/** How long the task computes: 8 lease periods by default; CELERITY_POOL_LONG_TASK_MS=60000 for the full minute. */
const TASK_MS = Number(process.env.CELERITY_POOL_LONG_TASK_MS ?? 8_000);
const LEASE_MS = 1_000;

describe("a pooled worker over a broker node", () => {
  it(`keeps the lease of a ${TASK_MS / 1000}-second CPU-bound task with a ${LEASE_MS} ms lease: it runs once, never redelivered`, {
    timeout: scaled(TASK_MS + 60_000),
  }, async (t) => {
    const nodeLog: string[] = [];
    const node = await BrokerNode.start({ port: 0, log: (line) => nodeLog.push(line) });
    serveResults(node);
    const dir = mkdtempSync(join(tmpdir(), "celerity-pool-lease-"));
    process.env.CELERITY_POOL_TEST_BROKER = node.url;
    const { app, crunch } = await import("./fixtures/pool-node-app.ts");
    // The app before its node: a worker stopping against a node that is gone would wait for it to come back.
    t.after(async () => {
      await app.close({ timeout: 0 });
      await node.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    const worker = app.worker({ pool: "threads", concurrency: 1, leaseMs: LEASE_MS });
    await within(worker.start(), START_TIMEOUT_MS, "the pool to start");
    const runs = join(dir, "runs");
    const result = await crunch.delay(TASK_MS, runs);
    assert.equal(await result.get({ timeout: TASK_MS + scaled(30_000) }), true);
    assert.equal(readFileSync(runs, "utf8").trim().split("\n").length, 1, "the task ran once");
    assert.deepEqual(
      nodeLog.filter((line) => /ran out/.test(line)),
      [],
      "no lease ran out",
    );

    // The same task on the async pool blocks the renewals: the node takes the delivery back (what the pool prevents).
    await worker.stop();
    const blocked = app.worker({ concurrency: 1, leaseMs: LEASE_MS });
    await blocked.start();
    await (await crunch.delay(3 * LEASE_MS, join(dir, "async-runs"))).get({ timeout: scaled(30_000) });
    assert.ok(
      nodeLog.some((line) => /ran out after 1000 ms without renewal/.test(line)),
      `on the async pool the lease ran out: ${nodeLog.join("\n")}`,
    );
  });
});
