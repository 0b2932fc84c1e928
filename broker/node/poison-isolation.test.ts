import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, it } from "node:test";
import type { Delivery, Envelope } from "../envelope.ts";
import { createEmbeddedBroker } from "../embedded/embedded-broker.ts";
import type { Consumer, Transport } from "../transport.ts";
import { BrokerNode } from "./node-server.ts";
import { NodeTransport } from "./client/node-transport.ts";
import { within } from "../../tests/support/waits.ts";

const envelope = (queue: string, id: string): Envelope => ({
  id,
  exchange: "",
  routingKey: queue,
  priority: 0,
  headers: {},
  body: new Uint8Array([1]),
});

/** A consumer that takes `count` deliveries, marks the one of `poison` started, and returns what it got. */
const holdWindow = async (transport: Transport, queue: string, count: number, poison: string, prefetch = count) => {
  const deliveries: Delivery[] = [];
  let full!: () => void;
  const filled = new Promise<void>((resolve) => (full = resolve));
  let consumer: Consumer | undefined;
  const early: Delivery[] = [];
  const take = (delivery: Delivery) => {
    deliveries.push(delivery);
    if (delivery.envelope.id === poison) consumer!.markStarted?.(delivery.deliveryTag);
    if (deliveries.length === count) full();
  };
  consumer = await transport.consume(
    queue,
    (delivery) => (consumer === undefined ? early.push(delivery) : take(delivery)),
    {
      prefetch,
      marksStarted: true,
    },
  );
  for (const delivery of early) take(delivery);
  await within(filled, 5_000, `${count} deliveries on ${queue}`, () => `got ${deliveries.length}`);
  return { consumer, deliveries };
};

describe("poison isolation", () => {
  it("dead-letters a message that kills its consumer alone: the deliveries held beside it go back uncounted", async (t) => {
    const node = await BrokerNode.start({ port: 0, log: () => {} });
    t.after(() => node.stop());
    const queue = `poison-${randomUUID()}`;
    const producer = await NodeTransport.connect(node.url);
    t.after(() => producer.close());
    await producer.declareQueue(queue, { maxDeliveries: 3 });
    const ids = Array.from({ length: 16 }, (_, i) => `m${i}`);
    const poison = ids[5];
    for (const id of ids) await producer.publish(envelope(queue, id));

    for (let death = 1; death <= 3; death++) {
      const worker = await NodeTransport.connect(node.url, { reconnectMinMs: 60_000 });
      const { deliveries } = await holdWindow(worker, queue, 16, poison);
      const counts = new Map(deliveries.map((d) => [d.envelope.id, d.deliveryCount]));
      assert.equal(counts.get(poison), death, `the poison is on its delivery ${death}`);
      for (const id of ids)
        if (id !== poison) assert.equal(counts.get(id), 1, `${id} was never started, so never counted`);
      // The process dies: its connection drops without a cancel.
      worker.client.close();
      await within(
        (async () => {
          while ((await producer.stats(queue)).unacked > 0) await new Promise((resolve) => setImmediate(resolve));
        })(),
        5_000,
        "the node to take back the dead consumer's deliveries",
      );
    }

    const survivor = await NodeTransport.connect(node.url);
    t.after(() => survivor.close());
    // The poison went to the back of the queue each time it was begun: it is reached after the others, and dead-lettered.
    const { deliveries } = await holdWindow(survivor, queue, 15, "none", 16);
    await within(
      (async () => {
        while ((await producer.deadLetters(`${queue}.dlq`)).length === 0)
          await new Promise((resolve) => setImmediate(resolve));
      })(),
      5_000,
      "the poison to be dead-lettered",
    );
    assert.deepEqual(deliveries.map((d) => d.envelope.id).sort(), ids.filter((id) => id !== poison).sort());
    assert.ok(
      deliveries.every((d) => !d.redelivered),
      "the healthy messages arrive as first deliveries",
    );
    const letters = await producer.deadLetters(`${queue}.dlq`);
    assert.deepEqual(
      letters.map((letter) => letter.envelope.id),
      [poison],
    );
    assert.match(letters[0].reason, /delivered 3 times without an ack/);
  });

  it("counts every delivery of a consumer that does not mark starts, as before", async () => {
    const broker = createEmbeddedBroker();
    const queue = "plain";
    await broker.declareQueue(queue);
    await broker.publish(envelope(queue, "a"));
    const first: Delivery[] = [];
    const consumer = await broker.consume(queue, (d) => first.push(d), { prefetch: 1 });
    await within(
      (async () => {
        while (first.length === 0) await new Promise((resolve) => setImmediate(resolve));
      })(),
      2_000,
      "the first delivery",
    );
    await consumer.cancel();
    const again: Delivery[] = [];
    await broker.consume(queue, (d) => again.push(d), { prefetch: 1 });
    await within(
      (async () => {
        while (again.length === 0) await new Promise((resolve) => setImmediate(resolve));
      })(),
      2_000,
      "the redelivery",
    );
    assert.equal(again[0].deliveryCount, 2);
    assert.equal(again[0].redelivered, true);
    await broker.close();
  });

  it("takes back an unstarted delivery whose lease ran out without a mark against it", async (t) => {
    const node = await BrokerNode.start({ port: 0, log: () => {} });
    t.after(() => node.stop());
    const queue = `lease-${randomUUID()}`;
    const client = await NodeTransport.connect(node.url);
    t.after(() => client.close());
    await client.publish(envelope(queue, "held"));
    await client.publish(envelope(queue, "begun"));
    // A consumer that stops renewing (its event loop blocked): the node takes both back.
    const seen: Delivery[] = [];
    let consumer: Consumer | undefined;
    consumer = await client.consume(
      queue,
      (d) => {
        seen.push(d);
        if (d.envelope.id === "begun") consumer?.markStarted?.(d.deliveryTag);
      },
      { prefetch: 2, leaseMs: 1, marksStarted: true },
    );
    await within(
      (async () => {
        while (
          !seen.some((d) => d.envelope.id === "begun" && d.deliveryCount >= 3) ||
          !seen.some((d) => d.envelope.id === "held" && d.deliveryCount === 1)
        )
          await new Promise((resolve) => setTimeout(resolve, 5));
      })(),
      5_000,
      "several lease expiries",
      () => JSON.stringify(seen.map((d) => [d.envelope.id, d.deliveryCount])),
    );
    await consumer.cancel();
    for (const d of seen)
      if (d.envelope.id === "held") assert.equal(d.deliveryCount, 1, "the unstarted delivery never counts");
  });

  it("dead-letters a message returned unstarted maxDeliveries x 4 times, so a lost start mark cannot loop for ever", async () => {
    const broker = createEmbeddedBroker();
    const queue = "unstarted";
    await broker.declareQueue(queue, { maxDeliveries: 2 });
    await broker.publish(envelope(queue, "x"));
    for (let round = 1; round <= 8; round++) {
      const got: Delivery[] = [];
      const consumer = await broker.consume(queue, (d) => got.push(d), { prefetch: 1, marksStarted: true });
      await within(
        (async () => {
          while (got.length === 0) await new Promise((resolve) => setImmediate(resolve));
        })(),
        2_000,
        `delivery ${round}`,
      );
      assert.equal(got[0].deliveryCount, 1, "never counted: it was never started");
      await consumer.cancel();
    }
    const late: Delivery[] = [];
    await broker.consume(queue, (d) => late.push(d), { prefetch: 1, marksStarted: true });
    await within(
      (async () => {
        while ((await broker.deadLetters(`${queue}.dlq`)).length === 0)
          await new Promise((resolve) => setImmediate(resolve));
      })(),
      2_000,
      "the dead letter",
    );
    assert.equal(late.length, 0, "not delivered a ninth time");
    const letters = await broker.deadLetters(`${queue}.dlq`);
    assert.match(letters[0].reason, /returned 8 times by consumers that ended without starting it/);
    await broker.close();
  });
});
