import { existsSync, readFileSync } from "node:fs";
import { cpus } from "node:os";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import type { App } from "../runtime/app.ts";
import { POOL_FLAGS, POOL_HELP, poolOptionsOf, shutdownTimeoutOf } from "./cli-worker-pool.ts";
import { stopOnSignals } from "./cli-worker-shutdown.ts";

export const WORKER_HELP = `celerity worker: run a worker process for an app module

Options:
  --app <file>          module that exports the app (default export or 'app')
  --broker <url>        broker node, celerity://host:port (or CELERITY_BROKER_URL)
  --concurrency <n>     tasks run at once (default: number of CPUs)
  --queues <a,b>        queues to consume (default: celery)
  --name <name>         worker name in logs and errors
  --token-file <f>      token for the node (or CELERITY_TOKEN)

${POOL_HELP}
The module's createApp() picks the broker up from the environment, so the
same module serves producers and workers.
`;

/** Run a worker until SIGINT or SIGTERM (then stop warmly; a second signal stops it cold); resolves to the exit code. */
export const runWorker = async (argv: readonly string[]): Promise<number> => {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      app: { type: "string" },
      broker: { type: "string" },
      concurrency: { type: "string" },
      queues: { type: "string" },
      name: { type: "string" },
      "token-file": { type: "string" },
      help: { type: "boolean" },
      ...POOL_FLAGS,
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(WORKER_HELP);
    return 0;
  }
  if (values.app === undefined) throw new Error("--app is required: the module that exports the app");
  const path = resolve(values.app);
  if (!existsSync(path)) throw new Error(`--app: no such file: ${path}`);
  if (values.broker !== undefined) process.env.CELERITY_BROKER_URL = values.broker;
  if (process.env.CELERITY_BROKER_URL === undefined) {
    throw new Error("no broker to consume from: pass --broker celerity://host:port or set CELERITY_BROKER_URL (a worker process has no use for a broker of its own)");
  }
  const pooling = poolOptionsOf(values);
  const shutdownTimeout = shutdownTimeoutOf(values);
  if (values.watch) return (await import("./cli-worker-watch.ts")).watchWorker(argv, path, (line) => console.error(line));
  if (values["token-file"] !== undefined) process.env.CELERITY_TOKEN = readFileSync(values["token-file"], "utf8").trim();
  const module = (await import(pathToFileURL(path).href)) as { default?: unknown; app?: unknown };
  const app = (isApp(module.default) ? module.default : module.app) as App | undefined;
  if (!isApp(app)) throw new Error(`${values.app} exports no app: export it as the default export or as 'app'`);
  const concurrency = values.concurrency === undefined ? cpus().length : Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`--concurrency must be a positive integer, got '${values.concurrency}'`);
  const worker = app.worker({
    concurrency,
    ...pooling,
    appModule: pathToFileURL(path).href,
    ...(values.queues !== undefined ? { queues: values.queues.split(",").map((q) => q.trim()).filter(Boolean) } : {}),
    ...(values.name !== undefined ? { name: values.name } : {}),
  });
  await worker.start();
  const { pool, concurrency: running } = worker.stats();
  console.error(`celerity worker ${worker.name}: consuming with concurrency ${running} on the ${pool} pool`);
  await stopOnSignals(worker, shutdownTimeout, (line) => console.error(line));
  await app.close();
  console.error(`celerity worker ${worker.name}: stopped`);
  return 0;
};

const isApp = (value: unknown): value is App =>
  value !== null && typeof value === "object" && typeof (value as App).worker === "function" && typeof (value as App).task === "function";
