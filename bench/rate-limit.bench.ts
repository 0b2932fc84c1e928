/**
 * Rate limiting: what a limit costs the tasks it does not limit, and how
 * close the achieved rate comes to the limit.
 *
 * - Overhead: fire-and-forget throughput of an unlimited task type on the
 *   embedded broker, (a) alone, (b) with a limited task type registered but
 *   idle, (c) sharing the worker and its queue with a backlog of limited
 *   tasks waiting for tokens (held by the worker and handed back to the
 *   queue). The three are interleaved round by round, so they share the
 *   machine's load (in a rotating order); each round's ratios b/a and c/a are
 *   reported as medians.
 * - Accuracy: with demand always present, starts per second over a window
 *   that begins a second after the last send (the burst long spent), against the limit: embedded (two workers, one global
 *   bucket; and scope "worker"), and over TCP (a broker node and two worker
 *   apps on their own connections, one global bucket kept by the node).
 *
 *   npm run bench:rate                 # 5 rounds
 *   npm run bench:rate -- --runs 3
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { createApp, type App } from "../src/index.ts";
import { BrokerNode, serveRateLimits, serveResults } from "../src/node.ts";
import type { RateLimitOptions } from "../src/index.ts";

const argRuns = process.argv.indexOf("--runs");
const RUNS = argRuns > 0 ? Number(process.argv[argRuns + 1]) : 5;
const TASKS = 100_000;
const SEND_BATCH = 1_000;
const BACKLOG = 1_000;

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

// ---------------------------------------------------------------------------
// Overhead on an unlimited task type.

type Variant = "alone" | "limited type idle" | "limited backlog waiting";

const throughput = async (variant: Variant): Promise<number> => {
  const app = createApp();
  const counter = { done: 0, wake: () => {} };
  const count = app.task("count", () => {
    if (++counter.done === TASKS) counter.wake();
  });
  if (variant !== "alone") {
    const limited = app.task("limited", () => {}, { rateLimit: "10/s" });
    if (variant === "limited backlog waiting") for (let i = 0; i < BACKLOG; i++) await limited.delay();
  }
  await app.worker({ concurrency: 64 }).start();
  // Warm-up, excluded.
  counter.done = TASKS - 10_000;
  let finished = new Promise<void>((resolve) => (counter.wake = resolve));
  for (let i = 0; i < 10_000; i += SEND_BATCH)
    await Promise.all(Array.from({ length: SEND_BATCH }, () => count.delay()));
  await finished;
  counter.done = 0;
  finished = new Promise<void>((resolve) => (counter.wake = resolve));
  const t0 = performance.now();
  for (let i = 0; i < TASKS; i += SEND_BATCH)
    await Promise.all(Array.from({ length: SEND_BATCH }, () => count.delay()));
  await finished;
  const perS = Math.round((TASKS / (performance.now() - t0)) * 1_000);
  await app.close();
  return perS;
};

// ---------------------------------------------------------------------------
// Accuracy of the achieved rate.

interface AccuracyCase {
  readonly name: string;
  readonly limit: RateLimitOptions & { readonly rate: string };
  readonly perSecond: number;
  /** What the limit allows over the whole run with two workers (scope "worker" doubles it). */
  readonly expectedPerSecond: number;
  readonly over: "embedded" | "tcp";
}

const ACCURACY: AccuracyCase[] = [
  { name: "embedded, global 10/s", limit: { rate: "10/s" }, perSecond: 10, expectedPerSecond: 10, over: "embedded" },
  {
    name: "embedded, global 100/s",
    limit: { rate: "100/s" },
    perSecond: 100,
    expectedPerSecond: 100,
    over: "embedded",
  },
  {
    name: "embedded, global 1000/s",
    limit: { rate: "1000/s" },
    perSecond: 1_000,
    expectedPerSecond: 1_000,
    over: "embedded",
  },
  {
    name: "embedded, global 6000/m",
    limit: { rate: "6000/m" },
    perSecond: 100,
    expectedPerSecond: 100,
    over: "embedded",
  },
  {
    name: "embedded, worker 50/s (2 workers)",
    limit: { rate: "50/s", scope: "worker" },
    perSecond: 50,
    expectedPerSecond: 100,
    over: "embedded",
  },
  { name: "tcp node, global 10/s", limit: { rate: "10/s" }, perSecond: 10, expectedPerSecond: 10, over: "tcp" },
  { name: "tcp node, global 100/s", limit: { rate: "100/s" }, perSecond: 100, expectedPerSecond: 100, over: "tcp" },
  {
    name: "tcp node, global 1000/s",
    limit: { rate: "1000/s" },
    perSecond: 1_000,
    expectedPerSecond: 1_000,
    over: "tcp",
  },
];

/** Seconds of steady demand measured per case (after the burst). */
const ACCURACY_SECONDS = 3;

const achievedRate = async (c: AccuracyCase): Promise<number> => {
  const node = c.over === "tcp" ? await BrokerNode.start({ port: 0, log: () => {} }) : undefined;
  if (node !== undefined) {
    serveResults(node);
    serveRateLimits(node);
  }
  const starts: number[] = [];
  const apps: App[] = [];
  const connect = () => {
    const app = node === undefined ? createApp() : createApp({ broker: node.url, log: () => {} });
    apps.push(app);
    app.task("limited", () => void starts.push(performance.now()), { rateLimit: c.limit, ignoreResult: true });
    return app;
  };
  // Two workers: with the embedded broker, two workers of one app (sharing its broker); over TCP, two apps.
  const first = connect();
  const second = node === undefined ? first : connect();
  await first.worker({ concurrency: 8 }).start();
  await second.worker({ concurrency: 8 }).start();
  const producer = node === undefined ? first : connect();
  // Demand for longer than the run: the bucket is empty (the burst spent) a second after the sends.
  const total = Math.ceil(c.expectedPerSecond * (ACCURACY_SECONDS + 5)) + 100;
  for (let i = 0; i < total; i += SEND_BATCH) {
    await Promise.all(
      Array.from({ length: Math.min(SEND_BATCH, total - i) }, () =>
        producer.sendTask("limited", [], { ignoreResult: true }),
      ),
    );
  }
  const from = performance.now() + 1_000;
  const until = from + ACCURACY_SECONDS * 1_000;
  await new Promise((resolve) => setTimeout(resolve, until - performance.now() + 100));
  const inWindow = starts.filter((at) => at >= from && at < until).length;
  for (const app of apps) await app.close();
  await node?.stop();
  return inWindow / ACCURACY_SECONDS;
};

// ---------------------------------------------------------------------------

const main = async () => {
  const load = () =>
    loadavg()
      .map((x) => x.toFixed(2))
      .join(" ");
  console.log(
    `celerity rate limit bench: node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), ${Math.round(totalmem() / 2 ** 30)} GiB, ${RUNS} rounds, load ${load()}`,
  );

  const variants: Variant[] = ["alone", "limited type idle", "limited backlog waiting"];
  const figures = new Map<Variant, number[]>(variants.map((v) => [v, []]));
  const ratios = { idle: [] as number[], backlog: [] as number[] };
  for (let round = 0; round < RUNS; round++) {
    const row = new Map<Variant, number>();
    // Each round in a different order, so that no variant always runs first (or last) on a loaded machine.
    for (const variant of [...variants.slice(round % 3), ...variants.slice(0, round % 3)]) {
      const perS = await throughput(variant);
      row.set(variant, perS);
      figures.get(variant)!.push(perS);
    }
    ratios.idle.push(row.get("limited type idle")! / row.get("alone")!);
    ratios.backlog.push(row.get("limited backlog waiting")! / row.get("alone")!);
  }
  console.log(
    `\nunlimited task type, fire-and-forget (${TASKS} tasks, concurrency 64; backlog: ${BACKLOG} tasks limited to 10/s)`,
  );
  for (const variant of variants) {
    const xs = figures.get(variant)!;
    console.log(
      `  ${variant.padEnd(26)} ${String(median(xs)).padStart(8)} tasks/s  (min ${Math.min(...xs)}, max ${Math.max(...xs)})`,
    );
  }
  const showRatio = (xs: number[]) =>
    `${median(xs).toFixed(3)} (min ${Math.min(...xs).toFixed(3)}, max ${Math.max(...xs).toFixed(3)})`;
  console.log(`  ratio idle / alone         ${showRatio(ratios.idle)}`);
  console.log(`  ratio backlog / alone      ${showRatio(ratios.backlog)}`);

  console.log(
    `\nachieved rate with demand always present (${ACCURACY_SECONDS} s, from 1 s after the last send; two workers)`,
  );
  const accuracy: Record<string, unknown>[] = [];
  for (const c of ACCURACY) {
    const achieved = await achievedRate(c);
    const ratio = achieved / c.expectedPerSecond;
    accuracy.push({ case: c.name, limitPerSecond: c.expectedPerSecond, achievedPerSecond: achieved, ratio });
    console.log(
      `  ${c.name.padEnd(36)} limit ${String(c.expectedPerSecond).padStart(5)}/s  achieved ${achieved.toFixed(1).padStart(7)}/s  (${(ratio * 100).toFixed(1)}%)`,
    );
  }
  console.log(`load after: ${load()}`);

  mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
  const file = new URL(`./results/rate-limit-${new Date().toISOString().replace(/[:.]/g, "-")}.json`, import.meta.url);
  writeFileSync(
    file,
    JSON.stringify(
      {
        node: process.version,
        cores: cpus().length,
        rounds: RUNS,
        overhead: Object.fromEntries(variants.map((v) => [v, figures.get(v)])),
        ratios,
        accuracy,
      },
      null,
      2,
    ),
  );
  console.log(`\nwrote ${file.pathname}`);
};

await main();
