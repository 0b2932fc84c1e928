// Group commit: appends that arrive while a write is in flight go together into the next
// write, so one write and one fsync serve them all.
import { PendingBatch } from "./pending-batch.ts";

/** Work that runs alone, between batches. */
class Job {
  constructor(
    readonly run: () => Promise<unknown>,
    readonly resolve: (value: unknown) => void,
    readonly reject: (error: unknown) => void,
  ) {}
}

/**
 * Runs `flush` on batches of items, one flush at a time: items added while a
 * flush is in flight wait and then go together into the next one, so one write
 * and one fsync serve everything that arrived meanwhile (group commit). Every
 * item of a batch gets the same promise, settled by that batch's flush.
 * `exclusive` runs a job after everything added before it and before anything
 * added after it.
 *
 * @example
 * const commit = new GroupCommit<Uint8Array>(async (records) => { await write(records); await fsync(); });
 * await Promise.all([commit.add(a), commit.add(b)]); // one write, one fsync
 */
export class GroupCommit<T> {
  // Holds at most the batch in flight, compaction-like jobs and the batch being gathered.
  private readonly queue: (PendingBatch<T> | Job)[] = [];
  private open: PendingBatch<T> | undefined;
  private running = false;

  constructor(private readonly flush: (items: T[]) => Promise<void>) {}

  /** Add `item` to the batch being gathered; resolves once the flush holding it succeeds. */
  add(item: T): Promise<void> {
    const batch = this.gathering();
    batch.items.push(item);
    return batch.promise;
  }

  /** Add all of `items` to the batch being gathered, in order. */
  addAll(items: readonly T[]): Promise<void> {
    const batch = this.gathering();
    for (const item of items) batch.items.push(item);
    return batch.promise;
  }

  /**
   * Add to the batch being gathered the items `produce` returns when that
   * batch is cut (just before its flush): a writer whose changes go on until
   * then folds them into what it produces. The items follow those added
   * before the cut; a throw from `produce` fails the batch.
   */
  addDeferred(produce: () => readonly T[]): Promise<void> {
    const batch = this.gathering();
    (batch.deferred ??= []).push(produce);
    return batch.promise;
  }

  /** Run `job` once everything added so far is flushed, holding back what is added after. */
  exclusive<R>(job: () => Promise<R>): Promise<R> {
    this.open = undefined;
    return new Promise<R>((resolve, reject) => {
      this.queue.push(new Job(job, resolve as (value: unknown) => void, reject));
      this.start();
    });
  }

  private gathering(): PendingBatch<T> {
    if (this.open === undefined) {
      this.open = new PendingBatch<T>();
      this.queue.push(this.open);
      this.start();
    }
    return this.open;
  }

  private start(): void {
    if (this.running) return;
    this.running = true;
    // A microtask, not at once: appends issued in the same synchronous run share the first flush.
    queueMicrotask(() => void this.drain());
  }

  private async drain(): Promise<void> {
    for (let next = this.queue.shift(); next !== undefined; next = this.queue.shift()) {
      if (next instanceof Job) {
        try {
          next.resolve(await next.run());
        } catch (error) {
          next.reject(error);
        }
        continue;
      }
      if (next === this.open) this.open = undefined;
      try {
        if (next.deferred !== undefined)
          for (const produce of next.deferred) for (const item of produce()) next.items.push(item);
        await this.flush(next.items);
        next.resolve();
      } catch (error) {
        next.reject(error);
      }
    }
    this.running = false;
  }
}
