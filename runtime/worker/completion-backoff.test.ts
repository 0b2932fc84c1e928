import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { within } from "../../tests/support/waits.ts";
import { createApp } from "../app.ts";
import { MemoryResultStore } from "../results/result-store.ts";
import type { FinalOutcome } from "../results/result-store.ts";

/** A store that cannot take a final outcome, as on a full disk. */
class FullDiskStore extends MemoryResultStore {
  refusing = true;
  override complete(id: string, task: string, outcome: FinalOutcome): boolean {
    if (this.refusing) throw Object.assign(new Error("ENOSPC: no space left on device"), { code: "ENOSPC" });
    return super.complete(id, task, outcome);
  }
}

describe("a worker whose results cannot be stored", () => {
  it("backs off before each message goes back, instead of spinning on redeliveries, and runs it once the store recovers", async (t) => {
    const results = new FullDiskStore();
    const logs: string[] = [];
    const app = createApp({ results, log: (line) => logs.push(line) });
    t.after(() => app.close({ timeout: 1_000 }));
    const runs: number[] = [];
    let fifth!: () => void;
    const fiveRuns = new Promise<void>((resolve) => (fifth = resolve));
    const job = app.task("backoff.job", async () => {
      runs.push(Date.now());
      if (runs.length === 5) fifth();
      return "done";
    });
    await app.worker({ concurrency: 1 }).start();
    const result = await job.delay();
    await within(fiveRuns, 10_000, "five runs of the task");
    const waited = runs[4] - runs[0];
    // 50 + 100 + 200 + 400 ms between the runs at least: without the backoff they followed each other at once.
    assert.ok(waited >= 700, `five runs took only ${waited} ms: the worker spun on its redeliveries`);
    results.refusing = false;
    assert.equal(await result.get({ timeout: 10_000 }), "done");
  });
});
