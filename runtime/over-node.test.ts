import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BrokerNode } from "../broker/node/node-server.ts";
import { createApp, type App } from "./app.ts";
import { crossProcessConformance } from "./cross-process-conformance.ts";
import { serveResults } from "./results/result-service.ts";

crossProcessConformance("a broker node", async (t) => {
  const node = await BrokerNode.start({ port: 0, log: () => {} });
  serveResults(node);
  const apps: App[] = [];
  t.after(async () => {
    for (const app of apps) await app.close();
    await node.stop();
  });
  return () => {
    const app = createApp({ broker: node.url, log: () => {} });
    apps.push(app);
    return app;
  };
});

describe("an app on a node that keeps no results", () => {
  it("is told so when it sends, with the node that would keep them", async (t) => {
    const node = await BrokerNode.start({ port: 0, log: () => {} });
    t.after(() => node.stop());
    const app = createApp({ broker: node.url, log: () => {} });
    t.after(() => app.close());
    const add = app.task("add", (x: number, y: number) => x + y);
    await assert.rejects(
      add.delay(1, 2),
      /this node does not serve the 'results' operations \(a node started by `celerity broker` or startFullNode serves them all\)/,
    );
  });
});
