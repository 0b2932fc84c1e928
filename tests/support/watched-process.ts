/**
 * A child process whose output lines can be waited on, for tests that drive
 * the `celerity` CLI (or another node program) as a separate process. Every
 * wait is bounded and fails with the process's last lines; a wait for a line
 * the process can no longer print (it has exited) fails at once; every
 * process started is killed when the test process exits, even after a crash
 * of the runner.
 *
 * @example
 * const broker = celerity("broker", ["broker", "--port", "0"]);
 * t.after(() => broker.kill());
 * const [, url] = await broker.waitFor(/listening on (celerity:\/\/\S+)/, START_TIMEOUT_MS);
 */
import { spawn, type ChildProcessWithoutNullStreams, type SpawnOptions } from "node:child_process";
import { fileURLToPath } from "node:url";
import { scaled } from "./waits.ts";

/** The CLI's entry in this checkout, run with `node` (it loads tsx itself). */
export const CLI = fileURLToPath(new URL("../../src/cli.js", import.meta.url));
/** The repository's root, the working directory of every child by default. */
export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
/**
 * Startup of a child (tsx compiles on the fly) takes about a second, 15 s on a machine loaded by a whole test run,
 * and over 30 s with a test run and other work beside it; a test starting children allows for this many ms each.
 */
export const START_TIMEOUT_MS = scaled(60_000);

export type OutputStream = "stdout" | "stderr";

/** One line a process printed, and where. */
export interface PrintedLine {
  readonly stream: OutputStream;
  readonly line: string;
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface WaitForOptions {
  /** Only lines of this stream; default either. */
  readonly stream?: OutputStream;
  /** Only lines from this index of `printed` on (e.g. `printed.length` before a restart); default 0. */
  readonly from?: number;
  /** More to say on a failure, e.g. the tails of the other processes of the test. */
  readonly detail?: () => string;
}

interface LineWaiter {
  readonly stream: OutputStream | undefined;
  readonly pattern: RegExp;
  readonly from: number;
  resolve(match: RegExpExecArray): void;
  reject(error: Error): void;
}

/** Every watched process still running; killed if this process exits without cleaning up. */
const running = new Set<ChildProcessWithoutNullStreams>();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

export class WatchedProcess {
  readonly child: ChildProcessWithoutNullStreams;
  /** Everything printed so far, stdout and stderr interleaved as they arrived. */
  readonly printed: PrintedLine[] = [];
  /** How the process ended, once its output is read to the end. */
  readonly exited: Promise<Exit>;
  private ended: Exit | undefined;
  private readonly exitedAtAll: Promise<Exit>;
  private readonly waiters = new Set<LineWaiter>();

  constructor(
    readonly name: string,
    command: string,
    args: readonly string[],
    options: Omit<SpawnOptions, "stdio"> = {},
  ) {
    this.child = spawn(command, args, {
      ...options,
      stdio: ["pipe", "pipe", "pipe"],
    }) as ChildProcessWithoutNullStreams;
    running.add(this.child);
    // "exit" may come before the last output is read, and a grandchild holding the pipes can delay "close" for good:
    // killing waits for the first, reading the result of a run for the second.
    this.exitedAtAll = new Promise((resolve) =>
      this.child.once("exit", (code, signal) => {
        running.delete(this.child);
        resolve({ code, signal });
      }),
    );
    this.exited = new Promise((resolve) =>
      this.child.once("close", (code, signal) => {
        running.delete(this.child);
        this.ended = { code, signal };
        for (const waiter of this.waiters)
          waiter.reject(
            new Error(
              `${this.name} exited (code ${code}, signal ${signal}) before printing ${waiter.pattern}\n${this.tail()}`,
            ),
          );
        this.waiters.clear();
        resolve({ code, signal });
      }),
    );
    for (const stream of ["stdout", "stderr"] as const) {
      let partial = "";
      this.child[stream].setEncoding("utf8");
      this.child[stream].on("data", (chunk: string) => {
        const parts = (partial + chunk).split("\n");
        partial = parts.pop() ?? "";
        for (const line of parts) this.received(stream, line);
      });
      this.child[stream].on("end", () => {
        if (partial !== "") this.received(stream, partial);
        partial = "";
      });
    }
  }

  get pid(): number {
    return this.child.pid as number;
  }

  /** Everything printed so far, stdout and stderr interleaved as they arrived. */
  get output(): string {
    return this.printed.map(({ line }) => line).join("\n");
  }

  /** What one stream printed so far. */
  text(stream: OutputStream): string {
    return this.printed
      .filter((printed) => printed.stream === stream)
      .map(({ line }) => line)
      .join("\n");
  }

  /** How many lines printed so far match `pattern`. */
  count(pattern: RegExp): number {
    return this.printed.filter(({ line }) => pattern.test(line)).length;
  }

  /**
   * The first line matching `pattern`; a failure with the last lines when none
   * came within `ms`, or at once when the process exits without printing it.
   */
  waitFor(pattern: RegExp, ms: number, options: WaitForOptions = {}): Promise<RegExpExecArray> {
    const { stream, from = 0, detail = () => "" } = options;
    for (let i = from; i < this.printed.length; i++) {
      const printed = this.printed[i];
      const match = stream === undefined || printed.stream === stream ? pattern.exec(printed.line) : null;
      if (match !== null) return Promise.resolve(match);
    }
    const more = () => {
      const text = detail();
      return text === "" ? this.tail() : `${this.tail()}\n${text}`;
    };
    if (this.ended !== undefined)
      return Promise.reject(
        new Error(
          `${this.name} has exited (code ${this.ended.code}, signal ${this.ended.signal}) without printing ${pattern}\n${more()}`,
        ),
      );
    return new Promise((resolve, reject) => {
      const settle = () => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
      };
      const waiter: LineWaiter = {
        stream,
        pattern,
        from,
        resolve: (match) => (settle(), resolve(match)),
        reject: (error) => (settle(), reject(new Error(`${error.message}${detail() === "" ? "" : `\n${detail()}`}`))),
      };
      const timer = setTimeout(
        () =>
          waiter.reject(
            new Error(`timed out after ${ms} ms waiting for ${this.name} to print ${pattern}\n${this.tail()}`),
          ),
        ms,
      );
      this.waiters.add(waiter);
    });
  }

  /** How the process ended (its output read to the end), or a failure with the last lines if it still runs after `ms`. */
  exit(ms: number): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
      this.exited,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${this.name} still running after ${ms} ms\n${this.tail()}`)), ms);
      }),
    ]).finally(() => clearTimeout(timer));
  }

  /** Send `signal` and wait (at most `ms`) for the process to end. */
  stop(signal: NodeJS.Signals, ms: number): Promise<Exit> {
    this.child.kill(signal);
    return this.exit(ms);
  }

  /** Send `signal` (SIGKILL by default) unless the process has ended, and wait for it to end; for cleanup after a test. */
  kill(signal: NodeJS.Signals = "SIGKILL"): Promise<Exit> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exitedAtAll;
  }

  /** The last lines printed, each marked with the process's name and stream, for failure messages. */
  tail(lines = 30): string {
    return this.printed
      .slice(-lines)
      .map(({ stream, line }) => `  [${this.name} ${stream}] ${line}`)
      .join("\n");
  }

  private received(stream: OutputStream, line: string): void {
    const index = this.printed.length;
    this.printed.push({ stream, line });
    for (const waiter of [...this.waiters]) {
      if ((waiter.stream !== undefined && waiter.stream !== stream) || index < waiter.from) continue;
      const match = waiter.pattern.exec(line);
      if (match !== null) waiter.resolve(match);
    }
  }
}

export interface NodeProcessOptions {
  /** Added to this process's environment. */
  readonly env?: Record<string, string | undefined>;
  /** Variables of this process's environment the child does not inherit (e.g. a broker url set in the shell). */
  readonly withoutEnv?: readonly string[];
  /** Default the repository's root. */
  readonly cwd?: string;
}

/** `node <args>` (this process's node binary) as a watched process. */
export const nodeProcess = (
  name: string,
  args: readonly string[],
  options: NodeProcessOptions = {},
): WatchedProcess => {
  const env = { ...process.env };
  for (const variable of options.withoutEnv ?? []) delete env[variable];
  return new WatchedProcess(name, process.execPath, args, {
    cwd: options.cwd ?? ROOT,
    env: { ...env, ...options.env },
  });
};

/** `celerity <args>` (this checkout's CLI) as a watched process. */
export const celerity = (name: string, args: readonly string[], options: NodeProcessOptions = {}): WatchedProcess =>
  nodeProcess(name, [CLI, ...args], options);

/** What a CLI command that ran to its end printed, and how it exited. */
export interface CompletedRun extends Exit {
  /** stdout alone. */
  readonly stdout: string;
  /** stderr alone. */
  readonly stderr: string;
  /** stdout and stderr interleaved. */
  readonly output: string;
}

/** Run `celerity <args>` to its end: its exit and output, or a failure with its last lines after `ms`. */
export const runCelerity = async (
  args: readonly string[],
  ms: number,
  options: NodeProcessOptions = {},
): Promise<CompletedRun> => {
  const run = celerity(`celerity ${args[0] ?? ""}`.trimEnd(), args, options);
  try {
    const exit = await run.exit(ms);
    return { ...exit, stdout: run.text("stdout"), stderr: run.text("stderr"), output: run.output };
  } finally {
    await run.kill();
  }
};

/** The tails of several processes (those not started yet are left out), for a wait's failure message. */
export const tails =
  (...processes: (WatchedProcess | undefined)[]) =>
  (): string =>
    processes
      .map((watched) => watched?.tail() ?? "")
      .filter(Boolean)
      .join("\n");
