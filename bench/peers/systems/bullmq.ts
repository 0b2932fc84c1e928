/**
 * BullMQ on Redis, configured as its docs advise for throughput: `addBulk`
 * for bulk adds, one worker process with concurrency equal to celerity's,
 * completed no-op jobs removed (`removeOnComplete`), a chain as a flow nested
 * 10 deep and a chord as a flow whose parent has 1,000 children (the parent
 * reads its children's values). The worker runs in its own process
 * (bullmq-worker.ts); this process is the producer.
 */
import { fileURLToPath } from "node:url";
import { FlowProducer, Queue, type FlowJob } from "bullmq";
import { packageVersion, REDIS, redisUnavailable, redisVersion } from "../reachable.ts";
import { wallClock } from "../probe.ts";
import { CHAIN_LENGTH, IDLE_QUEUE, WORK_QUEUE, type Instance, type System, type SystemConfig } from "../system.ts";
import { spawnWorker, workerControls } from "../worker-link.ts";

/** A database of its own on the shared Redis, and a key prefix, so that nothing else's keys are touched. */
export const BULLMQ_CONNECTION = { host: REDIS.host, port: REDIS.port, db: 11 };
export const BULLMQ_PREFIX = "celerity-peers-bullmq";
const JOB_OPTIONS = { removeOnComplete: true, removeOnFail: true };

const WORKER_MODULE = fileURLToPath(new URL("./bullmq-worker.ts", import.meta.url));

export const bullmq: System = {
  id: "bullmq",
  label: "BullMQ (Redis)",
  setup: "one worker process, concurrency as given, `removeOnComplete`; `addBulk` for bulk; flows for chain and chord",
  speed: 0.08,
  unsupported: {},
  unavailable: redisUnavailable,
  versions: async () => ({
    bullmq: await packageVersion("bullmq"),
    ioredis: await packageVersion("ioredis"),
    redis: await redisVersion(),
    node: process.version,
  }),
  async start(config: SystemConfig): Promise<Instance> {
    const work = new Queue(WORK_QUEUE, {
      connection: BULLMQ_CONNECTION,
      prefix: BULLMQ_PREFIX,
      defaultJobOptions: JOB_OPTIONS,
    });
    const idle = new Queue(IDLE_QUEUE, {
      connection: BULLMQ_CONNECTION,
      prefix: BULLMQ_PREFIX,
      defaultJobOptions: JOB_OPTIONS,
    });
    const flows = new FlowProducer({ connection: BULLMQ_CONNECTION, prefix: BULLMQ_PREFIX });
    await work.obliterate({ force: true });
    await idle.obliterate({ force: true });
    const link = await spawnWorker(
      WORKER_MODULE,
      { concurrency: config.concurrency },
      { echo: config.echo, nodeArgs: config.nodeArgs?.("worker") ?? [] },
    );
    const bulk = async (queue: Queue, n: number, batch: number) => {
      for (let i = 0; i < n; i += batch) {
        const jobs = [];
        for (let j = 0; j < batch && i + j < n; j++) jobs.push({ name: "noop", data: { n: i + j } });
        await queue.addBulk(jobs);
      }
    };
    return {
      async enqueue(n, mode, batch) {
        if (mode === "bulk") return bulk(idle, n, batch);
        for (let i = 0; i < n; i++) await idle.add("noop", { n: i });
      },
      purgeIdle: () => idle.obliterate({ force: true }),
      fill: (n, batch) => bulk(work, n, batch),
      ...workerControls(link),
      async send(n, inFlight) {
        for (let i = 0; i < n; i += inFlight) {
          const sends = [];
          for (let j = 0; j < inFlight && i + j < n; j++) sends.push(work.add("noop", { n: i + j }));
          await Promise.all(sends);
        }
      },
      async chains(k) {
        const sends = [];
        for (let i = 0; i < k; i++) {
          // The first step is the innermost child: BullMQ runs children before their parent.
          let job: FlowJob = { name: "add", queueName: WORK_QUEUE, data: { x: i, y: 1 }, prefix: BULLMQ_PREFIX };
          for (let step = 1; step < CHAIN_LENGTH; step++)
            job = { name: "add", queueName: WORK_QUEUE, data: { y: 1 }, prefix: BULLMQ_PREFIX, children: [job] };
          sends.push(flows.add(job));
        }
        await Promise.all(sends);
      },
      async chord(n) {
        await flows.add({
          name: "tsum",
          queueName: WORK_QUEUE,
          data: {},
          prefix: BULLMQ_PREFIX,
          children: Array.from({ length: n }, (_, i) => ({
            name: "add",
            queueName: WORK_QUEUE,
            data: { x: i, y: i },
            prefix: BULLMQ_PREFIX,
          })),
        });
      },
      async paced(n, rate) {
        const perMs = rate / 1000;
        const sends: Promise<unknown>[] = [];
        const t0 = performance.now();
        for (let sent = 0; sent < n; ) {
          const due = Math.min(n, Math.floor((performance.now() - t0) * perMs) + 1);
          for (; sent < due; sent++) sends.push(work.add("stamp", { sentAt: wallClock() }));
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
        await Promise.all(sends);
      },
      async close() {
        await link.exit();
        await work.obliterate({ force: true });
        await idle.obliterate({ force: true });
        await Promise.all([work.close(), idle.close(), flows.close()]);
      },
    };
  },
};
