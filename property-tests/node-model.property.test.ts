/**
 * Model-based test of a durable broker node: random sequences of publishes,
 * consumers opening, acks, nacks (requeue), clients vanishing and node
 * restarts (same port: the clients reconnect by themselves; new port: the
 * clients connect again), run against an in-process BrokerNode with a data
 * dir and checked against a reference model of the queue:
 *
 * - confirmed: messages whose publish resolved;
 * - acked: messages a consumer acknowledged (the node is known to have applied it);
 * - everything confirmed and not acked is outstanding: held by a consumer
 *   (delivered, unacked) or ready.
 *
 * After every command, once the system is quiet: the consumers hold exactly
 * min(outstanding, their total prefetch) distinct outstanding messages (so
 * every message is delivered while a consumer has room), none acked, and the
 * node's stats agree. At the end a fresh consumer drains the queue and gets
 * exactly the outstanding messages: no confirmed message is lost, no acked
 * one comes back.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { Delivery, Envelope } from "../broker/envelope.ts";
import { BrokerNode } from "../broker/node/node-server.ts";
import { NodeTransport } from "../broker/node/client/node-transport.ts";
import type { Consumer } from "../broker/transport.ts";
import { within } from "../tests/support/waits.ts";

const QUEUE = "q";
const SLOTS = 2;
/** How long the system may take to become quiet after a command before the run fails. */
const QUIET_TIMEOUT_MS = 3_000;

const envelope = (id: string): Envelope => ({
  id,
  exchange: "",
  routingKey: QUEUE,
  priority: 0,
  headers: { task: "model" },
  body: new TextEncoder().encode(id),
});

// ---------------------------------------------------------------------------
// The model

interface SlotModel {
  /** The prefetch of this client's consumer, or 0 when it has none. */
  prefetch: number;
}

interface Model {
  nextId: number;
  readonly confirmed: Set<string>;
  readonly acked: Set<string>;
  readonly slots: SlotModel[];
}

const outstanding = (model: Readonly<Model>): string[] => [...model.confirmed].filter((id) => !model.acked.has(id));

// ---------------------------------------------------------------------------
// The real system

/** One client: a transport, maybe a consumer, and the deliveries it holds on its current connection. */
class Slot {
  consumer: Consumer | undefined;
  private closed = false;
  /** Deliveries received on the current connection and not settled. */
  held: Delivery[] = [];
  private dropWaiters: (() => void)[] = [];

  private constructor(
    readonly transport: NodeTransport,
    private readonly real: Real,
  ) {}

  static async connect(real: Real, url: string): Promise<Slot> {
    let slot: Slot | undefined;
    const transport = await NodeTransport.connect(url, {
      reconnectMinMs: 5,
      reconnectMaxMs: 20,
      requestTimeoutMs: 5_000,
      // The client reports a lost connection here, before it reconnects: what it held on it is stale.
      log: (message) => {
        if (slot !== undefined && /^lost the connection/.test(message)) slot.lost();
      },
    });
    slot = new Slot(transport, real);
    return slot;
  }

  async consume(prefetch: number): Promise<void> {
    this.consumer = await this.transport.consume(QUEUE, (delivery) => this.received(delivery), { prefetch });
  }

  /** Resolves when the client notices that its connection is gone. */
  dropped(): Promise<void> {
    return new Promise((resolve) => this.dropWaiters.push(resolve));
  }

  /** Gone for good: whatever arrives on the closing connection is ignored. */
  close(): void {
    this.closed = true;
    this.transport.client.close();
    this.held = [];
    this.consumer = undefined;
  }

  private received(delivery: Delivery): void {
    if (this.closed) return;
    const id = delivery.envelope.id;
    if (this.real.acked.has(id)) this.real.violations.push(`acked message ${id} delivered again`);
    if (!this.real.published.has(id)) this.real.violations.push(`message ${id} was never published`);
    this.held.push(delivery);
    this.real.changed();
  }

  private lost(): void {
    this.held = [];
    for (const wake of this.dropWaiters.splice(0)) wake();
    this.real.changed();
  }
}

class Real {
  node!: BrokerNode;
  port = 0;
  slots: Slot[] = [];
  /** Mirrors of the model, for checks made as deliveries arrive. */
  readonly acked = new Set<string>();
  readonly published = new Set<string>();
  readonly violations: string[] = [];
  private listeners = new Set<() => void>();

  constructor(readonly dataDir: string) {}

  get url(): string {
    return `celerity://127.0.0.1:${this.port}`;
  }

  async startNode(port: number): Promise<void> {
    this.node = await BrokerNode.start({ port, dataDir: this.dataDir, log: () => {} });
    this.port = this.node.address.port;
  }

  changed(): void {
    for (const listener of [...this.listeners]) listener();
  }

  /** Resolves once `condition` holds, re-checked on every delivery or lost connection. */
  until(condition: () => boolean): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve) => {
      const listener = () => {
        if (!condition()) return;
        this.listeners.delete(listener);
        resolve();
      };
      this.listeners.add(listener);
    });
  }

  heldIds(): string[] {
    return this.slots.flatMap((slot) => slot.held.map((d) => d.envelope.id));
  }

  async close(): Promise<void> {
    for (const slot of this.slots) slot.close();
    this.slots = [];
    await this.node?.stop().catch(() => {});
  }
}

/**
 * Wait until the system is quiet, then compare it with the model: the
 * consumers hold exactly min(outstanding, total prefetch) distinct
 * outstanding messages, each within its prefetch, and the node agrees.
 */
const quiet = async (model: Readonly<Model>, real: Real, after: string): Promise<void> => {
  const expected = outstanding(model);
  const capacity = model.slots.reduce((sum, slot) => sum + slot.prefetch, 0);
  const toHold = Math.min(expected.length, capacity);
  const explain = () =>
    `after ${after}: expected ${toHold} held of outstanding [${expected.join(",")}], ` +
    `held ${real.slots.map((slot, i) => `#${i}[${slot.held.map((d) => d.envelope.id).join(",")}]`).join(" ")}; violations: ${real.violations.join("; ")}`;
  await within(
    real.until(() => real.heldIds().length >= toHold || real.violations.length > 0),
    QUIET_TIMEOUT_MS,
    explain,
  );
  // A round trip on every connection: deliveries the node made before answering have arrived.
  const stats = await Promise.all(real.slots.map((slot) => slot.transport.stats(QUEUE)));
  assert.deepEqual(real.violations, [], explain());
  const held = real.heldIds();
  assert.equal(new Set(held).size, held.length, `a message is held twice: ${explain()}`);
  assert.equal(held.length, toHold, explain());
  const expectedSet = new Set(expected);
  for (const id of held) assert.ok(expectedSet.has(id), `held ${id} is not outstanding: ${explain()}`);
  real.slots.forEach((slot, i) =>
    assert.ok(slot.held.length <= model.slots[i].prefetch, `slot ${i} holds more than its prefetch: ${explain()}`),
  );
  const consumers = model.slots.filter((slot) => slot.prefetch > 0).length;
  assert.deepEqual(
    stats[0],
    { ready: expected.length - toHold, delayed: 0, unacked: toHold, consumers },
    `node stats ${explain()}`,
  );
};

// ---------------------------------------------------------------------------
// Commands

type Cmd = fc.AsyncCommand<Model, Real>;

class Publish implements Cmd {
  constructor(readonly slot: number) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    const id = `m-${model.nextId++}`;
    real.published.add(id);
    await real.slots[this.slot].transport.publish(envelope(id));
    model.confirmed.add(id);
    await quiet(model, real, this.toString());
  }
  toString = () => `publish via #${this.slot}`;
}

class Consume implements Cmd {
  constructor(
    readonly slot: number,
    readonly prefetch: number,
  ) {}
  check = (model: Readonly<Model>) => model.slots[this.slot].prefetch === 0;
  async run(model: Model, real: Real): Promise<void> {
    await real.slots[this.slot].consume(this.prefetch);
    model.slots[this.slot].prefetch = this.prefetch;
    await quiet(model, real, this.toString());
  }
  toString = () => `consume on #${this.slot} (prefetch ${this.prefetch})`;
}

/** Settle the `pick`-th delivery the client holds (if it holds any). */
class Settle implements Cmd {
  constructor(
    readonly how: "ack" | "nack",
    readonly slot: number,
    readonly pick: number,
  ) {}
  check = (model: Readonly<Model>) => model.slots[this.slot].prefetch > 0;
  async run(model: Model, real: Real): Promise<void> {
    const slot = real.slots[this.slot];
    if (slot.held.length === 0 || slot.consumer === undefined) return;
    const [delivery] = slot.held.splice(this.pick % slot.held.length, 1);
    const id = delivery.envelope.id;
    if (this.how === "ack") {
      slot.consumer.ack(delivery.deliveryTag);
      model.acked.add(id);
      real.acked.add(id);
    } else {
      slot.consumer.nack(delivery.deliveryTag, { requeue: true });
    }
    // Acks and nacks are one-way: a round trip on the same connection proves the node applied it.
    await slot.transport.stats(QUEUE);
    await quiet(model, real, this.toString());
  }
  toString = () => `${this.how} the ${this.pick}th held by #${this.slot}`;
}

/** The client vanishes without settling what it holds; a new client takes its place (without a consumer). */
class Disconnect implements Cmd {
  constructor(readonly slot: number) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    real.slots[this.slot].close();
    real.slots[this.slot] = await Slot.connect(real, real.url);
    model.slots[this.slot].prefetch = 0;
    real.changed();
    await quiet(model, real, this.toString());
  }
  toString = () => `disconnect #${this.slot}`;
}

/** Stop the node and start it again on the same data dir. */
class Restart implements Cmd {
  constructor(readonly samePort: boolean) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    if (this.samePort) {
      // The clients stay and reconnect by themselves; what they held is stale once they notice the drop.
      const drops = real.slots.map((slot) => slot.dropped());
      await real.node.stop();
      await within(Promise.all(drops), QUIET_TIMEOUT_MS, () => "every client to notice the node stopped");
      await real.startNode(real.port);
      // Requests wait for the reconnection (consumers are reopened before they are sent).
      await within(
        Promise.all(real.slots.map((slot) => slot.transport.stats(QUEUE))),
        QUIET_TIMEOUT_MS,
        () => "the clients to reconnect",
      );
    } else {
      for (const slot of real.slots) slot.close();
      await real.node.stop();
      await real.startNode(0);
      real.slots = await Promise.all(real.slots.map(() => Slot.connect(real, real.url)));
      for (let i = 0; i < SLOTS; i++)
        if (model.slots[i].prefetch > 0) await real.slots[i].consume(model.slots[i].prefetch);
    }
    await quiet(model, real, this.toString());
  }
  toString = () => `restart the node${this.samePort ? " on the same port" : " on a new port"}`;
}

const slotArb = fc.integer({ min: 0, max: SLOTS - 1 });
/** Weighted by repetition: publishes and acks are the common case, restarts and vanishing clients the faults. */
const commandArbs: fc.Arbitrary<Cmd>[] = [
  ...Array.from({ length: 3 }, () => slotArb.map((slot): Cmd => new Publish(slot))),
  ...Array.from({ length: 2 }, () =>
    fc.tuple(slotArb, fc.integer({ min: 1, max: 3 })).map(([slot, prefetch]): Cmd => new Consume(slot, prefetch)),
  ),
  ...Array.from({ length: 3 }, () =>
    fc.tuple(slotArb, fc.nat(9)).map(([slot, pick]): Cmd => new Settle("ack", slot, pick)),
  ),
  fc.tuple(slotArb, fc.nat(9)).map(([slot, pick]): Cmd => new Settle("nack", slot, pick)),
  slotArb.map((slot): Cmd => new Disconnect(slot)),
  fc.boolean().map((samePort): Cmd => new Restart(samePort)),
];

// ---------------------------------------------------------------------------

/** Close every client, restart the node, and drain with a fresh consumer: exactly the outstanding messages come out. */
const drainAndCheck = async (model: Readonly<Model>, real: Real): Promise<void> => {
  for (const slot of real.slots) slot.close();
  real.slots = [];
  await real.node.stop();
  await real.startNode(0);
  const expected = outstanding(model);
  const drainer = await NodeTransport.connect(real.url, { requestTimeoutMs: 5_000 });
  try {
    const seen: string[] = [];
    let wake = () => {};
    const all = new Promise<void>((resolve) => (wake = () => void (seen.length >= expected.length && resolve())));
    wake();
    await drainer.consume(
      QUEUE,
      (delivery) => {
        seen.push(delivery.envelope.id);
        wake();
      },
      { prefetch: 1_000 },
    );
    await within(all, QUIET_TIMEOUT_MS, () => `the drain: expected [${expected.join(",")}], got [${seen.join(",")}]`);
    const stats = await drainer.stats(QUEUE);
    assert.deepEqual(
      [...seen].sort(),
      [...expected].sort(),
      `drained after a restart: lost ${expected.filter((id) => !seen.includes(id)).join(",") || "none"}, ` +
        `came back though acked ${seen.filter((id) => model.acked.has(id)).join(",") || "none"}, all [${seen.join(",")}]`,
    );
    assert.deepEqual(stats, { ready: 0, delayed: 0, unacked: expected.length, consumers: 1 });
  } finally {
    drainer.client.close();
  }
};

describe("broker node against a model of its queue", () => {
  it("loses no confirmed message, never redelivers an acked one, and delivers while a consumer has room", {
    timeout: 300_000, // a hundred runs of a node and its clients: CPU-bound, minutes on a loaded machine
  }, async () => {
    await fc.assert(
      fc.asyncProperty(fc.commands(commandArbs, { maxCommands: 25, size: "max" }), async (commands) => {
        const dataDir = mkdtempSync(join(tmpdir(), "celerity-model-"));
        const real = new Real(dataDir);
        try {
          await real.startNode(0);
          real.slots = await Promise.all(Array.from({ length: SLOTS }, () => Slot.connect(real, real.url)));
          // Redeliveries (nacks, vanished clients) must never dead-letter a message within a run.
          await real.slots[0].transport.declareQueue(QUEUE, { maxDeliveries: 1_000 });
          const model: Model = {
            nextId: 0,
            confirmed: new Set(),
            acked: new Set(),
            slots: Array.from({ length: SLOTS }, () => ({ prefetch: 0 })),
          };
          await fc.asyncModelRun(() => ({ model, real }), commands);
          await drainAndCheck(model, real);
        } finally {
          await real.close();
          rmSync(dataDir, { recursive: true, force: true });
        }
      }),
      { numRuns: 100 },
    );
  });
});
