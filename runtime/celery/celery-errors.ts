// The Celery protocol's errors: a message on a Celery queue that cannot be read, and a
// canvas that cannot be expressed as Celery's messages.
import { Data } from "effect";

/**
 * A message on a Celery queue that celerity cannot read: not kombu's
 * envelope, no `delivery_tag`, an unsupported content type or encoding, a
 * body that is not `[args, kwargs, embed]`. The worker logs it and moves the
 * raw message to the queue's dead-letter list (`<queue>.dead-letter`).
 *
 * @example
 * // a worker's log line: celery message rejected (dead-lettered to 'celery.dead-letter'): the body is not [args, kwargs, embed] (task 'tasks.add', id 1f…)
 */
export class CeleryMessageError extends Data.TaggedError("CeleryMessageError")<{
  readonly reason: string;
  readonly id?: string;
  readonly task?: string;
}> {
  override get message(): string {
    const about =
      this.task !== undefined
        ? ` (task '${this.task}', id ${this.id ?? "?"})`
        : this.id !== undefined
          ? ` (id ${this.id})`
          : "";
    return `${this.reason}${about}`;
  }
}

/**
 * A canvas that Celery's protocol cannot express the way celerity sends it:
 * on the Celery protocol, a chain's steps, a group's members and a chord's
 * header and body must each be a single signature.
 *
 * @example
 * await chain(group(add.s(1, 1)), tsum.s()).apply(); // CeleryCanvasError: … a chain's steps must be signatures
 */
export class CeleryCanvasError extends Data.TaggedError("CeleryCanvasError")<{
  readonly reason: string;
}> {
  override get message(): string {
    return `this canvas cannot be sent on the celery protocol: ${this.reason}`;
  }
}
