// `celerity inspect` and `celerity control`: ask the workers questions and give them
// orders through remote control, printing each worker's reply.
import type { App } from "../../runtime/app.ts";
import type { ControlOptions, Replies } from "../../runtime/control/app-control.ts";
import { DEFAULT_CONTROL_TIMEOUT_MS } from "../../runtime/control/control-client.ts";
import type { ControlAnswer } from "../../runtime/control/control-protocol.ts";
import { CONNECT_HELP, CONNECT_OPTIONS, connectApp, listOption } from "./support/connect.ts";
import { integerOptionOr, parseCommandLine, UsageError } from "./support/options.ts";

/** Celery's exit code when no worker replied (EX_UNAVAILABLE). */
export const NO_REPLY_EXIT = 69;

const COMMON_HELP = `${CONNECT_HELP}
  -d, --destination <a,b>  only these workers (by name: --name of 'celerity worker', default <pid>@<host>)
  --timeout <ms>        how long to wait for replies (default ${DEFAULT_CONTROL_TIMEOUT_MS})
  --json                print the replies as one JSON object keyed by worker`;

export const INSPECT_HELP = `celerity inspect <command>: ask the workers

Commands:
  ping            which workers are up
  active          the tasks each worker is running
  reserved        the tasks each worker holds, waiting for a free slot
  scheduled       the tasks each worker holds for a rate-limit token
                  (tasks with an eta wait in the broker: see 'celerity queues list')
  registered      the tasks each worker knows
  stats           pid, uptime, pool, prefetch, totals, queues, resource usage
  revoked         the revoked task ids each worker knows of
  active-queues   the queues each worker consumes

Options:
${COMMON_HELP}

Exits ${NO_REPLY_EXIT} when no worker replied within the timeout.
`;

export const CONTROL_HELP = `celerity control <command>: steer the workers

Commands:
  rate-limit <task> <rate>         set a task's rate limit on the workers ("10/s", "100/m"; "none" removes it)
  time-limit <task> <soft> [hard]  set a task's time limits in seconds, as Celery ("none" for no limit)
  revoke <id...> [--terminate]     revoke tasks (with --terminate, abort them where they run)
  shutdown                         stop gracefully: running tasks finish, held messages go back; the worker exits 0
  pool-grow [n]                    run n more tasks at once (default 1)
  pool-shrink [n]                  run n fewer tasks at once (default 1)
  add-consumer <queue>             start consuming a queue
  cancel-consumer <queue>          stop consuming a queue
  enable-events                    start sending task and worker events
  disable-events                   stop sending them

Options:
${COMMON_HELP}
  --terminate           with revoke: abort the tasks where they run

Exits ${NO_REPLY_EXIT} when no worker replied within the timeout.
`;

const INSPECT_COMMANDS = {
  ping: (app: App, options: ControlOptions) => app.inspect.ping(options),
  active: (app: App, options: ControlOptions) => app.inspect.active(options),
  reserved: (app: App, options: ControlOptions) => app.inspect.reserved(options),
  scheduled: (app: App, options: ControlOptions) => app.inspect.scheduled(options),
  registered: (app: App, options: ControlOptions) => app.inspect.registered(options),
  stats: (app: App, options: ControlOptions) => app.inspect.stats(options),
  revoked: (app: App, options: ControlOptions) => app.inspect.revoked(options),
  "active-queues": (app: App, options: ControlOptions) => app.inspect.activeQueues(options),
} as const;

const parse = (command: string, argv: readonly string[]) =>
  parseCommandLine(
    command,
    argv,
    {
      ...CONNECT_OPTIONS,
      destination: { type: "string", short: "d" },
      timeout: { type: "string" },
      json: { type: "boolean" },
      terminate: { type: "boolean" },
    },
    { positionals: true },
  );

const controlOptions = (values: ReturnType<typeof parse>["values"]): ControlOptions => {
  const destination = listOption(values.destination);
  return {
    timeout: integerOptionOr("timeout", values.timeout, DEFAULT_CONTROL_TIMEOUT_MS),
    ...(destination !== undefined ? { destination } : {}),
  };
};

/** Print replies as Celery does (`-> worker: OK` and the value), or as JSON; the exit code. */
const report = (replies: Replies<unknown>, json: boolean, timeout: number): number => {
  const workers = Object.keys(replies).sort();
  if (json) process.stdout.write(`${JSON.stringify(replies)}\n`);
  if (workers.length === 0) {
    process.stderr.write(`Error: no worker replied within ${timeout} ms\n`);
    return NO_REPLY_EXIT;
  }
  if (json) return 0;
  let failed = false;
  for (const worker of workers) {
    const value = replies[worker];
    const error =
      value !== null && typeof value === "object" && "error" in value ? (value as { error: string }).error : undefined;
    failed ||= error !== undefined;
    process.stdout.write(`-> ${worker}: ${error === undefined ? "OK" : "ERROR"}\n`);
    const body =
      error ?? (value !== null && typeof value === "object" && "ok" in value ? (value as { ok: string }).ok : value);
    const lines = Array.isArray(body)
      ? body.length === 0
        ? ["- empty -"]
        : body.map((item) => `* ${JSON.stringify(item)}`)
      : [typeof body === "string" ? body : JSON.stringify(body, null, 2)];
    for (const line of lines.join("\n").split("\n")) process.stdout.write(`    ${line}\n`);
  }
  return failed ? 1 : 0;
};

/** `celerity inspect <command>`; resolves to the exit code. */
export const runInspect = async (argv: readonly string[]): Promise<number> => {
  const { values, positionals } = parse("inspect", argv);
  const [command] = positionals;
  if (values.help || command === undefined) {
    process.stdout.write(INSPECT_HELP);
    return command === undefined && !values.help ? 2 : 0;
  }
  const call = Object.hasOwn(INSPECT_COMMANDS, command)
    ? INSPECT_COMMANDS[command as keyof typeof INSPECT_COMMANDS]
    : undefined;
  if (call === undefined)
    throw new UsageError(`unknown command '${command}'; the commands are ${Object.keys(INSPECT_COMMANDS).join(", ")}`);
  const options = controlOptions(values);
  const app = connectApp(values);
  try {
    return report(await call(app, options), values.json === true, options.timeout as number);
  } finally {
    await app.close();
  }
};

const seconds = (name: string, value: string | undefined): number | undefined => {
  if (value === undefined || value === "none") return undefined;
  const n = Number(value);
  if (!(n > 0)) throw new UsageError(`${name} must be a positive number of seconds or "none", got '${value}'`);
  return n * 1000;
};

const needs = (command: string, args: readonly string[], count: number, what: string): void => {
  if (args.length < count) throw new UsageError(`control ${command}: missing ${what}`);
};

/** `celerity control <command> [args]`; resolves to the exit code. */
export const runControl = async (argv: readonly string[]): Promise<number> => {
  const { values, positionals } = parse("control", argv);
  const [command, ...args] = positionals;
  if (values.help || command === undefined) {
    process.stdout.write(CONTROL_HELP);
    return command === undefined && !values.help ? 2 : 0;
  }
  const options = controlOptions(values);
  const json = values.json === true;
  let send: (app: App) => Promise<Replies<ControlAnswer>>;
  switch (command) {
    case "rate-limit": {
      needs(command, args, 2, "<task> <rate>");
      const rate = args[1] === "none" ? null : args[1];
      send = async (app) => {
        const replies = await app.control.broadcast("rate_limit", { task_name: args[0], rate_limit: rate }, options);
        return Object.fromEntries(
          replies.map((r) => [r.hostname, r.ok ? (r.value as ControlAnswer) : { error: r.error ?? "" }]),
        );
      };
      break;
    }
    case "time-limit": {
      needs(command, args, 2, "<task> <soft> [hard]");
      const soft = seconds("soft", args[1]);
      const hard = seconds("hard", args[2]);
      send = (app) =>
        app.control.timeLimit(
          args[0],
          { ...(soft !== undefined ? { soft } : {}), ...(hard !== undefined ? { hard } : {}) },
          options,
        );
      break;
    }
    case "revoke": {
      needs(command, args, 1, "the task ids");
      const app = connectApp(values);
      try {
        await app.revoke(args, { terminate: values.terminate === true });
        process.stdout.write(
          json
            ? `${JSON.stringify({ revoked: args, terminate: values.terminate === true })}\n`
            : `revoked ${args.length} task(s)${values.terminate ? ", terminating them where they run" : ""}\n`,
        );
        return 0;
      } finally {
        await app.close();
      }
    }
    case "shutdown":
      send = (app) => app.control.shutdown(options);
      break;
    case "pool-grow":
    case "pool-shrink": {
      const n = integerOptionOr("n", args[0], 1, 1);
      send = (app) => (command === "pool-grow" ? app.control.poolGrow(n, options) : app.control.poolShrink(n, options));
      break;
    }
    case "add-consumer":
    case "cancel-consumer":
      needs(command, args, 1, "<queue>");
      send = (app) =>
        command === "add-consumer"
          ? app.control.addConsumer(args[0], options)
          : app.control.cancelConsumer(args[0], options);
      break;
    case "enable-events":
      send = (app) => app.control.enableEvents(options);
      break;
    case "disable-events":
      send = (app) => app.control.disableEvents(options);
      break;
    default:
      throw new UsageError(
        `unknown command '${command}'; the commands are rate-limit, time-limit, revoke, shutdown, pool-grow, pool-shrink, add-consumer, cancel-consumer, enable-events, disable-events`,
      );
  }
  const app = connectApp(values);
  try {
    return report(await send(app), json, options.timeout as number);
  } finally {
    await app.close();
  }
};
