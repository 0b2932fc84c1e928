// The queue-management suite every transport implementing QueueAdmin runs (registered
// with node:test): pause and resume, purge, listing, dead-letter requeue and discard.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, it } from "node:test";
import type { Delivery, Envelope } from "./envelope.ts";
import type { QueueAdmin } from "./queue-admin.ts";
import type { Consumer, Transport } from "./transport.ts";

const WAIT_MS = 2_000;

/**
 * Registers, with `node:test`, the tests every transport that manages queues
 * (QueueAdmin) must pass: pause and resume, purge, listing with depths,
 * dead-letter requeue and discard, and auto-delete queues. `make` is called
 * once per test for a fresh transport, closed when the test ends.
 *
 * @example
 * queueAdminConformance("embedded", () => createEmbeddedBroker());
 */
export function queueAdminConformance(
  name: string,
  make: () => Promise<Transport & QueueAdmin> | (Transport & QueueAdmin),
): void {
  const withTransport = async (test: (transport: Transport & QueueAdmin) => Promise<void>): Promise<void> => {
    const transport = await make();
    try {
      await test(transport);
    } finally {
      await transport.close();
    }
  };

  describe(`${name} queue management conformance`, () => {
    it("holds messages in a paused queue and delivers them once it is resumed", () =>
      withTransport(async (t) => {
        const paused = uniqueName("paused");
        const other = uniqueName("other");
        await t.declareQueue(paused);
        await t.pause(paused);
        const held = await collect(t, paused);
        const control = await collect(t, other);
        await t.publish(envelope(paused));
        await t.publish(envelope(other));
        // The other queue's delivery shows the broker has delivered what it would.
        await control.waitFor(1);
        assert.equal(held.deliveries.length, 0);
        assert.equal((await t.stats(paused)).ready, 1);
        assert.equal((await t.listQueues()).find((q) => q.name === paused)?.paused, true);
        await t.resume(paused);
        await held.waitFor(1);
        assert.equal((await t.listQueues()).find((q) => q.name === paused)?.paused, false);
      }));

    it("creates a queue paused when it is paused before it is declared", () =>
      withTransport(async (t) => {
        const queue = uniqueName("early-pause");
        await t.pause(queue);
        await t.publish(envelope(queue));
        const info = (await t.listQueues()).find((q) => q.name === queue);
        assert.deepEqual([info?.paused, info?.ready], [true, 1]);
      }));

    it("purges ready and delayed messages, leaving those a consumer holds, and says how many", () =>
      withTransport(async (t) => {
        const queue = uniqueName("purge");
        await t.declareQueue(queue);
        const inbox = await collect(t, queue, 1, () => {}); // held, never settled
        await t.publish(envelope(queue));
        await inbox.waitFor(1);
        await t.publish(envelope(queue));
        await t.publish(envelope(queue));
        await t.publish(envelope(queue, { eta: Date.now() + 60_000 }));
        assert.equal(await t.purge(queue), 3);
        assert.deepEqual(await t.stats(queue), { ready: 0, delayed: 0, unacked: 1, consumers: 1 });
      }));

    it("refuses to purge a queue it does not hold, naming it", () =>
      withTransport(async (t) => {
        const queue = uniqueName("missing");
        await assert.rejects(t.purge(queue), new RegExp(`queue "${queue}" is not declared`));
      }));

    it("lists every queue with its depths and its dead-letter queue", () =>
      withTransport(async (t) => {
        const queue = uniqueName("listed");
        await t.declareQueue(queue);
        await t.publish(envelope(queue));
        await t.publish(envelope(queue, { eta: Date.now() + 60_000 }));
        const queues = await t.listQueues();
        const info = queues.find((q) => q.name === queue);
        assert.deepEqual(info, {
          name: queue,
          ready: 1,
          delayed: 1,
          unacked: 0,
          consumers: 0,
          paused: false,
          deadLetterQueue: `${queue}.dlq`,
          isDeadLetterQueue: false,
          autoDelete: false,
        });
        assert.equal(queues.find((q) => q.name === `${queue}.dlq`)?.isDeadLetterQueue, true);
      }));

    it("requeues chosen dead letters to the queue they came from, where they are delivered afresh", () =>
      withTransport(async (t) => {
        const queue = uniqueName("requeue-dead");
        await t.declareQueue(queue);
        const first = envelope(queue);
        const second = envelope(queue);
        let seen = 0;
        const inbox = await collect(t, queue, 2, (delivery, consumer) => {
          if (++seen <= 2) consumer.nack(delivery.deliveryTag, { requeue: false, reason: "bad" });
          else consumer.ack(delivery.deliveryTag);
        });
        await t.publish(first);
        await t.publish(second);
        await eventuallyDeadLetters(t, queue, 2);
        assert.equal(await t.requeueDeadLetters(queue, [second.id]), 1);
        const [, , again] = await inbox.waitFor(3);
        assert.equal(again.envelope.id, second.id);
        assert.equal(again.deliveryCount, 1);
        assert.deepEqual(
          (await t.deadLetters(queue)).map((l) => l.envelope.id),
          [first.id],
        );
        assert.equal(await t.requeueDeadLetters(`${queue}.dlq`), 1);
        const [, , , last] = await inbox.waitFor(4);
        assert.equal(last.envelope.id, first.id);
        assert.equal(await t.requeueDeadLetters(queue), 0);
      }));

    it("discards dead letters for good", () =>
      withTransport(async (t) => {
        const queue = uniqueName("discard-dead");
        await t.declareQueue(queue);
        await collect(t, queue, 2, (delivery, consumer) =>
          consumer.nack(delivery.deliveryTag, { requeue: false, reason: "bad" }),
        );
        await t.publish(envelope(queue));
        await t.publish(envelope(queue));
        await eventuallyDeadLetters(t, queue, 2);
        assert.equal(await t.discardDeadLetters(queue), 2);
        assert.deepEqual(await t.deadLetters(queue), []);
        await assert.rejects(t.discardDeadLetters(queue, "x" as unknown as string[]), /ids/);
      }));

    it("deletes an auto-delete queue and its bindings when its last consumer cancels", () =>
      withTransport(async (t) => {
        const exchange = uniqueName("fan");
        const queue = uniqueName("transient");
        await t.declareExchange(exchange, "fanout");
        await t.declareQueue(queue, { autoDelete: true });
        await t.bindQueue(queue, exchange, "");
        const inbox = await collect(t, queue);
        await t.publish(envelope("any", { exchange }), { mandatory: true });
        await inbox.waitFor(1);
        await inbox.consumer.cancel();
        await eventually(
          async () => !(await t.listQueues()).some((q) => q.name === queue),
          "the auto-delete queue to go",
        );
        await assert.rejects(
          t.publish(envelope("any", { exchange }), { mandatory: true }),
          /routes routing key "any" to no queue/,
        );
      }));

    it("drops what an auto-delete queue rejects instead of keeping a dead-letter queue for it", () =>
      withTransport(async (t) => {
        const queue = uniqueName("transient-reject");
        await t.declareQueue(queue, { autoDelete: true });
        const inbox = await collect(t, queue, 1, (delivery, consumer) =>
          consumer.nack(delivery.deliveryTag, { requeue: false, reason: "no" }),
        );
        await t.publish(envelope(queue));
        await inbox.waitFor(1);
        const queues = await t.listQueues();
        assert.equal(queues.find((q) => q.name === queue)?.autoDelete, true);
        assert.equal(queues.find((q) => q.name === queue)?.ready, 0);
        assert.equal(
          queues.some((q) => q.name === `${queue}.dlq`),
          false,
        );
      }));
  });
}

interface Collector {
  readonly deliveries: Delivery[];
  readonly consumer: Consumer;
  waitFor(count: number): Promise<Delivery[]>;
}

/** Consume `queue`, recording deliveries (acked at once unless `react` settles them). */
const collect = async (
  transport: Transport,
  queue: string,
  prefetch = 10,
  react: (delivery: Delivery, consumer: Consumer) => void = (delivery, consumer) => consumer.ack(delivery.deliveryTag),
): Promise<Collector> => {
  const deliveries: Delivery[] = [];
  const waiters = new Set<() => void>();
  const early: Delivery[] = [];
  let consumer: Consumer | undefined;
  const handler = (delivery: Delivery) => {
    deliveries.push(delivery);
    if (consumer === undefined) early.push(delivery);
    else react(delivery, consumer);
    for (const wake of waiters) wake();
  };
  consumer = await transport.consume(queue, handler, { prefetch });
  for (const delivery of early.splice(0)) react(delivery, consumer);
  const attached = consumer;
  return {
    deliveries,
    consumer: attached,
    waitFor: (count) =>
      new Promise((resolve, reject) => {
        const wake = () => {
          if (deliveries.length < count) return;
          clearTimeout(timer);
          waiters.delete(wake);
          resolve(deliveries.slice());
        };
        const timer = setTimeout(() => {
          waiters.delete(wake);
          reject(
            new Error(
              `timed out after ${WAIT_MS} ms waiting for ${count} deliveries on "${queue}"; got ${deliveries.length}`,
            ),
          );
        }, WAIT_MS);
        waiters.add(wake);
        wake();
      }),
  };
};

const eventually = async (predicate: () => Promise<boolean>, what: string): Promise<void> => {
  const deadline = Date.now() + WAIT_MS;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${WAIT_MS} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
};

const eventuallyDeadLetters = async (transport: Transport, queue: string, count: number) => {
  let letters = await transport.deadLetters(queue);
  await eventually(
    async () => (letters = await transport.deadLetters(queue)).length >= count,
    `${count} dead letters of "${queue}"`,
  );
  return letters;
};

const uniqueName = (prefix: string): string => `${prefix}-${randomUUID().slice(0, 8)}`;

const envelope = (routingKey: string, overrides: Partial<Envelope> = {}): Envelope => ({
  id: randomUUID(),
  exchange: "",
  routingKey,
  priority: 0,
  headers: {},
  body: new Uint8Array([0x90]),
  ...overrides,
});
