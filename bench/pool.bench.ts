/**
 * Pools: what running tasks on threads or child processes buys for
 * CPU-bound work, and what it costs per task.
 *
 * - CPU-bound: tasks of about 1 ms of hashing (calibrated at start), all
 *   sent at once to a worker on the async pool (concurrency 2: it cannot use
 *   a second core) and to one on a threads pool of 2; tasks/s and the ratio
 *   threads/async.
 * - Overhead: no-op tasks on each pool (async, threads of 2, process of 2),
 *   tasks/s and the ratio to async.
 *
 * The pools are measured round by round in turn (so they share the
 * machine's load), each on a fresh worker started outside the timing; the
 * figures are medians over the rounds. The embedded broker, results kept.
 *
 *   npm run bench:pool                 # 5 rounds
 *   npm run bench:pool -- --runs 3
 */
import { cpus, loadavg } from "node:os";
import type { AsyncResult, PoolKind } from "../src/index.ts";
import { app, hash, hashRounds, noop } from "./pool/pool-bench-app.ts";

const argRuns = process.argv.indexOf("--runs");
const RUNS = argRuns > 0 ? Number(process.argv[argRuns + 1]) : 5;
const CPU_TASKS = 400;
const NOOP_TASKS = 4_000;
const SEND_BATCH = 500;

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Rounds of hashing that take about 1 ms here. */
const calibrate = (): number => {
  hashRounds(2_000);
  const t0 = performance.now();
  hashRounds(2_000);
  return Math.max(1, Math.round(2_000 / (performance.now() - t0)));
};

/** Tasks per second for `count` tasks sent at once (in batches) to a fresh worker on `pool`. */
const measure = async (pool: PoolKind, send: () => Promise<AsyncResult<unknown>>, count: number): Promise<number> => {
  const worker = app.worker({ pool, concurrency: 2 });
  await worker.start();
  await (await send()).get({ timeout: 60_000 }); // every thread or child warm
  const t0 = performance.now();
  const results: Promise<unknown>[] = [];
  for (let i = 0; i < count; i += SEND_BATCH) {
    const sent = await Promise.all(Array.from({ length: Math.min(SEND_BATCH, count - i) }, send));
    for (const r of sent) results.push(r.get({ timeout: 120_000 }));
  }
  await Promise.all(results);
  const rate = count / ((performance.now() - t0) / 1000);
  await worker.stop();
  return rate;
};

const rounds = calibrate();
const cpu: Record<"async" | "threads", number[]> = { async: [], threads: [] };
const overhead: Record<PoolKind, number[]> = { async: [], threads: [], process: [] };
for (let run = 0; run < RUNS; run++) {
  for (const pool of ["async", "threads"] as const)
    cpu[pool].push(await measure(pool, () => hash.delay(rounds), CPU_TASKS));
  for (const pool of ["async", "threads", "process"] as const)
    overhead[pool].push(await measure(pool, () => noop.delay(), NOOP_TASKS));
  process.stderr.write(`round ${run + 1}/${RUNS} done\n`);
}
await app.close();

const ratios = (rates: number[], base: number[]) => median(rates.map((rate, i) => rate / base[i]));
console.log(
  `pool bench: ${RUNS} rounds, ${cpus().length} cores, load ${loadavg()[0].toFixed(2)}; hashing ${rounds} rounds per task (~1 ms)`,
);
console.log(`CPU-bound (${CPU_TASKS} tasks):`);
console.log(`  async   ${median(cpu.async).toFixed(0)} tasks/s`);
console.log(
  `  threads ${median(cpu.threads).toFixed(0)} tasks/s  (x${ratios(cpu.threads, cpu.async).toFixed(2)} async, median of per-round ratios)`,
);
console.log(`no-op (${NOOP_TASKS} tasks):`);
for (const pool of ["async", "threads", "process"] as const) {
  console.log(
    `  ${pool.padEnd(7)} ${median(overhead[pool]).toFixed(0)} tasks/s  (x${ratios(overhead[pool], overhead.async).toFixed(2)} async)`,
  );
}
