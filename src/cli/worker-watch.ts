// `celerity worker --watch`: run the worker as a child process and, when a file beside
// the app module changes, stop it warmly and start it again, so the worker and every
// thread or child of its pool load the new code. Signals sent to the watcher stop the
// worker the same way and end.
import { spawn, type ChildProcess } from "node:child_process";
import { watch } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";

const CLI = fileURLToPath(new URL("../cli.js", import.meta.url));
const SETTLE_MS = 200;
const IGNORED = /(^|[\\/])(node_modules|\.git)([\\/]|$)/;

export const watchWorker = (argv: readonly string[], appPath: string, log: (line: string) => void): Promise<number> =>
  new Promise((done) => {
    const args = argv.filter((arg) => arg !== "--watch");
    const root = dirname(appPath);
    let child: ChildProcess | undefined;
    let restarting = false;
    let stopping = false;
    let settle: NodeJS.Timeout | undefined;

    const start = (): void => {
      child = spawn(process.execPath, [CLI, "worker", ...args], { stdio: "inherit" });
      child.on("exit", (code) => {
        child = undefined;
        if (stopping) {
          watcher.close();
          return done(code ?? 0);
        }
        if (restarting) {
          restarting = false;
          return start();
        }
        log(
          `celerity worker --watch: the worker exited with code ${code}; waiting for a change to ${root} to start it again`,
        );
      });
    };

    const watcher = watch(root, { recursive: true }, (_event, file) => {
      if (file !== null && IGNORED.test(file)) return;
      clearTimeout(settle);
      settle = setTimeout(() => {
        log(`celerity worker --watch: ${file ?? "a file"} changed: restarting the worker`);
        if (child === undefined) return start();
        restarting = true;
        child.kill("SIGTERM");
      }, SETTLE_MS);
    });

    const onSignal = (signal: NodeJS.Signals): void => {
      stopping = true;
      clearTimeout(settle);
      if (child === undefined) {
        watcher.close();
        return done(0);
      }
      child.kill(signal);
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    start();
  });
