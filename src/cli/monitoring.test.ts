import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ClusterState } from "../../runtime/events/cluster-state.ts";
import type { CelerityEvent } from "../../runtime/events/event-types.ts";
import { scaled } from "../../tests/support/waits.ts";
import { runCelerity } from "../../tests/support/watched-process.ts";
import { renderView } from "./events.ts";

/** Run the CLI to its end, with no broker url from the shell. */
const celerity = (...args: string[]) => runCelerity(args, scaled(30_000), { withoutEnv: ["CELERITY_BROKER_URL"] });

describe("celerity events / inspect / control / queues: bad input", () => {
  it("exits 2 naming what is missing when no broker is given", async () => {
    const run = await celerity("inspect", "ping");
    assert.equal(run.code, 2, run.stderr);
    assert.match(
      run.stderr,
      /celerity inspect: no broker to talk to: pass --broker celerity:\/\/host:port or set CELERITY_BROKER_URL/,
    );
  });

  it("exits 2 naming the commands for an unknown one", async () => {
    const run = await celerity("inspect", "everything", "--broker", "celerity://127.0.0.1:1");
    assert.equal(run.code, 2);
    assert.match(
      run.stderr,
      /unknown command 'everything'; the commands are ping, active, reserved, scheduled, registered, stats, revoked, active-queues/,
    );
    const control = await celerity("control", "reboot", "--broker", "celerity://127.0.0.1:1");
    assert.equal(control.code, 2);
    assert.match(control.stderr, /unknown command 'reboot'/);
  });

  it("refuses to purge or discard without --force, and a command without its queue", async () => {
    const purge = await celerity("queues", "purge", "celery", "--broker", "celerity://127.0.0.1:1");
    assert.equal(purge.code, 2);
    assert.match(purge.stderr, /queues purge deletes messages for good: pass --force to confirm/);
    const missing = await celerity("queues", "pause", "--broker", "celerity://127.0.0.1:1");
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /queues pause: missing <queue>/);
    const seconds = await celerity("control", "time-limit", "add", "soon", "--broker", "celerity://127.0.0.1:1");
    assert.equal(seconds.code, 2);
    assert.match(seconds.stderr, /soft must be a positive number of seconds or "none", got 'soon'/);
  });

  it("checks options as every other command does: unknown ones, bad integers, an unreadable token file", async () => {
    const unknown = await celerity("events", "--colour", "--broker", "celerity://127.0.0.1:1");
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /celerity events: Unknown option '--colour' \(see celerity events --help\)/);
    const timeout = await celerity("inspect", "ping", "--timeout=-5", "--broker", "celerity://127.0.0.1:1");
    assert.equal(timeout.code, 2);
    assert.match(timeout.stderr, /--timeout must be an integer of at least 0, got '-5'/);
    const grow = await celerity("control", "pool-grow", "0", "--broker", "celerity://127.0.0.1:1");
    assert.equal(grow.code, 2);
    assert.match(grow.stderr, /--n must be an integer of at least 1, got '0'/);
    const token = await celerity(
      "queues",
      "list",
      "--broker",
      "celerity://127.0.0.1:1",
      "--token-file",
      "/nonexistent/token",
    );
    assert.equal(token.code, 2);
    assert.match(token.stderr, /--token-file: cannot read \/nonexistent\/token/);
  });

  it("prints each command's help", async () => {
    for (const command of ["events", "inspect", "control", "queues"]) {
      const run = await celerity(command, "--help");
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, new RegExp(`^celerity ${command}`));
    }
  });
});

describe("the live view of celerity events", () => {
  it("shows workers with their status and load, task rates and totals, and the latest failures", () => {
    let now = 1_700_000_000_000;
    const state = new ClusterState(() => now);
    const base = { utcoffset: 0, pid: 1, clock: 1 };
    const at = (ms: number) => ms / 1000;
    const events: CelerityEvent[] = [
      {
        type: "worker-online",
        hostname: "w1",
        timestamp: at(now),
        freq: 2,
        sw_ident: "celerity",
        sw_ver: "0.1.0",
        sw_sys: "linux",
        ...base,
      },
      {
        type: "worker-heartbeat",
        hostname: "w1",
        timestamp: at(now),
        freq: 2,
        sw_ident: "celerity",
        sw_ver: "0.1.0",
        sw_sys: "linux",
        active: 3,
        processed: 41,
        loadavg: [0.5, 0.25, 0.125],
        ...base,
      },
      {
        type: "worker-online",
        hostname: "w2",
        timestamp: at(now - 60_000),
        freq: 2,
        sw_ident: "celerity",
        sw_ver: "0.1.0",
        sw_sys: "linux",
        ...base,
      },
      {
        type: "task-succeeded",
        hostname: "w1",
        timestamp: at(now),
        uuid: "u1",
        name: "add",
        result: "4",
        runtime: 0.001,
        ...base,
      },
      {
        type: "task-failed",
        hostname: "w1",
        timestamp: at(now),
        uuid: "u2",
        name: "div",
        exception: 'RangeError("zero")',
        traceback: "",
        ...base,
      },
    ];
    for (const event of events) state.apply(event);
    now += 500;
    const view = renderView(state, "celerity://127.0.0.1:5690");
    assert.match(view, /w1 +online +3 +41 +0\.50 0\.25 0\.13/);
    assert.match(view, /w2 +lost/);
    assert.match(view, /succeeded +0\.1 +1/);
    assert.match(view, /div +u2 +on w1: RangeError\("zero"\)/);
  });
});
