import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { queueAdminConformance } from "../queue-admin-conformance.ts";
import type { QueueAdmin } from "../queue-admin.ts";
import type { Transport } from "../transport.ts";
import { BrokerNode } from "./node-server.ts";
import { nodeWithTransport, tempDir } from "./node-test-support.ts";
import { NodeTransport } from "./client/node-transport.ts";

const admin = async (options: { durable?: boolean } = {}) =>
  (await nodeWithTransport(options)) as Transport & QueueAdmin;

queueAdminConformance("tcp node (in memory)", () => admin());
queueAdminConformance("tcp node (durable log)", () => admin({ durable: true }));

describe("queue management on a durable node", () => {
  it("keeps a queue paused, and its purge and discarded dead letters gone, across a restart", async () => {
    const dir = tempDir();
    let node = await BrokerNode.start({ port: 0, dataDir: dir.path, log: () => {} });
    let transport = await NodeTransport.connect(node.url);
    try {
      await transport.declareQueue("mail");
      await transport.declareQueue("other");
      await transport.pause("mail");
      await transport.pause("other");
      await transport.resume("other");
      for (const id of ["a", "b"])
        await transport.publish({
          id,
          exchange: "",
          routingKey: "other",
          priority: 0,
          headers: {},
          body: new Uint8Array([0x90]),
        });
      assert.equal(await transport.purge("other"), 2);
      await transport.close();
      await node.stop();
      node = await BrokerNode.start({ port: 0, dataDir: dir.path, log: () => {} });
      transport = await NodeTransport.connect(node.url);
      const queues = await transport.listQueues();
      assert.equal(queues.find((q) => q.name === "mail")?.paused, true);
      assert.equal(queues.find((q) => q.name === "other")?.paused, false);
      assert.equal(queues.find((q) => q.name === "other")?.ready, 0);
    } finally {
      await transport.close();
      await node.stop();
      dir.remove();
    }
  });
});
