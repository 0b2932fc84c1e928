/**
 * Periodic tasks at scale: 10,000 schedules.
 *
 * - Next instants: time to compute the next instant of each of 10,000
 *   schedules, per schedule: intervals; cron expressions across five time
 *   zones, all different; and 10,000 schedules sharing 100 expressions (the
 *   answers are memoized). And the time to define (validate and parse) one.
 * - CPU per second of beat: a leading beat with a real clock for a few
 *   seconds, CPU time (user + system) of the process per wall-clock second,
 *   (a) quiet: 10,000 daily cron schedules, none due, the beat only renewing
 *   its lease and looking at the schedules; (b) busy: 10,000 schedules every
 *   10 s, their instants spread over the 10 s, so 1,000 runs a second
 *   recorded and sent (and consumed, by a consumer in the same process). Each on the embedded
 *   broker, and over TCP to a broker node in the same process (so the
 *   figure includes the node's share).
 *
 * Medians over the rounds, with min and max.
 *
 *   npm run bench:beat                 # 3 rounds
 *   npm run bench:beat -- --runs 5
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { createApp, type App, type ScheduleEntry } from "../src/index.ts";
import { BrokerNode, serveResults, serveSchedules } from "../src/node.ts";
import { defineSchedule, type When } from "../runtime/schedule/schedule-definition.ts";
import { nextInstant } from "../runtime/schedule/schedule-instants.ts";

const argRuns = process.argv.indexOf("--runs");
const RUNS = argRuns > 0 ? Number(process.argv[argRuns + 1]) : 3;
const SCHEDULES = 10_000;
const WINDOW_MS = 10_000;
const ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Sydney"];

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const signature = { task: "job", args: [1, "two"], options: {} };

/** µs per schedule to compute the next instant of each of `entries`, after `now`. */
const timeNext = (entries: readonly ScheduleEntry[], now: number): number => {
  const start = performance.now();
  let sink = 0;
  for (const entry of entries) sink += nextInstant(entry, now) ?? 0;
  if (sink === 1) console.log(sink);
  return ((performance.now() - start) * 1_000) / entries.length;
};

const nextInstants = (round: number): { define: number; interval: number; distinct: number; shared: number } => {
  const define = (when: (i: number) => When) =>
    Array.from({ length: SCHEDULES }, (_, i) => defineSchedule(`s${i}`, when(i), signature));
  const t0 = performance.now();
  // 10,000 different expressions (minute, hour, day of month), across five zones.
  const distinct = define((i) => ({
    cron: `${i % 60} ${Math.floor(i / 60) % 24} ${1 + (Math.floor(i / 1_440) % 28)} * *`,
    tz: ZONES[i % ZONES.length],
  }));
  const defineUs = ((performance.now() - t0) * 1_000) / SCHEDULES;
  const shared = define((i) => ({ cron: `${i % 20} 3 * * *`, tz: ZONES[i % ZONES.length] }));
  const intervals = define((i) => ({ every: `${10 + (i % 50)}s` }));
  // A new instant each round, so no round reads answers an earlier one computed.
  const now = Date.now() + round * 3_600_000;
  return {
    define: defineUs,
    interval: timeNext(intervals, now),
    distinct: timeNext(distinct, now),
    shared: timeNext(shared, now),
  };
};

type Load = "quiet" | "busy";

const cpuPerSecond = async (load: Load, overNode: boolean): Promise<number> => {
  const node = overNode ? await BrokerNode.start({ port: 0, log: () => {} }) : undefined;
  if (node !== undefined) {
    serveResults(node);
    serveSchedules(node);
  }
  const app: App = createApp({ ...(node !== undefined ? { broker: node.url } : {}), log: () => {} });
  const queue = `bench-beat-${load}`;
  for (let i = 0; i < SCHEDULES; i++) {
    // Busy: every 10 s, the schedules' instants spread evenly over the 10 s (each counted from its own start).
    const when: When = load === "quiet" ? { cron: `${i % 60} 3 * * *`, tz: ZONES[i % ZONES.length] } : { every: "10s" };
    app.schedule(
      `s${i}`,
      when,
      { ...signature, options: { queue } },
      { catchUp: "skip", ...(load === "busy" ? { start: i } : {}) },
    );
  }
  const consumer = await app.broker.consume(queue, (delivery) => consumer.ack(delivery.deliveryTag), {
    prefetch: 1_000,
  });
  const beat = app.beat({ leaseMs: 3_000, graceMs: 60_000 });
  await beat.start();
  // Past the first tick (which stores the schedules): measure the steady state.
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((resolve) => setTimeout(resolve, WINDOW_MS));
  const cpu = process.cpuUsage(cpu0);
  const wall = performance.now() - t0;
  await beat.stop();
  await consumer.cancel();
  await app.close();
  await node?.stop();
  return (cpu.user + cpu.system) / 1_000 / (wall / 1_000);
};

const rows: { scenario: string; unit: string; median: number; min: number; max: number }[] = [];
const report = (name: string, unit: string, xs: readonly number[]) => {
  rows.push({ scenario: name, unit, median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });
  console.log(
    `${name.padEnd(52)} ${median(xs)
      .toFixed(unit === "µs" ? 2 : 1)
      .padStart(9)} ${unit}  (min ${Math.min(...xs).toFixed(2)}, max ${Math.max(...xs).toFixed(2)})`,
  );
};

console.log(
  `beat bench: ${SCHEDULES} schedules, ${RUNS} rounds, ${cpus().length} cpus, load ${loadavg()[0].toFixed(2)}`,
);
const instants = Array.from({ length: RUNS }, (_, round) => nextInstants(round));
report(
  "define a schedule (validate, parse cron)",
  "µs",
  instants.map((r) => r.define),
);
report(
  "next instant, interval",
  "µs",
  instants.map((r) => r.interval),
);
report(
  "next instant, cron in a time zone, all different",
  "µs",
  instants.map((r) => r.distinct),
);
report(
  "next instant, cron in a time zone, 100 shared",
  "µs",
  instants.map((r) => r.shared),
);
for (const overNode of [false, true]) {
  for (const load of ["quiet", "busy"] as const) {
    const xs: number[] = [];
    for (let i = 0; i < RUNS; i++) xs.push(await cpuPerSecond(load, overNode));
    report(
      `CPU per second of beat, ${load}${load === "busy" ? " (1,000 runs/s)" : ""}, ${overNode ? "node" : "embedded"}`,
      "ms/s",
      xs,
    );
  }
}

mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
const file = new URL(`./results/beat-${new Date().toISOString().replace(/[:.]/g, "-")}.json`, import.meta.url);
writeFileSync(
  file,
  JSON.stringify(
    { node: process.version, cores: cpus().length, load: loadavg()[0], schedules: SCHEDULES, rounds: RUNS, rows },
    null,
    2,
  ),
);
console.log(`\nwrote ${file.pathname}`);
