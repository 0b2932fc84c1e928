import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { defineSchedule, type ScheduleOptions, type When } from "./schedule-definition.ts";
import { dueRuns, nextInstant } from "./schedule-instants.ts";

const entry = (when: When, options: ScheduleOptions = {}) =>
  defineSchedule("job", when, { task: "job", args: [], options: {} }, options);
const T0 = Date.parse("2026-01-01T00:00:00Z");

describe("schedule instants", () => {
  it("counts an interval from the epoch, so every beat finds the same instants", () => {
    assert.equal(nextInstant(entry({ every: "30s" }), T0 + 1), T0 + 30_000);
    assert.equal(nextInstant(entry({ every: "30s" }), T0 + 30_000), T0 + 60_000);
  });

  it("reads an interval written in several units as their sum, as the testing clock does", () => {
    assert.equal(nextInstant(entry({ every: "1h30m" }), T0 + 1), T0 + 5_400_000);
    assert.throws(() => entry({ every: "1h thirty" }), /every must be a positive whole number of ms/);
  });

  it("counts an interval from its start when it has one, and ends at its end", () => {
    const job = entry({ every: "1m" }, { start: T0 + 7, end: T0 + 7 + 120_000 });
    assert.equal(nextInstant(job, 0), T0 + 7);
    assert.equal(nextInstant(job, T0 + 7), T0 + 7 + 60_000);
    assert.equal(nextInstant(job, T0 + 7 + 120_000), undefined);
  });

  it("finds a year of missed interval runs without walking them", () => {
    const due = dueRuns(entry({ every: "1s" }, { catchUp: "all", catchUpLimit: 2 }), T0, T0 + 365 * 86_400_000, 0);
    assert.equal(due.skipped, 365 * 86_400 - 3, "of a year of missed runs, the newest two are sent");
    assert.deepEqual(due.send, [T0 + 365 * 86_400_000 - 2_000, T0 + 365 * 86_400_000 - 1_000, T0 + 365 * 86_400_000]);
    assert.equal(due.last, T0 + 365 * 86_400_000);
    assert.equal(due.estimated, false);
  });

  it("never counts a missed interval run past the schedule's end (found by the property test)", () => {
    const job = entry({ every: "1s" }, { catchUp: "once", start: T0 + 1, end: T0 + 1 });
    const due = dueRuns(job, T0, T0 + 1_002, 0);
    assert.deepEqual(due.send, [T0 + 1]);
    assert.equal(due.last, T0 + 1);
    assert.equal(due.skipped, 0);
  });

  it("sends the newest missed cron runs exactly after a long outage, estimating only how many it passed over", () => {
    const now = T0 + 86_400_000 + 500;
    const due = dueRuns(entry({ cron: "* * * * * *" }, { catchUp: "all", catchUpLimit: 3 }), T0, now, 0);
    assert.deepEqual(due.send, [now - 2_500, now - 1_500, now - 500]);
    assert.equal(due.last, now - 500);
    assert.equal(due.estimated, true);
    assert.ok(Math.abs(due.skipped - (86_400 - 3)) <= 10, `about a day of runs passed over, got ${due.skipped}`);
  });

  it("sends runs still within the grace period whatever the policy", () => {
    const due = dueRuns(entry({ every: "10s" }, { catchUp: "skip" }), T0, T0 + 60_000, 25_000);
    assert.deepEqual(due.send, [T0 + 40_000, T0 + 50_000, T0 + 60_000]);
    assert.equal(due.skipped, 3);
    assert.equal(due.skippedFrom, T0 + 10_000);
  });
});
