import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { BrokerNode, DEFAULT_NODE_PORT } from "../broker/node/node-server.ts";
import { DurableResultStore } from "../runtime/results/durable-result-store.ts";
import { serveResults } from "../runtime/results/result-service.ts";
import { serveRateLimits } from "../runtime/rate-limit/node-rate-limit-service.ts";
import { MemoryResultStore } from "../runtime/results/result-store.ts";

export const BROKER_HELP = `celerity broker: run a standalone broker node

Options:
  --port <n>          TCP port (default ${DEFAULT_NODE_PORT}; 0 picks a free one)
  --host <addr>       address to listen on (default 127.0.0.1)
  --data-dir <dir>    keep messages, task results and workflow state in durable
                      logs there (default: memory only)
  --fsync <policy>    "always" (default: fsync before every confirm, group commit)
                      or "interval:<ms>" (faster; may lose <ms> of confirmed
                      messages and stored results on power loss, see
                      docs/broker-node.md)
  --token-file <f>    clients must present the token in this file
                      (or set CELERITY_TOKEN); required with a --host other
                      machines can reach
  --allow-anonymous   let a node on such a --host run without a token
  --max-messages <n>  past this many messages held, hold back publish
                      confirms until consumers make room (default 2000000)
`;

/** Run a node until SIGINT or SIGTERM; resolves to the exit code. */
export const runBroker = async (argv: readonly string[]): Promise<number> => {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      port: { type: "string" },
      host: { type: "string" },
      "data-dir": { type: "string" },
      fsync: { type: "string" },
      "token-file": { type: "string" },
      "max-messages": { type: "string" },
      "allow-anonymous": { type: "boolean" },
      help: { type: "boolean" },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(BROKER_HELP);
    return 0;
  }
  const port = values.port === undefined ? DEFAULT_NODE_PORT : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new Error(`--port must be a port number, got '${values.port}'`);
  const maxMessages = values["max-messages"] === undefined ? undefined : Number(values["max-messages"]);
  if (maxMessages !== undefined && (!Number.isInteger(maxMessages) || maxMessages < 1)) {
    throw new Error(`--max-messages must be a positive integer, got '${values["max-messages"]}'`);
  }
  const token = values["token-file"] !== undefined ? readFileSync(values["token-file"], "utf8").trim() : process.env.CELERITY_TOKEN;
  if (values["token-file"] !== undefined && token === "") throw new Error(`the token file ${values["token-file"]} is empty: put the token in it, or leave --token-file out`);
  const dataDir = values["data-dir"];
  const fsync = values.fsync !== undefined ? { fsync: parseFsync(values.fsync) } : {};
  // Opened before the node listens, so no client ever finds the results ops missing; its own lock guards it meanwhile.
  const results =
    dataDir === undefined
      ? new MemoryResultStore()
      : await DurableResultStore.open(join(dataDir, "results"), { ...fsync, log: (message) => console.error(`celerity broker: results: ${message}`) });
  const node = await BrokerNode.start({
    port,
    ...(values.host !== undefined ? { host: values.host } : {}),
    ...(dataDir !== undefined ? { dataDir } : {}),
    ...fsync,
    ...(token !== undefined && token !== "" ? { token } : {}),
    ...(maxMessages !== undefined ? { maxMessages } : {}),
    ...(values["allow-anonymous"] === true ? { allowAnonymous: true } : {}),
  }).catch(async (error: unknown) => {
    await results.close();
    throw error;
  });
  serveResults(node, results);
  serveRateLimits(node);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      console.error(`celerity broker: ${signal} received, stopping`);
      resolve();
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
  });
  await node.stop();
  await results.close();
  return 0;
};

const parseFsync = (policy: string): "always" | { intervalMs: number } => {
  if (policy === "always") return "always";
  const match = /^interval:(\d+)$/.exec(policy);
  if (match === null) throw new Error(`--fsync must be "always" or "interval:<ms>", got '${policy}'`);
  return { intervalMs: Number(match[1]) };
};
