import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Encoder } from "@msgpack/msgpack";
import fc from "fast-check";
import { FrameEncoder } from "./frame-encoder.ts";

const library = new Encoder({ ignoreUndefined: true });

/** What an encoder answers for `value`: its bytes, or its error's message. */
const answer = (encode: (value: unknown) => Uint8Array, value: unknown): { bytes: number[] } | { error: string } => {
  try {
    return { bytes: [...encode(value)] };
  } catch (error) {
    return { error: (error as Error).message };
  }
};

class Point {
  constructor(
    readonly x: number,
    readonly y: number,
  ) {}
}

/** Values of every kind a frame may carry, and some it may not, nested. */
const values = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constantFrom(null, undefined, true, false, "", "ack", -0, Number.NaN, Number.POSITIVE_INFINITY),
    fc.integer(),
    fc.integer({ min: -(2 ** 53) + 1, max: 2 ** 53 - 1 }),
    fc.constantFrom(2 ** 32, 2 ** 32 - 1, -(2 ** 31), -(2 ** 31) - 1, 2 ** 53, -(2 ** 53), 255, 256, 65_535, 65_536),
    fc.double(),
    fc.string(),
    fc.string({ unit: "grapheme", maxLength: 40 }),
    fc.string({ minLength: 200, maxLength: 70_000 }),
    fc.uint8Array({ maxLength: 300 }),
    fc.uint8Array({ minLength: 65_536, maxLength: 65_600 }),
    fc.date({ noInvalidDate: true }),
    fc.bigInt(),
    fc.int16Array({ maxLength: 4 }),
    fc.tuple(fc.integer(), fc.integer()).map(([x, y]) => new Point(x, y)),
    fc.array(tie("value"), { maxLength: 20 }),
    fc.dictionary(fc.string(), tie("value"), { maxKeys: 20 }),
    fc.dictionary(fc.string(), tie("value"), { maxKeys: 3, noNullPrototype: false }),
  ),
})).value;

describe("FrameEncoder", () => {
  it("writes every value byte for byte as the msgpack library does, or fails with the library's error", () => {
    const encoder = new FrameEncoder();
    fc.assert(
      fc.property(values, (value) => {
        assert.deepEqual(
          answer((v) => encoder.encodeSharedRef(v), value),
          answer((v) => library.encode(v), value),
        );
      }),
      { numRuns: 3_000 },
    );
  });

  it("refuses what the library refuses: nesting past 100, a function", () => {
    let nested: unknown = 1;
    for (let i = 0; i < 120; i++) nested = [nested];
    const encoder = new FrameEncoder();
    assert.throws(() => encoder.encode(nested), /Too deep objects/);
    assert.throws(() => encoder.encode([() => 1]), /Unrecognized object/);
  });

  it("gives bytes of their own from encode, and a view valid until the next call from encodeSharedRef", () => {
    const encoder = new FrameEncoder();
    const own = encoder.encode(["a", 1]);
    const shared = encoder.encodeSharedRef(["b", 2]);
    assert.deepEqual([...shared], [...library.encode(["b", 2])]);
    encoder.encodeSharedRef(["c", 3]);
    assert.deepEqual([...own], [...library.encode(["a", 1])], "encode's bytes outlive later calls");
  });

  it("gives plain Uint8Arrays from encode, which never share bytes with each other, and whose slice is a copy", () => {
    const encoder = new FrameEncoder();
    const encoded = Array.from({ length: 200 }, (_, i) => encoder.encode(["item", i, "x".repeat(i % 50)]));
    encoded.forEach((bytes, i) => {
      assert.equal(Object.getPrototypeOf(bytes), Uint8Array.prototype);
      assert.deepEqual([...bytes], [...library.encode(["item", i, "x".repeat(i % 50)])], `encode ${i}`);
    });
    const copy = encoded[0].slice();
    copy[0] = 0;
    assert.notEqual(encoded[0][0], 0);
  });
});
