/**
 * The bench's child processes: a broker node (`celerity broker`) and a worker
 * (`celerity worker`), each a separate `node src/cli.js ...`. Every child is
 * registered so that it is killed when the bench exits, however it exits,
 * and every data directory made for a node is removed then.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CLI = join(ROOT, "src/cli.js");

const live = new Set<ChildProcess>();
const dirs = new Set<string>();

const killAll = () => {
  for (const child of live) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  live.clear();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs.clear();
};
process.on("exit", killAll);
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.once(signal, () => {
    killAll();
    process.exit(130);
  });
}

/** A fresh data directory for a node, removed when the bench exits (or by `removeDir`). */
export const makeDataDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), "celerity-node-bench-"));
  dirs.add(dir);
  return dir;
};

export const removeDir = (dir: string) => {
  rmSync(dir, { recursive: true, force: true });
  dirs.delete(dir);
};

/** Disk space the files under `dir` take (an open log segment's hole, grown ahead of its writes, takes none). */
export const dirBytes = (dir: string): number => {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    total += entry.isDirectory() ? dirBytes(path) : statSync(path).blocks * 512;
  }
  return total;
};

export interface Child {
  readonly process: ChildProcess;
  readonly pid: number;
  /** What it wrote to stderr (the last 64 KiB). */
  output(): string;
  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. Resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
}

export interface SpawnOptions {
  /** Extra node options (e.g. --cpu-prof ...), before the script. */
  readonly nodeArgs?: readonly string[];
  /** Copy the child's stderr to ours as it comes. */
  readonly echo?: boolean;
  readonly env?: NodeJS.ProcessEnv;
}

/** Start `node src/cli.js ...args` and wait until a line of its stderr matches `ready` (rejects if it exits first or after `timeoutMs`). */
const start = (
  args: readonly string[],
  ready: RegExp,
  options: SpawnOptions,
  timeoutMs = 30_000,
): Promise<{ child: Child; match: RegExpExecArray }> => {
  const proc = spawn(process.execPath, [...(options.nodeArgs ?? []), CLI, ...args], {
    cwd: ROOT,
    stdio: ["ignore", "inherit", "pipe"],
    env: options.env ?? process.env,
  });
  live.add(proc);
  let stderr = "";
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  exited.then(() => live.delete(proc));
  let stopping = false;
  const child: Child = {
    process: proc,
    pid: proc.pid as number,
    output: () => stderr,
    async stop(graceMs = 15_000) {
      stopping = true;
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
  return new Promise((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => fail(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
    const fail = (error: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      proc.kill("SIGKILL");
      reject(new Error(`'celerity ${args.join(" ")}' did not start: ${error.message}\n${stderr}`));
    };
    proc.once("error", fail);
    proc.once("exit", (code, signal) => fail(new Error(`exited with ${code ?? signal}`)));
    proc.stderr!.setEncoding("utf8");
    proc.stderr!.on("data", (text: string) => {
      if (options.echo) process.stderr.write(text);
      stderr = (stderr + text).slice(-65_536);
      if (done) return;
      const match = ready.exec(stderr);
      if (match === null) return;
      done = true;
      clearTimeout(timer);
      // From now on an exit not asked for ends the bench: its figures would be meaningless, and waiting on it could take minutes.
      proc.once("exit", (code, signal) => {
        if (stopping) return;
        process.stderr.write(
          `\n'celerity ${args.join(" ")}' (pid ${proc.pid}) exited unexpectedly with ${code ?? signal}; its last output:\n${stderr.slice(-4_000)}\n`,
        );
        process.exit(1);
      });
      resolve({ child, match });
    });
  });
};

export interface NodeConfig {
  /** Keep the log here; undefined: the node holds everything in memory only. */
  readonly dataDir?: string;
  /** The --fsync policy ("always" when not given, the node's default). */
  readonly fsync?: string;
  /** --max-messages (flow control); the node's default when not given. */
  readonly maxMessages?: number;
}

/** Start a broker node on a free port; resolves with its url once it listens. */
export const startNode = async (
  config: NodeConfig,
  options: SpawnOptions = {},
): Promise<{ child: Child; url: string }> => {
  const args = ["broker", "--port", "0"];
  if (config.dataDir !== undefined) args.push("--data-dir", config.dataDir);
  if (config.fsync !== undefined) args.push("--fsync", config.fsync);
  if (config.maxMessages !== undefined) args.push("--max-messages", String(config.maxMessages));
  const { child, match } = await start(args, /listening on (celerity:\/\/\S+)/, options);
  return { child, url: match[1] };
};

/** Start a worker process on `bench/node/tasks.ts`; resolves once it consumes. */
export const startWorker = async (url: string, concurrency: number, options: SpawnOptions = {}): Promise<Child> => {
  const args = ["worker", "--app", "bench/node/tasks.ts", "--broker", url, "--concurrency", String(concurrency)];
  const { child } = await start(args, /consuming with concurrency/, options);
  return child;
};

/** Resident set size of a process in bytes, and its peak (VmRSS and VmHWM of /proc/<pid>/status). */
export const memoryOf = (pid: number): { rss: number; peak: number } => {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (field: string) => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
    if (match === null) throw new Error(`no ${field} in /proc/${pid}/status`);
    return Number(match[1]) * 1024;
  };
  return { rss: kib("VmRSS"), peak: kib("VmHWM") };
};

const clockTicks = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU time (user + system) a process has used so far, in ms, from /proc/<pid>/stat (resolution: one clock tick, usually 10 ms). */
export const cpuMsOf = (pid: number): number => {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks;
};

/** CPU time used by the whole machine so far (all processes, all cores), in ms, from /proc/stat. */
export const machineCpuMs = (): number => {
  const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0];
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  return ((user + nice + system + irq + softirq + steal) * 1000) / clockTicks;
};
