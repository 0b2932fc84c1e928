import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import { BrokerNode } from "../broker/node/node-server.ts";
import type { Progress } from "../dsl/result.ts";
import { createApp } from "../runtime/app.ts";
import { serveResults } from "../runtime/results/result-service.ts";
import { scaled, within } from "./support/waits.ts";
import { celerity, START_TIMEOUT_MS } from "./support/watched-process.ts";

const APP = "tests/fixtures/progress-app.ts";

it("shows a task's progress, custom state and metadata, reported by a worker process, to a caller in another", async (t) => {
  const node = await BrokerNode.start({ port: 0, log: () => {} });
  serveResults(node);
  const caller = createApp({ broker: node.url, log: () => {} });
  const worker = celerity("worker", ["worker", "--app", APP, "--broker", node.url, "--concurrency", "1"]);
  const stops: (() => void)[] = [];
  t.after(async () => {
    for (const stop of stops) stop();
    await worker.kill();
    await caller.close();
    await node.stop();
  });
  await worker.waitFor(/consuming with concurrency/, START_TIMEOUT_MS, { stream: "stderr" });

  const path = join(tmpdir(), `celerity-progress-${randomUUID()}`);
  const result = await caller.sendTask<string>("progress.steps", [path]);
  const seen: Progress[] = [];
  const waiting = new Set<{ test: (p: Progress) => boolean; resolve: () => void }>();
  const observed = (test: (p: Progress) => boolean, what: string) =>
    within(
      new Promise<void>((resolve) => {
        if (seen.some(test)) return resolve();
        waiting.add({ test, resolve });
      }),
      scaled(10_000),
      what,
      () => `seen: ${JSON.stringify(seen)}\n${worker.tail()}`,
    );
  stops.push(
    result.onProgress(
      (progress) => {
        seen.push(progress);
        for (const waiter of waiting) if (waiter.test(progress)) waiter.resolve();
      },
      { interval: 20 },
    ),
  );

  await observed((p) => p.info?.done === 1, "the first report");
  assert.deepEqual(await result.info(), { state: "PROGRESS", done: 1, total: 3 });
  assert.equal(await result.state(), "STARTED");
  writeFileSync(`${path}.1`, "");
  await observed((p) => p.info?.state === "UPLOADING", "the custom state");
  assert.deepEqual(await result.info(), {
    state: "UPLOADING",
    done: 2,
    total: 3,
    meta: { file: "a.png", bytes: 1024 },
  });
  const before = seen.at(-1) as Progress;
  assert.ok(Math.abs(before.fraction - 2 / 3) < 1e-9, `fraction ${before.fraction}`);
  writeFileSync(`${path}.2`, "");
  assert.equal(await result.get({ timeout: scaled(10_000) }), "uploaded");
  await observed((p) => p.completed === 1, "the last call, once finished");
  const last = seen.at(-1) as Progress;
  assert.equal(last.fraction, 1);
  assert.equal(last.succeeded, 1);
  // Reports arrive in order, and each change is told once.
  const dones = seen.map((p) => p.info?.done ?? 0);
  assert.deepEqual(
    dones,
    [...dones].sort((a, b) => a - b),
  );
  assert.equal(new Set(seen.map((p) => JSON.stringify(p))).size, seen.length);
});
