// The compiler from a canvas to its message graph: ids, input wiring, join counters and
// callbacks, with calls checked against the registered tasks before anything is sent.
import type { AnyCanvas, Signature } from "./canvas.ts";
import { MAP_TASK, STARMAP_TASK } from "./combinators.ts";
import { CanvasError } from "./errors.ts";
import { leavesOf, type Errback, type GraphNode, type MessageGraph, type ValueRef } from "./graph.ts";
import { mergeOptions, type CallOptions } from "./options.ts";

/** What the compiler may know about a task, to check calls before anything is sent. */
export interface TaskShape {
  /** Fewest arguments the task can be called with. */
  readonly minArgs: number;
}

/**
 * What `compile` needs: how to make ids, and optionally the tasks to check calls against and default call options.
 *
 * @example
 * compile(chain(add.s(2, 2), add.s(4)), { newId: randomUUID });
 */
export interface CompileOptions {
  /** Workflow and task ids. */
  readonly newId: () => string;
  /** The registered tasks; a name it does not know is a CanvasError. Omit to skip the check. */
  readonly shapeOf?: (task: string) => TaskShape | undefined;
  /** Options applied to every node, over the nodes' own. */
  readonly overrides?: CallOptions;
  /** Refuse canvases larger than this many nodes. Default 1,000,000. */
  readonly maxNodes?: number;
}

const BUILTINS = new Set([MAP_TASK, STARMAP_TASK]);

interface NodeDraft {
  index: number;
  id: string;
  task: string;
  args: readonly unknown[];
  options: CallOptions;
  target?: string;
  after?: ValueRef;
  passInput: boolean;
  waitsFor: number;
  next: number[];
  errbacks: number[];
}

/**
 * Compile a canvas to a MessageGraph. Validates as it goes: unknown tasks,
 * too few arguments for a task, a signature that would be called with its
 * parent's result but cannot take it, a step with no task name, and cycles
 * (a canvas that contains itself) are CanvasErrors naming the path.
 *
 * @example
 * const graph = compile(chain(add.s(2, 2), add.s(4)), { newId: randomUUID });
 * graph.nodes.length; // 2
 */
export const compile = (canvas: AnyCanvas, options: CompileOptions): MessageGraph => {
  const nodes: NodeDraft[] = [];
  const errbacks: Errback[] = [];
  const maxNodes = options.maxNodes ?? 1_000_000;
  const visiting = new Set<AnyCanvas>();

  const check = (sig: Signature<any, any>, path: string, prepended: boolean) => {
    if (typeof sig.task !== "string" || sig.task.length === 0)
      throw new CanvasError({ path, reason: "signature has no task name" });
    if (options.shapeOf === undefined) return;
    for (const name of BUILTINS.has(sig.task) ? [sig.target ?? ""] : [sig.task]) {
      const shape = options.shapeOf(name);
      if (shape === undefined) throw new CanvasError({ path, reason: `task '${name}' is not registered` });
      if (BUILTINS.has(sig.task)) continue;
      const given = sig.args.length + (prepended ? 1 : 0);
      if (given < shape.minArgs) {
        const from = prepended ? ` (${sig.args.length} given + the previous step's result)` : "";
        throw new CanvasError({
          path,
          reason: `task '${name}' takes at least ${shape.minArgs} argument(s) but would get ${given}${from}`,
        });
      }
    }
    if (BUILTINS.has(sig.task) && sig.args.length + (prepended ? 1 : 0) !== 1) {
      throw new CanvasError({
        path,
        reason: `${sig.task} of '${sig.target}' needs its list of items, given or from the previous step`,
      });
    }
  };

  const addNode = (sig: Signature<any, any>, after: ValueRef | undefined, path: string): number => {
    if (nodes.length >= maxNodes) throw new CanvasError({ path, reason: `canvas has more than ${maxNodes} tasks` });
    const passInput = !sig.immutable && after !== undefined;
    check(sig, path, passInput);
    const index = nodes.length;
    // Distinct: two empty groups gated on the same step name it twice, but it finishes once.
    const waits = after === undefined ? [] : [...new Set(leavesOf(after))];
    nodes.push({
      index,
      id: options.newId(),
      task: sig.task,
      args: sig.args,
      options: mergeOptions(sig.options, options.overrides),
      ...(sig.target === undefined ? {} : { target: sig.target }),
      ...(after === undefined ? {} : { after }),
      passInput,
      waitsFor: waits.length,
      next: [],
      errbacks: [],
    });
    for (const leaf of waits) nodes[leaf].next.push(index);
    return index;
  };

  const attachCallbacks = (canvas: AnyCanvas, out: ValueRef, path: string) => {
    canvas.callbacks.links.forEach((link, i) => visit(link, out, `${path}.link[${i}]`));
    canvas.callbacks.errbacks.forEach((errback, i) => {
      const where = `${path}.onError[${i}]`;
      if (errback.kind !== "signature")
        throw new CanvasError({ path: where, reason: "an error callback must be a single signature" });
      check(errback, where, !errback.immutable);
      const index = errbacks.length;
      errbacks.push({
        index,
        id: options.newId(),
        task: errback.task,
        args: errback.args,
        options: mergeOptions(errback.options, options.overrides),
        ...(errback.target === undefined ? {} : { target: errback.target }),
      });
      for (const leaf of leavesOf(out)) nodes[leaf].errbacks.push(index);
    });
  };

  const visit = (canvas: AnyCanvas, after: ValueRef | undefined, path: string): ValueRef => {
    if (canvas === null || typeof canvas !== "object" || !("kind" in canvas)) {
      throw new CanvasError({
        path,
        reason: `expected a signature, chain, group or chord, got ${canvas === null ? "null" : typeof canvas}`,
      });
    }
    if (visiting.has(canvas)) throw new CanvasError({ path, reason: "the canvas contains itself (a cycle)" });
    visiting.add(canvas);
    let out: ValueRef;
    switch (canvas.kind) {
      case "signature":
        out = { node: addNode(canvas, after, path) };
        break;
      case "chain": {
        if (canvas.steps.length === 0) throw new CanvasError({ path, reason: "a chain needs at least one step" });
        let value = after;
        canvas.steps.forEach((step, i) => {
          value = visit(step, value, `${path}[${i}]`);
        });
        out = value as ValueRef;
        break;
      }
      case "group":
        out =
          canvas.members.length === 0 && after !== undefined
            ? { list: [], gate: after }
            : { list: canvas.members.map((member, i) => visit(member, after, `${path}[${i}]`)) };
        break;
      case "chord": {
        const header = visit(canvas.header, after, `${path}.header`);
        out = visit(canvas.body, header, `${path}.body`);
        break;
      }
      default:
        throw new CanvasError({ path, reason: `unknown canvas kind '${(canvas as { kind: unknown }).kind}'` });
    }
    attachCallbacks(canvas, out, path);
    visiting.delete(canvas);
    return out;
  };

  const output = visit(canvas, undefined, rootName(canvas));
  return { id: options.newId(), nodes: nodes as readonly GraphNode[], errbacks, output };
};

const rootName = (canvas: AnyCanvas): string =>
  canvas && typeof canvas === "object" && "kind" in canvas ? String(canvas.kind) : "canvas";
