// `celerity run`: run a workflow module to completion, calling its default export if it
// is a function; the exit code says whether it completed.
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { UsageError } from "./support/options.ts";
import { importUserModule } from "./support/user-module.ts";

export const RUN_HELP = `celerity run: run a workflow module to completion

Usage:
  celerity run <file> [args...]

The module (.js, .mjs, or .ts, which loads directly) creates an app, starts a
worker and applies canvases at its top level. If its default export is a
function, it is called and awaited after the module has loaded. Inside the
module, process.argv.slice(2) is [args...].

Exit codes: 0 when the module completed, 1 when it threw (the stack is
printed, and the process exits even if connections are still open), 2 for a
usage error such as a missing file.
`;

/** Run a workflow module; resolves to the exit code. */
export const runWorkflow = async (argv: readonly string[]): Promise<number> => {
  const [file, ...args] = argv;
  if (file === "--help" || file === "-h") {
    process.stdout.write(RUN_HELP);
    return 0;
  }
  if (file === undefined) throw new UsageError("missing the workflow file (celerity run ./workflow.ts)");
  const path = resolve(file);
  if (!existsSync(path)) throw new UsageError(`no such file: ${path}`);
  process.argv = [process.argv[0], path, ...args];
  try {
    const module = await importUserModule(path);
    if (typeof module.default === "function") await (module.default as () => unknown)();
    return 0;
  } catch (error) {
    process.stderr.write(
      `celerity run: ${file} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    return 1;
  }
};
