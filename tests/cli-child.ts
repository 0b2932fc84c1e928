// Running the `celerity` CLI from the sources as a child process in multi-process tests:
// a child whose output lines can be waited on, and a run to completion.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { fileURLToPath } from "node:url";

const CLI = fileURLToPath(new URL("../src/cli.js", import.meta.url));
const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** A `celerity` CLI child whose output lines can be waited on; for multi-process tests. */
export class CliChild {
  readonly process: ChildProcessWithoutNullStreams;
  readonly lines: string[] = [];
  readonly stdout: string[] = [];
  private readonly waiters = new Set<{ pattern: RegExp; resolve: (match: RegExpExecArray) => void }>();
  readonly exited: Promise<number | null>;

  constructor(
    readonly name: string,
    args: readonly string[],
  ) {
    this.process = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"] });
    this.exited = new Promise((resolve) => this.process.once("close", (code) => resolve(code)));
    for (const [stream, isStdout] of [
      [this.process.stdout, true],
      [this.process.stderr, false],
    ] as const) {
      let partial = "";
      stream.setEncoding("utf8");
      stream.on("data", (chunk: string) => {
        const parts = (partial + chunk).split("\n");
        partial = parts.pop() ?? "";
        for (const line of parts) {
          this.lines.push(line);
          if (isStdout) this.stdout.push(line);
          for (const waiter of [...this.waiters]) {
            const match = waiter.pattern.exec(line);
            if (match !== null) {
              this.waiters.delete(waiter);
              waiter.resolve(match);
            }
          }
        }
      });
    }
  }

  /** The first line matching `pattern`, or a failure with the output after `ms`. */
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

  /** The exit code, or a failure with the output after `ms`. */
  async exitCode(ms: number): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`timed out after ${ms} ms waiting for ${this.name} to exit\n${this.tail()}`)),
        ms,
      );
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  tail(): string {
    return this.lines
      .slice(-20)
      .map((line) => `  [${this.name}] ${line}`)
      .join("\n");
  }

  async kill(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    this.process.kill("SIGKILL");
    await this.exited;
  }
}

/** Run a CLI command to its end: its exit code and output, or a failure after `ms`. */
export const runCli = async (
  args: readonly string[],
  ms: number,
): Promise<{ code: number | null; stdout: string; output: string }> => {
  const child = new CliChild(args[0], args);
  try {
    const code = await child.exitCode(ms);
    return { code, stdout: child.stdout.join("\n"), output: child.lines.join("\n") };
  } finally {
    await child.kill();
  }
};
