/**
 * The monitor under load: its state following 10,000 tasks/s of events
 * (task-sent, -received, -started, then -succeeded or, one in a hundred,
 * -failed with a traceback: four events per task) for a minute, in 100 ms
 * batches, with its memory sampled each second; then, while the stream goes
 * on and with 100,000 tasks known, the time headless Chromium takes to show
 * the dashboard's first render (the overview, from the first live update;
 * the task list, from the API). The events are made in this process and
 * folded straight into the state: what is measured is the monitor's own
 * work and memory, not the broker's delivery of the stream.
 *
 *   npm run bench:monitor                     # 60 s at 10,000 tasks/s
 *   npm run bench:monitor -- --seconds 20 --rate 5000
 *
 * When the machine cannot keep the rate, the rate achieved is reported.
 * Render times need Chromium (CHROMIUM_PATH, default /usr/bin/chromium);
 * without it they are skipped, saying so.
 */
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { createApp } from "../runtime/app.ts";
import type { TaskEvent } from "../runtime/events/event-types.ts";
import { serveFetch } from "../runtime/monitor/fetch-server.ts";
import { createMonitorHandler } from "../runtime/monitor/monitor-handler.ts";
import { MonitorState } from "../runtime/monitor/monitor-state.ts";

const option = (name: string, fallback: number): number => {
  const at = process.argv.indexOf(`--${name}`);
  if (at < 0) return fallback;
  const value = Number(process.argv[at + 1]);
  if (!(value > 0)) throw new Error(`--${name} must be a positive number, got '${process.argv[at + 1]}'`);
  return value;
};

const SECONDS = option("seconds", 60);
const RATE = option("rate", 10_000);
const MAX_TASKS = option("max-tasks", 100_000);
const RENDER_RUNS = option("render-runs", 5);
const TICK_MS = 100;
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const MB = 1024 * 1024;

const NAMES = ["orders.charge", "orders.ship", "emails.send", "images.resize", "reports.build"];
const TRACEBACK = `CardDeclinedError: card declined\n${"    at charge (/srv/app/tasks/orders.ts:42:11)\n".repeat(12)}`;
const common = { utcoffset: 0, pid: 4242, clock: 0 };

/** The four events of one task, as a worker and a producer would send them. */
const eventsOfTask = (i: number, seconds: number): TaskEvent[] => {
  const uuid = randomUUID();
  const name = NAMES[i % NAMES.length];
  const hostname = `worker-${i % 8}@bench`;
  const failed = i % 100 === 0;
  return [
    {
      ...common,
      type: "task-sent",
      hostname: "producer@bench",
      timestamp: seconds,
      uuid,
      name,
      args: `[${i},"customer-${i % 977}",{"amount":${i % 10_000},"currency":"EUR"}]`,
      kwargs: "{}",
      retries: 0,
      eta: null,
      expires: null,
      queue: "celery",
      exchange: "",
      routing_key: "celery",
      root_id: uuid,
      parent_id: null,
    },
    {
      ...common,
      type: "task-received",
      hostname,
      timestamp: seconds,
      uuid,
      name,
      args: "[…]",
      kwargs: "{}",
      retries: 0,
      eta: null,
      expires: null,
      root_id: uuid,
      parent_id: null,
    },
    { ...common, type: "task-started", hostname, timestamp: seconds, uuid, name },
    failed
      ? {
          ...common,
          type: "task-failed",
          hostname,
          timestamp: seconds,
          uuid,
          name,
          exception: 'CardDeclinedError("card declined")',
          traceback: TRACEBACK,
        }
      : {
          ...common,
          type: "task-succeeded",
          hostname,
          timestamp: seconds,
          uuid,
          name,
          result: `{"ok":true,"id":${i}}`,
          runtime: 0.002 + (i % 50) / 1000,
        },
  ];
};

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? Number.NaN : sorted[Math.floor(sorted.length / 2)];
};

const collect = (global as { gc?: () => void }).gc;
/** Memory now; after a full collection when `settled` (a collection of a large heap takes long: every 10 s only). */
const memory = (settled = false) => {
  if (settled) collect?.();
  const usage = process.memoryUsage();
  return { rss: usage.rss / MB, heap: usage.heapUsed / MB };
};

/** Time from navigation to the first render of the overview and of the task list, `runs` times each. */
const measureRenders = async (url: string, runs: number): Promise<{ overview: number[]; tasks: number[] } | string> => {
  if (!existsSync(CHROMIUM)) return `Chromium is not at ${CHROMIUM}: render times skipped`;
  const { default: puppeteer } = await import("puppeteer-core");
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu"],
  });
  const overview: number[] = [];
  const tasks: number[] = [];
  try {
    for (let run = 0; run < runs; run++) {
      for (const [view, selector, into] of [
        ["#/", "#state-counts .card", overview],
        ["#/tasks", "#tasks tbody tr[data-task-id]", tasks],
      ] as const) {
        const page = await browser.newPage();
        const t0 = performance.now();
        await page.goto(`${url}/${view}`);
        await page.waitForSelector(selector, { timeout: 30_000 });
        into.push(performance.now() - t0);
        await page.close();
      }
    }
  } finally {
    await browser.close();
  }
  return { overview, tasks };
};

const main = async () => {
  const state = new MonitorState({ maxTasks: MAX_TASKS });
  const app = createApp({ log: () => {} });
  const monitor = createMonitorHandler(app, state);
  const server = await serveFetch(monitor.handle, { host: "127.0.0.1", port: 0 });
  const perTick = Math.round((RATE * TICK_MS) / 1000);
  const start = memory(true);
  const samples: { second: number; rss: number; heap: number; known: number }[] = [];
  let sent = 0;
  let applyMs = 0;
  let foldCpuUs = 0;
  let boundAt: { second: number; rss: number; heap: number } | undefined;
  let renders: Awaited<ReturnType<typeof measureRenders>> | undefined;
  let rendering: Promise<void> | undefined;
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  console.log(
    `monitor bench: ${RATE} tasks/s (${RATE * 4} events/s) for ${SECONDS} s, at most ${MAX_TASKS} tasks kept; gc ${collect === undefined ? "not exposed (run with --expose-gc for steadier figures)" : "before the samples every 10 s"}`,
  );
  for (let tick = 0; tick < (SECONDS * 1000) / TICK_MS; tick++) {
    const due = t0 + tick * TICK_MS;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const seconds = Date.now() / 1000;
    const batch: TaskEvent[] = [];
    for (let i = 0; i < perTick; i++) batch.push(...eventsOfTask(sent + i, seconds));
    // Only the folding is timed: making the events is the bench's work, not the monitor's.
    const a0 = performance.now();
    const f0 = process.cpuUsage();
    for (const event of batch) state.apply(event);
    const folded = process.cpuUsage(f0);
    foldCpuUs += folded.user + folded.system;
    sent += perTick;
    applyMs += performance.now() - a0;
    if ((tick + 1) % (1000 / TICK_MS) === 0) {
      const second = (tick + 1) / (1000 / TICK_MS);
      const sample = { second, ...memory(second % 10 === 0), known: state.tasks.size };
      samples.push(sample);
      if (boundAt === undefined && state.tasks.size >= MAX_TASKS && second % 10 === 0) boundAt = sample;
      if (second % 10 === 0)
        console.log(
          `  ${second} s: ${state.tasks.size} tasks known, rss ${sample.rss.toFixed(0)} MB, heap ${sample.heap.toFixed(0)} MB`,
        );
      // Halfway, with the bound reached, the page is loaded while the stream goes on.
      if (rendering === undefined && second >= SECONDS / 2 && state.tasks.size >= Math.min(MAX_TASKS, sent))
        rendering = measureRenders(server.url, RENDER_RUNS).then((result) => void (renders = result));
    }
  }
  const wallS = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(c0);
  await rendering;
  const end = memory(true);
  const afterBound = samples.filter((sample) => boundAt !== undefined && sample.second >= boundAt.second);
  console.log("");
  console.log(
    `rate achieved: ${Math.round(sent / wallS)} tasks/s (${Math.round((sent * 4) / wallS)} events/s) over ${wallS.toFixed(1)} s`,
  );
  console.log(
    `cost of folding: ${(foldCpuUs / sent).toFixed(1)} µs CPU per task (${((foldCpuUs / sent) * (RATE / 1e6) * 100).toFixed(1)}% of a core at ${RATE} tasks/s), ${((applyMs / sent) * 1000).toFixed(1)} µs wall; the whole process (making the events, the server, the page's requests): ${((cpu.user + cpu.system) / sent).toFixed(1)} µs CPU per task`,
  );
  console.log(
    `rss: start ${start.rss.toFixed(0)} MB, end ${end.rss.toFixed(0)} MB, max ${Math.max(...samples.map((s) => s.rss)).toFixed(0)} MB`,
  );
  if (boundAt !== undefined) {
    const rssAfter = afterBound.map((s) => s.rss);
    const heapAfter = afterBound.filter((s) => s.second % 10 === 0).map((s) => s.heap);
    console.log(
      `bound of ${MAX_TASKS} tasks reached at ${boundAt.second} s (rss ${boundAt.rss.toFixed(0)} MB, heap ${boundAt.heap.toFixed(0)} MB); after it, for ${SECONDS - boundAt.second} s: rss ${Math.min(...rssAfter).toFixed(0)}–${Math.max(...rssAfter).toFixed(0)} MB, heap ${Math.min(...heapAfter).toFixed(0)}–${Math.max(...heapAfter).toFixed(0)} MB; growth from the bound to the end: rss ${(end.rss - boundAt.rss).toFixed(0)} MB, heap ${(end.heap - boundAt.heap).toFixed(0)} MB`,
    );
  } else console.log(`the bound of ${MAX_TASKS} tasks was not reached (${state.tasks.size} known)`);
  if (renders === undefined)
    console.log("render times: not measured (the run was too short to reach the bound by its middle)");
  else if (typeof renders === "string") console.log(`render times: ${renders}`);
  else
    console.log(
      `first render with ${state.tasks.size} tasks known, while following the stream (median of ${RENDER_RUNS}): overview ${median(renders.overview).toFixed(0)} ms, task list ${median(renders.tasks).toFixed(0)} ms (all runs: ${renders.overview.map((ms) => ms.toFixed(0)).join(", ")} / ${renders.tasks.map((ms) => ms.toFixed(0)).join(", ")})`,
    );
  monitor.live.close();
  await server.close();
  await app.close();
};

await main();
