import assert from "node:assert/strict";
import { describe, it, type TestContext } from "node:test";
import { BrokerNode } from "../../broker/node/node-server.ts";
import { createApp, type App } from "../app.ts";
import { serveResults } from "../results/result-service.ts";
import { eventually } from "../test-support.ts";
import { ManualClock } from "./beat-clock.ts";
import { runId } from "./run-id.ts";
import { serveSchedules } from "./schedule-service.ts";
import { LeaseLostError } from "./schedule-errors.ts";
import { RemoteScheduleStore } from "./stores/remote-schedule-store.ts";
import type { NodeTransport } from "../../broker/node/client/node-transport.ts";

/** A node keeping schedules on a virtual clock, and apps connected to it, each standing for a process. */
const setup = async (t: TestContext, options: { schedules?: boolean } = {}) => {
  const clock = new ManualClock(Date.parse("2026-03-02T00:00:00Z"));
  const node = await BrokerNode.start({ port: 0, log: () => {} });
  serveResults(node);
  if (options.schedules !== false) serveSchedules(node, { now: () => clock.now() });
  const apps: App[] = [];
  const connect = (logs: string[] = []) => {
    const app = createApp({ broker: node.url, log: (line) => logs.push(line) });
    apps.push(app);
    return app;
  };
  t.after(async () => {
    for (const app of apps) await app.close();
    await node.stop();
  });
  return { clock, node, connect };
};

describe("schedules on a broker node", () => {
  it("are shared by every process: added by one, listed and sent by another", async (t) => {
    const { clock, connect } = await setup(t);
    const producer = connect();
    const worker = connect();
    worker.task("ping", (n: number) => n * 2);
    await producer.schedules.add("double", { every: "1m" }, { task: "ping", args: [21], options: {} });
    await worker.worker().start();
    const beat = connect().beat({ clock, id: "b1" });
    await beat.tick();
    assert.deepEqual(
      (await worker.schedules.list()).map((s) => s.name),
      ["double"],
    );
    await clock.advance(60_000);
    const report = await beat.tick();
    assert.equal(report.sent.length, 1);
    const id = runId("double", clock.now());
    assert.equal(report.sent[0].id, id);
    assert.equal(await producer.result(id).get({ timeout: 5_000 }), 42);
  });

  it("elect one leader; a fenced beat's runs are refused over the wire", async (t) => {
    const { clock, connect } = await setup(t);
    const a = connect();
    const b = connect();
    a.schedule("tick", { every: "1s" }, { task: "ping", args: [], options: {} });
    const first = a.beat({ clock, id: "first", leaseMs: 2_000 });
    const second = b.beat({ clock, id: "second", leaseMs: 2_000 });
    assert.equal((await first.tick()).leader, true);
    assert.equal((await second.tick()).leader, false);
    await clock.advance(3_000);
    assert.equal((await second.tick()).leader, true);
    assert.deepEqual((await second.tick()).sent, [], "the runs were sent by the tick that took the lead");
    const store = new RemoteScheduleStore((a.broker as NodeTransport).client);
    await assert.rejects(
      store.fire("first", 1, [{ schedule: "tick", instant: clock.now() + 1_000, send: false, envelope: undefined }]),
      LeaseLostError,
    );
    assert.equal((await a.schedules.list())[0].lastRun, clock.now(), "nothing recorded for the fenced beat");
  });

  it("says so when the node keeps no schedules", async (t) => {
    const { connect } = await setup(t, { schedules: false });
    const app = connect();
    await assert.rejects(
      app.schedules.list(),
      /does not keep schedules \(start it with 'celerity broker', or call serveSchedules\(node\)\)/,
    );
  });

  it("keeps schedules while beats come and go", async (t) => {
    const { clock, connect } = await setup(t);
    const app = connect();
    await app.schedules.add("tick", { every: "1s" }, { task: "ping", args: [], options: {} }, { catchUp: "all" });
    let beat = app.beat({ clock, id: "one" });
    await beat.tick();
    await clock.advance(2_000);
    const sent = (await beat.tick()).sent.map((r) => r.instant);
    await beat.stop();
    await clock.advance(2_000);
    beat = connect().beat({ clock, id: "two" });
    sent.push(...(await beat.tick()).sent.map((r) => r.instant));
    await beat.stop();
    const start = Date.parse("2026-03-02T00:00:00Z");
    assert.deepEqual(
      sent,
      [1, 2, 3, 4].map((s) => start + s * 1_000),
    );
    await eventually(
      async () => (await app.schedules.list())[0].lastRun === start + 4_000,
      2_000,
      "the last run on the node",
    );
  });
});
