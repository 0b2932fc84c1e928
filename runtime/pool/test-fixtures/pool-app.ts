// The app the pool tests run, with one task per behaviour a pool must handle: where it
// ran, failing, retrying, blocking, exiting, holding memory, soft limits, sending tasks.
import { existsSync } from "node:fs";
import { threadId } from "node:worker_threads";
import { createApp } from "../../app.ts";

/**
 * The app the pool tests run: loaded by the test in its main thread (to send
 * and to run the worker) and again by each thread or child of the pool.
 */
export const app = createApp({ module: import.meta.url, log: () => {} });

/** Where the task ran: "<pid>/<threadId>", one per thread or child. */
export const whereami = app.task("whereami", () => `${process.pid}/${threadId}`);
export const add = app.task("add", (x: number, y: number) => x + y);
export const spin = app.task("spin", () => {
  for (;;);
});
/** Compute for `ms` on the thread that runs it, then say where it ran. */
export const burn = app.task("burn", (ms: number) => {
  const end = Date.now() + ms;
  while (Date.now() < end);
  return `${process.pid}/${threadId}`;
});
export const exit = app.task("exit", (code: number) => process.exit(code));
/** Keep `mb` more megabytes of JS heap alive in the thread or child that runs it. */
const kept: number[][] = [];
export const hold = app.task("hold", (mb: number) => {
  kept.push(new Array<number>((mb * 2 ** 20) / 8).fill(1.5));
  return `${process.pid}/${threadId}`;
});
export const fail = app.task("fail", (code: string) => {
  throw Object.assign(new RangeError(`failed with ${code}`), { code });
});
export const retrying = app.task(
  "retrying",
  function (this: { retries: number; retry(options?: { countdown?: number; max?: number }): never }) {
    if (this.retries < 2) this.retry({ countdown: 0, max: 5 });
    return this.retries;
  },
);
export const wait = app.task(
  "wait",
  (ms: number) => new Promise<string>((resolve) => setTimeout(() => resolve(`${process.pid}/${threadId}`), ms)),
);
/** Wait until the file `path` exists (checked every 10 ms), then say where it ran: a test decides when it ends. */
export const gate = app.task(
  "gate",
  (path: string) =>
    new Promise<string>((resolve) => {
      const check = () => (existsSync(path) ? resolve(`${process.pid}/${threadId}`) : setTimeout(check, 10));
      check();
    }),
);
export const softly = app.task("softly", function (this: { signal: AbortSignal }, ms: number) {
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => resolve("finished"), ms);
    this.signal.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(this.signal.reason);
    });
  });
});
export const send = app.task("send", async () => {
  await add.delay(1, 1);
  return "sent";
});
/** Bytes the pool weighs this thread or child at (the V8 heap of a thread, the resident set of a child). */
export const weight = app.task("weight", () =>
  threadId === 0 ? process.memoryUsage.rss() : process.memoryUsage().heapUsed,
);
/** Throws an error carrying a field structured clone refuses (a class instance holding a function). */
export const unclonable = app.task("unclonable", () => {
  throw Object.assign(new Error("carries a socket"), { handle: { close: () => {} } });
});
