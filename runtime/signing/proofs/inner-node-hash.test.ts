import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import fc from "fast-check";
import { innerNodeHash } from "./inner-node-hash.ts";

const expected = (left: Uint8Array, right: Uint8Array): Buffer =>
  createHash("sha256")
    .update(Buffer.from([0x01]))
    .update(left)
    .update(right)
    .digest();

describe("inner node hash", () => {
  it("is node:crypto's SHA-256 of 0x01, the left hash and the right hash, read at any offset", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 80 }),
        fc.uint8Array({ minLength: 32, maxLength: 80 }),
        fc.nat(),
        fc.nat(),
        (leftSpace, rightSpace, leftPick, rightPick) => {
          const leftAt = leftPick % (leftSpace.length - 31);
          const rightAt = rightPick % (rightSpace.length - 31);
          const actual = innerNodeHash(leftSpace, leftAt, rightSpace, rightAt);
          assert.deepEqual(
            actual,
            expected(leftSpace.subarray(leftAt, leftAt + 32), rightSpace.subarray(rightAt, rightAt + 32)),
          );
        },
      ),
      { numRuns: 500 },
    );
  });

  it("hashes all-zero and all-one children as node:crypto does", () => {
    for (const fill of [0x00, 0xff]) {
      const side = new Uint8Array(32).fill(fill);
      assert.deepEqual(innerNodeHash(side, 0, side, 0), expected(side, side));
    }
  });

  it("returns a buffer of its own each time (a later hash does not change an earlier one)", () => {
    const a = new Uint8Array(32).fill(1);
    const b = new Uint8Array(32).fill(2);
    const first = innerNodeHash(a, 0, b, 0);
    const copy = Buffer.from(first);
    innerNodeHash(b, 0, a, 0);
    assert.deepEqual(first, copy);
  });
});
