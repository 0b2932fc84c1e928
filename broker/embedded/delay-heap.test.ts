import assert from "node:assert/strict";
import { scaled, within } from "../../tests/support/waits.ts";
import { describe, it } from "node:test";
import { DelayHeap } from "./delay-heap.ts";
import { clockOf, systemClock } from "../clock.ts";
import { DelayScheduler } from "./delay-scheduler.ts";

describe("DelayHeap", () => {
  it("pops items in eta order whatever the insertion order", () => {
    const heap = new DelayHeap<number>();
    const etas = Array.from({ length: 500 }, (_, i) => (i * 7919) % 1009);
    for (const eta of etas) heap.push(eta, eta);
    const out: number[] = [];
    while (heap.size > 0) out.push(heap.pop() as number);
    assert.deepEqual(
      out,
      [...etas].sort((a, b) => a - b),
    );
  });

  it("pops items with equal etas in insertion order", () => {
    const heap = new DelayHeap<string>();
    heap.push(10, "a");
    heap.push(5, "first");
    heap.push(10, "b");
    heap.push(10, "c");
    assert.equal(heap.peekEta(), 5);
    assert.deepEqual([heap.pop(), heap.pop(), heap.pop(), heap.pop()], ["first", "a", "b", "c"]);
    assert.equal(heap.pop(), undefined);
    assert.equal(heap.peekEta(), undefined);
  });
});

describe("DelayScheduler", () => {
  it("hands each item over once its eta has passed, earliest first", async () => {
    const due: string[] = [];
    let wake!: () => void;
    const bothDue = new Promise<void>((resolve) => (wake = resolve));
    const scheduler = new DelayScheduler<string>(systemClock, (item) => {
      due.push(item);
      if (due.length === 2) wake();
    });
    const start = Date.now();
    scheduler.add(start + 40, "later");
    scheduler.add(start + 20, "sooner");
    assert.equal(scheduler.size, 2);
    await within(bothDue, scaled(2_000), "both items to fall due", () => `due so far: ${due.join(", ")}`);
    assert.deepEqual(due, ["sooner", "later"]);
    assert.ok(Date.now() >= start + 40);
    assert.equal(scheduler.size, 0);
    scheduler.stop();
  });

  it("promotes due items when asked, following the injected clock", () => {
    let now = 100;
    const due: string[] = [];
    const scheduler = new DelayScheduler<string>(clockOf({ now: () => now }), (item) => due.push(item));
    scheduler.add(200, "a");
    scheduler.add(300, "b");
    assert.equal(scheduler.promoteDue(), 0);
    now = 250;
    assert.equal(scheduler.promoteDue(), 1);
    assert.deepEqual(due, ["a"]);
    scheduler.stop();
    assert.equal(scheduler.size, 0);
  });
});
