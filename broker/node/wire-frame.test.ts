import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { FrameParser, FrameTooLargeError, FrameWriter, MalformedFrameError, encodeFrame } from "./wire-frame.ts";

const collect = (max = 1 << 20) => {
  const frames: [number, number[]][] = [];
  const parser = new FrameParser(max, (type, payload) => frames.push([type, [...payload]]));
  return { frames, parser };
};

describe("wire frames", () => {
  it("parses frames split at every possible byte boundary", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 40 })), { maxLength: 10 }),
        fc.array(fc.integer({ min: 1, max: 17 }), { minLength: 1, maxLength: 20 }),
        (frames, cuts) => {
          const bytes = Buffer.concat(frames.map(([type, payload]) => encodeFrame(type, payload)));
          const { frames: seen, parser } = collect();
          let offset = 0;
          for (let i = 0; offset < bytes.length; i++) {
            const size = cuts[i % cuts.length];
            parser.push(bytes.subarray(offset, offset + size));
            offset += size;
          }
          assert.deepEqual(
            seen,
            frames.map(([type, payload]) => [type, [...payload]]),
          );
          assert.equal(parser.buffered, 0);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("parses a frame of megabytes arriving in socket-sized chunks, with the frames around it", () => {
    const big = new Uint8Array(3 * 2 ** 20 + 7).map((_, i) => i % 251);
    const bytes = Buffer.concat([
      encodeFrame(1, Uint8Array.of(9)),
      encodeFrame(2, big),
      encodeFrame(3, Uint8Array.of(8, 7)),
    ]);
    const seen: [number, Uint8Array][] = [];
    const parser = new FrameParser(4 * 2 ** 20, (type, payload) => seen.push([type, payload]));
    const chunk = 64 * 1024;
    for (let offset = 0; offset < bytes.length; offset += chunk) {
      parser.push(bytes.subarray(offset, offset + chunk));
      if (seen.length === 1)
        assert.equal(parser.buffered, Math.min(offset + chunk, bytes.length) - 6, "bytes held for the large frame");
    }
    assert.deepEqual(
      seen.map(([type, payload]) => [type, payload.byteLength]),
      [
        [1, 1],
        [2, big.byteLength],
        [3, 2],
      ],
    );
    assert.deepEqual(seen[1][1], big);
    assert.equal(parser.buffered, 0);
  });

  it("refuses a frame larger than the maximum before reading its body", () => {
    const { parser } = collect(64);
    const header = Buffer.alloc(4);
    header.writeUInt32BE(1_000_000);
    assert.throws(
      () => parser.push(header),
      (e: unknown) => e instanceof FrameTooLargeError && e.size === 1_000_004 && e.max === 64,
    );
  });

  it("refuses a zero-length frame", () => {
    const { parser } = collect();
    assert.throws(() => parser.push(new Uint8Array([0, 0, 0, 0])), MalformedFrameError);
  });

  it("writes a burst of frames as one batch on the next turn", async () => {
    const writes: Uint8Array[] = [];
    const writer = new FrameWriter({ write: (bytes) => (writes.push(bytes), true) });
    for (let i = 0; i < 100; i++) writer.send(7, new Uint8Array([i]));
    assert.equal(writes.length, 0);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(writes.length, 1);
    const { frames, parser } = collect();
    parser.push(writes[0]);
    assert.equal(frames.length, 100);
    assert.deepEqual(frames[42], [7, [42]]);
  });

  it("writes a lone prompt frame once the code running now has run, before the turn ends", async () => {
    const writes: Uint8Array[] = [];
    const writer = new FrameWriter({ write: (bytes) => (writes.push(bytes), true) });
    let turnEnded = false;
    setImmediate(() => (turnEnded = true));
    writer.sendPromptly(7, new Uint8Array([1, 2, 3]));
    await Promise.resolve();
    assert.equal(writes.length, 1);
    assert.equal(turnEnded, false);
    const { frames, parser } = collect();
    parser.push(writes[0]);
    assert.deepEqual(frames, [[7, [1, 2, 3]]]);
  });

  it("writes in one write, in order, the prompt frames that one run of code and its promise callbacks send", async () => {
    const writes: Uint8Array[] = [];
    const writer = new FrameWriter({ write: (bytes) => (writes.push(bytes), true) });
    // As the answers one fsync releases: callbacks of one promise, each sending one.
    let release: () => void = () => {};
    const durable = new Promise<void>((resolve) => (release = resolve));
    const answered = Array.from({ length: 100 }, (_, i) =>
      durable.then(() => writer.sendPromptly(7, new Uint8Array([i]))),
    );
    release();
    await Promise.all(answered);
    assert.equal(writes.length, 1);
    const { frames, parser } = collect();
    parser.push(writes[0]);
    assert.deepEqual(
      frames.map(([, payload]) => payload[0]),
      Array.from({ length: 100 }, (_, i) => i),
    );
    // Next turn, a batched frame first: the prompt one takes it along, behind it.
    await new Promise((resolve) => setImmediate(resolve));
    writer.send(8, new Uint8Array([1]));
    writer.sendPromptly(7, new Uint8Array([2]));
    await Promise.resolve();
    assert.equal(writes.length, 2);
    const next = collect();
    next.parser.push(writes[1]);
    assert.deepEqual(next.frames, [
      [8, [1]],
      [7, [2]],
    ]);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(writes.length, 2, "nothing is left for the end of the turn");
  });

  it("makes one prompt write a turn: later prompt frames of the turn join its batch", async () => {
    const writes: Uint8Array[] = [];
    const writer = new FrameWriter({ write: (bytes) => (writes.push(bytes), true) });
    writer.sendPromptly(7, new Uint8Array([1]));
    await Promise.resolve();
    assert.equal(writes.length, 1);
    // A cascade of callbacks, each sending one after the write above.
    for (let i = 2; i <= 10; i++) {
      await Promise.resolve();
      writer.sendPromptly(7, new Uint8Array([i]));
    }
    await Promise.resolve();
    assert.equal(writes.length, 1, "waiting for the end of the turn");
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(writes.length, 2);
    // The next turn's first prompt frame is prompt again.
    writer.sendPromptly(7, new Uint8Array([11]));
    await Promise.resolve();
    assert.equal(writes.length, 3);
    const { frames, parser } = collect();
    for (const bytes of writes) parser.push(bytes);
    assert.deepEqual(
      frames.map(([, payload]) => payload[0]),
      Array.from({ length: 11 }, (_, i) => i + 1),
    );
  });

  it("writes the frames another writer gathered before a prompt frame that follows them", async () => {
    const writes: string[] = [];
    const told = new FrameWriter({ write: () => (writes.push("told"), true) });
    const asked = new FrameWriter({ write: () => (writes.push("asked"), true) });
    told.send(7, new Uint8Array([1]));
    asked.sendPromptly(7, new Uint8Array([2]));
    await Promise.resolve();
    assert.deepEqual(writes, ["told", "asked"]);
  });

  it("keeps its buffer across small writes, and gives each write bytes of its own", async () => {
    const writes: Uint8Array[] = [];
    const writer = new FrameWriter({ write: (bytes) => (writes.push(bytes), true) });
    writer.send(7, new Uint8Array([1]));
    writer.flush();
    writer.send(7, new Uint8Array([2]));
    writer.flush();
    writer.send(7, new Uint8Array(5_000).fill(3));
    writer.flush();
    writer.send(7, new Uint8Array([4]));
    writer.flush();
    const { frames, parser } = collect();
    for (const bytes of writes) parser.push(bytes);
    assert.deepEqual(
      frames.map(([, payload]) => [payload.length, payload[0]]),
      [
        [1, 1],
        [1, 2],
        [5_000, 3],
        [1, 4],
      ],
      "a later batch must not overwrite the bytes of an earlier write",
    );
  });

  it("reports backpressure when the sink's buffer is full", async () => {
    let pressed = 0;
    const writer = new FrameWriter({ write: () => false }, () => pressed++);
    writer.send(1);
    writer.flush();
    assert.equal(pressed, 1);
  });
});
