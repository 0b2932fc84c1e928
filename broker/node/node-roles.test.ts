import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BrokerNode } from "./node-server.ts";
import { NodeTransport } from "./client/node-transport.ts";
import { OperationNotPermittedError } from "./protocol.ts";

const notPermitted = (op: string) => (error: unknown) => {
  assert.ok(error instanceof OperationNotPermittedError, String(error));
  assert.equal(error.op, op);
  assert.match(error.message, /needs the node's admin token/);
  return true;
};

describe("broker node roles", () => {
  it("with an admin token, a client holding the token produces and consumes but may not revoke, bind task queues or purge", async () => {
    const node = await BrokerNode.start({ port: 0, token: "client-token", adminToken: "admin-token", log: () => {} });
    const client = await NodeTransport.connect(node.url, { token: "client-token" });
    const admin = await NodeTransport.connect(node.url, { token: "admin-token" });
    try {
      await client.declareQueue("tasks-queue");
      await client.declareExchange("tasks", "topic");
      await client.publish({
        id: "m1",
        exchange: "",
        routingKey: "tasks-queue",
        priority: 0,
        headers: {},
        body: new Uint8Array([1]),
      });
      assert.equal((await client.stats("tasks-queue")).ready, 1);
      await assert.rejects(client.revoke(["m1"]), notPermitted("revoke"));
      await assert.rejects(client.bindQueue("tasks-queue", "tasks", "#"), notPermitted("bindQueue"));
      await assert.rejects(client.purge("tasks-queue"), notPermitted("purge"));
      await assert.rejects(client.discardDeadLetters("tasks-queue.dlq"), notPermitted("discardDeadLetters"));
      // The runtime's own broadcast exchanges stay open to clients: every worker binds its control queue.
      await client.declareExchange("celerity.control", "fanout");
      await client.declareQueue("w1.control", { autoDelete: true });
      await client.bindQueue("w1.control", "celerity.control", "");
      // The administrator may do all of it.
      await admin.bindQueue("tasks-queue", "tasks", "#");
      await admin.revoke(["m1"]);
      assert.equal(admin.isRevoked("m1"), true);
      assert.equal(await admin.purge("tasks-queue"), 1);
    } finally {
      await client.close();
      await admin.close();
      await node.stop();
    }
  });

  it("without an admin token, a client holding the token may do everything, as before", async () => {
    const node = await BrokerNode.start({ port: 0, token: "only", log: () => {} });
    const client = await NodeTransport.connect(node.url, { token: "only" });
    try {
      await client.revoke(["x"]);
      await client.declareQueue("q");
      assert.equal(await client.purge("q"), 0);
    } finally {
      await client.close();
      await node.stop();
    }
  });

  it("refuses an admin token equal to the token", async () => {
    await assert.rejects(
      BrokerNode.start({ port: 0, token: "same", adminToken: "same", log: () => {} }),
      /the admin token must differ from the token/,
    );
  });

  it("says loudly when a client in signed mode connects to a node without a token", async () => {
    const logs: string[] = [];
    const node = await BrokerNode.start({ port: 0, log: (line) => logs.push(line) });
    const plain = await NodeTransport.connect(node.url);
    const signed = await NodeTransport.connect(node.url, { signed: true, name: "billing" });
    const again = await NodeTransport.connect(node.url, { signed: true });
    try {
      const warnings = logs.filter((line) => line.startsWith("WARNING"));
      assert.equal(warnings.length, 1, logs.join("\n"));
      assert.match(
        warnings[0],
        /billing .* runs in signed mode, but this node has no token: anyone who can connect can take and hold messages, revoke tasks/,
      );
    } finally {
      await plain.close();
      await signed.close();
      await again.close();
      await node.stop();
    }
  });
});
