/**
 * Helpers for multi-process tests on an external engine (Redis, ...):
 * deadlines, cleanup scopes, child processes with waits on their output, and
 * a TCP proxy that cuts connections. Every wait is bounded and fails with the
 * children's output; every process started is killed when the scope closes,
 * or when this process exits.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { createServer, connect, type AddressInfo, type Server, type Socket } from "node:net";
import { fileURLToPath } from "node:url";

export const CLI = fileURLToPath(new URL("../src/cli.js", import.meta.url));
export const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** Startup of a child (tsx compiles on the fly) takes about a second, and 15 s on a machine loaded by a whole test run. */
export const START_TIMEOUT_MS = 30_000;

/** `promise`, or a rejection naming `what` (and whatever `detail` tells) after `ms`. */
export const within = <T>(
  promise: Promise<T>,
  ms: number,
  what: string,
  detail: () => string = () => "",
): Promise<T> => {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const more = detail();
      reject(new Error(`timed out after ${ms} ms waiting for ${what}${more === "" ? "" : `\n${more}`}`));
    }, ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
};

/** Cleanups run in reverse order, each even if an earlier one failed. */
export class Scope {
  private readonly cleanups: (() => unknown)[] = [];

  defer(cleanup: () => unknown): void {
    this.cleanups.push(cleanup);
  }

  async close(): Promise<void> {
    const errors: unknown[] = [];
    for (const cleanup of this.cleanups.splice(0).reverse()) {
      try {
        await cleanup();
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, "cleanup failed");
  }
}

const running = new Set<ChildProcessWithoutNullStreams>();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

type Stream = "stdout" | "stderr";

/** A `celerity` CLI child process, with its output split into lines and waits on them. */
export class Child {
  readonly process: ChildProcessWithoutNullStreams;
  readonly output: { stream: Stream; line: string }[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly waiters = new Set<{
    stream: Stream;
    pattern: RegExp;
    resolve(m: RegExpExecArray): void;
    reject(e: unknown): void;
  }>();

  constructor(
    readonly name: string,
    args: readonly string[],
    env: Record<string, string> = {},
  ) {
    this.process = spawn(process.execPath, [CLI, ...args], {
      cwd: ROOT,
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, ...env },
    });
    running.add(this.process);
    for (const stream of ["stdout", "stderr"] as const) {
      let partial = "";
      this.process[stream].setEncoding("utf8");
      this.process[stream].on("data", (chunk: string) => {
        partial += chunk;
        const lines = partial.split("\n");
        partial = lines.pop() ?? "";
        for (const line of lines) this.received(stream, line);
      });
    }
    this.exited = new Promise((resolve) => {
      this.process.once("exit", (code, signal) => {
        running.delete(this.process);
        this.exit = { code, signal };
        for (const waiter of this.waiters)
          waiter.reject(
            new Error(
              `${this.name} exited (code ${code}, signal ${signal}) before printing ${waiter.pattern}\n${this.tail()}`,
            ),
          );
        this.waiters.clear();
        resolve({ code, signal });
      });
    });
  }

  get pid(): number {
    return this.process.pid as number;
  }

  /** The first line of `stream` that matches `pattern`. */
  waitFor(stream: Stream, pattern: RegExp): Promise<RegExpExecArray> {
    for (const { stream: s, line } of this.output) {
      const match = s === stream ? pattern.exec(line) : null;
      if (match !== null) return Promise.resolve(match);
    }
    if (this.exit !== undefined)
      return Promise.reject(new Error(`${this.name} has exited without printing ${pattern}\n${this.tail()}`));
    return new Promise((resolve, reject) => {
      const waiter = {
        stream,
        pattern,
        resolve: (match: RegExpExecArray) => {
          this.waiters.delete(waiter);
          resolve(match);
        },
        reject,
      };
      this.waiters.add(waiter);
    });
  }

  /** SIGKILL (or `signal`) and wait for the exit. */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    if (this.exit === undefined) this.process.kill(signal);
    await this.exited;
  }

  /** The last lines of output, for failure messages. */
  tail(lines = 30): string {
    return this.output
      .slice(-lines)
      .map(({ stream, line }) => `  [${this.name} ${stream}] ${line}`)
      .join("\n");
  }

  private received(stream: Stream, line: string): void {
    this.output.push({ stream, line });
    for (const waiter of [...this.waiters]) {
      if (waiter.stream !== stream) continue;
      const match = waiter.pattern.exec(line);
      if (match !== null) waiter.resolve(match);
    }
  }
}

export const tails =
  (...children: (Child | undefined)[]) =>
  () =>
    children
      .map((child) => child?.tail() ?? "")
      .filter(Boolean)
      .join("\n");

/** Small seeded generator (mulberry32): the same seed cuts at the same byte counts. */
export const seeded = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
};

/**
 * A TCP proxy that cuts each connection once it has forwarded a random
 * number of bytes (both directions together), until `maxCuts` connections
 * have been cut; after that it only forwards. A cut forwards the bytes up to
 * the cut point (often mid-command), then closes both sides.
 */
export class CuttingProxy {
  cuts = 0;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly targetPort: number,
    private readonly random: () => number,
    private readonly maxCuts: number,
  ) {}

  /** Listen; resolves with the port. */
  async start(): Promise<number> {
    const server = createServer((client) => this.accept(client));
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    return (server.address() as AddressInfo).port;
  }

  private threshold(): number {
    return this.random() < 0.25 ? 1 + Math.floor(this.random() * 300) : 1_000 + Math.floor(this.random() * 20_000);
  }

  private accept(client: Socket): void {
    const upstream = connect({ host: "127.0.0.1", port: this.targetPort });
    this.sockets.add(client).add(upstream);
    const limit = this.cuts < this.maxCuts ? this.threshold() : Number.POSITIVE_INFINITY;
    let forwarded = 0;
    let cut = false;
    const forward = (from: Socket, to: Socket) => (chunk: Buffer) => {
      if (cut) return;
      if (forwarded + chunk.length < limit || this.cuts >= this.maxCuts) {
        forwarded += chunk.length;
        to.write(chunk);
        return;
      }
      cut = true;
      this.cuts++;
      to.end(chunk.subarray(0, limit - forwarded), () => to.destroy());
      from.destroy();
    };
    client.on("data", forward(client, upstream));
    upstream.on("data", forward(upstream, client));
    for (const [socket, other] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      socket.on("error", () => {});
      socket.on("close", () => {
        this.sockets.delete(socket);
        if (!cut) other.destroy();
      });
    }
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
