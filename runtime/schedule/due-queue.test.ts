import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { DueQueue } from "./due-queue.ts";

describe("due queue", () => {
  it("hands out the schedules due by now, earliest first, each once until set again", () => {
    const queue = new DueQueue();
    queue.set("c", 30);
    queue.set("a", 10);
    queue.set("b", 20);
    assert.equal(queue.peek(), 10);
    assert.deepEqual(queue.takeDue(20), ["a", "b"]);
    assert.deepEqual(queue.takeDue(20), []);
    assert.equal(queue.peek(), 30);
  });

  it("follows a schedule moved or removed, forgetting where it was", () => {
    const queue = new DueQueue();
    queue.set("a", 10);
    queue.set("b", 15);
    queue.set("a", 40);
    queue.set("b", undefined);
    assert.deepEqual(queue.takeDue(20), []);
    assert.deepEqual(queue.takeDue(40), ["a"]);
  });

  it("agrees with a sorted list for any sequence of sets and takes", () => {
    const op = fc.oneof(
      fc.record({
        name: fc.constantFrom("a", "b", "c", "d", "e"),
        at: fc.option(fc.integer({ min: 0, max: 100 }), { nil: undefined }),
      }),
      fc.record({ take: fc.integer({ min: 0, max: 100 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const queue = new DueQueue();
        const model = new Map<string, number>();
        for (const step of ops) {
          if ("take" in step) {
            const due = [...model].filter(([, at]) => at <= step.take).sort((x, y) => x[1] - y[1] || 0);
            const taken = queue.takeDue(step.take);
            assert.deepEqual(new Set(taken), new Set(due.map(([name]) => name)));
            assert.deepEqual(
              taken.map((name) => model.get(name)),
              due.map(([, at]) => at),
            );
            for (const [name] of due) model.delete(name);
          } else if (step.at === undefined) {
            model.delete(step.name);
            queue.set(step.name, undefined);
          } else {
            model.set(step.name, step.at);
            queue.set(step.name, step.at);
          }
          const earliest = Math.min(...model.values());
          assert.equal(queue.peek(), model.size === 0 ? undefined : earliest);
        }
      }),
    );
  });
});
