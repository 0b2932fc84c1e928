/**
 * Items gathered to be written together, and the one promise every writer
 * of the batch waits on: settled once, for all of them, when the batch is
 * written (or fails). The log's group commit and the durable result store
 * both gather their writes in these.
 */
export class PendingBatch<T> {
  readonly items: T[] = [];
  /** What adds its items only when the batch is cut (see GroupCommit.addDeferred). */
  deferred: (() => readonly T[])[] | undefined;
  readonly promise: Promise<void>;
  resolve!: () => void;
  reject!: (error: unknown) => void;

  constructor() {
    this.promise = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    // A write nobody waits for (a state sent without a reply) must not leave an unhandled rejection; waiters still see it.
    this.promise.catch(() => undefined);
  }
}
