/**
 * Signed against unsigned, side by side in one run: the same scenarios on
 * an app without signing options and on one that signs every message
 * (ed25519 over a Merkle root per publish batch) and verifies every delivery,
 * first embedded (one process), then over a broker node (producer, node and
 * worker as three processes, the node durable with fsync before confirm).
 * Runs of the two modes alternate, so load from the rest of the machine
 * falls on both alike; medians are reported with min and max, and the
 * signed/unsigned ratio of the medians.
 *
 *   npm run bench:signing                      # both parts, 5 runs each
 *   npm run bench:signing -- --runs 3 --only tcp
 *   npm run bench:signing -- --encryption      # signed mode also seals bodies and results
 *   npm run bench:signing -- --only tcp --scenario ignoreResult --profile
 *                                              # CPU profiles of node and worker per mode, top self times printed
 *
 * Over TCP each row also gives the CPU the producer (this process), the node and the worker spent per task in the timed runs.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createApp, type App, type SigningOptions } from "../src/index.ts";
import { writeKeyPair } from "../src/signing.ts";
import { generateBoxKey } from "../runtime/signing/payload-box.ts";
import { defineTasks, type BenchTasks } from "./node/task-defs.ts";
import { cpuMsOf, makeDataDir, removeDir, startNode, startWorker, type Child } from "./node/processes.ts";
import { printSelfTimes } from "./node/profile-summary.ts";
import { SEND_BATCH, fireAndForget, pacedLatencies, percentile, withResults } from "./node/workloads.ts";

const { values: opts } = parseArgs({
  options: {
    runs: { type: "string", default: "5" },
    only: { type: "string" },
    scenario: { type: "string" },
    profile: { type: "boolean", default: false },
    scale: { type: "string", default: "1" },
    encryption: { type: "boolean", default: false },
  },
  strict: true,
});
const RUNS = Number(opts.runs);
const sized = (n: number) => Math.max(1_000, Math.round((n * Number(opts.scale)) / 1_000) * 1_000);
const CONCURRENCY = 64;
const profileDir = opts.profile
  ? new URL(`./results/signing-profiles-${new Date().toISOString().replace(/[:.]/g, "-")}/`, import.meta.url).pathname
  : undefined;
const profileArgs = (name: string) =>
  profileDir === undefined ? [] : ["--cpu-prof", "--cpu-prof-dir", profileDir, "--cpu-prof-name", `${name}.cpuprofile`];

const keyDir = mkdtempSync(join(tmpdir(), "celerity-signing-bench-"));
process.on("exit", () => rmSync(keyDir, { recursive: true, force: true }));
const producerKey = writeKeyPair(join(keyDir, "producer"));
const workerKey = writeKeyPair(join(keyDir, "worker"));
const trusted = [join(keyDir, "*.pub")];
const encryption = opts.encryption ? [Buffer.from(generateBoxKey()).toString("base64")] : undefined;
/** Signing options as JSON-safe values (the worker process gets them in an environment variable). */
const signingFor = (key: string): SigningOptions => ({
  key,
  trusted,
  ...(encryption !== undefined ? { encryption: encryption.map((k) => new Uint8Array(Buffer.from(k, "base64"))) } : {}),
});

type Mode = "unsigned" | "signed";
type Figure = number | { p50: number; p99: number };

interface Fixture {
  readonly app: App;
  readonly tasks: BenchTasks;
  sent: number;
  /** The node's and the worker's process ids (over TCP). */
  readonly pids?: { readonly node: number; readonly worker: number };
  close(): Promise<void>;
}

interface Scenario {
  readonly name: string;
  readonly unit: "tasks/s" | "ms";
  run(f: Fixture): Promise<Figure>;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const fireAndForgetOf = (n: number, quiet: boolean) => (f: Fixture) =>
  fireAndForget(f, quiet ? f.tasks.quiet : f.tasks.count, n);
const withResultsOf = (n: number) => (f: Fixture) => withResults(f, n);

/** `total` stamp tasks at `perSecond`, paced by the clock; send-to-start times. */
const latency = (perSecond: number, total: number) => async (f: Fixture) => {
  const { toStart } = await pacedLatencies(f, perSecond, total);
  return { p50: percentile(toStart, 0.5), p99: percentile(toStart, 0.99) };
};

const embeddedScenarios: Scenario[] = [
  { name: "fire-and-forget, results stored", unit: "tasks/s", run: fireAndForgetOf(sized(100_000), false) },
  { name: "fire-and-forget, ignoreResult", unit: "tasks/s", run: fireAndForgetOf(sized(150_000), true) },
  { name: "with results awaited (delay + get)", unit: "tasks/s", run: withResultsOf(sized(50_000)) },
  { name: "send-to-start latency at 5,000/s", unit: "ms", run: latency(5_000, 5_000) },
];

const tcpScenarios: Scenario[] = [
  { name: "fire-and-forget, results stored", unit: "tasks/s", run: fireAndForgetOf(sized(40_000), false) },
  { name: "fire-and-forget, ignoreResult", unit: "tasks/s", run: fireAndForgetOf(sized(80_000), true) },
  { name: "with results awaited (delay + get)", unit: "tasks/s", run: withResultsOf(sized(30_000)) },
  { name: "send-to-start latency at 2,000/s", unit: "ms", run: latency(2_000, 4_000) },
];

const embedded = async (mode: Mode): Promise<Fixture> => {
  const app = createApp({
    log: (line) => console.error(`embedded ${mode}: ${line}`),
    ...(mode === "signed" ? { signing: signingFor(producerKey.secretPath) } : {}),
  });
  const tasks = defineTasks(app);
  await app.worker({ concurrency: CONCURRENCY }).start();
  return { app, tasks, sent: 0, close: () => app.close() };
};

const overNode = async (mode: Mode, slug: string): Promise<Fixture> => {
  const dataDir = makeDataDir();
  const node = await startNode({ dataDir }, { nodeArgs: profileArgs(`${slug}-${mode}-node`) });
  let worker: Child;
  try {
    const env = { ...process.env };
    if (mode === "signed")
      env.CELERITY_BENCH_SIGNING = JSON.stringify({
        key: workerKey.secretPath,
        trusted,
        ...(encryption !== undefined ? { encryption: [] } : {}),
      });
    if (mode === "signed" && encryption !== undefined) {
      const boxFile = join(keyDir, "payload.key");
      writeFileSync(boxFile, `${encryption[0]}\n`, { mode: 0o600 });
      env.CELERITY_BENCH_SIGNING = JSON.stringify({ key: workerKey.secretPath, trusted, encryption: [boxFile] });
    }
    worker = await startWorker(node.url, CONCURRENCY, { env, nodeArgs: profileArgs(`${slug}-${mode}-worker`) });
  } catch (error) {
    await node.child.stop();
    throw error;
  }
  const app = createApp({
    broker: node.url,
    log: (line) => console.error(`tcp ${mode} producer: ${line}`),
    ...(mode === "signed" ? { signing: signingFor(producerKey.secretPath) } : {}),
  });
  return {
    app,
    tasks: defineTasks(app),
    sent: 0,
    pids: { node: node.child.pid, worker: worker.pid },
    async close() {
      await app.close();
      await worker.stop();
      await node.child.stop();
      removeDir(dataDir);
    },
  };
};

const fmt = (figure: number) => String(figure).padStart(8);
const ms = (x: number) => `${x.toFixed(3)} ms`;

const slugOf = (name: string) => name.replace(/[^a-z0-9]+/gi, "-").replace(/^-|-$/g, "");

interface CpuMs {
  readonly producer: number;
  readonly node: number;
  readonly worker: number;
}

/** CPU µs per task of the producer (this process), the node and the worker over the timed runs, or "" when the fixture has no processes. */
const cpuNote = (f: Fixture, cpu: CpuMs | undefined, tasks: number) => {
  if (f.pids === undefined || cpu === undefined || tasks === 0) return "";
  const per = (ms: number) => Math.round((ms * 1000) / tasks);
  return ` [producer ${per(cpu.producer)} / node ${per(cpu.node)} / worker ${per(cpu.worker)} µs/task]`;
};

const part = async (
  label: string,
  scenarios: readonly Scenario[],
  make: (mode: Mode, slug: string) => Promise<Fixture>,
) => {
  console.log(`\n${label}`);
  const rows: Record<string, unknown>[] = [];
  for (const scenario of scenarios) {
    if (opts.scenario !== undefined && !scenario.name.includes(opts.scenario)) continue;
    const slug = slugOf(scenario.name);
    const fixtures = { unsigned: await make("unsigned", slug), signed: await make("signed", slug) };
    const cpuOf = (mode: Mode): CpuMs | undefined => {
      const pids = fixtures[mode].pids;
      if (pids === undefined) return undefined;
      const own = process.cpuUsage();
      return { producer: (own.user + own.system) / 1000, node: cpuMsOf(pids.node), worker: cpuMsOf(pids.worker) };
    };
    const cpu: Record<Mode, CpuMs | undefined> = { unsigned: undefined, signed: undefined };
    let profiled = false;
    try {
      const figures: Record<Mode, Figure[]> = { unsigned: [], signed: [] };
      for (const mode of ["unsigned", "signed"] as const) await scenario.run(fixtures[mode]); // warm-up, excluded
      const sentBefore = { unsigned: fixtures.unsigned.sent, signed: fixtures.signed.sent };
      for (let i = 0; i < RUNS; i++) {
        // Alternate which mode goes first, so neither always runs after the other.
        const order: Mode[] = i % 2 === 0 ? ["unsigned", "signed"] : ["signed", "unsigned"];
        for (const mode of order) {
          const before = cpuOf(mode);
          figures[mode].push(await scenario.run(fixtures[mode]));
          const after = cpuOf(mode);
          if (before !== undefined && after !== undefined) {
            const sum = cpu[mode] ?? { producer: 0, node: 0, worker: 0 };
            cpu[mode] = {
              producer: sum.producer + after.producer - before.producer,
              node: sum.node + after.node - before.node,
              worker: sum.worker + after.worker - before.worker,
            };
          }
        }
      }
      const tasksOf = (mode: Mode) => fixtures[mode].sent - sentBefore[mode];
      if (scenario.unit === "tasks/s") {
        const stat = (xs: number[]) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });
        const u = stat(figures.unsigned as number[]);
        const s = stat(figures.signed as number[]);
        const ratio = Math.round((s.median / u.median) * 100);
        console.log(
          `  ${scenario.name.padEnd(40)} unsigned ${fmt(u.median)} (${u.min}–${u.max})${cpuNote(fixtures.unsigned, cpu.unsigned, tasksOf("unsigned"))}  signed ${fmt(s.median)} (${s.min}–${s.max})${cpuNote(fixtures.signed, cpu.signed, tasksOf("signed"))}  tasks/s  signed/unsigned ${ratio}%`,
        );
        rows.push({ scenario: scenario.name, unit: "tasks/s", unsigned: u, signed: s, ratioPercent: ratio });
      } else {
        const pick = (mode: Mode, key: "p50" | "p99") =>
          median((figures[mode] as { p50: number; p99: number }[]).map((x) => x[key]));
        const row = {
          scenario: scenario.name,
          unit: "ms",
          unsigned: { p50: pick("unsigned", "p50"), p99: pick("unsigned", "p99") },
          signed: { p50: pick("signed", "p50"), p99: pick("signed", "p99") },
        };
        console.log(
          `  ${scenario.name.padEnd(40)} unsigned p50 ${ms(row.unsigned.p50)} p99 ${ms(row.unsigned.p99)}  signed p50 ${ms(row.signed.p50)} p99 ${ms(row.signed.p99)}`,
        );
        rows.push(row);
      }
      profiled = profileDir !== undefined && fixtures.unsigned.pids !== undefined;
    } finally {
      await fixtures.unsigned.close();
      await fixtures.signed.close();
    }
    if (profiled && profileDir !== undefined)
      for (const mode of ["unsigned", "signed"] as const)
        for (const role of ["node", "worker"])
          printSelfTimes(
            `${scenario.name}, ${mode} ${role}`,
            join(profileDir, `${slug}-${mode}-${role}.cpuprofile`),
            15,
          );
  }
  return rows;
};

const main = async () => {
  console.log(
    `celerity signing bench: node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? "?"}); ${RUNS} runs per mode, alternating; ` +
      `worker concurrency ${CONCURRENCY}; publishes in batches of ${SEND_BATCH} confirms; signed mode: ed25519 (node:crypto) per batch of up to 128` +
      `${encryption !== undefined ? ", bodies and results sealed (secretbox)" : ""}; load average ${loadavg()
        .map((x) => x.toFixed(2))
        .join(" ")}`,
  );
  const report: Record<string, unknown> = {
    node: process.version,
    cores: cpus().length,
    runs: RUNS,
    encryption: encryption !== undefined,
    loadAverageAtStart: loadavg(),
  };
  if (opts.only === undefined || opts.only === "embedded")
    report.embedded = await part("embedded broker, one process", embeddedScenarios, embedded);
  if (opts.only === undefined || opts.only === "tcp")
    report.tcp = await part("broker node over TCP (durable, fsync always), three processes", tcpScenarios, overNode);
  report.loadAverageAtEnd = loadavg();
  mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
  const file = new URL(`./results/signing-${new Date().toISOString().replace(/[:.]/g, "-")}.json`, import.meta.url);
  writeFileSync(file, JSON.stringify(report, null, 2));
  console.log(
    `\nwrote ${file.pathname}; load average now ${loadavg()
      .map((x) => x.toFixed(2))
      .join(" ")}`,
  );
};

await main();
