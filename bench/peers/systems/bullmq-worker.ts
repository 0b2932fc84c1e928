/** BullMQ's worker side in a worker process (worker-child.ts): one Worker on the work queue with the given concurrency. */
import { Worker, type Job } from "bullmq";
import type { WorkerFactory } from "../worker-link.ts";
import { WORK_QUEUE } from "../system.ts";
import { BULLMQ_CONNECTION, BULLMQ_PREFIX } from "./bullmq.ts";

export const createWorker: WorkerFactory = async (options, probe) => {
  const sumOfChildren = async (job: Job) => {
    let sum = 0;
    for (const value of Object.values(await job.getChildrenValues<number>())) sum += value;
    return sum;
  };
  const processor = async (job: Job) => {
    switch (job.name) {
      case "stamp":
        probe.stamped(job.data.sentAt as number);
        probe.ended();
        return;
      case "add": {
        probe.started();
        // A chain step other than the first adds to its child's value.
        const x = job.data.x === undefined ? await sumOfChildren(job) : (job.data.x as number);
        probe.ended();
        return x + (job.data.y as number);
      }
      case "tsum": {
        probe.started();
        const sum = await sumOfChildren(job);
        probe.ended();
        return sum;
      }
      default:
        probe.started();
        probe.ended();
        return;
    }
  };
  const worker = new Worker(WORK_QUEUE, processor, {
    connection: BULLMQ_CONNECTION,
    prefix: BULLMQ_PREFIX,
    concurrency: options.concurrency as number,
    autorun: false,
    removeOnComplete: { count: 0 },
    removeOnFail: { count: 0 },
  });
  worker.on("error", (error) => console.error(`bullmq worker: ${error.message}`));
  await worker.waitUntilReady();
  let running = false;
  return {
    async start() {
      if (!running) {
        running = true;
        void worker.run();
      } else worker.resume();
    },
    async stop() {
      await worker.pause();
    },
    close: () => worker.close(),
  };
};
