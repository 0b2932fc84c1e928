/**
 * Auto-delete queues on Redis when the subscriber's process dies: nothing
 * cancels its consumer, so the queue goes once the consumer's registration
 * lapses (its lease) and a transport's sweep finds it abandoned.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { WatchedProcess } from "../../tests/support/watched-process.ts";
import { eventually, scaled } from "../../tests/support/waits.ts";
import { isolatedTransport, redisSkipReason, testPrefix, TEST_REDIS_URL } from "./redis-test-support.ts";

const SUBSCRIBER = fileURLToPath(new URL("../../tests/fixtures/auto-delete-subscriber.ts", import.meta.url));
const skip = await redisSkipReason();

describe("auto-delete queues on redis", () => {
  it("deletes a subscriber's queue and its binding within its lease after the subscriber is killed", {
    timeout: scaled(120_000),
    skip,
  }, async (t) => {
    const prefix = testPrefix("autodelete");
    const transport = await isolatedTransport({ prefix, pollMs: 100 });
    t.after(() => transport.close());
    const queue = `replies-${randomUUID().slice(0, 8)}`;
    const exchange = `fan-${randomUUID().slice(0, 8)}`;
    const subscriber = new WatchedProcess("subscriber", process.execPath, [
      "--import",
      "tsx",
      SUBSCRIBER,
      TEST_REDIS_URL,
      queue,
      exchange,
      prefix,
    ]);
    t.after(() => subscriber.kill());
    await subscriber.waitFor(/consuming/, scaled(60_000));
    const listed = (await transport.listQueues()).find((q) => q.name === queue);
    assert.deepEqual([listed?.autoDelete, listed?.consumers], [true, 1]);
    await subscriber.stop("SIGKILL", scaled(5_000));
    // The lease is 1 s and the sweep runs every 500 ms (five polls of 100 ms): the queue goes within about 1.5 s.
    await eventually(async () => !(await transport.listQueues()).some((q) => q.name === queue), {
      timeoutMs: scaled(5_000),
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
