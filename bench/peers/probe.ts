/**
 * The worker-side count of the peers bench for Node workers: every task
 * handler calls `started()` first and `ended()` last; `stamp` tasks also
 * record their send-to-start latency. `waitFor` resolves once a count is
 * reached. One probe per worker process (or per process, embedded).
 */
import { wallClock } from "../node/task-defs.ts";
import type { Window } from "./system.ts";

export { wallClock };

export class Probe {
  private count = 0;
  private first = 0;
  private last = 0;
  private samples: number[] = [];
  private waiters: { target: number; wake: (w: Window) => void }[] = [];

  started(): void {
    if (this.first === 0) this.first = wallClock();
  }

  /** A stamp task started: record how long after `sentAt` (wall-clock ms). */
  stamped(sentAt: number): void {
    const now = wallClock();
    if (this.first === 0) this.first = now;
    this.samples.push(now - sentAt);
  }

  ended(): void {
    this.count++;
    this.last = wallClock();
    if (this.waiters.length === 0) return;
    const due = this.waiters.filter((w) => w.target <= this.count);
    if (due.length === 0) return;
    this.waiters = this.waiters.filter((w) => w.target > this.count);
    for (const w of due) w.wake(this.window());
  }

  window(): Window {
    return { count: this.count, first: this.first, last: this.last };
  }

  reset(): void {
    this.count = 0;
    this.first = 0;
    this.last = 0;
    this.samples = [];
  }

  latencies(): number[] {
    return this.samples;
  }

  waitFor(target: number, timeoutMs: number): Promise<Window> {
    if (this.count >= target) return Promise.resolve(this.window());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`the worker ran ${this.count} of ${target} tasks in ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = {
        target,
        wake: (w: Window) => {
          clearTimeout(timer);
          resolve(w);
        },
      };
      this.waiters.push(waiter);
    });
  }
}
