/**
 * Periodic tasks across processes: a `celerity broker` node and two
 * `celerity beat` processes for one schedule; the leading beat is killed with
 * SIGKILL halfway and the other takes over. The test reads every message the
 * beats sent from the node's queue. Every wait is on an event (a log line, a
 * message, the node's queue counts), bounded by a timeout that fails with the
 * children's output; every process started is killed at the end, even when
 * the test fails.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { createApp, type App } from "../runtime/app.ts";
import { runId } from "../runtime/schedule/run-id.ts";
import { eventually, scaled } from "./support/waits.ts";
import { celerity, START_TIMEOUT_MS, tails, type WatchedProcess } from "./support/watched-process.ts";

const BEAT_APP = fileURLToPath(new URL("./fixtures/beat-app.ts", import.meta.url));
const LEASE_MS = 2_000;
const QUEUE = "beat-failover";

describe("beat processes for availability", () => {
  it("sends every instant of a schedule once when the leading beat is killed with SIGKILL halfway", {
    timeout: scaled(150_000),
  }, async () => {
    const children: WatchedProcess[] = [];
    const dataDir = mkdtempSync(join(tmpdir(), "celerity-beat-"));
    let app: App | undefined;
    const detail = () => tails(...children)();
    try {
      const broker = celerity("broker", ["broker", "--port", "0", "--data-dir", dataDir]);
      children.push(broker);
      const [, url] = await broker.waitFor(/listening on (celerity:\/\/[\d.]+:\d+)/, START_TIMEOUT_MS);
      const beatArgs = (id: string) => [
        "beat",
        "--app",
        BEAT_APP,
        "--broker",
        url,
        "--id",
        id,
        "--lease",
        `${LEASE_MS}`,
        "--log-runs",
      ];
      const first = celerity("beat-a", beatArgs("a"));
      children.push(first);
      await first.waitFor(/beat a: started \(leading\)/, START_TIMEOUT_MS);
      const second = celerity("beat-b", beatArgs("b"));
      children.push(second);
      await second.waitFor(/beat b: started \(standing by\)/, START_TIMEOUT_MS);

      app = createApp({ broker: url, log: () => {} });
      const received: string[] = [];
      const consumer = await app.broker.consume(
        QUEUE,
        (delivery) => {
          received.push(delivery.envelope.id);
          consumer.ack(delivery.deliveryTag);
        },
        { prefetch: 100 },
      );
      const start = Math.ceil((Date.now() + 1_500) / 1_000) * 1_000;
      const instants = Array.from({ length: 10 }, (_, i) => start + i * 1_000);
      await app.schedules.add(
        "every-second",
        { every: "1s" },
        { task: "beat.tick", args: [], options: { queue: QUEUE } },
        {
          catchUp: "all",
          start,
          end: instants[9],
        },
      );

      await eventually(() => received.length >= 5, {
        timeoutMs: scaled(15_000),
        what: "five runs before the kill",
        detail,
      });
      await first.kill("SIGKILL");
      await second.waitFor(/beat b: leads/, scaled(LEASE_MS * 5));
      await eventually(() => new Set(received).size >= 10, { timeoutMs: scaled(20_000), what: "the ten runs", detail });
      // Stopped, the second beat has sent all it ever will: once the node's queue is drained, `received` is complete.
      await second.kill("SIGTERM");
      await eventually(
        async () => {
          const stats = await app!.broker.stats(QUEUE);
          return stats.ready === 0 && stats.unacked === 0 && stats.delayed === 0;
        },
        { timeoutMs: scaled(5_000), what: "the queue to drain", detail },
      );
      await consumer.cancel();

      const expected = instants.map((instant) => runId("every-second", instant));
      assert.deepEqual(
        [...received].sort(),
        [...expected].sort(),
        `each instant sent once, none twice, none missing\n${detail()}`,
      );
      assert.ok(
        second.count(/beat b: sent 'every-second'/) >= 1,
        `the second beat sent the runs after the kill\n${detail()}`,
      );
      const last = (await app.schedules.list())[0];
      assert.equal(last.lastRun, instants[9]);
      assert.equal(last.nextRun, undefined, "the schedule has ended");
    } finally {
      await app?.close();
      for (const child of children.reverse()) await child.kill();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
