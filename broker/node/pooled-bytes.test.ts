import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pooledCopy, RecordArena } from "./pooled-bytes.ts";

describe("RecordArena", () => {
  it("hands out room that never overlaps, across chunks, and keeps what was written there", () => {
    const arena = new RecordArena();
    const records: Uint8Array[] = [];
    for (let i = 0; i < 2_000; i++) {
      const record = arena.alloc(1 + (i % 300));
      record.fill(i % 251);
      records.push(record);
    }
    records.forEach((record, i) => {
      assert.equal(record.length, 1 + (i % 300));
      assert.ok(
        record.every((byte) => byte === i % 251),
        `record ${i} was overwritten`,
      );
    });
    assert.ok(new Set(records.map((record) => record.buffer)).size > 1, "more than one chunk was used");
  });

  it("gives a large record a buffer of its own", () => {
    const arena = new RecordArena();
    const small = arena.alloc(10);
    const large = arena.alloc(100_000);
    assert.equal(large.byteLength, large.buffer.byteLength);
    assert.notEqual(large.buffer, small.buffer);
  });

  it("copies records into itself, leaving the originals' chunks to go", () => {
    const old = new RecordArena();
    const record = old.alloc(5);
    record.set([1, 2, 3, 4, 5]);
    const moved = new RecordArena().copy(record);
    assert.deepEqual([...moved], [1, 2, 3, 4, 5]);
    assert.notEqual(moved.buffer, record.buffer);
  });
});

describe("pooledCopy", () => {
  it("copies into a plain Uint8Array that later copies never overwrite, and whose slice copies", () => {
    const copies = Array.from({ length: 300 }, (_, i) => pooledCopy(new Uint8Array(50).fill(i % 256)));
    copies.forEach((copy, i) => {
      assert.equal(Object.getPrototypeOf(copy), Uint8Array.prototype);
      assert.ok(
        copy.every((byte) => byte === i % 256),
        `copy ${i} was overwritten`,
      );
    });
    const sliced = copies[0].slice();
    sliced[0] = 99;
    assert.equal(copies[0][0], 0);
  });
});
