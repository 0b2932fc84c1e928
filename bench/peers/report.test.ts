// The peers bench's report: run with `node --import tsx --test bench/peers/report.test.ts`
// (bench/peers stays out of `npm test`, as the harness is a tool, not a test).
import assert from "node:assert/strict";
import { test } from "node:test";
import { markdownTable, median, percentile, stat, svgChart, targetLines, type SystemResult } from "./report.ts";

const rate = (median: number, min = median, max = median) => ({
  kind: "rate" as const,
  tasksPerRun: 1_000,
  runs: [min, median, max],
  stat: { median, min, max },
});
const latency = (p50: number, p99: number) => ({
  kind: "latency" as const,
  tasksPerRun: 2_000,
  rate: 500,
  p50: { median: p50, min: p50, max: p50 },
  p99: { median: p99, min: p99, max: p99 },
});

const systems: SystemResult[] = [
  {
    id: "celerity-node",
    label: "celerity node",
    setup: "",
    versions: {},
    cells: { backlog: rate(100_000, 90_000, 110_000), latency: latency(0.2, 3) },
  },
  {
    id: "bullmq",
    label: "BullMQ (Redis)",
    setup: "",
    versions: {},
    cells: { backlog: rate(5_000), latency: latency(0.6, 40) },
  },
  {
    id: "celery-redis",
    label: "Celery (Redis)",
    setup: "",
    versions: {},
    cells: { backlog: rate(8_000), latency: latency(1, 2) },
  },
  {
    id: "bee-queue",
    label: "bee-queue (Redis)",
    setup: "",
    versions: {},
    cells: { chain: { kind: "skipped", reason: "no workflows" } },
  },
  {
    id: "celery-rabbitmq",
    label: "Celery (RabbitMQ)",
    setup: "",
    versions: {},
    skipped: "RabbitMQ 127.0.0.1:5672 is not reachable",
    cells: {},
  },
];
const workloads = [
  { id: "backlog", label: "process a backlog" },
  { id: "chain", label: "chain of 10" },
  { id: "latency", label: "latency" },
];

test("median, min and max of the runs; percentiles of sorted samples", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
  assert.deepEqual(stat([5, 1, 9]), { median: 5, min: 1, max: 9 });
  assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.5), 6);
  assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.99), 10);
});

test("the table has a column per system that ran, says why a workload was not run, and names skipped systems", () => {
  const table = markdownTable(systems, workloads);
  const [header, , backlog, chain, lat] = table.split("\n");
  assert.equal(header, "| workload | celerity node | BullMQ (Redis) | Celery (Redis) | bee-queue (Redis) |");
  assert.match(backlog, /\| process a backlog \| 100,000 \(90k–110k\) \| 5,000 \(5,000–5,000\) \|/);
  assert.match(chain, /n\/a: no workflows/);
  assert.match(lat, /p50 0\.20 \/ p99 3\.00 ms/);
  assert.match(table, /Celery \(RabbitMQ\): skipped, RabbitMQ 127\.0\.0\.1:5672 is not reachable/);
});

test("the target lines say met or short, and lower or not, from the medians", () => {
  const lines = targetLines(systems).join("\n");
  assert.match(lines, /processing a backlog: celerity node 20\.0x BullMQ \(Redis\) \(target 10x\): met/);
  assert.match(lines, /processing a backlog: celerity node 12\.5x Celery \(Redis\) \(target 20x\): short/);
  assert.match(lines, /celerity node 3\.00 ms vs BullMQ \(Redis\) 40\.0 ms: lower/);
  assert.match(lines, /celerity node 3\.00 ms vs Celery \(Redis\) 2\.00 ms: not lower/);
});

test("the chart is one SVG document with a bar per figure and the labels escaped", () => {
  const svg = svgChart(
    [...systems, { id: "x", label: "a<b", setup: "", versions: {}, cells: { backlog: rate(10) } }],
    workloads,
    "2 cores & more",
  );
  assert.match(svg, /^<svg [^>]*>/);
  assert.match(svg, /<\/svg>$/);
  assert.match(svg, /2 cores &amp; more/);
  assert.match(svg, /a&lt;b/);
  assert.doesNotMatch(svg, /NaN|undefined/);
  // Four backlog bars (the skipped system has none), three latency pairs.
  assert.equal((svg.match(/<title>[^<]*process a backlog/g) ?? []).length, 4);
});
