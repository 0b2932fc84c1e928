import assert from "node:assert/strict";
import { describe, it, type TestContext } from "node:test";
import { EmbeddedBroker } from "../../broker/embedded/embedded-broker.ts";
import { createApp, type App } from "../app.ts";
import { eventually } from "../test-support.ts";
import { ManualClock } from "./beat-clock.ts";
import { createTestApp } from "../testing/test-app.ts";
import { MemoryScheduleStore } from "./schedule-store.ts";
import { runId } from "./run-id.ts";
import { LeaseLostError, ScheduleError } from "./schedule-errors.ts";
import { generateKeyPair } from "../signing/signing-keys.ts";
import { generateBoxKey } from "../signing/payload-box.ts";
import { scaled, within } from "../../tests/support/waits.ts";

const T0 = Date.parse("2026-03-02T00:00:00Z");

/** An app on its own embedded broker whose schedule store and beats run on a virtual clock. */
const setup = (t: TestContext, start = T0) => {
  const clock = new ManualClock(start);
  const broker = new EmbeddedBroker();
  MemoryScheduleStore.of(broker, () => clock.now());
  const logs: string[] = [];
  const apps: App[] = [];
  const connect = () => {
    const app = createApp({ broker, log: (line) => logs.push(line) });
    apps.push(app);
    return app;
  };
  const app = connect();
  const ping = app.task("ping", (n: number) => n);
  t.after(async () => {
    for (const each of apps) await each.close();
  });
  return { clock, broker, app, ping, logs, connect };
};

describe("beat", () => {
  it("sends each instant of an interval schedule once as time passes", async (t) => {
    const { clock, app, ping } = setup(t);
    app.schedule("tick", { every: "10s" }, ping.s(1));
    const beat = app.beat({ clock, leaseMs: 60_000 });
    await beat.start();
    await beat.stop();
    const sent: number[] = [];
    for (let i = 0; i < 6; i++) {
      await clock.advance(5_000);
      const report = await beat.tick();
      sent.push(...report.sent.map((run) => run.instant));
    }
    assert.deepEqual(sent, [T0 + 10_000, T0 + 20_000, T0 + 30_000]);
  });

  it("runs the task of each run, under the id derived from the schedule and instant", async (t) => {
    const { clock, app, ping } = setup(t);
    app.schedule("tick", { every: "1m" }, ping.s(7));
    await app.worker().start();
    const beat = app.beat({ clock });
    await beat.start();
    t.after(() => beat.stop());
    await clock.advance(60_000);
    const id = runId("tick", T0 + 60_000);
    await eventually(async () => (await app.result(id).state()) === "SUCCESS", 2_000, "the scheduled run to succeed");
    assert.equal(await within(app.result(id).get(), scaled(5_000), "the scheduled run's result"), 7);
  });

  it("signs (and encrypts) each run in a signed app, so signed workers run it", async (t) => {
    const clock = new ManualClock(T0);
    const broker = new EmbeddedBroker();
    MemoryScheduleStore.of(broker, () => clock.now());
    const { publicKey, secretKey } = generateKeyPair();
    const app = createApp({
      broker,
      log: () => {},
      signing: { key: secretKey, trusted: [publicKey], encryption: [generateBoxKey()] },
    });
    t.after(() => app.close());
    const ping = app.task("ping", (n: number) => n + 1);
    app.schedule("signed", { every: "1m" }, ping.s(41));
    await app.worker().start();
    const beat = app.beat({ clock });
    await beat.tick();
    await clock.advance(60_000);
    const [run] = (await beat.tick()).sent;
    assert.equal(await app.result(run.id).get({ timeout: 2_000 }), 42);
  });

  it("runs on the app's virtual clock in celerity/testing, a run at each instant the clock passes", async (c) => {
    const t = await createTestApp({ startAt: T0 });
    c.after(() => t.close());
    const ping = t.app.task("ping", (n: number) => n);
    t.app.schedule("tick", { every: "1m" }, ping.s(1));
    await t.app.beat().start();
    await t.clock.advance("3m");
    await t.drain();
    assert.deepEqual(
      t.sentOf("ping").map((sent) => sent.id),
      [1, 2, 3].map((m) => runId("tick", T0 + m * 60_000)),
    );
  });

  it("lets one beat lead among several, and another take over when the leader stops", async (t) => {
    const { clock, app, connect, ping } = setup(t);
    app.schedule("tick", { every: "1s" }, ping.s(1));
    const other = connect();
    const first = app.beat({ clock, id: "first", leaseMs: 5_000 });
    const second = other.beat({ clock, id: "second", leaseMs: 5_000 });
    assert.equal((await first.tick()).leader, true);
    assert.equal((await second.tick()).leader, false);
    await clock.advance(1_000);
    assert.deepEqual(
      (await first.tick()).sent.map((r) => r.instant),
      [T0 + 1_000],
    );
    assert.deepEqual((await second.tick()).sent, []);
    await first.stop();
    await clock.advance(1_000);
    const report = await second.tick();
    assert.equal(report.leader, true);
    assert.deepEqual(
      report.sent.map((r) => r.instant),
      [T0 + 2_000],
    );
  });

  it("hands over after a silent leader's lease expires, sending the runs it missed once", async (t) => {
    const { clock, app, connect, ping } = setup(t);
    app.schedule("tick", { every: "1s" }, ping.s(1), { catchUp: "all" });
    const first = app.beat({ clock, id: "first", leaseMs: 3_000, graceMs: 0 });
    const second = connect().beat({ clock, id: "second", leaseMs: 3_000, graceMs: 0 });
    await first.tick();
    await clock.advance(1_000);
    await first.tick(); // sends T0+1s, then dies without a word
    await clock.advance(2_000);
    assert.equal((await second.tick()).leader, false, "the lease is still the first beat's");
    await clock.advance(1_500);
    const report = await second.tick();
    assert.equal(report.leader, true);
    assert.deepEqual(
      report.sent.map((r) => r.instant),
      [T0 + 2_000, T0 + 3_000, T0 + 4_000],
    );
  });

  it("refuses runs from a beat whose lease was taken over (fencing), recording and sending nothing", async (t) => {
    const { clock, broker, app, ping } = setup(t);
    app.schedule("tick", { every: "1s" }, ping.s(1));
    const store = MemoryScheduleStore.of(broker);
    const beat = app.beat({ clock, id: "old", leaseMs: 1_000 });
    await beat.start();
    await beat.stop();
    const lease = await store.acquire("old", 1_000);
    await clock.advance(2_000);
    const taken = await store.acquire("new", 1_000);
    assert.ok(taken.token > lease.token);
    await assert.rejects(
      store.fire("old", lease.token, [{ schedule: "tick", instant: T0 + 1_000, send: false, envelope: undefined }]),
      LeaseLostError,
    );
    assert.equal((await store.list())[0].lastRun, undefined);
  });

  it("neither repeats nor drops a run when a beat restarts", async (t) => {
    const { clock, app, ping } = setup(t);
    app.schedule("tick", { every: "1s" }, ping.s(1), { catchUp: "all" });
    const sent: number[] = [];
    let beat = app.beat({ clock, id: "a", leaseMs: 10_000 });
    await beat.tick();
    for (let i = 0; i < 3; i++) {
      await clock.advance(1_000);
      sent.push(...(await beat.tick()).sent.map((r) => r.instant));
    }
    await beat.stop();
    await clock.advance(2_500);
    beat = app.beat({ clock, id: "b", leaseMs: 10_000 });
    sent.push(...(await beat.tick()).sent.map((r) => r.instant));
    assert.deepEqual(
      sent,
      [1, 2, 3, 4, 5].map((s) => T0 + s * 1_000),
    );
  });

  describe("catch-up of runs missed while no beat ran", () => {
    const missed = async (t: TestContext, catchUp: "skip" | "once" | "all", catchUpLimit?: number) => {
      const { clock, app, ping, logs } = setup(t);
      app.schedule("tick", { every: "1m" }, ping.s(1), {
        catchUp,
        ...(catchUpLimit !== undefined ? { catchUpLimit } : {}),
      });
      const beat = app.beat({ clock, graceMs: 30_000 });
      await beat.tick();
      await clock.advance(10 * 60_000 + 10_000); // ten missed, the last 10 s ago (on time)
      const report = await beat.tick();
      return { sent: report.sent.map((r) => (r.instant - T0) / 60_000), report, logs, beat };
    };

    it("skip: sends only the runs still on time and logs the others", async (t) => {
      const { sent, logs } = await missed(t, "skip");
      assert.deepEqual(sent, [10]);
      assert.ok(
        logs.some((line) =>
          /'tick': 9 missed runs from 2026-03-02T00:01:00.000Z not sent \(catchUp: skip\)/.test(line),
        ),
        logs.join("\n"),
      );
    });

    it("once: sends one run for the missed ones", async (t) => {
      const { sent } = await missed(t, "once");
      assert.deepEqual(sent, [9, 10]);
    });

    it("all: sends every missed run, at most catchUpLimit of them", async (t) => {
      assert.deepEqual((await missed(t, "all")).sent, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    });

    it("all with a limit: sends the newest missed runs up to the limit", async (t) => {
      assert.deepEqual((await missed(t, "all", 3)).sent, [7, 8, 9, 10]);
    });

    it("records skipped runs so the next tick does not find them again", async (t) => {
      const { beat, logs } = await missed(t, "skip");
      const before = logs.length;
      assert.deepEqual((await beat.tick()).sent, []);
      assert.equal(logs.length, before);
    });
  });

  describe("daylight-saving time", () => {
    it("runs a daily 02:30 job once on the spring-forward day, at 03:30 local time", async (t) => {
      const { clock, app, ping } = setup(t, Date.parse("2026-03-27T12:00:00Z"));
      app.schedule("nightly", { cron: "30 2 * * *", tz: "Europe/Berlin" }, ping.s(1));
      const beat = app.beat({ clock, leaseMs: 3_600_000 });
      await beat.tick();
      const sent: string[] = [];
      for (let hour = 0; hour < 4 * 24; hour++) {
        await clock.advance(3_600_000);
        sent.push(...(await beat.tick()).sent.map((r) => new Date(r.instant).toISOString()));
      }
      assert.deepEqual(sent, [
        "2026-03-28T01:30:00.000Z",
        "2026-03-29T01:30:00.000Z",
        "2026-03-30T00:30:00.000Z",
        "2026-03-31T00:30:00.000Z",
      ]);
    });

    it("runs a daily 02:30 job once, not twice, on the fall-back day", async (t) => {
      const { clock, app, ping } = setup(t, Date.parse("2026-10-24T12:00:00Z"));
      app.schedule("nightly", { cron: "30 2 * * *", tz: "Europe/Berlin" }, ping.s(1));
      const beat = app.beat({ clock, leaseMs: 3_600_000 });
      await beat.tick();
      const sent: string[] = [];
      for (let minutes = 0; minutes < 3 * 24 * 60; minutes += 15) {
        await clock.advance(15 * 60_000);
        sent.push(...(await beat.tick()).sent.map((r) => new Date(r.instant).toISOString()));
      }
      assert.deepEqual(sent, ["2026-10-25T00:30:00.000Z", "2026-10-26T01:30:00.000Z", "2026-10-27T01:30:00.000Z"]);
    });
  });

  it("changes schedules at run time: added, replaced, removed, listed with their last and next runs", async (t) => {
    const { clock, app, ping } = setup(t);
    const beat = app.beat({ clock });
    await app.schedules.add("a", { every: "1m" }, ping.s(1));
    await app.schedules.add("b", { cron: "0 3 * * 1-5", tz: "Europe/Berlin" }, ping.s(2));
    await clock.advance(60_000);
    assert.equal((await beat.tick()).sent.length, 1);
    let list = await app.schedules.list();
    assert.deepEqual(
      list.map((s) => [s.name, s.lastRun, s.nextRun]),
      [
        ["a", T0 + 60_000, T0 + 120_000],
        ["b", undefined, Date.parse("2026-03-02T02:00:00Z")],
      ],
    );
    await app.schedules.add("a", { every: "2m" }, ping.s(1));
    assert.equal((await app.schedules.list())[0].lastRun, T0 + 60_000, "a replaced schedule keeps its last run");
    assert.equal(await app.schedules.remove("a"), true);
    assert.equal(await app.schedules.remove("a"), false);
    list = await app.schedules.list();
    assert.deepEqual(
      list.map((s) => s.name),
      ["b"],
    );
    await clock.advance(3 * 60_000);
    assert.deepEqual((await beat.tick()).sent, []);
  });

  it("sends no run before start nor after end, and expires a run not started in time", async (t) => {
    const { clock, app, ping, broker } = setup(t);
    app.schedule("window", { every: "1m" }, ping.s(1), {
      start: T0 + 3 * 60_000,
      end: T0 + 5 * 60_000,
      expires: "30s",
    });
    const beat = app.beat({ clock });
    const sent: number[] = [];
    await beat.tick();
    for (let i = 0; i < 8; i++) {
      await clock.advance(60_000);
      sent.push(...(await beat.tick()).sent.map((r) => (r.instant - T0) / 60_000));
    }
    assert.deepEqual(sent, [3, 4, 5]);
    const received: unknown[] = [];
    const consumer = await broker.consume(
      "celery",
      (delivery) => {
        received.push(delivery.envelope.headers.expires);
        consumer.ack(delivery.deliveryTag);
      },
      { prefetch: 10 },
    );
    await eventually(() => received.length === 3, 2_000, "three runs in the queue");
    await consumer.cancel();
    assert.deepEqual(
      received,
      [3, 4, 5].map((m) => T0 + m * 60_000 + 30_000),
    );
  });

  it("delays each run by its jitter, the same on every beat", async (t) => {
    const { clock, app, ping, broker } = setup(t);
    app.schedule("spread", { every: "1m" }, ping.s(1), { jitter: "20s" });
    const beat = app.beat({ clock });
    await beat.tick();
    await clock.advance(60_000);
    await beat.tick();
    const stats = await broker.stats("celery");
    assert.equal(stats.ready + stats.delayed, 1);
  });

  describe("bad input", () => {
    const cases: [string, (app: App, ping: ReturnType<typeof setup>["ping"]) => void, RegExp][] = [
      [
        "a cron expression with too few fields",
        (app, ping) => app.schedule("x", { cron: "0 3 * *" }, ping.s(1)),
        /schedule 'x': cron "0 3 \* \*": Invalid number of segments/,
      ],
      [
        "an unknown time zone",
        (app, ping) => app.schedule("x", { cron: "0 3 * * *", tz: "Mars/Olympus" }, ping.s(1)),
        /in Mars\/Olympus: Invalid time zone/,
      ],
      [
        "an interval that is no duration",
        (app, ping) => app.schedule("x", { every: "soon" }, ping.s(1)),
        /every must be a positive whole number of ms or a duration like "30s".*got "soon"/,
      ],
      ["a zero interval", (app, ping) => app.schedule("x", { every: 0 }, ping.s(1)), /every must be a positive/],
      [
        "neither every nor cron",
        (app, ping) => app.schedule("x", {} as never, ping.s(1)),
        /when must be \{ every: "30s" \} or \{ cron/,
      ],
      [
        "an unknown catch-up policy",
        (app, ping) => app.schedule("x", { every: "1s" }, ping.s(1), { catchUp: "some" as never }),
        /catchUp must be "skip", "once" or "all", got "some"/,
      ],
      [
        "a catch-up limit of zero",
        (app, ping) => app.schedule("x", { every: "1s" }, ping.s(1), { catchUp: "all", catchUpLimit: 0 }),
        /catchUpLimit must be a whole number from 1 to 10000, got 0/,
      ],
      [
        "an end before the start",
        (app, ping) => app.schedule("x", { every: "1s" }, ping.s(1), { start: T0, end: T0 - 1 }),
        /end \(.*\) is before start/,
      ],
      [
        "arguments that cannot be sent",
        (app, ping) => app.schedule("x", { every: "1s" }, ping.s(new Map() as never)),
        /'x': its arguments cannot be sent/,
      ],
      ["no signature", (app) => app.schedule("x", { every: "1s" }, "ping" as never), /must be a task signature/],
      ["an empty name", (app, ping) => app.schedule("", { every: "1s" }, ping.s(1)), /needs a name/],
    ];
    for (const [what, act, message] of cases) {
      it(`refuses ${what} with a ScheduleError naming it, storing nothing`, async (t) => {
        const { app, ping } = setup(t);
        assert.throws(
          () => act(app, ping),
          (error: unknown) => error instanceof ScheduleError && message.test(error.message),
        );
        await app.beat().start();
        assert.deepEqual(await app.schedules.list(), []);
      });
    }

    it("refuses a schedule declared twice in one app", (t) => {
      const { app, ping } = setup(t);
      app.schedule("x", { every: "1s" }, ping.s(1));
      assert.throws(
        () => app.schedule("x", { every: "2s" }, ping.s(1)),
        /schedule 'x': a schedule with this name is already declared/,
      );
    });

    it("refuses the same mistakes from schedules.add, rejecting", async (t) => {
      const { app, ping } = setup(t);
      await assert.rejects(app.schedules.add("x", { cron: "61 * * * *" }, ping.s(1)), ScheduleError);
      assert.deepEqual(await app.schedules.list(), []);
    });
  });
});
