/**
 * The tasks of the node bench, registered on an app. The producer registers
 * them only for their names and options; their handlers run in the worker
 * process, where `count` and `quiet` count what they ran and `reached`
 * answers once the count gets to a target, so the producer learns that the
 * worker has run everything it sent.
 */
import type { App } from "../../src/index.ts";

/**
 * Wall-clock milliseconds with sub-millisecond resolution, comparable across
 * processes of one machine: the high-resolution clock, set on the system
 * clock at the moment Date.now() ticks over (median of 5 ticks, measured
 * once when the module loads; under 10 ms of spinning).
 */
const highRes = () => performance.timeOrigin + performance.now();
const offset = (() => {
  const offsets: number[] = [];
  for (let i = 0; i < 5; i++) {
    const from = Date.now();
    let now = from;
    while (now === from) now = Date.now();
    offsets.push(now - highRes());
  }
  return offsets.sort((a, b) => a - b)[2];
})();
export const wallClock = (): number => highRes() + offset;

export const defineTasks = (app: App) => {
  let ran = 0;
  let waiters: { target: number; wake: (ran: number) => void }[] = [];
  const ranOne = () => {
    ran++;
    if (waiters.length === 0) return;
    const due = waiters.filter((w) => w.target <= ran);
    if (due.length === 0) return;
    waiters = waiters.filter((w) => w.target > ran);
    for (const w of due) w.wake(ran);
  };
  return {
    /** Counted; its (empty) result is stored on the node, as for any task by default. */
    count: app.task("bench.count", (_n: number) => {
      ranOne();
    }),
    /** Counted; no result kept (no PENDING/STARTED/SUCCESS writes). */
    quiet: app.task(
      "bench.quiet",
      (_n: number) => {
        ranOne();
      },
      { ignoreResult: true },
    ),
    add: app.task("bench.add", (x: number, y: number) => x + y),
    /** The wall-clock time (sub-millisecond) at which the task started. */
    stamp: app.task("bench.stamp", (_sentAt: number) => wallClock()),
    /** Resolves with the count once at least `target` counted tasks have run in this process. */
    reached: app.task("bench.reached", (target: number) =>
      ran >= target ? ran : new Promise<number>((wake) => waiters.push({ target, wake })),
    ),
  };
};

export type BenchTasks = ReturnType<typeof defineTasks>;
