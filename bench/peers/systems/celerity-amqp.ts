/**
 * celerity on RabbitMQ: the same RabbitMQ server as Celery's row, in a vhost
 * of its own (made with rabbitmqctl, deleted afterwards) so neither sees the
 * other's queues. The worker is a worker process; this process produces.
 * Results (which chains and chords need) live on a `celerity broker` node
 * in memory, as BullMQ's and Celery's live on Redis.
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { NodeClient } from "../../../broker/node/client/node-client.ts";
import { createApp } from "../../../src/index.ts";
import { RemoteResultStore } from "../../../src/node.ts";
import { startNode } from "../../node/processes.ts";
import { AMQP, tcpUnreachable } from "../reachable.ts";
import type { Instance, System, SystemConfig } from "../system.ts";
import { spawnWorker, workerControls } from "../worker-link.ts";
import { producer } from "./celerity.ts";
import { defineTasks } from "./celerity-tasks.ts";

const run = promisify(execFile);
const VERSION = (
  JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string }
).version;
const WORKER_MODULE = fileURLToPath(new URL("./celerity-amqp-worker.ts", import.meta.url));

export const celerityAmqp: System = {
  id: "celerity-amqp",
  label: "celerity (RabbitMQ)",
  setup:
    "AmqpTransport: durable priority queues, persistent messages, publisher confirms, manual acks; a worker process, this process as producer; results on a `celerity broker` in memory",
  speed: 0.15,
  unsupported: {},
  async unavailable() {
    const unreachable = await tcpUnreachable(AMQP.host, AMQP.port);
    if (unreachable !== undefined) return `RabbitMQ: ${unreachable}`;
    try {
      await run("rabbitmqctl", ["list_vhosts"]);
    } catch {
      return "rabbitmqctl is not available to make a vhost of its own";
    }
    return undefined;
  },
  async versions() {
    const { stdout } = await run("rabbitmqctl", ["version"]).catch(() => ({ stdout: "?" }));
    return { celerity: VERSION, rabbitmq: stdout.trim(), node: process.version };
  },
  async start(config: SystemConfig): Promise<Instance> {
    const vhost = `celerity-bench-${process.pid}`;
    await run("rabbitmqctl", ["add_vhost", vhost]);
    await run("rabbitmqctl", ["set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"]);
    const url = `amqp://guest:guest@${AMQP.host}:${AMQP.port}/${vhost}`;
    const node = await startNode({}, { echo: config.echo });
    const link = await spawnWorker(
      WORKER_MODULE,
      { url, results: node.url, concurrency: config.concurrency },
      { echo: config.echo, nodeArgs: config.nodeArgs?.("worker") ?? [] },
    );
    const client = new NodeClient(node.url, { name: "bench-producer-results" });
    await client.start();
    const app = createApp({
      broker: url,
      results: new RemoteResultStore(client),
      log: (message) => console.error(`celerity producer: ${message}`),
    });
    const tasks = defineTasks(app);
    return {
      ...producer(app, tasks),
      ...workerControls(link),
      async close() {
        await app.close();
        client.close();
        await link.exit();
        await node.child.stop();
        await run("rabbitmqctl", ["delete_vhost", vhost]).catch(() => {});
      },
    };
  },
};
