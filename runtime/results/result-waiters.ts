// Callers waiting for tasks to finish, by task id, woken by the write (or push) that
// finishes the task or by their own timeout; every result store keeps one.
import type { ResultRecord } from "./result-store.ts";

/**
 * Callers waiting for tasks to finish, by task id: each waits until the
 * record is handed to `wake`, or until its own timeout. Result stores keep
 * one of these and wake it from the write (or push) that finishes a task,
 * so nobody polls.
 */
export class ResultWaiters {
  private readonly waiting = new Map<string, Set<(record: ResultRecord) => void>>();

  /** Wait for `id`; `first` is true when nobody was waiting for it yet (a remote store subscribes then). */
  wait(
    id: string,
    timeoutMs: number | undefined,
    onTimeout: () => Error,
  ): { readonly promise: Promise<ResultRecord>; readonly first: boolean } {
    let set = this.waiting.get(id);
    const first = set === undefined;
    if (set === undefined) this.waiting.set(id, (set = new Set()));
    const waiters = set;
    const promise = new Promise<ResultRecord>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const wake = (record: ResultRecord) => {
        if (timer !== undefined) clearTimeout(timer);
        resolve(record);
      };
      waiters.add(wake);
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          waiters.delete(wake);
          if (waiters.size === 0 && this.waiting.get(id) === waiters) this.waiting.delete(id);
          reject(onTimeout());
        }, timeoutMs);
      }
    });
    return { promise, first };
  }

  /** Hand `record` to everyone waiting for `id`. */
  wake(id: string, record: ResultRecord): void {
    const waiters = this.waiting.get(id);
    if (waiters === undefined) return;
    this.waiting.delete(id);
    for (const wake of waiters) wake(record);
  }

  /** Ids someone is waiting for. */
  ids(): IterableIterator<string> {
    return this.waiting.keys();
  }

  has(id: string): boolean {
    return this.waiting.has(id);
  }

  clear(): void {
    this.waiting.clear();
  }
}
