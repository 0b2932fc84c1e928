/**
 * The ceiling of "enqueue one call at a time" on this machine, with no task
 * queue in between: how many request/answer round trips a Node.js process
 * makes over loopback TCP, one in flight, when the other side does nothing
 * but answer. Two servers answer:
 *
 * - a Node.js process echoing each 200-byte frame back (the least a broker
 *   node written in Node.js can do per awaited send);
 * - Redis, for `PING` and for an `EVALSHA` of a two-command script (about
 *   what bee-queue's and BullMQ's add costs Redis).
 *
 * An awaited send over the node cannot beat the echo: the ratio of the echo
 * to a peer's one-at-a-time figure is the most celerity's can reach against
 * it. Run it beside `npm run bench:peers -- --workloads enqueue-single`.
 *
 *   node --import tsx bench/peers/round-trip-ceiling.ts [--calls 20000] [--runs 3]
 *   taskset -c 0 node --import tsx bench/peers/round-trip-ceiling.ts   # the echo on this process's core
 *
 * Where the scheduler puts the two processes of a round trip can change it
 * severalfold (waking a process on another core is the slow part on a VM):
 * the echo server is a child of this process, so `taskset` keeps it on the
 * same core; Redis stays wherever it runs.
 */
import { fork } from "node:child_process";
import { connect, createServer } from "node:net";
import { loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import { REDIS } from "./reachable.ts";

const FRAME = Buffer.alloc(200, 0x61);

if (process.argv[2] === "--echo-server") {
  const server = createServer((socket) => {
    socket.setNoDelay(true);
    socket.on("data", (chunk) => socket.write(chunk));
  });
  server.listen(0, "127.0.0.1", () => {
    const address = server.address();
    process.send?.(typeof address === "object" && address !== null ? address.port : 0);
  });
} else {
  const { values: opts } = parseArgs({
    options: { calls: { type: "string", default: "20000" }, runs: { type: "string", default: "3" } },
    strict: true,
  });
  const CALLS = Number(opts.calls);
  const RUNS = Number(opts.runs);
  const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

  /** Calls per second of `call`, awaited one at a time, after a warm-up of a tenth. */
  const rate = async (call: () => Promise<unknown>): Promise<number> => {
    for (let i = 0; i < CALLS / 10; i++) await call();
    const start = performance.now();
    for (let i = 0; i < CALLS; i++) await call();
    return CALLS / ((performance.now() - start) / 1000);
  };

  const echoRate = async (): Promise<number> => {
    const child = fork(fileURLToPath(import.meta.url), ["--echo-server"], { execArgv: process.execArgv });
    try {
      const port = await new Promise<number>((resolve) => child.once("message", (m) => resolve(Number(m))));
      const socket = connect(port, "127.0.0.1");
      socket.setNoDelay(true);
      await new Promise((resolve) => socket.once("connect", resolve));
      let answered: () => void = () => {};
      let expected = 0;
      socket.on("data", (chunk) => {
        expected -= chunk.length;
        if (expected === 0) answered();
      });
      const call = () =>
        new Promise<void>((resolve) => {
          answered = resolve;
          expected = FRAME.length;
          socket.write(FRAME);
        });
      const result = await rate(call);
      socket.destroy();
      return result;
    } finally {
      child.kill();
    }
  };

  const redis = new Redis({ host: REDIS.host, port: REDIS.port, maxRetriesPerRequest: 1 });
  const key = `celerity-ceiling-${process.pid}`;
  const script = await redis.script(
    "LOAD",
    "redis.call('LPUSH', KEYS[1], ARGV[1]); return redis.call('INCR', KEYS[2])",
  );
  const payload = "x".repeat(FRAME.length);
  const rows: { echo: number; ping: number; evalsha: number }[] = [];
  for (let run = 0; run < RUNS; run++) {
    const echo = await echoRate();
    const ping = await rate(() => redis.ping());
    const evalsha = await rate(() => redis.evalsha(script as string, 2, `${key}:list`, `${key}:id`, payload));
    await redis.del(`${key}:list`, `${key}:id`);
    rows.push({ echo, ping, evalsha });
    console.log(
      `run ${run + 1}: Node.js echo ${Math.round(echo)}/s, Redis PING ${Math.round(ping)}/s, Redis EVALSHA ${Math.round(evalsha)}/s`,
    );
  }
  redis.disconnect();
  const of = (pick: (row: (typeof rows)[number]) => number) => Math.round(median(rows.map(pick)));
  console.log(
    `median of ${RUNS}, one call in flight: Node.js echo ${of((r) => r.echo)}/s (${(1e6 / of((r) => r.echo)).toFixed(0)} µs a round trip), ` +
      `Redis PING ${of((r) => r.ping)}/s, Redis EVALSHA ${of((r) => r.evalsha)}/s; load average ${loadavg()
        .map((x) => x.toFixed(1))
        .join(" ")}`,
  );
}
