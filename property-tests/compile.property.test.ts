/**
 * The canvas compiler on random canvases (chains, groups, chords, link and
 * error callbacks, nested): the MessageGraph it produces is a well-formed
 * dependency graph the runtime can advance with join counters, and it can be
 * stored and sent as it is.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  Chain,
  Chord,
  Group,
  Signature,
  compile,
  type AnyCanvas,
  type CallOptions,
  type MessageGraph,
} from "../src/index.ts";
import { Codec } from "../src/transport.ts";
import { leavesOf, startNodes } from "../dsl/graph.ts";

// ---------------------------------------------------------------------------
// Random canvases, built from the DSL's own classes (no app: nothing is registered or sent)

const taskName = fc.constantFrom("add", "inc", "sum", "fetch", "store");
const argument = fc.oneof(
  fc.integer(),
  fc.string({ maxLength: 4 }),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.constant(null),
);
const callOptions: fc.Arbitrary<CallOptions> = fc.record(
  {
    queue: fc.constantFrom("celery", "io", "cpu"),
    priority: fc.integer({ min: 0, max: 9 }),
    countdown: fc.nat(1_000),
    ignoreResult: fc.boolean(),
  },
  { requiredKeys: [], noNullPrototype: true },
);

const signature = fc
  .tuple(taskName, fc.array(argument, { maxLength: 3 }), callOptions, fc.boolean())
  .map(([task, args, options, immutable]) => new Signature<any, any>(task, args, options, immutable, undefined));

/** Random canvases nested up to depth 4; groups and chord headers may be empty unless `nonEmptyGroups`. */
const canvasesWith = ({ nonEmptyGroups }: { readonly nonEmptyGroups: boolean }) =>
  fc.letrec<{ canvas: AnyCanvas; chain: AnyCanvas; group: AnyCanvas; chord: AnyCanvas; withCallbacks: AnyCanvas }>(
    (tie) => {
      const depth = fc.createDepthIdentifier();
      const members = fc.array(tie("canvas"), { minLength: nonEmptyGroups ? 1 : 0, maxLength: 4 });
      return {
        canvas: fc.oneof(
          { depthIdentifier: depth, maxDepth: 4, withCrossShrink: true },
          { arbitrary: signature, weight: 3 },
          { arbitrary: tie("chain"), weight: 2 },
          { arbitrary: tie("group"), weight: 2 },
          { arbitrary: tie("chord"), weight: 2 },
          { arbitrary: tie("withCallbacks"), weight: 1 },
        ),
        chain: fc.array(tie("canvas"), { minLength: 1, maxLength: 4 }).map((steps) => new Chain<any, any>(steps)),
        group: members.map((ms) => new Group<any, any>(ms)),
        chord: fc
          .tuple(members, tie("canvas"))
          .map(([header, body]) => new Chord<any, any>(new Group<any, any>(header), body)),
        // `link` callbacks may be any canvas; `onError` callbacks must be signatures.
        withCallbacks: fc
          .tuple(tie("canvas"), fc.array(tie("canvas"), { maxLength: 2 }), fc.array(signature, { maxLength: 2 }))
          .map(([base, links, errbacks]) => {
            let out = base;
            for (const link of links) out = out.link(link as never);
            for (const errback of errbacks) out = out.onError(errback as never);
            return out;
          }),
      };
    },
  ).canvas;

const canvas = canvasesWith({ nonEmptyGroups: false });
const canvasWithoutEmptyGroups = canvasesWith({ nonEmptyGroups: true });

// ---------------------------------------------------------------------------
// What the canvas holds, and the order it asks for

/** How many onError callbacks the canvas holds, at any depth (link callbacks included). */
const errbackCount = (c: AnyCanvas): number => {
  const parts: AnyCanvas[] =
    c.kind === "signature"
      ? []
      : c.kind === "chain"
        ? [...c.steps]
        : c.kind === "group"
          ? [...c.members]
          : [c.header, c.body];
  return [...parts, ...c.callbacks.links].reduce((n, part) => n + errbackCount(part), c.callbacks.errbacks.length);
};

/** The canvas's signatures in the order the compiler meets them. */
const signaturesInOrder = (c: AnyCanvas, into: Signature<any, any>[] = []): Signature<any, any>[] => {
  if (c.kind === "signature") into.push(c);
  else if (c.kind === "chain") for (const step of c.steps) signaturesInOrder(step, into);
  else if (c.kind === "group") for (const member of c.members) signaturesInOrder(member, into);
  else {
    signaturesInOrder(c.header, into);
    signaturesInOrder(c.body, into);
  }
  for (const link of c.callbacks.links) signaturesInOrder(link, into);
  return into;
};

const compileIt = (c: AnyCanvas): MessageGraph => compile(c, { newId: () => randomUUID() });

/** Everything the runtime relies on in a compiled graph. */
const checkGraph = (graph: MessageGraph, c: AnyCanvas): void => {
  const { nodes } = graph;
  nodes.forEach((node, i) => assert.equal(node.index, i, "a node's index is its position"));

  // Join counters: each node waits for exactly the results its `after` is made of.
  for (const node of nodes) {
    const leaves = node.after === undefined ? [] : [...new Set(leavesOf(node.after))];
    assert.equal(node.waitsFor, leaves.length, `node ${node.index}: waitsFor`);
    // Topological order, hence no cycle: a node only waits for nodes before it.
    for (const leaf of leaves) assert.ok(leaf >= 0 && leaf < node.index, `node ${node.index} waits for node ${leaf}`);
  }

  // `next` is exactly the inverse of the `after` leaves.
  const expectedNext = nodes.map(() => [] as number[]);
  for (const node of nodes)
    for (const leaf of node.after === undefined ? [] : new Set(leavesOf(node.after)))
      expectedNext[leaf].push(node.index);
  for (const node of nodes) {
    assert.deepStrictEqual(
      [...node.next].sort((a, b) => a - b),
      expectedNext[node.index],
      `node ${node.index}: next`,
    );
  }

  // Start nodes are those that wait for nothing.
  const starts = startNodes(graph).map((node) => node.index);
  assert.deepStrictEqual(
    starts,
    nodes.filter((node) => node.after === undefined || leavesOf(node.after).length === 0).map((node) => node.index),
  );
  assert.ok(nodes.length === 0 || starts.length > 0, "a non-empty graph has a node to start with");

  // Node i is the i-th signature met depth first (links after their canvas), with its task and
  // arguments; it is given its parent's result exactly when it is mutable and has a parent.
  const signatures = signaturesInOrder(c);
  assert.equal(nodes.length, signatures.length, "one node per signature");
  nodes.forEach((node, i) => {
    assert.equal(node.task, signatures[i].task, `node ${i}: task`);
    assert.deepStrictEqual(node.args, signatures[i].args, `node ${i}: args`);
    assert.equal(node.passInput, !signatures[i].immutable && node.after !== undefined, `node ${i}: passInput`);
  });

  // The output and the error callbacks point at real nodes / callbacks.
  for (const leaf of leavesOf(graph.output))
    assert.ok(leaf >= 0 && leaf < nodes.length, `output refers to node ${leaf}`);
  graph.errbacks.forEach((errback, i) => assert.equal(errback.index, i));
  for (const node of nodes)
    for (const e of node.errbacks) assert.ok(e >= 0 && e < graph.errbacks.length, `node ${node.index}: errback ${e}`);

  // One errback per onError callback.
  assert.equal(graph.errbacks.length, errbackCount(c), "one errback per onError callback");

  // Every id is distinct: workflow, nodes and errbacks.
  const ids = [graph.id, ...nodes.map((n) => n.id), ...graph.errbacks.map((e) => e.id)];
  assert.equal(new Set(ids).size, ids.length, "ids are unique");
};

/**
 * The ordering the canvas asks for, node by node (nodes numbered in the order
 * the compiler creates them: depth first, a canvas's link callbacks after its
 * own steps): the nodes each node must run after. A chain's step runs after
 * the previous step's result exists; a chord's body after every header
 * member; a link callback after its canvas; a group with no members is ready
 * as soon as its own input is.
 */
const requiredOrder = (c: AnyCanvas): Map<number, readonly number[]> => {
  const mustFollow = new Map<number, readonly number[]>();
  let next = 0;
  const walk = (canvas: AnyCanvas, ready: readonly number[]): readonly number[] => {
    let done: readonly number[];
    switch (canvas.kind) {
      case "signature": {
        const index = next++;
        mustFollow.set(index, ready);
        done = [index];
        break;
      }
      case "chain":
        done = canvas.steps.reduce((input, step) => walk(step, input), ready);
        break;
      case "group":
        done = canvas.members.length === 0 ? ready : canvas.members.flatMap((member) => walk(member, ready));
        break;
      case "chord":
        done = walk(canvas.body, walk(canvas.header, ready));
        break;
    }
    for (const link of canvas.callbacks.links) walk(link, done);
    return done;
  };
  walk(c, []);
  return mustFollow;
};

/** Whether `to` runs only after `from`: reachable along `next` edges. */
const reaches = (graph: MessageGraph, from: number, to: number): boolean => {
  const seen = new Set<number>([from]);
  const stack = [from];
  while (stack.length > 0) {
    const at = stack.pop() as number;
    if (at === to) return true;
    for (const n of graph.nodes[at].next) if (!seen.has(n)) seen.add(n), stack.push(n);
  }
  return false;
};

const checkOrder = (graph: MessageGraph, c: AnyCanvas): void => {
  for (const [node, before] of requiredOrder(c)) {
    for (const b of before) {
      assert.ok(
        reaches(graph, b, node),
        `node ${node} (${graph.nodes[node].task}) can start before node ${b} (${graph.nodes[b].task}) finished`,
      );
    }
  }
};

const codec = new Codec();

// ---------------------------------------------------------------------------

describe("compile: random canvases give well-formed graphs", () => {
  it("gives each node a join counter equal to the results it waits for, `next` edges that invert `after`, a topological order, start nodes that wait for nothing and unique ids", () => {
    fc.assert(
      fc.property(canvas, (c) => {
        checkGraph(compileIt(c), c);
      }),
      { numRuns: 500 },
    );
  });

  it("orders every step after the steps it follows (canvases without empty groups)", () => {
    fc.assert(
      fc.property(canvasWithoutEmptyGroups, (c) => {
        checkOrder(compileIt(c), c);
      }),
      { numRuns: 300 },
    );
  });

  it("orders every step after the steps it follows, with empty groups anywhere", () => {
    fc.assert(
      fc.property(canvas, (c) => {
        checkOrder(compileIt(c), c);
      }),
      { numRuns: 300 },
    );
  });

  it("produces a graph that survives the codec unchanged (it can be stored and sent)", () => {
    fc.assert(
      fc.property(canvas, (c) => {
        const graph = compileIt(c);
        assert.deepStrictEqual(codec.decode(codec.encode(graph, "graph")), graph);
      }),
      { numRuns: 300 },
    );
  });

  it("compiles the same canvas to the same shape every time, with fresh ids", () => {
    fc.assert(
      fc.property(canvas, (c) => {
        const a = compileIt(c);
        const b = compileIt(c);
        const shape = (g: MessageGraph) => ({
          nodes: g.nodes.map(({ id: _id, ...rest }) => rest),
          errbacks: g.errbacks.map(({ id: _id, ...rest }) => rest),
          output: g.output,
        });
        assert.deepStrictEqual(shape(a), shape(b));
        assert.notEqual(a.id, b.id);
      }),
      { numRuns: 200 },
    );
  });

  it("gives a chain's steps one after another and a chord's body all header members", () => {
    const sig = (task: string, immutable = false) => new Signature<any, any>(task, [], {}, immutable, undefined);
    const graph = compileIt(
      new Chain<any, any>([
        sig("a"),
        new Chord<any, any>(new Group<any, any>([sig("b"), sig("c", true)]), sig("d")),
        sig("e", true),
      ]),
    );
    assert.deepStrictEqual(
      graph.nodes.map((n) => [n.task, n.after, n.waitsFor, n.next, n.passInput]),
      [
        ["a", undefined, 0, [1, 2], false],
        ["b", { node: 0 }, 1, [3], true],
        ["c", { node: 0 }, 1, [3], false],
        ["d", { list: [{ node: 1 }, { node: 2 }] }, 2, [4], true],
        ["e", { node: 3 }, 1, [], false],
      ],
    );
    assert.deepStrictEqual(graph.output, { node: 4 });
  });

  it("orders a chain's step after the step before an empty group or empty-header chord between them", () => {
    const sig = (task: string) => new Signature<any, any>(task, [], {}, false, undefined);
    // chain(add, chord([], add), add): the chord's body must wait for the first step.
    const viaChord = new Chain<any, any>([
      sig("add"),
      new Chord<any, any>(new Group<any, any>([]), sig("add")),
      sig("add"),
    ]);
    checkOrder(compileIt(viaChord), viaChord);
    // chain(a, group([]), b): b must wait for a.
    const viaGroup = new Chain<any, any>([sig("a"), new Group<any, any>([]), sig("b")]);
    checkOrder(compileIt(viaGroup), viaGroup);
  });

  it("makes two nodes of a signature used twice (not a cycle)", () => {
    const shared = new Signature<any, any>("inc", [1], {}, false, undefined);
    const graph = compileIt(new Group<any, any>([shared, new Chain<any, any>([shared, shared])]));
    checkGraph(graph, new Group<any, any>([shared, new Chain<any, any>([shared, shared])]));
    assert.equal(graph.nodes.length, 3);
  });
});
