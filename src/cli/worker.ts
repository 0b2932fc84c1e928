// `celerity worker`: run a worker process for an app module, with its broker, result
// store, queues, concurrency, events, remote control and pool options.
import { existsSync } from "node:fs";
import { cpus } from "node:os";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { App } from "../../runtime/app.ts";
import { integerOption, parseCommandLine, readTokenFile, UsageError } from "./support/options.ts";
import { POOL_FLAGS, POOL_HELP, poolOptionsOf, shutdownTimeoutOf } from "./worker-pool.ts";
import { stopOnSignals } from "./worker-shutdown.ts";
import { importUserModule } from "./support/user-module.ts";
import type { MetricsServer } from "../../runtime/metrics/metrics-server.ts";

export const WORKER_HELP = `celerity worker: run a worker process for an app module

Usage:
  celerity worker --app <file> [options]

Options:
  --app <file>              module that exports the app (default export or 'app');
                            .ts files load directly
  --broker <url>            broker node celerity://host:port, Redis
                            redis://host:port/db, or RabbitMQ
                            amqp://user:password@host:5672/vhost (or CELERITY_BROKER_URL)
  --results <url>           result store, if not the broker's: redis://...,
                            postgres://... (or CELERITY_RESULTS_URL)
  --schedules <url>         the PostgreSQL of the beat's schedules (postgres://...,
                            or CELERITY_SCHEDULES_URL): each scheduled run is
                            claimed there before it runs, so a run a beat sent
                            twice runs once
  --concurrency <n>         tasks run at once (default: number of CPUs)
  --queues <a,b>            queues to consume (default: celery)
  --name <name>             worker name in logs, events and remote control
                            (default <pid>@<host>)
  --events                  send task and worker events (celerity events)
  --without-control         answer no remote control (celerity inspect / control)
  --metrics-port <port>     serve Prometheus metrics of this worker's tasks and
                            queues at http://127.0.0.1:<port>/metrics
  --metrics-host <host>     the interface for --metrics-port (default 127.0.0.1;
                            0.0.0.0 to be scraped from other machines)
  --token-file <f>          token for the node (or CELERITY_TOKEN)
  --connect-timeout <s>     wait this long for a broker node to be reachable,
                            saying so while waiting, then exit with code 2
                            (default 60; 0 waits for ever)
  -h, --help                show this help
${POOL_HELP}
The module's createApp() picks the broker up from the environment, so the
same module serves producers and workers.
`;

const DEFAULT_CONNECT_TIMEOUT_S = 60;
/** How long a worker that failed to start may take to close its app before the process exits anyway. */
const CLOSE_AFTER_FAILURE_MS = 5_000;

/** How long a stopped worker's process may linger for handles its tasks left open before it exits anyway. */
const EXIT_AFTER_STOP_MS = 2_000;

/** Run a worker until SIGINT or SIGTERM (then stop warmly; a second signal stops it cold); resolves to the exit code. */
export const runWorker = async (argv: readonly string[]): Promise<number> => {
  const { values } = parseCommandLine("worker", argv, {
    app: { type: "string" },
    broker: { type: "string" },
    results: { type: "string" },
    schedules: { type: "string" },
    concurrency: { type: "string" },
    queues: { type: "string" },
    name: { type: "string" },
    "token-file": { type: "string" },
    "connect-timeout": { type: "string" },
    events: { type: "boolean" },
    "without-control": { type: "boolean" },
    "metrics-port": { type: "string" },
    "metrics-host": { type: "string" },
    ...POOL_FLAGS,
  });
  if (values.help) {
    process.stdout.write(WORKER_HELP);
    return 0;
  }
  // Everything is checked before the app module loads: once it has, its connection would keep a failed process alive.
  if (values.app === undefined)
    throw new UsageError("--app is required: the module that exports the app (celerity worker --app ./tasks.ts)");
  const path = resolve(values.app);
  if (!existsSync(path)) throw new UsageError(`--app: no such file: ${path}`);
  const concurrency =
    values.concurrency === undefined ? cpus().length : integerOption("concurrency", values.concurrency, 1);
  const queues = values.queues
    ?.split(",")
    .map((q) => q.trim())
    .filter(Boolean);
  if (queues !== undefined && queues.length === 0) throw new UsageError(`--queues names no queue: '${values.queues}'`);
  const connectTimeoutS =
    values["connect-timeout"] === undefined
      ? DEFAULT_CONNECT_TIMEOUT_S
      : integerOption("connect-timeout", values["connect-timeout"], 0);
  const metricsPort =
    values["metrics-port"] === undefined ? undefined : integerOption("metrics-port", values["metrics-port"], 0, 65_535);
  if (values["metrics-host"] !== undefined && metricsPort === undefined)
    throw new UsageError("--metrics-host needs --metrics-port: the port to serve the metrics on");
  const brokerUrl = values.broker ?? process.env.CELERITY_BROKER_URL;
  if (brokerUrl === undefined || brokerUrl === "") {
    throw new UsageError(
      "no broker to consume from: pass --broker celerity://host:port (or redis://host:port/db, amqp://host:5672) or set CELERITY_BROKER_URL (a worker process has no use for a broker of its own)",
    );
  }
  const { BROKER_SCHEMES } = await import("../../runtime/connect.ts");
  if (!BROKER_SCHEMES.some((scheme) => brokerUrl.startsWith(scheme))) {
    throw new UsageError(
      `--broker: ${JSON.stringify(brokerUrl)} has no scheme celerity knows; use one of ${BROKER_SCHEMES.join(", ")}`,
    );
  }
  process.env.CELERITY_BROKER_URL = brokerUrl;
  if (values.results !== undefined) process.env.CELERITY_RESULTS_URL = values.results;
  if (values.schedules !== undefined) {
    if (!/^postgres(ql)?:\/\//.test(values.schedules))
      throw new UsageError(`--schedules: ${JSON.stringify(values.schedules)} is not a postgres:// url`);
    process.env.CELERITY_SCHEDULES_URL = values.schedules;
  }
  const pooling = poolOptionsOf(values);
  const shutdownTimeout = shutdownTimeoutOf(values);
  if (values.watch) return (await import("./worker-watch.ts")).watchWorker(argv, path, (line) => console.error(line));
  if (values["token-file"] !== undefined) process.env.CELERITY_TOKEN = readTokenFile(values["token-file"]);

  const log = (message: string) => console.error(`celerity worker: ${message}`);
  // Loaded only now (it brings in the node's client), so that --help and usage errors answer at once.
  if (brokerUrl.startsWith("celerity://")) {
    // Other brokers' transports keep trying to connect by themselves (Redis: for 30 s) before the worker's start fails.
    const { waitForNode } = await import("./support/wait-for-node.ts");
    await waitForNode(brokerUrl, { timeoutMs: connectTimeoutS * 1_000, log });
  }
  const module = await importUserModule(path);
  const app = isApp(module.default) ? module.default : isApp(module.app) ? module.app : undefined;
  if (app === undefined) throw new Error(`${values.app} exports no app: export it as the default export or as 'app'`);
  const worker = app.worker({
    concurrency,
    ...pooling,
    appModule: pathToFileURL(path).href,
    ...(queues !== undefined ? { queues } : {}),
    ...(values.name !== undefined ? { name: values.name } : {}),
    events: values.events === true,
    control: values["without-control"] !== true,
  });
  let metrics: MetricsServer | undefined;
  try {
    if (metricsPort !== undefined)
      metrics = await serveWorkerMetrics(app, metricsPort, values["metrics-host"], queues, worker.name);
    await worker.start();
  } catch (error) {
    await metrics?.close();
    await closeWithin(app, CLOSE_AFTER_FAILURE_MS);
    throw error;
  }
  const { pool, concurrency: running } = worker.stats();
  // A shutdown by remote control stops the worker itself; a signal starts a warm (then cold) shutdown.
  const byControl = worker.done.then(() => "control" as const);
  // Signals are handled before the line that says the worker consumes: a SIGTERM sent on reading it stops the worker warmly.
  const bySignal = stopOnSignals(worker, shutdownTimeout, (line) => console.error(line)).then(() => "signal" as const);
  console.error(`celerity worker ${worker.name}: consuming with concurrency ${running} on the ${pool} pool`);
  const how = await Promise.race([bySignal, byControl]);
  if (how === "control")
    console.error(`celerity worker ${worker.name}: stopped (finishing running tasks), shut down by remote control`);
  await worker.done;
  await metrics?.close();
  await app.close();
  console.error(`celerity worker ${worker.name}: stopped`);
  // A handler abandoned on the way (its node was lost) may still hold a timer or a socket of its own:
  // the process ends soon after a stop whatever such leftovers would keep it alive for.
  setTimeout(() => process.exit(0), EXIT_AFTER_STOP_MS).unref();
  return 0;
};

/** Serve the worker's own metrics (fed by its hooks: it needs no events) on `port`; loaded only when asked for. */
const serveWorkerMetrics = async (
  app: App,
  port: number,
  host: string | undefined,
  queues: readonly string[] | undefined,
  name: string,
): Promise<MetricsServer> => {
  const { collectMetrics, createMetricsHandler, serveMetrics } = await import("../metrics.ts");
  const { DEFAULT_QUEUE } = await import("../../runtime/task-message.ts");
  const metrics = await collectMetrics(app, { feed: "workers", queues: queues ?? [DEFAULT_QUEUE] });
  const server = await serveMetrics(createMetricsHandler(metrics), {
    port,
    ...(host === undefined ? {} : { host }),
  }).catch((error: NodeJS.ErrnoException) => {
    throw new Error(
      `--metrics-port ${port}: cannot listen on ${host ?? "127.0.0.1"}:${port} (${error.code ?? error.message})`,
    );
  });
  console.error(`celerity worker ${name}: metrics at ${server.url}`);
  return server;
};

const closeWithin = async (app: App, ms: number): Promise<void> => {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    app.close({ timeout: ms }).catch(() => {}),
    new Promise<void>((done) => {
      timer = setTimeout(done, ms);
    }),
  ]);
  clearTimeout(timer);
};

const isApp = (value: unknown): value is App =>
  value !== null &&
  typeof value === "object" &&
  typeof (value as App).worker === "function" &&
  typeof (value as App).task === "function";
