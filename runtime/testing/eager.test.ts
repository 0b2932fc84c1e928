import assert from "node:assert/strict";
import { describe, it, type TestContext } from "node:test";
import { CodecError } from "../../broker/codec.ts";
import { chain, chord, group } from "../../dsl/combinators.ts";
import type { TaskFailure } from "../../dsl/result.ts";
import { RemoteTaskError } from "../errors.ts";
import { celerityMatchers } from "./matchers.ts";
import { createTestApp, type TestAppOptions } from "./test-app.ts";
import { EagerRunError } from "./testing-errors.ts";
import { deferred } from "../test-support.ts";

const eagerApp = async (c: TestContext, options: TestAppOptions<undefined> = {}) => {
  const t = await createTestApp({ log: () => {}, eager: true, ...options });
  c.after(() => t.close());
  return t;
};

describe("eager mode: delay runs the task before it resolves", () => {
  it("returns a result that is already there", async (c) => {
    const t = await eagerApp(c);
    const add = t.app.task("add", (x: number, y: number) => x + y);
    const result = await add.delay(2, 3);
    assert.equal(await result.state(), "SUCCESS");
    assert.equal(await result.get({ timeout: 0 }), 5);
    const sent = await t.app.sendTask<number>("add", [1, 1]);
    assert.equal(await sent.get({ timeout: 0 }), 2);
  });

  it("retries as a worker does, through every backoff, before resolving", async (c) => {
    const t = await eagerApp(c);
    let attempts = 0;
    const flaky = t.app.task(
      "flaky",
      () => {
        if (++attempts < 3) throw new Error(`attempt ${attempts}`);
        return "third time";
      },
      { retry: { max: 3, delay: 10 * 60_000 } },
    );
    const start = t.clock.now();
    const result = await flaky.delay();
    assert.equal(await result.get({ timeout: 0 }), "third time");
    assert.equal(attempts, 3);
    assert.equal(t.clock.now() - start >= 20 * 60_000, true);
  });

  it("stores a failure once its retries are used up, and get() rejects with it", async (c) => {
    const t = await eagerApp(c);
    const broken = t.app.task(
      "broken",
      (): number => {
        throw new Error("always");
      },
      { retry: { max: 2, delay: 1_000 } },
    );
    const result = await broken.delay();
    assert.equal(await result.state(), "FAILURE");
    await assert.rejects(
      result.get({ timeout: 0 }),
      (error: unknown) => error instanceof RemoteTaskError && error.remote.message === "always",
    );
    assert.deepEqual(
      t.sentOf(broken).map((sent) => sent.retries),
      [0, 1, 2],
    );
  });

  it("runs canvases to their end, error callbacks included", async (c) => {
    const t = await eagerApp(c);
    const add = t.app.task("add", (x: number, y: number) => x + y);
    const tsum = t.app.task("tsum", (xs: number[]) => xs.reduce((a, b) => a + b, 0));
    const boom = t.app.task("boom", (_x: number): number => {
      throw new Error("boom");
    });
    const failures: TaskFailure[] = [];
    const onFail = t.app.task("on-fail", (failure: TaskFailure) => {
      failures.push(failure);
    });
    assert.equal(await (await chain(add.s(1, 1), add.s(2)).apply()).get({ timeout: 0 }), 4);
    assert.deepEqual(await (await group(add.s(1, 1), add.s(2, 2)).apply()).get({ timeout: 0 }), [2, 4]);
    assert.equal(await (await chord(group(add.s(1, 1), add.s(2, 2)), tsum.s()).apply()).get({ timeout: 0 }), 6);
    const failed = await chain(add.s(1, 1), boom.s()).onError(onFail.s()).apply();
    assert.equal(await failed.state(), "FAILURE");
    assert.deepEqual(
      failures.map((failure) => [failure.task, failure.error.message]),
      [["boom", "boom"]],
    );
  });

  it("runs a task that ignores its result, retries included, before resolving", async (c) => {
    const t = await eagerApp(c);
    const calls: number[] = [];
    const notify = t.app.task(
      "notify",
      (n: number) => {
        calls.push(n);
        if (calls.length < 2) throw new Error("busy");
      },
      { ignoreResult: true, retry: { max: 2, delay: 60_000 } },
    );
    const result = await notify.delay(1);
    assert.deepEqual(calls, [1, 1]);
    assert.equal(await result.state(), "UNKNOWN");
  });

  it("keeps the serialization of a worker: an argument that cannot be sent is refused", async (c) => {
    const t = await eagerApp(c);
    const save = t.app.task("save", (_value: unknown) => "saved");
    await assert.rejects(save.delay(Symbol("not sendable")), CodecError);
    assert.equal(t.sent.length, 0);
  });

  it("hands a task sent from inside a task its handle at once, and runs it in the same eager run", async (c) => {
    const t = await eagerApp(c);
    const order: string[] = [];
    const gate = deferred();
    // The child waits for its parent to have its handle: were a send from inside a task run to its end first, this would never finish.
    const child = t.app.task("child", async (n: number) => {
      await gate.promise;
      order.push(`child ${n}`);
      return n * 10;
    });
    const parent = t.app.task("parent", async (n: number) => {
      const sent = await child.delay(n);
      order.push(`parent has the handle, child ${(await sent.ready()) ? "finished" : "not finished"}`);
      gate.resolve();
      return sent.id;
    });
    const result = await parent.delay(7);
    const childId = (await result.get({ timeout: 0 })) as string;
    assert.equal(await t.app.result(childId).get({ timeout: 0 }), 70);
    assert.deepEqual(order, ["parent has the handle, child not finished", "child 7"]);
  });

  it("fails clearly when the task goes to a queue no worker consumes", async (c) => {
    const t = await eagerApp(c);
    const add = t.app.task("add", (x: number, y: number) => x + y);
    await assert.rejects(add.applyAsync([1, 1], { queue: "elsewhere" }), (error: unknown) => {
      assert.ok(error instanceof EagerRunError);
      assert.match(error.message, /it is PENDING, nothing is running and nothing is due.*consume: celery/);
      return true;
    });
  });

  it("lets sends made at the same time each resolve once their own task has run", async (c) => {
    const t = await eagerApp(c);
    const add = t.app.task("add", (x: number, y: number) => x + y);
    const results = await Promise.all([
      add.delay(1, 1),
      add.applyAsync([2, 2], { countdown: 60_000 }),
      add.delay(3, 3),
    ]);
    assert.deepEqual(await Promise.all(results.map((result) => result.state())), ["SUCCESS", "SUCCESS", "SUCCESS"]);
  });
});

describe("matchers for vitest and jest", () => {
  it("pass when the task was sent and say what was sent when it was not", async (c) => {
    const t = await eagerApp(c);
    const add = t.app.task("add", (x: number, y: number) => x + y);
    await add.delay(2, 2);
    const hit = celerityMatchers.toHaveSent(t, add, [2, 2]);
    assert.equal(hit.pass, true);
    assert.match(hit.message(), /expected task 'add' with arguments \[ 2, 2 \] not to have been sent/);
    const miss = celerityMatchers.toHaveSent(t.sent, "add", [9, 9]);
    assert.equal(miss.pass, false);
    assert.match(
      miss.message(),
      /expected task 'add' with arguments \[ 9, 9 \] to have been sent; sent:\n {2}1\. add\(2, 2\)/,
    );
    assert.equal(celerityMatchers.toHaveSent(t, "mul").pass, false);
    assert.throws(
      () => celerityMatchers.toHaveSent(42 as never, "add"),
      /toHaveSent expects a test app \(from createTestApp\) or its 'sent' list, got 42/,
    );
  });
});
