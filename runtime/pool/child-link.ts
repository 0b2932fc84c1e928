// The worker's end of one pool thread or child process: spawning it with the app module,
// sending it calls, hearing its answers and its end, and killing it.
import { spawn, type ChildProcess } from "node:child_process";
import { Worker as Thread } from "node:worker_threads";
import type { FromChild, ToChild } from "./pool-protocol.ts";
import { POOL_CHILD_ENV } from "./pool-protocol.ts";

/**
 * The worker's end of one pool thread or child process: send it messages,
 * hear its answers and its end, and stop it. Both kinds look the same to the
 * pool; only how they are made and stopped differs.
 */
export interface ChildLink {
  /** "thread 3" or "process 4711", for logs and errors. */
  readonly label: string;
  send(message: ToChild): void;
  /** Stop it now, whatever it is running. */
  kill(): void;
}

export interface ChildEvents {
  message(message: FromChild): void;
  /** It ended: exit code, or the signal that killed a child process. */
  exit(code: number | null, signal: string | undefined): void;
}

/** The child's side: this folder's pool-child, as sources (run through tsx) or as the built package's JavaScript. */
const ENTRY = new URL(import.meta.url.endsWith(".ts") ? "./pool-child.ts" : "./pool-child.js", import.meta.url).href;
const TYPESCRIPT = /\.[cm]?tsx?$/;
const BOOT_ENV = "CELERITY_POOL_BOOT";

/**
 * A thread or child starts here: it registers the TypeScript loader when the
 * child's code or the app module is TypeScript (a thread does not inherit
 * its parent's loader hooks), then loads the child. CommonJS text, so the
 * same boot runs as an eval'd worker and as `node -e`, with no file to ship.
 */
const BOOT = `(async () => {
  const boot = JSON.parse(process.env.${BOOT_ENV});
  if (boot.loader !== undefined) (await import(boot.loader)).register();
  await import(boot.entry);
})().catch((error) => {
  console.error(error);
  process.exit(70);
});`;

/** The environment of a thread or child loading `appModule`. */
const bootEnv = (kind: "threads" | "process", appModule: string): NodeJS.ProcessEnv => {
  const typescript = TYPESCRIPT.test(ENTRY) || TYPESCRIPT.test(appModule);
  const boot = { entry: ENTRY, ...(typescript ? { loader: import.meta.resolve("tsx/esm/api") } : {}) };
  return { ...process.env, [POOL_CHILD_ENV]: kind, [BOOT_ENV]: JSON.stringify(boot) };
};

export const spawnThread = (appModule: string, events: ChildEvents): ChildLink => {
  // No execArgv of the parent's: its preloads (a test runner's, a profiler's) are not the child's business.
  const thread = new Thread(BOOT, { eval: true, env: bootEnv("threads", appModule), execArgv: [] });
  let exited = false;
  thread.on("message", (message: FromChild) => events.message(message));
  // An error thrown outside any task ends the thread; its exit event follows.
  thread.on("error", () => {});
  thread.on("exit", (code) => {
    exited = true;
    events.exit(code, undefined);
  });
  return {
    label: `thread ${thread.threadId}`,
    send: (message) => thread.postMessage(message),
    kill: () => {
      if (!exited) void thread.terminate();
    },
  };
};

export const spawnProcess = (appModule: string, events: ChildEvents): ChildLink => {
  const child: ChildProcess = spawn(process.execPath, ["-e", BOOT], {
    serialization: "advanced",
    env: bootEnv("process", appModule),
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  let exited = false;
  child.on("message", (message) => events.message(message as FromChild));
  child.on("error", () => {});
  child.on("exit", (code, signal) => {
    exited = true;
    events.exit(code, signal ?? undefined);
  });
  return {
    label: `process ${child.pid}`,
    send: (message) => {
      if (child.connected) child.send(message);
    },
    kill: () => {
      if (!exited) child.kill("SIGKILL");
    },
  };
};
