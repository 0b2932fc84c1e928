import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ReplayGuard } from "./replay-guard.ts";

const HOUR = 60 * 60 * 1000;

describe("replay guard", () => {
  it("refuses a copy of a message it holds or settled, for the whole window however many messages pass", () => {
    let now = 1_000_000;
    const guard = new ReplayGuard(1_000_000, () => now);
    assert.equal(guard.admit("m0", now + HOUR, false).kind, "run");
    assert.equal(guard.admit("m0", now + HOUR, false).kind, "replay");
    guard.release("m0", true, now + HOUR);
    // 100,000 messages later (far more than 35/s over the window), the first is still known.
    for (let i = 1; i <= 100_000; i++) {
      guard.admit(`m${i}`, now + HOUR, false);
      guard.release(`m${i}`, true, now + HOUR);
    }
    assert.equal(guard.admit("m0", now + HOUR, false).kind, "replay");
    assert.equal(guard.admit("m0", now + HOUR, true).kind, "ran");
    now += HOUR + 20_000; // past the window: the verifier refuses these on their time, so they are forgotten
    guard.admit("fresh", now + HOUR, false);
    assert.equal(guard.remembered, 0);
  });

  it("when full, refuses messages as old as those it forgot rather than let a replay through", () => {
    const now = 1_000_000;
    const guard = new ReplayGuard(4, () => now);
    for (let i = 0; i < 6; i++) {
      guard.admit(`m${i}`, now + i * 20_000, false);
      guard.release(`m${i}`, true, now + i * 20_000);
    }
    assert.ok(guard.remembered <= 4);
    const replayed = guard.admit("m0", now, false);
    assert.equal(replayed.kind, "replay");
    assert.match((replayed as { reason: string }).reason, /older than this worker process can tell from a replay/);
    assert.equal(guard.admit("new", now + HOUR, false).kind, "run");
  });

  it("a redelivery of a message it holds waits: dropped if that one settles, run in its place if it goes back", async () => {
    const guard = new ReplayGuard(100);
    assert.equal(guard.admit("m", Date.now() + HOUR, false).kind, "run");
    const waiting = guard.admit("m", Date.now() + HOUR, true);
    assert.equal(waiting.kind, "wait");
    guard.release("m", true, Date.now() + HOUR);
    assert.equal(await (waiting as { settled: Promise<boolean> }).settled, true);

    assert.equal(guard.admit("n", Date.now() + HOUR, false).kind, "run");
    const again = guard.admit("n", Date.now() + HOUR, true);
    guard.release("n", false, Date.now() + HOUR);
    assert.equal(await (again as { settled: Promise<boolean> }).settled, false);
    // It holds n now: another copy is a replay.
    assert.equal(guard.admit("n", Date.now() + HOUR, false).kind, "replay");
  });
});
