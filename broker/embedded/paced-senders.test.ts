import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DEFAULT_TURN_BUDGET, DrainScheduler } from "./drain-scheduler.ts";
import { EmbeddedBroker, RESOLVED } from "./embedded-broker.ts";
import type { Envelope } from "../envelope.ts";

let seq = 0;
const envelope = (routingKey: string): Envelope => ({
  id: `p-${++seq}`,
  exchange: "",
  routingKey,
  priority: 0,
  headers: {},
  body: new Uint8Array(0),
});

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A consumer of `queue` that acks each delivery as it comes; `received` lists the ids delivered, in order. */
const ackingConsumer = async (broker: EmbeddedBroker, queue: string, prefetch = 64) => {
  const received: string[] = [];
  const consumer = await broker.consume(
    queue,
    (d) => {
      received.push(d.envelope.id);
      consumer.ack(d.deliveryTag);
    },
    { prefetch },
  );
  return received;
};

/** Publish `total` messages in batches of `batch`, awaiting each batch's confirms as a producer does; returns the largest backlog seen. */
const produce = async (
  broker: EmbeddedBroker,
  queue: string,
  total: number,
  batch: number,
  delivered: () => number,
) => {
  let largestBacklog = 0;
  for (let sent = 0; sent < total; ) {
    const confirms: Promise<void>[] = [];
    for (let i = 0; i < batch; i++, sent++) confirms.push(broker.publish(envelope(queue)));
    await Promise.all(confirms);
    largestBacklog = Math.max(largestBacklog, sent - delivered());
  }
  return largestBacklog;
};

describe("a producer in the same process is paced by its consumers", () => {
  it("DrainScheduler.nextTurn is undefined while runs keep up, and resolves after the run that waited for the next turn", async () => {
    let work = 0;
    const runs: number[] = [];
    const drains = new DrainScheduler(
      (budget) => {
        const done = Math.min(budget, work);
        work -= done;
        runs.push(done);
        return done;
      },
      () => work > 0,
      10,
    );
    assert.equal(drains.nextTurn(), undefined);
    work = 25;
    drains.schedule();
    await Promise.resolve();
    // The first run spent the turn's budget of 10: the rest waits for setImmediate, and so does a paced sender.
    assert.deepEqual(runs, [10]);
    const waited = drains.nextTurn();
    assert.ok(waited instanceof Promise);
    assert.equal(drains.nextTurn(), waited, "every sender of the turn shares one promise");
    await waited;
    assert.ok(runs.length >= 2, `resolved only after the deferred run (runs: ${runs.join(", ")})`);
    assert.equal(runs[1], 10);
  });

  it("stop releases senders waiting for the next turn", async () => {
    let work = 100;
    const drains = new DrainScheduler(
      (budget) => {
        const done = Math.min(budget, work);
        work -= done;
        return done;
      },
      () => work > 0,
      10,
    );
    drains.schedule();
    await Promise.resolve();
    const waited = drains.nextTurn();
    assert.ok(waited instanceof Promise);
    drains.stop();
    await waited;
    assert.equal(drains.nextTurn(), undefined);
  });

  it("a consumer receives while a producer sends in a loop, so the backlog stays within two turns' deliveries", async () => {
    const broker = new EmbeddedBroker();
    const received = await ackingConsumer(broker, "paced");
    await nextTurn();
    const total = 8 * DEFAULT_TURN_BUDGET;
    const largestBacklog = await produce(broker, "paced", total, 1_000, () => received.length);
    assert.ok(
      largestBacklog <= 2 * DEFAULT_TURN_BUDGET + 1_000,
      `the producer ran ${largestBacklog} messages ahead of its consumer`,
    );
    await broker.close();
  });

  it("while deliveries wait for the next turn, only a publish into a backlog of a turn's deliveries waits with them", async () => {
    const broker = new EmbeddedBroker();
    await ackingConsumer(broker, "big");
    await nextTurn();
    for (let i = 0; i < 2 * DEFAULT_TURN_BUDGET + 500; i++) void broker.publish(envelope("big"));
    // The first run delivers a turn's budget; the rest waits for the next turn.
    await Promise.resolve();
    assert.ok((await broker.stats("big")).ready >= DEFAULT_TURN_BUDGET);
    assert.equal(broker.publish(envelope("small")), RESOLVED, "a burst into a short queue is not held up");
    const paced = broker.publish(envelope("big"));
    assert.notEqual(paced, RESOLVED, "a publish into the backlog waits for the next turn");
    await paced;
    await broker.close();
  });

  it("a flood sent while a consumer is being attached is confirmed once that consumer has some of it", async () => {
    const broker = new EmbeddedBroker();
    const received = await ackingConsumer(broker, "attaching", 8);
    const first = envelope("attaching");
    assert.equal(broker.publish(first), RESOLVED, "a lone send is not held up");
    await Promise.all(Array.from({ length: DEFAULT_TURN_BUDGET }, () => broker.publish(envelope("attaching"))));
    assert.equal(received[0], first.id);
    await broker.close();
  });

  it("with paceSenders off (the broker node), every publish confirms at once", async () => {
    const broker = new EmbeddedBroker({ paceSenders: false });
    const received = await ackingConsumer(broker, "unpaced");
    assert.equal(broker.publish(envelope("unpaced")), RESOLVED);
    await nextTurn();
    const total = 4 * DEFAULT_TURN_BUDGET;
    const largestBacklog = await produce(broker, "unpaced", total, 1_000, () => received.length);
    assert.ok(largestBacklog > 2 * DEFAULT_TURN_BUDGET + 1_000, `backlog ${largestBacklog}: the producer was paced`);
    await broker.close();
  });
});
