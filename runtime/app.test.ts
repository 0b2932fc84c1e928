import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Effect } from "effect";
import { createApp } from "./app.ts";
import { RemoteTaskError, TimeoutError, UnknownResultError } from "./errors.ts";
import { deferred } from "./test-support.ts";
import { scaled, within } from "../tests/support/waits.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const setup = async () => {
  const logs: string[] = [];
  const app = createApp({ log: (line) => logs.push(line) });
  const add = app.task("add", (x: number, y: number) => x + y);
  const fail = app.task("fail", async () => {
    throw new Error("boom");
  });
  const worker = app.worker({ concurrency: 4 });
  await worker.start();
  return { app, add, fail, worker, logs };
};

describe("app: sending tasks and reading results", () => {
  it("runs a task sent with delay and returns its value under a UUID", async () => {
    const { app, add } = await setup();
    const r = await add.delay(2, 2);
    assert.match(r.id, UUID);
    assert.equal(await r.get({ timeout: 5_000 }), 4);
    assert.equal(await r.state(), "SUCCESS");
    assert.equal(await r.ready(), true);
    assert.equal(await r.successful(), true);
    await app.close();
  });

  it("runs sync, async and Effect handlers alike", async () => {
    const { app } = await setup();
    const sync = app.task("sync", (x: number) => x + 1);
    const later = app.task("later", async (x: number) => x + 2);
    const effect = app.task("effect", (x: number) => Effect.succeed(x + 3));
    const failing = app.task("effectFails", () => Effect.fail(new Error("effect said no")));
    assert.deepEqual(
      await Promise.all([
        within((await sync.delay(1)).get(), scaled(5_000), "the sync handler's result"),
        within((await later.delay(1)).get(), scaled(5_000), "the async handler's result"),
        within((await effect.delay(1)).get(), scaled(5_000), "the Effect handler's result"),
      ]),
      [2, 3, 4],
    );
    await assert.rejects(
      within((await failing.delay()).get(), scaled(5_000), "the failing Effect handler's result"),
      /effect said no/,
    );
    await app.close();
  });

  it("stores a failure with the remote error's name, message and stack", async () => {
    const { app, fail } = await setup();
    const r = await fail.delay();
    const error = await within(r.get(), scaled(5_000), "the failed task's result").then(
      () => assert.fail("expected a failure"),
      (e: unknown) => e,
    );
    assert.ok(error instanceof RemoteTaskError);
    assert.match(error.message, /boom/);
    assert.equal(error.remote.name, "Error");
    assert.match(error.traceback ?? "", /boom[\s\S]*at /);
    assert.equal(await r.state(), "FAILURE");
    assert.equal(await r.failed(), true);
    assert.equal((await r.error())?.message, "boom");
    await app.close();
  });

  it("reports an id that was never sent as UNKNOWN, not PENDING", async () => {
    const { app } = await setup();
    const r = app.result("4b3c2a10-0000-4000-8000-000000000000");
    assert.equal(await r.state(), "UNKNOWN");
    await assert.rejects(within(r.get(), scaled(5_000), "the get() of an id never sent"), UnknownResultError);
    await app.close();
  });

  it("reports a sent task as PENDING until a worker takes it", async () => {
    const app = createApp();
    const add = app.task("add", (x: number, y: number) => x + y);
    const r = await add.delay(1, 1);
    assert.equal(await r.state(), "PENDING");
    assert.equal(await app.result(r.id).state(), "PENDING");
    await app.worker().start();
    assert.equal(await app.result<number>(r.id).get({ timeout: 2_000 }), 2);
    await app.close();
  });

  it("rejects get() past its timeout with a TimeoutError, and the task still finishes", async () => {
    const { app } = await setup();
    const gate = deferred();
    const slow = app.task("slow", async () => {
      await gate.promise;
      return "done";
    });
    const r = await slow.delay();
    await assert.rejects(
      r.get({ timeout: 20 }),
      (e: unknown) => e instanceof TimeoutError && /not ready after 20 ms/.test(e.message),
    );
    gate.resolve();
    assert.equal(await r.get({ timeout: 2_000 }), "done");
    await app.close();
  });

  it("shows STARTED while a task runs", async () => {
    const { app } = await setup();
    const started = deferred();
    const gate = deferred();
    const slow = app.task("slow", async () => {
      started.resolve();
      await gate.promise;
    });
    const r = await slow.delay();
    await started.promise;
    assert.equal(await r.state(), "STARTED");
    gate.resolve();
    await within(r.get(), scaled(5_000), "the running task's result");
    await app.close();
  });

  it("forgets a result on request", async () => {
    const { app, add } = await setup();
    const r = await add.delay(1, 2);
    await within(r.get(), scaled(5_000), "the result before it is forgotten");
    await r.forget();
    assert.equal(await r.state(), "UNKNOWN");
    await app.close();
  });

  it("stores no result for a task that ignores its result, and still runs it", async () => {
    const { app } = await setup();
    const ran = deferred<number>();
    const quiet = app.task("quiet", (x: number) => ran.resolve(x), { ignoreResult: true });
    const r = await quiet.delay(7);
    assert.equal(await ran.promise, 7);
    assert.equal(await r.state(), "UNKNOWN");
    await app.close();
  });

  it("gives a function handler its context as this: id and retries", async () => {
    const { app } = await setup();
    const whoami = app.task("whoami", function () {
      return { id: this.id, name: this.name, retries: this.retries };
    });
    const r = await whoami.delay();
    assert.deepEqual(await within(r.get(), scaled(5_000), "the result of the task reading its context"), {
      id: r.id,
      name: "whoami",
      retries: 0,
    });
    await app.close();
  });

  it("sends a task by name with sendTask", async () => {
    const { app } = await setup();
    const r = await app.sendTask<number>("add", [20, 22]);
    assert.equal(await r.get({ timeout: 2_000 }), 42);
    await app.close();
  });

  it("refuses a duplicate or reserved task name", async () => {
    const { app } = await setup();
    assert.throws(() => app.task("add", () => 1), /already registered/);
    assert.throws(() => app.task("celerity.mine", () => 1), /reserved/);
    await app.close();
  });
});
