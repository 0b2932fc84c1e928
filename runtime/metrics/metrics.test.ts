import assert from "node:assert/strict";
import { connect } from "node:net";
import { describe, it, type TestContext } from "node:test";
import { Registry, register as globalRegistry } from "prom-client";
import { createEmbeddedBroker } from "../../broker/embedded/embedded-broker.ts";
import { BrokerNode } from "../../broker/node/node-server.ts";
import { skipUnless } from "../../tests/support/prerequisites.ts";
import { eventually, scaled } from "../../tests/support/waits.ts";
import { createApp, type App } from "../app.ts";
import { startMonitor } from "../monitor/start-monitor.ts";
import { serveResults } from "../results/result-service.ts";
import { collectMetrics, type AppMetrics } from "./app-metrics.ts";
import { MetricsOptionError } from "./metrics-errors.ts";
import { createMetricsHandler } from "./metrics-handler.ts";
import { serveMetrics } from "./metrics-server.ts";

const redisUp = await new Promise<boolean>((resolve) => {
  const socket = connect(6379, "127.0.0.1");
  socket.once("connect", () => (socket.destroy(), resolve(true)));
  socket.once("error", () => resolve(false));
});

interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/**
 * Prometheus's text exposition format, read strictly: every sample belongs
 * to a family announced by HELP and TYPE lines, names and label sets are
 * well formed, values are numbers. Throws naming the line that is not.
 */
const parseExposition = (text: string): { types: Map<string, string>; samples: Sample[] } => {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  const lines = text.split("\n");
  lines.forEach((line, i) => {
    if (line === "") return;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/.exec(line);
    if (meta !== null) {
      if (meta[1] === "TYPE") {
        assert.match(meta[3], /^(counter|gauge|histogram|summary|untyped)$/, `line ${i + 1}: ${line}`);
        types.set(meta[2], meta[3]);
      }
      return;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(sample !== null, `line ${i + 1} is not a sample: ${line}`);
    const [, name, labelText, valueText] = sample;
    const family = [...types.keys()].find(
      (family) =>
        name === family ||
        (types.get(family) === "histogram" &&
          /^_(bucket|sum|count)$/.test(name.slice(family.length)) &&
          name.startsWith(family)),
    );
    assert.ok(family !== undefined, `line ${i + 1}: sample ${name} has no TYPE line before it`);
    const labels: Record<string, string> = {};
    if (labelText !== undefined && labelText !== "") {
      for (const pair of labelText.match(/[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"/g) ?? []) {
        const eq = pair.indexOf("=");
        labels[pair.slice(0, eq)] = pair.slice(eq + 2, -1);
      }
      assert.equal(
        Object.entries(labels)
          .map(([key, value]) => `${key}="${value}"`)
          .join(","),
        labelText,
        `line ${i + 1}: malformed labels`,
      );
    }
    const value = valueText === "+Inf" ? Infinity : valueText === "-Inf" ? -Infinity : Number(valueText);
    assert.ok(!Number.isNaN(value), `line ${i + 1}: value ${valueText} is not a number`);
    samples.push({ name, labels, value });
  });
  return { types, samples };
};

/** Scrape through the fetch handler, as Prometheus would. */
const scrape = async (metrics: AppMetrics | App) => {
  const response = await createMetricsHandler(metrics)(new Request("http://localhost/metrics"));
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  return parseExposition(await response.text());
};

const readSample = (
  samples: readonly Sample[],
  name: string,
  labels: Record<string, string> = {},
): number | undefined =>
  samples.find(
    (sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
  )?.value;

/** Scrape until `name` with `labels` reads `expected`; fails with what it last read. */
const scrapeUntil = async (
  metrics: AppMetrics,
  name: string,
  labels: Record<string, string>,
  expected: number,
): Promise<Sample[]> => {
  let last: Sample[] = [];
  await eventually(
    async () => {
      last = (await scrape(metrics)).samples;
      return readSample(last, name, labels) === expected;
    },
    { what: `${name}${JSON.stringify(labels)} to read ${expected}`, timeoutMs: scaled(5_000), intervalMs: 20 },
  ).catch((error: Error) => {
    throw new Error(`${error.message}; last read ${readSample(last, name, labels)}`);
  });
  return last;
};

const appWithTasks = (t: TestContext, broker?: string) => {
  const app = createApp({ log: () => {}, ...(broker === undefined ? {} : { broker }) });
  t.after(() => app.close());
  const add = app.task("add", (x: number, y: number) => x + y);
  const fail = app.task("fail", () => {
    throw new Error("card declined");
  });
  const slow = app.task("slow", () => new Promise((resolve) => setTimeout(resolve, 1_000)));
  return { app, add, fail, slow };
};

describe("metrics fed by the event stream", () => {
  it("counts tasks by name and state, with run times, workers and the events' lag", async (t) => {
    const { app, add, fail } = appWithTasks(t);
    const metrics = await collectMetrics(app);
    const worker = app.worker({ concurrency: 2, events: true });
    await worker.start();
    await (await add.delay(1, 2)).get({ timeout: 5_000 });
    await (await add.delay(3, 4)).get({ timeout: 5_000 });
    await assert.rejects((await fail.delay()).get({ timeout: 5_000 }));
    const samples = await scrapeUntil(metrics, "celerity_tasks_total", { task: "fail", state: "failed" }, 1);
    assert.equal(readSample(samples, "celerity_tasks_total", { task: "add", state: "succeeded" }), 2);
    assert.equal(readSample(samples, "celerity_tasks_total", { task: "add", state: "received" }), 2);
    assert.equal(readSample(samples, "celerity_tasks_total", { task: "add", state: "started" }), 2);
    assert.equal(readSample(samples, "celerity_tasks_total", { task: "add", state: "failed" }), undefined);
    assert.equal(readSample(samples, "celerity_task_runtime_seconds_count", { task: "add" }), 2);
    assert.equal(readSample(samples, "celerity_task_runtime_seconds_count", { task: "fail" }), undefined);
    assert.equal(readSample(samples, "celerity_workers_online"), 1);
    assert.equal(readSample(samples, "celerity_worker_active_tasks", { worker: worker.name }), 0);
    const lag = readSample(samples, "celerity_events_lag_seconds");
    assert.ok(lag !== undefined && lag >= 0 && lag < 5, `events lag ${lag}`);
    await worker.stop();
    await scrapeUntil(metrics, "celerity_workers_online", {}, 0);
  });

  it("counts sent tasks when the producing app sends events", async (t) => {
    const app = createApp({ log: () => {}, events: true });
    t.after(() => app.close());
    const add = app.task("add", (x: number, y: number) => x + y);
    const metrics = await collectMetrics(app);
    await add.delay(1, 1);
    await add.delay(2, 2);
    await scrapeUntil(metrics, "celerity_tasks_total", { task: "add", state: "sent" }, 2);
  });

  it("fills the run-time histogram's buckets cumulatively, by how long each successful run took", async (t) => {
    const { app, add, slow } = appWithTasks(t);
    // Bounds far from both runs (an add takes microseconds, slow a second), so a loaded machine cannot move one.
    const metrics = await collectMetrics(app, { runtimeBuckets: [0.5, 10] });
    await app.worker({ concurrency: 2, events: true }).start();
    await (await add.delay(1, 2)).get({ timeout: 5_000 });
    await (await slow.delay()).get({ timeout: 5_000 });
    const samples = await scrapeUntil(metrics, "celerity_task_runtime_seconds_count", { task: "slow" }, 1);
    const bucket = (task: string, le: string) =>
      readSample(samples, "celerity_task_runtime_seconds_bucket", { task, le });
    assert.deepEqual([bucket("add", "0.5"), bucket("add", "10"), bucket("add", "+Inf")], [1, 1, 1]);
    assert.deepEqual([bucket("slow", "0.5"), bucket("slow", "10"), bucket("slow", "+Inf")], [0, 1, 1]);
    const slowSum = readSample(samples, "celerity_task_runtime_seconds_sum", { task: "slow" }) as number;
    assert.ok(slowSum >= 0.99 && slowSum < 10, `slow ran ${slowSum} s`);
  });

  it("reports each queue's depth as it changes, and leaves out auto-delete queues", async (t) => {
    const { app, add } = appWithTasks(t);
    const metrics = await collectMetrics(app);
    for (let i = 0; i < 3; i++) await add.applyAsync([i, i], { queue: "emails" });
    await add.applyAsync([9, 9], { queue: "emails", countdown: 60_000 });
    let samples = (await scrape(metrics)).samples;
    assert.equal(readSample(samples, "celerity_queue_messages", { queue: "emails", state: "ready" }), 3);
    assert.equal(readSample(samples, "celerity_queue_messages", { queue: "emails", state: "delayed" }), 1);
    assert.equal(readSample(samples, "celerity_queue_messages", { queue: "emails", state: "unacked" }), 0);
    assert.equal(readSample(samples, "celerity_queue_consumers", { queue: "emails" }), 0);
    assert.deepEqual(
      samples.filter((sample) => sample.labels.queue?.startsWith("celerity.events.")),
      [],
      "the metrics' own event subscription queue is not reported",
    );
    await app.worker({ queues: ["emails"], concurrency: 2 }).start();
    samples = await scrapeUntil(metrics, "celerity_queue_messages", { queue: "emails", state: "ready" }, 0);
    assert.equal(readSample(samples, "celerity_queue_consumers", { queue: "emails" }), 1);
  });

  it("reports only the queues named, when told", async (t) => {
    const { app, add } = appWithTasks(t);
    const metrics = await collectMetrics(app, { queues: ["emails"] });
    await add.applyAsync([1, 1], { queue: "emails" });
    await add.applyAsync([1, 1], { queue: "reports" });
    const { samples } = await scrape(metrics);
    const queues = new Set(samples.filter((s) => s.name === "celerity_queue_messages").map((s) => s.labels.queue));
    assert.deepEqual([...queues], ["emails"]);
  });

  it("collects in a monitor's process from workers and producers on a broker node", async (t) => {
    const node = await BrokerNode.start({ port: 0, log: () => {} });
    serveResults(node);
    const monitor = createApp({ broker: node.url, log: () => {} });
    const producer = appWithTasks(t, node.url);
    const workerSide = appWithTasks(t, node.url);
    // The apps close before their node (after-hooks run in the order they were added).
    t.after(async () => {
      await monitor.close();
      await node.stop();
    });
    const metrics = await collectMetrics(monitor);
    await producer.add.applyAsync([1, 1], { queue: "later" });
    let samples = (await scrape(metrics)).samples;
    assert.equal(readSample(samples, "celerity_queue_messages", { queue: "later", state: "ready" }), 1);
    await workerSide.app.worker({ concurrency: 2, events: true, queues: ["celery", "later"] }).start();
    await assert.rejects((await producer.fail.delay()).get({ timeout: 5_000 }));
    samples = await scrapeUntil(metrics, "celerity_tasks_total", { task: "fail", state: "failed" }, 1);
    samples = await scrapeUntil(metrics, "celerity_tasks_total", { task: "add", state: "succeeded" }, 1);
    assert.equal(readSample(samples, "celerity_queue_messages", { queue: "later", state: "ready" }), 0);
    assert.equal(readSample(samples, "celerity_workers_online"), 1);
  });

  it("reads the default queue's depth on a transport that lists no queues (Redis)", {
    skip: skipUnless(redisUp, "Redis is not running on 127.0.0.1:6379"),
  }, async (t) => {
    const queue = `metrics-${process.pid}-${Date.now()}`;
    const { app, add } = appWithTasks(t, "redis://127.0.0.1:6379/13");
    const metrics = await collectMetrics(app, { queues: [queue] });
    await add.applyAsync([1, 1], { queue });
    await add.applyAsync([2, 2], { queue });
    const { samples } = await scrape(metrics);
    assert.equal(readSample(samples, "celerity_queue_messages", { queue, state: "ready" }), 2);
    await app.queues.purge(queue).catch(() => {});
  });
});

describe("metrics fed by an app's own workers", () => {
  it("counts runs and outcomes and knows its workers without any event stream", async (t) => {
    const { app, add, fail } = appWithTasks(t);
    const metrics = await collectMetrics(app, { feed: "workers" });
    const worker = app.worker({ concurrency: 2 });
    await worker.start();
    await (await add.delay(1, 2)).get({ timeout: 5_000 });
    await assert.rejects((await fail.delay()).get({ timeout: 5_000 }));
    const samples = await scrapeUntil(metrics, "celerity_tasks_total", { task: "fail", state: "failed" }, 1);
    assert.equal(readSample(samples, "celerity_tasks_total", { task: "add", state: "started" }), 1);
    assert.equal(readSample(samples, "celerity_tasks_total", { task: "add", state: "succeeded" }), 1);
    assert.equal(readSample(samples, "celerity_task_runtime_seconds_count", { task: "add" }), 1);
    assert.equal(readSample(samples, "celerity_workers_online"), 1);
    assert.equal(readSample(samples, "celerity_worker_active_tasks", { worker: worker.name }), 0);
    assert.equal(
      samples.some((sample) => sample.name === "celerity_events_lag_seconds"),
      false,
      "no events, no events lag",
    );
    await worker.stop();
    await scrapeUntil(metrics, "celerity_workers_online", {}, 0);
    await metrics.close();
    await app.worker({ concurrency: 1 }).start();
    await (await add.delay(5, 5)).get({ timeout: 5_000 });
    assert.equal(
      readSample((await scrape(metrics)).samples, "celerity_tasks_total", { task: "add", state: "succeeded" }),
      1,
      "closed metrics count nothing more",
    );
  });
});

describe("the metrics handler", () => {
  it("answers HEAD without a body and serves a registry of its own, not prom-client's global one", async (t) => {
    const { app } = appWithTasks(t);
    const metrics = await collectMetrics(app);
    const handler = createMetricsHandler(metrics);
    const head = await handler(new Request("http://localhost/metrics", { method: "HEAD" }));
    assert.equal(head.status, 200);
    assert.equal(await head.text(), "");
    assert.equal(globalRegistry.getSingleMetric("celerity_tasks_total"), undefined);
    assert.notEqual(metrics.registry, globalRegistry);
  });

  it("registers on the registry it is given, beside the application's own metrics", async (t) => {
    const { app } = appWithTasks(t);
    const registry = new Registry();
    registry.setDefaultLabels({ service: "billing" });
    const metrics = await collectMetrics(app, { registry });
    assert.equal(metrics.registry, registry);
    assert.ok(registry.getSingleMetric("celerity_tasks_total"));
    const { samples } = await scrape(metrics);
    assert.equal(readSample(samples, "celerity_workers_online", { service: "billing" }), 0);
  });

  it("refuses another path with a 404 and another method with a 405 naming the allowed ones", async (t) => {
    const { app } = appWithTasks(t);
    const handler = createMetricsHandler(app);
    const notFound = await handler(new Request("http://localhost/metric"));
    assert.equal(notFound.status, 404);
    assert.equal(await notFound.text(), "no such path: /metric; the metrics are served at /metrics\n");
    const post = await handler(new Request("http://localhost/metrics", { method: "POST", body: "x" }));
    assert.equal(post.status, 405);
    assert.equal(post.headers.get("allow"), "GET, HEAD");
    assert.match(await post.text(), /method POST is not allowed on \/metrics; use GET/);
    const moved = createMetricsHandler(app, { path: "/internal/metrics", feed: "workers" });
    assert.equal((await moved(new Request("http://localhost/internal/metrics"))).status, 200);
    assert.equal((await moved(new Request("http://localhost/metrics"))).status, 404);
  });

  it("answers 503 saying why when the metrics could not be collected", async () => {
    const app = createApp({ log: () => {} });
    await app.close();
    const response = await createMetricsHandler(app)(new Request("http://localhost/metrics"));
    assert.equal(response.status, 503);
    assert.match(await response.text(), /^metrics are unavailable: .+/);
  });

  it("still serves the task counters when the queues cannot be read, saying why", async (t) => {
    const broker = createEmbeddedBroker();
    broker.listQueues = async () => {
      throw new Error("the node is unreachable");
    };
    const app = createApp({ broker, log: () => {} });
    t.after(() => app.close());
    const add = app.task("add", (x: number, y: number) => x + y);
    const logged: string[] = [];
    const metrics = await collectMetrics(app, { feed: "workers", log: (line) => logged.push(line) });
    await app.worker({ concurrency: 1 }).start();
    await (await add.delay(1, 1)).get({ timeout: 5_000 });
    const { samples } = await scrape(metrics);
    assert.equal(readSample(samples, "celerity_tasks_total", { task: "add", state: "succeeded" }), 1);
    assert.deepEqual(
      samples.filter((sample) => sample.name.startsWith("celerity_queue_")),
      [],
    );
    assert.deepEqual(logged, ["metrics: queue depths could not be read: the node is unreachable"]);
  });

  it("refuses options it cannot use, naming the option", async (t) => {
    const { app } = appWithTasks(t);
    const refused = async (options: object, option: string, reason: RegExp) => {
      await assert.rejects(
        collectMetrics(app, options),
        (error: unknown) =>
          error instanceof MetricsOptionError && error.option === option && reason.test(error.message),
      );
    };
    await refused({ feed: "logs" }, "feed", /"logs" is not a feed; use "events" or "workers"/);
    await refused({ queues: "celery" }, "queues", /must be an array of queue names/);
    await refused({ queues: [""] }, "queues", /must be an array of queue names/);
    await refused({ runtimeBuckets: [1, 0.5] }, "runtimeBuckets", /buckets must increase; 0.5 follows 1/);
    await refused({ runtimeBuckets: [0, 1] }, "runtimeBuckets", /bucket 1 is 0, not a positive number of seconds/);
    await refused({ runtimeBuckets: [] }, "runtimeBuckets", /non-empty array/);
    await refused({ registry: {} }, "registry", /must be a prom-client Registry/);
    await refused({ log: "stderr" }, "log", /must be a function/);
    const registry = new Registry();
    await collectMetrics(app, { registry, feed: "workers" });
    await refused({ registry }, "registry", /already holds celerity_tasks_total/);
    assert.throws(
      () => createMetricsHandler(app, { path: "metrics" }),
      (error: unknown) =>
        error instanceof MetricsOptionError && /"metrics" is not a path starting with '\/'/.test(error.message),
    );
  });
});

describe("the monitor's /metrics", () => {
  it("serves the metrics handler at /metrics of the monitor", async (t) => {
    const { app, add } = appWithTasks(t);
    await app.worker({ concurrency: 1, events: true }).start();
    const monitor = await startMonitor(app, { port: 0, metrics: createMetricsHandler(app) });
    t.after(() => monitor.close());
    await (await add.delay(2, 2)).get({ timeout: 5_000 });
    let samples: Sample[] = [];
    await eventually(
      async () => {
        const response = await fetch(`${monitor.url}/metrics`);
        assert.equal(response.status, 200);
        samples = parseExposition(await response.text()).samples;
        return readSample(samples, "celerity_tasks_total", { task: "add", state: "succeeded" }) === 1;
      },
      { what: "the monitor's /metrics to count the task", timeoutMs: scaled(5_000), intervalMs: 20 },
    );
    assert.equal(readSample(samples, "celerity_workers_online"), 1);
  });
});

describe("serveMetrics", () => {
  it("serves the handler over HTTP on a port of its own", async (t) => {
    const { app, add } = appWithTasks(t);
    const metrics = await collectMetrics(app, { feed: "workers" });
    await app.worker({ concurrency: 1 }).start();
    await (await add.delay(2, 2)).get({ timeout: 5_000 });
    const server = await serveMetrics(createMetricsHandler(metrics), { port: 0 });
    t.after(() => server.close());
    assert.equal(server.url, `http://127.0.0.1:${server.port}/metrics`);
    const response = await fetch(server.url);
    assert.equal(response.status, 200);
    const { samples } = parseExposition(await response.text());
    assert.equal(readSample(samples, "celerity_tasks_total", { task: "add", state: "succeeded" }), 1);
    const missing = await fetch(`http://127.0.0.1:${server.port}/`);
    assert.equal(missing.status, 404);
    assert.equal(await missing.text(), "no such path: /; the metrics are served at /metrics\n");
  });
});
