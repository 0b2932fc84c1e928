/**
 * Canvases at their edges, each on the embedded broker and over a broker
 * node (in this process, reached over TCP): revoking running workflows,
 * values too large for the wire, errors that are hard to describe, deep
 * nesting, and the handles' `parent`.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CodecError } from "../broker/codec.ts";
import { BrokerNode } from "../broker/node/node-server.ts";
import { chain, chord, group } from "../dsl/combinators.ts";
import { CanvasError } from "../dsl/errors.ts";
import type { AnyCanvas } from "../dsl/canvas.ts";
import type { TaskFailure } from "../dsl/result.ts";
import { createApp, type App } from "./app.ts";
import { MAX_ERROR_TEXT, RemoteTaskError, TaskRevokedError } from "./errors.ts";
import { MemoryResultStore, type ResultStore } from "./results/result-store.ts";
import { serveResults } from "./results/result-service.ts";
import { deferred, eventually } from "./test-support.ts";
import { MAX_RESULT_BYTES } from "./worker/task-completion.ts";

type Transport = "embedded" | "node";

/** An app with a worker, on the embedded broker or over a node; closed (with its node) after the test. */
const appOn = async (
  t: { after(fn: () => unknown): void },
  transport: Transport,
  nodeOptions: { maxFrameBytes?: number } = {},
) => {
  const logs: string[] = [];
  let app: App;
  if (transport === "embedded") {
    app = createApp({ log: (line) => logs.push(line) });
    t.after(() => app.close());
  } else {
    const node = await BrokerNode.start({ port: 0, log: () => {}, ...nodeOptions });
    serveResults(node);
    app = createApp({ broker: node.url, log: (line) => logs.push(line) });
    t.after(async () => {
      await app.close().catch(() => {});
      await node.stop();
    });
  }
  return { app, logs };
};

const GET = { timeout: 10_000 };

for (const transport of ["embedded", "node"] as const) {
  describe(`canvases at their edges (${transport})`, () => {
    it("revoking a chain with terminate while its first step runs records every step REVOKED and gives its error callback a TaskRevokedError", async (t) => {
      const { app } = await appOn(t, transport);
      const started = deferred();
      const hold = app.task("hold", function (_x: number) {
        started.resolve();
        return new Promise<number>((_, reject) =>
          this.signal.addEventListener("abort", () => reject(this.signal.reason)),
        );
      });
      const inc = app.task("inc", (x: number) => x + 1);
      const failures: TaskFailure[] = [];
      const notify = app.task("notify", (failure: TaskFailure) => void failures.push(failure));
      await app.worker({ concurrency: 4 }).start();
      const r = await chain(hold.s(1), inc.s(), inc.s()).onError(notify.s()).apply();
      await started.promise;
      await r.revoke({ terminate: true });
      await assert.rejects(r.get(GET), TaskRevokedError);
      for (const step of [r.parent!.parent!, r.parent!, r]) {
        await assert.rejects(step.get(GET), TaskRevokedError);
        assert.equal(await step.state(), "REVOKED");
      }
      await eventually(() => failures.length === 1, 5_000, "the error callback");
      assert.equal(failures[0].error.name, "TaskRevokedError");
      assert.equal(failures[0].id, r.id);
    });

    it("fails a task whose result is larger than a node's frame once, naming the size and the limit", async (t) => {
      const { app } = await appOn(t, transport);
      let runs = 0;
      const big = app.task("big", () => {
        runs++;
        return new Uint8Array(MAX_RESULT_BYTES + 1);
      });
      await app.worker().start();
      const r = await big.delay();
      const error = await r.get(GET).then(
        () => assert.fail("a result over the limit was stored"),
        (e: unknown) => e,
      );
      assert.ok(error instanceof RemoteTaskError, String(error));
      assert.equal(error.remote.name, "ResultTooLargeError");
      assert.match(
        error.remote.message,
        /result of task 'big' .* is 16,777,2\d\d bytes \(16\.0 MiB\) encoded, over the limit of 16,777,216 bytes/,
      );
      assert.equal(runs, 1);
      assert.equal(await r.state(), "FAILURE");
    });

    it("stores the failure of an error whose message is larger than a frame, cut to a readable length", async (t) => {
      const { app } = await appOn(t, transport);
      let runs = 0;
      const shout = app.task("shout", () => {
        runs++;
        throw new Error("x".repeat(17 * 2 ** 20));
      });
      await app.worker().start();
      const r = await shout.delay();
      const error = await r.get(GET).catch((e: unknown) => e);
      assert.ok(error instanceof RemoteTaskError, String(error));
      assert.ok(error.remote.message.length < MAX_ERROR_TEXT + 100);
      assert.match(error.remote.message, /more characters left out\)$/);
      assert.equal(runs, 1);
    });

    it("records a failure whose message getter throws, once, saying the message could not be read", async (t) => {
      const { app } = await appOn(t, transport);
      let runs = 0;
      class Sneaky extends Error {
        override get message(): string {
          throw new Error("no message for you");
        }
      }
      const sneaky = app.task("sneaky", () => {
        runs++;
        throw new Sneaky();
      });
      await app.worker().start();
      const r = await sneaky.delay();
      const error = await r.get(GET).catch((e: unknown) => e);
      assert.ok(error instanceof RemoteTaskError, String(error));
      assert.equal(error.remote.name, "Sneaky");
      assert.equal(error.remote.message, "(the error's message could not be read: no message for you)");
      assert.equal(runs, 1);
    });

    it("names a failure after its error class when the class does not set a name, and stores a non-string name as text", async (t) => {
      const { app } = await appOn(t, transport);
      class QuotaExceeded extends Error {}
      const quota = app.task("quota", () => {
        throw new QuotaExceeded("over quota");
      });
      const odd = app.task("odd", () => {
        const error = new Error("odd name");
        (error as unknown as { name: unknown }).name = 42;
        throw error;
      });
      const named = app.task("named", () => {
        const error = new QuotaExceeded("renamed");
        error.name = "Renamed";
        throw error;
      });
      await app.worker().start();
      const remote = async (r: { get(o: typeof GET): Promise<unknown> }) =>
        ((await r.get(GET).catch((e: unknown) => e)) as RemoteTaskError).remote;
      assert.equal((await remote(await quota.delay())).name, "QuotaExceeded");
      assert.equal((await remote(await odd.delay())).name, "42");
      assert.equal((await remote(await named.delay())).name, "Renamed");
    });

    it("reports a step that fails before a chord as the previous step, not as a chord member", async (t) => {
      const { app } = await appOn(t, transport);
      const fail = app.task("fail", (message: string) => {
        throw new Error(message);
      });
      const add = app.task("add", (x: number, y: number) => x + y);
      const tsum = app.task("tsum", (xs: number[]) => xs.reduce((a, b) => a + b, 0));
      await app.worker().start();
      const r = await chain(fail.si("x"), chord([add.si(1, 1), add.si(2, 2)], tsum.s())).apply();
      const error = await r.get(GET).catch((e: unknown) => e);
      assert.ok(error instanceof RemoteTaskError, String(error));
      assert.match(error.remote.message, /^previous step 'fail' \(.*\) failed: Error: x$/);
      const member = await chord([fail.si("y"), add.si(1, 1)], tsum.s()).apply();
      assert.match(
        ((await member.get(GET).catch((e: unknown) => e)) as RemoteTaskError).remote.message,
        /^chord member 'fail'/,
      );
    });

    it("refuses groups nested deeper than can be sent with a CodecError, before anything is sent", async (t) => {
      const { app } = await appOn(t, transport);
      const add = app.task("add", (x: number, y: number) => x + y);
      await app.worker().start();
      let canvas: AnyCanvas = add.s(1, 1);
      for (let i = 0; i < 120; i++) canvas = group(canvas as never) as unknown as AnyCanvas;
      await assert.rejects(
        (canvas as ReturnType<typeof group>).apply(),
        (e: unknown) => e instanceof CodecError && /nested 120 deep; at most 32/.test(e.message),
      );
      let fits: AnyCanvas = add.s(1, 1);
      for (let i = 0; i < 32; i++) fits = group(fits as never) as unknown as AnyCanvas;
      let expected: unknown = 2;
      for (let i = 0; i < 32; i++) expected = [expected];
      assert.deepEqual(await (await (fits as ReturnType<typeof group>).apply()).get(GET), expected);
    });

    it("gives each step's handle its previous step as parent, as Celery does", async (t) => {
      const { app } = await appOn(t, transport);
      const add = app.task("add", (x: number, y: number) => x + y);
      const tsum = app.task("tsum", (xs: number[]) => xs.reduce((a, b) => a + b, 0));
      await app.worker().start();
      const r = await chain(add.s(1, 1), add.s(10), chord([add.s(1), add.s(2)], tsum.s())).apply();
      assert.equal(await r.get(GET), 12 + 1 + 12 + 2);
      const header = r.parent!;
      assert.deepEqual(await header.get(GET), [13, 14]);
      assert.equal(header.children.length, 2);
      assert.equal(await header.parent!.get(GET), 12);
      assert.equal(await header.parent!.parent!.get(GET), 2);
      assert.equal(header.parent!.parent!.parent, undefined);
      assert.equal((await add.delay(1, 2)).parent, undefined);
    });
  });
}

describe("canvases at their edges: the node's own limits", () => {
  it("fails a task whose result is over a node's smaller frame limit once, naming that limit", async (t) => {
    const { app } = await appOn(t, "node", { maxFrameBytes: 64 * 1024 });
    let runs = 0;
    const big = app.task("big", () => {
      runs++;
      return "y".repeat(100_000);
    });
    await app.worker().start();
    const r = await big.delay();
    const error = await r.get(GET).catch((e: unknown) => e);
    assert.ok(error instanceof RemoteTaskError, String(error));
    assert.match(error.remote.message, /is 100,00\d bytes \(0\.1 MiB\) encoded, over the limit of 65,536 bytes/);
    assert.equal(runs, 1);
  });
});

/** A store that lets every task start without recording STARTED, so a revocation can land while it runs. */
class CarelessStore extends MemoryResultStore {
  override start(): boolean {
    return true;
  }
}

describe("a step whose result is refused because it was revoked while it ran", () => {
  it("does not advance its workflow, and the worker says the result was discarded", async (t) => {
    const logs: string[] = [];
    const app = createApp({ results: new CarelessStore(), log: (line) => logs.push(line) });
    t.after(() => app.close());
    const started = deferred();
    const release = deferred();
    const ran: string[] = [];
    const slow = app.task("slow", async (x: number) => {
      started.resolve();
      await release.promise;
      ran.push("slow");
      return x;
    });
    const after = app.task("after", (x: number) => {
      ran.push("after");
      return x;
    });
    await app.worker().start();
    const r = await chain(slow.s(1), after.s()).apply();
    await started.promise;
    await app.revoke([r.parent!.id]);
    release.resolve();
    await eventually(
      () =>
        logs.some((line) =>
          /ran to completion after it was revoked: its result is discarded, and its workflow stops there/.test(line),
        ),
      5_000,
      "the worker's notice",
    );
    assert.equal(await r.parent!.state(), "REVOKED");
    assert.equal(await r.state(), "FAILURE");
    assert.deepEqual(ran, ["slow"]);
  });
});

/** A memory store whose answer to `start` reaches the worker only when the test says, as over a round trip. */
const slowStart = () => {
  const asked = deferred();
  const answer = deferred();
  const inner = new MemoryResultStore();
  const store = new Proxy(inner, {
    get(target, key) {
      if (key === "start") {
        return (id: string, task: string) => {
          // Recorded at once, answered later: the answer is what travels back over the wire.
          const started = target.start(id, task);
          asked.resolve();
          return answer.promise.then(() => started);
        };
      }
      const value = Reflect.get(target, key);
      return typeof value === "function" ? value.bind(target) : value;
    },
  }) as ResultStore;
  return { store, asked, answer };
};

describe("a task revoked with terminate while its worker waits for the store to confirm STARTED", () => {
  it("does not run, and reads REVOKED", async (t) => {
    const { store, asked, answer } = slowStart();
    const app = createApp({ results: store, log: () => {} });
    t.after(() => app.close());
    let runs = 0;
    const job = app.task("job", () => ++runs);
    await app.worker().start();
    const r = await job.delay();
    await asked.promise;
    await app.revoke([r.id], { terminate: true });
    answer.resolve();
    await assert.rejects(r.get(GET), TaskRevokedError);
    assert.equal(runs, 0);
  });
});

describe("an empty group", () => {
  it("cannot be sent on its own: apply() rejects with a CanvasError", async () => {
    await assert.rejects(group([]).apply(), (e: unknown) => e instanceof CanvasError && /no signature/.test(e.message));
  });
});
