// The ways to compose canvases: chain, group and chord with the types that check each step
// against the one before, and the signatures behind map, starmap and chunks.
import { Chain, Chord, Group, Signature, type AnyCanvas, type Dispatcher } from "./canvas.ts";
import type { ChainSteps, GroupResults, InputOf, Last, ResultOf, StepMismatch, Accepts } from "./inference.ts";
import type { CallOptions } from "./options.ts";

/**
 * Compose steps in sequence. Each step's result is prepended to the next
 * mutable step's arguments (Celery's rule); the chain's result is its last
 * step's. A step that cannot take the previous result is a type error.
 *
 * @example
 * const r = await chain(add.s(2, 2), add.s(4), add.s(8)).apply();
 * await r.get(); // 16
 */
export function chain<const T extends readonly [AnyCanvas, ...AnyCanvas[]]>(
  ...steps: T & ChainSteps<T>
): Chain<InputOf<T[0]>, ResultOf<Last<T>>> {
  return new Chain(flattenChains(steps as readonly AnyCanvas[]));
}

/** What a group's members take from a parent; an empty group takes anything and needs nothing. */
type MembersInput<T extends readonly AnyCanvas[]> = T extends readonly [] ? [_?: unknown] : InputOf<T[number]>;

/** Nested chains without callbacks are the same chain; flattening keeps graphs and errors simple. */
const flattenChains = (steps: readonly AnyCanvas[]): AnyCanvas[] =>
  steps.flatMap((step) =>
    step.kind === "chain" && step.callbacks.links.length === 0 && step.callbacks.errbacks.length === 0
      ? flattenChains(step.steps)
      : [step],
  );

/**
 * Run canvases in parallel; the result is the tuple of their results, in order.
 * Takes members as arguments or one array.
 *
 * @example
 * await (await group(add.s(1, 1), add.s(2, 2)).apply()).get(); // [2, 4]
 * await (await group([1, 2, 3].map((n) => add.s(n, n))).apply()).get(); // [2, 4, 6]
 */
export function group<const T extends readonly AnyCanvas[]>(members: T): Group<MembersInput<T>, GroupResults<T>>;
export function group<const T extends readonly AnyCanvas[]>(...members: T): Group<MembersInput<T>, GroupResults<T>>;
export function group(...members: unknown[]): Group<any, any> {
  const list =
    members.length === 1 && Array.isArray(members[0]) ? (members[0] as AnyCanvas[]) : (members as AnyCanvas[]);
  return new Group([...list]);
}

/**
 * A group whose results, once every member succeeded, are passed as one list
 * to `body`. The join is a counter advanced once per finished member: no polling.
 * If a member fails the body never runs and the chord fails, naming that member.
 *
 * @example
 * await (await chord(group(add.s(1, 1), add.s(2, 2)), tsum.s()).apply()).get(); // 6
 */
export function chord<H extends Group<any, any>, B extends AnyCanvas>(
  header: H,
  body: B & ChordBody<B, ResultOf<H>>,
): Chord<InputOf<H>, ResultOf<B>>;
export function chord<const T extends readonly AnyCanvas[], B extends AnyCanvas>(
  header: T,
  body: B & ChordBody<B, GroupResults<T>>,
): Chord<InputOf<T[number]>, ResultOf<B>>;
export function chord(header: Group<any, any> | readonly AnyCanvas[], body: AnyCanvas): Chord<any, any> {
  const headerGroup = header instanceof Group ? header : new Group([...header]);
  return new Chord(headerGroup, body);
}

type ChordBody<B, HeaderResult> =
  Accepts<B, HeaderResult> extends true ? unknown : StepMismatch<"chord body", HeaderResult, InputOf<B>>;

/** Name of the built-in task that applies a task to every item of a list, in one message. */
export const MAP_TASK = "celerity.map";
/** Name of the built-in task that applies a task to every argument tuple of a list, in one message. */
export const STARMAP_TASK = "celerity.starmap";

/** A signature of the built-in map task: `target` applied to each item (the items may come from a parent step). */
export const mapSignature = <A, R>(
  target: string,
  items: readonly A[] | undefined,
  dispatcher: Dispatcher | undefined,
  options: CallOptions = {},
): Signature<any, R[]> =>
  new Signature(MAP_TASK, items === undefined ? [] : [items], options, false, dispatcher, undefined, target);

/** A signature of the built-in starmap task: `target` applied to each argument tuple. */
export const starmapSignature = <A extends readonly unknown[], R>(
  target: string,
  argsList: readonly A[] | undefined,
  dispatcher: Dispatcher | undefined,
  options: CallOptions = {},
): Signature<any, R[]> =>
  new Signature(STARMAP_TASK, argsList === undefined ? [] : [argsList], options, false, dispatcher, undefined, target);

/** Split `argsList` into chunks of `size`, each a starmap: a group whose result is a list of lists. */
export const chunksGroup = <A extends readonly unknown[], R>(
  target: string,
  argsList: readonly A[],
  size: number,
  dispatcher: Dispatcher | undefined,
  options: CallOptions = {},
): Group<[], R[][]> => {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`chunks: size must be a positive integer, got ${size}`);
  const members: Signature<[], R[]>[] = [];
  for (let i = 0; i < argsList.length; i += size) {
    members.push(starmapSignature<A, R>(target, argsList.slice(i, i + size), dispatcher, options));
  }
  return new Group(members);
};
