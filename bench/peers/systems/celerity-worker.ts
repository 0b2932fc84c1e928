/** The worker side of celerity's TCP node in a worker process (worker-child.ts): an app on the node's url and a worker on the work queue. */
import { createApp, type Worker } from "../../../src/index.ts";
import type { WorkerFactory } from "../worker-link.ts";
import { WORK_QUEUE } from "../system.ts";
import { defineTasks } from "./celerity-tasks.ts";

export const createWorker: WorkerFactory = async (options, probe) => {
  const app = createApp({
    broker: options.url as string,
    log: (message) => console.error(`celerity worker: ${message}`),
  });
  defineTasks(app, probe);
  let worker: Worker | undefined;
  return {
    async start() {
      worker = app.worker({ concurrency: options.concurrency as number, queues: [WORK_QUEUE] });
      await worker.start();
    },
    async stop() {
      await worker?.stop();
      worker = undefined;
    },
    async close() {
      await worker?.stop();
      await app.close();
    },
  };
};
