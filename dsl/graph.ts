// The compiled, serializable form of a canvas: task nodes with their dependencies and
// join counters. The runtime stores it once per workflow and advances it as results
// arrive; nothing in it refers back to the canvas.
import type { CallOptions } from "./options.ts";

/**
 * Where a value comes from: one node's result, or the ordered list of several
 * (a group's result). An empty group that follows a step has no members to
 * wait for, so it keeps that step as `gate`: whatever comes after it still
 * waits for the step (and fails with it), though the value is [].
 *
 * @example
 * const input: ValueRef = { list: [{ node: 0 }, { node: 1 }] }; // the results of nodes 0 and 1, as a list
 */
export type ValueRef = { readonly node: number } | { readonly list: readonly ValueRef[]; readonly gate?: ValueRef };

/**
 * One task of a compiled workflow: its call, where its input comes from, and how many parents it waits for.
 *
 * @example
 * const [first] = compile(chain(add.s(2, 2), add.s(4)), { newId: randomUUID }).nodes;
 * first.task; // "add"
 */
export interface GraphNode {
  readonly index: number;
  /** Task id (UUID), fixed at compile time so results can be awaited before anything runs. */
  readonly id: string;
  readonly task: string;
  readonly args: readonly unknown[];
  readonly options: CallOptions;
  /** For the built-in map / starmap tasks: the task applied to each item. */
  readonly target?: string;
  /** The value this node waits for (its parent's result, or a group's list). Absent for a first step. */
  readonly after?: ValueRef;
  /** Prepend the `after` value to `args` (false for immutable signatures, which only wait). */
  readonly passInput: boolean;
  /** Join counter target: how many node results `after` is made of. 0: ready at once. */
  readonly waitsFor: number;
  /** Nodes whose `after` includes this node. */
  readonly next: readonly number[];
  /** Error callbacks (indexes into MessageGraph.errbacks) to fire if this node fails. */
  readonly errbacks: readonly number[];
}

/** An error callback: sent once, with a TaskFailure prepended, when any node watching it fails. */
export interface Errback {
  readonly index: number;
  readonly id: string;
  readonly task: string;
  readonly args: readonly unknown[];
  readonly options: CallOptions;
  readonly target?: string;
}

/**
 * A canvas compiled to plain data: the nodes to run, their joins and callbacks. What `apply()` stores and sends.
 *
 * @example
 * const graph: MessageGraph = compile(chord(group(add.s(1, 1), add.s(2, 2)), tsum.s()), { newId: randomUUID });
 * graph.nodes.length; // 3
 */
export interface MessageGraph {
  /** Workflow id (UUID). */
  readonly id: string;
  readonly nodes: readonly GraphNode[];
  readonly errbacks: readonly Errback[];
  /** The workflow's value: what `apply()`'s result resolves to. */
  readonly output: ValueRef;
}

/** The node indexes a value is made of (what must finish before it exists), in order. */
export const leavesOf = (ref: ValueRef, into: number[] = []): number[] => {
  if ("node" in ref) into.push(ref.node);
  else if (ref.list.length === 0 && ref.gate !== undefined) leavesOf(ref.gate, into);
  else for (const item of ref.list) leavesOf(item, into);
  return into;
};

/** Build a value from per-node results (`resultOf(index)`). */
export const materialize = (ref: ValueRef, resultOf: (index: number) => unknown): unknown =>
  "node" in ref ? resultOf(ref.node) : ref.list.map((item) => materialize(item, resultOf));

/** Nodes with nothing to wait for: the ones sent when the workflow starts. */
export const startNodes = (graph: MessageGraph): GraphNode[] => graph.nodes.filter((node) => node.waitsFor === 0);
