// `celerity queues`: list a cluster's queues, pause, resume and purge them, and list,
// requeue or discard their dead letters.
import { CONNECT_HELP, CONNECT_OPTIONS, connectApp } from "./support/connect.ts";
import { parseCommandLine, UsageError } from "./support/options.ts";

export const QUEUES_HELP = `celerity queues <command>: manage a cluster's queues

Commands:
  list                       every queue with its depths (ready, delayed, unacked),
                             consumers and whether it is paused
  pause <queue>              stop delivering the queue to every worker (messages wait)
  resume <queue>             deliver it again
  purge <queue> --force      delete every message waiting in it (ready or delayed)
  dead-letters <queue>       list the dead letters of a queue (or of the dead-letter queue named)
  requeue <queue> [--id <id>]...            send dead letters back to their queue, to run again
  discard <queue> [--id <id>]... --force    delete dead letters for good

Options:
${CONNECT_HELP}
  --json                machine-readable output
  --all                 with list: also the internal queues (events, control replies)
  --id <id>             with requeue / discard: only this message (repeatable; default all)
  --force               confirm purge and discard
`;

const pad = (text: string | number, width: number, right = false) =>
  right ? String(text).padStart(width) : String(text).padEnd(width);

/** `celerity queues <command>`; resolves to the exit code. */
export const runQueues = async (argv: readonly string[]): Promise<number> => {
  const { values, positionals } = parseCommandLine(
    "queues",
    argv,
    {
      ...CONNECT_OPTIONS,
      json: { type: "boolean" },
      all: { type: "boolean" },
      id: { type: "string", multiple: true },
      force: { type: "boolean" },
    },
    { positionals: true },
  );
  const [command, queue] = positionals;
  if (values.help || command === undefined) {
    process.stdout.write(QUEUES_HELP);
    return command === undefined && !values.help ? 2 : 0;
  }
  const commands = ["list", "pause", "resume", "purge", "dead-letters", "requeue", "discard"];
  if (!commands.includes(command))
    throw new UsageError(`unknown command '${command}'; the commands are ${commands.join(", ")}`);
  if (command !== "list" && queue === undefined) throw new UsageError(`queues ${command}: missing <queue>`);
  const name = queue as string;
  if ((command === "purge" || command === "discard") && !values.force) {
    throw new UsageError(`queues ${command} deletes messages for good: pass --force to confirm`);
  }
  const json = values.json === true;
  const out = (text: string) => process.stdout.write(`${text}\n`);
  const app = connectApp(values);
  try {
    switch (command) {
      case "list": {
        const queues = (await app.queues.list()).filter((q) => values.all || !q.name.startsWith("celerity."));
        // A figure the broker cannot tell (RabbitMQ: delayed, unacked) is null in JSON and "?" in the table.
        if (json)
          return (out(JSON.stringify(queues, (_key, value: unknown) => (value === undefined ? null : value))), 0);
        out(
          `${pad("QUEUE", 32)} ${pad("READY", 8, true)} ${pad("DELAYED", 8, true)} ${pad("UNACKED", 8, true)} ${pad("CONSUMERS", 9, true)}  STATE`,
        );
        for (const q of queues) {
          out(
            `${pad(q.name, 32)} ${pad(q.ready, 8, true)} ${pad(q.delayed ?? "?", 8, true)} ${pad(q.unacked ?? "?", 8, true)} ${pad(q.consumers, 9, true)}  ${q.paused ? "paused" : "running"}`,
          );
        }
        if (queues.some((q) => q.delayed === undefined || q.unacked === undefined))
          out("? this broker does not count it by queue (see docs/control.md)");
        return 0;
      }
      case "pause":
      case "resume":
        await (command === "pause" ? app.queues.pause(name) : app.queues.resume(name));
        out(
          json
            ? JSON.stringify({ queue: name, paused: command === "pause" })
            : `${command === "pause" ? "paused" : "resumed"} ${name}`,
        );
        return 0;
      case "purge": {
        const purged = await app.queues.purge(name);
        out(json ? JSON.stringify({ queue: name, purged }) : `purged ${purged} message(s) from ${name}`);
        return 0;
      }
      case "dead-letters": {
        const letters = await app.queues.deadLetters(name);
        const rows = letters.map((l) => ({
          id: l.envelope.id,
          task: l.envelope.headers.task ?? null,
          from: l.queue,
          reason: l.reason,
          at: new Date(l.at).toISOString(),
        }));
        if (json) return (out(JSON.stringify(rows)), 0);
        if (rows.length === 0) out(`no dead letters in ${name}`);
        for (const row of rows) out(`${row.at}  ${row.id}  ${String(row.task)}  from ${row.from}: ${row.reason}`);
        return 0;
      }
      case "requeue":
      case "discard": {
        const count =
          command === "requeue" ? await app.queues.requeue(name, values.id) : await app.queues.discard(name, values.id);
        out(
          json
            ? JSON.stringify({ queue: name, [command === "requeue" ? "requeued" : "discarded"]: count })
            : `${command === "requeue" ? "requeued" : "discarded"} ${count} dead letter(s) of ${name}`,
        );
        return 0;
      }
    }
    return 2;
  } finally {
    await app.close();
  }
};
