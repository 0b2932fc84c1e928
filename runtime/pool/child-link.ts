import { fork, type ChildProcess } from "node:child_process";
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

const BOOT = new URL("./child-boot.mjs", import.meta.url);

export const spawnThread = (events: ChildEvents): ChildLink => {
  const thread = new Thread(BOOT, { env: { ...process.env, [POOL_CHILD_ENV]: "threads" } });
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

export const spawnProcess = (events: ChildEvents): ChildLink => {
  const child: ChildProcess = fork(BOOT, [], {
    serialization: "advanced",
    env: { ...process.env, [POOL_CHILD_ENV]: "process" },
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
