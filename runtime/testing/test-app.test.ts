import assert from "node:assert/strict";
import { AssertionError } from "node:assert";
import { describe, it, type TestContext } from "node:test";
import { CodecError } from "../../broker/codec.ts";
import { chain, chord, group } from "../../dsl/combinators.ts";
import type { App } from "../app.ts";
import { RemoteTaskError } from "../errors.ts";
import { deferred } from "../test-support.ts";
import { scaled, within } from "../../tests/support/waits.ts";
import { createTestApp, type TestAppOptions } from "./test-app.ts";
import { DurationError } from "./duration.ts";
import { DrainTimeoutError, ReentrantDrainError, StubError } from "./testing-errors.ts";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

const testApp = async <T = undefined>(c: TestContext, options: TestAppOptions<T> = {}) => {
  const t = await createTestApp<T>({ log: () => {}, ...options });
  c.after(() => t.close());
  return t;
};

const failureOf = async (promise: Promise<unknown>): Promise<RemoteTaskError> => {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof RemoteTaskError, `expected a RemoteTaskError, got ${String(error)}`);
    return error;
  }
  assert.fail("expected the task to fail");
};

describe("createTestApp: time that passes only when the test says", () => {
  it("runs a task sent with a one-hour countdown once the clock is advanced an hour, in well under a second", async (c) => {
    const t = await testApp(c);
    const add = t.app.task("add", (x: number, y: number) => x + y);
    const started = performance.now();
    const result = await add.applyAsync([2, 2], { countdown: HOUR });
    await t.drain();
    assert.equal(await result.state(), "PENDING");
    await t.clock.advance("59m");
    assert.equal(await result.state(), "PENDING");
    await t.clock.advance("1m");
    assert.equal(await within(result.get(), scaled(5_000), "the result of the task an hour later"), 4);
    const elapsed = performance.now() - started;
    assert.ok(elapsed < scaled(1_000), `took ${elapsed} ms of real time`);
  });

  it("retries with a ten-minute backoff once the clock passes each backoff, in well under a second", async (c) => {
    const t = await testApp(c);
    let attempts = 0;
    const flaky = t.app.task(
      "flaky",
      () => {
        if (++attempts < 3) throw new Error(`attempt ${attempts} failed`);
        return "done";
      },
      { retry: { max: 5, delay: 10 * MINUTE } },
    );
    const started = performance.now();
    const result = await flaky.delay();
    await t.drain();
    assert.equal(attempts, 1);
    assert.equal(await result.state(), "RETRY");
    await t.clock.advance("9m");
    assert.equal(attempts, 1);
    await t.clock.advance("1m");
    assert.equal(attempts, 2);
    await t.clock.advance("10m");
    assert.equal(await within(result.get(), scaled(5_000), "the result after the retries"), "done");
    assert.equal(attempts, 3);
    assert.deepEqual(
      t.sentOf(flaky).map((sent) => [sent.retries, sent.eta === undefined ? 0 : sent.eta - sent.sentAt]),
      [
        [0, 0],
        [1, 10 * MINUTE],
        [2, 10 * MINUTE],
      ],
    );
    const elapsed = performance.now() - started;
    assert.ok(elapsed < scaled(1_000), `took ${elapsed} ms of real time`);
  });

  it("fires timers in the order they fall due within one advance, each at its own time", async (c) => {
    const t = await testApp(c);
    const seen: [string, number][] = [];
    const start = t.clock.now();
    const note = t.app.task("note", (label: string) => {
      seen.push([label, t.clock.now() - start]);
    });
    await note.applyAsync(["third"], { countdown: 30 * MINUTE });
    await note.applyAsync(["first"], { countdown: 10 * MINUTE });
    await note.applyAsync(["second"], { eta: start + 20 * MINUTE });
    await t.clock.advance("1h");
    assert.deepEqual(seen, [
      ["first", 10 * MINUTE],
      ["second", 20 * MINUTE],
      ["third", 30 * MINUTE],
    ]);
    assert.equal(t.clock.now(), start + HOUR);
  });

  it("gives the app its clock, for anything else that schedules for the app", async (c) => {
    const t = await testApp(c);
    assert.equal(t.app.clock, t.clock);
    const fired: number[] = [];
    const start = t.app.clock.now();
    t.app.clock.setTimeout(() => fired.push(t.app.clock.now() - start), 5 * MINUTE);
    await t.clock.advance("10m");
    assert.deepEqual(fired, [5 * MINUTE]);
  });

  it("revokes a task that expires before its countdown lets it start", async (c) => {
    const t = await testApp(c);
    const ran: number[] = [];
    const job = t.app.task("job", (n: number) => ran.push(n));
    const late = await job.applyAsync([1], { countdown: 2 * MINUTE, expires: MINUTE });
    const onTime = await job.applyAsync([2], { countdown: MINUTE, expires: 2 * MINUTE });
    await t.clock.advance("3m");
    assert.equal(await late.state(), "REVOKED");
    assert.equal(await onTime.state(), "SUCCESS");
    assert.deepEqual(ran, [2]);
  });

  it("aborts a task at its soft time limit and abandons it at its hard limit, on the virtual clock", async (c) => {
    const t = await testApp(c);
    let aborted: unknown;
    const slow = t.app.task("slow", function () {
      return new Promise<never>(() => {
        this.signal.addEventListener("abort", () => (aborted = this.signal.reason));
      });
    });
    const result = await slow.applyAsync([], { softTimeLimit: 30_000, timeLimit: 60_000 });
    await t.clock.advance("29s");
    assert.equal(await result.state(), "STARTED");
    await t.clock.advance("1s");
    assert.equal((aborted as Error | undefined)?.name, "SoftTimeLimitExceeded");
    assert.equal(await result.state(), "STARTED");
    await t.clock.advance("30s");
    const failure = await failureOf(within(result.get(), scaled(5_000), "the task aborted at its soft limit"));
    assert.equal(failure.remote.name, "TimeLimitExceeded");
  });

  it("starts rate-limited tasks as the bucket refills on the virtual clock", async (c) => {
    const t = await testApp(c);
    const starts: number[] = [];
    const start = t.clock.now();
    const call = t.app.task("call", (n: number) => starts.push(n), { rateLimit: { rate: "2/m", burst: 1 } });
    const results = [];
    for (let n = 0; n < 4; n++) results.push(await call.delay(n));
    await t.drain();
    assert.deepEqual(starts, [0]);
    await t.clock.advance("30s");
    assert.deepEqual(starts, [0, 1]);
    await t.clock.advance("1m");
    assert.deepEqual(starts, [0, 1, 2, 3]);
    for (const result of results) assert.equal(await result.state(), "SUCCESS");
    assert.equal(t.clock.now() - start, 90_000);
  });

  it("runs canvases to the end with drain()", async (c) => {
    const t = await testApp(c);
    const add = t.app.task("add", (x: number, y: number) => x + y);
    const tsum = t.app.task("tsum", (xs: number[]) => xs.reduce((a, b) => a + b, 0));
    const chained = await chain(add.s(1, 1), add.s(2), add.s(3)).apply();
    const grouped = await group(add.s(1, 1), add.s(2, 2)).apply();
    const chorded = await chord(group(add.s(1, 1), add.s(2, 2)), tsum.s()).apply();
    await t.drain();
    assert.equal(await chained.get({ timeout: 0 }), 7);
    assert.deepEqual(await grouped.get({ timeout: 0 }), [2, 4]);
    assert.equal(await chorded.get({ timeout: 0 }), 6);
  });
});

describe("drain(): run what is ready now", () => {
  it("leaves a task with a countdown waiting for the clock", async (c) => {
    const t = await testApp(c);
    const add = t.app.task("add", (x: number, y: number) => x + y);
    const now = await add.delay(1, 1);
    const later = await add.applyAsync([2, 2], { countdown: 1 });
    await t.drain();
    assert.equal(await now.state(), "SUCCESS");
    assert.equal(await later.state(), "PENDING");
  });

  it("waits for async handlers that finish in real time", async (c) => {
    const t = await testApp(c);
    const gate = deferred();
    const wait = t.app.task("wait", async () => {
      await gate.promise;
      return "opened";
    });
    const result = await wait.delay();
    setImmediate(gate.resolve);
    await t.drain();
    assert.equal(await result.get({ timeout: 0 }), "opened");
  });

  it("fails naming the task still running when it cannot settle", async (c) => {
    const t = await testApp(c, { settleTimeout: 5_000 });
    const stuck = t.app.task("stuck", () => new Promise<never>(() => {}));
    await stuck.delay();
    await assert.rejects(t.drain({ timeout: 100 }), (error: unknown) => {
      assert.ok(error instanceof DrainTimeoutError);
      assert.match(error.message, /task 'stuck' \([0-9a-f-]+\) running for \d+ ms/);
      assert.match(error.message, /within 100 ms/);
      return true;
    });
  });

  it("refuses to be called from inside a task, which it would wait for", async (c) => {
    const t = await testApp(c);
    let refused: unknown;
    const inner = t.app.task("inner", async () => {
      refused = await t.drain().catch((error: unknown) => error);
    });
    await inner.delay();
    await t.drain();
    assert.ok(refused instanceof ReentrantDrainError, String(refused));
  });
});

describe("t.sent: what the app sent", () => {
  it("lists every message in order, with arguments as a worker decodes them, and workflow steps", async (c) => {
    const t = await testApp(c);
    const add = t.app.task("add", (x: number, y: number) => x + y);
    const when = new Date(t.clock.now() + HOUR);
    await add.applyAsync([1, 2], { queue: "celery", priority: 5, eta: when, retry: { max: 2 } });
    await chain(add.s(3, 4), add.s(5)).apply();
    await t.drain();
    assert.deepEqual(
      t.sent.map((sent) => [sent.task, sent.args]),
      [
        ["add", [1, 2]],
        ["add", [3, 4]],
        ["add", [7, 5]],
      ],
    );
    const [first, step, next] = t.sent;
    assert.equal(first.priority, 5);
    assert.equal(first.eta, when.getTime());
    assert.deepEqual(first.options, { queue: "celery", retry: { max: 2 } });
    assert.equal(first.queue, "celery");
    assert.equal(step.workflow, next.workflow);
    assert.deepEqual([step.node, next.node], [0, 1]);
  });

  it("asserts what was sent, and says what was sent instead when it was not", async (c) => {
    const t = await testApp(c);
    const add = t.app.task("add", (x: number, y: number) => x + y);
    const email = t.app.task("email", (_to: string) => {});
    await add.delay(2, 2);
    assert.equal(t.assertSent(add).task, "add");
    t.assertSent("add", [2, 2]);
    t.assertNotSent(email);
    assert.throws(
      () => t.assertSent(add, [3, 3]),
      (error: unknown) =>
        error instanceof AssertionError &&
        /expected task 'add' with arguments \[ 3, 3 \] to have been sent; sent:\n {2}1\. add\(2, 2\)/.test(
          error.message,
        ),
    );
    assert.throws(() => t.assertNotSent("add"), /expected task 'add' not to have been sent/);
    t.clearSent();
    assert.equal(t.sent.length, 0);
    assert.throws(() => t.assertSent(add), /nothing was sent/);
  });

  it("leaves out envelopes that are not task messages, which the worker refuses", async (c) => {
    const t = await testApp(c);
    await t.app.broker.publish({
      id: "raw-1",
      exchange: "",
      routingKey: "celery",
      priority: 0,
      headers: {},
      body: new Uint8Array([1, 2, 3]),
    });
    await t.drain();
    assert.equal(t.sent.length, 0);
    assert.equal((await t.app.broker.deadLetters("celery")).length, 1);
  });

  it("lists a rate-limited task handed back to its queue once", async (c) => {
    // prefetch 2: the gate holds one delivery and hands the rest back to the queue with an eta.
    const t = await testApp(c, { worker: { concurrency: 1, prefetch: 2 } });
    const call = t.app.task("call", (n: number) => n, { rateLimit: { rate: "1/s", burst: 1 } });
    const results = [];
    for (let n = 0; n < 5; n++) results.push(await call.delay(n));
    await t.clock.advance("10s");
    for (const result of results) assert.equal(await result.state(), "SUCCESS");
    assert.deepEqual(
      t.sent.map((sent) => sent.args[0]),
      [0, 1, 2, 3, 4],
    );
  });
});

describe("t.stub(): replace a handler for a test", () => {
  it("runs the stub in the task's place and records its calls, then restores the handler", async (c) => {
    const t = await testApp(c);
    const charge = t.app.task("charge", (_card: string, _cents: number): { ok: boolean } => {
      throw new Error("no payment provider in tests");
    });
    const stub = t.stub(charge, (card, cents) => ({ ok: card === "4242" && cents > 0 }));
    const result = await charge.delay("4242", 500);
    await t.drain();
    assert.deepEqual(await result.get({ timeout: 0 }), { ok: true });
    assert.deepEqual(stub.calls, [["4242", 500]]);
    stub.restore();
    const real = await charge.delay("4242", 500);
    await t.drain();
    assert.equal((await failureOf(real.get({ timeout: 0 }))).remote.message, "no payment provider in tests");
  });

  it("keeps the serialization round trip: an argument or result that cannot be sent fails as in production", async (c) => {
    const t = await testApp(c);
    const save = t.app.task("save", (_record: unknown) => "saved");
    t.stub(save, () => "stubbed");
    await assert.rejects(
      save.delay({ at: () => 1 }),
      (error: unknown) => error instanceof CodecError && /argument 1 of task 'save'/.test(error.message),
    );
    const leaky = t.app.task("leaky", () => 1 as unknown);
    t.stub(leaky, () => new Map([[1, 2]]));
    const result = await leaky.delay();
    await t.drain();
    assert.match((await failureOf(result.get({ timeout: 0 }))).message, /result of task 'leaky'/);
  });

  it("refuses a task the test app does not know, naming those it does", async (c) => {
    const t = await testApp(c);
    t.app.task("known", () => 1);
    assert.throws(
      () => t.stub("unknown", () => 1),
      (error: unknown) => error instanceof StubError && /'unknown'.*registered: known/.test(error.message),
    );
    assert.throws(() => t.stub("known", 42 as never), /the stub must be a function, got number/);
  });
});

describe("bad input to the toolkit", () => {
  it("refuses options that are not what they should be, naming the option", async () => {
    await assert.rejects(
      createTestApp({ settleTimeout: -1 }),
      /'settleTimeout' must be a number of real milliseconds \(0 or more\), got -1/,
    );
    await assert.rejects(
      createTestApp({ patience: Number.NaN }),
      /'patience' must be a number of real milliseconds \(0 or more\), got NaN/,
    );
    await assert.rejects(
      createTestApp({ tasks: {} as never }),
      /'tasks' must be a function of the app that registers its tasks, got object/,
    );
    await assert.rejects(
      createTestApp({ startAt: Number.NaN }),
      /a virtual clock starts at a finite epoch time, got NaN/,
    );
  });

  it("refuses a duration it cannot read, and leaves the clock where it was", async (c) => {
    const t = await testApp(c);
    const before = t.clock.now();
    await assert.rejects(
      t.clock.advance("soon"),
      (error: unknown) => error instanceof DurationError && /invalid duration "soon"/.test(error.message),
    );
    await assert.rejects(t.clock.advance(-5), DurationError);
    assert.equal(t.clock.now(), before);
    await t.clock.advance("1s");
    assert.equal(t.clock.now(), before + 1_000);
  });
});

describe("tasks given as a function of the app", () => {
  const defineTasks = (app: App) => {
    const add = app.task("add", (x: number, y: number) => x + y);
    const double = app.task("double", (x: number) => x * 2);
    return { add, double };
  };

  it("registers them on the test app and hands them back as t.tasks", async (c) => {
    const t = await testApp(c, { tasks: defineTasks });
    const result = await chain(t.tasks.add.s(1, 2), t.tasks.double.s()).apply();
    await t.drain();
    assert.equal(await result.get({ timeout: 0 }), 6);
  });
});
