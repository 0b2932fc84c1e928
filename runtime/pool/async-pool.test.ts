import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createApp } from "../app.ts";

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
    assert.match(logs[0], new RegExp(`task 'burn' \\(${r.id}\\) blocked the event loop for \\d+ ms \\(warning at 100 ms\\)`));
    assert.match(logs[0], /threads or process pool/);
  });
});
