// The app the pool bench measures, loaded by the bench and by every thread or child of
// its pools: a CPU-bound hashing task and a no-op, to weigh work against dispatch.
import { createHash } from "node:crypto";
import { createApp } from "../../src/index.ts";

/** The bench's app, loaded by the bench and by each thread or child of the pools it measures. */
export const app = createApp({ module: import.meta.url });

const BLOCK = Buffer.alloc(16 * 1024, 7);

/** Hash a 16 KB block `rounds` times over (about 1 ms of CPU for the rounds the bench calibrates). */
export const hashRounds = (rounds: number): string => {
  let digest = BLOCK;
  for (let i = 0; i < rounds; i++) digest = createHash("sha256").update(BLOCK).update(digest).digest();
  return digest.toString("hex", 0, 4);
};

export const hash = app.task("bench.hash", hashRounds);
export const noop = app.task("bench.noop", () => 0);
