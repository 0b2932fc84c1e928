/**
 * What the runtime promises across processes, on any broker: apps that
 * stand for separate processes (a producer, one or two workers) share a
 * broker and a result store. Each broker's test file runs these with a
 * `connect` that makes such an app and closes it when the test ends.
 *
 * @example
 * crossProcessConformance("Redis", async (t) => () => createApp({ broker: url }));
 */
import assert from "node:assert/strict";
import { describe, it, type TestContext } from "node:test";
import { scaled } from "../tests/support/waits.ts";
import { chain, chord, group } from "../dsl/combinators.ts";
import type { App } from "./app.ts";
import { RemoteTaskError } from "./errors.ts";
import { deferred } from "./test-support.ts";

/** Makes the apps of test `t`, each closed when `t` ends (also when it failed). */
export type ConnectApps = (t: TestContext) => Promise<() => App>;

const GET = { timeout: scaled(10_000) };

const arithmetic = (app: App) => ({
  add: app.task("add", (x: number, y: number) => x + y),
  tsum: app.task("tsum", (xs: number[]) => xs.reduce((a, b) => a + b, 0)),
  fail: app.task("fail", () => {
    throw new Error("boom in another process");
  }),
});

export const crossProcessConformance = (broker: string, connectApps: ConnectApps): void => {
  describe(`the runtime across processes over ${broker}`, () => {
    it("runs tasks and canvases sent by one app on the worker of another, results readable from both", async (t) => {
      const connect = await connectApps(t);
      const producer = connect();
      const workerSide = connect();
      const { add, tsum, fail } = arithmetic(producer);
      arithmetic(workerSide);
      await workerSide.worker({ concurrency: 4 }).start();
      const r = await add.delay(2, 2);
      assert.equal(await r.get(GET), 4);
      assert.equal(await workerSide.result(r.id).get(GET), 4);
      assert.equal(await (await chain(add.s(2, 2), add.s(4), add.s(8)).apply()).get(GET), 16);
      assert.deepEqual(await (await group(add.s(1, 1), add.s(2, 2)).apply()).get(GET), [2, 4]);
      assert.equal(await (await chord(group(add.s(1, 1), add.s(2, 2)), tsum.s()).apply()).get(GET), 6);
      await assert.rejects(
        (await fail.delay()).get(GET),
        (e: unknown) => e instanceof RemoteTaskError && /boom in another process/.test(e.message),
      );
      assert.equal(await producer.result("00000000-0000-4000-8000-000000000000").state(), "UNKNOWN");
    });

    it("revokes a queued task from another process: a worker started later never runs it", async (t) => {
      const connect = await connectApps(t);
      const producer = connect();
      const ran: number[] = [];
      const record = producer.task("record", (n: number) => ran.push(n));
      const revoked = await record.delay(1);
      await revoked.revoke();
      const workerSide = connect();
      workerSide.task("record", (n: number) => ran.push(n));
      await workerSide.worker().start();
      await (await record.delay(2)).get(GET);
      assert.deepEqual(ran, [2]);
      assert.equal(await revoked.state(), "REVOKED");
    });

    it("hands a task whose worker stops mid-task to another worker, which completes it", async (t) => {
      const connect = await connectApps(t);
      const producer = connect();
      const first = connect();
      const second = connect();
      const started = deferred();
      let runs = 0;
      for (const side of [first, second]) {
        side.task("slow", async () => {
          runs++;
          if (runs === 1) {
            started.resolve();
            return new Promise<string>(() => {});
          }
          return "finished by the second worker";
        });
      }
      const slow = producer.task("slow", async () => "unused");
      const firstWorker = first.worker({ name: "first" });
      await firstWorker.start();
      const r = await slow.delay();
      await started.promise;
      await firstWorker.stop({ timeout: 10 });
      await second.worker({ name: "second" }).start();
      assert.equal(await r.get(GET), "finished by the second worker");
      assert.equal(runs, 2);
    });
  });
};
