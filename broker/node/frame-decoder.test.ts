import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Decoder, Encoder, ExtData } from "@msgpack/msgpack";
import fc from "fast-check";
import { FrameDecoder } from "./frame-decoder.ts";

const library = new Decoder();
const encoder = new Encoder({ ignoreUndefined: true });

/** What the library answers for `bytes`: its value, or its error's message. */
const libraryAnswer = (bytes: Uint8Array): { value: unknown } | { error: string } => {
  try {
    return { value: library.decode(bytes) };
  } catch (error) {
    return { error: (error as Error).message };
  }
};

const answer = (decoder: FrameDecoder, bytes: Uint8Array): { value: unknown } | { error: string } => {
  try {
    return { value: decoder.decode(bytes) };
  } catch (error) {
    return { error: (error as Error).message };
  }
};

/** Values of every msgpack type frames use, nested; strings often repeating and often ASCII. */
const values = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constantFrom(null, true, false, "", "ack", "celery", "publish", "c1"),
    fc.integer(),
    fc.integer({ min: -(2 ** 53) + 1, max: 2 ** 53 - 1 }),
    fc.maxSafeNat(),
    fc.double(),
    fc.string(),
    fc.string({ unit: "grapheme", maxLength: 80 }),
    fc.string({ minLength: 60, maxLength: 300 }),
    fc.uint8Array({ maxLength: 300 }),
    fc.array(tie("value"), { maxLength: 20 }),
    fc.dictionary(fc.oneof(fc.string(), fc.constantFrom("task", "retries", "__proto__x")), tie("value"), {
      maxKeys: 8,
    }),
  ),
})).value;

describe("FrameDecoder", () => {
  it("decodes every value as the msgpack library does, or fails with its error (a key __proto__)", () => {
    const decoder = new FrameDecoder();
    fc.assert(
      fc.property(fc.array(values, { minLength: 1, maxLength: 4 }), (frames) => {
        // One decoder across frames, as a connection uses it: its cache of strings must never answer a stale one.
        for (const value of frames) {
          const bytes = encoder.encode(value);
          assert.deepEqual(answer(decoder, bytes), libraryAnswer(bytes));
        }
      }),
      { numRuns: 2_000 },
    );
  });

  it("gives the library's answer, value or error, for any bytes: cut short, extended, or garbage", () => {
    const decoder = new FrameDecoder();
    const damaged = fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      values.chain((value) => {
        const bytes = encoder.encode(value);
        return fc.oneof(
          fc.nat(bytes.length).map((cut) => bytes.slice(0, cut)),
          fc.uint8Array({ minLength: 1, maxLength: 4 }).map((extra) => Uint8Array.from([...bytes, ...extra])),
          fc.tuple(fc.nat(Math.max(0, bytes.length - 1)), fc.integer({ min: 0, max: 255 })).map(([at, byte]) => {
            const copy = bytes.slice();
            copy[at] = byte;
            return copy;
          }),
        );
      }),
    );
    fc.assert(
      fc.property(damaged, (bytes) => {
        assert.deepEqual(answer(decoder, bytes), libraryAnswer(bytes));
      }),
      { numRuns: 3_000 },
    );
  });

  it("hands what it does not read itself to the library: extensions, timestamps, keys that are not strings, deep nesting", () => {
    const decoder = new FrameDecoder();
    const cases: unknown[] = [
      new ExtData(5, Uint8Array.of(1, 2, 3)),
      new Date(1_700_000_000_123),
      ["x", { a: new ExtData(1, Uint8Array.of(9)) }],
    ];
    for (const value of cases) {
      const bytes = encoder.encode(value);
      assert.deepEqual(decoder.decode(bytes), library.decode(bytes));
    }
    const numberKey = Uint8Array.of(0x81, 0x01, 0xa1, 0x78); // {1: "x"}
    assert.deepEqual(decoder.decode(numberKey), { 1: "x" });
    // Nested deeper than the library's encoder goes: 200 one-item arrays around one string.
    const deep = Uint8Array.from([...new Array(200).fill(0x91), 0xa4, ...new TextEncoder().encode("deep")]);
    let nested: unknown = "deep";
    for (let i = 0; i < 200; i++) nested = [nested];
    assert.deepEqual(decoder.decode(deep), nested);
    assert.throws(() => decoder.decode(Uint8Array.of(0x81, 0xa9, ...new TextEncoder().encode("__proto__"), 0x01)), {
      message: "The key __proto__ is not allowed",
    });
  });

  it("returns binaries as views of the payload, as the library does", () => {
    const bytes = encoder.encode(["body", Uint8Array.of(1, 2, 3)]);
    const [, body] = new FrameDecoder().decode(bytes) as [string, Uint8Array];
    assert.equal(body.buffer, bytes.buffer);
    assert.deepEqual([...body], [1, 2, 3]);
  });
});
