/**
 * The type-level rules of composition, kept to a few named helpers.
 *
 * A canvas's `In` is the tuple of arguments it still expects from a parent:
 * `[]` for a complete signature, `[x: P]` for a partial one, `[_?: unknown]`
 * for an immutable one (it ignores whatever it is given). A group's `In` is
 * the union of its members' (every member receives the same input).
 */
import type { AnyCanvas } from "./canvas.ts";

/**
 * The result type of a canvas: a chain's last step, a group's tuple, a chord's body.
 *
 * @example
 * type Total = ResultOf<typeof steps>; // number for chain(add.s(2, 2), add.s(4))
 */
export type ResultOf<C> = C extends { readonly _out: infer R } ? R : never;
/**
 * What a canvas takes from a parent: the arguments a chain prepends to it.
 *
 * @example
 *
 * const partial = add.s(4);
 * type Takes = InputOf<typeof partial>; // [number]: a chain supplies add's first argument
 */
export type InputOf<C> = C extends { readonly _in: infer In } ? In : never;

/** `true` for every member of the `In` union that can be called with `[P]`. Distributes over `In`. */
type TakesEach<In, P> = In extends readonly unknown[] ? ([P] extends In ? true : false) : false;
/** `true` for every member of the `In` union that can be called with no argument. */
type TakesNothingEach<In> = In extends readonly unknown[] ? ([] extends In ? true : false) : false;

/** Whether canvas C can receive a parent's result of type P. */
export type Accepts<C, P> = 0 extends 1 & InputOf<C> ? true : false extends TakesEach<InputOf<C>, P> ? false : true;
/** Whether canvas C can run first, with nothing prepended. */
export type Standalone<C> = false extends TakesNothingEach<InputOf<C>> ? false : true;

/** What a misfit step turns into, so the compiler's error names the step and both types. */
export interface StepMismatch<Step, Receives, Expects> {
  readonly "this step does not accept the previous step's result": { step: Step; receives: Receives; expects: Expects };
}

export interface CallbackMismatch<Receives, Expects> {
  readonly "this callback does not accept the value it would receive": { receives: Receives; expects: Expects };
}

/** Each step after the first must accept the result of the one before it. */
export type ChainSteps<T extends readonly AnyCanvas[]> = {
  [K in keyof T]: K extends "0"
    ? T[K]
    : Accepts<T[K], ResultOf<PreviousOf<T, K>>> extends true
      ? T[K]
      : StepMismatch<K, ResultOf<PreviousOf<T, K>>, InputOf<T[K]>>;
};

type PreviousOf<T extends readonly unknown[], K> = K extends keyof [never, ...T] ? [never, ...T][K] : never;

export type Last<T extends readonly unknown[]> = T extends readonly [...unknown[], infer L] ? L : T[number];

/** The tuple (or array) of the members' results. */
export type GroupResults<T extends readonly AnyCanvas[]> = { -readonly [K in keyof T]: ResultOf<T[K]> };

/** `C` itself when it accepts `P`; otherwise a type that explains why not. */
export type CallbackFor<C, P> = Accepts<C, P> extends true ? C : CallbackMismatch<P, InputOf<C>>;

export interface NeedsInput<Expects> {
  readonly "this canvas needs a parent's result; send it as a later step of a chain, or give all arguments": {
    expects: Expects;
  };
}

/** `unknown` (no constraint) when a canvas with input `In` can be sent on its own. */
export type StandaloneCheck<In> = 0 extends 1 & In
  ? unknown
  : false extends TakesNothingEach<In>
    ? NeedsInput<In>
    : unknown;
