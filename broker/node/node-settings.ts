/**
 * The defaults of the broker node's and its client's options, resolved in
 * one place each: `brokerNodeSettings` and `nodeClientSettings` fill in every
 * option left out and refuse a nonsensical one with an InvalidArgumentError
 * naming it, so the code that runs reads settings, never `?? default`.
 *
 * @example
 * nodeClientSettings({ requestTimeoutMs: 0 }); // throws: invalid requestTimeoutMs: expected a positive number, got 0
 */
import { systemClock, type Clock } from "../clock.ts";
import { InvalidArgumentError } from "../errors.ts";
import type { DurableLogOptions } from "../log/durable-log.ts";
import type { NodeClientOptions } from "./client/node-client.ts";
import type { BrokerNodeOptions } from "./node-server.ts";
import { DEFAULT_MAX_FRAME_BYTES } from "./wire-frame.ts";

/**
 * The port a node listens on, and clients connect to, unless told otherwise.
 *
 * @example
 * createApp({ broker: `celerity://127.0.0.1:${DEFAULT_NODE_PORT}` });
 */
export const DEFAULT_NODE_PORT = 5690;
/** Heartbeat interval of node and client; three silent intervals end a connection. */
export const DEFAULT_HEARTBEAT_MS = 5_000;

const positive = (argument: string, value: number): number => {
  if (typeof value !== "number" || !(value > 0))
    throw new InvalidArgumentError({ argument, reason: `expected a positive number, got ${value}` });
  return value;
};
const positiveInteger = (argument: string, value: number): number => {
  if (!Number.isInteger(value) || value < 1)
    throw new InvalidArgumentError({ argument, reason: `expected a whole number of at least 1, got ${value}` });
  return value;
};
const nonNegative = (argument: string, value: number): number => {
  if (typeof value !== "number" || !(value >= 0))
    throw new InvalidArgumentError({ argument, reason: `expected a number of at least 0, got ${value}` });
  return value;
};
const port = (value: number): number => {
  if (!Number.isInteger(value) || value < 0 || value > 65_535)
    throw new InvalidArgumentError({ argument: "port", reason: `expected 0 to 65535, got ${value}` });
  return value;
};

export interface BrokerNodeSettings {
  readonly port: number;
  readonly host: string;
  readonly dataDir: string | undefined;
  readonly token: string | undefined;
  readonly adminToken: string | undefined;
  readonly maxConnections: number;
  readonly maxUnauthenticatedConnections: number;
  readonly maxHelloBytes: number;
  readonly handshakeTimeoutMs: number;
  readonly refusalDelayMs: number;
  readonly compactAtBytes: number;
  readonly fsync: DurableLogOptions["fsync"];
  readonly heartbeatMs: number;
  readonly maxFrameBytes: number;
  readonly maxMessages: number;
  /** The dead-letter bounds given, for the node's broker (which holds their defaults). */
  readonly deadLetterBounds: { readonly maxDeadLetters?: number; readonly maxDeadLetterBytes?: number };
  readonly clock: Clock;
  readonly log: (message: string) => void;
}

/** Addresses only this machine can reach. */
const isLoopback = (host: string): boolean =>
  host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);

export const brokerNodeSettings = (options: BrokerNodeOptions): BrokerNodeSettings => {
  const host = options.host ?? "127.0.0.1";
  const token = options.token === "" ? undefined : options.token;
  // Like Redis's protected mode: a node others can reach must ask for a token, unless told in so many words not to.
  if (token === undefined && !isLoopback(host) && options.allowAnonymous !== true) {
    throw new InvalidArgumentError({
      argument: "token",
      reason:
        `a node listening on ${host} can be reached from other machines and must require a token: ` +
        "give it one (celerity broker --token-file <file>, or CELERITY_TOKEN), or allow anyone in with allowAnonymous (--allow-anonymous)",
    });
  }
  const adminToken = options.adminToken === "" ? undefined : options.adminToken;
  if (adminToken !== undefined && adminToken === token)
    throw new InvalidArgumentError({
      argument: "adminToken",
      reason: "the admin token must differ from the token: a client holding the token would be an administrator",
    });
  return resolved(options, host, token, adminToken);
};

const resolved = (
  options: BrokerNodeOptions,
  host: string,
  token: string | undefined,
  adminToken: string | undefined,
): BrokerNodeSettings => ({
  port: port(options.port ?? DEFAULT_NODE_PORT),
  host,
  dataDir: options.dataDir,
  token,
  adminToken,
  maxConnections: positiveInteger("maxConnections", options.maxConnections ?? 10_000),
  maxUnauthenticatedConnections: positiveInteger(
    "maxUnauthenticatedConnections",
    options.maxUnauthenticatedConnections ?? 256,
  ),
  maxHelloBytes: positiveInteger("maxHelloBytes", options.maxHelloBytes ?? 64 * 1024),
  handshakeTimeoutMs: positive("handshakeTimeoutMs", options.handshakeTimeoutMs ?? 10_000),
  refusalDelayMs: nonNegative("refusalDelayMs", options.refusalDelayMs ?? 1_000),
  compactAtBytes: positiveInteger("compactAtBytes", options.compactAtBytes ?? 64 * 1024 * 1024),
  fsync: options.fsync ?? "always",
  heartbeatMs: positive("heartbeatMs", options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS),
  maxFrameBytes: positiveInteger("maxFrameBytes", options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES),
  maxMessages: positiveInteger("maxMessages", options.maxMessages ?? 2_000_000),
  deadLetterBounds: {
    ...(options.maxDeadLetters !== undefined
      ? { maxDeadLetters: positiveInteger("maxDeadLetters", options.maxDeadLetters) }
      : {}),
    ...(options.maxDeadLetterBytes !== undefined
      ? { maxDeadLetterBytes: positiveInteger("maxDeadLetterBytes", options.maxDeadLetterBytes) }
      : {}),
  },
  clock: options.clock ?? systemClock,
  log: options.log ?? ((message: string) => console.error(`celerity broker: ${message}`)),
});

export interface NodeClientSettings {
  readonly token: string | undefined;
  readonly signed: boolean;
  readonly name: string | undefined;
  /** Undefined: the node's interval, from its Welcome. */
  readonly heartbeatMs: number | undefined;
  readonly reconnectMinMs: number;
  readonly reconnectMaxMs: number;
  readonly requestTimeoutMs: number;
  readonly maxInFlight: number;
  readonly clock: Clock;
  readonly log: ((message: string) => void) | undefined;
}

export const nodeClientSettings = (options: NodeClientOptions): NodeClientSettings => ({
  token: options.token,
  signed: options.signed === true,
  name: options.name,
  heartbeatMs: options.heartbeatMs === undefined ? undefined : positive("heartbeatMs", options.heartbeatMs),
  reconnectMinMs: positive("reconnectMinMs", options.reconnectMinMs ?? 50),
  reconnectMaxMs: positive("reconnectMaxMs", options.reconnectMaxMs ?? 2_000),
  requestTimeoutMs: positive("requestTimeoutMs", options.requestTimeoutMs ?? 30_000),
  maxInFlight: positiveInteger("maxInFlight", options.maxInFlight ?? 10_000),
  clock: options.clock ?? systemClock,
  log: options.log,
});
