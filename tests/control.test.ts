/**
 * Watching and steering a cluster of processes: a `celerity broker` node and
 * two `celerity worker --events` processes, driven by the `celerity inspect`,
 * `control`, `queues` and `events` commands and by an app in this process.
 * Every wait is on an event (a line printed, a result, an exit) bounded by a
 * timeout that fails with the children's output; every child is killed at
 * the end, even when the test fails.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { createApp, type App } from "../runtime/app.ts";
import { eventually } from "../runtime/test-support.ts";
import { scaled } from "./support/waits.ts";
import { celerity, runCelerity, START_TIMEOUT_MS, type WatchedProcess } from "./support/watched-process.ts";

const APP = fileURLToPath(new URL("./fixtures/control-app.ts", import.meta.url));
const RUN_MS = scaled(20_000);

describe("watching and steering worker processes", () => {
  it("inspects, pauses, watches and shuts down two worker processes through the CLI", {
    timeout: 180_000,
  }, async () => {
    const children: WatchedProcess[] = [];
    let app: App | undefined;
    try {
      const broker = celerity("broker", ["broker", "--port", "0"]);
      children.push(broker);
      const [, url] = await broker.waitFor(/listening on (celerity:\/\/[\d.]+:\d+)/, START_TIMEOUT_MS);
      const workers = ["w1", "w2"].map((name) =>
        celerity(name, ["worker", "--app", APP, "--broker", url, "--concurrency", "2", "--name", name, "--events"]),
      );
      children.push(...workers);
      await Promise.all(workers.map((worker) => worker.waitFor(/consuming with concurrency/, START_TIMEOUT_MS)));
      const cli = (...args: string[]) => runCelerity([...args, "--broker", url], RUN_MS);

      // inspect: both answer; a destination that matches no worker is an empty answer after the timeout, exit 69.
      const ping = await cli("inspect", "ping", "--json");
      assert.equal(ping.code, 0, ping.output);
      assert.deepEqual(JSON.parse(ping.stdout), { w1: "pong", w2: "pong" });
      const nobody = await cli("inspect", "ping", "-d", "nobody", "--timeout", "300");
      assert.equal(nobody.code, 69, nobody.output);
      assert.match(nobody.output, /no worker replied within 300 ms/);
      const registered = await cli("inspect", "registered", "-d", "w2");
      assert.equal(registered.code, 0, registered.output);
      assert.match(registered.stdout, /-> w2: OK\n {4}\* "ctl\.add"\n {4}\* "ctl\.sleep"/);

      // events: a subscriber process sees a task's events from the worker that ran it.
      const watcher = celerity("events", [
        "events",
        "--broker",
        url,
        "--json",
        "--types",
        "task-received,task-succeeded",
        "--limit",
        "2",
      ]);
      children.push(watcher);
      await watcher.waitFor(/subscribed to/, START_TIMEOUT_MS);
      app = createApp({ broker: url, log: () => {} });
      const sum = await app.sendTask<number>("ctl.add", [2, 3]);
      assert.equal(await sum.get({ timeout: RUN_MS }), 5);
      assert.equal((await watcher.exit(RUN_MS)).code, 0);
      const seen = watcher
        .text("stdout")
        .split("\n")
        .map((line) => JSON.parse(line) as { type: string; uuid: string; hostname: string; result?: string });
      assert.deepEqual(
        seen.map((e) => [e.type, e.uuid]),
        [
          ["task-received", sum.id],
          ["task-succeeded", sum.id],
        ],
      );
      assert.ok(["w1", "w2"].includes(seen[0].hostname));
      assert.equal(seen[1].result, "5");

      // inspect active from this process while a task runs on one of the workers.
      const sleeping = await app.sendTask<number>("ctl.sleep", [1_500]);
      await eventually(
        async () => Object.values(await app!.inspect.active()).some((tasks) => tasks.some((t) => t.id === sleeping.id)),
        RUN_MS,
        "the task to show as active",
      );
      await sleeping.get({ timeout: RUN_MS });

      // pause: no worker takes the queue's messages until it is resumed.
      assert.equal((await cli("queues", "pause", "celery")).code, 0);
      const held = await Promise.all([1, 2, 3].map((n) => app!.sendTask<number>("ctl.add", [n, n])));
      const listed = await cli("queues", "list", "--json");
      const celery = (
        JSON.parse(listed.stdout) as { name: string; ready: number; paused: boolean; consumers: number }[]
      ).find((q) => q.name === "celery");
      assert.deepEqual([celery?.ready, celery?.paused, celery?.consumers], [3, true, 2]);
      assert.equal((await cli("queues", "resume", "celery")).code, 0);
      assert.deepEqual(await Promise.all(held.map((r) => r.get({ timeout: RUN_MS }))), [2, 4, 6]);

      // shutdown by control: graceful, and the process exits 0.
      const shutdown = await cli("control", "shutdown", "-d", "w2", "--timeout", "5000");
      assert.equal(shutdown.code, 0, shutdown.output);
      assert.match(shutdown.stdout, /-> w2: OK\n {4}shutting down/);
      assert.equal((await workers[1].exit(RUN_MS)).code, 0);
      await workers[1].waitFor(/shut down by remote control/, RUN_MS);
      assert.deepEqual(await app.inspect.ping(), { w1: "pong" });
    } finally {
      await app?.close();
      for (const child of children.reverse()) await child.kill();
    }
  });
});
