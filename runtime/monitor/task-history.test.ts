import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { TaskEvent } from "../events/event-types.ts";
import { MonitorState } from "./monitor-state.ts";
import { TaskHistory } from "./task-history.ts";

const base = { hostname: "w1", utcoffset: 0, pid: 1, clock: 1 };
const sent = (uuid: string, name = "add", timestamp = 1): TaskEvent => ({
  ...base,
  type: "task-sent",
  uuid,
  name,
  timestamp,
  args: "[1,2]",
  kwargs: "{}",
  retries: 0,
  eta: null,
  expires: null,
  queue: "celery",
  exchange: "",
  routing_key: "celery",
  root_id: uuid,
  parent_id: null,
});
const started = (uuid: string, timestamp = 2): TaskEvent => ({
  ...base,
  type: "task-started",
  uuid,
  name: "add",
  timestamp,
});
const succeeded = (uuid: string, timestamp = 3): TaskEvent => ({
  ...base,
  type: "task-succeeded",
  uuid,
  name: "add",
  timestamp,
  result: "3",
  runtime: 0.25,
});
const failed = (uuid: string): TaskEvent => ({
  ...base,
  type: "task-failed",
  uuid,
  name: "add",
  timestamp: 3,
  exception: 'Error("x")',
  traceback: "Error: x\n    at f",
});

describe("the monitor's task history", () => {
  it("keeps at most maxTasks, forgetting the least recently changed first, with counts that follow", () => {
    const history = new TaskHistory(3);
    for (const id of ["a", "b", "c"]) history.apply(sent(id));
    history.apply(started("a"));
    history.apply(sent("d"));
    assert.equal(history.size, 3);
    assert.equal(history.get("b"), undefined, "b was the least recently changed");
    assert.deepEqual(
      history.list().map((task) => task.id),
      ["d", "a", "c"],
    );
    assert.equal(history.counts().PENDING, 2);
    assert.equal(history.counts().STARTED, 1);
  });

  it("keeps a final state when a late event arrives, and the timeline in arrival order", () => {
    const history = new TaskHistory();
    history.apply(started("a"));
    history.apply(succeeded("a"));
    history.apply(sent("a"));
    const task = history.get("a");
    assert.equal(task?.state, "SUCCESS");
    assert.equal(task?.args, "[1,2]");
    assert.equal(task?.result, "3");
    assert.deepEqual(
      task?.timeline.map((entry) => entry.type),
      ["task-started", "task-succeeded", "task-sent"],
    );
    assert.deepEqual(history.counts().SUCCESS, 1);
    assert.deepEqual(history.counts().PENDING, 0);
  });

  it("filters by state and name and searches ids by prefix", () => {
    const history = new TaskHistory();
    history.apply(sent("abc1", "send_email"));
    history.apply(sent("abd2", "charge"));
    history.apply(failed("abd2"));
    assert.deepEqual(
      history.list({ state: "FAILURE" }).map((task) => task.id),
      ["abd2"],
    );
    assert.deepEqual(
      history.list({ name: "EMAIL" }).map((task) => task.id),
      ["abc1"],
    );
    assert.deepEqual(
      history.list({ idPrefix: "ab", limit: 1 }).map((task) => task.id),
      ["abd2"],
    );
  });

  it("refuses a bound that is not a positive integer", () => {
    assert.throws(() => new TaskHistory(0), /maxTasks must be a positive integer, got 0/);
  });
});

describe("the monitor's state", () => {
  it("counts throughput and latency per second and tells listeners once per flush", () => {
    let now = 1_700_000_000_000;
    const state = new MonitorState({ now: () => now, seriesSeconds: 10 });
    let told = 0;
    state.onChange(() => told++);
    state.apply(sent("a"));
    state.apply(succeeded("a"));
    state.apply(failed("b"));
    state.flush();
    state.flush();
    assert.equal(told, 1);
    now += 1_000;
    const points = state.series.points();
    assert.equal(points.length, 10);
    assert.deepEqual(points.at(-2), {
      second: 1_700_000_000,
      succeeded: 1,
      failed: 1,
      meanRuntimeMs: 250,
      maxRuntimeMs: 250,
    });
    assert.deepEqual(points.at(-1), {
      second: 1_700_000_001,
      succeeded: 0,
      failed: 0,
      meanRuntimeMs: null,
      maxRuntimeMs: null,
    });
    assert.equal(state.taskEventCount, 3);
  });
});
