import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Deque } from "./deque.ts";

describe("Deque", () => {
  it("returns items in the order they were pushed", () => {
    const d = new Deque<number>();
    for (let i = 0; i < 5; i++) d.push(i);
    assert.deepEqual([d.shift(), d.shift(), d.shift()], [0, 1, 2]);
    assert.equal(d.length, 2);
  });

  it("returns an unshifted item before everything already queued", () => {
    const d = new Deque<string>();
    d.push("b");
    d.push("c");
    d.unshift("a");
    assert.deepEqual([...d], ["a", "b", "c"]);
    assert.equal(d.peek(), "a");
  });

  it("returns undefined when empty", () => {
    const d = new Deque<number>();
    assert.equal(d.shift(), undefined);
    assert.equal(d.peek(), undefined);
    assert.equal(d.length, 0);
  });

  it("keeps order while growing past its capacity with the head wrapped around", () => {
    const d = new Deque<number>(4);
    const model: number[] = [];
    let next = 0;
    // Interleave pushes, shifts and unshifts so growth happens with the head in the middle of the ring.
    for (let round = 0; round < 200; round++) {
      d.push(next);
      model.push(next++);
      if (round % 3 === 0) {
        assert.equal(d.shift(), model.shift());
      }
      if (round % 5 === 0) {
        d.unshift(-round);
        model.unshift(-round);
      }
      assert.equal(d.length, model.length);
    }
    assert.deepEqual([...d], model);
    while (model.length > 0) assert.equal(d.shift(), model.shift());
    assert.equal(d.length, 0);
  });

  it("is empty after clear and usable again", () => {
    const d = new Deque<number>();
    d.push(1);
    d.push(2);
    d.clear();
    assert.equal(d.length, 0);
    d.push(3);
    assert.deepEqual([...d], [3]);
  });
});
