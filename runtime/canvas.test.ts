import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { chain, chord, group } from "../dsl/combinators.ts";
import type { TaskFailure } from "../dsl/result.ts";
import { createApp } from "./app.ts";
import { RemoteTaskError } from "./errors.ts";
import { deferred, eventually } from "./test-support.ts";
import { scaled, within } from "../tests/support/waits.ts";

const setup = async () => {
  const app = createApp({ log: () => {} });
  const add = app.task("add", (x: number, y: number) => x + y);
  const mul = app.task("mul", (x: number, y: number) => x * y);
  const tsum = app.task("tsum", (xs: number[]) => xs.reduce((a, b) => a + b, 0));
  const flat = app.task("flat", (xss: number[][]) => xss.flat());
  const calls: string[] = [];
  const record = app.task("record", (label: string) => {
    calls.push(label);
    return label;
  });
  const failWith = app.task("failWith", (message: string) => {
    throw new Error(message);
  });
  const failures: TaskFailure[] = [];
  const onFail = app.task("onFail", (failure: TaskFailure) => {
    failures.push(failure);
  });
  const worker = app.worker({ concurrency: 8 });
  await worker.start();
  return { app, worker, add, mul, tsum, flat, record, calls, failWith, onFail, failures };
};

describe("canvas: chains, groups and chords", () => {
  it("prepends each step's result to the next step's arguments", async () => {
    const { app, add } = await setup();
    const r = await chain(add.s(2, 2), add.s(4), add.s(8)).apply();
    assert.equal(await r.get({ timeout: 5_000 }), 16);
    await app.close();
  });

  it("passes nothing to an immutable step, which still waits its turn", async () => {
    const { app, add, record, calls } = await setup();
    const r = await chain(record.s("first"), record.si("second"), add.si(1, 1)).apply();
    assert.equal(await within(r.get(), scaled(5_000), "the chain with an immutable step"), 2);
    assert.deepEqual(calls, ["first", "second"]);
    await app.close();
  });

  it("returns a group's results in member order", async () => {
    const { app, add } = await setup();
    const r = await group(add.s(1, 1), add.s(2, 2)).apply();
    assert.deepEqual(await within(r.get(), scaled(5_000), "the group's results"), [2, 4]);
    assert.equal(r.children.length, 2);
    assert.deepEqual(await r.progress(), { total: 2, completed: 2, succeeded: 2, failed: 0, fraction: 1 });
    await app.close();
  });

  it("counts a group's finished members for a progress bar while it runs", async () => {
    const { app } = await setup();
    const gates = [deferred(), deferred(), deferred()];
    const wait = app.task("wait", async (i: number) => {
      await gates[i].promise;
      return i;
    });
    const r = await group([0, 1, 2].map((i) => wait.s(i))).apply();
    assert.equal((await r.progress()).completed, 0);
    gates[1].resolve();
    await eventually(async () => (await r.progress()).completed === 1, 2_000, "one member done");
    gates[0].resolve();
    gates[2].resolve();
    assert.deepEqual(await within(r.get(), scaled(5_000), "the group's results"), [0, 1, 2]);
    assert.equal((await r.progress()).completed, 3);
    await app.close();
  });

  it("passes a chord's header results, in order, to its callback", async () => {
    const { app, add, tsum } = await setup();
    const r = await chord(group(add.s(1, 1), add.s(2, 2)), tsum.s()).apply();
    assert.equal(await within(r.get(), scaled(5_000), "the chord's callback"), 6);
    await app.close();
  });

  it("joins a chord of 1,000 members", async () => {
    const { app, mul, tsum } = await setup();
    const r = await chord(
      Array.from({ length: 1_000 }, (_, i) => mul.s(i, 2)),
      tsum.s(),
    ).apply();
    assert.equal(await r.get({ timeout: 10_000 }), 999 * 1_000);
    await app.close();
  });

  it("runs a chord with an empty header at once, with an empty list", async () => {
    const { app, tsum } = await setup();
    const r = await chord([], tsum.s()).apply();
    assert.equal(await r.get({ timeout: 2_000 }), 0);
    await app.close();
  });

  it("nests: a chord inside a chain, a chain inside a group, a group of chains, a chord of chords", async () => {
    const { app, add, mul, tsum } = await setup();
    const chordInChain = await chain(add.s(1, 1), chord(group(add.s(1), mul.s(10)), tsum.s()), add.s(100)).apply();
    assert.equal(await within(chordInChain.get(), scaled(5_000), "the chord in a chain"), 2 + 1 + 20 + 100);

    const groupOfChains = await group(chain(add.s(1, 1), mul.s(3)), chain(add.s(2, 2), mul.s(5))).apply();
    assert.deepEqual(await within(groupOfChains.get(), scaled(5_000), "the group of chains"), [6, 20]);

    const chordOfChords = await chord(
      group(chord(group(add.s(1, 1), add.s(1, 2)), tsum.s()), chord(group(add.s(2, 2), add.s(2, 3)), tsum.s())),
      tsum.s(),
    ).apply();
    assert.equal(await within(chordOfChords.get(), scaled(5_000), "the chord of chords"), 5 + 9);

    const fanOutIn = await chain(add.s(1, 1), group(add.s(1), add.s(2), add.s(3)), tsum.s()).apply();
    assert.equal(await within(fanOutIn.get(), scaled(5_000), "the fan-out and fan-in"), 3 + 4 + 5);
    await app.close();
  });

  it("runs the step after a group of two empty groups once the step before finishes (found by a property test)", async () => {
    const { app, add, flat } = await setup();
    const r = await chain(add.s(1, 1), group(group([]), group([])), flat.s()).apply();
    assert.deepEqual(await r.get({ timeout: 2_000 }), []);
    await app.close();
  });

  it("fails a chain through an empty group when the step before it fails", async () => {
    const { app, failWith, tsum } = await setup();
    const r = await chain(failWith.si("before the empty group"), group([]), tsum.s()).apply();
    await assert.rejects(r.get({ timeout: 2_000 }), /before the empty group/);
    const bare = await chain(failWith.si("bare"), group([])).apply();
    await assert.rejects(bare.get({ timeout: 2_000 }), /bare/);
    await app.close();
  });

  it("gives a group nested in a group a nested list", async () => {
    const { app, add } = await setup();
    const r = await group(group(add.s(1, 1), add.s(2, 2)), add.s(3, 3)).apply();
    assert.deepEqual(await within(r.get(), scaled(5_000), "the nested group's results"), [[2, 4], 6]);
    await app.close();
  });

  it("maps, starmaps and chunks", async () => {
    const { app, add, tsum, flat } = await setup();
    const double = app.task("double", (x: number) => x * 2);
    assert.deepEqual(
      await within((await double.map([1, 2, 3]).apply()).get(), scaled(5_000), "the map's results"),
      [2, 4, 6],
    );
    assert.deepEqual(
      await within(
        (
          await add
            .starmap([
              [1, 2],
              [3, 4],
            ])
            .apply()
        ).get(),
        scaled(5_000),
        "the starmap's results",
      ),
      [3, 7],
    );
    const pairs = Array.from({ length: 10 }, (_, i) => [i, i] as [number, number]);
    const chunks = await add.chunks(pairs, 4).apply();
    assert.deepEqual(await within(chunks.get(), scaled(5_000), "the chunks' results"), [
      [0, 2, 4, 6],
      [8, 10, 12, 14],
      [16, 18],
    ]);
    const mapInChain = await chain(double.s(5), group(double.s(), double.s()), double.map(), tsum.s()).apply();
    assert.equal(await within(mapInChain.get(), scaled(5_000), "the map in a chain"), 80);
    const chunked = await chord(add.chunks(pairs, 3), flat.s()).apply();
    assert.equal((await within(chunked.get(), scaled(5_000), "the chunked results")).length, 10);
    await app.close();
  });

  it("runs link callbacks with the result", async () => {
    const { app, add, record, calls } = await setup();
    const done = deferred();
    const seen = app.task("seen", (value: number) => {
      calls.push(`seen ${value}`);
      done.resolve();
    });
    const r = await add.s(2, 3).link(seen.s()).apply();
    assert.equal(await within(r.get(), scaled(5_000), "the linked task's result"), 5);
    await done.promise;
    assert.deepEqual(calls, ["seen 5"]);
    void record;
    await app.close();
  });
});

describe("canvas: failure semantics", () => {
  it("stops a chain at the failing step and fails the workflow naming that step", async () => {
    const { app, add, failWith, record, calls } = await setup();
    const r = await chain(add.s(1, 1), failWith.si("step two broke"), record.si("never")).apply();
    await assert.rejects(
      r.get({ timeout: 2_000 }),
      (e: unknown) => e instanceof RemoteTaskError && /failWith/.test(e.message) && /step two broke/.test(e.message),
    );
    assert.equal(await r.state(), "FAILURE");
    assert.deepEqual(calls, []);
    await app.close();
  });

  it("fails a chord naming the first member to fail; the callback never runs; the errback fires once", async () => {
    const { app, worker, add, failWith, record, calls, onFail, failures } = await setup();
    const r = await chord(
      group(add.s(1, 1), failWith.s("member A broke"), failWith.s("member B broke")),
      record.si("callback"),
    )
      .onError(onFail.s())
      .apply();
    const error = await r.get({ timeout: 2_000 }).then(
      () => assert.fail("the chord should fail"),
      (e: unknown) => e as RemoteTaskError,
    );
    assert.match(error.message, /chord member 'failWith'/);
    assert.match(error.message, /member [AB] broke/);
    await eventually(() => failures.length >= 1, 2_000, "the error callback");
    // Wait until both members have failed and the worker is idle: a second failure must not fire the errback again.
    await eventually(
      () => worker.stats().failed >= 2 && worker.stats().running === 0,
      2_000,
      "both failing members to have failed",
    );
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(failures.length, 1);
    // The errback watches the chord's callback, which failed because a member did.
    assert.equal(failures[0].task, "record");
    assert.equal(failures[0].error.name, "UpstreamFailure");
    assert.match(failures[0].error.message, /chord member 'failWith'/);
    assert.deepEqual(calls, []);
    await app.close();
  });

  it("fires a single task's error callback with the failure's id, task and error", async () => {
    const { app, failWith, onFail, failures } = await setup();
    const r = await failWith.s("nope").onError(onFail.s()).apply();
    await assert.rejects(within(r.get(), scaled(5_000), "the failing task with an error callback"), /nope/);
    await eventually(() => failures.length === 1, 2_000, "the error callback");
    assert.equal(failures[0].id, r.id);
    assert.equal(failures[0].task, "failWith");
    assert.equal(failures[0].error.message, "nope");
    await app.close();
  });

  it("rejects a group's get with the first failure while the other members still finish", async () => {
    const { app, add, failWith } = await setup();
    const r = await group(add.s(1, 1), failWith.s("bad member")).apply();
    await assert.rejects(within(r.get(), scaled(5_000), "the group with a failing member"), /bad member/);
    assert.equal(await within(r.children[0].get(), scaled(5_000), "the group's succeeding member"), 2);
    assert.deepEqual(await r.progress(), { total: 2, completed: 2, succeeded: 1, failed: 1, fraction: 1 });
    await app.close();
  });
});
