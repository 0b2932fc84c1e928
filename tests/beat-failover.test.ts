/**
 * Periodic tasks across processes: two `celerity beat` processes for one
 * schedule, with the schedules and the lease kept by a `celerity broker`
 * node, by Redis, or by PostgreSQL (the runs sent over RabbitMQ); the
 * leading beat is killed with SIGKILL halfway and the other takes over. The
 * test reads every message the beats sent from the broker's queue. Every wait is on an event (a log line, a
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
import { testVhost } from "../broker/amqp/amqp-test-broker.ts";
import { dropPrefix, redisSkipReason, testPrefix, TEST_REDIS_URL } from "../broker/redis/redis-test-support.ts";
import { createApp, type App } from "../runtime/app.ts";
import {
  dropSchema,
  postgresSkipReason,
  testSchema,
  TEST_POSTGRES_URL,
} from "../runtime/results/postgres-test-support.ts";
import { runId } from "../runtime/schedule/run-id.ts";
import { eventually, scaled } from "./support/waits.ts";
import { celerity, START_TIMEOUT_MS, type WatchedProcess } from "./support/watched-process.ts";

const BEAT_APP = fileURLToPath(new URL("./fixtures/beat-app.ts", import.meta.url));
const LEASE_MS = 2_000;
const QUEUE = "beat-failover";

/** Where the beats keep their schedules: the broker url the beats and the test use, extra beat arguments, and the cleanup. */
interface Keeper {
  readonly url: string;
  readonly beatArgs: readonly string[];
  readonly dispose: () => Promise<void>;
}

/**
 * Two beats with `keeper`'s schedules; the leader is SIGKILLed after five of
 * ten runs. Every instant must reach the queue once, none twice, none missing.
 */
const failover = async (children: WatchedProcess[], keeper: Keeper): Promise<void> => {
  let app: App | undefined;
  const detail = () => children.map((child) => child.tail()).join("\n");
  try {
    const beatArgs = (id: string) => [
      "beat",
      "--app",
      BEAT_APP,
      "--broker",
      keeper.url,
      ...keeper.beatArgs,
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

    app = createApp({
      broker: keeper.url,
      log: () => {},
      ...(keeper.beatArgs.length > 0 ? { schedules: keeper.beatArgs[1] } : {}),
    });
    const received: string[] = [];
    await app.broker.declareQueue(QUEUE);
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
    // Stopped, the second beat has sent all it ever will: once the queue is drained, `received` is complete.
    await second.kill("SIGTERM");
    await eventually(
      async () => {
        const stats = await app!.broker.stats(QUEUE);
        return stats.ready === 0 && stats.unacked === 0 && stats.delayed === 0;
      },
      { timeoutMs: scaled(5_000), what: "the queue to drain", detail, intervalMs: 20 },
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
    await keeper.dispose();
  }
};

const redisSkip = await redisSkipReason();
const postgresSkip = await postgresSkipReason();
const rabbit = await testVhost("beat-failover");

describe("beat processes for availability", () => {
  it("send every instant of a schedule once when the leading beat is killed with SIGKILL halfway (schedules on a node)", {
    timeout: scaled(150_000),
  }, async () => {
    const children: WatchedProcess[] = [];
    const dataDir = mkdtempSync(join(tmpdir(), "celerity-beat-"));
    const broker = celerity("broker", ["broker", "--port", "0", "--data-dir", dataDir]);
    children.push(broker);
    const [, url] = await broker.waitFor(/listening on (celerity:\/\/[\d.]+:\d+)/, START_TIMEOUT_MS);
    await failover(children, {
      url,
      beatArgs: [],
      dispose: async () => rmSync(dataDir, { recursive: true, force: true }),
    });
  });

  it("send every instant once across a SIGKILL with the schedules and the lease in Redis", {
    timeout: scaled(150_000),
    skip: redisSkip,
  }, async () => {
    const prefix = testPrefix("beat");
    await failover([], {
      url: `${TEST_REDIS_URL}?prefix=${encodeURIComponent(prefix)}`,
      beatArgs: [],
      dispose: () => dropPrefix(prefix),
    });
  });

  // Known gap: PostgreSQL and RabbitMQ are two systems, and a leader killed after RabbitMQ confirmed a run
  // and before its commit reached PostgreSQL leaves that run sent but unrecorded, so the next leader sends it
  // again (docs/periodic-tasks.md). This test kills the leader as the fifth run arrives, which is that very
  // moment: on a loaded machine it sees the duplicate in about one run of three. Kept running, as a todo,
  // until the PostgreSQL store closes the window.
  it("send every instant once across a SIGKILL with the schedules and the lease in PostgreSQL, the runs over RabbitMQ", {
    timeout: scaled(150_000),
    skip: postgresSkip || ("skip" in rabbit ? rabbit.skip : false),
    todo: "a leader killed between RabbitMQ's confirm and PostgreSQL's commit has its run sent twice",
  }, async () => {
    if ("skip" in rabbit) return;
    const schema = testSchema();
    await failover([], {
      url: rabbit.url,
      beatArgs: ["--schedules", `${TEST_POSTGRES_URL}?schema=${schema}`],
      dispose: async () => {
        await dropSchema(schema);
        await rabbit.dispose();
      },
    });
  });
});
