// The node on a full or failing disk: what is not durable is never confirmed
// and never runs; what was confirmed survives; the node resumes, without a
// restart, once the disk takes writes again, and starts again after a restart.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, it } from "node:test";
import type { Delivery, Envelope } from "../envelope.ts";
import { instrumentedDisk, osError, tempDir } from "../log/durable-log-test-support.ts";
import type { Consumer } from "../transport.ts";
import { within } from "../../tests/support/waits.ts";
import { BrokerNode } from "./node-server.ts";
import { NodeTransport } from "./client/node-transport.ts";

const envelope = (queue: string, id: string): Envelope => ({
  id,
  exchange: "",
  routingKey: queue,
  priority: 0,
  headers: {},
  body: new Uint8Array([7]),
});

/** A consumer that records what it is given and acks each (acks is false: holds them). */
const collect = async (transport: NodeTransport, queue: string, acks = true) => {
  const got: Delivery[] = [];
  let consumer: Consumer | undefined;
  consumer = await transport.consume(
    queue,
    (delivery) => {
      got.push(delivery);
      if (acks) consumer?.ack(delivery.deliveryTag);
    },
    { prefetch: 100 },
  );
  return { got, consumer };
};

const waitFor = async (what: string, ready: () => boolean | Promise<boolean>, ms = 5_000) =>
  within(
    (async () => {
      while (!(await ready())) await new Promise((resolve) => setTimeout(resolve, 5));
    })(),
    ms,
    what,
  );

const faultyNode = async (dir: string, fault: { code?: string; on?: "write" | "datasync" }) => {
  const disk = instrumentedDisk({
    write: (file, _path, data, position) =>
      fault.code !== undefined && fault.on === "write"
        ? Promise.reject(osError(fault.code, "injected"))
        : file.write(data, position),
    datasync: (file) =>
      fault.code !== undefined && fault.on === "datasync"
        ? Promise.reject(osError(fault.code, "injected"))
        : file.datasync(),
  });
  const logs: string[] = [];
  const node = await BrokerNode.start(
    { port: 0, dataDir: dir, log: (line) => logs.push(line) },
    { openSegment: disk.openSegment },
  );
  return { node, logs };
};

describe("broker node on a full or failing disk", () => {
  for (const [on, code] of [
    ["write", "ENOSPC"],
    ["write", "EIO"],
    ["datasync", "EIO"],
    ["datasync", "ENOSPC"],
  ] as const) {
    it(`refuses a publish whose record fails to ${on} (${code}), never delivers it, and resumes without a restart once the disk takes writes`, async (t) => {
      const dir = await tempDir();
      const fault: { code?: string; on?: "write" | "datasync" } = { on };
      const { node, logs } = await faultyNode(dir, fault);
      t.after(() => node.stop().catch(() => {}));
      const queue = `disk-${randomUUID()}`;
      const client = await NodeTransport.connect(node.url);
      t.after(() => client.close());
      for (let i = 0; i < 5; i++) await client.publish(envelope(queue, `kept-${i}`));
      const held = await collect(client, queue, false);
      await waitFor("the five confirmed messages", () => held.got.length === 5);
      fault.code = code;
      const refused = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) => client.publish(envelope(queue, `lost-${i}`))),
      );
      assert.equal(refused.filter((r) => r.status === "fulfilled").length, 0, "no publish confirmed");
      for (const r of refused) assert.match(String((r as PromiseRejectedResult).reason), new RegExp(code));
      assert.ok(
        logs.some((line) =>
          /the log failed \(.*\): publishes are refused and nothing is delivered until it is reopened/.test(line),
        ),
        logs.join("\n"),
      );
      // Acked while the log cannot record it: written once the log is reopened, so they do not come back.
      for (const delivery of held.got) held.consumer.ack(delivery.deliveryTag);
      await waitFor("an attempt to reopen or a reopen", () =>
        logs.some((line) => /the log is (not reopened yet|written again)/.test(line)),
      );
      fault.code = undefined;
      let probes = 0;
      await waitFor("a publish accepted again", () =>
        client.publish(envelope(queue, `after-${probes++}`)).then(
          () => true,
          () => false,
        ),
      );
      assert.ok(
        logs.some((line) =>
          /the log is written again after \d+ attempt\(s\) .*publishes are accepted and deliveries resume/.test(line),
        ),
        logs.join("\n"),
      );
      const accepted = `after-${probes - 1}`;
      await waitFor("the accepted message delivered", () => held.got.some((d) => d.envelope.id === accepted));
      await client.stats(queue);
      const delivered = held.got.map((d) => d.envelope.id);
      assert.deepEqual(
        delivered.filter((id) => id.startsWith("lost-")),
        [],
        "a refused publish was delivered",
      );
      await client.close();
      await node.stop();
      // After a restart: the accepted one, none of the refused, none of those acked while the log was failed.
      const again = await BrokerNode.start({ port: 0, dataDir: dir, log: () => {} });
      t.after(() => again.stop());
      const reader = await NodeTransport.connect(again.url);
      t.after(() => reader.close());
      const stats = await reader.stats(queue);
      const after = await collect(reader, queue, false);
      await waitFor("the messages held", () => after.got.length === stats.ready);
      assert.deepEqual(
        after.got.map((d) => d.envelope.id),
        [accepted],
      );
    });
  }

  it("starts again on a disk too full to rewrite its log, and keeps its records straight after", async (t) => {
    const dir = await tempDir();
    const queue = `restart-${randomUUID()}`;
    {
      const { node } = await faultyNode(dir, {});
      const client = await NodeTransport.connect(node.url);
      // Five that come and go first, so the log numbers the twenty that stay from 6 on.
      for (let i = 0; i < 5; i++) await client.publish(envelope(queue, `early-${i}`));
      const early = await collect(client, queue);
      await waitFor("the early messages", () => early.got.length === 5);
      await early.consumer.cancel();
      for (let i = 0; i < 20; i++) await client.publish(envelope(queue, `m${i}`));
      await client.stats(queue);
      await client.close();
      await node.stop();
    }
    // The start-up rewrite fails (no room for new segments), the log is used as it is.
    let full = true;
    const disk = instrumentedDisk({
      write: (file, path, data, position) =>
        full && path.includes("compact") ? Promise.reject(osError("ENOSPC", "injected")) : file.write(data, position),
    });
    const logs: string[] = [];
    const node = await BrokerNode.start(
      { port: 0, dataDir: dir, log: (line) => logs.push(line) },
      {
        openSegment: async (path) => {
          if (full && !path.endsWith(".log")) throw osError("ENOSPC", "injected");
          return disk.openSegment(path);
        },
      },
    );
    full = false;
    assert.ok(
      logs.some((line) => /recovered 20 messages/.test(line)),
      logs.join("\n"),
    );
    const client = await NodeTransport.connect(node.url);
    t.after(() => client.close());
    const { got, consumer } = await collect(client, queue, false);
    await waitFor("the 20 recovered messages", () => got.length === 20);
    // Ack the first ten, publish two more, and restart: exactly the other ten and the two are there.
    for (const d of got.slice(0, 10)) consumer.ack(d.deliveryTag);
    await client.publish(envelope(queue, "new-1"));
    await client.publish(envelope(queue, "new-2"));
    await client.stats(queue);
    await client.close();
    await node.stop();
    const again = await BrokerNode.start({ port: 0, dataDir: dir, log: () => {} });
    t.after(() => again.stop());
    const reader = await NodeTransport.connect(again.url);
    t.after(() => reader.close());
    const after = await collect(reader, queue, false);
    await waitFor("the messages left", () => after.got.length === 12);
    const expected = [...got.slice(10, 20).map((d) => d.envelope.id), "new-1", "new-2"].sort();
    assert.deepEqual(after.got.map((d) => d.envelope.id).sort(), expected);
  });
});
