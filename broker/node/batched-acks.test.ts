import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { eventually } from "../../tests/support/waits.ts";
import type { Delivery, Envelope } from "../envelope.ts";
import { NodeClient } from "./client/node-client.ts";
import { BrokerNode } from "./node-server.ts";
import { NodeTransport } from "./client/node-transport.ts";
import { brokerOperations } from "./operations.ts";
import { FrameType } from "./protocol.ts";

const envelope = (id: string): Envelope => ({
  id,
  exchange: "",
  routingKey: "q",
  priority: 0,
  headers: { task: "t" },
  body: new Uint8Array([1]),
});

describe("broker node: acks in batches", () => {
  it("settles every delivery acked in one turn, even when the consumer is cancelled in that same turn", async () => {
    const node = await BrokerNode.start({ port: 0, log: () => {} });
    const producer = await NodeTransport.connect(node.url);
    const worker = await NodeTransport.connect(node.url);
    try {
      assert.equal(worker.client.batchedAcks, true, "the node offers batched acks in its Welcome");
      for (let i = 0; i < 10; i++) await producer.publish(envelope(`m${i}`));
      const received: Delivery[] = [];
      const consumer = await worker.consume("q", (delivery) => received.push(delivery), { prefetch: 100 });
      await eventually(() => received.length === 10, { what: "all ten delivered" });
      for (const delivery of received) consumer.ack(delivery.deliveryTag);
      // A cancel sent before the acks would put all ten back in the queue.
      await consumer.cancel();
      const stats = await producer.stats("q");
      assert.deepEqual({ ready: stats.ready, unacked: stats.unacked }, { ready: 0, unacked: 0 });
    } finally {
      await producer.close();
      await worker.close();
      await node.stop();
    }
  });

  it("acks every known tag of an acks request when one of them is unknown, and names the unknown one", async () => {
    const node = await BrokerNode.start({ port: 0, log: () => {} });
    const producer = await NodeTransport.connect(node.url);
    const client = new NodeClient(node.url, { name: "raw" });
    await client.start();
    try {
      for (let i = 0; i < 3; i++) await producer.publish(envelope(`m${i}`));
      const tags: number[] = [];
      client.onFrame(FrameType.Deliver, (payload) => tags.push((payload as [string, number])[1]));
      const tag = await client.call(brokerOperations.consume, ["q", 10, null, false]);
      await eventually(() => tags.length === 3, { what: "all three delivered" });
      await assert.rejects(client.call(brokerOperations.acks, [tag, [tags[0], 999, tags[1], tags[2]]]), /999/);
      const stats = await producer.stats("q");
      assert.deepEqual({ ready: stats.ready, unacked: stats.unacked }, { ready: 0, unacked: 0 });
    } finally {
      client.close();
      await producer.close();
      await node.stop();
    }
  });
});
