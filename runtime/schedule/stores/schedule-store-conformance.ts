/**
 * The tests every ScheduleStore passes (the embedded broker's, the node's,
 * Redis's, PostgreSQL's): the lease and its fencing token, runs recorded and
 * sent once, fenced beats refused, the change log beats read, and beats
 * electing one leader and handing over without sending any instant twice or
 * dropping one. Each store runs on a virtual clock, and the runs it sends
 * are read back from the broker it publishes to.
 *
 * @module
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, it, type TestContext } from "node:test";
import { Codec } from "../../../broker/codec.ts";
import type { Envelope } from "../../../broker/envelope.ts";
import type { Transport } from "../../../broker/transport.ts";
import { eventually } from "../../../tests/support/waits.ts";
import { Beat } from "../beat.ts";
import { ManualClock } from "../beat-clock.ts";
import { runId } from "../run-id.ts";
import type { ScheduleEntry } from "../schedule-definition.ts";
import { defineSchedule } from "../schedule-definition.ts";
import { LeaseLostError } from "../schedule-errors.ts";
import type { ScheduleStore } from "../schedule-store.ts";

/** A store on a fresh, empty table keeping time by `now`, and the broker it publishes runs to. */
export interface StoreUnderTest {
  readonly store: ScheduleStore;
  /** A second store on the same table, as another process would have. */
  readonly other: ScheduleStore;
  readonly broker: Transport;
  close(): Promise<void>;
}

const T0 = Date.parse("2026-03-02T00:00:00Z");

/**
 * Registers, with `node:test`, the tests a schedule store must pass.
 *
 * @example
 * scheduleStoreConformance("memory", async (now) => { ... });
 */
export function scheduleStoreConformance(name: string, make: (now: () => number) => Promise<StoreUnderTest>): void {
  const setup = async (t: TestContext) => {
    const clock = new ManualClock(T0);
    const subject = await make(() => clock.now());
    t.after(() => subject.close());
    const queue = `beat-${randomUUID().slice(0, 8)}`;
    await subject.broker.declareQueue(queue);
    return { clock, queue, ...subject };
  };

  describe(`${name} schedule store conformance`, () => {
    it("gives the lease to one holder at a time, with a larger fencing token at each change of holder", async (t) => {
      const { clock, store, other } = await setup(t);
      const first = await store.acquire("a", 1_000);
      assert.deepEqual(first.holder, "a");
      assert.equal((await other.acquire("b", 1_000)).holder, "a", "b waits while a's lease is in force");
      await clock.advance(500);
      const renewed = await store.acquire("a", 1_000);
      assert.deepEqual([renewed.token, renewed.expiresAt], [first.token, T0 + 1_500], "a renewal keeps the token");
      await clock.advance(1_500);
      const taken = await other.acquire("b", 1_000);
      assert.equal(taken.holder, "b");
      assert.ok(taken.token > first.token, "a new holder gets a larger token");
      await other.release("b", taken.token);
      const after = await store.acquire("a", 1_000);
      assert.equal(after.holder, "a", "a released lease is free at once");
      assert.ok(after.token > taken.token);
    });

    it("records a run and sends its message once: a second fire of the same instant is stale and sends nothing", async (t) => {
      const { store, other, broker, queue } = await setup(t);
      await store.put(entry("tick", queue));
      const lease = await store.acquire("a", 10_000);
      const run = {
        schedule: "tick",
        instant: T0 + 1_000,
        send: true,
        envelope: envelopeOf("tick", T0 + 1_000, queue),
      };
      assert.deepEqual(await store.fire("a", lease.token, [run]), [{ outcome: "sent" }]);
      assert.deepEqual(await store.fire("a", lease.token, [run]), [{ outcome: "stale" }]);
      assert.deepEqual(
        await store.fire("a", lease.token, [{ ...run, schedule: "gone" }]),
        [{ outcome: "removed" }],
        "a run of a schedule no one keeps",
      );
      assert.equal((await broker.stats(queue)).ready, 1);
      assert.equal((await other.list())[0].lastRun, T0 + 1_000, "another process sees the run");
    });

    it("refuses a fire under a lease that expired or was taken over (fencing), recording and sending nothing", async (t) => {
      const { clock, store, other, broker, queue } = await setup(t);
      await store.put(entry("tick", queue));
      const old = await store.acquire("old", 1_000);
      await clock.advance(2_000);
      const run = {
        schedule: "tick",
        instant: T0 + 1_000,
        send: true,
        envelope: envelopeOf("tick", T0 + 1_000, queue),
      };
      await assert.rejects(store.fire("old", old.token, [run]), LeaseLostError, "an expired lease");
      const taken = await other.acquire("new", 1_000);
      await assert.rejects(store.fire("old", old.token, [run]), (error: unknown) => {
        assert.ok(error instanceof LeaseLostError);
        assert.equal(error.current, taken.token);
        return true;
      });
      assert.equal((await store.list())[0].lastRun, undefined);
      assert.equal((await broker.stats(queue)).ready, 0);
    });

    it("says why the broker refused a run's message, still recording the run so it is not sent again", async (t) => {
      const { store, broker } = await setup(t);
      const exchange = `nowhere-${randomUUID().slice(0, 8)}`;
      await broker.declareExchange(exchange, "fanout");
      await store.put(entry("lost", "unused"));
      const lease = await store.acquire("a", 10_000);
      const envelope = { ...envelopeOf("lost", T0, "unused"), exchange, routingKey: "x" };
      const [result] = await store.fire("a", lease.token, [{ schedule: "lost", instant: T0, send: true, envelope }]);
      assert.equal(result.outcome, "sent");
      assert.match(result.error ?? "", /routes routing key "x" to no queue/);
      assert.equal((await store.list())[0].lastRun, T0);
    });

    it("keeps when a schedule was added and its last run when it is replaced, and removes it", async (t) => {
      const { clock, store, other, queue } = await setup(t);
      const first = await store.put(entry("job", queue));
      assert.deepEqual([first.addedAt, first.lastRun], [T0, undefined]);
      const lease = await store.acquire("a", 60_000);
      await store.fire("a", lease.token, [{ schedule: "job", instant: T0 + 10, send: false, envelope: undefined }]);
      await clock.advance(5_000);
      const replaced = await other.put({ ...entry("job", queue), every: 2_000 });
      assert.deepEqual([replaced.addedAt, replaced.lastRun, replaced.entry.every], [T0, T0 + 10, 2_000]);
      assert.ok(replaced.revision > first.revision);
      assert.equal(await store.remove("job"), true);
      assert.equal(await store.remove("job"), false);
      assert.deepEqual(await other.list(), []);
    });

    it("tells a reader what changed since its cursor, removals included, and everything for another epoch", async (t) => {
      const { store, other, queue } = await setup(t);
      await store.put(entry("a", queue));
      await store.put(entry("b", queue));
      const start = await other.changes(undefined, 0);
      assert.equal(start.full, true);
      assert.deepEqual(start.schedules.map((s) => s.entry.name).sort(), ["a", "b"]);
      await store.put(entry("c", queue));
      await store.remove("a");
      const next = await other.changes(start.epoch, start.version);
      assert.equal(next.full, false);
      assert.deepEqual(
        next.schedules.map((s) => s.entry.name),
        ["c"],
      );
      assert.deepEqual(next.removed, ["a"]);
      assert.ok(next.version > start.version);
      const unchanged = await other.changes(next.epoch, next.version);
      assert.deepEqual([unchanged.full, unchanged.schedules, unchanged.removed], [false, [], []]);
      const stranger = await other.changes("another-table", next.version);
      assert.equal(stranger.full, true);
      assert.deepEqual(stranger.schedules.map((s) => s.entry.name).sort(), ["b", "c"]);
    });

    it("lets beats on two processes elect one leader and hand over when it goes silent, sending each instant once", async (t) => {
      const { clock, store, other, broker, queue } = await setup(t);
      await store.put({ ...entry("tick", queue), every: 1_000, catchUp: "all" });
      const beat = (id: string, on: ScheduleStore) =>
        new Beat(
          { store: on, codec: new Codec(), declared: () => [], log: () => {} },
          { clock, id, leaseMs: 3_000, graceMs: 0 },
        );
      const first = beat("first", store);
      const second = beat("second", other);
      const sent: number[] = [];
      const note = (report: { readonly sent: readonly { readonly instant: number }[] }) =>
        sent.push(...report.sent.map((r) => r.instant));
      note(await first.tick());
      assert.equal((await second.tick()).leader, false);
      await clock.advance(1_000);
      note(await first.tick()); // sends T0+1s, then goes silent
      await clock.advance(2_000);
      note(await second.tick());
      assert.equal(second.leading, false, "the first beat's lease is still in force");
      await clock.advance(1_500);
      note(await second.tick());
      assert.equal(second.leading, true);
      note(await first.tick()); // back, but fenced off
      await clock.advance(1_000);
      note(await second.tick());
      assert.deepEqual(
        sent,
        [1, 2, 3, 4, 5].map((s) => T0 + s * 1_000),
      );
      const ids: string[] = [];
      const consumer = await broker.consume(
        queue,
        (delivery) => {
          ids.push(delivery.envelope.id);
          consumer.ack(delivery.deliveryTag);
        },
        { prefetch: 10 },
      );
      await eventually(() => ids.length >= 5, { what: "the five runs from the broker" });
      await consumer.cancel();
      assert.equal((await broker.stats(queue)).ready, 0, "no run was sent twice");
      assert.deepEqual(
        ids.sort(),
        sent.map((instant) => runId("tick", instant)).sort(),
        "the broker received each run once",
      );
    });
  });
}

const entry = (name: string, queue: string): ScheduleEntry =>
  defineSchedule(name, { every: "1s" }, { task: "ping", args: [], options: { queue } });

const envelopeOf = (schedule: string, instant: number, queue: string): Envelope => ({
  id: runId(schedule, instant),
  exchange: "",
  routingKey: queue,
  priority: 0,
  headers: {},
  body: new Uint8Array([0x90]),
});
