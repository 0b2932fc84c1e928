/**
 * The node on a disk that fails the way real ones do (broker/log/faulty-disk.ts):
 * seeded runs of publishes and acks with injected short writes, EIO and
 * ENOSPC on write and fsync, outages that clear after a while (the log
 * reopens from what is known durable and goes on), ended by a power cut at a
 * seeded step, then a restart on a healthy disk. Invariants after every run:
 * no confirmed message is lost (unless it was acked: an ack whose write
 * failed may still have reached the disk), no message whose ack was proven
 * durable comes back, nothing appears that was never published, and no
 * refused publish was ever delivered.
 *
 * A seed determines the whole run: every step waits for what it caused to
 * settle (one record per write, the deliveries it made), and the log's
 * attempts to reopen run when the run fires them, at fixed points, not on a
 * timer. So the same seed gives the same operations, faults and outcomes,
 * which the last test checks by running one seed twice.
 *
 * CELERITY_FAULT_RUNS sets the number of runs (default 20); the seeds are
 * drawn afresh each time and printed; CELERITY_FAULT_SEED=<n> replays one.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Delivery, Envelope } from "../envelope.ts";
import type { ReopenTimers } from "../log/durable-log-options.ts";
import { faultyDisk, seededRandom } from "../log/faulty-disk.ts";
import { tempDir } from "../log/durable-log-test-support.ts";
import type { Consumer } from "../transport.ts";
import { scaled, within } from "../../tests/support/waits.ts";
import { BrokerNode } from "./node-server.ts";
import { NodeTransport } from "./client/node-transport.ts";

const QUEUE = "faults";
const RUNS = Number(process.env.CELERITY_FAULT_RUNS ?? 20);
const FIRST_SEED =
  process.env.CELERITY_FAULT_SEED === undefined
    ? Math.floor(Math.random() * 2 ** 31)
    : Number(process.env.CELERITY_FAULT_SEED);
const SEEDS =
  process.env.CELERITY_FAULT_SEED === undefined ? Array.from({ length: RUNS }, (_, i) => FIRST_SEED + i) : [FIRST_SEED];

/** Replayed twice by the last test unless CELERITY_FAULT_SEED names another: its run fails writes and reopens the log twice. */
const REPLAYED_SEED = 1;

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
  readonly refused: Set<string>;
  readonly delivered: Set<string>;
  readonly durablyAcked: Set<string>;
  /** Acked, durably or not: an ack whose write failed may still have reached the disk. */
  readonly ackSent: Set<string>;
  /** What the run did and saw, step by step: the same for the same seed. */
  readonly story: string[];
  /** What the node logged about its log, in order. */
  readonly nodeLog: string[];
  /** What the disk did, in order. */
  readonly disk: string[];
}

/** The log's waits before reopening, held until the run fires them. */
const heldTimers = () => {
  let pending: (() => void) | undefined;
  const timers: ReopenTimers = {
    setTimeout: (run) => {
      pending = run;
      return { unref: () => undefined };
    },
    clearTimeout: () => {
      pending = undefined;
    },
  };
  return {
    timers,
    fire: (): boolean => {
      const run = pending;
      pending = undefined;
      run?.();
      return run !== undefined;
    },
  };
};

/** Node log lines, with a way to wait for the next one that matches. */
const nodeLines = (dir: string) => {
  const lines: string[] = [];
  const waiters: { pattern: RegExp; from: number; wake: (line: string) => void }[] = [];
  const add = (line: string) => {
    // Paths, ports and connection numbers differ from run to run; what happened does not.
    lines.push(
      line
        .split(dir)
        .join("<dir>")
        .replace(/127\.0\.0\.1:\d+/g, "127.0.0.1:<port>")
        .replace(/connection-\d+/g, "connection-<n>"),
    );
    for (const waiter of waiters.splice(0)) {
      const found = lines.slice(waiter.from).find((l) => waiter.pattern.test(l));
      if (found !== undefined) waiter.wake(found);
      else waiters.push(waiter);
    }
  };
  const next = (pattern: RegExp, from: number): Promise<string> =>
    within(
      new Promise<string>((wake) => {
        const found = lines.slice(from).find((l) => pattern.test(l));
        if (found !== undefined) wake(found);
        else waiters.push({ pattern, from, wake });
      }),
      scaled(10_000),
      `a node log line matching ${pattern}`,
      () => lines.join("\n"),
    );
  return { lines, add, next };
};

/** One seeded run up to its power cut. */
const runUntilCut = async (seed: number, dir: string): Promise<Outcome> => {
  const random = seededRandom(seed ^ 0x5bd1e995);
  const disk = faultyDisk(seed, { faultRate: 0.04, outageRate: 0.02, outageOps: 6 });
  const reopens = heldTimers();
  const log = nodeLines(dir);
  const outcome: Outcome = {
    published: new Set(),
    confirmed: new Set(),
    refused: new Set(),
    delivered: new Set(),
    durablyAcked: new Set(),
    ackSent: new Set(),
    story: [],
    nodeLog: log.lines,
    disk: [],
  };
  const say = (line: string) => outcome.story.push(line.split(dir).join("<dir>"));
  let node: BrokerNode;
  try {
    node = await BrokerNode.start(
      { port: 0, dataDir: dir, log: log.add },
      { openSegment: disk.openSegment, reopenTimers: reopens.timers },
    );
  } catch (error) {
    say(`start failed: ${String(error)}`);
    await disk.cut();
    outcome.disk.push(...disk.events.map((event) => `op ${event.op}: ${event.what}`));
    return outcome;
  }
  const client = await NodeTransport.connect(node.url, { requestTimeoutMs: 5_000 });
  const held: Delivery[] = [];
  let consumer: Consumer | undefined;
  /** Resolves once every confirmed message not acked has reached the consumer. */
  const allDelivered = () =>
    within(
      (async () => {
        const waiting = () => [...outcome.confirmed].filter((id) => !outcome.ackSent.has(id));
        while (!waiting().every((id) => held.some((d) => d.envelope.id === id)))
          await new Promise((resolve) => setTimeout(resolve, 2));
      })(),
      scaled(10_000),
      "every confirmed message delivered",
      () => outcome.story.join("\n"),
    );
  try {
    consumer = await client.consume(
      QUEUE,
      (delivery) => {
        held.push(delivery);
        outcome.delivered.add(delivery.envelope.id);
      },
      { prefetch: 1_000 },
    );
    const steps = 10 + Math.floor(random() * 40);
    const cutAt = Math.floor(random() * steps);
    let next = 0;
    for (let step = 0; step < cutAt; step++) {
      // A failed log's attempt to reopen runs here, at a fixed point of the run, not when a timer says.
      if (reopens.fire()) {
        const from = log.lines.length;
        const line = await log.next(/^the log is (not reopened yet|written again)/, from);
        // The acks refused meanwhile are written first thing after a reopen: a read waits for them.
        const settled = await client.stats(QUEUE).then(
          () => "settled",
          () => "refused",
        );
        say(`step ${step}: reopen attempt: ${line.replace(/ \(.*$/, "")}; the writes after it ${settled}`);
      }
      if (random() < 0.6) {
        const count = 1 + Math.floor(random() * 3);
        for (let i = 0; i < count; i++) {
          const id = `m${next++}`;
          outcome.published.add(id);
          // One at a time: each publish is one write, so the disk sees the same operations every time.
          const result = await client.publish(envelope(id)).then(
            () => "confirmed",
            (error: unknown) => `refused (${error instanceof Error ? error.message : String(error)})`,
          );
          (result === "confirmed" ? outcome.confirmed : outcome.refused).add(id);
          say(`step ${step}: published ${id}: ${result}`);
        }
      } else {
        // Each message was delivered as it was confirmed (a confirm never comes while deliveries pause): wait for all to arrive.
        await allDelivered();
        const acking = held.splice(0, Math.floor(random() * (held.length + 1)));
        for (const delivery of acking) {
          consumer.ack(delivery.deliveryTag);
          outcome.ackSent.add(delivery.envelope.id);
          // A read answers only once every change before it is durable: it proves the ack is. One ack per write.
          const proven = await client.stats(QUEUE).then(
            () => true,
            () => false,
          );
          if (proven) outcome.durablyAcked.add(delivery.envelope.id);
          say(`step ${step}: acked ${delivery.envelope.id}: ${proven ? "durable" : "not proven"}`);
        }
        if (acking.length === 0) say(`step ${step}: acked nothing`);
      }
    }
  } finally {
    await disk.cut();
    outcome.disk.push(...disk.events.map((event) => `op ${event.op}: ${event.what}`));
    client.client.close();
    await node.stop().catch((error: unknown) => say(`stop: ${String(error)}`));
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
        scaled(5_000),
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

/** The run of `seed` and what a restart found, as lines to compare or print. */
const traceOf = (outcome: Outcome, present: readonly string[]): string[] => [
  ...outcome.story,
  ...outcome.nodeLog.filter((line) => !/^listening on/.test(line)).map((line) => `node: ${line}`),
  ...outcome.disk.map((line) => `disk ${line}`),
  `recovered: ${present.join(", ")}`,
];

describe("broker node under injected storage faults and power cuts", () => {
  it(`loses no confirmed message, brings back no durably acked one and delivers no refused one (${SEEDS.length} seeded runs from seed ${FIRST_SEED})`, {
    timeout: 600_000,
  }, async (t) => {
    t.diagnostic(
      `fault-injection seeds ${SEEDS[0]}..${SEEDS[SEEDS.length - 1]}; replay one with CELERITY_FAULT_SEED=<seed>`,
    );
    let reopened = 0;
    for (const seed of SEEDS) {
      const dir = await tempDir();
      const outcome = await runUntilCut(seed, dir);
      const present = await recovered(dir);
      const presentSet = new Set(present);
      reopened += outcome.nodeLog.filter((line) => /^the log is written again/.test(line)).length;
      const why = () => `seed ${seed} (replay: CELERITY_FAULT_SEED=${seed})\n${traceOf(outcome, present).join("\n")}`;
      for (const id of outcome.confirmed) {
        if (!outcome.ackSent.has(id)) assert.ok(presentSet.has(id), `confirmed message ${id} was lost; ${why()}`);
      }
      for (const id of outcome.durablyAcked) assert.ok(!presentSet.has(id), `acked message ${id} came back; ${why()}`);
      for (const id of present) assert.ok(outcome.published.has(id), `${id} was never published; ${why()}`);
      for (const id of outcome.refused) assert.ok(!outcome.delivered.has(id), `refused ${id} was delivered; ${why()}`);
      assert.equal(presentSet.size, present.length, `a message is held twice; ${why()}`);
    }
    t.diagnostic(`the log reopened after a failure ${reopened} times across the runs`);
  });

  it("replays a seed exactly: the same operations, faults and outcomes", {
    timeout: 120_000,
  }, async (t) => {
    const seed = process.env.CELERITY_FAULT_SEED === undefined ? REPLAYED_SEED : FIRST_SEED;
    const traces: string[][] = [];
    for (let run = 0; run < 2; run++) {
      const dir = await tempDir();
      const outcome = await runUntilCut(seed, dir);
      traces.push(traceOf(outcome, await recovered(dir)));
    }
    t.diagnostic(`seed ${seed}: ${traces[0].length} trace lines`);
    assert.ok(
      traces[0].some((line) => /disk op \d+: .*failed/.test(line)),
      `seed ${seed} injects no fault:\n${traces[0].join("\n")}`,
    );
    assert.deepEqual(traces[1], traces[0], `seed ${seed} ran differently the second time`);
  });
});
