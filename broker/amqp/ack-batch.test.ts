import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Channel, Message } from "amqplib";
import { AckBatch } from "./ack-batch.ts";

/** A channel that records the acks sent on it. */
const recorder = () => {
  const sent: [number, boolean][] = [];
  const channel = {
    ack: (message: Message, multiple?: boolean) => sent.push([message.fields.deliveryTag, multiple === true]),
  } as unknown as Channel;
  return { sent, channel };
};

describe("ack batch", () => {
  it("sends the acks of one turn as one multiple ack when they cover every tag from the start", () => {
    const { sent, channel } = recorder();
    const batch = new AckBatch(channel);
    for (const tag of [2, 1, 3]) batch.ack(tag);
    batch.flush();
    assert.deepEqual(sent, [[3, true]]);
  });

  it("never covers a delivery still held: tags above a gap go one by one", () => {
    const { sent, channel } = recorder();
    const batch = new AckBatch(channel);
    for (const tag of [1, 2, 4, 5]) batch.ack(tag); // 3 is still running
    batch.flush();
    assert.deepEqual(sent, [
      [2, true],
      [4, false],
      [5, false],
    ]);
    batch.ack(3);
    batch.flush();
    // Not 5: RabbitMQ refuses a multiple ack whose own tag was acked already.
    assert.deepEqual(sent.slice(3), [[3, true]]);
  });

  it("names in a multiple ack only a tag acked in this turn, never one acked before", () => {
    const { sent, channel } = recorder();
    const batch = new AckBatch(channel);
    batch.ack(2);
    batch.flush();
    batch.settled(1);
    batch.ack(3);
    batch.flush();
    assert.deepEqual(sent, [
      [2, false],
      [3, true],
    ]);
  });

  it("lets a delivery settled by a nack close the gap", () => {
    const { sent, channel } = recorder();
    const batch = new AckBatch(channel);
    batch.settled(1);
    batch.ack(2);
    batch.flush();
    assert.deepEqual(sent, [[2, true]]);
  });

  it("sends nothing when nothing was acked, and stops quietly on a closed channel", () => {
    const { sent, channel } = recorder();
    new AckBatch(channel).flush();
    assert.deepEqual(sent, []);
    const closed = new AckBatch({
      ack: () => {
        throw new Error("Channel closed");
      },
    } as unknown as Channel);
    closed.ack(1);
    assert.doesNotThrow(() => closed.flush());
  });
});
