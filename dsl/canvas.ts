// Canvases: signatures, chains, groups and chords as data. A canvas is plain data plus
// two phantom types: `In`, the arguments it still expects from a parent (a tuple: `[]`
// takes nothing, `[x: P]` takes the parent's result), and `R`, the value it produces.
// Nothing here does I/O: `apply()` hands the canvas to the Dispatcher the runtime bound
// to its signatures.
import type { CallOptions } from "./options.ts";
import { mergeOptions } from "./options.ts";
import type { CallbackFor, StandaloneCheck } from "./inference.ts";
import type { AsyncResult, TaskFailure } from "./result.ts";
import { CanvasError } from "./errors.ts";

/** What `apply()` hands a canvas to: the runtime's dispatcher, bound to the canvas's signatures. */
export interface Dispatcher {
  dispatch<R>(canvas: Canvas<any, R>, options?: CallOptions): Promise<AsyncResult<R>>;
}

/**
 * Any canvas: a signature, chain, group or chord, typed by what it takes from a parent (`In`) and what it produces (`R`).
 *
 * @example
 * const steps: Canvas<[], number> = chain(add.s(1, 2), add.s(3));
 */
export type Canvas<In extends readonly unknown[], R> = Signature<In, R> | Chain<In, R> | Group<In, R> | Chord<In, R>;
/**
 * A canvas of any input and result, for code that handles canvases generically.
 *
 * @example
 * const all: AnyCanvas[] = [add.s(1, 2), group(add.s(1, 1), add.s(2, 2))];
 */
export type AnyCanvas = Canvas<any, any>;

/** Callbacks attached with `link` (on success) and `onError` (on failure). */
export interface Callbacks {
  readonly links: readonly AnyCanvas[];
  readonly errbacks: readonly AnyCanvas[];
}

const noCallbacks: Callbacks = { links: [], errbacks: [] };

abstract class CanvasBase<In extends readonly unknown[], R> {
  /** Phantom: the arguments this canvas still expects from a parent step. */
  declare readonly _in: In;
  /** Phantom: the value this canvas produces. */
  declare readonly _out: R;
  abstract readonly kind: "signature" | "chain" | "group" | "chord";
  abstract readonly callbacks: Callbacks;

  protected abstract withCallbacks(callbacks: Callbacks): this;

  /** Run `callback` with this canvas's result prepended to its arguments once it succeeds. The callback is not part of the result. */
  link<C extends AnyCanvas>(callback: C & CallbackFor<C, R>): this {
    return this.withCallbacks({ ...this.callbacks, links: [...this.callbacks.links, callback as AnyCanvas] });
  }

  /** Run `errback` (with a TaskFailure prepended) once if this canvas fails. */
  onError<C extends AnyCanvas>(errback: C & CallbackFor<C, TaskFailure>): this {
    return this.withCallbacks({ ...this.callbacks, errbacks: [...this.callbacks.errbacks, errback as AnyCanvas] });
  }

  /** Send the canvas; resolves once every message it needs at the start has been accepted by the broker. */
  apply(this: CanvasBase<In, R> & StandaloneCheck<In>, options?: CallOptions): Promise<AsyncResult<R>> {
    const dispatcher = findDispatcher(this as unknown as AnyCanvas);
    if (dispatcher === undefined) {
      return Promise.reject(
        new CanvasError({
          path: this.kind,
          reason:
            "it holds no signature created by an app (task.s / task.si), so there is no app to send it with (an empty group sends nothing)",
        }),
      );
    }
    return dispatcher.dispatch(this as unknown as Canvas<any, R>, options);
  }
}

/**
 * One task call: a task name, the arguments given so far, and options.
 * A mutable signature (`task.s`) receives its parent's result as its first
 * remaining argument; an immutable one (`task.si`) ignores it.
 *
 * @example
 * const partial = add.s(4);      // Signature<[number], number>: a chain supplies the first argument
 * const fixed = add.si(2, 2);    // ignores its parent's result
 */
export class Signature<In extends readonly unknown[], R> extends CanvasBase<In, R> {
  readonly kind = "signature" as const;
  constructor(
    readonly task: string,
    readonly args: readonly unknown[],
    readonly options: CallOptions,
    readonly immutable: boolean,
    readonly dispatcher: Dispatcher | undefined,
    readonly callbacks: Callbacks = noCallbacks,
    /** For the built-in map / starmap tasks: the task applied to each item. */
    readonly target?: string,
  ) {
    super();
  }

  protected withCallbacks(callbacks: Callbacks): this {
    return new Signature(
      this.task,
      this.args,
      this.options,
      this.immutable,
      this.dispatcher,
      callbacks,
      this.target,
    ) as this;
  }

  /** A copy with `options` merged over this signature's options. */
  set(options: CallOptions): Signature<In, R> {
    return new Signature(
      this.task,
      this.args,
      mergeOptions(this.options, options),
      this.immutable,
      this.dispatcher,
      this.callbacks,
      this.target,
    );
  }
}

/**
 * Steps run one after another; each step's result is prepended to the next mutable step's arguments.
 *
 * @example
 * const steps = chain(add.s(2, 2), add.s(4), add.s(8)); // Chain<[], number>
 * await (await steps.apply()).get(); // 16
 */
export class Chain<In extends readonly unknown[], R> extends CanvasBase<In, R> {
  readonly kind = "chain" as const;
  constructor(
    readonly steps: readonly AnyCanvas[],
    readonly callbacks: Callbacks = noCallbacks,
  ) {
    super();
  }
  protected withCallbacks(callbacks: Callbacks): this {
    return new Chain(this.steps, callbacks) as this;
  }
}

/**
 * Members run in parallel; the result is the list of their results, in order.
 *
 * @example
 * const both = group(add.s(1, 1), shout.s("a")); // Group<[], [number, string]>
 * await (await both.apply()).get(); // [2, "A"]
 */
export class Group<In extends readonly unknown[], R> extends CanvasBase<In, R> {
  readonly kind = "group" as const;
  constructor(
    readonly members: readonly AnyCanvas[],
    readonly callbacks: Callbacks = noCallbacks,
  ) {
    super();
  }
  protected withCallbacks(callbacks: Callbacks): this {
    return new Group(this.members, callbacks) as this;
  }
}

/**
 * A group (the header) whose list of results is passed to a callback (the body) once every member succeeded.
 *
 * @example
 * const total = chord(group(add.s(1, 1), add.s(2, 2)), tsum.s()); // Chord<[], number>
 * await (await total.apply()).get(); // 6
 */
export class Chord<In extends readonly unknown[], R> extends CanvasBase<In, R> {
  readonly kind = "chord" as const;
  constructor(
    readonly header: Group<any, any>,
    readonly body: AnyCanvas,
    readonly callbacks: Callbacks = noCallbacks,
  ) {
    super();
  }
  protected withCallbacks(callbacks: Callbacks): this {
    return new Chord(this.header, this.body, callbacks) as this;
  }
}

/** The first dispatcher bound to any signature in the canvas (depth first). */
export const findDispatcher = (canvas: AnyCanvas, depth = 0): Dispatcher | undefined => {
  if (depth > 1000) return undefined;
  switch (canvas.kind) {
    case "signature":
      return canvas.dispatcher;
    case "chain":
      for (const step of canvas.steps) {
        const found = findDispatcher(step, depth + 1);
        if (found) return found;
      }
      return undefined;
    case "group":
      for (const member of canvas.members) {
        const found = findDispatcher(member, depth + 1);
        if (found) return found;
      }
      return undefined;
    case "chord":
      return findDispatcher(canvas.header, depth + 1) ?? findDispatcher(canvas.body, depth + 1);
  }
};
