import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const HELP = `celerity: a distributed task queue for TypeScript

Usage:
  celerity run <file.ts|file.js> [args...]   Run a workflow module (TypeScript loads directly).
  celerity broker [options]                  Run a standalone broker node (celerity broker --help).
  celerity worker --app <file> [options]     Run a worker for an app module (celerity worker --help).
  celerity keygen --out <path>               Write an ed25519 key pair for signed messages (celerity keygen --help).
  celerity events [options]                  Watch the cluster's events live (celerity events --help).
  celerity inspect <command> [options]       Ask the workers: ping, active, stats, ... (celerity inspect --help).
  celerity control <command> [options]       Steer the workers: shutdown, pool-grow, ... (celerity control --help).
  celerity queues <command> [options]        List, pause, purge queues; dead letters (celerity queues --help).
  celerity --help                            Show this help.
  celerity --version                         Show the version.

A workflow module creates an app, starts a worker and applies canvases at its
top level (see docs/getting-started.md). It runs to completion like any script.
`;

/** Run the CLI with `argv` (without node and the script); resolves to the exit code. */
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
    case "--version": {
      const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
      process.stdout.write(`${pkg.version}\n`);
      return 0;
    }
    case "run":
      return run(rest);
    case "broker":
    case "worker":
      try {
        return command === "broker" ? await (await import("./cli-broker.ts")).runBroker(rest) : await (await import("./cli-worker.ts")).runWorker(rest);
      } catch (error) {
        process.stderr.write(`celerity ${command}: ${error instanceof Error ? error.message : String(error)}\n`);
        return 2;
      }
    case "keygen":
      try {
        return await (await import("./cli-keygen.ts")).runKeygen(rest);
      } catch (error) {
        process.stderr.write(`celerity keygen: ${error instanceof Error ? error.message : String(error)}\n`);
        return 2;
      }
    case "events":
    case "inspect":
    case "control":
    case "queues":
      try {
        return await (await import("./cli-monitoring.ts")).runMonitoring(command, rest);
      } catch (error) {
        process.stderr.write(`celerity ${command}: ${error instanceof Error ? error.message : String(error)}\n`);
        return 2;
      }
    default:
      process.stderr.write(`celerity: unknown command '${command}'\n\n${HELP}`);
      return 2;
  }
};

const run = async ([file, ...args]: readonly string[]): Promise<number> => {
  if (file === undefined) {
    process.stderr.write("celerity run: missing the workflow file (celerity run ./workflow.ts)\n");
    return 2;
  }
  const path = resolve(file);
  if (!existsSync(path)) {
    process.stderr.write(`celerity run: no such file: ${path}\n`);
    return 2;
  }
  process.argv = [process.argv[0], path, ...args];
  try {
    const module = (await import(pathToFileURL(path).href)) as { default?: unknown };
    if (typeof module.default === "function") await (module.default as () => unknown)();
    return 0;
  } catch (error) {
    process.stderr.write(`celerity run: ${file} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return 1;
  }
};
