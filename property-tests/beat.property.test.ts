/**
 * Property tests of the beat, on a virtual clock: random schedules (intervals
 * and cron expressions in time zones with daylight-saving changes, catch-up
 * policies, grace periods, start and end dates) and random sequences of clock
 * advances, graceful beat restarts, crashes of the leading beat in the
 * middle of a tick (after it recorded and sent some of its runs, before the
 * rest), after which a new beat takes over once the dead one's lease
 * expires, fires whose answer is lost, and a leader stalled just before it
 * fires, past its lease, while another beat takes over.
 *
 * What was published is compared with a naive model that walks the
 * schedule's instants one by one: at each tick a leader makes, the instants
 * due since the last run recorded are sent if on time, and the missed ones
 * as the catch-up policy says. Every run is sent at most once, and exactly
 * the runs the model says are sent.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { Cron } from "effect";
import { Codec } from "../broker/codec.ts";
import type { Envelope } from "../broker/envelope.ts";
import type { Transport } from "../broker/transport.ts";
import { Beat } from "../runtime/schedule/beat.ts";
import { ManualClock } from "../runtime/schedule/beat-clock.ts";
import { cronOf, defineSchedule, type CatchUp, type ScheduleEntry } from "../runtime/schedule/schedule-definition.ts";
import { MemoryScheduleStore, type ScheduleStore } from "../runtime/schedule/schedule-store.ts";
import { runId } from "../runtime/schedule/run-id.ts";
import { scaled } from "../tests/support/waits.ts";

const LEASE_MS = 30_000;
const ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"];
const CRONS = [
  "*/5 * * * *",
  "30 2 * * *",
  "0 3 * * 1-5",
  "15 1,2,3 * * *",
  "0 0 1 * *",
  "*/20 * * * * *",
  "0 30 2 * * 0",
];
/** Around the daylight-saving changes of 2026 in the zones above. */
const ORIGINS = [
  "2026-03-07T20:00:00Z",
  "2026-03-28T20:00:00Z",
  "2026-04-04T10:00:00Z",
  "2026-10-03T10:00:00Z",
  "2026-10-24T20:00:00Z",
  "2026-10-31T20:00:00Z",
].map(Date.parse);

type Op =
  | { readonly advance: number }
  | { readonly restart: true }
  | { readonly crashAfter: number }
  | { readonly lostAnswer: true }
  | { readonly pauseMidTick: true };

interface Scenario {
  readonly entry: ScheduleEntry;
  readonly origin: number;
  readonly graceMs: number;
  readonly ops: readonly Op[];
}

const scenario: fc.Arbitrary<Scenario> = fc
  .record({
    when: fc.oneof(
      fc.constantFrom(1_000, 7_000, 60_000, 15 * 60_000, 3_600_000).map((every) => ({ every })),
      fc.record({ cron: fc.constantFrom(...CRONS), tz: fc.constantFrom(...ZONES) }),
    ),
    catchUp: fc.constantFrom<CatchUp>("skip", "once", "all"),
    catchUpLimit: fc.integer({ min: 1, max: 4 }),
    origin: fc.constantFrom(...ORIGINS),
    startOffset: fc.option(fc.integer({ min: -3_600_000, max: 6 * 3_600_000 }), { nil: undefined }),
    length: fc.option(fc.integer({ min: 0, max: 3 * 86_400_000 }), { nil: undefined }),
    graceMs: fc.constantFrom(0, 1_000, 60_000),
    ops: fc.array(
      fc.oneof(
        {
          weight: 6,
          arbitrary: fc
            .oneof(fc.integer({ min: 1, max: 120_000 }), fc.integer({ min: 1, max: 8 * 3_600_000 }))
            .map((advance): Op => ({ advance })),
        },
        { weight: 1, arbitrary: fc.constant<Op>({ restart: true }) },
        { weight: 1, arbitrary: fc.integer({ min: 0, max: 3 }).map((crashAfter): Op => ({ crashAfter })) },
        { weight: 1, arbitrary: fc.constant<Op>({ lostAnswer: true }) },
        { weight: 1, arbitrary: fc.constant<Op>({ pauseMidTick: true }) },
      ),
      { minLength: 1, maxLength: 25 },
    ),
  })
  .map(({ when, catchUp, catchUpLimit, origin, startOffset, length, graceMs, ops }) => {
    const start = startOffset === undefined ? undefined : origin + startOffset;
    const end = start === undefined || length === undefined ? undefined : start + length;
    const entry = defineSchedule(
      "job",
      when,
      { task: "job", args: [], options: {} },
      {
        catchUp,
        catchUpLimit,
        ...(start !== undefined ? { start } : {}),
        ...(end !== undefined ? { end } : {}),
      },
    );
    return { entry, origin, graceMs, ops };
  });

/** The schedule's instants in (after, until], one by one, from its definition alone. */
const instantsBetween = (entry: ScheduleEntry, after: number, until: number): number[] => {
  const out: number[] = [];
  const lowest = entry.startAt ?? -Infinity;
  const highest = Math.min(until, entry.endAt ?? Infinity);
  if (entry.every !== undefined) {
    const base = entry.startAt ?? 0;
    for (let k = Math.floor((after - base) / entry.every) + 1; base + k * entry.every <= highest; k++) {
      const at = base + k * entry.every;
      if (at > after && at >= lowest) out.push(at);
    }
    return out;
  }
  const cron = cronOf(entry.cron as string, entry.tz);
  let at = Cron.next(cron, Math.max(after, lowest - 1)).getTime();
  while (at <= highest) {
    out.push(at);
    at = Cron.next(cron, at).getTime();
  }
  return out;
};

/** A store that dies (throws) on the fire after `fires` more, as a process killed mid-tick would. */
class Crash extends Error {}
/** The answer to a fire that was recorded lost on the way back (a connection cut after the request). */
class LostAnswer extends Error {}
interface Faults {
  /** Lose the answer to the next fire. */
  loseNext: boolean;
  /** Run this before the next fire goes out (the beat is paused past its lease while another takes over). */
  pause: (() => Promise<void>) | undefined;
}
const faultyStore = (inner: ScheduleStore, faults: Faults): ScheduleStore => ({
  put: (entry) => inner.put(entry),
  remove: (name) => inner.remove(name),
  list: () => inner.list(),
  changes: (epoch, since) => inner.changes(epoch, since),
  acquire: (holder, ttl) => inner.acquire(holder, ttl),
  release: (holder, token) => inner.release(holder, token),
  fire: async (holder, token, runs) => {
    const pause = faults.pause;
    faults.pause = undefined;
    await pause?.();
    return inner.fire(holder, token, runs).then((results) => {
      if (!faults.loseNext) return results;
      faults.loseNext = false;
      throw new LostAnswer("connection lost");
    });
  },
  close: () => inner.close(),
});
const crashing = (inner: ScheduleStore, fires: number): ScheduleStore => ({
  put: (entry) => inner.put(entry),
  remove: (name) => inner.remove(name),
  list: () => inner.list(),
  changes: (epoch, since) => inner.changes(epoch, since),
  acquire: (holder, ttl) => inner.acquire(holder, ttl),
  release: (holder, token) => inner.release(holder, token),
  fire: (holder, token, runs) => (fires-- <= 0 ? Promise.reject(new Crash("killed")) : inner.fire(holder, token, runs)),
  close: () => inner.close(),
});

const run = async ({ entry, origin, graceMs, ops }: Scenario): Promise<void> => {
  const clock = new ManualClock(origin);
  const published: string[] = [];
  const transport = {
    publish: (envelope: Envelope) => (published.push(envelope.id), Promise.resolve()),
  } as unknown as Transport;
  const store = new MemoryScheduleStore(transport, () => clock.now());
  const codec = new Codec();
  let incarnation = 0;
  const faults: Faults = { loseNext: false, pause: undefined };
  const faulty = faultyStore(store, faults);
  const beatOn = (on: ScheduleStore) =>
    new Beat(
      { store: on, codec, declared: () => [entry], log: () => {} },
      { id: `beat-${++incarnation}`, clock, leaseMs: LEASE_MS, graceMs, batchSize: 1 },
    );

  // The model: the runs expected, the last run recorded, and until when a dead leader's lease keeps others out.
  const expected: number[] = [];
  let last: number | undefined;
  let deadUntil = -Infinity;
  const modelTick = (now: number, crashAfter: number | undefined) => {
    const due = instantsBetween(entry, last ?? origin, now);
    if (due.length === 0) return;
    const missed = due.filter((at) => at < now - graceMs);
    const onTime = due.slice(missed.length);
    const keep = entry.catchUp === "skip" ? 0 : entry.catchUp === "once" ? 1 : entry.catchUpLimit;
    const send = [...missed.slice(missed.length - Math.min(keep, missed.length)), ...onTime];
    const records =
      send.length > 0 ? send.map((at) => ({ at, send: true })) : [{ at: due[due.length - 1], send: false }];
    for (const record of crashAfter === undefined ? records : records.slice(0, crashAfter)) {
      if (record.send) expected.push(record.at);
      last = record.at;
    }
  };

  let beat = beatOn(faulty);
  await beat.tick(); // puts the schedule (added now) and takes the lease
  for (const op of ops) {
    if ("advance" in op) {
      await clock.advance(op.advance);
      if (clock.now() >= deadUntil) modelTick(clock.now(), undefined);
      await beat.tick();
    } else if ("restart" in op) {
      await beat.stop();
      beat = beatOn(faulty);
    } else if ("lostAnswer" in op) {
      // The answer to the tick's first fire is lost; the beat goes on, and must neither repeat nor drop a run.
      await clock.advance(1_000);
      faults.loseNext = true;
      await beat.tick().catch((error: unknown) => (error instanceof LostAnswer ? undefined : Promise.reject(error)));
      if (clock.now() >= deadUntil) modelTick(clock.now(), faults.loseNext ? undefined : 1);
      faults.loseNext = false;
    } else if ("pauseMidTick" in op) {
      // The leader stalls (a long GC pause) just before it fires, past its lease; another beat takes over and sends meanwhile.
      await clock.advance(1_000);
      const now = clock.now();
      let other: Beat | undefined;
      let otherAt = 0;
      faults.pause = async () => {
        await clock.advance(LEASE_MS + 1_000);
        otherAt = clock.now();
        other = beatOn(faulty);
        await other.tick();
      };
      const report = await beat.tick();
      faults.pause = undefined;
      if (other === undefined) {
        if (now >= deadUntil) modelTick(now, undefined);
      } else {
        assert.equal(report.leader, false, "a beat that lost its lease mid-tick is fenced off");
        assert.deepEqual(report.sent, []);
        modelTick(otherAt, undefined);
        beat = other;
      }
    } else {
      // The leader is killed with SIGKILL after `crashAfter` of its tick's runs (or after the tick, if it had fewer).
      await clock.advance(1_000);
      const now = clock.now();
      await beat.stop();
      const dying = beatOn(crashing(store, op.crashAfter));
      await dying.tick().catch((error: unknown) => (error instanceof Crash ? undefined : Promise.reject(error)));
      if (now >= deadUntil) {
        modelTick(now, op.crashAfter);
        deadUntil = now + LEASE_MS;
      }
      beat = beatOn(faulty);
    }
  }

  const ids = new Map<string, number>();
  for (const at of instantsBetween(entry, origin, clock.now())) ids.set(runId("job", at), at);
  const sent = published.map((id) => {
    const at = ids.get(id);
    assert.ok(at !== undefined, `published a run (${id}) that is no instant of the schedule`);
    return at;
  });
  assert.equal(
    new Set(sent).size,
    sent.length,
    `a run was sent twice: ${sent.map((at) => new Date(at).toISOString()).join(", ")}`,
  );
  assert.deepEqual(
    sent.map((at) => new Date(at).toISOString()),
    expected.map((at) => new Date(at).toISOString()),
  );
};

describe("beat (property)", () => {
  it("sends exactly the schedule's instants, each once, as the catch-up policy says, across advances, restarts and crashes mid-tick", {
    timeout: scaled(180_000),
  }, async () => {
    await fc.assert(fc.asyncProperty(scenario, run), { numRuns: 150 });
  });
});
