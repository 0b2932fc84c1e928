/**
 * What the RabbitMQ transport promises beyond the shared conformance suite:
 * delays and revocations that live in RabbitMQ (not in a process), delivery
 * counts that survive consumers dying, recovery from a cut connection, and
 * RabbitMQ's refusals as the contract's errors. Each test makes its own
 * transports in this file's vhost and closes them, even when it fails.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, describe, it, type TestContext } from "node:test";
import { connect } from "amqplib";
import type { Delivery, Envelope } from "../envelope.ts";
import type { Consumer } from "../transport.ts";
import { AmqpTransport } from "./amqp-transport.ts";
import { CutProxy, testVhost } from "./amqp-test-broker.ts";

const WAIT_MS = 5_000;
const server = await testVhost("transport");

const envelope = (routingKey: string, overrides: Partial<Envelope> = {}): Envelope => ({
  id: randomUUID(),
  exchange: "",
  routingKey,
  priority: 0,
  headers: {},
  body: new Uint8Array([0x90]),
  ...overrides,
});

const name = (prefix: string): string => `${prefix}-${randomUUID().slice(0, 8)}`;

/** Resolves when `check()` holds (checked on every call of the returned `poke`), or fails naming `what` after `ms`. */
const waitUntil = (check: () => boolean, what: string, ms = WAIT_MS): { done: Promise<void>; poke: () => void } => {
  let poke!: () => void;
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    poke = () => {
      if (!check()) return;
      clearTimeout(timer);
      resolve();
    };
  });
  poke();
  return { done, poke };
};

/** A consumer that records what it receives and lets a test wait for a count. */
const record = async (t: AmqpTransport, queue: string, options: { ack?: boolean; prefetch?: number } = {}) => {
  const deliveries: Delivery[] = [];
  const waiters = new Set<() => void>();
  const box: { consumer?: Consumer } = {};
  box.consumer = await t.consume(
    queue,
    (delivery) => {
      deliveries.push(delivery);
      if (options.ack !== false) box.consumer?.ack(delivery.deliveryTag);
      for (const wake of waiters) wake();
    },
    { prefetch: options.prefetch ?? 10 },
  );
  return {
    deliveries,
    consumer: box.consumer,
    async waitFor(count: number, ms = WAIT_MS): Promise<Delivery[]> {
      const { done, poke } = waitUntil(
        () => deliveries.length >= count,
        `${count} deliveries on "${queue}" (got ${deliveries.length})`,
        ms,
      );
      waiters.add(poke);
      try {
        await done;
      } finally {
        waiters.delete(poke);
      }
      return deliveries.slice();
    },
  };
};

if ("skip" in server) {
  it("keeps the RabbitMQ transport's promises", { skip: server.skip }, () => {});
} else {
  after(() => server.dispose());
  const open = async (
    t: TestContext,
    url = server.url,
    queueType: "classic" | "quorum" = "classic",
  ): Promise<AmqpTransport> => {
    const transport = await AmqpTransport.connect(url, {
      log: () => {},
      reconnectInitialMs: 20,
      reconnectMaxMs: 200,
      queueType,
    });
    t.after(() => transport.close());
    return transport;
  };

  describe("amqp transport", () => {
    it("keeps a delayed message in RabbitMQ: it is delivered at its eta after the process that sent it closed", async (t) => {
      const queue = name("delay-held");
      const sender = await open(t);
      const eta = Date.now() + 400;
      const sent = envelope(queue, { eta });
      await sender.publish(sent);
      await sender.close();
      const receiver = await open(t);
      const inbox = await record(receiver, queue);
      const [delivery] = await inbox.waitFor(1);
      assert.equal(delivery.envelope.id, sent.id);
      assert.equal(delivery.envelope.eta, eta);
      assert.ok(Date.now() >= eta, `delivered ${eta - Date.now()} ms early`);
    });

    it("delivers a delayed message through the exchange it was published to, at its eta", async (t) => {
      const transport = await open(t);
      const exchange = name("delayed-topic");
      const queue = name("eu-orders");
      await transport.declareExchange(exchange, "topic");
      await transport.declareQueue(queue);
      await transport.bindQueue(queue, exchange, "orders.eu.*");
      const sent = envelope("orders.eu.created", { exchange, eta: Date.now() + 250 });
      await transport.publish(sent);
      const [delivery] = await (await record(transport, queue)).waitFor(1);
      assert.equal(delivery.envelope.exchange, exchange);
      assert.equal(delivery.envelope.routingKey, "orders.eu.created");
    });

    it("tells a transport connected later about revocations made before it, and drops those messages", async (t) => {
      const queue = name("revoked-early");
      const first = await open(t);
      const revoked = envelope(queue);
      const kept = envelope(queue);
      await first.publish(revoked);
      await first.publish(kept);
      await first.revoke([revoked.id]);
      const later = await open(t);
      assert.equal(later.isRevoked(revoked.id), true);
      const inbox = await record(later, queue);
      await inbox.waitFor(1);
      assert.deepEqual(
        inbox.deliveries.map((d) => d.envelope.id),
        [kept.id],
      );
    });

    it("tells every running transport of a revocation, with terminate", async (t) => {
      const listening = await open(t);
      const revoking = await open(t);
      const heard: [string, boolean][] = [];
      const { done, poke } = waitUntil(() => heard.length === 1, "the revocation to reach the other transport");
      listening.onRevoke((id, { terminate }) => {
        heard.push([id, terminate]);
        poke();
      });
      await revoking.revoke(["task-1"], { terminate: true });
      await done;
      assert.deepEqual(heard, [["task-1", true]]);
      assert.equal(listening.isRevoked("task-1"), true);
    });

    for (const queueType of ["classic", "quorum"] as const) {
      it(`counts deliveries to consumers that died without acking, and dead-letters the message at maxDeliveries (${queueType} queue)`, async (t) => {
        const queue = name(`poison-${queueType}`);
        const sent = envelope(queue);
        const counts: number[] = [];
        for (let attempt = 1; attempt <= 2; attempt++) {
          const doomed = await open(t, server.url, queueType);
          await doomed.declareQueue(queue, { maxDeliveries: 2 });
          if (attempt === 1) await doomed.publish(sent);
          const [delivery] = await (await record(doomed, queue, { ack: false })).waitFor(1);
          counts.push(delivery.deliveryCount);
          await doomed.close(); // as a worker killed mid-task: nothing acked
        }
        const survivor = await open(t, server.url, queueType);
        await survivor.declareQueue(queue, { maxDeliveries: 2 });
        const inbox = await record(survivor, queue);
        const deadline = Date.now() + WAIT_MS;
        let letters = await survivor.deadLetters(`${queue}.dlq`);
        while (letters.length === 0 && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 20));
          letters = await survivor.deadLetters(`${queue}.dlq`);
        }
        assert.deepEqual(counts, [1, 2]);
        assert.equal(letters.length, 1, "dead-lettered after 2 deliveries");
        assert.equal(letters[0].envelope.id, sent.id);
        assert.equal(letters[0].queue, queue);
        assert.match(letters[0].reason, /deliver.*without an acknowledgement/);
        assert.ok(letters[0].at > 0, "dead-lettered at a time");
        assert.equal(inbox.deliveries.length, 0);
      });
    }

    it("resumes consuming on its own after the connection is cut, losing no confirmed message", async (t) => {
      const proxy = await CutProxy.start(server.url);
      t.after(() => proxy.close());
      const queue = name("cut");
      const direct = await open(t);
      const viaProxy = await open(t, proxy.url);
      await direct.declareQueue(queue);
      const seen = new Set<string>();
      const inbox = await record(viaProxy, queue, { prefetch: 5 });
      const sent: string[] = [];
      for (let i = 0; i < 100; i++) {
        const e = envelope(queue);
        sent.push(e.id);
        await direct.publish(e);
        if (i === 30 || i === 60) proxy.cut(200);
      }
      // A publish through the cut connection waits for the next one rather than failing.
      proxy.cut(100);
      const late = envelope(queue);
      sent.push(late.id);
      await viaProxy.publish(late);
      const { done, poke } = waitUntil(
        () => {
          for (const d of inbox.deliveries) seen.add(d.envelope.id);
          return sent.every((id) => seen.has(id));
        },
        "every confirmed message to be delivered after the cuts",
        15_000,
      );
      const timer = setInterval(poke, 20);
      try {
        await done;
      } finally {
        clearInterval(timer);
      }
      assert.ok(proxy.connections >= 1, "reconnected through the proxy");
    });

    it("settles acks made out of order across turns without losing the consumer or redelivering", async (t) => {
      const transport = await open(t);
      const queue = name("out-of-order");
      for (let i = 0; i < 5; i++) await transport.publish(envelope(queue));
      const inbox = await record(transport, queue, { ack: false, prefetch: 10 });
      const deliveries = await inbox.waitFor(5);
      for (const i of [0, 1, 3, 4]) inbox.consumer.ack(deliveries[i].deliveryTag);
      await new Promise((resolve) => setImmediate(resolve));
      inbox.consumer.ack(deliveries[2].deliveryTag);
      const marker = envelope(queue);
      await transport.publish(marker);
      const [, , , , , sixth] = await inbox.waitFor(6);
      assert.equal(sixth.envelope.id, marker.id);
      assert.equal(sixth.deliveryCount, 1, "the consumer's channel survived: nothing was redelivered");
      inbox.consumer.ack(sixth.deliveryTag);
      assert.deepEqual(await transport.stats(queue), { ready: 0, delayed: 0, unacked: 0, consumers: 1 });
    });

    it("fails to connect to a server that is not there within its timeout, naming the url without its password", async () => {
      const started = Date.now();
      await assert.rejects(
        AmqpTransport.connect("amqp://guest:secret@127.0.0.1:1/", {
          log: () => {},
          connectTimeoutMs: 300,
          reconnectInitialMs: 20,
          reconnectMaxMs: 50,
        }),
        (error: Error & { _tag?: string }) => {
          assert.equal(error._tag, "AmqpConnectionError");
          assert.match(
            error.message,
            /RabbitMQ at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:1\/ is unreachable: not ready within 300 ms; last error: .*ECONNREFUSED/,
          );
          return true;
        },
      );
      assert.ok(Date.now() - started < 5_000);
    });

    it("refuses to declare a queue that exists with other settings, naming it and the difference", async (t) => {
      const queue = name("conflict");
      const raw = await connect(server.url);
      t.after(() => raw.close());
      const channel = await raw.createChannel();
      await channel.assertQueue(queue, { durable: true, arguments: { "x-max-priority": 3 } });
      const transport = await open(t);
      await assert.rejects(transport.declareQueue(queue), (error: Error & { _tag?: string }) => {
        assert.equal(error._tag, "DeclarationConflictError");
        assert.match(error.message, new RegExp(`queue "${queue}" is already declared differently: .*x-max-priority`));
        return true;
      });
      // The refusal closed only a channel of its own: the transport still works.
      await transport.publish(envelope(queue));
      assert.equal((await transport.stats(queue)).ready, 1);
    });

    it("rejects bad arguments with errors naming them, and settles a delivery only once", async (t) => {
      const transport = await open(t);
      const queue = name("bad-input");
      await assert.rejects(
        transport.consume(queue, () => {}, { prefetch: 0 }),
        /invalid prefetch: must be an integer of at least 1, got 0/,
      );
      await assert.rejects(
        transport.publish(envelope(queue, { eta: Date.now() + 2 ** 40 })),
        /invalid eta: a delay must be between/,
      );
      await assert.rejects(transport.publish(envelope(queue, { id: "" })), /invalid envelope id/);
      await assert.rejects(
        transport.declareQueue(queue, { deadLetterQueue: queue }),
        /cannot be its own dead-letter queue/,
      );
      await assert.rejects(transport.stats(name("never-declared")), /is not declared/);
      await transport.publish(envelope(queue));
      const inbox = await record(transport, queue, { ack: false });
      const [delivery] = await inbox.waitFor(1);
      inbox.consumer.ack(delivery.deliveryTag);
      assert.throws(() => inbox.consumer.ack(delivery.deliveryTag), /cannot ack delivery 1 .*already settled/);
      assert.throws(() => inbox.consumer.nack(99, { requeue: true }), /cannot nack delivery 99 .*no such delivery/);
    });
  });
}
