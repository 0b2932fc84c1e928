/**
 * Property tests of the virtual clock: random timers (some cleared, some
 * setting a follow-up timer when they fire) and a random series of
 * advances.
 *
 * - Every timer not cleared fires exactly once, when the clock has reached
 *   its due time and reads exactly that time.
 * - Timers fire in order of due time, ties in the order they were set.
 * - After an advance, no timer due within it is left and none due later has fired.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { VirtualClock, type VirtualTimer } from "../runtime/testing/virtual-clock.ts";

const planned = fc.record({
  delay: fc.integer({ min: 0, max: 5_000 }),
  cleared: fc.boolean(),
  followUp: fc.option(fc.integer({ min: 0, max: 3_000 }), { nil: undefined }),
});

describe("VirtualClock (property)", () => {
  it("fires each live timer once, at its due time, in (due, order set) order, never past the advance", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(planned, { maxLength: 40 }),
        fc.array(fc.integer({ min: 0, max: 3_000 }), { minLength: 1, maxLength: 8 }),
        async (plans, steps) => {
          const clock = new VirtualClock(1_000_000);
          let order = 0;
          const live = new Map<number, { due: number; order: number }>();
          const fired: { id: number; due: number; order: number; at: number }[] = [];
          let nextId = 0;
          const set = (delay: number, followUp: number | undefined): VirtualTimer => {
            const id = nextId++;
            const due = clock.now() + Math.max(1, delay);
            const entry = { due, order: order++ };
            live.set(id, entry);
            return clock.setTimeout(() => {
              fired.push({ id, ...entry, at: clock.now() });
              live.delete(id);
              if (followUp !== undefined) set(followUp, undefined);
            }, delay);
          };
          for (const plan of plans) {
            const timer = set(plan.delay, plan.followUp);
            if (plan.cleared) {
              clock.clearTimeout(timer);
              live.delete(nextId - 1);
            }
          }
          for (const step of steps) {
            const before = fired.length;
            await clock.advance(step, async () => {});
            const now = clock.now();
            for (const entry of live.values())
              assert.ok(entry.due > now, `a timer due at ${entry.due} is left after advancing to ${now}`);
            for (const event of fired.slice(before)) assert.ok(event.due <= now);
          }
          for (const event of fired) assert.equal(event.at, event.due, "fired at a time other than its due time");
          for (let i = 1; i < fired.length; i++) {
            const [a, b] = [fired[i - 1], fired[i]];
            assert.ok(
              a.due < b.due || (a.due === b.due && a.order < b.order),
              `fired out of order: ${JSON.stringify(a)} before ${JSON.stringify(b)}`,
            );
          }
          assert.equal(new Set(fired.map((event) => event.id)).size, fired.length, "a timer fired twice");
        },
      ),
      { numRuns: 200 },
    );
  });
});
