import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { GenerationalMap } from "./generational-map.ts";

describe("GenerationalMap", () => {
  it("never holds more than its bound", () => {
    const map = new GenerationalMap<number, number>(10);
    for (let i = 0; i < 1_000; i++) {
      map.set(i, i);
      assert.ok(map.size <= 10, `size ${map.size} after ${i + 1} writes`);
    }
  });

  it("keeps an entry for at least half the bound's worth of other writes", () => {
    const map = new GenerationalMap<string, number>(100);
    map.set("kept", 1);
    for (let i = 0; i < 50; i++) map.set(`other-${i}`, i);
    assert.equal(map.get("kept"), 1);
  });

  it("forgets the least recently written entries first", () => {
    const map = new GenerationalMap<string, number>(4);
    map.set("a", 1);
    map.set("b", 2);
    map.set("c", 3);
    map.set("a", 10); // written again: recent
    map.set("d", 4);
    map.set("e", 5);
    assert.equal(map.get("b"), undefined);
    assert.equal(map.get("a"), 10);
    assert.equal(map.get("e"), 5);
  });

  it("does not count an entry twice when it is rewritten from the old generation", () => {
    const map = new GenerationalMap<string, number>(4);
    map.set("a", 1);
    map.set("b", 2);
    map.set("c", 3); // a and b are now old
    map.set("a", 4);
    assert.equal(map.size, 3);
    assert.equal(map.get("a"), 4);
    assert.ok(map.delete("a"));
    assert.equal(map.get("a"), undefined);
  });

  it("refuses a bound below 2", () => {
    assert.throws(() => new GenerationalMap(1), /at least 2/);
  });
});

describe("GenerationalMap.add and touch", () => {
  it("adds a key known to be absent and keeps the bound", () => {
    const map = new GenerationalMap<number, number>(6);
    for (let i = 0; i < 100; i++) map.add(i, i);
    assert.ok(map.size <= 6);
    assert.equal(map.get(99), 99);
  });

  it("moves a touched entry out of the old generation so it outlives newer writes", () => {
    const map = new GenerationalMap<string, number>(4);
    map.set("a", 1);
    map.set("b", 2);
    map.set("c", 3); // a, b old
    map.touch("a", 1);
    map.set("d", 4);
    map.set("e", 5); // rotation: b dropped, a survives in old
    assert.equal(map.get("a"), 1);
    assert.equal(map.get("b"), undefined);
  });

  it("lists its values least recently written first", () => {
    const map = new GenerationalMap<string, number>(4);
    map.set("a", 1);
    map.set("b", 2);
    map.set("c", 3); // a, b old
    map.set("a", 10); // written again: young, after c
    assert.deepEqual([...map.values()], [2, 3, 10]);
  });
});
