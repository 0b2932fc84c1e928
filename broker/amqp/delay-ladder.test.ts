import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { DelayLadder, LEVELS, MAX_DELAY_MS, routeOf } from "./delay-ladder.ts";

const ladder = new DelayLadder("app");

/** The levels a message passes: the one it enters, then each lower level whose bit is 1. */
const levelsPassed = (delayMs: number): number[] => {
  const { exchange, headers } = ladder.entry(delayMs, "queue:q");
  const top = Number(exchange.slice("app.delay.".length));
  const passed = [top];
  for (let n = top - 1; n >= 0; n--) if (headers[`celerity-delay-${n}`] === "1") passed.push(n);
  return passed;
};

describe("delay ladder", () => {
  it("holds a message for exactly its delay: the levels it passes add up to it", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: MAX_DELAY_MS }), (delay) => {
        const total = levelsPassed(delay).reduce((sum, n) => sum + 2 ** n, 0);
        assert.equal(total, delay);
      }),
    );
  });

  it("enters at the level of the delay's highest bit and marks that bit 1", () => {
    const { exchange, headers } = ladder.entry(1000, "queue:q");
    assert.equal(exchange, "app.delay.9"); // 512 <= 1000 < 1024
    assert.equal(headers["celerity-delay-9"], "1");
    assert.deepEqual(levelsPassed(1000), [9, 8, 7, 6, 5, 3]);
  });

  it("reads bits above 2^31 correctly (delays of weeks)", () => {
    const threeWeeks = 21 * 24 * 3600 * 1000 + 7;
    assert.equal(
      levelsPassed(threeWeeks).reduce((sum, n) => sum + 2 ** n, 0),
      threeWeeks,
    );
  });

  it("carries the route it is handed on by", () => {
    assert.equal(ladder.entry(5, routeOf("", "celery")).headers["celerity-delay-route"], "queue:celery");
    assert.equal(ladder.entry(5, routeOf("orders", "eu.created")).headers["celerity-delay-route"], "exchange:orders");
  });

  it("refuses a delay it cannot hold, naming the longest it can", () => {
    assert.throws(() => ladder.entry(MAX_DELAY_MS + 1, "queue:q"), /eta.*between 1 ms and/);
    assert.throws(() => ladder.entry(0, "queue:q"), /eta/);
    assert.throws(() => ladder.entry(1.5, "queue:q"), /eta/);
  });

  it("names one queue per level under its prefix", () => {
    assert.equal(ladder.queues().length, LEVELS);
    assert.equal(ladder.queues()[0], "app.delay.0");
    assert.equal(ladder.out, "app.delay.out");
  });
});
