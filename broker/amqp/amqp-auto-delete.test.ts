/**
 * Auto-delete queues on RabbitMQ when the subscriber's process dies:
 * nothing cancels its consumer, RabbitMQ sees its connection close and
 * deletes the queue with its bindings.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { WatchedProcess } from "../../tests/support/watched-process.ts";
import { eventually, scaled } from "../../tests/support/waits.ts";
import { AmqpTransport } from "./amqp-transport.ts";
import { testVhost } from "./amqp-test-broker.ts";

const SUBSCRIBER = fileURLToPath(new URL("../../tests/fixtures/auto-delete-subscriber.ts", import.meta.url));
const server = await testVhost("auto-delete");

describe("auto-delete queues on rabbitmq", () => {
  it("deletes a subscriber's queue and its binding once the subscriber is killed", {
    timeout: scaled(120_000),
    skip: "skip" in server ? server.skip : false,
  }, async (t) => {
    if ("skip" in server) return;
    t.after(() => server.dispose());
    const transport = await AmqpTransport.connect(server.url, { log: () => {} });
    t.after(() => transport.close());
    const queue = `replies-${randomUUID().slice(0, 8)}`;
    const exchange = `fan-${randomUUID().slice(0, 8)}`;
    const subscriber = new WatchedProcess("subscriber", process.execPath, [
      "--import",
      "tsx",
      SUBSCRIBER,
      server.url,
      queue,
      exchange,
    ]);
    t.after(() => subscriber.kill());
    await subscriber.waitFor(/consuming/, scaled(60_000));
    const listed = (await transport.listQueues()).find((q) => q.name === queue);
    assert.deepEqual([listed?.autoDelete, listed?.consumers], [true, 1]);
    await subscriber.stop("SIGKILL", scaled(5_000));
    await eventually(async () => !(await transport.listQueues()).some((q) => q.name === queue), {
      timeoutMs: scaled(5_000),
      intervalMs: 50,
      what: `the killed subscriber's auto-delete queue "${queue}" to be deleted`,
    });
    await assert.rejects(
      transport.publish(
        { id: randomUUID(), exchange, routingKey: "", priority: 0, headers: {}, body: new Uint8Array([0x90]) },
        { mandatory: true },
      ),
      /routes routing key "" to no queue/,
    );
  });
});
