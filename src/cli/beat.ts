// `celerity beat`: run a beat that sends an app's periodic tasks (several may run, one
// leads), or list the schedules kept in the broker.
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import type { App } from "../../runtime/app.ts";
import type { BeatOptions } from "../../runtime/schedule/beat.ts";
import { describeWhen, parseDuration } from "../../runtime/schedule/schedule-definition.ts";
import { ScheduleError } from "../../runtime/schedule/schedule-errors.ts";
import { integerOption, parseCommandLine, readTokenFile, UsageError } from "./support/options.ts";
import { importUserModule } from "./support/user-module.ts";

export const BEAT_HELP = `celerity beat: send an app's periodic tasks (docs/periodic-tasks.md)

Usage:
  celerity beat --app <file> [options]    run a beat (several may run: one leads)
  celerity beat list [options]            list the schedules kept in the broker

Options:
  --app <file>              module that exports the app (default export or 'app');
                            its app.schedule(...) declarations are stored at start
  --broker <url>            the broker the runs are sent to (or CELERITY_BROKER_URL):
                            celerity://host:port or redis://host:port/db keep the
                            schedules too; amqp://… needs --schedules
  --schedules <url>         keep schedules and the lease in PostgreSQL instead of
                            the broker, postgres://…[?schema=] (or
                            CELERITY_SCHEDULES_URL)
  --id <name>               this beat's name in the lease and logs
  --lease <duration>        lease length ("10s", or ms): another beat takes over
                            within this long after the leader dies (default 10s)
  --grace <duration>        a run found due later than this after its instant
                            counts as missed; its schedule's catchUp decides
                            (default 30s)
  --log-runs                log every run sent, with its task id
  --token-file <f>          token for the node (or CELERITY_TOKEN)
  --connect-timeout <s>     wait this long for the broker node to be reachable,
                            saying so while waiting, then exit with code 2
                            (default 60; 0 waits for ever)
  --json                    (list) print the schedules as JSON
  -h, --help                show this help
`;

const DEFAULT_CONNECT_TIMEOUT_S = 60;

/** Run a beat until SIGINT or SIGTERM, or list the schedules; resolves to the exit code. */
export const runBeat = async (argv: readonly string[]): Promise<number> => {
  const { values, positionals } = parseCommandLine(
    "beat",
    argv,
    {
      app: { type: "string" },
      broker: { type: "string" },
      schedules: { type: "string" },
      id: { type: "string" },
      lease: { type: "string" },
      grace: { type: "string" },
      "log-runs": { type: "boolean" },
      "token-file": { type: "string" },
      "connect-timeout": { type: "string" },
      json: { type: "boolean" },
    },
    { positionals: true },
  );
  if (values.help) {
    process.stdout.write(BEAT_HELP);
    return 0;
  }
  if (positionals.length > 1 || (positionals.length === 1 && positionals[0] !== "list")) {
    throw new UsageError(
      `unexpected '${positionals.join(" ")}': the only subcommand is 'list' (see celerity beat --help)`,
    );
  }
  const listing = positionals[0] === "list";
  // Everything is checked before the app module loads: once it has, its connection would keep a failed process alive.
  const path = values.app === undefined ? undefined : resolve(values.app);
  if (path === undefined && !listing)
    throw new UsageError("--app is required: the module that exports the app (celerity beat --app ./tasks.ts)");
  if (path !== undefined && !existsSync(path)) throw new UsageError(`--app: no such file: ${path}`);
  const options: BeatOptions = {
    ...(values.id !== undefined ? { id: values.id } : {}),
    ...(values.lease !== undefined ? { leaseMs: duration("--lease", values.lease, false) } : {}),
    ...(values.grace !== undefined ? { graceMs: duration("--grace", values.grace, true) } : {}),
    logRuns: values["log-runs"] === true,
    log: (message) => console.error(`celerity ${message}`),
  };
  const connectTimeoutS =
    values["connect-timeout"] === undefined
      ? DEFAULT_CONNECT_TIMEOUT_S
      : integerOption("connect-timeout", values["connect-timeout"], 0);
  const brokerUrl = values.broker ?? process.env.CELERITY_BROKER_URL;
  if (brokerUrl === undefined || brokerUrl === "") {
    throw new UsageError(
      "no broker: pass --broker celerity://host:port (or redis://…, amqp://… with --schedules postgres://…) or set CELERITY_BROKER_URL (schedules live in the broker every beat shares)",
    );
  }
  const { BROKER_SCHEMES } = await import("../../runtime/connect.ts");
  if (!BROKER_SCHEMES.some((scheme) => brokerUrl.startsWith(scheme))) {
    throw new UsageError(
      `--broker: ${JSON.stringify(brokerUrl)} has no scheme celerity knows; use one of ${BROKER_SCHEMES.join(", ")}`,
    );
  }
  const schedulesUrl = values.schedules ?? process.env.CELERITY_SCHEDULES_URL;
  if (schedulesUrl !== undefined && !/^postgres(ql)?:\/\//.test(schedulesUrl)) {
    throw new UsageError(
      `--schedules: ${JSON.stringify(schedulesUrl)} is not a postgres:// url (without --schedules the broker keeps them)`,
    );
  }
  if (schedulesUrl === undefined && /^amqps?:\/\//.test(brokerUrl)) {
    throw new UsageError(
      "RabbitMQ keeps no schedules: pass --schedules postgres://… (or set CELERITY_SCHEDULES_URL) to keep them in PostgreSQL",
    );
  }
  process.env.CELERITY_BROKER_URL = brokerUrl;
  if (schedulesUrl !== undefined) process.env.CELERITY_SCHEDULES_URL = schedulesUrl;
  if (values["token-file"] !== undefined) process.env.CELERITY_TOKEN = readTokenFile(values["token-file"]);

  // Loaded only now (they bring in the node's client), so that --help and usage errors answer at once.
  if (brokerUrl.startsWith("celerity://")) {
    // Other brokers' transports keep trying to connect by themselves (Redis: for 30 s) before the beat's start fails.
    const { waitForNode } = await import("./support/wait-for-node.ts");
    await waitForNode(brokerUrl, {
      timeoutMs: connectTimeoutS * 1_000,
      log: (message) => console.error(`celerity beat: ${message}`),
    });
  }
  const app =
    path === undefined ? (await import("../../runtime/app.ts")).createApp() : await loadApp(path, values.app as string);
  if (listing) return list(app, values.json === true);
  const beat = app.beat(options);
  try {
    await beat.start();
  } catch (error) {
    await app.close();
    throw error;
  }
  console.error(`celerity beat ${beat.id}: started (${beat.leading ? "leading" : "standing by"})`);
  await new Promise<void>((done) => {
    process.once("SIGINT", done);
    process.once("SIGTERM", done);
  });
  console.error(`celerity beat ${beat.id}: stopping (releasing the lease)`);
  await beat.stop();
  await app.close();
  return 0;
};

const list = async (app: App, json: boolean): Promise<number> => {
  try {
    const schedules = await app.schedules.list();
    if (json) {
      process.stdout.write(`${JSON.stringify(schedules, null, 2)}\n`);
      return 0;
    }
    if (schedules.length === 0) {
      process.stdout.write("no schedules\n");
      return 0;
    }
    const rows = schedules.map((s) => [
      s.name,
      describeWhen(s.entry),
      s.entry.task,
      s.entry.catchUp,
      at(s.lastRun),
      at(s.nextRun),
    ]);
    const header = ["NAME", "WHEN", "TASK", "CATCH-UP", "LAST RUN", "NEXT RUN"];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
    for (const row of [header, ...rows])
      process.stdout.write(
        `${row
          .map((cell, i) => cell.padEnd(widths[i]))
          .join("  ")
          .trimEnd()}\n`,
      );
    return 0;
  } finally {
    await app.close();
  }
};

const duration = (flag: string, value: string, allowZero: boolean): number => {
  try {
    return parseDuration(flag, flag, /^\d+$/.test(value) ? Number(value) : value, allowZero);
  } catch (error) {
    throw new UsageError(error instanceof ScheduleError ? error.reason : String(error));
  }
};

const at = (ms: number | undefined): string => (ms === undefined ? "-" : new Date(ms).toISOString());

const loadApp = async (path: string, file: string): Promise<App> => {
  const module = await importUserModule(path);
  const app = isApp(module.default) ? module.default : isApp(module.app) ? module.app : undefined;
  if (app === undefined) throw new Error(`${file} exports no app: export it as the default export or as 'app'`);
  return app;
};

const isApp = (value: unknown): value is App =>
  value !== null &&
  typeof value === "object" &&
  typeof (value as App).beat === "function" &&
  typeof (value as App).task === "function";
