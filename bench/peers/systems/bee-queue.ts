/**
 * bee-queue on Redis, set up as its README advises for speed: producer
 * queues with `isWorker`, `getEvents` and `sendEvents` off, the worker with
 * `storeJobs` off and `removeOnSuccess`, `saveAll` for bulk saves, and
 * `process(concurrency, handler)` in one worker process (bee-queue-worker.ts).
 * It has no workflow primitives, so chains and chords are not run.
 */
import { fileURLToPath } from "node:url";
import BeeQueue from "bee-queue";
import { packageVersion, REDIS, redisUnavailable, redisVersion } from "../reachable.ts";
import { wallClock } from "../probe.ts";
import { IDLE_QUEUE, WORK_QUEUE, type Instance, type System, type SystemConfig } from "../system.ts";
import { spawnWorker, workerControls } from "../worker-link.ts";

export const BEE_SETTINGS = { redis: { host: REDIS.host, port: REDIS.port, db: 11 }, prefix: "celerity-peers-bq" };
const PRODUCER = {
  ...BEE_SETTINGS,
  isWorker: false,
  getEvents: false,
  sendEvents: false,
  storeJobs: false,
  activateDelayedJobs: false,
};

const WORKER_MODULE = fileURLToPath(new URL("./bee-queue-worker.ts", import.meta.url));
const NO_WORKFLOWS = "no workflow primitives";

export const beeQueue: System = {
  id: "bee-queue",
  label: "bee-queue (Redis)",
  setup: "one worker process, `process(concurrency)`, `storeJobs`/events off, `removeOnSuccess`; `saveAll` for bulk",
  speed: 0.08,
  unsupported: { chain: NO_WORKFLOWS, chord: NO_WORKFLOWS },
  unavailable: redisUnavailable,
  versions: async () => ({
    "bee-queue": await packageVersion("bee-queue"),
    redis: await redisVersion(),
    node: process.version,
  }),
  async start(config: SystemConfig): Promise<Instance> {
    const work = new BeeQueue(WORK_QUEUE, PRODUCER);
    const idle = new BeeQueue(IDLE_QUEUE, PRODUCER);
    await Promise.all([work.ready(), idle.ready()]);
    await Promise.all([work.destroy(), idle.destroy()]);
    const link = await spawnWorker(WORKER_MODULE, { concurrency: config.concurrency }, { echo: config.echo });
    const bulk = async (queue: BeeQueue, n: number, batch: number) => {
      for (let i = 0; i < n; i += batch) {
        const jobs = [];
        for (let j = 0; j < batch && i + j < n; j++) jobs.push(queue.createJob({ n: i + j }));
        const errors = await queue.saveAll(jobs);
        if (errors.size > 0)
          throw new Error(`bee-queue saveAll failed for ${errors.size} jobs: ${[...errors.values()][0]?.message}`);
      }
    };
    return {
      async enqueue(n, mode, batch) {
        if (mode === "bulk") return bulk(idle, n, batch);
        for (let i = 0; i < n; i++) await idle.createJob({ n: i }).save();
      },
      purgeIdle: () => idle.destroy(),
      fill: (n, batch) => bulk(work, n, batch),
      ...workerControls(link),
      async send(n, inFlight) {
        for (let i = 0; i < n; i += inFlight) {
          const sends = [];
          for (let j = 0; j < inFlight && i + j < n; j++) sends.push(work.createJob({ n: i + j }).save());
          await Promise.all(sends);
        }
      },
      chains: async () => {
        throw new Error(NO_WORKFLOWS);
      },
      chord: async () => {
        throw new Error(NO_WORKFLOWS);
      },
      async paced(n, rate) {
        const perMs = rate / 1000;
        const sends: Promise<unknown>[] = [];
        const t0 = performance.now();
        for (let sent = 0; sent < n; ) {
          const due = Math.min(n, Math.floor((performance.now() - t0) * perMs) + 1);
          for (; sent < due; sent++) sends.push(work.createJob({ sentAt: wallClock() }).save());
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
        await Promise.all(sends);
      },
      async close() {
        await link.exit();
        await Promise.all([work.destroy(), idle.destroy()]);
        await Promise.all([work.close(), idle.close()]);
      },
    };
  },
};
