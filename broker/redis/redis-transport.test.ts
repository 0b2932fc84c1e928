import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, it } from "node:test";
import type { Delivery, Envelope } from "../envelope.ts";
import { fetchScript, publishScript } from "./redis-broker-scripts.ts";
import { parseRedisUrl } from "./redis-options.ts";
import { isolatedTransport, redisSkipReason, testPrefix, TEST_REDIS_URL } from "./redis-test-support.ts";
import { RedisTransport } from "./redis-transport.ts";
import { scaled, within } from "../../tests/support/waits.ts";

// Asked before any suite is defined: a top-level await between suites lets the runner take the file as finished
// after the first one (scripts/test-timeouts.mjs then ends the process 5 s later, with the rest not run).
const skip = await redisSkipReason();

const envelope = (queue: string, overrides: Partial<Envelope> = {}): Envelope => ({
  id: randomUUID(),
  exchange: "",
  routingKey: queue,
  priority: 0,
  headers: {},
  body: new Uint8Array([0x90]),
  ...overrides,
});

/** Resolves with the first delivery `transport` makes on `queue`, or fails loudly after `ms`. */
const firstDelivery = async (transport: RedisTransport, queue: string, ms = 3_000): Promise<Delivery> => {
  let timer: NodeJS.Timeout | undefined;
  let resolve!: (delivery: Delivery) => void;
  const arrived = new Promise<Delivery>((r) => (resolve = r));
  const consumer = await transport.consume(queue, (delivery) => resolve(delivery), { prefetch: 1 });
  try {
    return await Promise.race([
      arrived,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no delivery on "${queue}" within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    await consumer.cancel();
  }
};

describe("redis url", () => {
  it("reads the database, the prefix and the default lease, and keeps the rest for the client", () => {
    assert.deepEqual(parseRedisUrl("redis://127.0.0.1:6379/2?prefix=shop&leaseMs=5000"), {
      url: "redis://127.0.0.1:6379/2",
      prefix: "shop:",
      leaseMs: 5000,
    });
    assert.deepEqual(parseRedisUrl("rediss://:secret@cache:6380"), {
      url: "rediss://:secret@cache:6380",
      prefix: "{celerity}:",
    });
  });

  it("gives the prefix option and the url's ?prefix= the same keys, with or without the closing colon", () => {
    const url = "redis://127.0.0.1:6379/2";
    for (const prefix of [
      parseRedisUrl(url, "shop").prefix,
      parseRedisUrl(url, "shop:").prefix,
      parseRedisUrl(`${url}?prefix=shop`).prefix,
      parseRedisUrl(`${url}?prefix=shop:`).prefix,
    ])
      assert.equal(prefix, "shop:");
    assert.equal(parseRedisUrl(`${url}?prefix=url`, "option").prefix, "option:", "the option wins over the url");
    assert.throws(() => parseRedisUrl(url, ""), /prefix: must not be empty/);
    assert.throws(() => parseRedisUrl(`${url}?prefix=`), /prefix: must not be empty/);
  });

  it("refuses a url that is not redis, a database that is not a number and a lease that is not a positive integer, naming each", () => {
    assert.throws(
      () => parseRedisUrl("amqp://127.0.0.1"),
      /invalid redis url: "amqp:\/\/127.0.0.1" is not a redis:\/\/ or rediss:\/\/ url/,
    );
    assert.throws(() => parseRedisUrl("redis://127.0.0.1/cache"), /the database in .* must be a number, got "cache"/);
    assert.throws(
      () => parseRedisUrl("redis://127.0.0.1/0?leaseMs=soon"),
      /leaseMs in .* must be a positive integer of milliseconds, got "soon"/,
    );
    assert.throws(() => parseRedisUrl("not a url"), /cannot parse "not a url"/);
  });
});

describe("redis transport", { skip }, () => {
  it("redelivers a message whose consumer's process stopped renewing its lease, once the lease runs out, counting the delivery", async (t) => {
    const transport = await isolatedTransport();
    t.after(() => transport.close());
    const queue = `leased-${randomUUID().slice(0, 8)}`;
    const sent = envelope(queue);
    await transport.publish(sent);
    // A consumer in a process that then died: it leased the message for 200 ms and will never renew or settle it.
    const now = Date.now();
    await fetchScript.run(transport.redis, [transport.prefix, queue, 1, now, now + 200, "dead-consumer", now + 200]);
    assert.deepEqual(await transport.stats(queue), { ready: 0, delayed: 0, unacked: 1, consumers: 1 });
    const delivery = await firstDelivery(transport, queue);
    assert.equal(delivery.envelope.id, sent.id);
    assert.equal(delivery.redelivered, true);
    assert.equal(delivery.deliveryCount, 2);
  });

  it("keeps a delivery leased while its consumer holds it, however long past the lease", async (t) => {
    const transport = await isolatedTransport();
    t.after(() => transport.close());
    const queue = `renewed-${randomUUID().slice(0, 8)}`;
    await transport.publish(envelope(queue));
    const deliveries: Delivery[] = [];
    let first!: () => void;
    const arrived = new Promise<void>((resolve) => (first = resolve));
    // The transport renews on real timers, three times a lease: the lease must outlast the stalls of a loaded
    // machine's event loop (a 150 ms lease did not), or a live holder loses it as a dead one would.
    const leaseMs = scaled(1_500);
    const holder = await transport.consume(queue, (d) => (deliveries.push(d), first()), { prefetch: 1, leaseMs });
    await arrived;
    const other = await transport.consume(queue, (d) => deliveries.push(d), { prefetch: 1, leaseMs });
    t.after(() => other.cancel());
    // Three lease lengths: without renewal the other consumer would have taken it.
    const stats = await new Promise<Awaited<ReturnType<RedisTransport["stats"]>>>((resolve) =>
      setTimeout(() => resolve(transport.stats(queue)), 3 * leaseMs),
    );
    assert.equal(deliveries.length, 1);
    assert.deepEqual(stats, { ready: 0, delayed: 0, unacked: 1, consumers: 2 });
    holder.ack(deliveries[0].deliveryTag);
    await other.cancel();
  });

  it("dead-letters bytes in a queue that are not an envelope, keeping them whole, instead of failing the consumer", async (t) => {
    const transport = await isolatedTransport();
    t.after(() => transport.close());
    const queue = `garbage-${randomUUID().slice(0, 8)}`;
    await transport.declareQueue(queue);
    await publishScript.run(transport.redis, [
      transport.prefix,
      "",
      queue,
      0,
      "",
      "",
      "garbage-id",
      Buffer.from("not msgpack \xc1", "latin1"),
      Date.now(),
      "0",
    ]);
    const kept = envelope(queue);
    await transport.publish(kept);
    const delivery = await firstDelivery(transport, queue);
    assert.equal(delivery.envelope.id, kept.id);
    const deadline = Date.now() + 3_000;
    let letters = await transport.deadLetters(queue);
    while (letters.length === 0 && Date.now() < deadline)
      letters = await new Promise((resolve) => setTimeout(() => resolve(transport.deadLetters(queue)), 20));
    assert.equal(letters.length, 1);
    assert.match(letters[0].reason, /^not an envelope: /);
    assert.equal(letters[0].envelope.id, "garbage-id");
    assert.equal(Buffer.from(letters[0].envelope.body).toString("latin1"), "not msgpack \xc1");
  });

  it("shows a transport started later the revocations made before it", async (t) => {
    const prefix = testPrefix();
    const early = await isolatedTransport({ prefix });
    t.after(() => early.close());
    await early.revoke(["revoked-before"], { ttlMs: 60_000 });
    const late = await RedisTransport.connect(TEST_REDIS_URL, { prefix });
    t.after(() => late.close());
    assert.equal(late.isRevoked("revoked-before"), true);
    assert.equal(late.isRevoked("never-revoked"), false);
  });

  it("tells a running transport's listeners of a revocation made by another, with terminate", async (t) => {
    const prefix = testPrefix();
    const a = await isolatedTransport({ prefix });
    const b = await RedisTransport.connect(TEST_REDIS_URL, { prefix });
    t.after(async () => {
      await b.close();
      await a.close();
    });
    let timer: NodeJS.Timeout | undefined;
    const heard = new Promise<[string, boolean]>((resolve, reject) => {
      b.onRevoke((id, { terminate }) => resolve([id, terminate]));
      timer = setTimeout(() => reject(new Error("b heard no revocation within 3 s")), 3_000);
    });
    await a.revoke(["running-task"], { terminate: true });
    assert.deepEqual(await heard.finally(() => clearTimeout(timer)), ["running-task", true]);
    assert.equal(b.isRevoked("running-task"), true);
  });

  it("refuses declarations that contradict earlier ones, naming the queue or exchange and the difference", async (t) => {
    const transport = await isolatedTransport();
    t.after(() => transport.close());
    await transport.declareQueue("orders", { maxDeliveries: 3 });
    await assert.rejects(
      transport.declareQueue("orders", { maxDeliveries: 5 }),
      /queue "orders" is already declared differently: its maxDeliveries is 3, not 5/,
    );
    await assert.rejects(
      transport.declareQueue("orders", { deadLetterQueue: "elsewhere" }),
      /its dead-letter queue is "orders.dlq", not "elsewhere"/,
    );
    await transport.declareExchange("events", "topic");
    await assert.rejects(
      transport.declareExchange("events", "fanout"),
      /exchange "events" is already declared differently: it is a topic exchange, not fanout/,
    );
  });

  it("rejects bad arguments and unknown queues or exchanges with errors that name them", async (t) => {
    const transport = await isolatedTransport();
    t.after(() => transport.close());
    await assert.rejects(transport.declareQueue(""), /invalid queue name: must be a non-empty string/);
    await assert.rejects(
      transport.declareQueue("self", { deadLetterQueue: "self" }),
      /queue "self" cannot be its own dead-letter queue/,
    );
    await assert.rejects(
      transport.declareExchange("x", "headers" as "topic"),
      /exchange type: must be "direct", "topic" or "fanout", got "headers"/,
    );
    await assert.rejects(transport.bindQueue("nowhere", "x", "#"), /queue "nowhere" is not declared/);
    await transport.declareQueue("here");
    await assert.rejects(
      transport.bindQueue("here", "missing-exchange", "#"),
      /exchange "missing-exchange" is not declared/,
    );
    await assert.rejects(transport.stats("never-declared"), /queue "never-declared" is not declared/);
    await assert.rejects(transport.deadLetters("never-declared"), /queue "never-declared" is not declared/);
    await assert.rejects(
      transport.consume("here", () => {}, { prefetch: 0 }),
      /invalid prefetch: must be an integer of at least 1, got 0/,
    );
    await assert.rejects(transport.publish({ ...envelope("here"), id: "" }), /envelope.id/);
    await assert.rejects(transport.revoke([""]), /invalid ids/);
  });

  it("fails a settle of a delivery it never made, or settled already, naming the consumer and the tag", async (t) => {
    const transport = await isolatedTransport();
    t.after(() => transport.close());
    const queue = `settle-${randomUUID().slice(0, 8)}`;
    await transport.publish(envelope(queue));
    let delivered!: (d: Delivery) => void;
    const arrived = new Promise<Delivery>((resolve) => (delivered = resolve));
    const consumer = await transport.consume(queue, (d) => delivered(d), { prefetch: 1 });
    const delivery = await arrived;
    assert.throws(() => consumer.ack(99), /cannot ack delivery 99 .*no delivery with this tag was ever issued/);
    consumer.ack(delivery.deliveryTag);
    assert.throws(() => consumer.nack(delivery.deliveryTag, { requeue: true }), /already acknowledged or rejected/);
  });

  it("stores the publishes of one turn in one script call, in order, each settled with its own outcome", async (t) => {
    const transport = await isolatedTransport();
    t.after(() => transport.close());
    const queue = `batched-${randomUUID().slice(0, 8)}`;
    await transport.declareExchange("routes", "direct");
    const raw = transport.redis as unknown as { evalshaBuffer: (...args: unknown[]) => Promise<unknown> };
    const original = raw.evalshaBuffer;
    let calls = 0;
    raw.evalshaBuffer = (...args: unknown[]) => {
      calls++;
      return original.apply(transport.redis, args);
    };
    const sent = Array.from({ length: 20 }, (_, i) => envelope(queue, { priority: i % 3 === 0 ? 12 : 0 }));
    const outcomes = await Promise.allSettled([
      ...sent.map((e) => transport.publish(e)),
      transport.publish(envelope("anywhere", { exchange: "missing" })),
      transport.publish(envelope("nobody", { exchange: "routes" }), { mandatory: true }),
    ]);
    raw.evalshaBuffer = original;
    assert.equal(calls, 1, "one script call for the whole turn");
    assert.deepEqual(
      outcomes.slice(0, 20).map((o) => o.status),
      sent.map(() => "fulfilled"),
    );
    assert.equal((outcomes[20] as PromiseRejectedResult).reason._tag, "ExchangeNotFoundError");
    assert.equal((outcomes[21] as PromiseRejectedResult).reason._tag, "UnroutableError");
    // Priorities above 9 are stored as 9 (first), then publish order within each priority.
    const expected = [...sent.filter((_, i) => i % 3 === 0), ...sent.filter((_, i) => i % 3 !== 0)];
    const got: Delivery[] = [];
    let done!: () => void;
    const all = new Promise<void>((resolve) => (done = resolve));
    const consumer = await transport.consume(
      queue,
      (d) => {
        got.push(d);
        consumer.ack(d.deliveryTag);
        if (got.length === sent.length) done();
      },
      { prefetch: 100 },
    );
    await within(all, scaled(5_000), "all 20 deliveries");
    await consumer.cancel();
    assert.deepEqual(
      got.map((d) => d.envelope.id),
      expected.map((e) => e.id),
    );
    assert.deepEqual(
      got.map((d) => d.envelope.priority),
      expected.map((e) => Math.min(9, e.priority)),
    );
  });

  it("publishes and settles more messages in one call than one script step takes, losing none", async (t) => {
    const transport = await isolatedTransport();
    t.after(() => transport.close());
    const queue = `many-${randomUUID().slice(0, 8)}`;
    const count = 2_500;
    const sent = Array.from({ length: count }, () => envelope(queue));
    await transport.publishMany?.(sent, { mandatory: true });
    assert.equal((await transport.stats(queue)).ready, count);
    const got: string[] = [];
    let done!: () => void;
    const all = new Promise<void>((resolve) => (done = resolve));
    const held: number[] = [];
    const consumer = await transport.consume(
      queue,
      (d) => {
        got.push(d.envelope.id);
        held.push(d.deliveryTag);
        // Every delivery of the queue at once, then all acked in one turn: one ack call for more than a slice.
        if (got.length === count) done();
      },
      { prefetch: count },
    );
    await within(all, scaled(10_000), `all ${count} deliveries`);
    assert.equal((await transport.stats(queue)).unacked, count);
    for (const tag of held) consumer.ack(tag);
    assert.deepEqual(await transport.stats(queue), { ready: 0, delayed: 0, unacked: 0, consumers: 1 });
    await consumer.cancel();
    assert.deepEqual(
      got,
      sent.map((e) => e.id),
    );
  });

  it("fails calls with a connection-lost error naming the url when Redis cannot be reached", async () => {
    const transport = RedisTransport.create("redis://127.0.0.1:1/0", { prefix: testPrefix() });
    try {
      await assert.rejects(transport.stats("q"), (error: Error & { _tag?: string }) => {
        assert.equal(error._tag, "ConnectionLostError");
        assert.match(
          error.message,
          /lost the connection to Redis at redis:\/\/127\.0\.0\.1:1\/0 during read queue stats/,
        );
        return true;
      });
    } finally {
      await transport.close();
    }
  });
});
