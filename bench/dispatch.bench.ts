/**
 * The dispatch hot path on the embedded broker: tasks/s for fire-and-forget,
 * with results awaited, a chain of 10, a group of 1,000 and a chord of 1,000,
 * and send-to-start latency (p50/p99) at a fixed moderate rate. Each scenario
 * runs several times in one process after a warm-up that is excluded from
 * both count and time; medians are reported with min and max.
 *
 *   npm run bench                 # all scenarios
 *   npm run bench -- --runs 3     # fewer runs
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { chain, chord, createApp, group, type App } from "../src/index.ts";

const argRuns = process.argv.indexOf("--runs");
const RUNS = argRuns > 0 ? Number(process.argv[argRuns + 1]) : 5;

interface Scenario {
  readonly name: string;
  readonly unit: "tasks/s" | "ms";
  /** Returns the figure for one run. */
  run(fixture: Fixture): Promise<number | { p50: number; p99: number }>;
}

type Tasks = ReturnType<typeof makeTasks>;

interface Fixture extends Tasks {
  readonly app: App;
  readonly counter: { done: number; target: number; wake?: () => void };
  readonly starts: number[];
}

const makeTasks = (app: App, counter: { done: number; target: number; wake?: () => void }, starts: number[]) => ({
  add: app.task("add", (x: number, y: number) => x + y),
  tsum: app.task("tsum", (xs: number[]) => xs.reduce((a, b) => a + b, 0)),
  count: app.task("count", (_n: number) => {
    if (++counter.done === counter.target) counter.wake?.();
  }),
  quiet: app.task(
    "quiet",
    (_n: number) => {
      if (++counter.done === counter.target) counter.wake?.();
    },
    { ignoreResult: true },
  ),
  stamp: app.task("stamp", (sentAt: number) => {
    starts.push(performance.now() - sentAt);
  }),
});

const fixture = async (): Promise<Fixture> => {
  const app = createApp();
  const counter: Fixture["counter"] = { done: 0, target: 0 };
  const starts: number[] = [];
  const tasks = makeTasks(app, counter, starts);
  await app.worker({ concurrency: 64 }).start();
  return { app, ...tasks, counter, starts };
};

const rate = (count: number, ms: number) => Math.round((count / ms) * 1000);

const FIRE_AND_FORGET = 200_000;
const WITH_RESULTS = 100_000;
const SEND_BATCH = 1_000;

/** Send FIRE_AND_FORGET tasks in batches of SEND_BATCH confirms; done when the worker has run them all. */
const fireAndForget = async (f: Fixture, task: Tasks["count"]) => {
  f.counter.done = 0;
  f.counter.target = FIRE_AND_FORGET;
  const finished = new Promise<void>((resolve) => (f.counter.wake = resolve));
  const t0 = performance.now();
  for (let i = 0; i < FIRE_AND_FORGET; i += SEND_BATCH) {
    const sends = [];
    for (let j = 0; j < SEND_BATCH; j++) sends.push(task.delay(i + j));
    await Promise.all(sends);
  }
  await finished;
  return rate(FIRE_AND_FORGET, performance.now() - t0);
};

const scenarios: Scenario[] = [
  {
    name: "fire-and-forget (results stored, not awaited)",
    unit: "tasks/s",
    run: (f) => fireAndForget(f, f.count),
  },
  {
    name: "fire-and-forget (ignoreResult tasks)",
    unit: "tasks/s",
    run: (f) => fireAndForget(f, f.quiet),
  },
  {
    name: "with results awaited (delay + get)",
    unit: "tasks/s",
    async run(f) {
      const t0 = performance.now();
      for (let i = 0; i < WITH_RESULTS; i += SEND_BATCH) {
        const sends = [];
        for (let j = 0; j < SEND_BATCH; j++) sends.push(f.add.delay(i, j).then((r) => r.get()));
        await Promise.all(sends);
      }
      return rate(WITH_RESULTS, performance.now() - t0);
    },
  },
  {
    name: "chain of 10 (1,000 chains in flight)",
    unit: "tasks/s",
    async run(f) {
      const chains = 1_000;
      const t0 = performance.now();
      const results = [];
      for (let i = 0; i < chains; i++) {
        results.push(
          chain(
            f.add.s(i, 1),
            f.add.s(1),
            f.add.s(1),
            f.add.s(1),
            f.add.s(1),
            f.add.s(1),
            f.add.s(1),
            f.add.s(1),
            f.add.s(1),
            f.add.s(1),
          )
            .apply()
            .then((r) => r.get()),
        );
      }
      await Promise.all(results);
      return rate(chains * 10, performance.now() - t0);
    },
  },
  {
    name: "group of 1,000",
    unit: "tasks/s",
    async run(f) {
      const t0 = performance.now();
      const r = await group(Array.from({ length: 1_000 }, (_, i) => f.add.s(i, i))).apply();
      await r.get();
      return rate(1_000, performance.now() - t0);
    },
  },
  {
    name: "chord of 1,000 (+1 callback)",
    unit: "tasks/s",
    async run(f) {
      const t0 = performance.now();
      const r = await chord(
        Array.from({ length: 1_000 }, (_, i) => f.add.s(i, i)),
        f.tsum.s(),
      ).apply();
      await r.get();
      return rate(1_001, performance.now() - t0);
    },
  },
  {
    name: "send-to-start latency at 10,000 tasks/s",
    unit: "ms",
    async run(f) {
      f.starts.length = 0;
      const total = 5_000;
      const perTick = 10; // 10 tasks per millisecond tick
      const sends: Promise<unknown>[] = [];
      const t0 = performance.now();
      for (let sent = 0; sent < total; ) {
        const due = Math.min(total, Math.floor((performance.now() - t0) * perTick));
        for (; sent < due; sent++) sends.push(f.stamp.delay(performance.now()).then((r) => r.get()));
        await new Promise((resolve) => setImmediate(resolve));
      }
      await Promise.all(sends);
      const sorted = [...f.starts].sort((a, b) => a - b);
      return { p50: sorted[Math.floor(sorted.length * 0.5)], p99: sorted[Math.floor(sorted.length * 0.99)] };
    },
  },
];

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const main = async () => {
  console.log(
    `celerity dispatch bench: node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), ${Math.round(totalmem() / 2 ** 30)} GiB, ${RUNS} runs each`,
  );
  const report: Record<string, unknown>[] = [];
  for (const scenario of scenarios) {
    const f = await fixture();
    await scenario.run(f); // warm-up, excluded
    const figures = [];
    for (let i = 0; i < RUNS; i++) figures.push(await scenario.run(f));
    await f.app.close();
    if (scenario.unit === "ms") {
      const p50s = figures.map((x) => (x as { p50: number }).p50);
      const p99s = figures.map((x) => (x as { p99: number }).p99);
      const row = {
        scenario: scenario.name,
        unit: "ms",
        p50: median(p50s),
        p99: median(p99s),
        p50Range: [Math.min(...p50s), Math.max(...p50s)],
        p99Range: [Math.min(...p99s), Math.max(...p99s)],
      };
      report.push(row);
      console.log(
        `${scenario.name.padEnd(48)} p50 ${row.p50.toFixed(3)} ms (${row.p50Range.map((x) => x.toFixed(3)).join("–")})  p99 ${row.p99.toFixed(3)} ms (${row.p99Range.map((x) => x.toFixed(3)).join("–")})`,
      );
    } else {
      const xs = figures as number[];
      const row = {
        scenario: scenario.name,
        unit: scenario.unit,
        median: median(xs),
        min: Math.min(...xs),
        max: Math.max(...xs),
      };
      report.push(row);
      console.log(
        `${scenario.name.padEnd(48)} ${String(row.median).padStart(9)} ${scenario.unit}  (min ${row.min}, max ${row.max})`,
      );
    }
  }
  mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
  const file = new URL(`./results/dispatch-${new Date().toISOString().replace(/[:.]/g, "-")}.json`, import.meta.url);
  writeFileSync(
    file,
    JSON.stringify({ node: process.version, cores: cpus().length, runs: RUNS, results: report }, null, 2),
  );
  console.log(`\nwrote ${file.pathname}`);
};

await main();
