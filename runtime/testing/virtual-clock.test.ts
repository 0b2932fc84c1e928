import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DurationError, toMilliseconds } from "./duration.ts";
import { VirtualClock } from "./virtual-clock.ts";

describe("VirtualClock", () => {
  it("stands still until advanced, then ends exactly the duration later", async () => {
    const clock = new VirtualClock(new Date("2030-01-01T00:00:00Z"));
    const start = clock.now();
    assert.equal(start, Date.parse("2030-01-01T00:00:00Z"));
    assert.equal(clock.now(), start);
    await clock.advance("1h30m");
    assert.equal(clock.now(), start + 90 * 60_000);
    await clock.advance(250);
    assert.equal(clock.now(), start + 90 * 60_000 + 250);
  });

  it("fires each timer at its own time, earliest first, ties in the order they were set", async () => {
    const clock = new VirtualClock(0);
    const fired: [string, number][] = [];
    const note = (label: string) => () => fired.push([label, clock.now()]);
    clock.setTimeout(note("c"), 300);
    clock.setTimeout(note("a"), 100);
    clock.setTimeout(note("b1"), 200);
    clock.setTimeout(note("b2"), 200);
    clock.setTimeout(note("late"), 1_000);
    await clock.advance(500);
    assert.deepEqual(fired, [
      ["a", 100],
      ["b1", 200],
      ["b2", 200],
      ["c", 300],
    ]);
    assert.equal(clock.pending, 1);
    assert.equal(clock.nextAt(), 1_000);
  });

  it("fires timers set by a timer within the same advance when they fall due inside it", async () => {
    const clock = new VirtualClock(0);
    const fired: number[] = [];
    const tick = () => {
      fired.push(clock.now());
      if (fired.length < 5) clock.setTimeout(tick, 60_000);
    };
    clock.setTimeout(tick, 60_000);
    await clock.advance("3m");
    assert.deepEqual(fired, [60_000, 120_000, 180_000]);
    await clock.advance("10m");
    assert.deepEqual(fired, [60_000, 120_000, 180_000, 240_000, 300_000]);
  });

  it("settles after each timer, before the next fires", async () => {
    const clock = new VirtualClock(0);
    const log: string[] = [];
    clock.setTimeout(() => log.push("first"), 10);
    clock.setTimeout(() => log.push("second"), 20);
    await clock.advance(30, async () => {
      log.push("settle");
    });
    assert.deepEqual(log, ["settle", "first", "settle", "second", "settle", "settle"]);
  });

  it("never fires a cleared timer, and takes a delay under 1 ms as 1 ms, as Node does", async () => {
    const clock = new VirtualClock(0);
    const fired: string[] = [];
    const cleared = clock.setTimeout(() => fired.push("cleared"), 10);
    clock.setTimeout(() => fired.push("zero"), 0);
    clock.clearTimeout(cleared);
    clock.clearTimeout(cleared);
    assert.equal(clock.runDue(), 0);
    await clock.advance(1);
    assert.deepEqual(fired, ["zero"]);
    assert.equal(clock.pending, 0);
  });

  it("refuses a second advance while one is in progress, and a start that is not a time", async () => {
    const clock = new VirtualClock(0);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const first = clock.advance(10, () => held);
    await assert.rejects(clock.advance(10), /already being advanced/);
    release();
    await first;
    assert.throws(() => new VirtualClock(Number.NaN), /finite epoch time, got NaN/);
  });
});

describe("durations", () => {
  it("reads milliseconds and strings of units", () => {
    assert.equal(toMilliseconds(1_500), 1_500);
    assert.equal(toMilliseconds("500ms"), 500);
    assert.equal(toMilliseconds("30s"), 30_000);
    assert.equal(toMilliseconds("10m"), 600_000);
    assert.equal(toMilliseconds("1h"), 3_600_000);
    assert.equal(toMilliseconds("2d"), 172_800_000);
    assert.equal(toMilliseconds("1h 30m"), 5_400_000);
    assert.equal(toMilliseconds("1.5s"), 1_500);
  });

  it("refuses anything else, naming the value and what it takes", () => {
    for (const bad of ["", "1 hour", "10", "h", "-1s", "1h x", -5, Number.NaN, Number.POSITIVE_INFINITY, null, {}]) {
      assert.throws(
        () => toMilliseconds(bad as never),
        (error: unknown) =>
          error instanceof DurationError &&
          /invalid duration .* give milliseconds .* units ms, s, m, h, d/.test(error.message),
        `accepted ${String(bad)}`,
      );
    }
  });
});
