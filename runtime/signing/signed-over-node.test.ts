import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { BrokerNode } from "../../broker/node/node-server.ts";
import { NodeTransport } from "../../broker/node/client/node-transport.ts";
import type { Envelope } from "../../broker/envelope.ts";
import { dropPrefix, redisSkipReason, TEST_REDIS_URL, testPrefix } from "../../broker/redis/redis-test-support.ts";
import { RedisTransport } from "../../broker/redis/redis-transport.ts";
import type { Transport } from "../../broker/transport.ts";
import { chain } from "../../dsl/combinators.ts";
import { createApp } from "../app.ts";
import { RemoteTaskError } from "../errors.ts";
import { serveResults } from "../results/result-service.ts";
import { eventually } from "../test-support.ts";
import { generateBoxKey } from "./payload-box.ts";
import { writeKeyPair } from "./signing-keys.ts";

const dir = mkdtempSync(join(tmpdir(), "celerity-signed-node-"));
after(() => rmSync(dir, { recursive: true, force: true }));

describe("signed mode over a broker node", () => {
  it("runs signed, encrypted tasks and chains across processes' apps, and refuses a message altered on the wire", async () => {
    const node = await BrokerNode.start({ port: 0, log: () => {} });
    serveResults(node);
    const producerKey = writeKeyPair(join(dir, "producer"));
    const workerKey = writeKeyPair(join(dir, "worker"));
    const trusted = [join(dir, "*.pub")];
    const box = generateBoxKey();
    const logs: string[] = [];
    const producer = createApp({
      broker: node.url,
      log: () => {},
      signing: { key: producerKey.secretPath, trusted, encryption: [box] },
    });
    const workerSide = createApp({
      broker: node.url,
      log: (line) => logs.push(line),
      signing: { key: workerKey.secretPath, trusted, encryption: [box] },
    });
    const add = producer.task("add", (x: number, y: number) => x + y);
    workerSide.task("add", (x: number, y: number) => x + y);
    await workerSide.worker({ concurrency: 4 }).start();
    const raw = await NodeTransport.connect(node.url);
    try {
      assert.equal(await (await add.delay(2, 2)).get({ timeout: 5_000 }), 4);
      assert.equal(await (await chain(add.s(1, 1), add.s(1), add.s(1)).apply()).get({ timeout: 5_000 }), 4);

      // Capture one signed message by publishing to a queue no worker reads, then alter its target queue.
      const captured: Envelope[] = [];
      const consumer = await raw.consume("side", (delivery) => captured.push(delivery.envelope), { prefetch: 10 });
      const r = await producer.sendTask("add", [5, 5], { queue: "side" });
      await eventually(() => captured.length === 1, 5_000, "the captured message");
      await consumer.cancel();
      await raw.publish({ ...captured[0], routingKey: "celery" });
      const error = await r.get({ timeout: 5_000 }).then(
        () => assert.fail("an altered message must not run"),
        (e: unknown) => e,
      );
      assert.ok(error instanceof RemoteTaskError);
      assert.match(error.message, /SignatureError: .*does not match the message/);
      assert.ok(
        logs.some((line) => line.includes(producerKey.keyId) && line.includes("'add'")),
        logs.join("\n"),
      );
    } finally {
      await raw.close();
      await producer.close();
      await workerSide.close();
      await node.stop();
    }
  });

  it("runs a replayed copy of a signed message on one worker process of a pool only: another refuses and counts it", async () => {
    const node = await BrokerNode.start({ port: 0, log: () => {} });
    serveResults(node);
    try {
      await replayedCopyRunsOnce("node", node.url, () => NodeTransport.connect(node.url));
    } finally {
      await node.stop();
    }
  });

  it("on Redis too, runs a replayed copy of a signed message on one worker process of a pool only, claiming it in Redis", async (t) => {
    const skip = await redisSkipReason();
    if (skip) return t.skip(skip);
    const prefix = testPrefix("signed-pool");
    try {
      // Every app of the pool, and the attacker's transport, on one url and so one prefix.
      const url = `${TEST_REDIS_URL}?prefix=${encodeURIComponent(prefix)}`;
      await replayedCopyRunsOnce("redis", url, () => RedisTransport.connect(url, { pollMs: 200 }));
    } finally {
      await dropPrefix(prefix);
    }
  });
});

/**
 * A pool of two worker processes (two apps, each its own replay guard) on a
 * shared broker and store: a genuine signed message taken off the queue by
 * someone with broker access, published again once it ran on the first,
 * and once more to the second, must run once and be refused (and counted) there.
 */
const replayedCopyRunsOnce = async (name: string, url: string, connectRaw: () => Promise<Transport>) => {
  const producerKey = writeKeyPair(join(dir, `${name}-pool-producer`));
  const workerKey = writeKeyPair(join(dir, `${name}-pool-worker`));
  const trusted = [join(dir, `${name}-pool-*.pub`)];
  const logs: string[] = [];
  let runs = 0;
  /** One worker process of the pool: its own app, so its own replay guard. */
  const workerProcess = (name: string) => {
    const app = createApp({
      broker: url,
      log: (line) => logs.push(`${name}: ${line}`),
      signing: { key: workerKey.secretPath, trusted },
    });
    app.task("tally", () => ++runs);
    return app;
  };
  const producer = createApp({ broker: url, log: () => {}, signing: { key: producerKey.secretPath, trusted } });
  const first = workerProcess("w1");
  const second = workerProcess("w2");
  const raw = await connectRaw();
  try {
    await raw.declareQueue("jobs");
    // The attacker's copy: a genuine signed message taken off the queue with broker access.
    const captured: Envelope[] = [];
    const taker = await raw.consume(
      "jobs",
      (delivery) => {
        captured.push(delivery.envelope);
        taker.ack(delivery.deliveryTag);
      },
      { prefetch: 10 },
    );
    const sent = await producer.sendTask("tally", [], { queue: "jobs" });
    await eventually(() => captured.length === 1, 5_000, "the captured message");
    await taker.cancel();

    await raw.publish(captured[0]);
    const w1 = first.worker({ concurrency: 1, queues: ["jobs"] });
    await w1.start();
    assert.equal(await sent.get({ timeout: 5_000 }), 1);
    await first.close();

    // The same bytes again, now to another process of the pool, which has never seen them.
    await raw.publish(captured[0]);
    const w2 = second.worker({ concurrency: 1, queues: ["jobs"] });
    await w2.start();
    await eventually(() => w2.stats().refused === 1, 5_000, "the second process to refuse the copy");
    assert.equal(runs, 1, "the copy ran again on the second worker process");
    assert.ok(
      logs.some((line) => line.startsWith("w2: ") && line.includes("another worker process of this pool")),
      logs.join("\n"),
    );
    assert.equal((await raw.deadLetters("jobs.dlq")).length, 1);
  } finally {
    await raw.close();
    await producer.close();
    await first.close();
    await second.close();
  }
};
