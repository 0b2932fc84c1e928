import assert from "node:assert/strict";
import { InvalidArgumentError } from "../../broker/errors.ts";
import { operation, operationGroup } from "../../broker/node/operations.ts";
import { ProtocolError } from "../../broker/node/protocol.ts";
import { rateLimitOperations } from "./rate-limit-operations.ts";
import { afterEach, describe, it } from "node:test";
import { BrokerNode } from "../../broker/node/node-server.ts";
import { NodeTransport } from "../../broker/node/client/node-transport.ts";
import { createApp, type App } from "../app.ts";
import { serveRateLimits } from "./node-rate-limit-service.ts";
import { serveResults } from "../results/result-service.ts";
import { eventually } from "../test-support.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { SigningOptions } from "../signing/signing-options.ts";
import { writeKeyPair } from "../signing/signing-keys.ts";

/** The running test's node and apps, closed after it even when it fails. */
let closeSetup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await closeSetup?.();
  closeSetup = undefined;
});

/** A node (serving results, and rate limits unless told not to) and apps connected to it, each standing for a process. */
const setup = async (options: { rateLimits?: boolean; signing?: SigningOptions } = {}) => {
  const node = await BrokerNode.start({ port: 0, log: () => {} });
  serveResults(node);
  if (options.rateLimits !== false) serveRateLimits(node);
  const apps: App[] = [];
  const connect = (logs: string[] = []) => {
    const app = createApp({
      broker: node.url,
      log: (line) => logs.push(line),
      ...(options.signing ? { signing: options.signing } : {}),
    });
    apps.push(app);
    return app;
  };
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    for (const app of apps) await app.close();
    await node.stop();
  };
  closeSetup = close;
  return { node, connect, close };
};

/** Messages still in the broker: queued, held by a worker for a token, or handed back with an eta. */
const inBroker = async (app: App) => {
  const stats = await app.broker.stats("celery");
  return stats.ready + stats.unacked + stats.delayed;
};

describe("rate limits over a broker node", () => {
  it("keeps one bucket on the node for the workers of every process together", async () => {
    const { connect, close } = await setup();
    let started = 0;
    const workers = [connect(), connect()];
    for (const app of workers) {
      app.task("t", () => void started++, { rateLimit: { rate: "1/h", burst: 2 } });
      await app.worker({ concurrency: 2, prefetch: 8 }).start();
    }
    const producer = connect();
    const results = [];
    for (let i = 0; i < 6; i++) results.push(await producer.sendTask("t", []));
    await eventually(
      async () => started === 2 && (await inBroker(producer)) === 4,
      5_000,
      "two started in all, four waiting",
    );
    // Removed from the producer: the node forgets the limit, and pushes the change to both workers.
    await producer.control.rateLimit("t", null);
    for (const r of results) await r.get({ timeout: 5_000 });
    assert.equal(started, 6);
    await close();
  });

  it("keeps the one node bucket when the apps sign their messages", async () => {
    const dir = mkdtempSync(join(tmpdir(), "celerity-rate-signed-"));
    try {
      const key = writeKeyPair(join(dir, "app"));
      const { connect } = await setup({ signing: { key: key.secretPath, trusted: [join(dir, "*.pub")] } });
      let started = 0;
      for (const app of [connect(), connect()]) {
        app.task("t", () => void started++, { rateLimit: { rate: "1/h", burst: 2 } });
        await app.worker({ concurrency: 2, prefetch: 8 }).start();
      }
      const producer = connect();
      for (let i = 0; i < 6; i++) await producer.sendTask("t", []);
      await eventually(
        async () => started === 2 && (await inBroker(producer)) === 4,
        5_000,
        "two started in all, four waiting",
      );
      // A bucket per process would have let each worker start two.
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(started, 2);
    } finally {
      await closeSetup?.();
      closeSetup = undefined;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("pushes a changed limit to the workers connected now and hands it to those that connect later", async () => {
    const { connect, close } = await setup();
    const producer = connect();
    let started = 0;
    const early = connect();
    early.task("t", () => void started++, { rateLimit: { rate: "1/h", burst: 1, scope: "worker" } });
    await early.worker().start();
    await (await producer.sendTask("t", [])).get({ timeout: 5_000 });
    await producer.control.rateLimit("t", "1000/s");
    const raised = [];
    for (let i = 0; i < 5; i++) raised.push(await producer.sendTask("t", []));
    for (const r of raised) await r.get({ timeout: 5_000 });
    await early.close();

    const late = connect();
    late.task("t", () => void started++, { rateLimit: { rate: "1/h", burst: 1, scope: "worker" } });
    await late.worker().start();
    const afterwards = [];
    for (let i = 0; i < 5; i++) afterwards.push(await producer.sendTask("t", []));
    for (const r of afterwards) await r.get({ timeout: 5_000 });
    assert.equal(started, 11);
    await close();
  });

  it("falls back to a bucket per process, and says so, when the node does not keep rate limits", async () => {
    const { connect, close } = await setup({ rateLimits: false });
    const logs: string[] = [];
    const app = connect(logs);
    let started = 0;
    const t = app.task("t", () => void started++, { rateLimit: { rate: "1/h", burst: 2 } });
    await app.worker().start();
    for (let i = 0; i < 4; i++) await t.delay();
    await eventually(async () => started === 2 && (await inBroker(app)) === 2, 5_000, "two started, two waiting");
    assert.ok(
      logs.some((line) => /does not keep rate limits .*serveRateLimits/.test(line)),
      logs.join("\n"),
    );
    await close();
  });

  it("refuses a malformed limit change naming what is wrong", async () => {
    const { node, close } = await setup();
    const transport = await NodeTransport.connect(node.url);
    await assert.rejects(transport.client.call(rateLimitOperations.set, ["t", [0, 1_000, 1]]), (error: Error) => {
      assert.ok(error instanceof InvalidArgumentError, `an InvalidArgumentError, got ${error.name}`);
      assert.match(
        error.message,
        /a rate limit needs a positive count, period and integer burst, got 0 per 1000 ms, burst 1/,
      );
      return true;
    });
    await assert.rejects(
      transport.client.call(rateLimitOperations.take, ["t", null, 1, 1_000, 1, 0]),
      /rate\.take wants at least 1 token, got 0/,
    );
    await assert.rejects(
      transport.client.call(rateLimitOperations.take, ["t", null, "1" as unknown as number, 1_000, 1, 1]),
      (error: Error) => {
        assert.ok(error instanceof ProtocolError, `a ProtocolError, got ${error.name}`);
        assert.match(error.message, /rate\.take: count must be a number, got the string '1'/);
        return true;
      },
    );
    const undeclared = operationGroup("rate", { nothing: operation<null>()() });
    await assert.rejects(transport.client.call(undeclared.nothing, []), /unknown op 'rate\.nothing'/);
    await transport.close();
    await close();
  });
});
