/**
 * A flood: a producer that keeps publishing far faster than anything
 * consumes, against a node with a small `--max-messages`. The node must
 * push back (hold confirms) instead of growing: the figure is the node's
 * peak RSS while the flood lasts, next to how many messages it holds, and
 * then that a worker started afterwards runs every message (nothing lost).
 */
import { createApp } from "../../src/index.ts";
import { defineTasks } from "./task-defs.ts";
import { dirBytes, makeDataDir, memoryOf, removeDir, startNode, startWorker, type Child } from "./processes.ts";

export interface FloodOptions {
  readonly total: number;
  readonly maxMessages: number;
  /** Publishes the producer keeps in flight. */
  readonly window: number;
  /** How long the flood presses against the full node before a worker starts. */
  readonly pressMs: number;
  readonly concurrency: number;
  readonly echo: boolean;
}

const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(0);

export const flood = async (options: FloodOptions): Promise<Record<string, unknown>> => {
  const dataDir = makeDataDir();
  const node = await startNode({ dataDir, maxMessages: options.maxMessages }, { echo: options.echo });
  const app = createApp({ broker: node.url, log: (message) => console.error(`producer: ${message}`) });
  const tasks = defineTasks(app);
  let worker: Child | undefined;
  let sampler: NodeJS.Timeout | undefined;
  try {
    await (await tasks.stamp.delay(0)).state();
    const before = memoryOf(node.child.pid);
    let peakRss = before.rss;
    sampler = setInterval(() => (peakRss = Math.max(peakRss, memoryOf(node.child.pid).rss)), 100);
    let sent = 0;
    let confirmed = 0;
    const pump = async () => {
      while (sent < options.total) {
        await tasks.quiet.delay(sent++);
        confirmed++;
      }
    };
    const t0 = performance.now();
    const pumps = Promise.all(Array.from({ length: options.window }, pump));
    await new Promise((resolve) => setTimeout(resolve, options.pressMs));
    const pressed = {
      confirmed,
      sent,
      rss: memoryOf(node.child.pid).rss,
      peakRss,
      stats: await app.broker.stats("celery"),
    };
    worker = await startWorker(node.url, options.concurrency, { echo: options.echo });
    await pumps;
    await (await tasks.reached.delay(options.total)).get({ timeout: 300_000 });
    const seconds = (performance.now() - t0) / 1000;
    clearInterval(sampler);
    const row = {
      scenario: `flood of ${options.total.toLocaleString("en")} publishes against --max-messages ${options.maxMessages.toLocaleString("en")}`,
      window: options.window,
      pressMs: options.pressMs,
      rssBeforeBytes: before.rss,
      peakRssWhilePressedBytes: pressed.peakRss,
      peakRssBytes: peakRss,
      confirmedWhilePressed: pressed.confirmed,
      heldWhilePressed: pressed.stats.ready + pressed.stats.unacked + pressed.stats.delayed,
      logBytesWhilePressed: dirBytes(dataDir),
      allRan: true,
      seconds,
    };
    console.log(
      `${row.scenario.padEnd(66)} after ${options.pressMs / 1000} s of flood with no worker: ${pressed.confirmed.toLocaleString("en")} confirmed, ${row.heldWhilePressed.toLocaleString("en")} held, ` +
        `${options.window.toLocaleString("en")} publishes waiting; node RSS ${mb(before.rss)} MB before, ${mb(pressed.rss)} MB then (peak ${mb(pressed.peakRss)} MB)`,
    );
    console.log(
      `${"".padEnd(66)} a worker then started: all ${options.total.toLocaleString("en")} ran (${seconds.toFixed(1)} s from the first publish); node RSS peak over the whole run ${mb(peakRss)} MB`,
    );
    return row;
  } finally {
    clearInterval(sampler);
    await app.close();
    await worker?.stop();
    await node.child.stop();
    removeDir(dataDir);
  }
};
