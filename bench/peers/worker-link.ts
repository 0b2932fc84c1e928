/**
 * The harness's end of a Node worker process (worker-child.ts): spawn it,
 * send it requests over IPC, and kill it when the bench exits however it
 * exits.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { Probe } from "./probe.ts";
import type { Instance, Window } from "./system.ts";

/** The worker side of a system, as the child process runs it. */
export interface WorkerSide {
  /** Begin (or resume) consuming the work queue. */
  start(): Promise<void>;
  /** Stop consuming once the running tasks are done. */
  stop(): Promise<void>;
  close(): Promise<void>;
}

/** What a worker module exports as `createWorker`. */
export type WorkerFactory = (options: Record<string, unknown>, probe: Probe) => Promise<WorkerSide>;

export type WorkerRequest =
  | { readonly id: number; readonly op: "start" | "stop" | "reset" | "latencies" | "cpu" | "exit" }
  | { readonly id: number; readonly op: "wait"; readonly count: number; readonly timeoutMs: number };

type Reply = { id: number; ok: true; value?: unknown } | { id: number; ok: false; error: string };

const CHILD = fileURLToPath(new URL("./worker-child.ts", import.meta.url));
const TSX = import.meta.resolve("tsx");

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of live) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
});

export interface WorkerLink {
  readonly pid: number;
  start(): Promise<void>;
  stop(): Promise<void>;
  reset(): Promise<void>;
  waitFor(count: number, timeoutMs: number): Promise<Window>;
  latencies(): Promise<number[]>;
  /** The worker process's CPU time so far (user + system, µs). */
  cpu(): Promise<number>;
  /** Close the worker side and let the process exit (a clean exit, so a --cpu-prof profile gets written). */
  exit(): Promise<void>;
}

/** The parts of an Instance that a worker process behind `link` answers. */
export const workerControls = (
  link: WorkerLink,
): Pick<Instance, "startWorker" | "stopWorker" | "reset" | "waitFor" | "latencies" | "workerCpu"> => ({
  startWorker: () => link.start(),
  stopWorker: () => link.stop(),
  reset: () => link.reset(),
  waitFor: (count, timeoutMs) => link.waitFor(count, timeoutMs),
  latencies: () => link.latencies(),
  workerCpu: () => link.cpu(),
});

/** Start a worker process for `module` (a file exporting `createWorker`); resolves once it is ready (not yet consuming). */
export const spawnWorker = (
  module: string,
  options: Record<string, unknown>,
  spawnOptions: { nodeArgs?: readonly string[]; echo?: boolean } = {},
): Promise<WorkerLink> => {
  const proc = spawn(
    process.execPath,
    [...(spawnOptions.nodeArgs ?? []), "--import", TSX, CHILD, module, JSON.stringify(options)],
    {
      stdio: ["ignore", "inherit", "pipe", "ipc"],
    },
  );
  live.add(proc);
  let stderr = "";
  proc.stderr!.setEncoding("utf8");
  proc.stderr!.on("data", (text: string) => {
    if (spawnOptions.echo) process.stderr.write(text);
    stderr = (stderr + text).slice(-16_384);
  });
  let nextId = 1;
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  let exiting = false;
  const exited = new Promise<void>((resolve) =>
    proc.once("exit", (code, signal) => {
      live.delete(proc);
      for (const p of pending.values())
        p.reject(new Error(`worker process exited with ${code ?? signal}: ${stderr.slice(-2_000)}`));
      pending.clear();
      resolve();
    }),
  );
  const request = (op: WorkerRequest["op"], extra: Record<string, unknown> = {}): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      proc.send({ id, op, ...extra });
    });
  proc.on("message", (message: Reply | { ready: true }) => {
    if ("ready" in message) return;
    const p = pending.get(message.id);
    if (p === undefined) return;
    pending.delete(message.id);
    if (message.ok) p.resolve(message.value);
    else p.reject(new Error(message.error));
  });
  const link: WorkerLink = {
    pid: proc.pid as number,
    start: async () => void (await request("start")),
    stop: async () => void (await request("stop")),
    reset: async () => void (await request("reset")),
    waitFor: async (count, timeoutMs) => (await request("wait", { count, timeoutMs })) as Window,
    latencies: async () => (await request("latencies")) as number[],
    cpu: async () => (await request("cpu")) as number,
    async exit() {
      if (exiting) return exited;
      exiting = true;
      const timer = setTimeout(() => proc.kill("SIGKILL"), 15_000);
      await request("exit").catch(() => undefined);
      await exited;
      clearTimeout(timer);
    },
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`worker process for ${module} did not get ready in 30 s: ${stderr}`));
    }, 30_000);
    proc.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`worker process for ${module} exited with ${code ?? signal} before it was ready: ${stderr}`));
    });
    proc.on("message", (message: { ready?: boolean }) => {
      if (message.ready !== true) return;
      clearTimeout(timer);
      resolve(link);
    });
  });
};
