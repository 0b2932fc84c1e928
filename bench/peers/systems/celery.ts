/**
 * Python Celery, from Debian's python3-celery, run by Debian's own
 * interpreter (/usr/bin/python3, whatever python3 comes first on PATH), on
 * RabbitMQ or on Redis, with Redis as the result backend (chains and chords
 * need one). The worker is `celery worker` with the prefork pool, one process
 * per core, a prefetch multiplier of 64 and rate limits off (Celery's
 * "Optimizing" guide for many short tasks); the producer is celery/driver.py,
 * which this module drives line by line over its stdin and stdout.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { AMQP, REDIS, redisUnavailable, tcpUnreachable } from "../reachable.ts";
import { CHAIN_LENGTH, IDLE_QUEUE, type Instance, type System, type SystemConfig, type Window } from "../system.ts";

export const PYTHON = process.env.CELERITY_PEERS_PYTHON ?? "/usr/bin/python3";
const DIR = fileURLToPath(new URL("../celery/", import.meta.url));
/** One process per core: Celery's default concurrency for the prefork pool. */
const PROCESSES = cpus().length;

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of live) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
});

/** Whether Debian's interpreter has Celery and the broker's client; undefined when it has. */
const pythonUnavailable = (): Promise<string | undefined> =>
  new Promise((resolve) => {
    if (!existsSync(PYTHON))
      return resolve(
        `${PYTHON} does not exist (install Debian's python3-celery and python3-redis: apt-get install -y python3-celery python3-redis)`,
      );
    const check = spawn(PYTHON, ["-c", "import celery, kombu, amqp, redis"], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    check.stderr.on("data", (chunk) => (stderr += chunk));
    check.once("error", (error) => resolve(`${PYTHON}: ${error.message}`));
    check.once("exit", (code) =>
      resolve(
        code === 0
          ? undefined
          : `${PYTHON} cannot import Celery or its broker clients (apt-get install -y python3-celery python3-redis): ${stderr.trim().split("\n").pop()}`,
      ),
    );
  });

/** A Celery driver process: one request at a time, one JSON line each way. */
class Driver {
  private readonly lines: AsyncIterator<string>;
  private stderr = "";
  private constructor(private readonly proc: ChildProcess) {
    this.lines = createInterface({ input: proc.stdout! })[Symbol.asyncIterator]();
    proc.stderr!.setEncoding("utf8");
    proc.stderr!.on("data", (text: string) => (this.stderr = (this.stderr + text).slice(-8_192)));
  }

  static start(env: NodeJS.ProcessEnv): Driver {
    const proc = spawn(PYTHON, [join(DIR, "driver.py")], { cwd: DIR, env, stdio: ["pipe", "pipe", "pipe"] });
    live.add(proc);
    proc.once("exit", () => live.delete(proc));
    return new Driver(proc);
  }

  async call(op: string, args: Record<string, unknown> = {}): Promise<unknown> {
    this.proc.stdin!.write(`${JSON.stringify({ op, ...args })}\n`);
    const next = await this.lines.next();
    if (next.done) throw new Error(`the Celery driver exited: ${this.stderr.slice(-2_000)}`);
    const reply = JSON.parse(next.value) as { ok: boolean; value?: unknown; error?: string };
    if (!reply.ok) throw new Error(`Celery driver, ${op}: ${reply.error}`);
    return reply.value;
  }

  async close(): Promise<void> {
    this.proc.stdin!.end();
    await new Promise((resolve) =>
      this.proc.exitCode !== null ? resolve(undefined) : this.proc.once("exit", resolve),
    );
  }
}

/** Start `celery worker` and wait for its ready line. */
const startWorker = (env: NodeJS.ProcessEnv, echo: boolean): Promise<ChildProcess> =>
  new Promise((resolve, reject) => {
    const args = [
      "-m",
      "celery",
      "-A",
      "peers_celery",
      "worker",
      "--pool",
      "prefork",
      "--concurrency",
      String(PROCESSES),
      "--prefetch-multiplier",
      "64",
      "-O",
      "fair",
      "--without-gossip",
      "--without-mingle",
      "--without-heartbeat",
      "--loglevel",
      "WARNING",
      "--hostname",
      `peers-${process.pid}@%h`,
    ];
    // Its banner goes to stdout: left out; warnings and errors come on stderr.
    const proc = spawn(PYTHON, args, { cwd: DIR, env, stdio: ["ignore", "ignore", "pipe"] });
    live.add(proc);
    proc.once("exit", () => live.delete(proc));
    let stderr = "";
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`celery worker did not get ready in 60 s: ${stderr.slice(-2_000)}`));
    }, 60_000);
    proc.stderr!.setEncoding("utf8");
    proc.stderr!.on("data", (text: string) => {
      if (echo) process.stderr.write(text);
      stderr = (stderr + text).slice(-8_192);
      if (stderr.includes("celery peers worker ready")) {
        clearTimeout(timer);
        resolve(proc);
      }
    });
    proc.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`celery worker exited with ${code ?? signal}: ${stderr.slice(-2_000)}`));
    });
  });

/** SIGTERM: Celery's warm shutdown (finish the running tasks); SIGKILL after 30 s. */
const stopWorker = async (proc: ChildProcess | undefined) => {
  if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((resolve) => proc.once("exit", resolve));
  proc.kill("SIGTERM");
  const timer = setTimeout(() => proc.kill("SIGKILL"), 30_000);
  await exited;
  clearTimeout(timer);
};

const celery = (broker: "rabbitmq" | "redis"): System => ({
  id: broker === "rabbitmq" ? "celery-rabbitmq" : "celery-redis",
  label: broker === "rabbitmq" ? "Celery (RabbitMQ)" : "Celery (Redis)",
  setup: `\`celery worker --pool prefork --concurrency ${PROCESSES} --prefetch-multiplier 64 -O fair\`, rate limits off, ${broker === "rabbitmq" ? "RabbitMQ broker" : "Redis broker"}, Redis result backend`,
  speed: 0.02,
  unsupported: {},
  async unavailable() {
    const python = await pythonUnavailable();
    if (python !== undefined) return python;
    if (broker === "rabbitmq") {
      const amqp = await tcpUnreachable(AMQP.host, AMQP.port);
      if (amqp !== undefined) return `RabbitMQ ${amqp}`;
    }
    const redis = await redisUnavailable();
    if (redis !== undefined) return broker === "redis" ? redis : `${redis} (Celery's result backend)`;
    return undefined;
  },
  async versions() {
    const probeDir = mkdtempSync(join(tmpdir(), "celerity-peers-celery-"));
    const driver = Driver.start(environment(broker, probeDir));
    try {
      return (await driver.call("versions")) as Record<string, string>;
    } finally {
      await driver.close();
      rmSync(probeDir, { recursive: true, force: true });
    }
  },
  async start(config: SystemConfig): Promise<Instance> {
    const probeDir = mkdtempSync(join(tmpdir(), "celerity-peers-celery-"));
    const env = environment(broker, probeDir);
    const driver = Driver.start(env);
    await driver.call("purge", { queue: IDLE_QUEUE });
    await driver.call("purge", { queue: "celerity-peers-work" });
    let worker: ChildProcess | undefined;
    return {
      enqueue: async (n, mode) => void (await driver.call("enqueue", { n, mode })),
      purgeIdle: async () => void (await driver.call("purge", { queue: IDLE_QUEUE })),
      fill: async (n) => void (await driver.call("fill", { n })),
      async startWorker() {
        worker = await startWorker(env, config.echo);
      },
      async stopWorker() {
        await stopWorker(worker);
        worker = undefined;
      },
      reset: async () => void (await driver.call("reset")),
      waitFor: async (count, timeoutMs) => (await driver.call("wait", { count, timeoutMs })) as Window,
      send: async (n) => void (await driver.call("send", { n })),
      chains: async (k) => void (await driver.call("chains", { k, length: CHAIN_LENGTH })),
      chord: async (n) => void (await driver.call("chord", { n })),
      paced: async (n, rate) => void (await driver.call("paced", { n, rate })),
      latencies: async () => (await driver.call("latencies")) as number[],
      async close() {
        await stopWorker(worker);
        await driver.call("purge", { queue: IDLE_QUEUE }).catch(() => undefined);
        await driver.call("purge", { queue: "celerity-peers-work" }).catch(() => undefined);
        await driver.close();
        rmSync(probeDir, { recursive: true, force: true });
      },
    };
  },
});

/** The environment of the driver and the worker: broker and backend urls, the probe file. Redis databases 12 and 13 keep Celery's keys apart from everything else. */
const environment = (broker: "rabbitmq" | "redis", probeDir: string): NodeJS.ProcessEnv => ({
  ...process.env,
  PYTHONPATH: DIR,
  PYTHONDONTWRITEBYTECODE: "1",
  CELERITY_PEERS_BROKER:
    broker === "rabbitmq" ? `amqp://guest:guest@${AMQP.host}:${AMQP.port}//` : `redis://${REDIS.host}:${REDIS.port}/12`,
  CELERITY_PEERS_BACKEND: `redis://${REDIS.host}:${REDIS.port}/13`,
  CELERITY_PEERS_PROBE: join(probeDir, "probe"),
  CELERITY_PEERS_REDIS_PORT: String(REDIS.port),
});

export const celeryRabbitmq = celery("rabbitmq");
export const celeryRedis = celery("redis");
