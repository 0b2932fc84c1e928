import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { BrokerNode } from "../../broker/node/node-server.ts";
import { NodeTransport } from "../../broker/node/node-transport.ts";
import type { Envelope } from "../../broker/envelope.ts";
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
});
