/** bee-queue's worker side in a worker process (worker-child.ts): a worker queue processing with the given concurrency; stopping closes it, starting opens a new one. */
import BeeQueue from "bee-queue";
import type { WorkerFactory } from "../worker-link.ts";
import { WORK_QUEUE } from "../system.ts";
import { BEE_SETTINGS } from "./bee-queue.ts";

const WORKER = {
  ...BEE_SETTINGS,
  isWorker: true,
  getEvents: false,
  sendEvents: false,
  storeJobs: false,
  activateDelayedJobs: false,
  removeOnSuccess: true,
  removeOnFailure: true,
};

export const createWorker: WorkerFactory = async (options, probe) => {
  let queue: BeeQueue | undefined;
  const handler = async (job: BeeQueue.Job<{ n?: number; sentAt?: number }>) => {
    if (job.data.sentAt !== undefined) probe.stamped(job.data.sentAt);
    else probe.started();
    probe.ended();
  };
  return {
    async start() {
      queue = new BeeQueue(WORK_QUEUE, WORKER);
      queue.on("error", (error) => console.error(`bee-queue worker: ${error.message}`));
      await queue.ready();
      queue.process(options.concurrency as number, handler);
    },
    async stop() {
      await queue?.close();
      queue = undefined;
    },
    async close() {
      await queue?.close();
    },
  };
};
