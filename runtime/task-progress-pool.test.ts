import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, it } from "node:test";
import { scaled, within } from "../tests/support/waits.ts";
import { START_TIMEOUT_MS } from "../tests/support/watched-process.ts";
import { eventually } from "./test-support.ts";
import { app, steps } from "./test-fixtures/progress-pool-app.ts";

after(() => app.close({ timeout: 0 }));

it("records the progress a task reports from a thread pool's thread", async (t) => {
  const worker = app.worker({ pool: "threads", concurrency: 1, queues: ["progress.threads"] });
  t.after(() => worker.stop({ timeout: 0 }));
  await within(worker.start(), START_TIMEOUT_MS, "the pool to start");
  const path = join(tmpdir(), `celerity-pooled-progress-${randomUUID()}`);
  t.after(() => rmSync(path, { force: true }));
  const result = await steps.applyAsync([path], { queue: "progress.threads" });
  await eventually(async () => (await result.info()) !== undefined, 20_000, "the thread's report");
  assert.deepEqual(await result.info(), { state: "COPYING", done: 1, total: 2 });
  assert.equal((await result.progress()).fraction, 0.5);
  writeFileSync(path, "");
  assert.equal(await result.get({ timeout: scaled(20_000) }), "copied");
});
