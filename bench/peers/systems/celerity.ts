/**
 * celerity itself, four ways: the embedded broker (producer, broker and
 * worker in this process), the TCP broker node (`celerity broker`, in
 * memory or with a durable log fsynced before every confirm) and the Redis
 * transport, each with its worker in a worker process and this process as
 * the producer.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { chain, chord, createApp, type App, type Worker } from "../../../src/index.ts";
import { makeDataDir, removeDir, startNode, type Child } from "../../node/processes.ts";
import { Probe, wallClock } from "../probe.ts";
import { REDIS, redisUnavailable, redisVersion } from "../reachable.ts";
import {
  CHAIN_LENGTH,
  IDLE_QUEUE,
  WORK_QUEUE,
  type EnqueueMode,
  type Instance,
  type System,
  type SystemConfig,
} from "../system.ts";
import { spawnWorker, workerControls, type WorkerLink } from "../worker-link.ts";
import { defineTasks, type PeerTasks } from "./celerity-tasks.ts";

const VERSION = (
  JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string }
).version;

/** `count` argument lists of the no-op task, numbered from `from`. */
const argsLists = (from: number, count: number): [number][] => Array.from({ length: count }, (_, j) => [from + j]);

/** The producer's side, the same for every celerity system. */
export const producer = (app: App, tasks: PeerTasks) => ({
  async enqueue(n: number, mode: EnqueueMode, batch: number) {
    if (mode === "single") {
      for (let i = 0; i < n; i++) await tasks.noop.applyAsync([i], { queue: IDLE_QUEUE });
      return;
    }
    // The bulk call: one request and one confirm per batch over a node.
    for (let i = 0; i < n; i += batch)
      await tasks.noop.applyAsyncMany(argsLists(i, Math.min(batch, n - i)), { queue: IDLE_QUEUE });
  },
  /** Consume and ack everything in the idle queue (untimed). */
  async purgeIdle() {
    const consumer = await app.broker.consume(IDLE_QUEUE, (delivery) => consumer.ack(delivery.deliveryTag), {
      prefetch: 10_000,
    });
    for (;;) {
      const stats = await app.broker.stats(IDLE_QUEUE);
      if (stats.ready === 0 && stats.unacked === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await consumer.cancel();
  },
  async fill(n: number, batch: number) {
    for (let i = 0; i < n; i += batch) await tasks.noop.delayMany(argsLists(i, Math.min(batch, n - i)));
  },
  async send(n: number, inFlight: number) {
    for (let i = 0; i < n; i += inFlight) {
      const sends = [];
      for (let j = 0; j < inFlight && i + j < n; j++) sends.push(tasks.noop.delay(i + j));
      await Promise.all(sends);
    }
  },
  async chains(k: number) {
    const sends = [];
    for (let i = 0; i < k; i++) {
      const steps = [tasks.add.s(i, 1), ...Array.from({ length: CHAIN_LENGTH - 1 }, () => tasks.add.s(1))] as const;
      sends.push((chain as (...steps: unknown[]) => { apply(): Promise<unknown> })(...steps).apply());
    }
    await Promise.all(sends);
  },
  async chord(n: number) {
    await chord(
      Array.from({ length: n }, (_, i) => tasks.add.s(i, i)),
      tasks.tsum.s(),
    ).apply();
  },
  async paced(n: number, rate: number) {
    const perMs = rate / 1000;
    const sends: Promise<unknown>[] = [];
    const t0 = performance.now();
    for (let sent = 0; sent < n; ) {
      const due = Math.min(n, Math.floor((performance.now() - t0) * perMs) + 1);
      for (; sent < due; sent++) sends.push(tasks.stamp.delay(wallClock()));
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await Promise.all(sends);
  },
});

export const celerityEmbedded: System = {
  id: "celerity-embedded",
  label: "celerity embedded",
  setup: "producer, embedded broker and worker in one process; worker concurrency as given",
  speed: 1,
  unsupported: {},
  unavailable: async () => undefined,
  versions: async () => ({ celerity: VERSION, node: process.version }),
  async start(config: SystemConfig): Promise<Instance> {
    const app = createApp({ log: (message) => console.error(`celerity: ${message}`) });
    const probe = new Probe();
    const tasks = defineTasks(app, probe);
    let worker: Worker | undefined;
    return {
      ...producer(app, tasks),
      async startWorker() {
        worker = app.worker({ concurrency: config.concurrency, queues: [WORK_QUEUE] });
        await worker.start();
      },
      async stopWorker() {
        await worker?.stop();
        worker = undefined;
      },
      reset: async () => probe.reset(),
      waitFor: (count, timeoutMs) => probe.waitFor(count, timeoutMs),
      latencies: async () => probe.latencies(),
      close: () => app.close(),
    };
  },
};

const WORKER_MODULE = fileURLToPath(new URL("./celerity-worker.ts", import.meta.url));

const celerityNode = (durable: boolean): System => ({
  id: durable ? "celerity-node-durable" : "celerity-node",
  label: durable ? "celerity node (durable)" : "celerity node",
  setup: durable
    ? "`celerity broker --data-dir <tmp>` (durable log, fsync before every confirm), a worker process, this process as producer"
    : "`celerity broker` in memory, a worker process, this process as producer",
  speed: durable ? 0.3 : 0.4,
  unsupported: {},
  unavailable: async () => undefined,
  versions: async () => ({ celerity: VERSION, node: process.version }),
  async start(config: SystemConfig): Promise<Instance> {
    const dataDir = durable ? makeDataDir() : undefined;
    const node: { child: Child; url: string } = await startNode(
      { dataDir },
      { echo: config.echo, nodeArgs: config.nodeArgs?.("node") ?? [] },
    );
    let link: WorkerLink;
    try {
      link = await spawnWorker(
        WORKER_MODULE,
        { url: node.url, concurrency: config.concurrency },
        { echo: config.echo, nodeArgs: config.nodeArgs?.("worker") ?? [] },
      );
    } catch (error) {
      await node.child.stop();
      throw error;
    }
    const app = createApp({ broker: node.url, log: (message) => console.error(`celerity producer: ${message}`) });
    const tasks = defineTasks(app);
    return {
      ...producer(app, tasks),
      ...workerControls(link),
      async close() {
        await app.close();
        await link.exit();
        await node.child.stop();
        if (dataDir !== undefined) removeDir(dataDir);
      },
    };
  },
});

export const celerityNodeMemory = celerityNode(false);
export const celerityNodeDurable = celerityNode(true);

/** Its own database and prefix on the shared Redis (BullMQ's is db 11), emptied before and after a run. */
const CELERITY_REDIS_DB = 12;

/** Delete every key under `prefix` in the bench's Redis database. */
const dropRedisPrefix = async (prefix: string) => {
  const { Redis } = await import("ioredis");
  const redis = new Redis({ host: REDIS.host, port: REDIS.port, db: CELERITY_REDIS_DB });
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
};

export const celerityRedis: System = {
  id: "celerity-redis",
  label: "celerity on Redis",
  setup:
    "the Redis transport with results in the same Redis (db 12, a prefix of its own), a worker process, this process as producer",
  speed: 0.25,
  unsupported: {},
  unavailable: redisUnavailable,
  versions: async () => ({ celerity: VERSION, redis: await redisVersion(), node: process.version }),
  async start(config: SystemConfig): Promise<Instance> {
    const prefix = `celerity-peers-${process.pid}`;
    await dropRedisPrefix(`${prefix}:`);
    const url = `redis://${REDIS.host}:${REDIS.port}/${CELERITY_REDIS_DB}?prefix=${prefix}`;
    const link = await spawnWorker(
      WORKER_MODULE,
      { url, concurrency: config.concurrency },
      { echo: config.echo, nodeArgs: config.nodeArgs?.("worker") ?? [] },
    );
    const app = createApp({ broker: url, log: (message) => console.error(`celerity producer: ${message}`) });
    const tasks = defineTasks(app);
    return {
      ...producer(app, tasks),
      ...workerControls(link),
      async close() {
        await app.close();
        await link.exit();
        await dropRedisPrefix(`${prefix}:`);
      },
    };
  },
};
