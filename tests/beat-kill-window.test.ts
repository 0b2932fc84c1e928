/**
 * A beat with its schedules in PostgreSQL killed in the one window two
 * systems leave: after the broker confirmed a run and before PostgreSQL
 * heard of it. The dying beat is a child process that SIGKILLs itself right
 * at the confirm (tests/fixtures/beat-dies-after-confirm.ts); the next
 * leader and a worker run here, on a virtual clock. Each instant must run
 * once, however many copies of it reach the queue.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { TaskContext } from "../runtime/task.ts";
import { postgresSkipReason, TEST_POSTGRES_URL } from "../runtime/results/postgres-test-support.ts";
import { runId } from "../runtime/schedule/run-id.ts";
import { postgresBeatApp } from "./support/postgres-beat.ts";
import { deferred, eventually, scaled } from "./support/waits.ts";
import { nodeProcess, START_TIMEOUT_MS } from "./support/watched-process.ts";

const DYING_BEAT = fileURLToPath(new URL("./fixtures/beat-dies-after-confirm.ts", import.meta.url));
const T0 = Date.parse("2026-03-02T00:00:00Z");
const LEASE_MS = 30_000;
const QUEUE = "beat-kill-window";

const postgresSkip = await postgresSkipReason();

describe("a beat with its schedules in PostgreSQL", { skip: postgresSkip }, () => {
  it("runs an instant once when its leader is killed after the broker confirmed the run and before PostgreSQL recorded it", {
    timeout: scaled(120_000),
  }, async (t) => {
    const { node, schema, clock, app, logs } = await postgresBeatApp(t, T0);
    // A run that takes a while: a second copy arrives while the first still runs, and a result recorded
    // once it finishes cannot be what keeps the second from running.
    const ran: string[] = [];
    const finish = deferred();
    const tick = app.task("kill-window.tick", async function (this: TaskContext) {
      ran.push(this.id);
      await finish.promise;
    });
    await app.schedules.add("every-minute", { every: "1m" }, tick.s().set({ queue: QUEUE }));
    const instant = T0 + 60_000;

    const dying = nodeProcess("dying beat", [
      "--import",
      "tsx",
      DYING_BEAT,
      node.url,
      TEST_POSTGRES_URL,
      schema,
      `${instant}`,
      `${LEASE_MS}`,
    ]);
    t.after(() => dying.kill());
    await dying.waitFor(/confirmed \S+; dying/, START_TIMEOUT_MS);
    const exit = await dying.exit(scaled(10_000));
    assert.equal(exit.signal, "SIGKILL", `the beat died at the confirm\n${dying.tail()}`);

    // The dying beat's lease runs out; the next beat leads, before the schedule's next instant.
    await clock.advance(instant + LEASE_MS + 1 - T0);
    const beat = app.beat({ id: "next", clock, leaseMs: LEASE_MS });
    const report = await beat.tick();
    assert.ok(report.leader, "the next beat leads once the lease ran out");
    await app.worker({ queues: [QUEUE], concurrency: 2 }).start();

    // Two copies reach the queue (the dying beat's, confirmed, and the next leader's): the worker takes both.
    const skipped = () => logs.filter((line) => line.includes("another copy of it was claimed first")).length;
    await eventually(() => ran.length + skipped() >= 2, {
      timeoutMs: scaled(20_000),
      what: "the worker to take both copies of the run",
      detail: () => `ran ${JSON.stringify(ran)}\n${logs.join("\n")}\n${dying.tail()}`,
    });
    finish.resolve();
    assert.deepEqual(ran, [runId("every-minute", instant)], `the instant ran once\n${logs.join("\n")}`);
    assert.deepEqual(
      report.resent.map((run) => run.id),
      [runId("every-minute", instant)],
      "the next leader sent the unconfirmed run again",
    );
    assert.equal(skipped(), 1, "the second copy was acked without running");
  });
});
