import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { App } from "./app.ts";
import { eventually } from "./test-support.ts";
import { APPS_ON_BROKERS, embeddedApp } from "../tests/support/apps-on-brokers.ts";

/** Every hook, recording "<hook> <task> <detail>" in order. */
const recordAll = (app: App, calls: string[]) => {
  app.on("workerReady", ({ worker }) => void calls.push(`workerReady ${worker}`));
  app.on("workerShutdown", ({ worker }) => void calls.push(`workerShutdown ${worker}`));
  app.on(
    "taskPrerun",
    ({ task, retries, args }) => void calls.push(`prerun ${task} try=${retries} args=${JSON.stringify(args)}`),
  );
  app.on("taskSuccess", ({ task, result }) => void calls.push(`success ${task} ${JSON.stringify(result)}`));
  app.on("taskFailure", ({ task, error }) => void calls.push(`failure ${task} ${(error as Error).message}`));
  app.on("taskRetry", ({ task, error }) => void calls.push(`retry ${task} ${(error as Error).message}`));
  app.on("taskPostrun", ({ task, outcome }) => void calls.push(`postrun ${task} ${outcome}`));
};

for (const [name, make] of APPS_ON_BROKERS) {
  describe(`hooks around execution over the ${name}`, () => {
    it("calls workerReady, then prerun, success and postrun around a task with its result recorded, then workerShutdown", async (t) => {
      const logs: string[] = [];
      const app = await make(t, logs);
      const calls: string[] = [];
      recordAll(app, calls);
      let recordedAtSuccess: string | undefined;
      const add = app.task("add", (x: number, y: number) => x + y);
      app.on("taskSuccess", async ({ id }) => {
        recordedAtSuccess = await app.result(id).state();
      });
      const worker = app.worker({ name: "w1" });
      await worker.start();
      assert.equal(await (await add.delay(2, 3)).get({ timeout: 5_000 }), 5);
      await eventually(() => calls.includes("postrun add succeeded"), 2_000, "the postrun hook");
      await worker.stop();
      assert.deepEqual(calls, [
        "workerReady w1",
        "prerun add try=0 args=[2,3]",
        "success add 5",
        "postrun add succeeded",
        "workerShutdown w1",
      ]);
      await eventually(() => recordedAtSuccess !== undefined, 2_000, "the async success hook");
      assert.equal(recordedAtSuccess, "SUCCESS");
      assert.deepEqual(logs, []);
    });

    it("calls retry on each failed try and failure on the last, each followed by postrun", async (t) => {
      const logs: string[] = [];
      const app = await make(t, logs);
      const calls: string[] = [];
      recordAll(app, calls);
      const flaky = app.task(
        "flaky",
        function () {
          throw new Error(`try ${this.retries + 1} failed`);
        },
        { retry: { max: 1, delay: 1 } },
      );
      await app.worker({ name: "w2" }).start();
      await assert.rejects((await flaky.delay()).get({ timeout: 5_000 }), /try 2 failed/);
      await eventually(() => calls.includes("postrun flaky failed"), 2_000, "the last postrun hook");
      // The retry is sent before the first try's hooks run, so the second try may start among them.
      const firstTry = calls.filter((call) => !/try=1|try 2|postrun flaky failed/.test(call));
      const secondTry = calls.filter((call) => /try=1|try 2|postrun flaky failed/.test(call));
      assert.deepEqual(firstTry, [
        "workerReady w2",
        "prerun flaky try=0 args=[]",
        "retry flaky try 1 failed",
        "postrun flaky retried",
      ]);
      assert.deepEqual(secondTry, ["prerun flaky try=1 args=[]", "failure flaky try 2 failed", "postrun flaky failed"]);
      assert.ok(calls.indexOf("prerun flaky try=0 args=[]") < calls.indexOf("prerun flaky try=1 args=[]"));
    });
  });
}

describe("a failing hook", () => {
  it("is logged with the hook and the task, and neither the task nor the other hooks are affected", async (t) => {
    const logs: string[] = [];
    const app = await embeddedApp(t, logs);
    const calls: string[] = [];
    app.on("taskPrerun", () => {
      throw new Error("prerun exploded");
    });
    app.on("taskSuccess", async () => {
      throw new Error("success rejected");
    });
    app.on("taskPostrun", ({ outcome }) => void calls.push(`postrun ${outcome}`));
    const double = app.task("double", (x: number) => x * 2);
    await app.worker({ name: "w3" }).start();
    const result = await double.delay(21);
    assert.equal(await result.get({ timeout: 5_000 }), 42);
    await eventually(() => logs.length === 2, 2_000, "both failures logged");
    assert.match(
      logs.find((line) => line.includes("taskPrerun")) ?? "",
      new RegExp(`hook taskPrerun for task 'double' \\(${result.id}\\) on w3 failed: Error: prerun exploded`),
    );
    assert.match(
      logs.find((line) => line.includes("taskSuccess")) ?? "",
      /hook taskSuccess for task 'double' .* failed: Error: success rejected/,
    );
    assert.deepEqual(calls, ["postrun succeeded"]);
  });

  it("refuses an unknown hook name or a listener that is not a function, and can be removed", async (t) => {
    const app = await embeddedApp(t, []);
    assert.throws(
      () => app.on("taskStart" as never, () => {}),
      /unknown hook 'taskStart'; hooks: workerReady, workerShutdown, taskPrerun/,
    );
    assert.throws(() => app.on("taskPrerun", "nope" as never), /hook taskPrerun: the listener is not a function/);
    const calls: string[] = [];
    const off = app.on("taskPrerun", ({ task }) => void calls.push(task));
    const noop = app.task("noop", () => 1);
    await app.worker().start();
    await (await noop.delay()).get({ timeout: 5_000 });
    off();
    await (await noop.delay()).get({ timeout: 5_000 });
    assert.deepEqual(calls, ["noop"]);
  });
});
