import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createApp } from "../app.ts";
import { eventually } from "../test-support.ts";

describe("a worker on the async pool", () => {
  it("warns, naming the task, when a task blocks its event loop longer than blockWarnMs", async (t) => {
    const logs: string[] = [];
    const app = createApp({ log: (line) => logs.push(line) });
    t.after(() => app.close());
    const burn = app.task("burn", (ms: number) => {
      const end = Date.now() + ms;
      while (Date.now() < end);
      return ms;
    });
    const quick = app.task("quick", () => 1);
    await app.worker({ blockWarnMs: 100 }).start();
    await (await quick.delay()).get({ timeout: 5_000 });
    assert.deepEqual(logs, [], "a quick task does not warn");
    const r = await burn.delay(250);
    await r.get({ timeout: 5_000 });
    assert.equal(logs.length, 1);
    assert.match(
      logs[0],
      new RegExp(`task 'burn' \\(${r.id}\\) blocked the event loop for \\d+ ms \\(warning at 100 ms\\)`),
    );
    assert.match(logs[0], /threads or process pool/);
  });
});

describe("a worker on the async pool, with an async task", () => {
  it("warns, naming the task, when an async task blocks the event loop after an await", async (t) => {
    const logs: string[] = [];
    const app = createApp({ log: (line) => logs.push(line) });
    t.after(() => app.close());
    const later = app.task("later", async (ms: number) => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      const end = Date.now() + ms;
      while (Date.now() < end);
      return ms;
    });
    await app.worker({ blockWarnMs: 100 }).start();
    const r = await later.delay(400);
    await r.get({ timeout: 5_000 });
    // The watch sees the block at its first tick after it, which may come after the result.
    await eventually(() => logs.length > 0, 5_000, "the warning");
    assert.equal(logs.length, 1, logs.join("\n"));
    assert.match(logs[0], new RegExp(`task 'later' \\(${r.id}\\) blocked the event loop for \\d+ ms`));
  });
});
