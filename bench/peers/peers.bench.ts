/**
 * celerity side by side with the systems users would pick instead, on this
 * machine in one run: celerity (embedded broker; TCP node in memory and
 * durable), BullMQ and bee-queue on Redis, Python Celery on RabbitMQ and on
 * Redis. The same workloads on each (see WORKLOADS), the same worker
 * concurrency where the system allows it, a warm-up before every workload
 * excluded from both count and time, several runs reported as median, min
 * and max. A system whose service is not reachable is skipped with the reason.
 *
 *   npm run bench:peers                                   # everything (installs bench/peers first if needed)
 *   npm run bench:peers -- --runs 5 --only celerity-node,bullmq --workloads backlog,latency
 *   npm run bench:peers -- --profile                      # CPU profiles of celerity's node and worker during the backlog workload
 *   npm run bench:peers -- --profile --workloads chord    # ... or during another workload
 *   npm run bench:peers -- --profile --only celerity-redis --workloads concurrent  # producer, worker and Redis CPU a task, and profiles
 *
 * Writes bench/results/peers-<time>.{json,md,svg}; a full run (no --only,
 * no --workloads) also updates docs/peers.svg.
 */
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { cpus, loadavg, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { printSelfTimes } from "../node/profile-summary.ts";
import { cpuPerTask, readCpu } from "./cpu-cost.ts";
import { markdownTable, percentile, stat, svgChart, targetLines, type Cell, type SystemResult } from "./report.ts";
import { CHAIN_LENGTH, type Instance, type System, type SystemConfig } from "./system.ts";
import { beeQueue } from "./systems/bee-queue.ts";
import { bullmq } from "./systems/bullmq.ts";
import { celerityEmbedded, celerityNodeDurable, celerityNodeMemory, celerityRedis } from "./systems/celerity.ts";
import { celerityAmqp } from "./systems/celerity-amqp.ts";
import { celeryRabbitmq, celeryRedis } from "./systems/celery.ts";

const SYSTEMS: readonly System[] = [
  celerityEmbedded,
  celerityNodeMemory,
  celerityNodeDurable,
  celerityRedis,
  celerityAmqp,
  bullmq,
  beeQueue,
  celeryRedis,
  celeryRabbitmq,
];

const { values: opts } = parseArgs({
  options: {
    runs: { type: "string", default: "3" },
    only: { type: "string" },
    workloads: { type: "string" },
    concurrency: { type: "string", default: "64" },
    scale: { type: "string", default: "1" },
    profile: { type: "boolean", default: false },
    echo: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
  strict: true,
});

/** Bulk calls carry this many tasks; the concurrent producer keeps this many single sends in flight. */
const BATCH = 1_000;
const CHORD_SIZE = 1_000;
const LATENCY_RATE = 500;
const LATENCY_TASKS = 2_000;
const WAIT_MS = 300_000;

interface Workload {
  readonly id: string;
  readonly label: string;
  /** For the chart, a line break where it should wrap. */
  readonly short: string;
  /** Base task count (before the system's speed factor), or a fixed one. */
  readonly base: number;
  readonly fixed?: boolean;
  /** The minimum count for a run, whatever the system's speed. */
  readonly min: number;
  /** Whether the worker consumes during the workload (before it begins). */
  readonly worker: boolean;
  /** One run of `n`; a rate in tasks/s or send-to-start latencies in ms. */
  run(instance: Instance, n: number): Promise<number | number[]>;
}

const rate = (count: number, ms: number) => (count / ms) * 1000;

const timed = async (count: number, work: () => Promise<unknown>) => {
  const t0 = performance.now();
  await work();
  return rate(count, performance.now() - t0);
};

const WORKLOADS: readonly Workload[] = [
  {
    id: "enqueue-single",
    short: "enqueue only\none at a time",
    label: "enqueue only, one call at a time",
    base: 20_000,
    min: 300,
    worker: false,
    async run(inst, n) {
      const r = await timed(n, () => inst.enqueue(n, "single", BATCH));
      await inst.purgeIdle();
      return r;
    },
  },
  {
    id: "enqueue-bulk",
    short: "enqueue only\nbulk",
    label: `enqueue only, bulk (${BATCH.toLocaleString("en")} a call)`,
    base: 200_000,
    min: 3_000,
    worker: false,
    async run(inst, n) {
      const r = await timed(n, () => inst.enqueue(n, "bulk", BATCH));
      await inst.purgeIdle();
      return r;
    },
  },
  {
    id: "backlog",
    short: "process\na backlog",
    label: "process a backlog of no-op tasks",
    base: 200_000,
    min: 3_000,
    worker: false,
    async run(inst, n) {
      await inst.fill(n, BATCH);
      await inst.reset();
      await inst.startWorker();
      const w = await inst.waitFor(n, WAIT_MS);
      await inst.stopWorker();
      // The worker's own clock: from the first task's start to the last task's end, so its start-up is left out.
      return rate(n, w.last - w.first);
    },
  },
  {
    id: "concurrent",
    short: "enqueue and\nprocess",
    label: "enqueue and process concurrently",
    base: 150_000,
    min: 3_000,
    worker: true,
    async run(inst, n) {
      await inst.reset();
      return timed(n, async () => {
        await inst.send(n, BATCH);
        await inst.waitFor(n, WAIT_MS);
      });
    },
  },
  {
    id: "chain",
    short: "chains\nof 10",
    label: `chain of ${CHAIN_LENGTH} (many in flight)`,
    base: 1_000,
    min: 20,
    worker: true,
    async run(inst, k) {
      await inst.reset();
      return timed(k * CHAIN_LENGTH, async () => {
        await inst.chains(k);
        await inst.waitFor(k * CHAIN_LENGTH, WAIT_MS);
      });
    },
  },
  {
    id: "chord",
    short: "fan-out 1,000\n+ fan-in",
    label: `fan-out of ${CHORD_SIZE.toLocaleString("en")} + fan-in`,
    // Chords a run, one after the other: one alone is over too soon on a fast system to be timed well.
    base: 10,
    min: 1,
    worker: true,
    async run(inst, chords) {
      await inst.reset();
      return timed(chords * (CHORD_SIZE + 1), async () => {
        for (let i = 1; i <= chords; i++) {
          await inst.chord(CHORD_SIZE);
          await inst.waitFor(i * (CHORD_SIZE + 1), WAIT_MS);
        }
      });
    },
  },
  {
    id: "latency",
    short: "latency",
    label: `send-to-start latency at ${LATENCY_RATE}/s`,
    base: LATENCY_TASKS,
    fixed: true,
    min: LATENCY_TASKS,
    worker: true,
    async run(inst, n) {
      await inst.reset();
      await inst.paced(n, LATENCY_RATE);
      await inst.waitFor(n, WAIT_MS);
      return inst.latencies();
    },
  },
];

const fail = (message: string): never => {
  console.error(`bench:peers: ${message}`);
  process.exit(2);
};

const pick = <T extends { id: string }>(all: readonly T[], list: string | undefined, flag: string): readonly T[] => {
  if (list === undefined) return all;
  const ids = list
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean);
  for (const id of ids)
    if (!all.some((x) => x.id === id)) fail(`${flag}: unknown '${id}'; known: ${all.map((x) => x.id).join(", ")}`);
  return all.filter((x) => ids.includes(x.id));
};

const RUNS = Number(opts.runs);
const CONCURRENCY = Number(opts.concurrency);
const SCALE = Number(opts.scale);
if (!Number.isInteger(RUNS) || RUNS < 1) fail(`--runs must be a positive integer, got '${opts.runs}'`);
if (!Number.isInteger(CONCURRENCY) || CONCURRENCY < 1)
  fail(`--concurrency must be a positive integer, got '${opts.concurrency}'`);
if (!(SCALE > 0)) fail(`--scale must be a positive number, got '${opts.scale}'`);

const sizeFor = (w: Workload, s: System) => {
  if (w.fixed) return w.base;
  const n = w.base * s.speed * SCALE;
  return Math.max(w.min, n < 100 ? Math.round(n) : Math.round(n / 10) * 10);
};

const runWorkload = async (system: System, inst: Instance, w: Workload, state: { worker: boolean }): Promise<Cell> => {
  const unsupported = system.unsupported[w.id];
  if (unsupported !== undefined) return { kind: "skipped", reason: unsupported };
  if (w.worker !== state.worker) {
    await (w.worker ? inst.startWorker() : inst.stopWorker());
    state.worker = w.worker;
  }
  const n = sizeFor(w, system);
  const warm = w.fixed ? Math.max(1, Math.round(n / 4)) : Math.max(w.min, Math.round(n / 4));
  await w.run(inst, warm); // warm-up: excluded from count and time
  const figures: (number | number[])[] = [];
  for (let i = 0; i < RUNS; i++) figures.push(await w.run(inst, n));
  if (w.id === "latency") {
    const p = (q: number) =>
      figures.map((xs) =>
        percentile(
          [...(xs as number[])].sort((a, b) => a - b),
          q,
        ),
      );
    return { kind: "latency", tasksPerRun: n, rate: LATENCY_RATE, p50: stat(p(0.5)), p99: stat(p(0.99)) };
  }
  const runs = (figures as number[]).map((x) => Math.round(x));
  return {
    kind: "rate",
    tasksPerRun: w.id === "chain" ? n * CHAIN_LENGTH : w.id === "chord" ? n * (CHORD_SIZE + 1) : n,
    runs,
    stat: stat(runs),
  };
};

const show = (cell: Cell) =>
  cell.kind === "rate"
    ? `${cell.stat.median.toLocaleString("en").padStart(10)} tasks/s (min ${cell.stat.min.toLocaleString("en")}, max ${cell.stat.max.toLocaleString("en")}; ${cell.tasksPerRun.toLocaleString("en")} a run)`
    : cell.kind === "latency"
      ? `p50 ${cell.p50.median.toFixed(2)} ms, p99 ${cell.p99.median.toFixed(2)} ms (p99 min ${cell.p99.min.toFixed(2)}, max ${cell.p99.max.toFixed(2)})`
      : `n/a: ${cell.reason}`;

const runSystem = async (
  system: System,
  workloads: readonly Workload[],
  config: SystemConfig,
): Promise<SystemResult> => {
  const base = { id: system.id, label: system.label, setup: system.setup };
  const reason = await system.unavailable();
  if (reason !== undefined) {
    console.log(`\n${system.label}: SKIPPED, ${reason}`);
    return { ...base, versions: {}, skipped: reason, cells: {} };
  }
  const versions = await system.versions();
  console.log(
    `\n${system.label} (${Object.entries(versions)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ")}): ${system.setup}`,
  );
  const cells: Record<string, Cell> = {};
  let inst: Instance;
  try {
    inst = await system.start(config);
  } catch (error) {
    const reason = `failed to start: ${(error instanceof Error ? error.message : String(error)).split("\n")[0]}`;
    console.log(`  SKIPPED, ${reason}`);
    return { ...base, versions, skipped: reason, cells: {} };
  }
  const state = { worker: false };
  try {
    for (const w of workloads) {
      const t0 = performance.now();
      try {
        cells[w.id] = await runWorkload(system, inst, w, state);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        cells[w.id] = { kind: "skipped", reason: `failed: ${message.split("\n")[0]}` };
      }
      console.log(`  ${w.label.padEnd(42)} ${show(cells[w.id])}  [${((performance.now() - t0) / 1000).toFixed(1)} s]`);
    }
  } finally {
    await inst
      .close()
      .catch((error: unknown) =>
        console.log(`  ! closing ${system.label} failed: ${error instanceof Error ? error.message : String(error)}`),
      );
  }
  return { ...base, versions, cells };
};

/** The systems --profile can run: their workers have processes of their own. */
const PROFILED: readonly System[] = [celerityNodeMemory, celerityRedis, celerityAmqp, bullmq];

/**
 * One workload (backlog unless --workloads names another) on one system
 * (celerity's node unless --only names another of PROFILED), with its
 * worker (and celerity's node) under `node --cpu-prof` and the producer,
 * this process, profiled during the measured run; prints the CPU each task
 * cost the producer, the worker and (on Redis) the Redis server, then the
 * top self-time functions of each profile.
 */
const profile = async (root: string, system: System, workload: Workload) => {
  const reason = await system.unavailable();
  if (reason !== undefined) fail(`--profile: ${system.label} cannot run here: ${reason}`);
  const dir = join(root, `profiles-peers-${system.id}-${workload.id}-${stamp()}`);
  mkdirSync(dir, { recursive: true });
  // A directory per process: tsx's loader thread writes a profile too, named by its thread id beside the main thread's.
  const nodeArgs = (who: "node" | "worker") => ["--cpu-prof", "--cpu-prof-dir", join(dir, who)];
  const n = workload.fixed ? workload.base : sizeFor(workload, system) * 2;
  const onRedis = system === celerityRedis || system === bullmq;
  const inst = await system.start({ concurrency: CONCURRENCY, echo: opts.echo, nodeArgs });
  const producer = new Session();
  producer.connect();
  try {
    if (workload.worker) await inst.startWorker();
    await workload.run(inst, Math.max(workload.min, Math.round(n / 4))); // warm-up
    await producer.post("Profiler.enable");
    await producer.post("Profiler.start");
    const before = await readCpu(inst.workerCpu?.bind(inst), onRedis);
    const figure = await workload.run(inst, n);
    const after = await readCpu(inst.workerCpu?.bind(inst), onRedis);
    const { profile: taken } = await producer.post("Profiler.stop");
    writeFileSync(join(dir, "producer.cpuprofile"), JSON.stringify(taken));
    const shown =
      typeof figure === "number" ? `${Math.round(figure).toLocaleString("en")} tasks/s` : `${figure.length} latencies`;
    console.log(`\nprofiled ${workload.label} (${n.toLocaleString("en")}) on ${system.label}: ${shown}`);
    console.log(
      `CPU during the profiled run (load average ${loadavg()[0].toFixed(2)}; ${onRedis ? "the Redis server's counters include any other client's work" : "the broker's own CPU is not counted"}):`,
    );
    for (const line of cpuPerTask(before, after, workload.id === "chord" ? n * (CHORD_SIZE + 1) : n)) console.log(line);
  } finally {
    producer.disconnect();
    await inst.close(); // the worker (and node) write their profiles as they exit
  }
  console.log("(the worker's and node's profiles cover each process's whole life; the producer's, the profiled run)");
  printSelfTimes("producer (this process)", join(dir, "producer.cpuprofile"), 15);
  if (system === celerityNodeMemory) printSelfTimes("node (celerity broker)", mainThreadProfile(join(dir, "node")), 15);
  printSelfTimes(`worker (${system.label})`, mainThreadProfile(join(dir, "worker")), 15);
};

/** The main thread's profile in a `--cpu-prof-dir` (default names end in `.<pid>.<thread id>.<seq>.cpuprofile`; the main thread is 0). */
const mainThreadProfile = (dir: string): string => {
  const main = readdirSync(dir).find((name) => /\.\d+\.0\.\d+\.cpuprofile$/.test(name));
  if (main === undefined) fail(`no main-thread profile in ${dir}`);
  return join(dir, main as string);
};

const stamp = () => new Date().toISOString().replace(/[:.]/g, "-");

const main = async () => {
  if (opts.help) {
    console.log(
      `npm run bench:peers -- [--runs N] [--only ${SYSTEMS.map((s) => s.id).join(",")}] [--workloads ${WORKLOADS.map((w) => w.id).join(",")}] [--concurrency N] [--scale X] [--profile] [--echo]`,
    );
    return;
  }
  const systems = pick(SYSTEMS, opts.only, "--only");
  const workloads = pick(WORKLOADS, opts.workloads, "--workloads");
  const machine = {
    cpu: cpus()[0]?.model ?? "?",
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
  };
  const loadAtStart = loadavg();
  console.log(
    `celerity peers bench: ${machine.cores} cores (${machine.cpu}), ${machine.memoryGiB} GiB, node ${machine.node}; ` +
      `${RUNS} run${RUNS === 1 ? "" : "s"} a workload after a warm-up; worker concurrency ${CONCURRENCY} where the system has one; bulk batches of ${BATCH.toLocaleString("en")}; ` +
      `load average ${loadAtStart.map((x) => x.toFixed(2)).join(" ")}`,
  );
  const results = new URL("../results/", import.meta.url).pathname;
  mkdirSync(results, { recursive: true });
  if (opts.profile) {
    if (workloads.length > 1 && opts.workloads !== undefined)
      fail("--profile takes one workload (--workloads backlog, say)");
    const profiled = opts.only === undefined ? [celerityNodeMemory] : systems;
    if (profiled.length !== 1 || !PROFILED.includes(profiled[0]))
      fail(`--profile takes one system of ${PROFILED.map((x) => x.id).join(", ")} (--only celerity-redis, say)`);
    return profile(
      results,
      profiled[0],
      opts.workloads === undefined ? WORKLOADS.find((w) => w.id === "backlog")! : workloads[0],
    );
  }
  const config: SystemConfig = { concurrency: CONCURRENCY, echo: opts.echo };
  const report: SystemResult[] = [];
  for (const system of systems) report.push(await runSystem(system, workloads, config));
  const loadAtEnd = loadavg();
  const table = markdownTable(report, workloads);
  const targets = targetLines(report);
  const when = new Date().toISOString();
  const subtitle = `${machine.cores} cores (${machine.cpu}), ${machine.memoryGiB} GiB, node ${machine.node}; ${RUNS} runs, medians; ${when.slice(0, 16).replace("T", " ")} UTC, load ${loadAtStart[0].toFixed(2)}→${loadAtEnd[0].toFixed(2)}`;
  const markdown = [
    `Measured ${when} on ${machine.cores} cores (${machine.cpu}), ${machine.memoryGiB} GiB, ${machine.platform}, node ${machine.node}; load average ${loadAtStart.map((x) => x.toFixed(2)).join(" ")} at the start, ${loadAtEnd.map((x) => x.toFixed(2)).join(" ")} at the end.`,
    `${RUNS} run${RUNS === 1 ? "" : "s"} each after a warm-up; tasks/s as median (min–max); latency as the median over runs of each run's p50 and p99.`,
    "",
    table,
    "",
    ...(targets.length > 0 ? ["Against the targets:", "", ...targets, ""] : []),
    "Versions:",
    "",
    ...report
      .filter((s) => s.skipped === undefined)
      .map(
        (s) =>
          `- ${s.label}: ${Object.entries(s.versions)
            .map(([k, v]) => `${k} ${v}`)
            .join(", ")}; ${s.setup}`,
      ),
  ].join("\n");
  console.log(`\n${markdown}`);
  const base = join(results, `peers-${stamp()}`);
  writeFileSync(
    `${base}.json`,
    JSON.stringify(
      {
        when,
        machine,
        loadAtStart,
        loadAtEnd,
        runs: RUNS,
        concurrency: CONCURRENCY,
        batch: BATCH,
        scale: SCALE,
        latencyRate: LATENCY_RATE,
        workloads: workloads.map(({ id, label, short }) => ({ id, label, short })),
        systems: report,
        targets,
      },
      null,
      2,
    ),
  );
  writeFileSync(`${base}.md`, `${markdown}\n`);
  const svg = svgChart(report, workloads, subtitle);
  writeFileSync(`${base}.svg`, svg);
  console.log(`\nwrote ${base}.json, .md and .svg`);
  if (opts.only === undefined && opts.workloads === undefined) {
    const docs = new URL("../../docs/peers.svg", import.meta.url).pathname;
    writeFileSync(docs, svg);
    console.log(`updated ${docs}`);
  }
};

await main();
// Clients of some peers keep timers alive; everything is closed by now.
process.exit(0);
