// `celerity events`: watch a cluster's event stream, as a live view of workers and task
// rates in a terminal, or one line per event.
import { ClusterState } from "../../runtime/events/cluster-state.ts";
import type { ReceivedEvent } from "../../runtime/events/event-subscription.ts";
import { EVENT_TYPES, type EventType } from "../../runtime/events/event-types.ts";
import { CONNECT_HELP, CONNECT_OPTIONS, connectApp, listOption } from "./support/connect.ts";
import { integerOptionOr, parseCommandLine } from "./support/options.ts";

export const EVENTS_HELP = `celerity events: watch a cluster's event stream

In a terminal: a live view, redrawn every second, of the workers (status,
tasks running, processed, load), task rates over the last 10 s, and the
latest failures. With --json, or when the output is not a terminal: one
line per event (JSON with --json).

Workers send events when started with --events (or after
'celerity control enable-events'); producers with createApp({ events: true }).

Options:
${CONNECT_HELP}
  --json                one JSON object per line, per event
  --types <a,b>         only these event types (${EVENT_TYPES.join(", ")})
  --tasks <a,b>         only task events of these tasks
  --limit <n>           exit after n events (default: run until Ctrl-C)
`;

const CLEAR = "\x1b[H\x1b[2J";

const pad = (text: string | number, width: number, right = false) => {
  const s = String(text);
  return right ? s.padStart(width) : s.padEnd(width);
};

const clock = (seconds: number) => new Date(seconds * 1000).toISOString().slice(11, 19);

/** The live view's text for `state`. */
export const renderView = (state: ClusterState, broker: string): string => {
  const lines = [`celerity events  ${broker}  ${clock(Date.now() / 1000)} UTC  (Ctrl-C to quit)`, ""];
  const workers = state.workers();
  lines.push(`${pad("WORKER", 32)} ${pad("STATUS", 8)} ${pad("ACTIVE", 6, true)} ${pad("PROCESSED", 10, true)}  LOAD`);
  if (workers.length === 0) lines.push("(no worker has sent an event yet: start workers with --events)");
  for (const w of workers) {
    lines.push(
      `${pad(w.name, 32)} ${pad(w.status, 8)} ${pad(w.active, 6, true)} ${pad(w.processed, 10, true)}  ${w.loadavg.map((l) => l.toFixed(2)).join(" ")}`,
    );
  }
  lines.push("", `${pad("TASKS", 16)} ${pad("PER SECOND", 10, true)} ${pad("TOTAL", 10, true)}`);
  for (const type of EVENT_TYPES) {
    if (!type.startsWith("task-")) continue;
    lines.push(
      `${pad(type.slice(5), 16)} ${pad(state.rate(type).toFixed(1), 10, true)} ${pad(state.total(type), 10, true)}`,
    );
  }
  lines.push("", "RECENT FAILURES");
  const failures = state.failures();
  if (failures.length === 0) lines.push("(none)");
  for (const f of failures) lines.push(`${clock(f.timestamp)}  ${f.name}  ${f.uuid}  on ${f.hostname}: ${f.exception}`);
  return `${lines.join("\n")}\n`;
};

const plainLine = (event: ReceivedEvent): string => {
  const subject = "uuid" in event ? `${event.name} ${event.uuid}` : "";
  return `${clock(event.timestamp)} ${event.type.padEnd(16)} ${event.hostname} ${subject}`.trimEnd();
};

/** Watch events until SIGINT or SIGTERM (or --limit); resolves to the exit code. */
export const runEvents = async (argv: readonly string[]): Promise<number> => {
  const { values } = parseCommandLine("events", argv, {
    ...CONNECT_OPTIONS,
    json: { type: "boolean" },
    types: { type: "string" },
    tasks: { type: "string" },
    limit: { type: "string" },
  });
  if (values.help) {
    process.stdout.write(EVENTS_HELP);
    return 0;
  }
  const types = listOption(values.types) as EventType[] | undefined;
  const tasks = listOption(values.tasks);
  const limit = integerOptionOr("limit", values.limit, 0);
  const app = connectApp(values);
  const live = !values.json && process.stdout.isTTY === true;
  const state = new ClusterState();
  let seen = 0;
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  try {
    const subscription = await app.events.subscribe(
      (event) => {
        if (limit > 0 && seen >= limit) return;
        seen++;
        if (live) state.apply(event);
        else process.stdout.write(`${values.json ? JSON.stringify(event) : plainLine(event)}\n`);
        if (limit > 0 && seen >= limit) finish();
      },
      { ...(types !== undefined ? { types } : {}), ...(tasks !== undefined ? { tasks } : {}) },
    );
    const broker = values.broker ?? process.env.CELERITY_BROKER_URL ?? "";
    const redraw = live ? setInterval(() => process.stdout.write(CLEAR + renderView(state, broker)), 1_000) : undefined;
    if (live) process.stdout.write(CLEAR + renderView(state, broker));
    else process.stderr.write(`celerity events: subscribed to ${broker} (${subscription.queue})\n`);
    process.once("SIGINT", finish);
    process.once("SIGTERM", finish);
    await finished;
    clearInterval(redraw);
    return 0;
  } finally {
    await app.close();
  }
};
