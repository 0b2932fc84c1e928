/**
 * A child process whose output lines can be waited on, for tests that drive
 * the CLI: every wait is bounded and fails with the process's last lines.
 */
import { spawn, type ChildProcessWithoutNullStreams, type SpawnOptions } from "node:child_process";

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export class WatchedProcess {
  readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: string[] = [];
  private readonly waiters = new Set<{ pattern: RegExp; resolve: (match: RegExpExecArray) => void }>();
  private readonly exited: Promise<Exit>;

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
    this.exited = new Promise((resolve) => this.child.once("close", (code, signal) => resolve({ code, signal })));
    for (const stream of [this.child.stdout, this.child.stderr]) {
      let partial = "";
      stream.setEncoding("utf8");
      stream.on("data", (chunk: string) => {
        const parts = (partial + chunk).split("\n");
        partial = parts.pop() ?? "";
        for (const line of parts) this.received(line);
      });
      stream.on("end", () => {
        if (partial !== "") this.received(partial);
        partial = "";
      });
    }
  }

  /** Everything printed so far, stdout and stderr interleaved as they arrived. */
  get output(): string {
    return this.lines.join("\n");
  }

  /** The first line matching `pattern`, or a failure with the last lines after `ms`. */
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

  /** How the process ended, or a failure with the last lines if it is still running after `ms`. */
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
  async stop(signal: NodeJS.Signals, ms: number): Promise<Exit> {
    this.child.kill(signal);
    return this.exit(ms);
  }

  /** Kill the process if it still runs (for cleanup after a failed test). */
  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill("SIGKILL");
    await this.exited;
  }

  tail(): string {
    return this.lines
      .slice(-20)
      .map((line) => `  [${this.name}] ${line}`)
      .join("\n");
  }

  private received(line: string): void {
    this.lines.push(line);
    for (const waiter of [...this.waiters]) {
      const match = waiter.pattern.exec(line);
      if (match !== null) {
        this.waiters.delete(waiter);
        waiter.resolve(match);
      }
    }
  }
}
