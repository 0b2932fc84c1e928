import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { tempDir } from "../../../broker/node/node-test-support.ts";
import { defineSchedule } from "../schedule-definition.ts";
import { ScheduleLog } from "./schedule-log.ts";

const entry = (name: string) =>
  defineSchedule(
    name,
    { cron: "0 3 * * 1-5", tz: "Europe/Berlin" },
    { task: "report", args: ["daily", { at: 3 }], options: { queue: "reports" } },
  );

describe("schedule log", () => {
  it("keeps schedules, last runs and the lease's fencing token across a restart of the node", async (t) => {
    const dir = tempDir();
    t.after(() => dir.remove());
    let keeper = await ScheduleLog.open(dir.path, { log: () => {} });
    keeper.table.put(entry("a"), 1_000);
    keeper.table.put(entry("b"), 2_000);
    const lease = keeper.table.acquire("beat-1", 10_000, 3_000);
    keeper.table.fire("beat-1", lease.token, [{ schedule: "a", instant: 5_000, send: false }], 4_000, () => {});
    keeper.table.remove("b");
    await keeper.durable();
    await keeper.close();

    keeper = await ScheduleLog.open(dir.path, { log: () => {} });
    t.after(() => keeper.close());
    assert.deepEqual(
      keeper.table.list().map((s) => [s.entry, s.addedAt, s.lastRun]),
      [[entry("a"), 1_000, 5_000]],
    );
    assert.equal(keeper.table.currentLease(4_000)?.token, lease.token, "the lease survives until it expires");
    const next = keeper.table.acquire("beat-2", 10_000, 20_000);
    assert.ok(next.token > lease.token, "a token handed out after the restart is larger than any before it");
  });

  it("stays bounded: compacted to the table's contents when reopened", async (t) => {
    const dir = tempDir();
    t.after(() => dir.remove());
    let keeper = await ScheduleLog.open(dir.path, { log: () => {} });
    keeper.table.put(entry("a"), 0);
    const lease = keeper.table.acquire("beat", 1e12, 0);
    for (let i = 1; i <= 2_000; i++)
      keeper.table.fire("beat", lease.token, [{ schedule: "a", instant: i, send: false }], 0, () => {});
    await keeper.durable();
    await keeper.close();
    const lines: string[] = [];
    keeper = await ScheduleLog.open(dir.path, { log: (line) => lines.push(line) });
    assert.equal(keeper.table.get("a")?.lastRun, 2_000);
    assert.match(lines.join("\n"), /recovered 1 schedules from 2003 records/);
    await keeper.close();
    keeper = await ScheduleLog.open(dir.path, { log: (line) => lines.push(line) });
    await keeper.close();
    assert.match(lines.at(-1) ?? "", /recovered 1 schedules from 2 records/);
  });
});
