/**
 * A random sequence of result-store writes, with restarts, crashes (the store
 * abandoned without closing) and compactions in between, leaves a
 * DurableResultStore answering exactly as an in-memory store that never
 * restarted: every call returns the same, and at the end every task record,
 * graph, join and claim reads the same. Bounds are large enough that nothing
 * is evicted or expires; those are covered by the unit tests.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { MessageGraph } from "../dsl/graph.ts";
import type { TaskState } from "../dsl/result.ts";
import { DurableResultStore } from "../runtime/results/durable/durable-result-store.ts";
import { MemoryResultStore, type FinalOutcome } from "../runtime/results/result-store.ts";

const IDS = ["a", "b", "c", "d"];
const KEYS = ["k1", "k2"];

type Op =
  | {
      readonly op: "setState";
      readonly id: string;
      readonly state: TaskState;
      readonly retries?: number;
      readonly workflow?: boolean;
    }
  | { readonly op: "complete"; readonly id: string; readonly outcome: FinalOutcome }
  | { readonly op: "forget"; readonly id: string }
  | { readonly op: "saveGraph"; readonly id: string; readonly tag: number }
  | { readonly op: "arrive"; readonly key: string; readonly member: number }
  | { readonly op: "claim"; readonly key: string }
  | { readonly op: "release"; readonly key: string }
  | { readonly op: "restart" | "crash" | "compact" };

const id = fc.constantFrom(...IDS);
const key = fc.constantFrom(...KEYS);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    op: fc.constant("setState" as const),
    id,
    state: fc.constantFrom<TaskState>("PENDING", "RECEIVED", "STARTED", "RETRY"),
    retries: fc.option(fc.nat(5), { nil: undefined }),
    workflow: fc.boolean(),
  }),
  fc.record({
    op: fc.constant("complete" as const),
    id,
    outcome: fc.oneof(
      fc.uint8Array({ maxLength: 8 }).map((value): FinalOutcome => ({ state: "SUCCESS", value })),
      fc
        .string({ maxLength: 8 })
        .map((message): FinalOutcome => ({ state: "FAILURE", error: { name: "Error", message } })),
      fc.constant<FinalOutcome>({ state: "REVOKED", error: { name: "TaskRevokedError", message: "revoked" } }),
    ),
  }),
  fc.record({ op: fc.constant("forget" as const), id }),
  fc.record({ op: fc.constant("saveGraph" as const), id: fc.constantFrom("g1", "g2"), tag: fc.nat(9) }),
  fc.record({ op: fc.constant("arrive" as const), key, member: fc.nat(3) }),
  fc.record({ op: fc.constant("claim" as const), key }),
  fc.record({ op: fc.constant("release" as const), key }),
  fc.record({ op: fc.constantFrom("restart" as const, "crash" as const, "compact" as const) }),
);

const graph = (graphId: string, tag: number): MessageGraph => ({
  id: graphId,
  nodes: [
    {
      index: 0,
      id: `${graphId}-0`,
      task: "t",
      args: [tag, "x"],
      options: {},
      passInput: false,
      waitsFor: 0,
      next: [],
      errbacks: [],
    },
  ],
  errbacks: [],
  output: { node: 0 },
});

describe("DurableResultStore against an in-memory store that never restarts", () => {
  // Its time is its runs' CPU and disk: on a machine whose cores other work takes it may run several times as
  // long as alone, with nothing stuck.
  it("answers every call the same way, across restarts, crashes and compactions", { timeout: 480_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 30 }), async (ops) => {
        const dir = mkdtempSync(join(tmpdir(), "celerity-results-prop-"));
        let time = 1_000_000;
        const now = () => time;
        // Interval fsync: a crash of the process loses nothing written, and the run stays fast.
        const options = { now, fsync: { intervalMs: 60_000 }, log: () => {} } as const;
        const model = new MemoryResultStore({ now });
        const opened: DurableResultStore[] = [];
        const open = async () => {
          const store = await DurableResultStore.open(dir, options);
          opened.push(store);
          return store;
        };
        try {
          let store = await open();
          for (const [step, op] of ops.entries()) {
            time += 1;
            const where = `step ${step} (${op.op})`;
            switch (op.op) {
              case "setState": {
                const details = {
                  ...(op.retries !== undefined ? { retries: op.retries } : {}),
                  ...(op.workflow ? { workflow: "wf", node: 1 } : {}),
                };
                model.setState(op.id, "t", op.state, details);
                await store.setState(op.id, "t", op.state, details);
                break;
              }
              case "complete":
                assert.equal(
                  await store.complete(op.id, "t", op.outcome),
                  model.complete(op.id, "t", op.outcome),
                  where,
                );
                break;
              case "forget":
                await Promise.all([store.forget(op.id), model.forget(op.id)]);
                break;
              case "saveGraph":
                await Promise.all([store.saveGraph(graph(op.id, op.tag)), model.saveGraph(graph(op.id, op.tag))]);
                break;
              case "arrive":
                assert.equal(await store.arrive(op.key, op.member), await model.arrive(op.key, op.member), where);
                break;
              case "claim":
                assert.equal(await store.claim(op.key), await model.claim(op.key), where);
                break;
              case "release":
                await Promise.all([store.release(op.key), model.release(op.key)]);
                break;
              case "restart":
                await store.close();
                store = await open();
                break;
              case "crash":
                store = await open();
                break;
              case "compact":
                await store.compact();
                break;
            }
          }
          store = await open();
          for (const taskId of IDS)
            assert.deepEqual(await store.get(taskId), await model.get(taskId), `task ${taskId}`);
          for (const graphId of ["g1", "g2"])
            assert.deepEqual(await store.graph(graphId), await model.graph(graphId), `graph ${graphId}`);
          for (const joinKey of KEYS)
            assert.equal(await store.arrive(joinKey, 99), await model.arrive(joinKey, 99), `join ${joinKey}`);
          for (const claimKey of KEYS)
            assert.equal(await store.claim(claimKey), await model.claim(claimKey), `claim ${claimKey}`);
        } finally {
          for (const store of opened) await store.close().catch(() => undefined);
          rmSync(dir, { recursive: true, force: true });
        }
      }),
      { numRuns: 60 },
    );
  });
});
