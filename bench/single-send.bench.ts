/**
 * What one send at a time costs over the TCP node: this process awaits one
 * `applyAsync` after another (a task with `ignoreResult`, to a queue no
 * worker consumes, as the peers bench's "one call at a time" workload), on a
 * `celerity broker` child in memory and then durable (fsync always).
 * Prints the rate, the round trip's p50 and p90, and the CPU each process
 * spent a send, user and system apart (from /proc/<pid>/stat and
 * process.cpuUsage), which is what separates the two processes' work from
 * the time they wait on each other and on the disk.
 *
 *   node --import tsx bench/single-send.bench.ts              # 5,000 sends in memory, 3,000 durable, 3 rounds
 *   node --import tsx bench/single-send.bench.ts --rounds 1 --sends 20000
 */
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { createApp } from "../src/index.ts";
import { makeDataDir, removeDir, startNode } from "./node/processes.ts";

const { values: opts } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    sends: { type: "string" },
  },
  strict: true,
});
const WARM_UP = 2_000;

const clockTickMs = 10;
/** User and system CPU of process `pid` so far, in ms (clock ticks of 10 ms). */
const cpuOf = (pid: number): { user: number; system: number } => {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { user: Number(fields[11]) * clockTickMs, system: Number(fields[12]) * clockTickMs };
};

const measure = async (durable: boolean, sends: number): Promise<string> => {
  const dataDir = durable ? makeDataDir() : undefined;
  const node = await startNode({ dataDir });
  const app = createApp({ broker: node.url, log: (message) => console.error(`celerity producer: ${message}`) });
  const noop = app.task("single-send.noop", (_n: number) => {}, { ignoreResult: true, queue: "single-send-idle" });
  try {
    for (let i = 0; i < WARM_UP; i++) await noop.applyAsync([i]);
    const latencies = new Float64Array(sends);
    const nodeBefore = cpuOf(node.child.pid);
    const producerBefore = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < sends; i++) {
      const start = performance.now();
      await noop.applyAsync([i]);
      latencies[i] = performance.now() - start;
    }
    const elapsed = performance.now() - t0;
    const nodeAfter = cpuOf(node.child.pid);
    const producer = process.cpuUsage(producerBefore);
    latencies.sort();
    const us = (ms: number) => `${Math.round((ms * 1000) / sends)}`;
    return (
      `${(durable ? "durable node" : "node in memory").padEnd(15)} ${Math.round((sends / elapsed) * 1000)
        .toLocaleString("en")
        .padStart(
          6,
        )}/s  round trip p50 ${Math.round(latencies[sends >> 1] * 1000)} µs, p90 ${Math.round(latencies[Math.floor(sends * 0.9)] * 1000)} µs; ` +
      `CPU a send: node user ${us(nodeAfter.user - nodeBefore.user)} + system ${us(nodeAfter.system - nodeBefore.system)} µs, ` +
      `producer user ${us(producer.user / 1000)} + system ${us(producer.system / 1000)} µs`
    );
  } finally {
    await app.close();
    await node.child.stop();
    if (dataDir !== undefined) removeDir(dataDir);
  }
};

console.log(
  `single-send bench: one awaited applyAsync at a time; load average ${loadavg()
    .map((x) => x.toFixed(2))
    .join(" ")}`,
);
for (let round = 1; round <= Number(opts.rounds); round++) {
  console.log(await measure(false, Number(opts.sends ?? 5_000)));
  console.log(await measure(true, Number(opts.sends ?? 3_000)));
}
