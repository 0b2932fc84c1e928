import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ReadyQueue } from "./ready-queue.ts";

const drain = <T>(q: ReadyQueue<T>): T[] => {
  const out: T[] = [];
  for (let item = q.shift(); item !== undefined; item = q.shift()) out.push(item);
  return out;
};

describe("ReadyQueue", () => {
  it("hands out higher priorities first and keeps FIFO within a priority", () => {
    const q = new ReadyQueue<string>();
    q.push("0a", 0);
    q.push("9a", 9);
    q.push("5a", 5);
    q.push("9b", 9);
    q.push("0b", 0);
    assert.equal(q.length, 5);
    assert.deepEqual([...q], ["9a", "9b", "5a", "0a", "0b"]);
    assert.deepEqual(drain(q), ["9a", "9b", "5a", "0a", "0b"]);
    assert.equal(q.length, 0);
  });

  it("puts an unshifted item at the head of its own priority only", () => {
    const q = new ReadyQueue<string>();
    q.push("9a", 9);
    q.push("3a", 3);
    q.unshift("3-requeued", 3);
    assert.deepEqual(drain(q), ["9a", "3-requeued", "3a"]);
  });

  it("finds a lower priority again after the higher one empties", () => {
    const q = new ReadyQueue<string>();
    q.push("1", 1);
    q.push("8", 8);
    assert.equal(q.shift(), "8");
    q.push("4", 4);
    assert.deepEqual(drain(q), ["4", "1"]);
    q.push("again", 8);
    assert.equal(q.shift(), "again");
  });

  it("is empty after clear", () => {
    const q = new ReadyQueue<number>();
    q.push(1, 2);
    q.clear();
    assert.equal(q.length, 0);
    assert.equal(q.shift(), undefined);
  });
});
