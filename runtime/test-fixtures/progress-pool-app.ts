// The app of the pooled progress test: loaded by the test (to send and run
// the worker) and again by each thread of the pool.
//
// - `steps(path)`: reports `{ state: "COPYING", done: 1, total: 2 }`, waits
//   for the file `path` (checked every 10 ms), returns "copied".
import { existsSync } from "node:fs";
import { createApp } from "../app.ts";

export const app = createApp({ module: import.meta.url, log: () => {} });

export const steps = app.task("steps", async function (path: string) {
  await this.progress({ state: "COPYING", done: 1, total: 2 });
  while (!existsSync(path)) await new Promise((resolve) => setTimeout(resolve, 10));
  return "copied";
});
