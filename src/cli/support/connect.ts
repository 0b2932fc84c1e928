// What the commands that talk to a running cluster share: the --broker and --token-file
// options, the app they connect with, and reading their list options.
import { createApp, type App } from "../../../runtime/app.ts";
import { readTokenFile, UsageError } from "./options.ts";

/** The options every command that talks to a running cluster takes. */
export const CONNECT_OPTIONS = {
  broker: { type: "string" },
  "token-file": { type: "string" },
} as const;

export const CONNECT_HELP = `  --broker <url>        broker node, celerity://host:port (or CELERITY_BROKER_URL)
  --token-file <f>      token for the node (or CELERITY_TOKEN)`;

/** An app on the cluster's broker node, for the commands that watch and steer it; throws with what to pass when there is none. */
export const connectApp = (values: { readonly broker?: string; readonly "token-file"?: string }): App => {
  const broker = values.broker ?? process.env.CELERITY_BROKER_URL;
  if (broker === undefined)
    throw new UsageError("no broker to talk to: pass --broker celerity://host:port or set CELERITY_BROKER_URL");
  const token = values["token-file"] !== undefined ? readTokenFile(values["token-file"]) : process.env.CELERITY_TOKEN;
  return createApp({
    broker,
    ...(token !== undefined ? { token } : {}),
    log: (message) => process.stderr.write(`${message}\n`),
  });
};

/** A comma-separated list option, or undefined. */
export const listOption = (value: string | undefined): string[] | undefined =>
  value === undefined
    ? undefined
    : value
        .split(",")
        .map((item) => item.trim())
        .filter(Boolean);
