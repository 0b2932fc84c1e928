/**
 * A worker process of the peers bench for the Node-based systems (celerity's
 * TCP node, BullMQ, bee-queue): loads the system's worker side, then obeys
 * the harness over the IPC channel (start, stop, reset, wait, latencies,
 * cpu, exit). Consuming stops and starts within this one process, so a worker
 * stays warmed up (JIT-compiled) from one run to the next.
 *
 *   node --import tsx bench/peers/worker-child.ts <worker-module> '<options as JSON>'
 */
import { pathToFileURL } from "node:url";
import { Probe } from "./probe.ts";
import type { WorkerFactory, WorkerRequest } from "./worker-link.ts";

const [modulePath, optionsJson] = process.argv.slice(2);
if (modulePath === undefined || optionsJson === undefined || process.send === undefined) {
  console.error(
    "usage: node --import tsx bench/peers/worker-child.ts <worker-module> '<options as JSON>' (started by the peers bench, with an IPC channel)",
  );
  process.exit(2);
}
const send = (message: unknown) => process.send?.(message);
const probe = new Probe();
const { createWorker } = (await import(pathToFileURL(modulePath).href)) as { createWorker: WorkerFactory };
const worker = await createWorker(JSON.parse(optionsJson) as Record<string, unknown>, probe);

// The harness is gone: nothing will stop us otherwise.
process.on("disconnect", () => process.exit(1));

process.on("message", async (request: WorkerRequest) => {
  try {
    let value: unknown;
    switch (request.op) {
      case "start":
        await worker.start();
        break;
      case "stop":
        await worker.stop();
        break;
      case "reset":
        probe.reset();
        break;
      case "wait":
        value = await probe.waitFor(request.count, request.timeoutMs);
        break;
      case "latencies":
        value = probe.latencies();
        break;
      case "cpu": {
        const { user, system } = process.cpuUsage();
        value = user + system;
        break;
      }
      case "exit":
        await worker.close();
        send({ id: request.id, ok: true });
        // Exit on the next turn so the reply is flushed; a clean exit also writes a --cpu-prof profile.
        setImmediate(() => process.exit(0));
        return;
    }
    send({ id: request.id, ok: true, value });
  } catch (error) {
    send({ id: request.id, ok: false, error: error instanceof Error ? error.message : String(error) });
  }
});
send({ ready: true });
