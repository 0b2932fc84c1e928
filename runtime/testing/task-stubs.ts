/**
 * The test app's hold on its tasks' handlers: each is registered behind a
 * stand-in that calls a stub when the test has put one in its place (the
 * message still goes through the broker and the codec, so arguments that
 * cannot be sent still fail), that knows when code runs inside a task, and
 * that names the tasks still running when a drain cannot settle.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { Effect } from "effect";
import type { TaskContext } from "../task.ts";
import { StubError } from "./testing-errors.ts";

/**
 * A stub in place of a task's handler: the arguments of every call, and the way back to the real handler.
 *
 * @example
 * const stub = t.stub(sendEmail, (to: string) => `sent to ${to}`);
 * await (await sendEmail.delay("ada@example.com")).get();
 * stub.calls; // [["ada@example.com"]]
 * stub.restore();
 */
export interface Stub<A extends readonly unknown[] = readonly unknown[]> {
  /** The arguments of each call, in order, as the handler received them (decoded from the message). */
  readonly calls: readonly A[];
  /** Put the task's own handler back. */
  restore(): void;
}

type AnyHandler = (this: TaskContext, ...args: any[]) => unknown;

interface StubEntry {
  readonly handler: AnyHandler;
  readonly calls: unknown[][];
}

interface RunningHandler {
  readonly task: string;
  readonly since: number;
}

const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  value !== null &&
  (typeof value === "object" || typeof value === "function") &&
  typeof (value as PromiseLike<unknown>).then === "function";

export class TaskStubs {
  private readonly stubs = new Map<string, StubEntry>();
  private readonly registered = new Set<string>();
  /** Handlers still running asynchronously, by task id (their promise or Effect has not settled). */
  readonly running = new Map<string, RunningHandler>();
  private readonly inside = new AsyncLocalStorage<string>();

  /** Whether the caller runs inside a task handler of this app (synchronously or in its async continuation). */
  get insideTask(): boolean {
    return this.inside.getStore() !== undefined;
  }

  /** The stand-in registered in place of `handler`: same arity, so argument checks see the handler's own. */
  standIn<F extends AnyHandler>(task: string, handler: F): F {
    this.registered.add(task);
    const stubs = this.stubs;
    const running = this.running;
    const inside = this.inside;
    const standIn = function (this: TaskContext, ...args: unknown[]): unknown {
      const stub = stubs.get(task);
      stub?.calls.push(args);
      return inside.run(this.id, () => {
        let value = (stub?.handler ?? handler).apply(this, args);
        // Run here rather than in the worker, so that the Effect too runs inside the task's async context.
        if (Effect.isEffect(value))
          value = Effect.runPromise(value as Effect.Effect<unknown, unknown, never>, { signal: this.signal });
        if (!isThenable(value)) return value;
        running.set(this.id, { task, since: Date.now() });
        this.signal.addEventListener("abort", () => running.delete(this.id), { once: true });
        return Promise.resolve(value).finally(() => running.delete(this.id));
      });
    };
    Object.defineProperty(standIn, "length", { value: handler.length });
    Object.defineProperty(standIn, "name", { value: handler.name });
    return standIn as unknown as F;
  }

  /** Put `handler` in the place of task `task`'s handler until restored (a later stub of the same task replaces it). */
  stub<A extends readonly unknown[]>(task: string, handler: AnyHandler): Stub<A> {
    if (!this.registered.has(task)) {
      throw new StubError(
        task,
        `it is not registered on the test app; registered: ${[...this.registered].join(", ") || "(none)"}`,
      );
    }
    if (typeof handler !== "function") throw new StubError(task, `the stub must be a function, got ${typeof handler}`);
    const entry: StubEntry = { handler, calls: [] };
    this.stubs.set(task, entry);
    return {
      calls: entry.calls as unknown as readonly A[],
      restore: () => {
        if (this.stubs.get(task) === entry) this.stubs.delete(task);
      },
    };
  }

  /** Remove every stub. */
  restoreAll(): void {
    this.stubs.clear();
  }
}
