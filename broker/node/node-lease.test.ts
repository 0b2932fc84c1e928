import assert from "node:assert/strict";
import { brokerOperations } from "./operations.ts";
import { describe, it } from "node:test";
import type { Delivery, Envelope } from "../envelope.ts";
import { LeaseTable } from "./lease-table.ts";
import { NodeClient } from "./client/node-client.ts";
import { BrokerNode } from "./node-server.ts";
import { NodeTransport } from "./client/node-transport.ts";
import { FrameType } from "./protocol.ts";
import { eventually, scaled, within } from "../../tests/support/waits.ts";
import { VirtualClock } from "../../runtime/testing/virtual-clock.ts";

const envelope = (id: string, queue = "q"): Envelope => ({
  id,
  exchange: "",
  routingKey: queue,
  priority: 0,
  headers: { task: "t" },
  body: new Uint8Array([1]),
});

/** A client that consumes over the raw protocol and never renews a lease (a stuck or foreign consumer). */
const silentConsumer = async (url: string, queue: string, leaseMs: number) => {
  const client = new NodeClient(url, { name: "silent" });
  await client.start();
  const deliveries: [number, string][] = [];
  let arrived: (() => void) | undefined;
  client.onFrame(FrameType.Deliver, (payload) => {
    const [, deliveryTag, , , wire] = payload as [string, number, number, string, unknown[]];
    deliveries.push([deliveryTag, wire[0] as string]);
    arrived?.();
  });
  const tag = await client.call(brokerOperations.consume, [queue, 10, leaseMs, false]);
  const next = () => (deliveries.length > 0 ? Promise.resolve() : new Promise<void>((resolve) => (arrived = resolve)));
  return { client, tag, deliveries, next };
};

describe("lease table", () => {
  it("expires leases oldest first, and a renewal moves a lease to the back", () => {
    const table = new LeaseTable(100);
    table.lease(1, 0);
    table.lease(2, 10);
    table.lease(3, 20);
    assert.equal(table.renew([1, 99], 50), 1, "only held deliveries are renewed");
    assert.deepEqual(table.expire(115), [2]);
    assert.deepEqual(table.expire(149), [3]);
    assert.deepEqual(table.expire(150), [1]);
    assert.equal(table.size, 0);
    assert.equal(table.wasExpired(2), true);
    assert.equal(table.wasExpired(4), false);
  });

  it("forgets a settled delivery's lease", () => {
    const table = new LeaseTable(10);
    table.lease(1, 0);
    table.release(1);
    assert.deepEqual(table.expire(1_000), []);
    assert.equal(table.wasExpired(1), false);
  });
});

describe("broker node: delivery leases", () => {
  it("redelivers to another consumer a message whose lease runs out unrenewed, and ignores the late ack", async (t) => {
    const logs: string[] = [];
    const clock = new VirtualClock();
    const node = await BrokerNode.start({ port: 0, log: (line) => logs.push(line), clock });
    t.after(() => node.stop());
    const silent = await silentConsumer(node.url, "q", 150);
    t.after(() => silent.client.close());
    const producer = await NodeTransport.connect(node.url);
    t.after(() => producer.close());
    await producer.publish(envelope("stuck"));
    await within(silent.next(), scaled(3_000), "the first delivery");
    const second = await NodeTransport.connect(node.url);
    t.after(() => second.close());
    const redelivered = new Promise<Delivery>((resolve) => void second.consume("q", resolve, { prefetch: 1 }));
    await clock.advance(149);
    assert.equal((await producer.stats("q")).unacked, 1, "the lease holds until it has run its length");
    await clock.advance(50);
    const delivery = await within(redelivered, scaled(3_000), "the redelivery after the lease ran out");
    assert.equal(delivery.envelope.id, "stuck");
    assert.equal(delivery.redelivered, true);
    assert.equal(delivery.deliveryCount, 2);
    assert.ok(
      logs.some((line) => /lease of 1 delivery on q ran out after 150 ms/.test(line)),
      logs.join("\n"),
    );
    silent.client.tell(brokerOperations.ack, [silent.tag, silent.deliveries[0][0]]);
    await producer.stats("q"); // a round trip after the late ack
    assert.ok(
      logs.some((line) => /ack of delivery \d+ on q came after its lease ran out/.test(line)),
      logs.join("\n"),
    );
    assert.equal((await producer.stats("q")).unacked, 1, "the redelivery is still held by the second consumer");
  });

  it("keeps a long-running delivery with its consumer while the consumer's process renews the lease", async (t) => {
    const clock = new VirtualClock();
    const node = await BrokerNode.start({ port: 0, log: () => {}, clock });
    t.after(() => node.stop());
    const worker = await NodeTransport.connect(node.url, { clock });
    const other = await NodeTransport.connect(node.url, { clock });
    const producer = await NodeTransport.connect(node.url);
    t.after(() => Promise.all([worker.close(), other.close(), producer.close()]));
    let held: Delivery | undefined;
    let arrived: () => void = () => {};
    const first = new Promise<void>((resolve) => (arrived = resolve));
    const consumer = await worker.consume("q", (d) => ((held = d), arrived()), { prefetch: 1, leaseMs: 400 });
    await producer.publish(envelope("long"));
    await within(first, scaled(3_000), "the delivery");
    const stolen: Delivery[] = [];
    await other.consume("q", (d) => stolen.push(d), { prefetch: 1, leaseMs: 400 });
    // Four lease lengths while the "task" runs, in steps shorter than a renewal period; after each step a round
    // trip on the worker's connection, so the renewal it sent has reached the node before time moves on.
    for (let elapsed = 0; elapsed < 1_600; elapsed += 100) {
      await clock.advance(100);
      await worker.stats("q");
    }
    await other.stats("q"); // a redelivery to the other consumer would have arrived before this answer
    assert.deepEqual(stolen, [], "no other consumer got the message while its holder was alive");
    consumer.ack(held!.deliveryTag);
    const stats = await producer.stats("q");
    assert.equal(stats.unacked, 0);
    assert.equal(stats.ready, 0);
  });

  it("dead-letters a message whose lease keeps running out, past the queue's maximum deliveries", async (t) => {
    const clock = new VirtualClock();
    const node = await BrokerNode.start({ port: 0, log: () => {}, clock });
    t.after(() => node.stop());
    const producer = await NodeTransport.connect(node.url);
    t.after(() => producer.close());
    await producer.declareQueue("poison", { maxDeliveries: 2 });
    await producer.publish(envelope("poison-pill", "poison"));
    const silent = await silentConsumer(node.url, "poison", 60);
    t.after(() => silent.client.close());
    await within(silent.next(), scaled(3_000), "the first delivery");
    let letters = await producer.deadLetters("poison.dlq");
    // Each step runs a lease out; the node redelivers at once to the same consumer, which again never renews.
    for (let step = 0; step < 10 && letters.length === 0; step++) {
      await clock.advance(100);
      letters = await producer.deadLetters("poison.dlq");
    }
    assert.equal(letters.length, 1, "the message reached the dead-letter queue");
    assert.equal(letters[0].envelope.id, "poison-pill");
    await eventually(() => silent.deliveries.length >= 2, { what: "the second delivery to reach the consumer" });
    assert.equal(silent.deliveries.length, 2, "delivered exactly maxDeliveries times");
  });

  it("refuses a consume with a lease that is not a positive number", async () => {
    const node = await BrokerNode.start({ port: 0, log: () => {} });
    const client = new NodeClient(node.url);
    await client.start();
    await assert.rejects(
      client.call(brokerOperations.consume, ["q", 1, -5, false]),
      /a lease must be a positive number of ms, got -5/,
    );
    client.close();
    await node.stop();
  });
});
