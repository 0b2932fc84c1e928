import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Envelope } from "../envelope.ts";
import { Header, deadLetterOf, envelopeOf, originHeaders, publishOptions } from "./amqp-message.ts";

const envelope: Envelope = {
  id: "m1",
  exchange: "orders",
  routingKey: "eu.created",
  priority: 7,
  eta: 1_700_000_000_123,
  expires: 1_700_000_060_000,
  headers: { task: "add", retries: 2, ratio: 0.5, eager: false, parent: null, skipped: undefined },
  body: new Uint8Array([1, 2, 3]),
};

/** What RabbitMQ hands a consumer for a message published with `options`. */
const delivered = (
  options: ReturnType<typeof publishOptions>,
  fields = { exchange: "orders", routingKey: "eu.created", redelivered: false },
) => ({
  fields,
  properties: { messageId: options.messageId, priority: options.priority, headers: options.headers },
  content: Buffer.from(envelope.body),
});

describe("amqp message mapping", () => {
  it("round-trips an envelope: id, routing, priority, eta, expiry, headers and body", () => {
    const { envelope: back, previousDeliveries } = envelopeOf(delivered(publishOptions(envelope, true)));
    const { skipped: _, ...defined } = envelope.headers;
    assert.deepEqual({ ...back, body: [...back.body] }, { ...envelope, headers: defined, body: [1, 2, 3] });
    assert.equal(previousDeliveries, 0);
  });

  it("keeps the original exchange and routing key of a copy sent straight to a queue", () => {
    const options = publishOptions(envelope, true, { ...originHeaders(envelope), [Header.deliveries]: 3 });
    const { envelope: back, previousDeliveries } = envelopeOf(
      delivered(options, { exchange: "", routingKey: "q", redelivered: false }),
    );
    assert.equal(back.exchange, "orders");
    assert.equal(back.routingKey, "eu.created");
    assert.equal(previousDeliveries, 3);
  });

  it("hides the transport's and RabbitMQ's own headers from the consumer", () => {
    const options = publishOptions(envelope, true, {
      "celerity-delay-3": "1",
      "celerity-delay-route": "queue:q",
      [Header.deliveries]: 1,
    });
    (options.headers as Record<string, unknown>)["x-death"] = [{ queue: "app.delay.3" }];
    const { envelope: back } = envelopeOf(delivered(options));
    assert.deepEqual(Object.keys(back.headers).sort(), ["eager", "parent", "ratio", "retries", "task"]);
  });

  it("clamps a priority out of range to 0-9", () => {
    assert.equal(publishOptions({ ...envelope, priority: 42 }, true).priority, 9);
  });

  it("reads a dead letter's reason, queue and time", () => {
    const options = publishOptions(envelope, true, {
      ...originHeaders(envelope),
      [Header.deadReason]: "expired",
      [Header.deadQueue]: "tasks",
      [Header.deadAt]: 42,
    });
    const letter = deadLetterOf(delivered(options, { exchange: "", routingKey: "tasks.dlq", redelivered: false }));
    assert.deepEqual(
      [letter.reason, letter.queue, letter.at, letter.envelope.routingKey],
      ["expired", "tasks", 42, "eu.created"],
    );
  });
});
