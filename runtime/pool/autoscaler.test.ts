import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Autoscaler } from "./autoscaler.ts";

const scaled = (options: { max: number; min: number; idleMs: number }) => {
  const state = { size: options.min, backlog: 0, busy: 0, now: 0 };
  const autoscaler = new Autoscaler(
    { ...options, intervalMs: 10 },
    {
      backlog: () => state.backlog,
      busy: () => state.busy,
      size: () => state.size,
      resize: (size) => (state.size = size),
    },
    () => state.now,
  );
  return { state, autoscaler };
};

describe("the autoscaler", () => {
  it("grows by the backlog at once, never past max", () => {
    const { state, autoscaler } = scaled({ max: 8, min: 2, idleMs: 1_000 });
    state.busy = 2;
    state.backlog = 3;
    autoscaler.tick();
    assert.equal(state.size, 5);
    state.backlog = 10;
    autoscaler.tick();
    assert.equal(state.size, 8);
  });

  it("shrinks to what is busy only after slots stayed idle for idleMs, never below min", () => {
    const { state, autoscaler } = scaled({ max: 8, min: 2, idleMs: 1_000 });
    state.size = 8;
    state.busy = 3;
    autoscaler.tick();
    state.now = 999;
    autoscaler.tick();
    assert.equal(state.size, 8, "not idle long enough");
    state.now = 1_000;
    autoscaler.tick();
    assert.equal(state.size, 3);
    state.busy = 0;
    state.now = 5_000;
    autoscaler.tick();
    state.now = 6_000;
    autoscaler.tick();
    assert.equal(state.size, 2);
  });

  it("starts the idle clock again when a backlog appears", () => {
    const { state, autoscaler } = scaled({ max: 4, min: 1, idleMs: 1_000 });
    state.size = 4;
    state.busy = 1;
    autoscaler.tick();
    state.now = 600;
    state.backlog = 1;
    state.busy = 4;
    autoscaler.tick();
    state.backlog = 0;
    state.busy = 1;
    state.now = 1_200;
    autoscaler.tick();
    assert.equal(state.size, 4, "idle for 0 ms since the backlog");
  });
});
