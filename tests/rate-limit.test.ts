/**
 * Rate limits across processes: a `celerity broker` node and several
 * `celerity worker` processes sharing one global limit. Start times are
 * taken by the tasks themselves (one machine, one clock) and checked against
 * burst + rate x T. Every wait is on an event (a log line, a result),
 * bounded by a timeout that fails with the children's output; every process
 * started is killed at the end, even when the test fails.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { createApp } from "../runtime/app.ts";

const CLI = fileURLToPath(new URL("../src/cli.js", import.meta.url));
const RATE_APP = fileURLToPath(new URL("./fixtures/rate-app.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const START_TIMEOUT_MS = 20_000;
const RATE_PER_S = 20;
const BURST = 5;

/** A CLI child whose output lines can be waited on. */
class Child {
  readonly process: ChildProcessWithoutNullStreams;
  private readonly lines: string[] = [];
  private readonly waiters = new Set<{ pattern: RegExp; resolve: (match: RegExpExecArray) => void }>();

  constructor(
    readonly name: string,
    args: readonly string[],
  ) {
    this.process = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"] });
    for (const stream of [this.process.stdout, this.process.stderr]) {
      let partial = "";
      stream.setEncoding("utf8");
      stream.on("data", (chunk: string) => {
        const parts = (partial + chunk).split("\n");
        partial = parts.pop() ?? "";
        for (const line of parts) {
          this.lines.push(line);
          for (const waiter of [...this.waiters]) {
            const match = waiter.pattern.exec(line);
            if (match !== null) {
              this.waiters.delete(waiter);
              waiter.resolve(match);
            }
          }
        }
      });
    }
  }

  /** The first line matching `pattern`, or a failure with the output after `ms`. */
  waitFor(pattern: RegExp, ms: number): Promise<RegExpExecArray> {
    for (const line of this.lines) {
      const match = pattern.exec(line);
      if (match !== null) return Promise.resolve(match);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(new Error(`timed out after ${ms} ms waiting for ${this.name} to print ${pattern}\n${this.tail()}`)),
        ms,
      );
      this.waiters.add({ pattern, resolve: (match) => (clearTimeout(timer), resolve(match)) });
    });
  }

  tail(): string {
    return this.lines
      .slice(-20)
      .map((line) => `  [${this.name}] ${line}`)
      .join("\n");
  }

  async kill(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    const exited = new Promise((resolve) => this.process.once("exit", resolve));
    this.process.kill("SIGKILL");
    await exited;
  }
}

/** Most starts in any window of `windowMs` (sorted start times). */
const mostInWindow = (starts: readonly number[], windowMs: number): number => {
  let most = 0;
  for (let i = 0, j = 0; j < starts.length; j++) {
    while (starts[j] - starts[i] > windowMs) i++;
    most = Math.max(most, j - i + 1);
  }
  return most;
};

describe("a global rate limit across worker processes", () => {
  it("keeps three worker processes on one node together under burst + rate x T, measured from task start times", async () => {
    const children: Child[] = [];
    let producer: ReturnType<typeof createApp> | undefined;
    try {
      const broker = new Child("broker", ["broker", "--port", "0"]);
      children.push(broker);
      const [, url] = await broker.waitFor(/listening on (celerity:\/\/[\d.]+:\d+)/, START_TIMEOUT_MS);
      const workers = [1, 2, 3].map(
        (n) =>
          new Child(`worker-${n}`, [
            "worker",
            "--app",
            RATE_APP,
            "--broker",
            url,
            "--concurrency",
            "2",
            "--name",
            `w${n}`,
          ]),
      );
      children.push(...workers);
      await Promise.all(workers.map((worker) => worker.waitFor(/consuming with concurrency/, START_TIMEOUT_MS)));

      producer = createApp({ broker: url, log: () => {} });
      const results = [];
      for (let i = 0; i < 60; i++) results.push(await producer.sendTask<[number, number]>("rate.tick", []));
      const outcomes = await Promise.all(results.map((r) => r.get({ timeout: 30_000 })));
      const starts = outcomes.map(([at]) => at).sort((a, b) => a - b);
      const pids = new Set(outcomes.map(([, pid]) => pid));
      assert.ok(pids.size >= 2, `the work was shared (ran on ${pids.size} worker processes)`);

      // A token is granted on the node and the task starts after the reply reaches its worker: starts may
      // lag their grant by that latency, and two starts may come closer than their tokens did. Allowed: 100 ms.
      const lagMs = 100;
      for (const windowMs of [0, 25, 50, 100, 250, 500, 1_000, 2_000]) {
        const most = mostInWindow(starts, windowMs);
        const limit = BURST + (RATE_PER_S * (windowMs + lagMs)) / 1_000;
        assert.ok(
          most <= limit,
          `${most} starts within ${windowMs} ms across ${pids.size} workers; the limit allows ${limit}`,
        );
      }
      // Per-worker buckets would have let the three run at three times the rate.
      const spanMs = starts[starts.length - 1] - starts[0];
      assert.ok(spanMs >= ((60 - BURST) / RATE_PER_S) * 1_000 - lagMs, `60 starts took ${spanMs} ms`);
    } finally {
      await producer?.close();
      for (const child of children.reverse()) await child.kill();
    }
  });
});
