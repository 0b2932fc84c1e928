// The contract suite every ResultStore runs (registered with node:test), including the
// checks that stores shared between processes see and wake on each other's writes.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, it } from "node:test";
import type { MessageGraph } from "../../dsl/graph.ts";
import { reserveMembersOf } from "./member-reservations.ts";
import type { ResultRecord, ResultStore } from "./result-store.ts";

/** What a result-store suite needs: a fresh store, and optionally a second view of the same storage (another process's). */
export interface ResultStoreFixture {
  readonly store: ResultStore;
  /** A second store on the same storage, as another process would open it; only for stores shared between processes. */
  readonly peer?: () => Promise<ResultStore>;
  /** Close every store opened and remove what the test stored. */
  readonly done: () => Promise<void>;
}

const WAIT_MS = 2_000;

/**
 * Registers, with `node:test`, the tests every ResultStore must pass: states
 * never go back from final, the first final state wins, waiting wakes on the
 * write, values keep their bytes, workflow graphs, chord joins that count each
 * member once under concurrency, once-only claims. Stores shared between
 * processes (a node's, Redis, PostgreSQL) also prove that a second store on
 * the same storage sees every write and wakes on it.
 *
 * @example
 * resultStoreConformance("memory", async () => ({ store: new MemoryResultStore(), done: async () => {} }));
 */
export function resultStoreConformance(name: string, make: () => Promise<ResultStoreFixture>): void {
  const withStore = async (test: (fixture: ResultStoreFixture) => Promise<void>): Promise<void> => {
    const fixture = await make();
    try {
      await test(fixture);
    } finally {
      await fixture.done();
    }
  };

  describe(`${name} result store conformance`, () => {
    it("reads an id never recorded as undefined", () =>
      withStore(async ({ store }) => {
        assert.equal(await store.get(randomUUID()), undefined);
      }));

    it("records non-final states with their retries and workflow step", () =>
      withStore(async ({ store }) => {
        const id = randomUUID();
        await store.setState(id, "add", "PENDING");
        assert.deepEqual(pick(await store.get(id)), { id, task: "add", state: "PENDING", retries: 0 });
        await store.setState(id, "add", "STARTED", { retries: 2, workflow: "wf-1", node: 3 });
        const record = await store.get(id);
        assert.deepEqual(pick(record), { id, task: "add", state: "STARTED", retries: 2, workflow: "wf-1", node: 3 });
        assert.equal(typeof record?.updatedAt, "number");
      }));

    it("keeps what a running task reports of itself, replaces it with the next report, and keeps the last once the task finishes", () =>
      withStore(async ({ store }) => {
        const id = randomUUID();
        await store.start(id, "resize", { workflow: "wf-2", node: 1 });
        await store.setState(id, "resize", "STARTED", { info: new Uint8Array([1, 0, 255]) });
        let record = await store.get(id);
        assert.deepEqual([...(record?.info ?? [])], [1, 0, 255]);
        assert.deepEqual(pick(record), { id, task: "resize", state: "STARTED", retries: 0, workflow: "wf-2", node: 1 });
        await store.setState(id, "resize", "STARTED", { info: new Uint8Array([2]) });
        await store.setState(id, "resize", "STARTED");
        assert.deepEqual([...((await store.get(id))?.info ?? [])], [2]);
        await store.complete(id, "resize", { state: "SUCCESS", value: new Uint8Array([9]) });
        await store.setState(id, "resize", "STARTED", { info: new Uint8Array([3]) });
        record = await store.get(id);
        assert.equal(record?.state, "SUCCESS");
        assert.deepEqual([...(record?.info ?? [])], [2]);
      }));

    it("keeps a result's bytes exactly and never lets a later state overwrite a final one", () =>
      withStore(async ({ store }) => {
        const id = randomUUID();
        const value = new Uint8Array([0, 1, 2, 255, 0x90]);
        await store.setState(id, "add", "STARTED");
        assert.equal(await store.complete(id, "add", { state: "SUCCESS", value }), true);
        await store.setState(id, "add", "STARTED");
        const record = await store.get(id);
        assert.equal(record?.state, "SUCCESS");
        assert.deepEqual([...(record?.value ?? [])], [...value]);
      }));

    it("lets the first final state win and reports whether a completion was first", () =>
      withStore(async ({ store }) => {
        const id = randomUUID();
        const error = { name: "ValueError", message: "bad", stack: "at handler (tasks.ts:1)" };
        assert.equal(await store.complete(id, "div", { state: "FAILURE", error }), true);
        assert.equal(await store.complete(id, "div", { state: "SUCCESS", value: new Uint8Array([1]) }), false);
        const record = await store.get(id);
        assert.equal(record?.state, "FAILURE");
        assert.deepEqual(record?.error, error);
        assert.equal(record?.value, undefined);
      }));

    it("records a start unless the task already has a final state, and says which", () =>
      withStore(async ({ store }) => {
        const id = randomUUID();
        await store.setState(id, "add", "PENDING");
        assert.equal(await store.start(id, "add", { retries: 1 }), true);
        assert.deepEqual(pick(await store.get(id)), { id, task: "add", state: "STARTED", retries: 1 });
        const revoked = randomUUID();
        await store.complete(revoked, "add", {
          state: "REVOKED",
          error: { name: "TaskRevokedError", message: "revoked" },
        });
        assert.equal(await store.start(revoked, "add"), false);
        assert.equal((await store.get(revoked))?.state, "REVOKED");
      }));

    it("refuses a revocation that must not stop a started task, and records it for one not started", () =>
      withStore(async ({ store }) => {
        const error = { name: "TaskRevokedError", message: "revoked" };
        const running = randomUUID();
        await store.start(running, "slow");
        assert.equal(await store.complete(running, "slow", { state: "REVOKED", error, unlessStarted: true }), false);
        assert.equal((await store.get(running))?.state, "STARTED");
        const queued = randomUUID();
        await store.setState(queued, "slow", "PENDING");
        assert.equal(await store.complete(queued, "slow", { state: "REVOKED", error, unlessStarted: true }), true);
        assert.equal((await store.get(queued))?.state, "REVOKED");
      }));

    it("lets exactly one of many concurrent completions win", () =>
      withStore(async ({ store }) => {
        const id = randomUUID();
        const wins = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            store.complete(id, "race", { state: "SUCCESS", value: new Uint8Array([i]) }),
          ),
        );
        assert.equal(wins.filter(Boolean).length, 1);
        const winner = wins.indexOf(true);
        assert.deepEqual([...((await store.get(id))?.value ?? [])], [winner]);
      }));

    it("wakes a waiter with the record when the task finishes, and answers at once for a finished one", () =>
      withStore(async ({ store }) => {
        const id = randomUUID();
        await store.setState(id, "add", "PENDING");
        const waiting = store.waitFinal(id, WAIT_MS, () => new Error(`no result for ${id} within ${WAIT_MS} ms`));
        await store.complete(id, "add", { state: "SUCCESS", value: new Uint8Array([7]) });
        assert.deepEqual([...((await waiting).value ?? [])], [7]);
        const again = await store.waitFinal(id, WAIT_MS, () => new Error("a finished task must not wait"));
        assert.equal(again.state, "SUCCESS");
      }));

    it("rejects a wait with the caller's error when it times out", () =>
      withStore(async ({ store }) => {
        const id = randomUUID();
        await assert.rejects(
          store.waitFinal(id, 50, () => new Error(`timed out waiting for ${id}`)),
          (error: Error) => error.message === `timed out waiting for ${id}`,
        );
      }));

    it("forgets a record", () =>
      withStore(async ({ store }) => {
        const id = randomUUID();
        await store.complete(id, "add", { state: "SUCCESS", value: new Uint8Array([1]) });
        await store.forget(id);
        assert.equal(await store.get(id), undefined);
      }));

    it("keeps a workflow graph as it was saved", () =>
      withStore(async ({ store }) => {
        const saved = twoStepGraph(randomUUID());
        await store.saveGraph(saved);
        assert.deepEqual(await store.graph(saved.id), saved);
        assert.equal(await store.graph(randomUUID()), undefined);
      }));

    it("counts each member of a join once, however often it arrives", () =>
      withStore(async ({ store }) => {
        const key = `join-${randomUUID()}`;
        assert.equal(await store.arrive(key, 0), 1);
        assert.equal(await store.arrive(key, 0), 1);
        assert.equal(await store.arrive(key, 5), 2);
      }));

    it("gives concurrent arrivals at a join every count from 1 to n exactly once", () =>
      withStore(async ({ store }) => {
        const key = `join-${randomUUID()}`;
        const counts = await Promise.all(Array.from({ length: 50 }, (_, member) => store.arrive(key, member)));
        assert.deepEqual(
          counts.sort((a, b) => a - b),
          Array.from({ length: 50 }, (_, i) => i + 1),
        );
      }));

    it("grants a claim once among concurrent claimers, and again after a release", () =>
      withStore(async ({ store }) => {
        const key = `claim-${randomUUID()}`;
        const claims = await Promise.all(Array.from({ length: 20 }, () => store.claim(key)));
        assert.equal(claims.filter(Boolean).length, 1);
        assert.equal(await store.claim(key), false);
        await store.release(key);
        assert.equal(await store.claim(key), true);
      }));

    it("gives a reserved key to exactly one of many concurrent reservers and tells every other its holder", () =>
      withStore(async ({ store }) => {
        const key = `dedupe-${randomUUID()}`;
        const ids: string[] = Array.from({ length: 50 }, () => randomUUID());
        const holders = await Promise.all(ids.map((id) => store.reserve(key, id, 60_000)));
        assert.equal(new Set(holders).size, 1);
        assert.ok(ids.includes(holders[0]));
        assert.equal(await store.reserve(key, randomUUID(), 60_000), holders[0]);
      }));

    it("reserves several keys in one call, each to its first reserver, telling the holder of each", () =>
      withStore(async ({ store }) => {
        const keys = [0, 1, 2].map((i) => `dedupe-${i}-${randomUUID()}`);
        const [first, second] = [randomUUID(), randomUUID()];
        assert.equal(await store.reserve(keys[1], second, 60_000), second);
        const reserveAll =
          store.reserveAll?.bind(store) ??
          ((all: readonly string[], id: string, ttls: readonly number[]) =>
            Promise.all(all.map((key, i) => store.reserve(key, id, ttls[i]))));
        assert.deepEqual(await reserveAll(keys, first, [60_000, 60_000, 60_000]), [first, second, first]);
        assert.equal(await store.reserve(keys[2], second, 60_000), first);
      }));

    it("reserves members of a set, each to its first reserver, and tells each caller which it holds", () =>
      withStore(async ({ store, peer }) => {
        const key = `batch-${randomUUID()}`;
        const [first, second] = [randomUUID(), randomUUID()];
        const reserve = reserveMembersOf(store);
        // Large members too: a signing worker claims 48-bit numbers.
        const big = 2 ** 48 - 1;
        assert.deepEqual(await reserve(key, [1, 2, big], first, 60_000), [true, true, true]);
        assert.deepEqual(await reserve(key, [2, 3, big], second, 60_000), [false, true, false]);
        assert.deepEqual(await reserve(key, [1, 3], first, 60_000), [true, false], "a holder asking again still holds");
        const concurrent = await Promise.all(Array.from({ length: 20 }, () => reserve(key, [7], randomUUID(), 60_000)));
        assert.equal(concurrent.filter(([held]) => held).length, 1, "member 7 went to exactly one of 20 reservers");
        if (peer !== undefined)
          assert.deepEqual(await reserveMembersOf(await peer())(key, [1, 3, 8], randomUUID(), 60_000), [
            false,
            false,
            true,
          ]);
      }));

    it("frees a reserved set once its time is up, and keeps it while a later call extends it", () =>
      withStore(async ({ store }) => {
        const reserve = reserveMembersOf(store);
        const short = `batch-${randomUUID()}`;
        const extended = `batch-${randomUUID()}`;
        const first = randomUUID();
        assert.deepEqual(await reserve(short, [1], first, 40), [true]);
        assert.deepEqual(await reserve(extended, [1], first, 40), [true]);
        assert.deepEqual(await reserve(extended, [2], first, 60_000), [true]);
        const deadline = Date.now() + WAIT_MS;
        const second = randomUUID();
        // Polling the store is the behaviour under test: expiry has no event to wait on.
        let held = await reserve(short, [1], second, 60_000);
        while (!held[0] && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 20));
          held = await reserve(short, [1], second, 60_000);
        }
        assert.deepEqual(held, [true], `member 1 was still held ${WAIT_MS} ms after its 40 ms reservation`);
        assert.deepEqual(await reserve(extended, [2], second, 60_000), [false], "the extended member is still held");
      }));

    it("frees a reserved key once its time is up", () =>
      withStore(async ({ store }) => {
        const key = `dedupe-${randomUUID()}`;
        const first = randomUUID();
        assert.equal(await store.reserve(key, first, 40), first);
        const deadline = Date.now() + WAIT_MS;
        const second: string = randomUUID();
        // Polling the store is the behaviour under test: expiry has no event to wait on.
        let holder = await store.reserve(key, second, 60_000);
        while (holder !== second && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 20));
          holder = await store.reserve(key, second, 60_000);
        }
        assert.equal(holder, second, `the key was still held by ${holder} ${WAIT_MS} ms after its 40 ms reservation`);
      }));

    it("is shared: a second store on the same storage sees every write and wakes on a completion made by the first", async (t) => {
      const fixture = await make();
      try {
        if (fixture.peer === undefined) {
          t.skip(`${name} keeps results in one process`);
          return;
        }
        const peer = await fixture.peer();
        const { store } = fixture;
        const id = randomUUID();
        await store.setState(id, "add", "STARTED", { workflow: "wf", node: 0 });
        assert.equal((await peer.get(id))?.state, "STARTED");
        const waiting = peer.waitFinal(
          id,
          WAIT_MS,
          () => new Error(`the peer store did not wake for ${id} within ${WAIT_MS} ms`),
        );
        // Let the peer's subscription reach the storage before the write it must hear.
        await peer.get(id);
        await store.complete(id, "add", { state: "SUCCESS", value: new Uint8Array([42]) });
        assert.deepEqual([...((await waiting).value ?? [])], [42]);
        const saved = twoStepGraph(randomUUID());
        await store.saveGraph(saved);
        assert.deepEqual(await peer.graph(saved.id), saved);
        const key = `join-${randomUUID()}`;
        assert.equal(await store.arrive(key, 1), 1);
        assert.equal(await peer.arrive(key, 2), 2);
        assert.equal(await store.claim(`c-${key}`), true);
        assert.equal(await peer.claim(`c-${key}`), false);
        assert.equal(await store.reserve(`r-${key}`, "first", 60_000), "first");
        assert.equal(await peer.reserve(`r-${key}`, "second", 60_000), "first");
      } finally {
        await fixture.done();
      }
    });
  });
}

const pick = (record: ResultRecord | undefined) => {
  if (record === undefined) return undefined;
  const { id, task, state, retries, workflow, node } = record;
  return {
    id,
    task,
    state,
    retries,
    ...(workflow !== undefined ? { workflow } : {}),
    ...(node !== undefined ? { node } : {}),
  };
};

/** A two-step workflow graph (`add(1, 2)` then `add(3)` with the first's result), for the stores' tests to save and read back. */
export const twoStepGraph = (id: string): MessageGraph => ({
  id,
  nodes: [
    {
      index: 0,
      id: `${id}-a`,
      task: "add",
      args: [1, 2],
      options: {},
      passInput: false,
      waitsFor: 0,
      next: [1],
      errbacks: [],
    },
    {
      index: 1,
      id: `${id}-b`,
      task: "add",
      args: [3],
      options: { countdown: 5 },
      after: { node: 0 },
      passInput: true,
      waitsFor: 1,
      next: [],
      errbacks: [],
    },
  ],
  errbacks: [],
  output: { node: 1 },
});
