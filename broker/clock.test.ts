import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { clockOf, nowOf, systemClock, type Clock, type ClockTimer } from "./clock.ts";
import { EmbeddedBroker } from "./embedded/embedded-broker.ts";

/** A clock written as a class, whose methods need their `this`. */
class SteppedClock implements Clock {
  time = 1_000;
  private readonly timers: { at: number; callback: () => void; timer: ClockTimer }[] = [];
  now(): number {
    return this.time;
  }
  setTimeout(callback: () => void, ms: number): ClockTimer {
    const timer = { ref: () => timer, unref: () => timer };
    this.timers.push({ at: this.time + ms, callback, timer });
    return timer;
  }
  clearTimeout(timer: ClockTimer): void {
    const index = this.timers.findIndex((entry) => entry.timer === timer);
    if (index >= 0) this.timers.splice(index, 1);
  }
  step(ms: number): void {
    this.time += ms;
    for (const entry of this.timers.filter((e) => e.at <= this.time)) {
      this.timers.splice(this.timers.indexOf(entry), 1);
      entry.callback();
    }
  }
}

describe("Clock", () => {
  it("reads the system clock's time through Date.now itself", () => {
    assert.equal(nowOf(systemClock), Date.now);
    assert.equal(clockOf({}), systemClock);
  });

  it("keeps a class clock's this when its now is kept apart from it", () => {
    const clock = new SteppedClock();
    const now = nowOf(clock);
    clock.time = 5_000;
    assert.equal(now(), 5_000);
    assert.equal(clockOf({ clock, now: () => 7 }).now(), 7);
  });

  it("holds a message with an eta on the broker's clock, not the system's", async (c) => {
    const clock = new SteppedClock();
    const broker = new EmbeddedBroker({ clock });
    c.after(() => broker.close());
    await broker.publish({
      id: "m1",
      exchange: "",
      routingKey: "q",
      priority: 0,
      eta: clock.now() + 60_000,
      headers: {},
      body: new Uint8Array(),
    });
    assert.deepEqual(await broker.stats("q"), { ready: 0, delayed: 1, unacked: 0, consumers: 0 });
    clock.step(59_999);
    assert.equal((await broker.stats("q")).delayed, 1);
    clock.step(1);
    assert.deepEqual(await broker.stats("q"), { ready: 1, delayed: 0, unacked: 0, consumers: 0 });
  });
});
