import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createEmbeddedBroker } from "../../broker/embedded/embedded-broker.ts";
import { chord } from "../../dsl/combinators.ts";
import type { MessageGraph } from "../../dsl/graph.ts";
import { createApp } from "../app.ts";
import { MemoryResultStore } from "../results/result-store.ts";

/** A result store that counts the reads a worker makes, as a remote store would pay for each in a round trip. */
class CountingStore extends MemoryResultStore {
  graphReads = 0;
  recordReads = 0;
  override graph(id: string): Promise<MessageGraph | undefined> {
    this.graphReads++;
    return super.graph(id);
  }
  override get(id: string) {
    this.recordReads++;
    return super.get(id);
  }
}

describe("workflow steps run by a worker that did not send the workflow", () => {
  it("read the workflow's graph once, however many of its steps finish at the same time, and join a chord with the right input", async () => {
    const broker = createEmbeddedBroker();
    const store = new CountingStore();
    const producer = createApp({ broker, results: store, log: () => {} });
    const workerApp = createApp({ broker, results: store, log: () => {} });
    const define = (app: typeof producer) => ({
      add: app.task("add", (x: number, y: number) => x + y),
      tsum: app.task("tsum", (xs: number[]) => xs.reduce((a, b) => a + b, 0)),
    });
    const { add, tsum } = define(producer);
    define(workerApp);
    await workerApp.worker({ concurrency: 64 }).start();
    try {
      const r = await chord(
        Array.from({ length: 200 }, (_, i) => add.s(i, i)),
        tsum.s(),
      ).apply();
      assert.equal(await r.get({ timeout: 10_000 }), 2 * ((199 * 200) / 2));
      assert.equal(store.graphReads, 1, `the graph was read ${store.graphReads} times`);
    } finally {
      await workerApp.close();
      await producer.close().catch(() => undefined);
    }
  });
});
