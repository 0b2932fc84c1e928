import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { DeliveryTags } from "./delivery-tags.ts";

type Step = { op: "add"; nodeTag: number } | { op: "take" | "get"; pick: number } | { op: "clear" };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant("add" as const), nodeTag: fc.integer({ min: 1, max: 1e9 }) }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant("take" as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("get" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("clear" as const) }) },
);

describe("DeliveryTags", () => {
  it("answers as a map from tags to what they stand for would, through any adds, takes, stale look-ups and clears", () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 3_000 }), (steps) => {
        const tags = new DeliveryTags<number>();
        const model = new Map<number, number>();
        let next = 1;
        for (const s of steps) {
          if (s.op === "add") {
            assert.equal(tags.add(s.nodeTag), next);
            model.set(next++, s.nodeTag);
          } else if (s.op === "clear") {
            tags.clear();
            model.clear();
          } else {
            // Mostly tags handed out (held or not), sometimes ones never handed out.
            const local = (s.pick % (next + 2)) + 1;
            const expected = model.get(local);
            if (s.op === "get") assert.equal(tags.get(local), expected);
            else {
              assert.equal(tags.take(local), expected);
              model.delete(local);
            }
          }
          assert.equal(tags.size, model.size);
        }
        assert.deepEqual(tags.values(), [...model.values()]);
      }),
      { numRuns: 300 },
    );
  });

  it("keeps a long run of settles in order at a bounded size, and forgets stale tags after a clear", () => {
    const tags = new DeliveryTags<number>();
    const locals: number[] = [];
    for (let i = 1; i <= 10_000; i++) {
      locals.push(tags.add(i));
      if (locals.length > 300) assert.equal(tags.take(locals.shift() as number), i - 300);
    }
    assert.equal(tags.size, 300);
    const stale = locals[0];
    tags.clear();
    assert.equal(tags.take(stale), undefined);
    assert.equal(tags.add(5), 10_001, "numbering goes on after a clear");
  });
});
