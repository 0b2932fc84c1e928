// The DSL's one error: a canvas that cannot be compiled, naming the offending step.
import { Data } from "effect";

/**
 * A canvas that cannot be compiled: the reason names the offending step. Nothing has been sent.
 *
 * @example
 * const elsewhere = createApp().task("elsewhere", (x: number) => x); // not registered on add's app
 * try {
 *   await chain(add.s(1, 2), elsewhere.s()).apply(); // refused before anything is sent
 * } catch (error) {
 *   if (error instanceof CanvasError) console.error(error.message);
 * }
 */
export class CanvasError extends Data.TaggedError("CanvasError")<{
  readonly path: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `invalid canvas at ${this.path}: ${this.reason}`;
  }
}
