import { Data } from "effect";

/** A canvas that cannot be compiled: the reason names the offending step. Nothing has been sent. */
export class CanvasError extends Data.TaggedError("CanvasError")<{
  readonly path: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `invalid canvas at ${this.path}: ${this.reason}`;
  }
}
