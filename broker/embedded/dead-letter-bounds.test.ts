import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InvalidArgumentError } from "../errors.ts";
import type { Delivery } from "../envelope.ts";
import { EmbeddedBroker } from "./embedded-broker.ts";
import { eventually } from "../../tests/support/waits.ts";

/** Publish `n` messages of `bytes` bytes to a queue and reject every one to its dead-letter queue. */
const rejectAll = async (broker: EmbeddedBroker, n: number, bytes: number): Promise<void> => {
  await broker.declareQueue("work");
  for (let i = 0; i < n; i++)
    await broker.publish({
      id: `m${i}`,
      exchange: "",
      routingKey: "work",
      priority: 0,
      headers: {},
      body: new Uint8Array(bytes),
    });
  const held: Delivery[] = [];
  const consumer = await broker.consume("work", (delivery) => void held.push(delivery), { prefetch: 1_000 });
  await eventually(() => held.length === n, { what: `${n} deliveries` });
  for (const delivery of held) consumer.nack(delivery.deliveryTag, { requeue: false, reason: "refused" });
  await consumer.cancel();
};

describe("dead-letter queue bounds", () => {
  it("keeps at most maxDeadLetters dead letters, dropping the next in line and counting what it dropped", async () => {
    const broker = new EmbeddedBroker({ maxDeadLetters: 10 });
    await rejectAll(broker, 50, 10);
    const letters = await broker.deadLetters("work.dlq");
    assert.ok(letters.length <= 10 && letters.length >= 9, `${letters.length} letters kept`);
    const { deadLettered, deadLettersDropped } = broker.totals();
    assert.equal(deadLettered, 50);
    assert.equal(deadLettersDropped, 50 - letters.length);
    // The newest are kept.
    assert.ok(letters.some((letter) => letter.envelope.id === "m49"));
    await broker.close();
  });

  it("keeps at most maxDeadLetterBytes of bodies", async () => {
    const broker = new EmbeddedBroker({ maxDeadLetterBytes: 10_000 });
    await rejectAll(broker, 100, 1_000);
    const letters = await broker.deadLetters("work.dlq");
    const bytes = letters.reduce((sum, letter) => sum + letter.envelope.body.byteLength, 0);
    assert.ok(bytes <= 10_000, `${bytes} bytes kept`);
    assert.ok(letters.length >= 8, `${letters.length} letters kept`);
    await broker.close();
  });

  it("refuses bounds that are not positive integers, naming them", () => {
    assert.throws(
      () => new EmbeddedBroker({ maxDeadLetters: 0 }),
      (error: unknown) => error instanceof InvalidArgumentError && /maxDeadLetters/.test(error.message),
    );
    assert.throws(() => new EmbeddedBroker({ maxDeadLetterBytes: 1.5 }), /maxDeadLetterBytes/);
  });
});
