/**
 * `celerity worker --metrics-port`: a worker process serving Prometheus
 * metrics of its own tasks (fed in-process, without events) and of its
 * queues, scraped over HTTP while a producer in this process sends tasks
 * through a broker node.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { BrokerNode } from "../broker/node/node-server.ts";
import { createApp } from "../runtime/app.ts";
import { serveResults } from "../runtime/results/result-service.ts";
import { CLI, ROOT, START_TIMEOUT_MS, WatchedProcess } from "./support/watched-process.ts";
import { eventually, scaled } from "./support/waits.ts";

const APP = fileURLToPath(new URL("./fixtures/cli-app.ts", import.meta.url));

/** The value of the sample `line` starts with (name and labels as written), or undefined when there is none. */
const sample = (text: string, line: string): number | undefined => {
  const found = text.split("\n").find((l) => l.startsWith(`${line} `));
  return found === undefined ? undefined : Number(found.slice(line.length + 1));
};

describe("celerity worker --metrics-port", () => {
  it("serves the worker's task counts and its queue's depth for Prometheus to scrape", {
    timeout: 180_000,
  }, async (t) => {
    const node = await BrokerNode.start({ port: 0, log: () => {} });
    serveResults(node);
    const producer = createApp({ broker: node.url, log: () => {} });
    const add = producer.task("add", (x: number, y: number) => x + y);
    const worker = new WatchedProcess(
      "worker",
      process.execPath,
      [CLI, "worker", "--app", APP, "--broker", node.url, "--concurrency", "1", "--metrics-port", "0"],
      { cwd: ROOT },
    );
    t.after(async () => {
      if (worker.child.exitCode === null) await worker.stop("SIGKILL", START_TIMEOUT_MS).catch(() => {});
      await producer.close();
      await node.stop();
    });
    const [, url] = await worker.waitFor(/metrics at (http:\/\/127\.0\.0\.1:\d+\/metrics)/, START_TIMEOUT_MS);
    await worker.waitFor(/consuming with concurrency 1/, START_TIMEOUT_MS);
    assert.equal(await (await add.delay(2, 2)).get({ timeout: 10_000 }), 4);
    assert.equal(await (await add.delay(3, 3)).get({ timeout: 10_000 }), 6);
    let text = "";
    await eventually(
      async () => {
        const response = await fetch(url);
        assert.equal(response.status, 200);
        text = await response.text();
        return sample(text, 'celerity_tasks_total{task="add",state="succeeded"}') === 2;
      },
      { what: "the scraped metrics to count two succeeded adds", timeoutMs: scaled(10_000), intervalMs: 50 },
    ).catch((error: Error) => assert.fail(`${error.message}\n${text}`));
    assert.equal(sample(text, 'celerity_task_runtime_seconds_count{task="add"}'), 2);
    assert.equal(sample(text, "celerity_workers_online"), 1);
    assert.equal(sample(text, 'celerity_queue_messages{queue="celery",state="ready"}'), 0);
    assert.equal(sample(text, 'celerity_queue_consumers{queue="celery"}'), 1);
    assert.deepEqual(await worker.stop("SIGTERM", START_TIMEOUT_MS), { code: 0, signal: null });
  });

  it("exits 2 naming the option for a port that is not one, or a host without a port", () => {
    const run = (...args: string[]) =>
      spawnSync(process.execPath, [CLI, "worker", "--app", APP, "--broker", "celerity://127.0.0.1:1", ...args], {
        encoding: "utf8",
        cwd: ROOT,
        timeout: scaled(30_000),
      });
    const notAPort = run("--metrics-port", "http");
    assert.equal(notAPort.status, 2, notAPort.stderr);
    assert.match(notAPort.stderr, /--metrics-port must be an integer from 0 to 65535, got 'http'/);
    const tooHigh = run("--metrics-port", "70000");
    assert.equal(tooHigh.status, 2, tooHigh.stderr);
    assert.match(tooHigh.stderr, /--metrics-port must be an integer from 0 to 65535, got '70000'/);
    const hostOnly = run("--metrics-host", "0.0.0.0");
    assert.equal(hostOnly.status, 2, hostOnly.stderr);
    assert.match(hostOnly.stderr, /--metrics-host needs --metrics-port/);
  });
});
