import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { createApp, type App } from "../runtime/app.ts";
import type { BeatOptions } from "../runtime/schedule/beat.ts";
import { describeWhen, parseDuration } from "../runtime/schedule/schedule-definition.ts";
import { ScheduleError } from "../runtime/schedule/schedule-errors.ts";

export const BEAT_HELP = `celerity beat: send an app's periodic tasks (docs/periodic-tasks.md)

Usage:
  celerity beat --app <file> [options]    run a beat (several may run: one leads)
  celerity beat list [--broker <url>]     list the schedules kept in the broker

Options:
  --app <file>          module that exports the app (default export or 'app');
                        its app.schedule(...) declarations are stored at start
  --broker <url>        broker node, celerity://host:port (or CELERITY_BROKER_URL)
  --id <name>           this beat's name in the lease and logs
  --lease <duration>    lease length: another beat takes over within this long
                        after the leader dies (default 10s)
  --grace <duration>    a run found due later than this after its instant counts
                        as missed, and its schedule's catchUp decides (default 30s)
  --log-runs            log every run sent, with its task id
  --token-file <f>      token for the node (or CELERITY_TOKEN)
  --json                (list) print the schedules as JSON
`;

/** Run a beat until SIGINT or SIGTERM, or list the schedules; resolves to the exit code. */
export const runBeat = async (argv: readonly string[]): Promise<number> => {
  const listing = argv[0] === "list";
  const { values } = parseArgs({
    args: listing ? argv.slice(1) : [...argv],
    options: {
      app: { type: "string" },
      broker: { type: "string" },
      id: { type: "string" },
      lease: { type: "string" },
      grace: { type: "string" },
      "log-runs": { type: "boolean" },
      "token-file": { type: "string" },
      json: { type: "boolean" },
      help: { type: "boolean" },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(BEAT_HELP);
    return 0;
  }
  if (values.broker !== undefined) process.env.CELERITY_BROKER_URL = values.broker;
  if (values["token-file"] !== undefined) process.env.CELERITY_TOKEN = readFileSync(values["token-file"], "utf8").trim();
  if (!process.env.CELERITY_BROKER_URL) {
    throw new Error("no broker: pass --broker celerity://host:port or set CELERITY_BROKER_URL (schedules live in the broker every beat shares)");
  }
  if (listing) return list(values.app === undefined ? createApp() : await loadApp(values.app), values.json === true);
  if (values.app === undefined) throw new Error("--app is required: the module that exports the app");
  const options: BeatOptions = {
    ...(values.id !== undefined ? { id: values.id } : {}),
    ...(values.lease !== undefined ? { leaseMs: duration("--lease", values.lease, false) } : {}),
    ...(values.grace !== undefined ? { graceMs: duration("--grace", values.grace, true) } : {}),
    logRuns: values["log-runs"] === true,
    log: (message) => console.error(`celerity ${message}`),
  };
  const app = await loadApp(values.app);
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
    const rows = schedules.map((s) => [s.name, describeWhen(s.entry), s.entry.task, s.entry.catchUp, at(s.lastRun), at(s.nextRun)]);
    const header = ["NAME", "WHEN", "TASK", "CATCH-UP", "LAST RUN", "NEXT RUN"];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
    for (const row of [header, ...rows]) process.stdout.write(`${row.map((cell, i) => cell.padEnd(widths[i])).join("  ").trimEnd()}\n`);
    return 0;
  } finally {
    await app.close();
  }
};

const duration = (flag: string, value: string, allowZero: boolean): number => {
  try {
    return parseDuration(flag, flag, /^\d+$/.test(value) ? Number(value) : value, allowZero);
  } catch (error) {
    throw new Error(error instanceof ScheduleError ? error.reason : String(error));
  }
};

const at = (ms: number | undefined): string => (ms === undefined ? "-" : new Date(ms).toISOString());

const loadApp = async (file: string): Promise<App> => {
  const path = resolve(file);
  if (!existsSync(path)) throw new Error(`--app: no such file: ${path}`);
  const module = (await import(pathToFileURL(path).href)) as { default?: unknown; app?: unknown };
  const app = (isApp(module.default) ? module.default : module.app) as App | undefined;
  if (!isApp(app)) throw new Error(`${file} exports no app: export it as the default export or as 'app'`);
  return app;
};

const isApp = (value: unknown): value is App =>
  value !== null && typeof value === "object" && typeof (value as App).beat === "function" && typeof (value as App).task === "function";
