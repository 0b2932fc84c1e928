/**
 * The errors the HTTP API answers with: each carries the status it maps to,
 * a short machine-readable code and a message a person can act on. The body
 * of every refused request is `{ "error": code, "message": message }`.
 */
import { Data } from "effect";

/**
 * A request the API refuses: bad input (400), an id or name it does not
 * know (404), a missing or wrong credential (401), a change sent by a page
 * of another origin (403), something the broker cannot do (501).
 *
 * @example
 * throw new HttpApiError({ status: 404, code: "unknown_task", reason: "no task with id 'x' is known" });
 */
export class HttpApiError extends Data.TaggedError("HttpApiError")<{
  readonly status: 400 | 401 | 403 | 404 | 405 | 501;
  readonly code: string;
  readonly reason: string;
}> {
  override get message(): string {
    return this.reason;
  }
}

/** A 400 naming what was wrong with the input. */
export const badRequest = (reason: string): HttpApiError =>
  new HttpApiError({ status: 400, code: "bad_request", reason });

/** A 404 for an id or name the API does not know. */
export const notFound = (code: string, reason: string): HttpApiError => new HttpApiError({ status: 404, code, reason });
