// Python Celery for the interop tests (Debian's python3-celery and python3-redis): the
// skip when it is missing, a Python worker to start and a Python producer to run.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { skipUnless } from "../support/prerequisites.ts";

/**
 * The Python that runs Celery: CELERITY_INTEROP_PYTHON, else /usr/bin/python3 (Debian
 * ships no `celery` script, and the `python3` first on PATH may not see Debian's packages).
 */
export const PYTHON = process.env.CELERITY_INTEROP_PYTHON ?? "/usr/bin/python3";
const HERE = fileURLToPath(new URL(".", import.meta.url));

/** The Redis database the interop tests use (kombu keeps `unacked` per database): CELERITY_INTEROP_REDIS, else database 13 on loopback. */
export const INTEROP_REDIS = process.env.CELERITY_INTEROP_REDIS ?? "redis://127.0.0.1:6379/13";

/** A skip reason unless Python can import celery and redis (with CELERITY_REQUIRE_SERVICES=1 the tests run and fail instead). */
export const pythonCelerySkipReason = (): string | false => {
  const probe = spawnSync(PYTHON, ["-c", "import celery, redis"], { encoding: "utf8" });
  return skipUnless(
    probe.status === 0,
    `Python Celery is not importable by ${PYTHON} (apt-get install python3-celery python3-redis)`,
  );
};

/** A queue name no other run shares. */
export const interopQueue = (): string => `celerity-interop-${randomUUID().slice(0, 8)}`;

const pythonEnv = (queue: string, broker: string): NodeJS.ProcessEnv => ({
  ...process.env,
  CELERITY_INTEROP_BROKER: broker,
  CELERITY_INTEROP_REDIS: INTEROP_REDIS,
  CELERITY_INTEROP_QUEUE: queue,
  PYTHONDONTWRITEBYTECODE: "1",
});

/** A running Python Celery worker on `queue`; `stop()` ends it. */
export interface PythonWorker {
  readonly output: () => string;
  stop(): Promise<void>;
}

/** Start a Python Celery worker on `queue` of `broker` and resolve once it reports ready (fails loudly after `ms`). */
export const startPythonWorker = async (queue: string, broker: string, ms = 30_000): Promise<PythonWorker> => {
  const child: ChildProcess = spawn(
    PYTHON,
    [
      "-m",
      "celery",
      "-A",
      "celery_tasks",
      "worker",
      "-Q",
      queue,
      "-P",
      "solo",
      "--without-gossip",
      "--without-mingle",
      "--without-heartbeat",
      "-l",
      "info",
      "-n",
      `${queue}@%h`,
    ],
    { cwd: HERE, env: pythonEnv(queue, broker), stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the Python Celery worker did not report ready within ${ms} ms:\n${output}`)),
      ms,
    );
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (/ ready\.\s*$/m.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the Python Celery worker exited with ${code} before it was ready:\n${output}`));
    });
  });
  return {
    output: () => output,
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(killer);
    },
  };
};

/** What py_producer.py printed: the value Python's `get()` returned, or the exception it raised. */
export type PythonOutcome =
  | { readonly value: unknown }
  | { readonly error: { readonly type: string; readonly module: string; readonly message: string } };

/** Run one of py_producer.py's workloads against the TypeScript worker on `queue` of `broker`. */
export const runPythonProducer = (
  queue: string,
  broker: string,
  workload: string,
  ms = 45_000,
): Promise<PythonOutcome> =>
  new Promise((resolve, reject) => {
    const child = spawn(PYTHON, ["py_producer.py", workload], {
      cwd: HERE,
      env: pythonEnv(queue, broker),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`py_producer.py ${workload} did not finish within ${ms} ms:\n${stderr}`));
    }, ms);
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.once("exit", (code) => {
      clearTimeout(timer);
      const line = stdout.trim().split("\n").pop() ?? "";
      try {
        resolve(JSON.parse(line) as PythonOutcome);
      } catch {
        reject(
          new Error(`py_producer.py ${workload} exited with ${code} and printed no outcome:\n${stdout}\n${stderr}`),
        );
      }
    });
  });
