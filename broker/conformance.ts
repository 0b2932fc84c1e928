// The contract suite every Transport runs (registered with node:test): delivery and
// ordering, prefetch, acks, dead letters, delays, expiry, revocation, exchange routing.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, it } from "node:test";
import type { Delivery, Envelope } from "./envelope.ts";
import type { Consumer, Transport } from "./transport.ts";
import { ExchangeNotFoundError, InvalidArgumentError, UnroutableError } from "./errors.ts";

const WAIT_MS = 2_000;

/** What a transport (in some configuration) does not do, each with the reason, shown as a skipped test. */
export interface ConformanceOptions {
  readonly unsupported?: {
    /** Ordering by priority. */
    readonly priorities?: string;
    /** Delivering close etas (a couple of hundred ms apart) in eta order. */
    readonly etaOrder?: string;
  };
}

/**
 * Registers, with `node:test`, the tests every Transport must pass: delivery
 * and ordering, prefetch, ack / nack / cancel, dead-lettering, delayed
 * delivery, expiry, revocation and exchange routing. `make` is called once per
 * test for a fresh transport, which the test closes when done. Timing checks
 * use `Date.now`, so the transport must run on the real clock.
 *
 * @example
 * // broker/embedded/embedded-broker.test.ts
 * transportConformance("embedded", () => createEmbeddedBroker());
 */
export function transportConformance(
  name: string,
  make: () => Promise<Transport> | Transport,
  options: ConformanceOptions = {},
): void {
  const withTransport = async (test: (transport: Transport) => Promise<void>): Promise<void> => {
    const transport = await make();
    try {
      await test(transport);
    } finally {
      await transport.close();
    }
  };

  describe(`${name} transport conformance`, () => {
    describe("delivery", () => {
      it("delivers a published message to a consumer of its queue, unchanged", () =>
        withTransport(async (t) => {
          const queue = uniqueName("roundtrip");
          await t.declareQueue(queue);
          const sent = envelope(queue, {
            headers: { task: "add", retries: 2, eager: false, parent: null },
            body: new Uint8Array([1, 2, 3]),
          });
          await t.publish(sent);
          const inbox = await subscribe(t, queue, { prefetch: 1 });
          const [delivery] = await inbox.waitFor(1);
          assert.equal(delivery.queue, queue);
          assert.equal(delivery.redelivered, false);
          assert.equal(delivery.deliveryCount, 1);
          assert.equal(typeof delivery.deliveryTag, "number");
          assert.equal(delivery.envelope.id, sent.id);
          assert.equal(delivery.envelope.exchange, "");
          assert.equal(delivery.envelope.routingKey, queue);
          assert.equal(delivery.envelope.priority, 0);
          assert.deepEqual({ ...delivery.envelope.headers }, { ...sent.headers });
          assert.deepEqual([...delivery.envelope.body], [1, 2, 3]);
        }));

      it("declares a queue on first publish to the default exchange", () =>
        withTransport(async (t) => {
          const queue = uniqueName("implicit");
          await t.publish(envelope(queue));
          assert.deepEqual(await t.stats(queue), { ready: 1, delayed: 0, unacked: 0, consumers: 0 });
        }));

      it("calls the handler only after consume has resolved, so the handler can use its consumer", () =>
        withTransport(async (t) => {
          const queue = uniqueName("early");
          await t.publish(envelope(queue));
          const seen: boolean[] = [];
          const ref: { consumer?: Consumer } = {};
          let delivered!: () => void;
          const arrived = new Promise<void>((resolve) => (delivered = resolve));
          ref.consumer = await t.consume(
            queue,
            (d) => {
              seen.push(ref.consumer !== undefined);
              ref.consumer?.ack(d.deliveryTag);
              delivered();
            },
            { prefetch: 1 },
          );
          await withTimeout(arrived, "the first delivery");
          assert.deepEqual(seen, [true]);
        }));

      it("delivers messages of one priority in the order they were published", () =>
        withTransport(async (t) => {
          const queue = uniqueName("fifo");
          const sent = Array.from({ length: 20 }, () => envelope(queue));
          for (const e of sent) await t.publish(e);
          const inbox = await subscribe(t, queue, { prefetch: 1, autoAck: true });
          await inbox.waitFor(sent.length);
          assert.deepEqual(
            inbox.ids(),
            sent.map((e) => e.id),
          );
        }));

      it(
        "delivers higher priorities first (9 before 0) and keeps publish order within a priority",
        { skip: options.unsupported?.priorities },
        () =>
          withTransport(async (t) => {
            const queue = uniqueName("priority");
            const sent = [0, 5, 9, 5, 0, 9, 1].map((priority, i) => envelope(queue, { priority, headers: { i } }));
            for (const e of sent) await t.publish(e);
            const inbox = await subscribe(t, queue, { prefetch: 1, autoAck: true });
            await inbox.waitFor(sent.length);
            assert.deepEqual(
              inbox.deliveries.map((d) => [d.envelope.priority, d.envelope.headers.i]),
              [
                [9, 2],
                [9, 5],
                [5, 1],
                [5, 3],
                [1, 6],
                [0, 0],
                [0, 4],
              ],
            );
          }),
      );

      it("never has more than prefetch unacknowledged deliveries outstanding", () =>
        withTransport(async (t) => {
          const queue = uniqueName("prefetch");
          for (let i = 0; i < 5; i++) await t.publish(envelope(queue));
          const inbox = await subscribe(t, queue, { prefetch: 2 });
          const first = await inbox.waitFor(2);
          assert.deepEqual(await t.stats(queue), { ready: 3, delayed: 0, unacked: 2, consumers: 1 });
          assert.equal(inbox.deliveries.length, 2);
          inbox.consumer.ack(first[0].deliveryTag);
          await inbox.waitFor(3);
          assert.deepEqual(await t.stats(queue), { ready: 2, delayed: 0, unacked: 2, consumers: 1 });
          assert.equal(inbox.deliveries.length, 3);
        }));

      it("never redelivers an acknowledged message", () =>
        withTransport(async (t) => {
          const queue = uniqueName("ack");
          const acked = envelope(queue);
          await t.publish(acked);
          const first = await subscribe(t, queue, { prefetch: 1 });
          const [delivery] = await first.waitFor(1);
          first.consumer.ack(delivery.deliveryTag);
          assert.deepEqual(await t.stats(queue), { ready: 0, delayed: 0, unacked: 0, consumers: 1 });
          await first.consumer.cancel();
          const marker = envelope(queue);
          await t.publish(marker);
          const second = await subscribe(t, queue, { prefetch: 5 });
          await second.waitFor(1);
          assert.deepEqual(second.ids(), [marker.id]);
        }));
    });

    describe("nack, cancel and dead letters", () => {
      it("redelivers a message nacked with requeue, marked redelivered with deliveryCount 2", () =>
        withTransport(async (t) => {
          const queue = uniqueName("requeue");
          const sent = envelope(queue);
          await t.publish(sent);
          const inbox = await subscribe(t, queue, { prefetch: 1 });
          const [first] = await inbox.waitFor(1);
          assert.equal(first.redelivered, false);
          inbox.consumer.nack(first.deliveryTag, { requeue: true });
          const [, second] = await inbox.waitFor(2);
          assert.equal(second.envelope.id, sent.id);
          assert.equal(second.redelivered, true);
          assert.equal(second.deliveryCount, 2);
        }));

      it("dead-letters a message nacked without requeue, keeping the reason", () =>
        withTransport(async (t) => {
          const queue = uniqueName("reject");
          await t.declareQueue(queue);
          const sent = envelope(queue);
          await t.publish(sent);
          const inbox = await subscribe(t, queue, { prefetch: 1 });
          const [delivery] = await inbox.waitFor(1);
          inbox.consumer.nack(delivery.deliveryTag, { requeue: false, reason: "unknown task 'nope'" });
          const [letter] = await eventuallyDeadLetters(t, `${queue}.dlq`, 1);
          assert.equal(letter.envelope.id, sent.id);
          assert.equal(letter.queue, queue);
          assert.equal(letter.reason, "unknown task 'nope'");
          assert.equal(typeof letter.at, "number");
          assert.deepEqual(await t.stats(queue), { ready: 0, delayed: 0, unacked: 0, consumers: 1 });
        }));

      it("lets a consumer of the dead-letter queue receive dead-lettered messages", () =>
        withTransport(async (t) => {
          const queue = uniqueName("dlq-consume");
          await t.declareQueue(queue);
          const sent = envelope(queue);
          await t.publish(sent);
          const inbox = await subscribe(t, queue, { prefetch: 1 });
          const [delivery] = await inbox.waitFor(1);
          inbox.consumer.nack(delivery.deliveryTag, { requeue: false, reason: "bad input" });
          const dead = await subscribe(t, `${queue}.dlq`, { prefetch: 1 });
          const [letter] = await dead.waitFor(1);
          assert.equal(letter.envelope.id, sent.id);
        }));

      it("redelivers an unacked message to another consumer when its consumer cancels", () =>
        withTransport(async (t) => {
          const queue = uniqueName("cancel");
          const sent = envelope(queue);
          await t.publish(sent);
          const first = await subscribe(t, queue, { prefetch: 1 });
          await first.waitFor(1);
          const second = await subscribe(t, queue, { prefetch: 1 });
          await first.consumer.cancel();
          const [delivery] = await second.waitFor(1);
          assert.equal(delivery.envelope.id, sent.id);
          assert.equal(delivery.redelivered, true);
          assert.equal(delivery.deliveryCount, 2);
          assert.equal(first.deliveries.length, 1);
        }));

      it("dead-letters a message delivered maxDeliveries times without an ack", () =>
        withTransport(async (t) => {
          const queue = uniqueName("max-deliveries");
          await t.declareQueue(queue, { maxDeliveries: 2 });
          const sent = envelope(queue);
          await t.publish(sent);
          const inbox = await subscribe(t, queue, {
            prefetch: 1,
            onDelivery: (d, consumer) => consumer.nack(d.deliveryTag, { requeue: true }),
          });
          const [letter] = await eventuallyDeadLetters(t, `${queue}.dlq`, 1);
          assert.equal(letter.envelope.id, sent.id);
          assert.match(letter.reason, /deliver/i);
          assert.deepEqual(
            inbox.deliveries.map((d) => d.deliveryCount),
            [1, 2],
          );
        }));
    });

    describe("delay, expiry and revocation", () => {
      it("holds a message with a future eta until the eta, then delivers it", () =>
        withTransport(async (t) => {
          const queue = uniqueName("eta");
          await t.declareQueue(queue);
          // Far enough ahead that a confirm waiting on a loaded disk still returns before it.
          const eta = Date.now() + 300;
          await t.publish(envelope(queue, { eta }));
          const stats = await t.stats(queue);
          // Stats read before the eta must show the message held; on a disk slow enough to confirm after the eta there is nothing to assert.
          if (Date.now() < eta) assert.deepEqual(stats, { ready: 0, delayed: 1, unacked: 0, consumers: 0 });
          const inbox = await subscribe(t, queue, { prefetch: 1 });
          await inbox.waitFor(1);
          assert.ok(Date.now() >= eta, `delivered ${eta - Date.now()} ms before its eta`);
        }));

      it("delivers delayed messages in eta order, not publish order", { skip: options.unsupported?.etaOrder }, () =>
        withTransport(async (t) => {
          const queue = uniqueName("eta-order");
          // Far enough apart that a loaded machine publishing both still beats the later eta.
          const later = envelope(queue, { eta: Date.now() + 1_000 });
          const sooner = envelope(queue, { eta: Date.now() + 400 });
          await t.publish(later);
          await t.publish(sooner);
          const publishedBoth = Date.now();
          const inbox = await subscribe(t, queue, { prefetch: 2 });
          await inbox.waitFor(2);
          // Published only after the later eta had passed (a machine too loaded for the margin): both were due at once.
          if (publishedBoth >= (later.eta as number))
            assert.deepEqual(new Set(inbox.ids()), new Set([sooner.id, later.id]));
          else assert.deepEqual(inbox.ids(), [sooner.id, later.id]);
        }),
      );

      it('dead-letters a message whose expiry has passed, with reason "expired", instead of delivering it', () =>
        withTransport(async (t) => {
          const queue = uniqueName("expires");
          await t.declareQueue(queue);
          const expired = envelope(queue, { expires: Date.now() - 1_000 });
          const fresh = envelope(queue, { expires: Date.now() + 60_000 });
          await t.publish(expired);
          await t.publish(fresh);
          const inbox = await subscribe(t, queue, { prefetch: 5 });
          await inbox.waitFor(1);
          assert.deepEqual(inbox.ids(), [fresh.id]);
          const [letter] = await eventuallyDeadLetters(t, `${queue}.dlq`, 1);
          assert.equal(letter.envelope.id, expired.id);
          assert.equal(letter.reason, "expired");
        }));

      it("never delivers a message revoked while it waits in its queue, nor dead-letters it", () =>
        withTransport(async (t) => {
          const queue = uniqueName("revoke-queued");
          await t.declareQueue(queue);
          const revoked = envelope(queue);
          const kept = envelope(queue);
          await t.publish(revoked);
          await t.publish(kept);
          await t.revoke([revoked.id]);
          const inbox = await subscribe(t, queue, { prefetch: 5 });
          await inbox.waitFor(1);
          assert.deepEqual(inbox.ids(), [kept.id]);
          assert.deepEqual(await t.deadLetters(`${queue}.dlq`), []);
        }));

      it("never delivers a delayed message revoked before its eta", () =>
        withTransport(async (t) => {
          const queue = uniqueName("revoke-delayed");
          await t.declareQueue(queue);
          // The revocation must land before the eta even on a loaded machine over a network transport.
          const revoked = envelope(queue, { eta: Date.now() + 300 });
          const kept = envelope(queue, { eta: Date.now() + 400 });
          await t.publish(revoked);
          await t.publish(kept);
          await t.revoke([revoked.id]);
          const inbox = await subscribe(t, queue, { prefetch: 5 });
          await inbox.waitFor(1);
          assert.deepEqual(inbox.ids(), [kept.id]);
          assert.deepEqual(await t.deadLetters(`${queue}.dlq`), []);
        }));

      it("reports revocations through isRevoked and to onRevoke listeners until they unsubscribe", () =>
        withTransport(async (t) => {
          const heard: [string, boolean][] = [];
          const unsubscribe = t.onRevoke((id, { terminate }) => heard.push([id, terminate]));
          assert.equal(t.isRevoked("never-revoked"), false);
          await t.revoke(["a", "b"]);
          await t.revoke(["c"], { terminate: true });
          assert.equal(t.isRevoked("a"), true);
          assert.equal(t.isRevoked("c"), true);
          assert.deepEqual(heard, [
            ["a", false],
            ["b", false],
            ["c", true],
          ]);
          unsubscribe();
          await t.revoke(["d"]);
          assert.equal(t.isRevoked("d"), true);
          assert.equal(heard.length, 3);
        }));
    });

    describe("exchanges", () => {
      it("routes a topic exchange with * matching exactly one word and # matching zero or more", () =>
        withTransport(async (t) => {
          const exchange = uniqueName("topic");
          const [one, any, suffix] = ["one", "any", "suffix"].map((q) => uniqueName(q));
          await t.declareExchange(exchange, "topic");
          for (const q of [one, any, suffix]) await t.declareQueue(q);
          await t.bindQueue(one, exchange, "orders.*");
          await t.bindQueue(any, exchange, "orders.#");
          await t.bindQueue(suffix, exchange, "#.created");
          for (const key of ["orders.eu", "orders.eu.created", "orders", "invoices.created", "invoices.eu"]) {
            await t.publish(envelope(key, { exchange }));
          }
          assert.equal((await t.stats(one)).ready, 1); // orders.eu
          assert.equal((await t.stats(any)).ready, 3); // orders.eu, orders.eu.created, orders
          assert.equal((await t.stats(suffix)).ready, 2); // orders.eu.created, invoices.created
        }));

      it("routes a fanout exchange to every bound queue whatever the routing key", () =>
        withTransport(async (t) => {
          const exchange = uniqueName("fanout");
          const queues = ["a", "b", "c"].map((q) => uniqueName(q));
          await t.declareExchange(exchange, "fanout");
          for (const q of queues) {
            await t.declareQueue(q);
            await t.bindQueue(q, exchange, "");
          }
          await t.publish(envelope("anything", { exchange }));
          for (const q of queues) assert.equal((await t.stats(q)).ready, 1, q);
        }));

      it("routes a direct exchange by exact routing key", () =>
        withTransport(async (t) => {
          const exchange = uniqueName("direct");
          const [red, blue] = [uniqueName("red"), uniqueName("blue")];
          await t.declareExchange(exchange, "direct");
          await t.declareQueue(red);
          await t.declareQueue(blue);
          await t.bindQueue(red, exchange, "red");
          await t.bindQueue(blue, exchange, "blue");
          await t.publish(envelope("red", { exchange }));
          await t.publish(envelope("red.dark", { exchange }));
          assert.equal((await t.stats(red)).ready, 1);
          assert.equal((await t.stats(blue)).ready, 0);
        }));

      it("drops a message its exchange routes to no queue, and still confirms the publish", () =>
        withTransport(async (t) => {
          const exchange = uniqueName("unroutable");
          const queue = uniqueName("bound");
          await t.declareExchange(exchange, "direct");
          await t.declareQueue(queue);
          await t.bindQueue(queue, exchange, "known");
          await t.publish(envelope("unknown", { exchange }));
          assert.equal((await t.stats(queue)).ready, 0);
        }));

      it("refuses a mandatory message its exchange routes to no queue, naming the exchange and key", () =>
        withTransport(async (t) => {
          const exchange = uniqueName("mandatory");
          await t.declareExchange(exchange, "topic");
          await assert.rejects(
            t.publish(envelope("nobody.listens", { exchange }), { mandatory: true }),
            (error: Error) => {
              assert.ok(error.message.includes(exchange) && error.message.includes("nobody.listens"), error.message);
              return true;
            },
          );
        }));

      it("rejects publishing to an exchange that was never declared, naming it", () =>
        withTransport(async (t) => {
          const exchange = uniqueName("missing");
          await assert.rejects(t.publish(envelope("key", { exchange })), (error: Error) => {
            assert.ok(error.message.includes(exchange), error.message);
            return true;
          });
        }));

      it("treats declaring a queue or exchange again as a no-op that keeps queued messages", () =>
        withTransport(async (t) => {
          const queue = uniqueName("redeclare");
          const exchange = uniqueName("redeclare-ex");
          await t.declareQueue(queue);
          await t.declareExchange(exchange, "topic");
          await t.bindQueue(queue, exchange, "#");
          await t.publish(envelope("x", { exchange }));
          await t.declareQueue(queue);
          await t.declareExchange(exchange, "topic");
          await t.bindQueue(queue, exchange, "#");
          assert.equal((await t.stats(queue)).ready, 1);
          await t.publish(envelope("y", { exchange }));
          assert.equal((await t.stats(queue)).ready, 2);
        }));
    });

    describe("errors", () => {
      // The same mistake raises the same class with the same fields on every transport, local or remote.
      it("raises UnroutableError, with the exchange and key, for a mandatory message routed nowhere", () =>
        withTransport(async (t) => {
          const exchange = uniqueName("mandatory-class");
          await t.declareExchange(exchange, "direct");
          await assert.rejects(t.publish(envelope("nowhere", { exchange }), { mandatory: true }), (error: unknown) => {
            assert.ok(error instanceof UnroutableError, `an UnroutableError, got ${String(error)}`);
            assert.equal(error.exchange, exchange);
            assert.equal(error.routingKey, "nowhere");
            return true;
          });
        }));

      it("raises ExchangeNotFoundError, with the exchange, for a publish to an undeclared exchange", () =>
        withTransport(async (t) => {
          const exchange = uniqueName("missing-class");
          await assert.rejects(t.publish(envelope("key", { exchange })), (error: unknown) => {
            assert.ok(error instanceof ExchangeNotFoundError, `an ExchangeNotFoundError, got ${String(error)}`);
            assert.equal(error.exchange, exchange);
            return true;
          });
        }));

      it("raises InvalidArgumentError, naming the argument, for a prefetch below 1", () =>
        withTransport(async (t) => {
          const queue = uniqueName("bad-prefetch");
          await t.declareQueue(queue);
          await assert.rejects(
            t.consume(queue, () => {}, { prefetch: 0 }),
            (error: unknown) => {
              assert.ok(error instanceof InvalidArgumentError, `an InvalidArgumentError, got ${String(error)}`);
              assert.match(error.argument, /prefetch/);
              return true;
            },
          );
        }));
    });

    describe("close", () => {
      it("rejects publish and consume once closed", async () => {
        const t = await make();
        const queue = uniqueName("closed");
        await t.declareQueue(queue);
        await t.close();
        await assert.rejects(t.publish(envelope(queue)), /closed/);
        await assert.rejects(
          t.consume(queue, () => {}, { prefetch: 1 }),
          /closed/,
        );
      });
    });
  });
}

interface InboxOptions {
  readonly prefetch: number;
  /** Ack every delivery as it arrives. */
  readonly autoAck?: boolean;
  /** Called with each delivery after it is recorded. */
  readonly onDelivery?: (delivery: Delivery, consumer: Consumer) => void;
}

/** Records a consumer's deliveries and lets a test wait for them. */
class Inbox {
  readonly deliveries: Delivery[] = [];
  private attached: Consumer | undefined;
  private early: Delivery[] = [];
  private readonly waiters = new Set<() => void>();

  constructor(
    readonly queue: string,
    private readonly options: InboxOptions,
  ) {}

  get consumer(): Consumer {
    if (this.attached === undefined) throw new Error(`the consumer of "${this.queue}" is not attached yet`);
    return this.attached;
  }

  readonly handler = (delivery: Delivery): void => {
    this.deliveries.push(delivery);
    if (this.attached === undefined) this.early.push(delivery);
    else this.react(delivery, this.attached);
    for (const wake of this.waiters) wake();
  };

  attach(consumer: Consumer): void {
    this.attached = consumer;
    const early = this.early;
    this.early = [];
    for (const delivery of early) this.react(delivery, consumer);
  }

  ids(): string[] {
    return this.deliveries.map((d) => d.envelope.id);
  }

  /** Resolves with the deliveries once there are at least `count`; fails loudly after `timeoutMs`. */
  waitFor(count: number, timeoutMs = WAIT_MS): Promise<Delivery[]> {
    if (this.deliveries.length >= count) return Promise.resolve(this.deliveries.slice());
    return new Promise((resolve, reject) => {
      const wake = (): void => {
        if (this.deliveries.length < count) return;
        clearTimeout(timer);
        this.waiters.delete(wake);
        resolve(this.deliveries.slice());
      };
      const timer = setTimeout(() => {
        this.waiters.delete(wake);
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for ${count} deliveries on "${this.queue}"; got ${this.deliveries.length}: ${JSON.stringify(this.ids())}`,
          ),
        );
      }, timeoutMs);
      this.waiters.add(wake);
    });
  }

  private react(delivery: Delivery, consumer: Consumer): void {
    if (this.options.autoAck) consumer.ack(delivery.deliveryTag);
    this.options.onDelivery?.(delivery, consumer);
  }
}

const subscribe = async (transport: Transport, queue: string, options: InboxOptions): Promise<Inbox> => {
  const inbox = new Inbox(queue, options);
  inbox.attach(await transport.consume(queue, inbox.handler, { prefetch: options.prefetch }));
  return inbox;
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

const withTimeout = <T>(promise: Promise<T>, what: string, timeoutMs = WAIT_MS): Promise<T> => {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
};

/** Polls the dead-letter queue until it holds `count` messages; a transport may dead-letter asynchronously. */
const eventuallyDeadLetters = async (
  transport: Transport,
  deadLetterQueue: string,
  count: number,
  timeoutMs = WAIT_MS,
) => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const letters = await transport.deadLetters(deadLetterQueue);
    if (letters.length >= count) return letters;
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${count} dead letters in "${deadLetterQueue}"; got ${letters.length}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
};
