/**
 * A task that kills its worker process must cost only itself: the messages
 * the dying worker held but never began go back without a mark against them,
 * so the poison is dead-lettered alone once it has been started
 * `maxDeliveries` times and every healthy task beside it runs.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { NodeTransport } from "../broker/node/client/node-transport.ts";
import { createApp } from "../runtime/app.ts";
import { startFullNode } from "../runtime/full-node.ts";
import { scaled, within } from "./support/waits.ts";
import { nodeProcess, type WatchedProcess } from "./support/watched-process.ts";

const WORKER = fileURLToPath(new URL("./fixtures/poison-worker.ts", import.meta.url));
const MAX_DELIVERIES = 4;

/** One worker process on `queue`, stopped when the test ends. */
const startWorker = (t: { after(fn: () => unknown): void }, url: string, queue: string): WatchedProcess => {
  const worker = nodeProcess("poison worker", ["--import", "tsx", WORKER, url, queue]);
  t.after(() => worker.kill());
  return worker;
};

describe("a poison task", () => {
  it("is dead-lettered alone: no healthy task held beside it is dead-lettered, and every one runs", {
    timeout: scaled(120_000),
  }, async (t) => {
    const full = await startFullNode({ port: 0, log: () => {} });
    t.after(() => full.stop());
    const queue = `poison-${randomUUID()}`;
    const admin = await NodeTransport.connect(full.url);
    t.after(() => admin.close());
    await admin.declareQueue(queue, { maxDeliveries: MAX_DELIVERIES });
    const producer = createApp({ broker: full.url });
    t.after(() => producer.close());

    const healthy = [];
    for (let i = 0; i < 10; i++) healthy.push(await producer.sendTask<number>("poison.ok", [i], { queue }));
    const poison = await producer.sendTask("poison.exit", [], { queue });
    for (let i = 10; i < 100; i++) healthy.push(await producer.sendTask<number>("poison.ok", [i], { queue }));

    // Each worker dies on the poison, maxDeliveries times; the next one finds it dead-lettered.
    let deaths = 0;
    while (deaths < MAX_DELIVERIES) {
      const worker = startWorker(t, full.url, queue);
      const { code } = await worker.exit(scaled(30_000));
      assert.equal(code, 3, `the worker died on the poison task\n${worker.tail()}`);
      deaths++;
    }
    const last = startWorker(t, full.url, queue);
    const done = Promise.all(healthy.map((result) => result.get({ timeout: scaled(100_000) })));
    const values = await within(done, scaled(100_000), "every healthy task to finish");
    assert.deepEqual(
      values,
      Array.from({ length: 100 }, (_, i) => i),
    );
    // The next worker finds the poison delivered maxDeliveries times: it is dead-lettered, not run.
    await within(
      (async () => {
        while ((await admin.deadLetters(`${queue}.dlq`)).length === 0)
          await new Promise((resolve) => setTimeout(resolve, 10));
      })(),
      scaled(30_000),
      "the poison to be dead-lettered",
    );
    const letters = await admin.deadLetters(`${queue}.dlq`);
    assert.deepEqual(
      letters.map((letter) => letter.envelope.id),
      [poison.id],
      `only the poison is dead-lettered (healthy tasks dead-lettered beside it: ${letters.length - 1})`,
    );
    last.child.kill("SIGTERM");
  });
});
