/**
 * What events cost on the dispatch path (embedded broker, one process):
 * fire-and-forget tasks/s with events off, with the worker's events on and
 * nobody subscribed, and with the app's and worker's events on and one
 * subscriber receiving every event. The setups take turns run by run, so
 * they share the machine's state; medians are reported with the ratio of
 * each to events off, both per wall-clock second and per CPU second of the
 * process (user + system): on a machine shared with other work, the CPU
 * figure is the steadier one.
 *
 *   npm run bench:events                 # 5 runs
 *   npm run bench:events -- --runs 3
 */
import { cpus } from "node:os";
import { createApp, type App } from "../src/index.ts";

const argRuns = process.argv.indexOf("--runs");
const RUNS = argRuns > 0 ? Number(process.argv[argRuns + 1]) : 5;
const TASKS = 100_000;
const SEND_BATCH = 1_000;

interface Setup {
  readonly name: string;
  readonly appEvents: boolean;
  readonly workerEvents: boolean;
  readonly subscribe: boolean;
}

const SETUPS: readonly Setup[] = [
  { name: "events off", appEvents: false, workerEvents: false, subscribe: false },
  { name: "worker events on, no subscriber", appEvents: false, workerEvents: true, subscribe: false },
  { name: "app + worker events on, 1 subscriber", appEvents: true, workerEvents: true, subscribe: true },
];

/** One run: a fresh app, a warm-up, then TASKS fire-and-forget tasks; resolves to tasks/s. */
const run = async (setup: Setup, tasks = TASKS): Promise<{ rate: number; cpuRate: number; events: number }> => {
  const app: App = createApp({ events: setup.appEvents, log: () => {} });
  const counter = { done: 0, target: 0, wake: () => {} };
  const count = app.task("count", (_n: number) => {
    if (++counter.done === counter.target) counter.wake();
  });
  await app.worker({ concurrency: 64, events: setup.workerEvents, control: false }).start();
  let events = 0;
  if (setup.subscribe) await app.events.subscribe(() => void events++);
  counter.target = tasks;
  const finished = new Promise<void>((resolve) => (counter.wake = resolve));
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < tasks; i += SEND_BATCH) {
    const sends = [];
    for (let j = 0; j < SEND_BATCH; j++) sends.push(count.delay(i + j));
    await Promise.all(sends);
  }
  await finished;
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(c0);
  await app.close();
  return {
    rate: Math.round((tasks / ms) * 1000),
    cpuRate: Math.round((tasks / (cpu.user + cpu.system)) * 1e6),
    events,
  };
};

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

console.log(
  `celerity events bench: node ${process.version}, ${cpus().length} cores, ${TASKS} tasks per run, ${RUNS} runs each (taking turns)`,
);
for (const setup of SETUPS) await run(setup, 20_000); // warm-up, excluded
const rates = new Map<string, number[]>(SETUPS.map((s) => [s.name, []]));
const cpuRates = new Map<string, number[]>(SETUPS.map((s) => [s.name, []]));
let seen = 0;
for (let i = 0; i < RUNS; i++) {
  for (const setup of SETUPS) {
    const { rate, cpuRate, events } = await run(setup);
    rates.get(setup.name)!.push(rate);
    cpuRates.get(setup.name)!.push(cpuRate);
    seen = Math.max(seen, events);
  }
}
for (const [unit, figures] of [
  ["tasks/s", rates],
  ["tasks/CPU-s", cpuRates],
] as const) {
  const base = median(figures.get(SETUPS[0].name)!);
  for (const setup of SETUPS) {
    const xs = figures.get(setup.name)!;
    const m = median(xs);
    console.log(
      `${setup.name.padEnd(40)} ${String(m).padStart(9)} ${unit.padEnd(11)} (min ${Math.min(...xs)}, max ${Math.max(...xs)})  ratio ${(m / base).toFixed(3)}`,
    );
  }
}
console.log(`the subscriber received ${seen} events in its busiest run (${(seen / TASKS).toFixed(1)} per task)`);
