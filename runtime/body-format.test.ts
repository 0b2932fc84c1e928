import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Codec, CodecError } from "../broker/codec.ts";
import { EmbeddedBroker } from "../broker/embedded/embedded-broker.ts";
import { createApp } from "./app.ts";
import { BodyFormat, TaskCodec } from "./body-format.ts";
import { fromEnvelope, toEnvelope } from "./task-message.ts";

const message = (args: unknown[]) => ({ id: "t1", task: "echo", args, options: {}, retries: 0 });

describe("task bodies on celerity's own protocol", () => {
  it("writes a JSON body anyone can read, and reads it back", () => {
    const codec = new TaskCodec(new BodyFormat({ serializer: "json" }));
    const envelope = toEnvelope(message([1, "two", { three: [3] }, null]), codec, 0);
    assert.deepEqual(JSON.parse(Buffer.from(envelope.body).toString("utf8")), [[1, "two", { three: [3] }, null]]);
    assert.deepEqual(fromEnvelope(envelope, new Codec()).args, [1, "two", { three: [3] }, null]);
  });

  it("gzips a body over the threshold only, and any worker reads either", () => {
    const codec = new TaskCodec(new BodyFormat({ compressAbove: 1_000 }));
    const big = toEnvelope(message(["x".repeat(10_000)]), codec, 0);
    const small = toEnvelope(message(["x"]), codec, 0);
    assert.deepEqual([big.body[0], big.body[1]], [0x1f, 0x8b]);
    assert.ok(big.body.byteLength < 1_000, `a 10 kB repetitive body compressed to ${big.body.byteLength} bytes`);
    assert.notEqual(small.body[0], 0x1f);
    assert.equal((fromEnvelope(big, new Codec()).args[0] as string).length, 10_000);
    const jsonGzipped = toEnvelope(
      message(["y".repeat(5_000)]),
      new TaskCodec(new BodyFormat({ serializer: "json", compressAbove: 0 })),
      0,
    );
    assert.equal((fromEnvelope(jsonGzipped, new Codec()).args[0] as string).length, 5_000);
  });

  it("refuses, naming the argument, a value JSON would change or drop", () => {
    const codec = new TaskCodec(new BodyFormat({ serializer: "json" }));
    assert.throws(
      () => toEnvelope(message([1, { when: new Date(0) }]), codec, 0),
      (error: unknown) =>
        error instanceof CodecError &&
        error.path === "argument 2 of task 'echo'.when" &&
        /Date cannot be sent as JSON/.test(error.reason),
    );
    assert.throws(() => toEnvelope(message([undefined]), codec, 0), /undefined cannot be sent as JSON/);
    assert.throws(() => toEnvelope(message([Number.NaN]), codec, 0), /NaN cannot be sent as JSON/);
  });

  it("refuses unknown options with the option named", () => {
    assert.throws(
      () => new BodyFormat({ serializer: "yaml" as "json" }),
      /"yaml" is not a serializer; use "msgpack" or "json"/,
    );
    assert.throws(() => new BodyFormat({ compressAbove: -1 }), /compressAbove: must be a whole number of bytes/);
  });

  it("dead-letters a body that claims gzip but does not inflate, as malformed", () => {
    const envelope = { ...toEnvelope(message([1]), new Codec(), 0), body: new Uint8Array([0x1f, 0x8b, 1, 2, 3]) };
    assert.throws(
      () => fromEnvelope(envelope, new Codec()),
      /MalformedMessageError|malformed|incorrect header|unexpected end/i,
    );
    const notJson = { ...envelope, body: new TextEncoder().encode("[1, ") };
    assert.throws(() => fromEnvelope(notJson, new Codec()));
  });

  it("runs tasks end to end with JSON, compressed bodies, beside an app on msgpack", async (t) => {
    const broker = new EmbeddedBroker();
    const jsonApp = createApp({ broker, serializer: "json", compressAbove: 100, log: () => {} });
    const plainApp = createApp({ broker, results: jsonApp.results, log: () => {} });
    t.after(async () => {
      await jsonApp.close();
      await plainApp.close();
    });
    const join = plainApp.task("join", (parts: string[]) => parts.join(""));
    jsonApp.task("join", (parts: string[]) => parts.join(""));
    await plainApp.worker().start();
    const parts = Array.from({ length: 50 }, (_, i) => `part-${i};`);
    const sent = await jsonApp.sendTask<string>("join", [parts]);
    assert.equal(await sent.get({ timeout: 5_000 }), parts.join(""));
    assert.equal(await (await join.delay(["a", "b"])).get({ timeout: 5_000 }), "ab");
  });
});
