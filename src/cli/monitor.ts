// `celerity monitor`: serves the web dashboard, its live updates and the HTTP JSON API for a
// cluster on one port, with its own credentials (separate from the broker node's token).
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { HttpAuth } from "../../runtime/monitor/http-auth.ts";
import { isLoopback, MonitorExposedError, startMonitor } from "../../runtime/monitor/start-monitor.ts";
import { CONNECT_HELP, connectApp } from "./support/connect.ts";
import { integerOption, parseCommandLine, readTokenFile, UsageError } from "./support/options.ts";

export const MONITOR_HELP = `celerity monitor: a live web dashboard and HTTP API for a cluster

Usage:
  celerity monitor --broker <url> [--port 5555] [--host 127.0.0.1]

Serves the dashboard (workers, queues, tasks, workflows, throughput and
latency, rate limits, dead letters), live updates over Server-Sent Events
and the HTTP JSON API (its OpenAPI document at /openapi.json). Everything is
served by the monitor itself: it works offline. Workers must send events
(celerity worker --events) for tasks and workers to appear live.

Options:
${CONNECT_HELP}
  --port <n>                port to serve on (default 5555; 0: any free port)
  --host <address>          address to listen on (default 127.0.0.1); any
                            address but loopback requires --auth-token-file
                            or --basic-auth-file
  --auth-token-file <f>     require this bearer token (or CELERITY_MONITOR_TOKEN)
  --basic-auth-file <f>     require the user:password in this file (HTTP basic auth)
  --max-tasks <n>           tasks remembered, least recently changed forgotten
                            first (default 100000)
  -h, --help                show this help
`;

const basicAuthOf = (file: string): NonNullable<HttpAuth["basic"]> => {
  let text: string;
  try {
    text = readFileSync(file, "utf8").trim();
  } catch (error) {
    throw new UsageError(
      `--basic-auth-file: cannot read ${resolve(file)}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  const colon = text.indexOf(":");
  if (colon <= 0 || colon === text.length - 1)
    throw new UsageError(`--basic-auth-file: ${resolve(file)} must hold user:password on one line`);
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
};

/** Serve the monitor until SIGINT or SIGTERM; resolves to the exit code. */
export const runMonitor = async (argv: readonly string[]): Promise<number> => {
  const { values } = parseCommandLine("monitor", argv, {
    broker: { type: "string" },
    "token-file": { type: "string" },
    port: { type: "string" },
    host: { type: "string" },
    "auth-token-file": { type: "string" },
    "basic-auth-file": { type: "string" },
    "max-tasks": { type: "string" },
  });
  if (values.help) {
    process.stdout.write(MONITOR_HELP);
    return 0;
  }
  const port = values.port === undefined ? 5555 : integerOption("port", values.port, 0, 65_535);
  const maxTasks = values["max-tasks"] === undefined ? undefined : integerOption("max-tasks", values["max-tasks"], 1);
  const token =
    values["auth-token-file"] !== undefined
      ? readTokenFile(values["auth-token-file"], "auth-token-file")
      : process.env.CELERITY_MONITOR_TOKEN || undefined;
  if (token !== undefined && token.length === 0) throw new UsageError("--auth-token-file: the file is empty");
  const basic = values["basic-auth-file"] === undefined ? undefined : basicAuthOf(values["basic-auth-file"]);
  const auth: HttpAuth | undefined =
    token === undefined && basic === undefined
      ? undefined
      : { ...(token !== undefined ? { token } : {}), ...(basic !== undefined ? { basic } : {}) };
  const host = values.host ?? "127.0.0.1";
  if (!isLoopback(host) && auth === undefined) throw new UsageError(new MonitorExposedError({ host }).message);
  const app = connectApp(values);
  try {
    // The monitor sees the event stream: its metrics are the cluster's (docs/metrics.md).
    const { createMetricsHandler } = await import("../metrics.ts");
    const monitor = await startMonitor(app, {
      port,
      host,
      metrics: createMetricsHandler(app),
      ...(auth !== undefined ? { auth } : {}),
      ...(maxTasks !== undefined ? { maxTasks } : {}),
    }).catch((error: unknown) => {
      throw new UsageError(error instanceof Error ? error.message : String(error));
    });
    process.stderr.write(
      `celerity monitor: serving ${monitor.url} (API: ${monitor.url}/openapi.json)${auth === undefined ? "" : ", credentials required"}\n`,
    );
    await new Promise<void>((done) => {
      process.once("SIGINT", done);
      process.once("SIGTERM", done);
    });
    await monitor.close();
    return 0;
  } finally {
    await app.close();
  }
};
