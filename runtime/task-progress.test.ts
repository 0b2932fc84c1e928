import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { group } from "../dsl/combinators.ts";
import { createApp } from "./app.ts";
import { ProgressReportError } from "./task-progress.ts";
import { deferred, eventually } from "./test-support.ts";

describe("a task's own progress", () => {
  it("is readable with info() while it runs and stays after it finishes; state() stays STARTED meanwhile", async (t) => {
    const app = createApp({ log: () => {} });
    t.after(() => app.close());
    const reported = deferred();
    const gate = deferred();
    const resize = app.task("resize", async function (width: number) {
      await this.progress({ state: "RESIZING", done: 1, total: 2, meta: { width } });
      reported.resolve();
      await gate.promise;
      return width;
    });
    await app.worker().start();
    const result = await resize.delay(320);
    await reported.promise;
    assert.deepEqual(await result.info(), { state: "RESIZING", done: 1, total: 2, meta: { width: 320 } });
    assert.equal(await result.state(), "STARTED");
    const progress = await result.progress();
    assert.equal(progress.fraction, 0.5);
    assert.equal(progress.completed, 0);
    gate.resolve();
    assert.equal(await result.get({ timeout: 5_000 }), 320);
    assert.deepEqual((await result.info())?.state, "RESIZING");
    assert.equal((await result.progress()).fraction, 1);
  });

  it("counts members' reported progress in a group's progress", async (t) => {
    const app = createApp({ log: () => {} });
    t.after(() => app.close());
    const gate = deferred();
    let reported = 0;
    const work = app.task("work", async function (done: number) {
      await this.progress({ done, total: 4 });
      reported++;
      await gate.promise;
      return done;
    });
    await app.worker({ concurrency: 4 }).start();
    const batch = await group(work.s(1), work.s(3)).apply();
    await eventually(() => reported === 2, 5_000, "both members to report");
    const progress = await batch.progress();
    assert.deepEqual(
      { ...progress },
      { total: 2, completed: 0, succeeded: 0, failed: 0, fraction: (1 / 4 + 3 / 4) / 2 },
    );
    const seen: number[] = [];
    const stop = batch.onProgress((p) => seen.push(p.fraction), { interval: 10 });
    t.after(stop);
    gate.resolve();
    assert.deepEqual(await batch.get({ timeout: 5_000 }), [1, 3]);
    await eventually(() => seen.at(-1) === 1, 5_000, "the group's last progress call");
    assert.equal(seen[0], 0.5);
  });

  it("refuses a report that cannot be recorded with a ProgressReportError, and the task can go on", async (t) => {
    const app = createApp({ log: () => {} });
    t.after(() => app.close());
    const messages: string[] = [];
    const careful = app.task("careful", async function () {
      for (const report of [
        { done: -1 },
        { total: Number.NaN },
        { state: "" },
        { state: "x".repeat(65) },
        { meta: () => 1 },
        null,
      ]) {
        try {
          await this.progress(report as never);
          messages.push("recorded");
        } catch (error) {
          assert.ok(error instanceof ProgressReportError, String(error));
          messages.push(error.message);
        }
      }
      return "went on";
    });
    await app.worker().start();
    const result = await careful.delay();
    assert.equal(await result.get({ timeout: 5_000 }), "went on");
    assert.equal(await result.info(), undefined);
    assert.equal(messages.length, 6);
    assert.match(
      messages[0],
      /task 'careful' reported progress that cannot be recorded: 'done' must be a finite number of at least 0 \(got -1\)/,
    );
    assert.match(messages[1], /'total' must be a finite number/);
    assert.match(messages[2], /'state' must be a string of 1 to 64 characters/);
    assert.match(messages[3], /'state' must be a string of 1 to 64 characters/);
    assert.match(messages[4], /progress/);
    assert.match(messages[5], /a report is an object/);
  });

  it("lets a task whose result is not kept report without recording anything", async (t) => {
    const app = createApp({ log: () => {} });
    t.after(() => app.close());
    const done = deferred<string>();
    const quiet = app.task("quiet", async function () {
      await this.progress({ done: 1, total: 1 });
      done.resolve(this.id);
    });
    await app.worker().start();
    await quiet.applyAsync([], { ignoreResult: true });
    const id = await done.promise;
    assert.equal(await app.result(id).info(), undefined);
  });

  it("refuses a watch interval that is not a positive number", async (t) => {
    const app = createApp({ log: () => {} });
    t.after(() => app.close());
    assert.throws(
      () => app.result("x").onProgress(() => {}, { interval: 0 }),
      /'interval' must be a positive number of ms \(got 0\)/,
    );
  });
});
