// The `celerity` command line: the top-level help and version, and dispatch to the
// commands, each loaded only when it runs. Usage errors exit with code 2.
import { existsSync, readFileSync } from "node:fs";
import { UsageError } from "./support/options.ts";

const HELP = `celerity: a distributed task queue for TypeScript

Usage:
  celerity run <file> [args...]              Run a workflow module (.js, or .ts directly) (celerity run --help).
  celerity broker [options]                  Run a standalone broker node (celerity broker --help).
  celerity worker --app <file> [options]     Run a worker for an app module (celerity worker --help).
  celerity beat --app <file> [options]       Send an app's periodic tasks (celerity beat --help).
  celerity beat list [--broker <url>]        List the schedules kept in the broker.
  celerity keygen --out <path>               Write an ed25519 key pair for signed messages (celerity keygen --help).
  celerity events [options]                  Watch the cluster's events live (celerity events --help).
  celerity inspect <command> [options]       Ask the workers: ping, active, stats, ... (celerity inspect --help).
  celerity control <command> [options]       Steer the workers: shutdown, pool-grow, ... (celerity control --help).
  celerity queues <command> [options]        List, pause, purge queues; dead letters (celerity queues --help).
  celerity monitor --broker <url> [options]  Serve the web dashboard and HTTP API (celerity monitor --help).
  celerity --help                            Show this help.
  celerity --version                         Show the version.

A workflow module creates an app, starts a worker and applies canvases at its
top level (see docs/getting-started.md). It runs to completion like any script.
`;

/** The commands, each loaded only when it runs. */
const COMMANDS: Record<string, () => Promise<(argv: readonly string[]) => Promise<number>>> = {
  run: async () => (await import("./run.ts")).runWorkflow,
  broker: async () => (await import("./broker.ts")).runBroker,
  worker: async () => (await import("./worker.ts")).runWorker,
  beat: async () => (await import("./beat.ts")).runBeat,
  keygen: async () => (await import("./keygen.ts")).runKeygen,
  events: async () => (await import("./events.ts")).runEvents,
  inspect: async () => (await import("./control.ts")).runInspect,
  control: async () => (await import("./control.ts")).runControl,
  queues: async () => (await import("./queues.ts")).runQueues,
  monitor: async () => (await import("./monitor.ts")).runMonitor,
};

/**
 * Run the CLI with `argv` (without node and the script); resolves to the exit
 * code: 0 done, 1 a workflow or command that failed, 2 a usage error or a
 * command that could not start.
 */
export const main = async (argv: readonly string[]): Promise<number> => {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
    case "-h":
    case "--help":
    case "help":
      process.stdout.write(HELP);
      return command === undefined ? 1 : 0;
    case "-v":
    case "--version":
      process.stdout.write(`${packageVersion()}\n`);
      return 0;
  }
  const load = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (load === undefined) {
    process.stderr.write(`celerity: unknown command '${command}'\n\n${HELP}`);
    return 2;
  }
  try {
    return await (await load())(rest);
  } catch (error) {
    const message =
      error instanceof UsageError ? error.message : error instanceof Error ? error.message : String(error);
    process.stderr.write(`celerity ${command}: ${message}\n`);
    return 2;
  }
};

/** The version in celerity's package.json: three folders up once compiled (dist/src/cli/), two up in the sources. */
const packageVersion = (): string => {
  for (const relative of ["../../package.json", "../../../package.json"]) {
    const url = new URL(relative, import.meta.url);
    if (!existsSync(url)) continue;
    const pkg = JSON.parse(readFileSync(url, "utf8")) as { name?: string; version?: string };
    if (pkg.name === "celerity" && pkg.version !== undefined) return pkg.version;
  }
  return "unknown";
};
