/**
 * Periodic tasks across processes: two `celerity beat` processes for one
 * schedule, with the schedules and the lease kept by a `celerity broker`
 * node, by Redis, or by PostgreSQL (the runs sent over RabbitMQ); the
 * leading beat is killed with SIGKILL halfway and the other takes over. The
 * test reads every message the beats sent from the broker's queue (with
 * PostgreSQL, which may send a run twice, every run a `celerity worker`
 * ran). Every wait is on an event (a log line, a message, the queue's
 * counts), bounded by a timeout that fails with the
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

/**
 * Where the beats keep their schedules: the broker url the beats and the test
 * use, the PostgreSQL url when the schedules are there, and the cleanup.
 */
interface Keeper {
  readonly url: string;
  readonly schedules?: string;
  readonly dispose: () => Promise<void>;
}

/** The far end of the queue: the task ids taken from it, and a wait for the last of them once the beats are stopped. */
interface Taker {
  readonly ids: () => readonly string[];
  readonly drained: () => Promise<void>;
}

const drainedQueue = (app: App, detail: () => string): Promise<void> =>
  eventually(
    async () => {
      const stats = await app.broker.stats(QUEUE);
      return stats.ready === 0 && stats.unacked === 0 && stats.delayed === 0;
    },
    { timeoutMs: scaled(5_000), what: "the queue to drain", detail, intervalMs: 20 },
  );

/** Every message the beats sent, read by a plain consumer: for stores that send each run once. */
const messageReader = async (app: App, detail: () => string): Promise<Taker> => {
  const received: string[] = [];
  const consumer = await app.broker.consume(
    QUEUE,
    (delivery) => {
      received.push(delivery.envelope.id);
      consumer.ack(delivery.deliveryTag);
    },
    { prefetch: 100 },
  );
  return {
    ids: () => received,
    async drained() {
      await drainedQueue(app, detail);
      await consumer.cancel();
    },
  };
};

/**
 * Every run, as a `celerity worker` claiming runs in the schedules'
 * PostgreSQL ran them: for a store that may send a run twice (the runs' task
 * ids as the fixture's task prints them).
 */
const runReader = async (
  app: App,
  keeper: Keeper,
  children: WatchedProcess[],
  detail: () => string,
): Promise<Taker> => {
  const worker = celerity("worker", [
    "worker",
    "--app",
    BEAT_APP,
    "--broker",
    keeper.url,
    "--schedules",
    keeper.schedules as string,
    "--queues",
    QUEUE,
    "--concurrency",
    "2",
    "--without-control",
  ]);
  children.push(worker);
  await worker.waitFor(/celerity worker \S+: consuming/, START_TIMEOUT_MS, { detail });
  const ran = /^beat\.tick ran (\S+)$/;
  return {
    ids: () =>
      worker.printed.flatMap(({ stream, line }) => {
        const match = stream === "stdout" ? ran.exec(line) : null;
        return match === null ? [] : [match[1]];
      }),
    async drained() {
      await drainedQueue(app, detail);
      // Stopped, the worker has printed everything it ran.
      await worker.stop("SIGTERM", scaled(10_000));
    },
  };
};

/**
 * Two beats with `keeper`'s schedules; the leader is SIGKILLed after five of
 * ten runs. Every instant must reach the queue once, none twice, none
 * missing; with the schedules in PostgreSQL, every instant must run once
 * (a run whose send was not confirmed is sent again, and run once).
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
      ...(keeper.schedules !== undefined ? ["--schedules", keeper.schedules] : []),
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
      ...(keeper.schedules !== undefined ? { schedules: keeper.schedules } : {}),
    });
    await app.broker.declareQueue(QUEUE);
    const taker =
      keeper.schedules === undefined
        ? await messageReader(app, detail)
        : await runReader(app, keeper, children, detail);
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

    await eventually(() => taker.ids().length >= 5, {
      timeoutMs: scaled(15_000),
      what: "five runs before the kill",
      detail,
    });
    await first.kill("SIGKILL");
    await second.waitFor(/beat b: leads/, scaled(LEASE_MS * 5));
    await eventually(() => new Set(taker.ids()).size >= 10, {
      timeoutMs: scaled(20_000),
      what: "the ten runs",
      detail,
    });
    // Stopped, the second beat has sent all it ever will: once the queue is drained, the taker has every id.
    await second.kill("SIGTERM");
    await taker.drained();

    const expected = instants.map((instant) => runId("every-second", instant));
    assert.deepEqual(
      [...taker.ids()].sort(),
      [...expected].sort(),
      `each instant ${keeper.schedules === undefined ? "sent" : "run"} once, none twice, none missing\n${detail()}`,
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
      dispose: () => dropPrefix(prefix),
    });
  });

  // PostgreSQL and RabbitMQ are two systems: a leader killed after RabbitMQ confirmed a run and before
  // PostgreSQL heard of it leaves the run unconfirmed, and the next leader sends it again; the worker claims
  // each run in PostgreSQL and runs one copy. Here the kill lands anywhere in a tick;
  // tests/beat-kill-window.test.ts kills exactly in that window.
  it("run every instant once across a SIGKILL with the schedules and the lease in PostgreSQL, the runs over RabbitMQ", {
    timeout: scaled(150_000),
    skip: postgresSkip || ("skip" in rabbit ? rabbit.skip : false),
  }, async () => {
    if ("skip" in rabbit) return;
    const schema = testSchema();
    await failover([], {
      url: rabbit.url,
      schedules: `${TEST_POSTGRES_URL}?schema=${schema}`,
      dispose: async () => {
        await dropSchema(schema);
        await rabbit.dispose();
      },
    });
  });
});
