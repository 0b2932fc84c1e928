/**
 * The errors of the testing toolkit: each says what a test did and what it
 * can do about it.
 */

/**
 * `drain()` (or an `advance`, or an eager send) could not settle within its real-time limit: names what still runs.
 *
 * @example
 * await t.drain(); // rejects with DrainTimeoutError naming a task that never finishes
 */
export class DrainTimeoutError extends Error {
  readonly _tag = "DrainTimeoutError";
  constructor(
    readonly timeoutMs: number,
    /** What kept it from settling: tasks running, messages ready, publishes unconfirmed. */
    readonly busy: readonly string[],
  ) {
    super(
      `the test app did not settle within ${timeoutMs} ms of real time; still busy: ${busy.join("; ")}. ` +
        `A task waiting on real time or on something outside the app never finishes here (give drain a longer timeout, or stub it), ` +
        `and tasks that keep sending tasks with no delay never settle.`,
    );
    this.name = "DrainTimeoutError";
  }
}

/**
 * An eager send whose task cannot finish: nothing runs and nothing is due, yet its result is not ready.
 *
 * @example
 * const t = await createTestApp({ eager: true });
 * await waitsForever.delay(); // rejects with EagerRunError
 */
export class EagerRunError extends Error {
  readonly _tag = "EagerRunError";
  constructor(
    readonly id: string,
    readonly state: string,
    readonly queues: readonly string[],
  ) {
    super(
      `eager run of task ${id} cannot finish: it is ${state}, nothing is running and nothing is due. ` +
        `Is it sent to a queue no worker consumes? The test app's workers consume: ${queues.join(", ") || "(none)"}.`,
    );
    this.name = "EagerRunError";
  }
}

/**
 * `stub()` named a task the test app has not registered, or was given no function.
 *
 * @example
 * t.stub("not-registered", () => 1); // throws StubError
 */
export class StubError extends Error {
  readonly _tag = "StubError";
  constructor(
    readonly task: string,
    readonly reason: string,
  ) {
    super(`cannot stub task '${task}': ${reason}`);
    this.name = "StubError";
  }
}

/**
 * A toolkit call that would wait for itself: `drain()` or `advance()` from inside a task the test app runs.
 *
 * @example
 * t.app.task("inner", async () => { await t.drain(); }); // the drain inside a task rejects with ReentrantDrainError
 */
export class ReentrantDrainError extends Error {
  readonly _tag = "ReentrantDrainError";
  constructor(readonly operation: string) {
    super(
      `${operation} was called from inside a task the test app is running, and would wait for that task itself; call it from the test instead`,
    );
    this.name = "ReentrantDrainError";
  }
}
