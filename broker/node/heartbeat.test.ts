import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Heartbeat, type HeartbeatClock } from "./heartbeat.ts";

const fakeClock = () => {
  let now = 0;
  const ticks: { ms: number; next: number; tick: () => void; stopped: boolean }[] = [];
  const clock: HeartbeatClock = {
    now: () => now,
    every: (ms, tick) => {
      const entry = { ms, next: now + ms, tick, stopped: false };
      ticks.push(entry);
      return { stop: () => (entry.stopped = true) };
    },
  };
  const advance = (ms: number) => {
    const until = now + ms;
    for (;;) {
      const due = ticks.filter((t) => !t.stopped && t.next <= until).sort((a, b) => a.next - b.next)[0];
      if (due === undefined) break;
      now = due.next;
      due.next += due.ms;
      due.tick();
    }
    now = until;
  };
  return { clock, advance };
};

describe("heartbeat", () => {
  it("pings every interval while the peer is heard from", () => {
    const { clock, advance } = fakeClock();
    let pings = 0;
    const heartbeat = new Heartbeat(
      100,
      { ping: () => pings++, silent: () => assert.fail("the peer was heard from") },
      clock,
    );
    heartbeat.start();
    for (let i = 0; i < 10; i++) {
      advance(100);
      heartbeat.heard();
    }
    assert.equal(pings, 10);
  });

  it("declares a peer silent once, after more than three intervals without bytes, and stops pinging", () => {
    const { clock, advance } = fakeClock();
    let pings = 0;
    const silences: number[] = [];
    const heartbeat = new Heartbeat(100, { ping: () => pings++, silent: (ms) => silences.push(ms) }, clock);
    heartbeat.start();
    advance(300);
    assert.deepEqual(silences, []);
    advance(100);
    assert.deepEqual(silences, [400]);
    advance(1_000);
    assert.deepEqual(silences, [400]);
    assert.equal(pings, 3);
  });

  it("sends nothing once stopped", () => {
    const { clock, advance } = fakeClock();
    let pings = 0;
    const heartbeat = new Heartbeat(100, { ping: () => pings++, silent: () => assert.fail("stopped") }, clock);
    heartbeat.start();
    advance(100);
    heartbeat.stop();
    advance(1_000);
    assert.equal(pings, 1);
  });
});
