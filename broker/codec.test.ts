import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Codec, CodecError, DecodeError } from "./codec.ts";

const codec = new Codec();
const roundTrip = (value: unknown): unknown => codec.decode(codec.encode(value));

const rejects = (value: unknown, path: string, reason: RegExp, label?: string): void => {
  assert.throws(
    () => codec.encode(value, label),
    (error: unknown) => {
      assert.ok(error instanceof CodecError, `expected a CodecError, got ${String(error)}`);
      assert.equal(error._tag, "CodecError");
      assert.equal(error.path, path);
      assert.match(error.reason, reason);
      assert.equal(error.message, `cannot serialize ${path}: ${error.reason}`);
      return true;
    },
  );
};

describe("Codec", () => {
  describe("round trip", () => {
    it("returns primitives unchanged", () => {
      for (const value of [
        null,
        true,
        false,
        0,
        42,
        -7,
        3.5,
        Number.MAX_SAFE_INTEGER,
        "",
        "héllo ✓",
        Number.POSITIVE_INFINITY,
      ]) {
        assert.equal(roundTrip(value), value);
      }
      assert.ok(Number.isNaN(roundTrip(Number.NaN)));
    });

    it("returns undefined unchanged, at the top level and nested in arrays and objects", () => {
      assert.equal(roundTrip(undefined), undefined);
      assert.deepEqual(roundTrip([1, undefined, 3]), [1, undefined, 3]);
      const decoded = roundTrip({ a: undefined, b: { c: undefined, d: [undefined] } }) as Record<string, unknown>;
      assert.deepEqual(decoded, { a: undefined, b: { c: undefined, d: [undefined] } });
      assert.ok("a" in decoded, "a key holding undefined is kept, not dropped");
    });

    it("returns a Date as an equal Date", () => {
      const date = new Date("2024-02-29T12:34:56.789Z");
      const decoded = roundTrip({ at: date }) as { at: Date };
      assert.ok(decoded.at instanceof Date);
      assert.equal(decoded.at.getTime(), date.getTime());
    });

    it("returns a Uint8Array as an equal Uint8Array", () => {
      const decoded = roundTrip([new Uint8Array([0, 1, 255])]) as [Uint8Array];
      assert.ok(decoded[0] instanceof Uint8Array);
      assert.deepEqual([...decoded[0]], [0, 1, 255]);
    });

    it("returns nested plain objects and arrays unchanged, including an object reached twice", () => {
      const shared = { x: 1 };
      const value = { list: [shared, shared], deep: { a: [[1, [2, { b: "c" }]]] }, empty: {}, none: [] };
      assert.deepEqual(roundTrip(value), value);
    });

    it("accepts objects without a prototype", () => {
      const bare = Object.assign(Object.create(null) as object, { k: 1 });
      assert.deepEqual({ ...(roundTrip(bare) as object) }, { k: 1 });
    });

    it("does not modify the value it encodes", () => {
      const value = { a: [1, undefined], b: undefined };
      codec.encode(value);
      assert.deepEqual(value, { a: [1, undefined], b: undefined });
    });
  });

  describe("rejection", () => {
    it("rejects a function, naming where it sits", () => {
      rejects([1, { f: () => 1 }], "args[1].f", /function/, "args");
    });

    it("rejects a symbol", () => {
      rejects({ s: Symbol("x") }, "value.s", /symbol/);
    });

    it("rejects a bigint and suggests a string", () => {
      rejects({ n: 10n }, "value.n", /bigint .*string/);
    });

    it("rejects a Map and a Set", () => {
      rejects({ m: new Map() }, "value.m", /Map instance/);
      rejects([new Set([1])], "value[0]", /Set instance/);
    });

    it("rejects a class instance, naming its class", () => {
      class Point {
        constructor(readonly x: number) {}
      }
      rejects({ p: new Point(1) }, "value.p", /Point instance/);
    });

    it("rejects a circular reference, naming where the cycle closes", () => {
      const node: Record<string, unknown> = { name: "root" };
      node.children = [{ parent: node }];
      rejects(node, "value.children[0].parent", /circular/);
    });

    it("uses the given label as the root of the path", () => {
      rejects(() => 1, "arguments of task 'add'", /function/, "arguments of task 'add'");
    });
  });

  describe("decoding", () => {
    it("throws a DecodeError with the size for malformed bytes", () => {
      for (const bytes of [
        new Uint8Array([0xc1]),
        new Uint8Array([0x92, 0x01]),
        new Uint8Array([]),
        new Uint8Array([0x01, 0x02]),
      ]) {
        assert.throws(
          () => codec.decode(bytes),
          (error: unknown) => {
            assert.ok(error instanceof DecodeError, `expected a DecodeError, got ${String(error)}`);
            assert.equal(error._tag, "DecodeError");
            assert.equal(error.size, bytes.byteLength);
            assert.match(error.message, new RegExp(`^malformed message body \\(${bytes.byteLength} bytes\\): `));
            return true;
          },
        );
      }
    });
  });
});
