/**
 * The node on a disk that fails the way real ones do (broker/log/faulty-disk.ts):
 * seeded runs of publishes and acks with injected short writes, EIO and
 * ENOSPC on write and fsync, ended by a power cut at a seeded step, then a
 * restart on a healthy disk. Invariants after every run: no confirmed
 * message is lost (unless it was acked: an ack whose write failed may still
 * have reached the disk), no message whose ack was proven durable comes
 * back, and nothing appears that was never published.
 *
 * CELERITY_FAULT_RUNS sets the number of runs (default 20); the seeds are
 * drawn afresh each time and printed; CELERITY_FAULT_SEED=<n> replays one.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Delivery, Envelope } from "../envelope.ts";
import { faultyDisk, seededRandom } from "../log/faulty-disk.ts";
import { tempDir } from "../log/durable-log-test-support.ts";
import type { Consumer } from "../transport.ts";
import { within } from "../../tests/support/waits.ts";
import { BrokerNode } from "./node-server.ts";
import { NodeTransport } from "./node-transport.ts";

const QUEUE = "faults";
const RUNS = Number(process.env.CELERITY_FAULT_RUNS ?? 20);
const FIRST_SEED =
  process.env.CELERITY_FAULT_SEED === undefined
    ? Math.floor(Math.random() * 2 ** 31)
    : Number(process.env.CELERITY_FAULT_SEED);
const SEEDS =
  process.env.CELERITY_FAULT_SEED === undefined ? Array.from({ length: RUNS }, (_, i) => FIRST_SEED + i) : [FIRST_SEED];

const envelope = (id: string): Envelope => ({
  id,
  exchange: "",
  routingKey: QUEUE,
  priority: 0,
  headers: {},
  body: new TextEncoder().encode(id),
});

interface Outcome {
  readonly published: Set<string>;
  readonly confirmed: Set<string>;
  readonly durablyAcked: Set<string>;
  /** Acked, durably or not: an ack whose write failed may still have reached the disk. */
  readonly ackSent: Set<string>;
  readonly story: string[];
}

/** One seeded run up to its power cut. */
const runUntilCut = async (seed: number, dir: string): Promise<Outcome> => {
  const random = seededRandom(seed ^ 0x5bd1e995);
  const disk = faultyDisk(seed, { faultRate: 0.04 });
  const outcome: Outcome = {
    published: new Set(),
    confirmed: new Set(),
    durablyAcked: new Set(),
    ackSent: new Set(),
    story: [],
  };
  let cut = false;
  let node: BrokerNode;
  try {
    node = await BrokerNode.start(
      { port: 0, dataDir: dir, log: (line) => outcome.story.push(`node: ${line}`) },
      { openSegment: disk.openSegment },
    );
  } catch (error) {
    outcome.story.push(`start failed: ${String(error)}`);
    await disk.cut();
    return outcome;
  }
  const client = await NodeTransport.connect(node.url, { requestTimeoutMs: 5_000 });
  const held: Delivery[] = [];
  let consumer: Consumer | undefined;
  try {
    consumer = await client.consume(QUEUE, (delivery) => held.push(delivery), { prefetch: 1_000 });
    const steps = 10 + Math.floor(random() * 40);
    const cutAt = Math.floor(random() * steps);
    let next = 0;
    for (let step = 0; step < cutAt; step++) {
      if (random() < 0.6) {
        const ids = Array.from({ length: 1 + Math.floor(random() * 3) }, () => `m${next++}`);
        for (const id of ids) outcome.published.add(id);
        const settled = await Promise.allSettled(ids.map((id) => client.publish(envelope(id))));
        settled.forEach((result, i) => {
          if (result.status === "fulfilled" && !cut) outcome.confirmed.add(ids[i]);
        });
        outcome.story.push(`step ${step}: published ${ids.join(", ")}: ${settled.map((r) => r.status).join(", ")}`);
      } else {
        const acking = held.splice(0, Math.floor(random() * (held.length + 1)));
        for (const delivery of acking) {
          consumer.ack(delivery.deliveryTag);
          outcome.ackSent.add(delivery.envelope.id);
        }
        // A read answers only once every change before it is durable: it proves the acks are.
        const proven = await client.stats(QUEUE).then(
          () => true,
          () => false,
        );
        if (proven && !cut) for (const delivery of acking) outcome.durablyAcked.add(delivery.envelope.id);
        outcome.story.push(
          `step ${step}: acked ${acking.map((d) => d.envelope.id).join(", ") || "nothing"}: ${proven ? "durable" : "not proven"}`,
        );
      }
    }
  } finally {
    cut = true;
    await disk.cut();
    outcome.story.push(...disk.events.map((event) => `disk op ${event.op}: ${event.what}`));
    client.client.close();
    await node.stop().catch((error: unknown) => outcome.story.push(`stop: ${String(error)}`));
  }
  return outcome;
};

/** Every message the node holds after a restart on a healthy disk. */
const recovered = async (dir: string): Promise<string[]> => {
  const node = await BrokerNode.start({ port: 0, dataDir: dir, log: () => {} });
  const client = await NodeTransport.connect(node.url);
  try {
    const stats = await client.stats(QUEUE).catch(() => undefined);
    const expected = stats === undefined ? 0 : stats.ready + stats.delayed;
    const got: string[] = [];
    if (expected > 0) {
      await client.consume(QUEUE, (delivery) => got.push(delivery.envelope.id), { prefetch: 10_000 });
      await within(
        (async () => {
          while (got.length < expected) await new Promise((resolve) => setTimeout(resolve, 2));
        })(),
        5_000,
        `${expected} recovered messages`,
        () => `got ${got.length}`,
      );
    }
    return got;
  } finally {
    await client.close();
    await node.stop();
  }
};

describe("broker node under injected storage faults and power cuts", () => {
  it(`loses no confirmed message and brings back no durably acked one (${SEEDS.length} seeded runs from seed ${FIRST_SEED})`, {
    timeout: 300_000,
  }, async (t) => {
    t.diagnostic(
      `fault-injection seeds ${SEEDS[0]}..${SEEDS[SEEDS.length - 1]}; replay one with CELERITY_FAULT_SEED=<seed>`,
    );
    for (const seed of SEEDS) {
      const dir = await tempDir();
      const outcome = await runUntilCut(seed, dir);
      const present = await recovered(dir);
      const presentSet = new Set(present);
      const why = () =>
        `seed ${seed} (replay: CELERITY_FAULT_SEED=${seed})\n${outcome.story.join("\n")}\nrecovered: ${present.join(", ")}`;
      for (const id of outcome.confirmed) {
        if (!outcome.ackSent.has(id)) assert.ok(presentSet.has(id), `confirmed message ${id} was lost; ${why()}`);
      }
      for (const id of outcome.durablyAcked) assert.ok(!presentSet.has(id), `acked message ${id} came back; ${why()}`);
      for (const id of present) assert.ok(outcome.published.has(id), `${id} was never published; ${why()}`);
      assert.equal(presentSet.size, present.length, `a message is held twice; ${why()}`);
    }
  });
});
