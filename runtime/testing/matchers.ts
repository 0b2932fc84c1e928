/**
 * Matchers for `expect.extend` in vitest and jest (both take the same shape):
 * `expect(t).toHaveSent(add, [2, 2])`, negated with `.not`. node:test users
 * call `t.assertSent` / `t.assertNotSent` instead.
 */
import { inspect } from "node:util";
import { describeSent, findSent, type SentTask, type TaskRef } from "./sent-tasks.ts";

interface MatcherResult {
  readonly pass: boolean;
  readonly message: () => string;
}

/** What the matchers accept: a test app (anything with `sent`) or the list of sent messages itself. */
type SentSource = { readonly sent: readonly SentTask[] } | readonly SentTask[];

const sentOf = (received: unknown): readonly SentTask[] => {
  if (Array.isArray(received)) return received as readonly SentTask[];
  const sent = (received as { sent?: unknown } | null)?.sent;
  if (Array.isArray(sent)) return sent as readonly SentTask[];
  throw new TypeError(
    `toHaveSent expects a test app (from createTestApp) or its 'sent' list, got ${inspect(received, { depth: 1 })}`,
  );
};

const named = (task: TaskRef): string => (typeof task === "string" ? task : task.name);

/**
 * The matchers to register once in a setup file.
 *
 * @example
 * import { expect } from "vitest"; // or jest's global expect
 * import { celerityMatchers } from "celerity/testing";
 * expect.extend(celerityMatchers);
 * expect(t).toHaveSent(add, [2, 2]);
 * expect(t).not.toHaveSent("send-email");
 */
export const celerityMatchers = {
  toHaveSent(received: SentSource, task: TaskRef, args?: readonly unknown[]): MatcherResult {
    const sent = sentOf(received);
    const pass = findSent(sent, task, args) !== undefined;
    const what = `'${named(task)}'${args === undefined ? "" : ` with arguments ${inspect(args, { depth: 4, breakLength: Infinity })}`}`;
    return {
      pass,
      message: () => `expected task ${what} ${pass ? "not " : ""}to have been sent; ${describeSent(sent)}`,
    };
  },
};

/**
 * The matchers' types, to merge into your runner's assertion interface.
 *
 * @example
 * // vitest
 * declare module "vitest" { interface Assertion<T> extends CelerityMatchers<T> {} }
 * // jest (@jest/globals)
 * declare module "expect" { interface Matchers<R> extends CelerityMatchers<R> {} }
 */
export interface CelerityMatchers<R = unknown> {
  /** The test app (or its `sent` list) holds a message of `task`, with `args` if given (compared deeply, as decoded). */
  toHaveSent(task: TaskRef, args?: readonly unknown[]): R;
}
