import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { Envelope } from "../broker/envelope.ts";
import { instrumentedDisk, powerCutDisk, tempDir } from "../broker/log/durable-log-test-support.ts";
import type { DurableLogInternals } from "../broker/log/durable-log.ts";
import { BrokerNode } from "../broker/node/node-server.ts";
import { startFullNode } from "./full-node.ts";
import { DurableResultStore } from "./results/durable/durable-result-store.ts";
import { NodeLogResults } from "./results/durable/node-log-results.ts";

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (value: Uint8Array | undefined) => (value === undefined ? undefined : new TextDecoder().decode(value));

const envelope = (id: string): Envelope => ({
  id,
  exchange: "",
  routingKey: "q",
  priority: 0,
  headers: {},
  body: bytes(id),
});

/** A broker node with its results as a guest in its log, on `internals`' disk; what both said goes to `said`. */
const nodeWithResults = async (dataDir: string, said: string[], internals: DurableLogInternals = {}) => {
  const results = new NodeLogResults({ log: (line) => said.push(`results: ${line}`) }, join(dataDir, "results"));
  await results.readEarlier();
  const node = await BrokerNode.start({ port: 0, dataDir, log: (line) => said.push(line) }, internals, [results]);
  await node.broker.declareQueue("q");
  return { node, store: results.store };
};

describe("a full node with a data dir", () => {
  it("covers a send's message and its PENDING record with one fsync", async () => {
    const dataDir = await tempDir();
    const disk = instrumentedDisk();
    const { node, store } = await nodeWithResults(dataDir, [], { openSegment: disk.openSegment });
    try {
      // Once this is durable, so is every record before it (the queue's declaration).
      await store.setState("t0", "add", "PENDING");
      const before = disk.stats.datasyncs;
      // What `results.send` does for one task: its record, then its message, in one turn.
      await Promise.all([store.setState("t1", "add", "PENDING"), node.publishDurably(envelope("t1"), false)]);
      assert.equal(disk.stats.datasyncs - before, 1);
    } finally {
      await node.stop();
      await store.close();
    }
  });

  it("keeps results and messages in one log: both come back after a restart, and there is no results directory", async () => {
    const dataDir = await tempDir();
    const first = await startFullNode({ port: 0, dataDir, log: () => {} });
    await first.node.broker.declareQueue("q");
    await first.node.publishDurably(envelope("m1"), false);
    await first.results.complete("t1", "add", { state: "SUCCESS", value: bytes("3") });
    await first.stop();
    assert.equal(existsSync(join(dataDir, "results")), false);
    const second = await startFullNode({ port: 0, dataDir, log: () => {} });
    try {
      assert.equal(text((await second.results.get("t1"))?.value), "3");
      assert.equal((await second.node.broker.stats("q")).ready, 1);
    } finally {
      await second.stop();
    }
  });

  it("after a power cut has every result and message answered before it, and nothing written after it", async () => {
    const dataDir = await tempDir();
    const disk = powerCutDisk();
    const said: string[] = [];
    const first = await nodeWithResults(dataDir, said, { openSegment: disk.openSegment });
    await Promise.all([
      first.store.complete("t1", "add", { state: "SUCCESS", value: bytes("before") }),
      first.node.publishDurably(envelope("m1"), false),
    ]);
    disk.cut();
    await Promise.all([
      first.store.complete("t2", "add", { state: "SUCCESS", value: bytes("after") }),
      first.node.publishDurably(envelope("m2"), false),
    ]);
    await first.node.stop();
    await first.store.close();
    const second = await nodeWithResults(dataDir, said);
    try {
      assert.equal(text((await second.store.get("t1"))?.value), "before");
      assert.equal(await second.store.get("t2"), undefined);
      assert.equal((await second.node.broker.stats("q")).ready, 1);
    } finally {
      await second.node.stop();
      await second.store.close();
    }
  });

  it("moves the results log an earlier version kept in <data-dir>/results into the node's log", async () => {
    const dataDir = await tempDir();
    const earlier = await DurableResultStore.open(join(dataDir, "results"), { log: () => {} });
    await earlier.complete("old", "add", { state: "SUCCESS", value: bytes("kept") });
    await earlier.close();
    const said: string[] = [];
    const first = await startFullNode({ port: 0, dataDir, log: (line) => said.push(line) });
    try {
      assert.equal(text((await first.results.get("old"))?.value), "kept");
      assert.equal(existsSync(join(dataDir, "results")), false);
      assert.match(said.join("\n"), /moved the results log of .*results into the node's log/);
    } finally {
      await first.stop();
    }
    const second = await startFullNode({ port: 0, dataDir, log: () => {} });
    try {
      assert.equal(text((await second.results.get("old"))?.value), "kept");
    } finally {
      await second.stop();
    }
  });
});
