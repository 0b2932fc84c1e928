import assert from "node:assert/strict";
import { eventually } from "../../tests/support/waits.ts";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { describe, it } from "node:test";
import { NodeClient } from "./client/node-client.ts";
import type { Delivery, Envelope } from "../envelope.ts";
import { BrokerNode } from "./node-server.ts";
import { tempDir } from "./node-test-support.ts";
import { NodeTransport } from "./client/node-transport.ts";

const envelope = (id: string, queue = "q"): Envelope => ({
  id,
  exchange: "",
  routingKey: queue,
  priority: 0,
  headers: { task: "t" },
  body: new Uint8Array([1, 2, 3]),
});

/** Resolve with the next `count` deliveries of `queue` (not acked). */
const take = (transport: NodeTransport, queue: string, count: number, timeoutMs = 3_000) =>
  new Promise<{ deliveries: Delivery[]; consumer: Awaited<ReturnType<NodeTransport["consume"]>> }>(
    (resolve, reject) => {
      const deliveries: Delivery[] = [];
      const timer = setTimeout(
        () => reject(new Error(`timed out waiting for ${count} deliveries of ${queue}, got ${deliveries.length}`)),
        timeoutMs,
      );
      let consumer: Awaited<ReturnType<NodeTransport["consume"]>> | undefined;
      let done = false;
      const finish = () => {
        if (done || consumer === undefined || deliveries.length < count) return;
        done = true;
        clearTimeout(timer);
        resolve({ deliveries, consumer });
      };
      transport
        .consume(
          queue,
          (d) => {
            deliveries.push(d);
            finish();
          },
          { prefetch: 1_000 },
        )
        .then((c) => {
          consumer = c;
          finish();
        }, reject);
    },
  );

/** Connect raw bytes to the node and resolve when the node closes the socket. */
const rawSession = (port: number, bytes: Uint8Array) =>
  new Promise<void>((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port }, () => socket.write(bytes));
    socket.on("error", () => {});
    socket.on("close", () => resolve());
    setTimeout(() => reject(new Error("the node did not close a connection that sent bad bytes")), 3_000).unref();
  });

describe("broker node: durability", () => {
  it("keeps every other confirmed message when one record in the middle of its journal is damaged", async (t) => {
    const dir = tempDir();
    t.after(() => dir.remove());
    const logs: string[] = [];
    const node = await BrokerNode.start({ port: 0, dataDir: dir.path, log: () => {} });
    const producer = await NodeTransport.connect(node.url);
    for (let i = 0; i < 100; i++) await producer.publish(envelope(`m${i}`));
    await producer.close();
    await node.stop();
    const [segment] = readdirSync(dir.path).filter((name) => name.endsWith(".log"));
    const bytes = readFileSync(join(dir.path, segment));
    // A byte of the body of message m50 (its id is unique in the file).
    const at = bytes.indexOf(Buffer.from("m50"));
    assert.ok(at > 0);
    bytes[at + 1] ^= 0xff;
    writeFileSync(join(dir.path, segment), bytes);
    const restarted = await BrokerNode.start({ port: 0, dataDir: dir.path, log: (line) => logs.push(line) });
    t.after(() => restarted.stop());
    const consumer = await NodeTransport.connect(restarted.url);
    t.after(() => consumer.close());
    assert.equal((await consumer.stats("q")).ready, 99);
    const { deliveries } = await take(consumer, "q", 99);
    assert.deepEqual(
      deliveries.map((d) => d.envelope.id).sort(),
      Array.from({ length: 100 }, (_, i) => `m${i}`)
        .filter((id) => id !== "m50")
        .sort(),
    );
    assert.ok(
      logs.some((line) =>
        /damaged record in .* every intact record after them kept; the damaged bytes are in .*quarantine/.test(line),
      ),
      logs.join("\n"),
    );
  });

  it("keeps every confirmed, unacknowledged message across a restart, and never brings back an acknowledged one", async () => {
    const dir = tempDir();
    try {
      const node = await BrokerNode.start({ port: 0, dataDir: dir.path, log: () => {} });
      const producer = await NodeTransport.connect(node.url);
      for (let i = 0; i < 20; i++) await producer.publish(envelope(`m${i}`));
      const { deliveries, consumer } = await take(producer, "q", 20);
      for (const d of deliveries.slice(0, 5)) consumer.ack(d.deliveryTag);
      // Acks are sent without waiting for an answer; a stats round trip after them proves the node has applied them and logged them durably.
      assert.equal((await producer.stats("q")).unacked, 15);
      await producer.close();
      await node.stop();

      const restarted = await BrokerNode.start({ port: 0, dataDir: dir.path, log: () => {} });
      const consumerSide = await NodeTransport.connect(restarted.url);
      const { deliveries: again } = await take(consumerSide, "q", 15);
      assert.deepEqual(
        again.map((d) => d.envelope.id).sort(),
        Array.from({ length: 15 }, (_, i) => `m${i + 5}`).sort(),
      );
      assert.deepEqual([...again[0].envelope.body], [1, 2, 3]);
      assert.equal((await consumerSide.stats("q")).ready, 0);
      await consumerSide.close();
      await restarted.stop();
    } finally {
      dir.remove();
    }
  });

  it("keeps declarations, bindings, dead letters and revocations across a restart", async () => {
    const dir = tempDir();
    try {
      const node = await BrokerNode.start({ port: 0, dataDir: dir.path, log: () => {} });
      const t = await NodeTransport.connect(node.url);
      await t.declareExchange("events", "topic");
      await t.declareQueue("audit");
      await t.bindQueue("audit", "events", "user.#");
      await t.publish({ ...envelope("poison", "jobs") });
      const { deliveries, consumer } = await take(t, "jobs", 1);
      consumer.nack(deliveries[0].deliveryTag, { requeue: false, reason: "cannot parse" });
      await t.revoke(["later"]);
      await t.publish({ ...envelope("later", "jobs") });
      assert.equal((await t.deadLetters("jobs.dlq")).length, 1);
      await t.close();
      await node.stop();

      const restarted = await BrokerNode.start({ port: 0, dataDir: dir.path, log: () => {} });
      const t2 = await NodeTransport.connect(restarted.url);
      assert.ok(t2.isRevoked("later"));
      const dead = await t2.deadLetters("jobs.dlq");
      assert.equal(dead.length, 1);
      assert.equal(dead[0].reason, "cannot parse");
      await t2.publish({ ...envelope("routed"), exchange: "events", routingKey: "user.login" }, { mandatory: true });
      assert.equal((await t2.stats("audit")).ready, 1);
      await t2.close();
      await restarted.stop();
    } finally {
      dir.remove();
    }
  });
});

describe("broker node: what survives, what expires", () => {
  it("keeps a dead letter's reason through two restarts", async () => {
    const dir = tempDir();
    try {
      let node = await BrokerNode.start({ port: 0, dataDir: dir.path, log: () => {} });
      let t = await NodeTransport.connect(node.url);
      await t.publish(envelope("poison", "jobs"));
      const { deliveries, consumer } = await take(t, "jobs", 1);
      consumer.nack(deliveries[0].deliveryTag, { requeue: false, reason: "cannot parse" });
      assert.equal((await t.deadLetters("jobs.dlq")).length, 1);
      for (let restart = 0; restart < 2; restart++) {
        await t.close();
        await node.stop();
        node = await BrokerNode.start({ port: 0, dataDir: dir.path, log: () => {} });
        t = await NodeTransport.connect(node.url);
        const dead = await t.deadLetters("jobs.dlq");
        assert.deepEqual(
          dead.map((d) => [d.envelope.id, d.queue, d.reason]),
          [["poison", "jobs", "cannot parse"]],
          `after restart ${restart + 1}`,
        );
      }
      await t.close();
      await node.stop();
    } finally {
      dir.remove();
    }
  });

  it("marks a message recovered after a restart as redelivered", async () => {
    const dir = tempDir();
    try {
      const node = await BrokerNode.start({ port: 0, dataDir: dir.path, log: () => {} });
      const t = await NodeTransport.connect(node.url);
      await t.publish(envelope("maybe-ran"));
      await t.close();
      await node.stop();
      const restarted = await BrokerNode.start({ port: 0, dataDir: dir.path, log: () => {} });
      const t2 = await NodeTransport.connect(restarted.url);
      const { deliveries } = await take(t2, "q", 1);
      assert.equal(deliveries[0].redelivered, true);
      await t2.close();
      await restarted.stop();
    } finally {
      dir.remove();
    }
  });

  it("lets a revocation expire on every client, not only the one that made it", async () => {
    const node = await BrokerNode.start({ port: 0, log: () => {} });
    const a = await NodeTransport.connect(node.url);
    const b = await NodeTransport.connect(node.url);
    const told = new Promise<void>((resolve) => b.onRevoke(() => resolve()));
    await a.revoke(["brief"], { ttlMs: 30 });
    await told;
    assert.equal(b.isRevoked("brief"), true);
    const expiry = Date.now() + 30;
    while (Date.now() <= expiry + 5) await new Promise((resolve) => setTimeout(resolve, 5)); // the behaviour under test is time passing
    assert.equal(b.isRevoked("brief"), false);
    await a.close();
    await b.close();
    await node.stop();
  });

  it("refuses an oversized publish locally and keeps the connection", async () => {
    const node = await BrokerNode.start({ port: 0, maxFrameBytes: 4_096, log: () => {} });
    const t = await NodeTransport.connect(node.url);
    await assert.rejects(
      t.publish({ ...envelope("huge"), body: new Uint8Array(10_000) }),
      /exceeds the maximum of 4096 bytes/,
    );
    await t.publish(envelope("small"));
    assert.equal((await t.stats("q")).ready, 1);
    await t.close();
    await node.stop();
  });

  it("keeps saying why the node refused the connection on every later call", async () => {
    const node = await BrokerNode.start({ port: 0, token: "right", log: () => {} });
    const t = NodeTransport.create(node.url, { token: "wrong" });
    await assert.rejects(t.ready, /unauthorized/);
    await assert.rejects(t.declareQueue("x"), /unauthorized/);
    await node.stop();
  });
});

describe("broker node: compaction while running", () => {
  it("compacts a growing log while it runs, and a restart still recovers exactly what is held", async () => {
    const dir = tempDir();
    const logs: string[] = [];
    try {
      const node = await BrokerNode.start({
        port: 0,
        dataDir: dir.path,
        compactAtBytes: 64 * 1024,
        log: (line) => logs.push(line),
      });
      const t = await NodeTransport.connect(node.url);
      await t.declareQueue("keep");
      await t.declareQueue("churn");
      await t.publish(envelope("kept-1", "keep"));
      // Churn: many messages published and acked, which only grow the log.
      for (let round = 0; round < 6; round++) {
        await Promise.all(Array.from({ length: 300 }, (_, i) => t.publish(envelope(`churn-${round}-${i}`, "churn"))));
        const { deliveries, consumer } = await take(t, "churn", 300);
        for (const d of deliveries) consumer.ack(d.deliveryTag);
        await consumer.cancel();
        assert.equal((await t.stats("churn")).ready + (await t.stats("churn")).unacked, 0);
      }
      await t.publish(envelope("kept-2", "keep"));
      assert.ok(
        logs.some((line) => /compacted the log from \d+ to \d+ bytes/.test(line)),
        logs.join("\n"),
      );
      await t.close();
      await node.stop();
      const restarted = await BrokerNode.start({ port: 0, dataDir: dir.path, log: () => {} });
      const t2 = await NodeTransport.connect(restarted.url);
      const { deliveries } = await take(t2, "keep", 2);
      assert.deepEqual(deliveries.map((d) => d.envelope.id).sort(), ["kept-1", "kept-2"]);
      assert.equal((await t2.stats("churn")).ready, 0);
      await t2.close();
      await restarted.stop();
    } finally {
      dir.remove();
    }
  });
});

describe("broker node: one node per data directory", () => {
  it("refuses a second node on a data directory a live node holds, and takes over one left by a dead process", async () => {
    const dir = tempDir();
    try {
      const node = await BrokerNode.start({ port: 0, dataDir: dir.path, log: () => {} });
      const { lockDataDir } = await import("../log/data-dir-lock.ts");
      const { writeFileSync } = await import("node:fs");
      const { join } = await import("node:path");
      // The test process itself would be the holder here, so pose as another live process: our parent.
      writeFileSync(join(dir.path, "LOCK"), String(process.ppid));
      assert.throws(() => lockDataDir(dir.path), /is in use by process \d+: run one node per data directory/);
      await node.stop();
      writeFileSync(join(dir.path, "LOCK"), "2147483646"); // no such process: a node killed with SIGKILL
      const restarted = await BrokerNode.start({ port: 0, dataDir: dir.path, log: () => {} });
      await restarted.stop();
    } finally {
      dir.remove();
    }
  });
});

describe("broker node: flow control", () => {
  it("holds back publish confirms while the node is full, and confirms them as consumers make room", async () => {
    const node = await BrokerNode.start({ port: 0, maxMessages: 10, log: () => {} });
    const producer = await NodeTransport.connect(node.url);
    let confirmed = 0;
    const publishes = Array.from({ length: 30 }, (_, i) => producer.publish(envelope(`f${i}`)).then(() => confirmed++));
    await Promise.all(publishes.slice(0, 10));
    // A stats round trip is answered after every publish ahead of it was handled: the rest are held back.
    assert.equal((await producer.stats("q")).ready, 10);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(confirmed, 10);
    const consumerSide = await NodeTransport.connect(node.url);
    const consumer = await consumerSide.consume("q", (d) => consumer.ack(d.deliveryTag), { prefetch: 5 });
    await Promise.all(publishes);
    assert.equal(confirmed, 30);
    await consumerSide.close();
    await producer.close();
    await node.stop();
  });
});

describe("broker node: connections", () => {
  it("redelivers a message whose consumer's connection dies to another consumer", async () => {
    const node = await BrokerNode.start({ port: 0, log: () => {} });
    const first = await NodeTransport.connect(node.url);
    const second = await NodeTransport.connect(node.url);
    await first.publish(envelope("work"));
    const { deliveries } = await take(first, "q", 1);
    assert.equal(deliveries[0].envelope.id, "work");
    first.client.close(); // vanishes without acking
    const { deliveries: redelivered } = await take(second, "q", 1);
    assert.equal(redelivered[0].envelope.id, "work");
    assert.equal(redelivered[0].redelivered, true);
    assert.equal(redelivered[0].deliveryCount, 2);
    await second.close();
    await node.stop();
  });

  it("keeps a consumer consuming after the node restarts (it reconnects by itself)", async () => {
    const dir = tempDir();
    try {
      const node = await BrokerNode.start({ port: 0, dataDir: dir.path, log: () => {} });
      const port = node.address.port;
      const worker = await NodeTransport.connect(node.url, { reconnectMinMs: 10, reconnectMaxMs: 50 });
      const seen: string[] = [];
      let wake: (() => void) | undefined;
      const consumer = await worker.consume(
        "q",
        (d) => {
          seen.push(d.envelope.id);
          consumer.ack(d.deliveryTag);
          wake?.();
        },
        { prefetch: 10 },
      );
      await node.stop();
      const restarted = await BrokerNode.start({ port, dataDir: dir.path, log: () => {} });
      const producer = await NodeTransport.connect(restarted.url);
      const arrived = new Promise<void>((resolve) => (wake = resolve));
      await producer.publish(envelope("after-restart"));
      await arrived;
      assert.deepEqual(seen, ["after-restart"]);
      await producer.close();
      await worker.close();
      await restarted.stop();
    } finally {
      dir.remove();
    }
  });

  it("refuses a client with a wrong or missing token, saying so", async () => {
    const node = await BrokerNode.start({ port: 0, token: "s3cret", log: () => {} });
    await assert.rejects(
      NodeTransport.connect(node.url, { token: "wrong" }),
      /refused the connection \(unauthorized\): wrong token/,
    );
    await assert.rejects(NodeTransport.connect(node.url), /requires a token/);
    const ok = await NodeTransport.connect(node.url, { token: "s3cret" });
    await ok.declareQueue("fine");
    await ok.close();
    await node.stop();
  });

  it("closes a connection that sends garbage, an oversized frame, an unknown frame type or vanishes mid-frame, logging why, and keeps serving others", async () => {
    const logs: string[] = [];
    const node = await BrokerNode.start({ port: 0, maxFrameBytes: 1024, log: (line) => logs.push(line) });
    const bystander = await NodeTransport.connect(node.url);
    const port = node.address.port;
    const closesAfter = async (bytes: Buffer, why: RegExp) => {
      const seen = logs.length;
      await rawSession(port, bytes);
      await eventually(() => logs.slice(seen).some((line) => why.test(line)), { what: `a log line matching ${why}` });
    };
    // Text where a frame header belongs reads as an absurd length.
    await closesAfter(
      Buffer.from("GET / HTTP/1.1\r\n\r\n"),
      /closed: frame of 1195725860 bytes exceeds the maximum of 1024 bytes/,
    );
    await closesAfter(Buffer.from([0, 1, 0, 0, 1]), /closed: frame of 65540 bytes exceeds the maximum of 1024 bytes/);
    // A Hello frame with no payload at all.
    await closesAfter(Buffer.from([0, 0, 0, 1, 1]), /closed: protocol error: undecodable payload \(0 bytes\)/);
    // A frame of a type no protocol version has, where the Hello belongs.
    await closesAfter(
      Buffer.from([0, 0, 0, 1, 99, 0xc0]),
      /closed: protocol error: expected a Hello frame first, got type 99/,
    );
    // A client that vanishes mid-frame: half a header, then gone.
    await new Promise<void>((resolve) => {
      const socket = connect({ host: "127.0.0.1", port }, () => {
        socket.write(Buffer.from([0, 0]));
        socket.destroy();
        resolve();
      });
    });
    await bystander.publish(envelope("still-served"));
    assert.equal((await bystander.stats("q")).ready, 1);
    await bystander.close();
    await node.stop();
  });
});

describe("node and client options", () => {
  it("refuses a nonsensical option of the node or the client, naming it", async () => {
    await assert.rejects(
      BrokerNode.start({ port: 0, heartbeatMs: 0, log: () => {} }),
      /invalid heartbeatMs: expected a positive number, got 0/,
    );
    await assert.rejects(
      BrokerNode.start({ port: 70_000, log: () => {} }),
      /invalid port: expected 0 to 65535, got 70000/,
    );
    assert.throws(
      () => new NodeClient("celerity://127.0.0.1:5690", { maxInFlight: 0.5 }),
      /invalid maxInFlight: expected a whole number of at least 1, got 0.5/,
    );
  });
});
