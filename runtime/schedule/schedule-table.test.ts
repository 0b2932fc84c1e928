import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { defineSchedule } from "./schedule-definition.ts";
import { LeaseLostError } from "./schedule-errors.ts";
import { ScheduleTable } from "./schedule-table.ts";

const entry = (name: string) => defineSchedule(name, { every: "1s" }, { task: "job", args: [], options: {} });

describe("schedule table", () => {
  it("gives the lease to one holder at a time, with a larger fencing token at each change of holder", () => {
    const table = new ScheduleTable();
    const a = table.acquire("a", 1_000, 0);
    assert.equal(table.acquire("b", 1_000, 500).holder, "a");
    assert.equal(table.acquire("a", 1_000, 900).token, a.token, "renewing keeps the token");
    const b = table.acquire("b", 1_000, 1_900);
    assert.equal(b.holder, "b");
    assert.ok(b.token > a.token);
  });

  it("records a run once: a second fire of the same instant is stale and is not published", () => {
    const table = new ScheduleTable();
    table.put(entry("job"), 0);
    const { token } = table.acquire("a", 10_000, 0);
    const published: number[] = [];
    const run = { schedule: "job", instant: 1_000, send: true };
    assert.deepEqual(
      table.fire("a", token, [run], 1_000, (r) => published.push(r.instant)),
      ["sent"],
    );
    assert.deepEqual(
      table.fire("a", token, [run], 1_000, (r) => published.push(r.instant)),
      ["stale"],
    );
    assert.deepEqual(
      table.fire("a", token, [{ schedule: "gone", instant: 1, send: true }], 1_000, () => {}),
      ["removed"],
    );
    assert.deepEqual(published, [1_000]);
  });

  it("refuses a fire under an expired lease, recording nothing", () => {
    const table = new ScheduleTable();
    table.put(entry("job"), 0);
    const { token } = table.acquire("a", 1_000, 0);
    assert.throws(
      () => table.fire("a", token, [{ schedule: "job", instant: 1_000, send: true }], 1_000, () => {}),
      LeaseLostError,
    );
    assert.equal(table.get("job")?.lastRun, undefined);
  });

  it("tells a reader what changed since its cursor, removals included, and everything when the cursor is from another table", () => {
    const table = new ScheduleTable();
    table.put(entry("a"), 0);
    table.put(entry("b"), 0);
    const first = table.changesSince(undefined, 0);
    assert.equal(first.full, true);
    assert.deepEqual(
      first.schedules.map((s) => s.entry.name),
      ["a", "b"],
    );
    const { token } = table.acquire("beat", 10_000, 0);
    table.fire("beat", token, [{ schedule: "a", instant: 1_000, send: false }], 1_000, () => {});
    table.remove("b");
    const next = table.changesSince(first.epoch, first.version);
    assert.equal(next.full, false);
    assert.deepEqual(
      next.schedules.map((s) => [s.entry.name, s.lastRun]),
      [["a", 1_000]],
    );
    assert.deepEqual(next.removed, ["b"]);
    assert.deepEqual(table.changesSince(next.epoch, next.version).schedules, []);
    assert.equal(new ScheduleTable().changesSince(next.epoch, next.version).full, true);
  });
});
