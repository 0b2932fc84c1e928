// `celerity broker`: run a standalone broker node (with results, rate limits and
// schedules) until SIGINT or SIGTERM.
import { DEFAULT_NODE_PORT } from "../../broker/node/node-server.ts";
import { startFullNode } from "../../runtime/full-node.ts";
import { integerOption, parseCommandLine, readTokenFile, UsageError } from "./support/options.ts";

export const BROKER_HELP = `celerity broker: run a standalone broker node

Usage:
  celerity broker [options]

Options:
  --port <n>          TCP port (default ${DEFAULT_NODE_PORT}; 0 picks a free one)
  --host <addr>       address to listen on (default 127.0.0.1)
  --data-dir <dir>    keep messages, task results, workflow state and periodic
                      task schedules in durable logs there (default: memory only)
  --fsync <policy>    "always" (default: fsync before every confirm, group commit)
                      or "interval:<ms>" (faster; may lose <ms> of confirmed
                      messages and stored results on power loss, see
                      docs/broker-node.md)
  --token-file <f>    clients must present the token in this file
                      (or set CELERITY_TOKEN); required with a --host other
                      machines can reach
  --admin-token-file <f>
                      administrators present the token in this file (or set
                      CELERITY_ADMIN_TOKEN); with it, --token holders produce
                      and consume only: revoking, binding task queues,
                      purging, rate changes and forgetting results need it
  --allow-anonymous   let a node on such a --host run without a token
  --max-messages <n>  past this many messages held, hold back publish
                      confirms until consumers make room (default 2000000)
  --max-dead-letters <n>
                      most dead letters each dead-letter queue keeps; past
                      it the next in line is dropped (default 10000)
  --max-dead-letter-bytes <n>
                      most bytes of message bodies each dead-letter queue
                      keeps, dropped the same way (default 67108864, 64 MiB)
  -h, --help          show this help
`;

/** Run a node until SIGINT or SIGTERM; resolves to the exit code. */
export const runBroker = async (argv: readonly string[]): Promise<number> => {
  const { values } = parseCommandLine("broker", argv, {
    port: { type: "string" },
    host: { type: "string" },
    "data-dir": { type: "string" },
    fsync: { type: "string" },
    "token-file": { type: "string" },
    "admin-token-file": { type: "string" },
    "max-messages": { type: "string" },
    "max-dead-letters": { type: "string" },
    "max-dead-letter-bytes": { type: "string" },
    "allow-anonymous": { type: "boolean" },
  });
  if (values.help) {
    process.stdout.write(BROKER_HELP);
    return 0;
  }
  const port = values.port === undefined ? DEFAULT_NODE_PORT : integerOption("port", values.port, 0, 65_535);
  const maxMessages =
    values["max-messages"] === undefined ? undefined : integerOption("max-messages", values["max-messages"], 1);
  const maxDeadLetters =
    values["max-dead-letters"] === undefined
      ? undefined
      : integerOption("max-dead-letters", values["max-dead-letters"], 1);
  const maxDeadLetterBytes =
    values["max-dead-letter-bytes"] === undefined
      ? undefined
      : integerOption("max-dead-letter-bytes", values["max-dead-letter-bytes"], 1);
  const token = values["token-file"] !== undefined ? readTokenFile(values["token-file"]) : process.env.CELERITY_TOKEN;
  if (values["token-file"] !== undefined && token === "")
    throw new UsageError(
      `the token file ${values["token-file"]} is empty: put the token in it, or leave --token-file out`,
    );
  const adminToken =
    values["admin-token-file"] !== undefined
      ? readTokenFile(values["admin-token-file"])
      : process.env.CELERITY_ADMIN_TOKEN;
  if (values["admin-token-file"] !== undefined && adminToken === "")
    throw new UsageError(`the admin token file ${values["admin-token-file"]} is empty: put the token in it`);
  const full = await startFullNode({
    port,
    ...(values.host !== undefined ? { host: values.host } : {}),
    ...(values["data-dir"] !== undefined ? { dataDir: values["data-dir"] } : {}),
    ...(values.fsync !== undefined ? { fsync: parseFsync(values.fsync) } : {}),
    ...(token !== undefined && token !== "" ? { token } : {}),
    ...(adminToken !== undefined && adminToken !== "" ? { adminToken } : {}),
    ...(maxMessages !== undefined ? { maxMessages } : {}),
    ...(maxDeadLetters !== undefined ? { maxDeadLetters } : {}),
    ...(maxDeadLetterBytes !== undefined ? { maxDeadLetterBytes } : {}),
    ...(values["allow-anonymous"] === true ? { allowAnonymous: true } : {}),
  });
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      console.error(`celerity broker: ${signal} received, stopping`);
      resolve();
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
  });
  await full.stop();
  return 0;
};

const parseFsync = (policy: string): "always" | { intervalMs: number } => {
  if (policy === "always") return "always";
  const match = /^interval:(\d+)$/.exec(policy);
  if (match === null) throw new UsageError(`--fsync must be "always" or "interval:<ms>", got '${policy}'`);
  return { intervalMs: Number(match[1]) };
};
