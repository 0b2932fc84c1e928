/**
 * The TCP path on one machine, with producer, broker node and worker as three
 * processes: this process produces; the node is `celerity broker` (durable
 * log, fsync before confirm by default) and the worker `celerity worker
 * --concurrency 64` on bench/node/tasks.ts, each a child process.
 *
 * Scenarios: fire-and-forget end to end (tasks/s, done once the worker has
 * run every task), 100 senders each awaiting one send at a time (tasks/s),
 * with results awaited (tasks/s), send-to-start latency at a
 * fixed moderate rate (p50/p99), the fire-and-forget scenario again with
 * `--fsync interval:100` and with the node in memory, and the node's memory
 * under a backlog of 1,000,000 messages with no worker (about 30 s;
 * --skip-backlog leaves it out).
 * Each scenario runs several times after a warm-up that is excluded from both
 * count and time; medians are reported with min and max.
 *
 *   node --import tsx bench/node.bench.ts                  # every scenario (a few minutes)
 *   node --import tsx bench/node.bench.ts --skip-backlog   # all but the 1M backlog
 *   node --import tsx bench/node.bench.ts --runs 3 --only latency
 *   node --import tsx bench/node.bench.ts --only flood      # memory under a flood against --max-messages
 *   node --import tsx bench/node.bench.ts --scale 0.2      # smaller runs, for a quick look
 *   node --import tsx bench/node.bench.ts --profile        # CPU profiles of node, worker and producer
 *   node --import tsx bench/node.bench.ts --profile --only 100-senders
 *   node --import tsx bench/node.bench.ts --echo           # show the children's stderr
 *   node --import tsx bench/node.bench.ts --wait-quiet     # on a shared machine: before each run, wait (up to 60 s)
 *                                                          # until other processes use under 0.2 cores
 *
 * Every child process is killed when this process exits, however it exits.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createApp, type App } from "../src/index.ts";
import { defineTasks, type BenchTasks } from "./node/task-defs.ts";
import {
  cpuMsOf,
  dirBytes,
  machineCpuMs,
  makeDataDir,
  memoryOf,
  removeDir,
  startNode,
  startWorker,
  type Child,
} from "./node/processes.ts";
import { printSelfTimes } from "./node/profile-summary.ts";
import { flood } from "./node/flood.ts";
import {
  GET_TIMEOUT,
  SEND_BATCH,
  concurrentSenders,
  fireAndForget,
  pacedLatencies,
  percentile,
  rate,
  withResults,
} from "./node/workloads.ts";

const { values: opts } = parseArgs({
  options: {
    runs: { type: "string", default: "5" },
    only: { type: "string" },
    "skip-backlog": { type: "boolean", default: false },
    "backlog-size": { type: "string", default: "1000000" },
    "flood-size": { type: "string", default: "1000000" },
    profile: { type: "boolean", default: false },
    echo: { type: "boolean", default: false },
    scale: { type: "string", default: "1" },
    concurrency: { type: "string", default: "64" },
    "wait-quiet": { type: "boolean", default: false },
  },
  strict: true,
});
const RUNS = Number(opts.runs);
const CONCURRENCY = Number(opts.concurrency);
/** Sizes are picked so that a run takes a few seconds on a small machine; --scale multiplies them. */
const sized = (n: number) => Math.max(1_000, Math.round((n * Number(opts.scale)) / 1_000) * 1_000);
/** Tasks per fire-and-forget run: tasks whose (empty) result is stored, and tasks with ignoreResult. */
const FIRE_AND_FORGET = sized(60_000);
const FIRE_AND_FORGET_QUIET = sized(150_000);
/** Tasks per run with results awaited. */
const WITH_RESULTS = sized(40_000);
/** Callers each awaiting one send at a time, and the tasks they send in all per run. */
const CONCURRENT_SENDERS = 100;
const CONCURRENT_SENDS = sized(20_000);
const LATENCY_RATE = 2_000;
const LATENCY_TASKS = 6_000;
const BACKLOG = Number(opts["backlog-size"]);

type Figure = number | { p50: number; p99: number; roundTripP50: number; roundTripP99: number; min: number };

interface Fixture {
  readonly app: App;
  readonly tasks: BenchTasks;
  readonly node: Child;
  readonly worker: Child;
  readonly dataDir: string | undefined;
  /** Counted tasks sent to this worker so far (the target `reached` waits for). */
  sent: number;
}

interface Scenario {
  readonly name: string;
  readonly unit: "tasks/s" | "ms";
  readonly config: Config;
  /** Tasks per run, for the CPU time per task of each process. */
  readonly tasks?: number;
  run(fixture: Fixture): Promise<Figure>;
}

/** How the node runs: with a durable log (under an fsync policy, "always" when not given) or in memory. */
interface Config {
  readonly label: string;
  readonly durable: boolean;
  readonly fsync?: string;
}
const DURABLE: Config = { label: "durable, fsync always", durable: true };
const INTERVAL: Config = { label: "durable, fsync interval:100", durable: true, fsync: "interval:100" };
const MEMORY: Config = { label: "in memory", durable: false };

const fixture = async (config: Config, profileDir?: string): Promise<Fixture> => {
  const dataDir = config.durable ? makeDataDir() : undefined;
  const prof = (name: string) =>
    profileDir === undefined
      ? []
      : ["--cpu-prof", "--cpu-prof-dir", profileDir, "--cpu-prof-name", `${name}.cpuprofile`];
  const node = await startNode({ dataDir, fsync: config.fsync }, { echo: opts.echo, nodeArgs: prof("node") });
  let worker: Child;
  try {
    worker = await startWorker(node.url, CONCURRENCY, { echo: opts.echo, nodeArgs: prof("worker") });
  } catch (error) {
    await node.child.stop();
    throw error;
  }
  const app = createApp({ broker: node.url, log: (message) => console.error(`producer: ${message}`) });
  return { app, tasks: defineTasks(app), node: node.child, worker, dataDir, sent: 0 };
};

/** What node and worker say when all goes well; anything else they wrote is shown after the scenario. */
const ROUTINE =
  /recovered \d+ (messages|task results|schedules)|listening on|consuming with concurrency|stopping|stopped|closed: the client closed the connection|SIGTERM received|SIGTERM: warm shutdown/;

const showUnexpected = (who: string, child: Child) => {
  const lines = child
    .output()
    .split("\n")
    .filter((line) => line.trim() !== "" && !ROUTINE.test(line));
  if (lines.length === 0) return;
  console.log(`  ! the ${who} wrote ${lines.length} unexpected line(s) to stderr, the last ones:`);
  for (const line of lines.slice(-5)) console.log(`    ${line}`);
};

const teardown = async (f: Fixture) => {
  await f.app.close();
  await f.worker.stop();
  await f.node.stop();
  if (f.dataDir !== undefined) removeDir(f.dataDir);
  showUnexpected("worker", f.worker);
  showUnexpected("node", f.node);
};

/** LATENCY_TASKS stamp tasks at LATENCY_RATE/s (paced by the clock, checked every millisecond); each result is awaited. */
const latency = async (f: Fixture) => {
  const { toStart, roundTrip } = await pacedLatencies(f, LATENCY_RATE, LATENCY_TASKS);
  // min: a check on the clocks of the two processes (it must stay above zero).
  return {
    p50: percentile(toStart, 0.5),
    p99: percentile(toStart, 0.99),
    roundTripP50: percentile(roundTrip, 0.5),
    roundTripP99: percentile(roundTrip, 0.99),
    min: toStart[0],
  };
};

const scenarios: Scenario[] = [
  {
    name: "fire-and-forget, results stored",
    unit: "tasks/s",
    config: DURABLE,
    tasks: FIRE_AND_FORGET,
    run: (f) => fireAndForget(f, f.tasks.count, FIRE_AND_FORGET),
  },
  {
    name: "fire-and-forget, ignoreResult",
    unit: "tasks/s",
    config: DURABLE,
    tasks: FIRE_AND_FORGET_QUIET,
    run: (f) => fireAndForget(f, f.tasks.quiet, FIRE_AND_FORGET_QUIET),
  },
  {
    name: `${CONCURRENT_SENDERS} senders, each awaiting one send at a time, results stored`,
    unit: "tasks/s",
    config: DURABLE,
    tasks: CONCURRENT_SENDS,
    run: (f) => concurrentSenders(f, f.tasks.count, CONCURRENT_SENDERS, CONCURRENT_SENDS),
  },
  {
    name: "with results awaited (delay + get)",
    unit: "tasks/s",
    config: DURABLE,
    tasks: WITH_RESULTS,
    run: (f) => withResults(f, WITH_RESULTS),
  },
  {
    name: `send-to-start latency at ${LATENCY_RATE.toLocaleString("en")}/s`,
    unit: "ms",
    config: DURABLE,
    run: latency,
  },
  {
    name: "fire-and-forget, results stored",
    unit: "tasks/s",
    config: INTERVAL,
    tasks: FIRE_AND_FORGET,
    run: (f) => fireAndForget(f, f.tasks.count, FIRE_AND_FORGET),
  },
  {
    name: "fire-and-forget, ignoreResult",
    unit: "tasks/s",
    config: INTERVAL,
    tasks: FIRE_AND_FORGET_QUIET,
    run: (f) => fireAndForget(f, f.tasks.quiet, FIRE_AND_FORGET_QUIET),
  },
  {
    name: "fire-and-forget, results stored",
    unit: "tasks/s",
    config: MEMORY,
    tasks: FIRE_AND_FORGET,
    run: (f) => fireAndForget(f, f.tasks.count, FIRE_AND_FORGET),
  },
  {
    name: "fire-and-forget, ignoreResult",
    unit: "tasks/s",
    config: MEMORY,
    tasks: FIRE_AND_FORGET_QUIET,
    run: (f) => fireAndForget(f, f.tasks.quiet, FIRE_AND_FORGET_QUIET),
  },
];

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const ms = (x: number) => x.toFixed(2);
const round2 = (x: number) => Math.round(x * 100) / 100;
const loadNote = (load: { median: number; max: number }) => `other processes: ${load.median} cores (max ${load.max})`;
const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(1);

/** Cores' worth of CPU used by processes other than `pids` and this one over the next `ms`. */
const otherCores = async (pids: readonly number[], ms = 500): Promise<number> => {
  const ours = () => {
    const self = process.cpuUsage();
    return pids.reduce((sum, pid) => sum + cpuMsOf(pid), 0) + (self.user + self.system) / 1000;
  };
  const machine0 = machineCpuMs();
  const ours0 = ours();
  await new Promise((resolve) => setTimeout(resolve, ms));
  return Math.max(0, (machineCpuMs() - machine0 - (ours() - ours0)) / ms);
};

/** With --wait-quiet: wait until the rest of the machine is nearly idle (at most 60 s; then go on, and the load shows in the figures). */
const waitQuiet = async (pids: readonly number[]) => {
  if (!opts["wait-quiet"]) return;
  const until = performance.now() + 60_000;
  while (performance.now() < until && (await otherCores(pids)) >= 0.2);
};

const runScenario = async (scenario: Scenario): Promise<Record<string, unknown>> => {
  const label = `${scenario.name} [${scenario.config.label}]`;
  const f = await fixture(scenario.config);
  try {
    await scenario.run(f); // warm-up, excluded
    const figures: Figure[] = [];
    const cpu = { node: [] as number[], worker: [] as number[], producer: [] as number[] };
    /** Cores' worth of CPU that processes other than these three used during each run (noise from the rest of the machine). */
    const others: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      await waitQuiet([f.node.pid, f.worker.pid]);
      const before = {
        node: cpuMsOf(f.node.pid),
        worker: cpuMsOf(f.worker.pid),
        producer: process.cpuUsage(),
        machine: machineCpuMs(),
        at: performance.now(),
      };
      figures.push(await scenario.run(f));
      const used = {
        node: cpuMsOf(f.node.pid) - before.node,
        worker: cpuMsOf(f.worker.pid) - before.worker,
        producer: process.cpuUsage(before.producer),
      };
      const producerMs = (used.producer.user + used.producer.system) / 1000;
      const elapsed = performance.now() - before.at;
      others.push(Math.max(0, (machineCpuMs() - before.machine - used.node - used.worker - producerMs) / elapsed));
      if (scenario.tasks === undefined) continue;
      const perTask = (msUsed: number) => Math.round((msUsed * 1000) / (scenario.tasks as number));
      cpu.node.push(perTask(used.node));
      cpu.worker.push(perTask(used.worker));
      cpu.producer.push(perTask(producerMs));
    }
    const otherLoad = {
      median: round2(median(others)),
      max: round2(Math.max(...others)),
      unit: "cores used by other processes during the runs",
    };
    const cpuPerTask =
      scenario.tasks === undefined
        ? undefined
        : {
            node: median(cpu.node),
            worker: median(cpu.worker),
            producer: median(cpu.producer),
            unit: "µs CPU per task (median of runs)",
          };
    if (scenario.unit === "ms") {
      const pick = (key: "p50" | "p99" | "roundTripP50" | "roundTripP99" | "min") =>
        figures.map((x) => (x as Exclude<Figure, number>)[key]);
      const stat = (xs: number[]) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });
      const row = {
        scenario: scenario.name,
        node: scenario.config.label,
        unit: "ms",
        tasksPerRun: LATENCY_TASKS,
        ratePerSecond: LATENCY_RATE,
        p50: stat(pick("p50")),
        p99: stat(pick("p99")),
        roundTripP50: stat(pick("roundTripP50")),
        roundTripP99: stat(pick("roundTripP99")),
        minSendToStart: Math.min(...pick("min")),
        otherLoad,
      };
      const show = (s: { median: number; min: number; max: number }) =>
        `${ms(s.median)} ms (${ms(s.min)}–${ms(s.max)})`;
      console.log(`${label.padEnd(66)} p50 ${show(row.p50)}  p99 ${show(row.p99)}`);
      console.log(
        `${"  (send to result received)".padEnd(66)} p50 ${show(row.roundTripP50)}  p99 ${show(row.roundTripP99)}`,
      );
      console.log(`${"".padEnd(66)} ${loadNote(otherLoad)}`);
      return row;
    }
    const xs = figures as number[];
    const row = {
      scenario: scenario.name,
      node: scenario.config.label,
      unit: scenario.unit,
      tasksPerRun: scenario.tasks,
      median: median(xs),
      min: Math.min(...xs),
      max: Math.max(...xs),
      runs: xs,
      cpuPerTask,
      otherLoad,
    };
    console.log(
      `${label.padEnd(66)} ${String(row.median).padStart(9)} ${scenario.unit}  (min ${row.min}, max ${row.max})`,
    );
    if (cpuPerTask !== undefined) {
      const sum = cpuPerTask.node + cpuPerTask.worker + cpuPerTask.producer;
      console.log(
        `${"".padEnd(66)} CPU per task: node ${cpuPerTask.node} µs, worker ${cpuPerTask.worker} µs, producer ${cpuPerTask.producer} µs (sum ${sum} µs); ${loadNote(otherLoad)}`,
      );
    }
    return row;
  } finally {
    await teardown(f);
  }
};

/**
 * Publish BACKLOG small tasks (ignoreResult, so only the queued messages are
 * held) to a durable node with no worker, then read the node's RSS. Then start
 * a worker and time how fast it drains the backlog.
 */
const backlog = async (): Promise<Record<string, unknown>> => {
  const dataDir = makeDataDir();
  const node = await startNode({ dataDir }, { echo: opts.echo });
  const app = createApp({ broker: node.url, log: (message) => console.error(`producer: ${message}`) });
  const tasks = defineTasks(app);
  let worker: Child | undefined;
  try {
    await (await tasks.stamp.delay(0)).state(); // connected, default queue made; one message queued (not counted)
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await waitQuiet([node.child.pid]);
    const before = memoryOf(node.child.pid);
    const t0 = performance.now();
    for (let i = 0; i < BACKLOG; i += SEND_BATCH) {
      const sends = [];
      for (let j = 0; j < SEND_BATCH && i + j < BACKLOG; j++) sends.push(tasks.quiet.delay(i + j));
      await Promise.all(sends);
    }
    const publishRate = rate(BACKLOG, performance.now() - t0);
    const after = memoryOf(node.child.pid);
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    const settled = memoryOf(node.child.pid);
    const logBytes = dirBytes(dataDir);
    const stats = await app.broker.stats("celery");
    worker = await startWorker(node.url, CONCURRENCY, { echo: opts.echo });
    const t1 = performance.now();
    await (await tasks.reached.delay(BACKLOG)).get({ timeout: GET_TIMEOUT });
    const drainRate = rate(BACKLOG, performance.now() - t1);
    const row = {
      scenario: `backlog of ${BACKLOG.toLocaleString("en")} messages, no worker`,
      node: DURABLE.label,
      queueStats: stats,
      rssBeforeBytes: before.rss,
      rssAfterPublishBytes: after.rss,
      rssAfter5sIdleBytes: settled.rss,
      peakRssBytes: settled.peak,
      bytesPerMessage: Math.round((settled.rss - before.rss) / BACKLOG),
      logBytes,
      logBytesPerMessage: Math.round(logBytes / BACKLOG),
      publishRate,
      drainRate,
    };
    console.log(
      `${row.scenario.padEnd(66)} RSS ${mb(before.rss)} MB before, ${mb(after.rss)} MB after publishing, ${mb(settled.rss)} MB 5 s later (peak ${mb(settled.peak)} MB)`,
    );
    console.log(
      `${"".padEnd(66)} ${row.bytesPerMessage} bytes/message in RSS; log ${mb(logBytes)} MB on disk (${row.logBytesPerMessage} bytes/message)`,
    );
    console.log(
      `${"".padEnd(66)} published at ${publishRate} tasks/s; one worker then drained it at ${drainRate} tasks/s`,
    );
    return row;
  } finally {
    await app.close();
    await worker?.stop();
    await node.child.stop();
    removeDir(dataDir);
    if (worker !== undefined) showUnexpected("worker", worker);
    showUnexpected("node", node.child);
  }
};

/**
 * The fire-and-forget scenarios and the concurrent senders on the durable
 * node (`--only` picks by name: results-stored, ignore-result, 100-senders), each once after a
 * warm-up, with node, worker and this process under the CPU profiler; prints
 * the top self-time functions of each. The node's and the worker's profiles
 * cover their whole life (start-up and warm-up too), this process's only the
 * profiled run. Profiles are kept in bench/results/profiles-<time>/.
 */
const profile = async () => {
  const root = join(import.meta.dirname, "results", `profiles-${new Date().toISOString().replace(/[:.]/g, "-")}`);
  const { Session } = await import("node:inspector/promises");
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  const runs: [name: string, run: (f: Fixture) => Promise<Figure>][] = [
    ["results-stored", (f) => fireAndForget(f, f.tasks.count, FIRE_AND_FORGET)],
    ["ignore-result", (f) => fireAndForget(f, f.tasks.quiet, FIRE_AND_FORGET_QUIET)],
    [`${CONCURRENT_SENDERS}-senders`, (f) => concurrentSenders(f, f.tasks.count, CONCURRENT_SENDERS, CONCURRENT_SENDS)],
  ];
  for (const [name, run] of runs) {
    if (opts.only !== undefined && !name.includes(opts.only)) continue;
    const dir = join(root, name);
    mkdirSync(dir, { recursive: true });
    const f = await fixture(DURABLE, dir);
    try {
      await run(f); // warm-up
      await session.post("Profiler.start");
      const nodeCpu = cpuMsOf(f.node.pid);
      const workerCpu = cpuMsOf(f.worker.pid);
      const figure = await run(f);
      const { profile: producerProfile } = await session.post("Profiler.stop");
      writeFileSync(join(dir, "producer.cpuprofile"), JSON.stringify(producerProfile));
      console.log(
        `\n=== ${name} [${DURABLE.label}], profiled run: ${JSON.stringify(figure)} tasks/s; ` +
          `CPU in that run: node ${Math.round(cpuMsOf(f.node.pid) - nodeCpu)} ms, worker ${Math.round(cpuMsOf(f.worker.pid) - workerCpu)} ms`,
      );
    } finally {
      await teardown(f); // the children write their profiles as they exit
    }
    printSelfTimes("node (celerity broker)", join(dir, "node.cpuprofile"), 15);
    printSelfTimes("worker (celerity worker)", join(dir, "worker.cpuprofile"), 15);
    printSelfTimes("producer (this process, profiled run only)", join(dir, "producer.cpuprofile"), 15);
  }
  session.disconnect();
};

const main = async () => {
  console.log(
    `celerity node bench: node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), ${Math.round(totalmem() / 2 ** 30)} GiB; ` +
      `producer, node and worker (concurrency ${CONCURRENCY}) as three processes; ${RUNS} runs each; ` +
      `tasks per run: ${FIRE_AND_FORGET.toLocaleString("en")} fire-and-forget with results stored, ${FIRE_AND_FORGET_QUIET.toLocaleString("en")} with ignoreResult, ${WITH_RESULTS.toLocaleString("en")} with results awaited; ` +
      `publishes in batches of ${SEND_BATCH.toLocaleString("en")} confirms; load average ${loadavg()
        .map((x) => x.toFixed(2))
        .join(" ")}`,
  );
  if (opts.profile) return profile();
  const report: Record<string, unknown>[] = [];
  for (const scenario of scenarios) {
    if (opts.only !== undefined && !`${scenario.name} [${scenario.config.label}]`.includes(opts.only)) continue;
    report.push(await runScenario(scenario));
  }
  if (!opts["skip-backlog"] && (opts.only === undefined || "backlog".includes(opts.only))) report.push(await backlog());
  if (!opts["skip-backlog"] && (opts.only === undefined || "flood".includes(opts.only))) {
    report.push(
      await flood({
        total: Number(opts["flood-size"]),
        maxMessages: 100_000,
        window: 5_000,
        pressMs: 10_000,
        concurrency: CONCURRENCY,
        echo: opts.echo,
      }),
    );
  }
  mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
  const file = new URL(`./results/node-${new Date().toISOString().replace(/[:.]/g, "-")}.json`, import.meta.url);
  writeFileSync(
    file,
    JSON.stringify(
      {
        node: process.version,
        cores: cpus().length,
        loadAverageAtStart: loadavg(),
        cpu: cpus()[0]?.model,
        runs: RUNS,
        concurrency: CONCURRENCY,
        fireAndForgetTasks: FIRE_AND_FORGET,
        fireAndForgetIgnoreResultTasks: FIRE_AND_FORGET_QUIET,
        withResultsTasks: WITH_RESULTS,
        sendBatch: SEND_BATCH,
        results: report,
      },
      null,
      2,
    ),
  );
  console.log(`\nwrote ${file.pathname}`);
};

await main();
