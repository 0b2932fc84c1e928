import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { transportConformance } from "../conformance.ts";
import { createEmbeddedBroker, EmbeddedBroker, type EmbeddedBrokerOptions } from "./embedded-broker.ts";
import type { Delivery, Envelope } from "../envelope.ts";
import {
  BrokerClosedError,
  DeclarationConflictError,
  ExchangeNotFoundError,
  InvalidArgumentError,
  QueueNotFoundError,
  UnknownDeliveryError,
} from "../errors.ts";
import type { Consumer } from "../transport.ts";
import { scaled } from "../../tests/support/waits.ts";
import { nodeProcess, START_TIMEOUT_MS } from "../../tests/support/watched-process.ts";

transportConformance("embedded", () => createEmbeddedBroker());

let seq = 0;
const envelope = (routingKey: string, overrides: Partial<Envelope> = {}): Envelope => ({
  id: `m-${++seq}`,
  exchange: "",
  routingKey,
  priority: 0,
  headers: {},
  body: new Uint8Array(0),
  ...overrides,
});

/** A broker with a consumer on `queue` that records deliveries; `received(n)` waits for n of them. */
const setup = async (
  queue: string,
  prefetch: number,
  options: EmbeddedBrokerOptions & { onDelivery?: (d: Delivery, consumer: Consumer) => void } = {},
) => {
  const broker = new EmbeddedBroker(options);
  const deliveries: Delivery[] = [];
  const waiters: (() => void)[] = [];
  const ref: { consumer?: Consumer } = {};
  const consumer = await broker.consume(
    queue,
    (d) => {
      deliveries.push(d);
      options.onDelivery?.(d, ref.consumer as Consumer);
      for (const wake of waiters.splice(0)) wake();
    },
    { prefetch },
  );
  ref.consumer = consumer;
  const received = (count: number, timeoutMs = 2_000): Promise<Delivery[]> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(
              `timed out waiting for ${count} deliveries; got ${deliveries.map((d) => d.envelope.id).join(", ")}`,
            ),
          ),
        timeoutMs,
      );
      const check = (): void => {
        if (deliveries.length >= count) {
          clearTimeout(timer);
          resolve(deliveries.slice());
        } else waiters.push(check);
      };
      check();
    });
  return { broker, consumer, deliveries, received };
};

describe("embedded broker", () => {
  describe("acknowledgements", () => {
    it("throws on a double ack, naming the delivery tag and the consumer", async () => {
      const { broker, consumer, received } = await setup("q", 1);
      await broker.publish(envelope("q"));
      const [d] = await received(1);
      consumer.ack(d.deliveryTag);
      assert.throws(
        () => consumer.ack(d.deliveryTag),
        (error: unknown) => {
          assert.ok(error instanceof UnknownDeliveryError);
          assert.match(error.message, new RegExp(`delivery ${d.deliveryTag} on consumer ${consumer.tag}`));
          assert.match(error.message, /already acknowledged/);
          return true;
        },
      );
      await broker.close();
    });

    it("throws on ack of a delivery tag that was never issued", async () => {
      const { broker, consumer } = await setup("q", 1);
      assert.throws(
        () => consumer.ack(99),
        /cannot ack delivery 99 on consumer ctag-\d+ \(queue "q"\): no delivery with this tag was ever issued/,
      );
      assert.throws(() => consumer.nack(99, { requeue: true }), /cannot nack delivery 99/);
      await broker.close();
    });

    it("throws on ack after cancel, explaining the delivery went back to the queue", async () => {
      const { broker, consumer, received } = await setup("q", 1);
      await broker.publish(envelope("q"));
      const [d] = await received(1);
      await consumer.cancel();
      assert.throws(() => consumer.ack(d.deliveryTag), /consumer was cancelled/);
      assert.deepEqual(await broker.stats("q"), { ready: 1, delayed: 0, unacked: 0, consumers: 0 });
      await broker.close();
    });

    it("throws 'broker is closed' on ack after close", async () => {
      const { broker, consumer, received } = await setup("q", 1);
      await broker.publish(envelope("q"));
      const [d] = await received(1);
      await broker.close();
      assert.throws(() => consumer.ack(d.deliveryTag), BrokerClosedError);
    });

    it("puts a message nacked with requeue back at the head of its queue", async () => {
      const { broker, consumer, received } = await setup("q", 1);
      const [a, b] = [envelope("q"), envelope("q")];
      await broker.publish(a);
      await broker.publish(b);
      const [first] = await received(1);
      consumer.nack(first.deliveryTag, { requeue: true });
      const [, second] = await received(2);
      assert.equal(second.envelope.id, a.id);
      await broker.close();
    });

    it("returns every unacked delivery to the head of the queue, oldest first, on cancel", async () => {
      const { broker, consumer, received } = await setup("q", 3);
      const sent = [envelope("q"), envelope("q"), envelope("q"), envelope("q")];
      for (const e of sent) await broker.publish(e);
      await received(3);
      await consumer.cancel();
      const ids: string[] = [];
      const c2 = await broker.consume("q", (d) => ids.push(d.envelope.id), { prefetch: 10 });
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(
        ids,
        sent.map((e) => e.id),
      );
      await c2.cancel();
      await broker.close();
    });
  });

  describe("consumers", () => {
    it("hands a queue's messages to its consumers in turn", async () => {
      const broker = createEmbeddedBroker();
      const got: string[] = [];
      const consumers: Consumer[] = [];
      for (const name of ["a", "b", "c"]) {
        consumers.push(await broker.consume("q", () => got.push(name), { prefetch: 10 }));
      }
      await new Promise((resolve) => setImmediate(resolve));
      for (let i = 0; i < 6; i++) await broker.publish(envelope("q"));
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(got, ["a", "b", "c", "a", "b", "c"]);
      await broker.close();
    });

    it("returns a delivery whose handler throws to the queue and reports the error", async () => {
      const errors: string[] = [];
      let calls = 0;
      const { broker, received } = await setup("q", 1, {
        onError: (error, context) => errors.push(`${(error as Error).message} | ${context}`),
        onDelivery: (d, consumer) => {
          if (++calls === 1) throw new Error("boom");
          consumer.ack(d.deliveryTag);
        },
      });
      const sent = envelope("q");
      await broker.publish(sent);
      const [first, second] = await received(2);
      assert.equal(second.envelope.id, first.envelope.id);
      assert.equal(second.redelivered, true);
      assert.equal(errors.length, 1);
      assert.match(errors[0], /^boom \| .*failed on message m-\d+; the message was returned to the queue/);
      await broker.close();
    });

    it("returns a delivery whose async handler rejects to the queue and reports the error", async () => {
      const errors: unknown[] = [];
      const broker = createEmbeddedBroker({ onError: (error) => errors.push(error) });
      const deliveries: Delivery[] = [];
      let done!: () => void;
      const twice = new Promise<void>((resolve) => (done = resolve));
      const consumer = await broker.consume(
        "q",
        async (d) => {
          deliveries.push(d);
          if (deliveries.length === 1) throw new Error("async boom");
          consumer.ack(d.deliveryTag);
          done();
        },
        { prefetch: 1 },
      );
      await broker.publish(envelope("q"));
      await twice;
      assert.equal(deliveries[1].deliveryCount, 2);
      assert.equal((errors[0] as Error).message, "async boom");
      await broker.close();
    });

    it("delivers messages that a handler publishes while handling another", async () => {
      const { broker, received } = await setup("q", 5, {
        onDelivery: (d, consumer) => {
          consumer.ack(d.deliveryTag);
          if (d.envelope.headers.hop === 0) void broker.publish(envelope("q", { headers: { hop: 1 } }));
        },
      });
      await broker.publish(envelope("q", { headers: { hop: 0 } }));
      const got = await received(2);
      assert.deepEqual(
        got.map((d) => d.envelope.headers.hop),
        [0, 1],
      );
      await broker.close();
    });

    it("yields to the event loop while a consumer acks every delivery from a microtask", async () => {
      const broker = createEmbeddedBroker();
      const total = 20_000;
      let delivered = 0;
      let deliveredWhenLoopTurned = -1;
      let finished!: () => void;
      const done = new Promise<void>((resolve) => (finished = resolve));
      const consumer = await broker.consume(
        "q",
        (d) => {
          delivered++;
          queueMicrotask(() => {
            consumer.ack(d.deliveryTag);
            if (delivered === total) finished();
          });
        },
        { prefetch: 1 },
      );
      for (let i = 0; i < total; i++) void broker.publish(envelope("q"));
      setImmediate(() => (deliveredWhenLoopTurned = delivered));
      await done;
      assert.ok(
        deliveredWhenLoopTurned > 0 && deliveredWhenLoopTurned < total,
        `the loop turned after ${deliveredWhenLoopTurned} deliveries`,
      );
      await broker.close();
    });
  });

  describe("messages", () => {
    it("treats priorities outside 0..9 as the nearest bound", async () => {
      const broker = createEmbeddedBroker();
      await broker.publish(envelope("q", { id: "mid", priority: 5 }));
      await broker.publish(envelope("q", { id: "huge", priority: 42 }));
      await broker.publish(envelope("q", { id: "negative", priority: -3 }));
      await broker.publish(envelope("q", { id: "zero", priority: 0 }));
      const got: [string, number][] = [];
      const consumer = await broker.consume("q", (d) => got.push([d.envelope.id, d.envelope.priority]), {
        prefetch: 10,
      });
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(got, [
        ["huge", 9],
        ["mid", 5],
        ["negative", 0],
        ["zero", 0],
      ]);
      await consumer.cancel();
      await broker.close();
    });

    it("judges expiry by the injected clock", async () => {
      let now = 1_000;
      const broker = createEmbeddedBroker({ now: () => now });
      await broker.publish(envelope("q", { id: "soon", expires: 1_500 }));
      now = 2_000;
      const got: string[] = [];
      await broker.consume("q", (d) => got.push(d.envelope.id), { prefetch: 1 });
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(got, []);
      const [letter] = await broker.deadLetters("q.dlq");
      assert.deepEqual([letter.envelope.id, letter.reason, letter.at], ["soon", "expired", 2_000]);
      await broker.close();
    });

    it("dead-letters after defaultMaxDeliveries when the queue sets no limit", async () => {
      const { broker, deliveries } = await setup("q", 1, {
        defaultMaxDeliveries: 3,
        onDelivery: (d, consumer) => consumer.nack(d.deliveryTag, { requeue: true }),
      });
      await broker.publish(envelope("q"));
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(deliveries.length, 3);
      const [letter] = await broker.deadLetters("q.dlq");
      assert.equal(letter.reason, "delivered 3 times without an ack (maxDeliveries is 3)");
      await broker.close();
    });

    it("reads dead letters by the dead-letter queue's name or by its source queue's name", async () => {
      const broker = createEmbeddedBroker();
      await broker.declareQueue("jobs", { deadLetterQueue: "graveyard" });
      await broker.publish(envelope("jobs", { id: "late", expires: 1 }));
      await broker.consume("jobs", () => {}, { prefetch: 1 });
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(
        (await broker.deadLetters("graveyard")).map((l) => l.envelope.id),
        ["late"],
      );
      assert.deepEqual(
        (await broker.deadLetters("jobs")).map((l) => l.envelope.id),
        ["late"],
      );
      await broker.close();
    });

    it("counts a message its exchange routes to no queue as unroutable", async () => {
      const broker = createEmbeddedBroker();
      await broker.declareExchange("events", "topic");
      await broker.publish(envelope("nobody.listens", { exchange: "events" }));
      assert.equal(broker.totals().unroutable, 1);
      assert.equal(broker.totals().published, 1);
      await broker.close();
    });

    it("counts discarded revoked messages and keeps them out of the dead-letter queue", async () => {
      const { broker, received } = await setup("q", 5);
      await broker.revoke(["gone"]);
      await broker.publish(envelope("q", { id: "gone" }));
      await broker.publish(envelope("q", { id: "kept" }));
      await received(1);
      assert.equal(broker.totals().discardedRevoked, 1);
      assert.deepEqual(await broker.deadLetters("q.dlq"), []);
      await broker.close();
    });
  });

  describe("process lifetime", () => {
    const brokerModule = fileURLToPath(new URL("./embedded-broker.ts", import.meta.url));
    /** A script run by node, bounded: its startup (tsx compiles) by START_TIMEOUT_MS, then what it does by `ms`. */
    const runScript = async (t: { after(fn: () => unknown): void }, body: string, ready: RegExp, ms: number) => {
      const script = nodeProcess("script", [
        "--import",
        "tsx",
        "--input-type=module",
        "-e",
        `import { createEmbeddedBroker } from ${JSON.stringify(brokerModule)};\n${body}`,
      ]);
      t.after(() => script.kill());
      await script.waitFor(ready, START_TIMEOUT_MS);
      const exit = await script.exit(ms);
      return { ...exit, stdout: script.text("stdout") };
    };
    const message = (eta: string) =>
      `{ id: "x", exchange: "", routingKey: "q", priority: 0, headers: {}, body: new Uint8Array(), eta: ${eta} }`;

    it("lets the process exit while a delayed message waits and nobody consumes", async (t) => {
      // The message is due in a minute: a timer that kept the process alive would hold it that long.
      const run = await runScript(
        t,
        `
        const broker = createEmbeddedBroker();
        await broker.publish(${message("Date.now() + 60_000")});
        console.log("published");
      `,
        /^published$/,
        scaled(10_000),
      );
      assert.deepEqual([run.code, run.stdout.trim()], [0, "published"]);
    });

    it("keeps the process alive for a delayed message while a consumer is attached", async (t) => {
      const run = await runScript(
        t,
        `
        const broker = createEmbeddedBroker();
        const consumer = await broker.consume("q", (d) => {
          consumer.ack(d.deliveryTag);
          console.log("delivered");
          void broker.close();
        }, { prefetch: 1 });
        await broker.publish(${message("Date.now() + 50")});
      `,
        /^delivered$/,
        scaled(10_000),
      );
      assert.deepEqual([run.code, run.stdout.trim()], [0, "delivered"]);
    });
  });

  describe("revocations", () => {
    it("forgets a revocation once its ttl has passed", async () => {
      let now = 0;
      const broker = createEmbeddedBroker({ now: () => now, revocationTtlMs: 1_000 });
      await broker.revoke(["default-ttl"]);
      await broker.revoke(["short-ttl"], { ttlMs: 10 });
      now = 500;
      assert.equal(broker.isRevoked("short-ttl"), false);
      assert.equal(broker.isRevoked("default-ttl"), true);
      now = 1_001;
      assert.equal(broker.isRevoked("default-ttl"), false);
      await broker.close();
    });

    it("keeps notifying other listeners when one throws", async () => {
      const errors: unknown[] = [];
      const broker = createEmbeddedBroker({ onError: (error) => errors.push(error) });
      const heard: string[] = [];
      broker.onRevoke(() => {
        throw new Error("listener broke");
      });
      broker.onRevoke((id) => heard.push(id));
      await broker.revoke(["x"]);
      assert.deepEqual(heard, ["x"]);
      assert.equal(errors.length, 1);
      await broker.close();
    });
  });

  describe("input validation", () => {
    it("rejects an empty queue name", async () => {
      const broker = createEmbeddedBroker();
      await assert.rejects(broker.declareQueue(""), InvalidArgumentError);
      await assert.rejects(
        broker.consume("", () => {}, { prefetch: 1 }),
        /invalid queue name/,
      );
      await assert.rejects(broker.publish(envelope("")), /invalid envelope.routingKey/);
      await broker.close();
    });

    it("rejects a prefetch below 1 or not an integer", async () => {
      const broker = createEmbeddedBroker();
      await assert.rejects(
        broker.consume("q", () => {}, { prefetch: 0 }),
        /invalid prefetch: must be an integer of at least 1, got 0/,
      );
      await assert.rejects(
        broker.consume("q", () => {}, { prefetch: 1.5 }),
        InvalidArgumentError,
      );
      await broker.close();
    });

    it("rejects an envelope without an id or with a non-numeric eta", async () => {
      const broker = createEmbeddedBroker();
      await assert.rejects(broker.publish(envelope("q", { id: "" })), /invalid envelope.id/);
      await assert.rejects(broker.publish(envelope("q", { eta: Number.NaN })), /invalid envelope.eta/);
      await broker.close();
    });

    it("rejects binding to an exchange or queue that was never declared", async () => {
      const broker = createEmbeddedBroker();
      await assert.rejects(broker.bindQueue("q", "nowhere", "#"), ExchangeNotFoundError);
      await broker.declareExchange("events", "topic");
      await assert.rejects(broker.bindQueue("missing", "events", "#"), QueueNotFoundError);
      await assert.rejects(broker.stats("missing"), /queue "missing" is not declared/);
      await broker.close();
    });

    it("refuses to redeclare a queue or exchange with different settings", async () => {
      const broker = createEmbeddedBroker();
      await broker.declareQueue("q", { maxDeliveries: 3 });
      await broker.declareQueue("q");
      await assert.rejects(broker.declareQueue("q", { maxDeliveries: 4 }), DeclarationConflictError);
      await broker.declareExchange("events", "topic");
      await assert.rejects(
        broker.declareExchange("events", "fanout"),
        /exchange "events" is already declared differently: it is a topic exchange/,
      );
      await broker.close();
    });

    it("lets an explicit declaration configure a queue that a publish created", async () => {
      const broker = createEmbeddedBroker();
      await broker.publish(envelope("q"));
      await broker.declareQueue("q", { maxDeliveries: 2, deadLetterQueue: "q.failed" });
      assert.deepEqual(await broker.deadLetters("q.failed"), []);
      await broker.close();
    });

    it("rejects every operation after close with 'broker is closed'", async () => {
      const broker = createEmbeddedBroker();
      await broker.close();
      await broker.close();
      for (const attempt of [
        broker.declareQueue("q"),
        broker.declareExchange("x", "direct"),
        broker.revoke(["id"]),
        broker.stats("q"),
        broker.deadLetters("q"),
      ]) {
        await assert.rejects(attempt, /broker is closed/);
      }
    });
  });
});
