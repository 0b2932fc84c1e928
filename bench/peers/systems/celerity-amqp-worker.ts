/** The worker side of celerity on RabbitMQ in a worker process (worker-child.ts): the broker on RabbitMQ, results on a celerity node. */
import { NodeClient } from "../../../broker/node/client/node-client.ts";
import { createApp, type Worker } from "../../../src/index.ts";
import { RemoteResultStore } from "../../../src/node.ts";
import type { WorkerFactory } from "../worker-link.ts";
import { WORK_QUEUE } from "../system.ts";
import { defineTasks } from "./celerity-tasks.ts";

export const createWorker: WorkerFactory = async (options, probe) => {
  const client = new NodeClient(options.results as string, { name: "bench-worker-results" });
  await client.start();
  const app = createApp({
    broker: options.url as string,
    results: new RemoteResultStore(client),
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
      client.close();
    },
  };
};
