import assert from "node:assert/strict";
import { describe, it, type TestContext } from "node:test";
import { BrokerNode } from "../../broker/node/node-server.ts";
import { EmbeddedBroker } from "../../broker/embedded/embedded-broker.ts";
import { createApp, type App } from "../app.ts";
import { serveResults } from "../results/result-service.ts";
import { MemoryResultStore } from "../results/result-store.ts";
import { deferred } from "../test-support.ts";
import type { ReceivedEvent } from "./event-subscription.ts";
import type { CelerityEvent } from "./event-types.ts";
import { processName } from "./event-dispatcher.ts";
import { VirtualClock } from "../testing/virtual-clock.ts";

const WAIT_MS = 5_000;

/** Subscribe to `app`'s events, recording them; `until` waits for an event matching `predicate`. */
const record = async (app: App, options: Parameters<App["events"]["subscribe"]>[1] = {}) => {
  const events: ReceivedEvent[] = [];
  const waiters = new Set<() => void>();
  const subscription = await app.events.subscribe((event) => {
    events.push(event);
    for (const wake of waiters) wake();
  }, options);
  const until = (predicate: (event: ReceivedEvent) => boolean, what: string): Promise<ReceivedEvent> =>
    new Promise((resolve, reject) => {
      const wake = () => {
        const found = events.find(predicate);
        if (found === undefined) return;
        clearTimeout(timer);
        waiters.delete(wake);
        resolve(found);
      };
      const timer = setTimeout(() => {
        waiters.delete(wake);
        reject(
          new Error(`timed out after ${WAIT_MS} ms waiting for ${what}; got ${events.map((e) => e.type).join(", ")}`),
        );
      }, WAIT_MS);
      waiters.add(wake);
      wake();
    });
  const of = (uuid: string) => events.filter((e) => "uuid" in e && e.uuid === uuid);
  return { events, until, of, subscription };
};

const embeddedApp = (t: TestContext, options: Parameters<typeof createApp>[0] = {}): App => {
  const app = createApp({ log: () => {}, ...options });
  t.after(() => app.close());
  return app;
};

/** A node serving results, and an app on it; both closed after the test. */
const nodeApp = async (t: TestContext, options: Parameters<typeof createApp>[0] = {}): Promise<App> => {
  const node = await BrokerNode.start({ port: 0, log: () => {} });
  serveResults(node, new MemoryResultStore());
  const app = createApp({ broker: node.url, log: () => {}, ...options });
  t.after(async () => {
    await app.close();
    await node.stop();
  });
  return app;
};

const ofType = <T extends CelerityEvent["type"]>(
  event: ReceivedEvent,
  type: T,
): Extract<CelerityEvent, { type: T }> => {
  assert.equal(event.type, type);
  return event as unknown as Extract<CelerityEvent, { type: T }>;
};

for (const [transport, make] of [
  ["the embedded broker", async (t: TestContext) => embeddedApp(t, { events: true })],
  ["a broker node", (t: TestContext) => nodeApp(t, { events: true })],
] as const) {
  describe(`task events over ${transport}`, () => {
    it("sends task-sent, task-received, task-started and task-succeeded in that order, with Celery's fields", async (t) => {
      const app = await make(t);
      const add = app.task("add", (x: number, y: number) => x + y);
      const worker = app.worker({ events: true, name: "w1@test" });
      await worker.start();
      const stream = await record(app);
      const result = await add.delay(2, 2);
      await result.get({ timeout: WAIT_MS });
      await stream.until((e) => e.type === "task-succeeded" && e.uuid === result.id, "task-succeeded");
      const events = stream.of(result.id);
      assert.deepEqual(
        events.map((e) => e.type),
        ["task-sent", "task-received", "task-started", "task-succeeded"],
      );
      const [sent, received, started, succeeded] = events;
      const sentEvent = ofType(sent, "task-sent");
      assert.equal(sentEvent.hostname, processName());
      assert.deepEqual(
        [
          sentEvent.name,
          sentEvent.args,
          sentEvent.kwargs,
          sentEvent.retries,
          sentEvent.queue,
          sentEvent.routing_key,
          sentEvent.exchange,
          sentEvent.root_id,
          sentEvent.eta,
        ],
        ["add", "[2,2]", "{}", 0, "celery", "celery", "", result.id, null],
      );
      const receivedEvent = ofType(received, "task-received");
      assert.deepEqual([receivedEvent.hostname, receivedEvent.name, receivedEvent.args], ["w1@test", "add", "[2,2]"]);
      assert.equal(ofType(started, "task-started").hostname, "w1@test");
      const done = ofType(succeeded, "task-succeeded");
      assert.equal(done.result, "4");
      assert.ok(done.runtime >= 0 && done.runtime < 5, `runtime ${done.runtime} s`);
      for (const event of events) {
        assert.equal(event.pid, process.pid);
        assert.ok(Math.abs(event.timestamp - Date.now() / 1000) < 10, "timestamp in seconds");
        assert.equal(typeof event.clock, "number");
        assert.ok(event.local_received >= event.timestamp - 1);
      }
    });

    it("sends task-retried for each retry, then task-failed with the exception and its traceback", async (t) => {
      const app = await make(t);
      const flaky = app.task(
        "flaky",
        () => {
          throw new RangeError("boom");
        },
        { retry: { max: 1, backoff: 1 } },
      );
      await app.worker({ events: true }).start();
      const stream = await record(app);
      const result = await flaky.delay();
      await stream.until((e) => e.type === "task-failed" && e.uuid === result.id, "task-failed");
      const types = stream.of(result.id).map((e) => e.type);
      // As in Celery, the retry's message (and its task-sent) goes out before the worker reports task-retried.
      assert.deepEqual(types, [
        "task-sent",
        "task-received",
        "task-started",
        "task-sent",
        "task-retried",
        "task-received",
        "task-started",
        "task-failed",
      ]);
      const failed = ofType(stream.of(result.id).at(-1)!, "task-failed");
      assert.equal(failed.exception, 'RangeError("boom")');
      assert.match(failed.traceback, /RangeError: boom/);
    });
  });
}

describe("task events", () => {
  it("sends task-revoked for a task revoked before it ran, one that expired, and one terminated while running", async (t) => {
    const clock = new VirtualClock();
    const app = embeddedApp(t, { clock });
    const gate = deferred();
    const slow = app.task("slow", async function () {
      await new Promise((resolve, reject) => {
        this.signal.addEventListener("abort", () => reject(this.signal.reason));
        void gate.promise.then(resolve);
      });
    });
    const quick = app.task("quick", () => 1);
    const stream = await record(app);
    const revoked = await quick.applyAsync([], { countdown: 30_000 });
    await app.revoke([revoked.id]);
    const expired = await quick.applyAsync([], { expires: 1 });
    await clock.advance(5); // past its expiry, 1 ms after it was sent
    await app.worker({ events: true, concurrency: 2 }).start();
    const running = await slow.delay();
    await stream.until((e) => e.type === "task-started" && e.uuid === running.id, "the slow task to start");
    await app.revoke([running.id], { terminate: true });
    const terminated = ofType(
      await stream.until((e) => e.type === "task-revoked" && e.uuid === running.id, "terminated"),
      "task-revoked",
    );
    assert.deepEqual([terminated.terminated, terminated.expired, terminated.signum], [true, false, null]);
    const lapsed = ofType(
      await stream.until((e) => e.type === "task-revoked" && e.uuid === expired.id, "expired"),
      "task-revoked",
    );
    assert.deepEqual([lapsed.terminated, lapsed.expired], [false, true]);
    gate.resolve();
    // The revoked delayed message is discarded by the broker: no worker ever sees it, so no event.
    assert.deepEqual(stream.of(revoked.id), []);
  });

  it("sends task-rejected for a task the worker does not know", async (t) => {
    const app = embeddedApp(t);
    await app.worker({ events: true }).start();
    const stream = await record(app);
    const result = await app.sendTask("nobody.knows", []);
    const rejected = ofType(
      await stream.until((e) => e.type === "task-rejected" && e.uuid === result.id, "task-rejected"),
      "task-rejected",
    );
    assert.equal(rejected.requeue, false);
    assert.equal(rejected.name, "nobody.knows");
    assert.match(rejected.reason, /not registered/);
  });

  it("sends worker-online when a worker starts, heartbeats with its load, and worker-offline when it stops", async (t) => {
    const app = embeddedApp(t);
    const add = app.task("add", (x: number, y: number) => x + y);
    const stream = await record(app, { types: ["worker-online", "worker-heartbeat", "worker-offline"] });
    const worker = app.worker({ events: true, name: "beating@test" });
    await worker.start();
    await (await add.delay(1, 1)).get({ timeout: WAIT_MS });
    const online = ofType(await stream.until((e) => e.type === "worker-online", "worker-online"), "worker-online");
    assert.deepEqual([online.hostname, online.sw_ident, online.freq], ["beating@test", "celerity", 2]);
    const beat = ofType(
      await stream.until((e) => e.type === "worker-heartbeat", "a heartbeat (every 2 s)"),
      "worker-heartbeat",
    );
    assert.deepEqual([beat.active, beat.processed, beat.loadavg.length], [0, 1, 3]);
    await worker.stop();
    await stream.until((e) => e.type === "worker-offline" && e.hostname === "beating@test", "worker-offline");
  });

  it("filters by event type and by task", async (t) => {
    const app = embeddedApp(t, { events: true });
    const add = app.task("add", (x: number, y: number) => x + y);
    const mul = app.task("mul", (x: number, y: number) => x * y);
    await app.worker({ events: true }).start();
    const onlyMul = await record(app, { tasks: "mul", types: ["task-succeeded"] });
    const all = await record(app);
    const a = await add.delay(1, 2);
    const m = await mul.delay(3, 4);
    await all.until((e) => e.type === "task-succeeded" && e.uuid === a.id, "add to finish");
    await onlyMul.until((e) => e.type === "task-succeeded" && e.uuid === m.id, "mul to finish");
    await all.until((e) => e.type === "task-succeeded" && e.uuid === m.id, "mul to finish");
    assert.deepEqual(
      onlyMul.events.map((e) => [e.type, "name" in e ? e.name : undefined]),
      [["task-succeeded", "mul"]],
    );
  });

  it("refuses a subscription to an event type that does not exist, naming it", async (t) => {
    const app = embeddedApp(t);
    await assert.rejects(
      app.events.subscribe(() => {}, { types: ["task-done" as "task-sent"] }),
      /unknown event type 'task-done'/,
    );
  });

  it("publishes nothing but the tasks' own messages when events are off", async (t) => {
    const broker = new EmbeddedBroker();
    const app = embeddedApp(t, { broker });
    const add = app.task("add", (x: number, y: number) => x + y);
    await app.worker().start();
    for (let i = 0; i < 5; i++) await (await add.delay(i, i)).get({ timeout: WAIT_MS });
    assert.equal(broker.totals().published, 5);
    assert.equal(
      (await broker.listQueues()).some((q) => q.name.startsWith("celerity.events")),
      false,
    );
  });

  it("starts and stops a worker's events while it runs", async (t) => {
    const app = embeddedApp(t);
    const add = app.task("add", (x: number, y: number) => x + y);
    const worker = app.worker({ name: "toggled@test" });
    await worker.start();
    const stream = await record(app);
    const before = await add.delay(1, 1);
    await before.get({ timeout: WAIT_MS });
    worker.enableEvents();
    assert.equal(worker.sendsEvents, true);
    const during = await add.delay(2, 2);
    await stream.until((e) => e.type === "task-succeeded" && e.uuid === during.id, "task-succeeded while enabled");
    worker.disableEvents();
    await stream.until((e) => e.type === "worker-offline", "worker-offline on disable");
    const after = await add.delay(3, 3);
    await after.get({ timeout: WAIT_MS });
    // A marker through the same exchange, sent after: once it arrives, anything about `after` would have too.
    worker.enableEvents();
    await stream.until((e) => e.type === "worker-online" && e.clock > 3, "worker-online again");
    assert.deepEqual(stream.of(before.id), []);
    assert.deepEqual(stream.of(after.id), []);
  });
});
