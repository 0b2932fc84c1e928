/**
 * The settings of an AmqpTransport, with every default in one place.
 *
 * @module
 */
import { InvalidArgumentError } from "../errors.ts";
import type { QueueType } from "./queue-arguments.ts";

/**
 * The settings of an AmqpTransport; every field is optional.
 *
 * @example
 * const broker = AmqpTransport.create(url, { queueType: "quorum", prefix: "billing", connectTimeoutMs: 10_000 });
 */
export interface AmqpTransportOptions {
  /**
   * Prefix of the names the transport creates for itself: the delay ladder
   * (`<prefix>.delay.<n>`, `<prefix>.delay.out`) and the revocation stream
   * (`<prefix>.revocations`). Apps sharing a vhost and this prefix share delays
   * and revocations. Default "celerity".
   */
  readonly prefix?: string;
  /**
   * The type of the queues this transport declares. "classic" (default):
   * priorities 0-9, one node. "quorum": replicated across a RabbitMQ cluster,
   * delivery limits enforced by RabbitMQ, no priority ordering (RabbitMQ 3.x).
   * Queues that already exist keep the type they were declared with.
   */
  readonly queueType?: QueueType;
  /** Write messages to disk (AMQP delivery mode 2), so a broker restart keeps them. Default true. */
  readonly persistent?: boolean;
  /** AMQP heartbeat in seconds: a silent connection is declared dead after about twice this. Default 10. */
  readonly heartbeatSeconds?: number;
  /** First wait before reconnecting, doubled on each failed attempt up to `reconnectMaxMs`. Default 100 ms. */
  readonly reconnectInitialMs?: number;
  /** Longest wait between reconnection attempts. Default 5 s. */
  readonly reconnectMaxMs?: number;
  /** How long revocations stay in the revocation stream (RabbitMQ's `x-max-age`, e.g. "7D"). Default "7D". */
  readonly revocationRetention?: string;
  /** How long an operation waits for a connection (and for the revocations so far) before failing with AmqpConnectionError. Default 30 s. */
  readonly connectTimeoutMs?: number;
  /** Where the transport reports what it had to recover from (a lost connection, a consumer cancelled by the server). Default console.error. */
  readonly log?: (message: string) => void;
  /** Name shown in RabbitMQ's connection list. Default `celerity@<pid>`. */
  readonly connectionName?: string;
}

export interface ResolvedAmqpOptions {
  readonly url: string;
  readonly queueType: QueueType;
  readonly prefix: string;
  readonly persistent: boolean;
  readonly heartbeatSeconds: number;
  readonly reconnectInitialMs: number;
  readonly reconnectMaxMs: number;
  readonly connectTimeoutMs: number;
  readonly revocationRetention: string;
  readonly log: (message: string) => void;
  readonly connectionName: string;
}

/** The options with their defaults, checked: a bad value throws InvalidArgumentError naming it. */
export const resolveAmqpOptions = (url: string, options: AmqpTransportOptions = {}): ResolvedAmqpOptions => {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidArgumentError({
      argument: "broker url",
      reason: `${JSON.stringify(url)} is not a url (expected amqp://user:password@host:5672/vhost)`,
    });
  }
  if (parsed.protocol !== "amqp:" && parsed.protocol !== "amqps:") {
    throw new InvalidArgumentError({
      argument: "broker url",
      reason: `${JSON.stringify(url)} is not an amqp:// or amqps:// url`,
    });
  }
  const positive = (argument: string, value: number | undefined, fallback: number): number => {
    if (value === undefined) return fallback;
    if (!Number.isFinite(value) || value < 0)
      throw new InvalidArgumentError({ argument, reason: `must be a non-negative number, got ${String(value)}` });
    return value;
  };
  const prefix = options.prefix ?? "celerity";
  if (typeof prefix !== "string" || prefix.length === 0)
    throw new InvalidArgumentError({ argument: "prefix", reason: "must be a non-empty string" });
  const retention = options.revocationRetention ?? "7D";
  if (!/^\d+[YMDhms]$/.test(retention)) {
    throw new InvalidArgumentError({
      argument: "revocationRetention",
      reason: `must be a number and a unit among Y M D h m s (e.g. "7D"), got ${JSON.stringify(retention)}`,
    });
  }
  const queueType = options.queueType ?? "classic";
  if (queueType !== "classic" && queueType !== "quorum")
    throw new InvalidArgumentError({
      argument: "queueType",
      reason: `must be "classic" or "quorum", got ${JSON.stringify(queueType)}`,
    });
  return {
    url,
    queueType,
    prefix,
    persistent: options.persistent ?? true,
    heartbeatSeconds: positive("heartbeatSeconds", options.heartbeatSeconds, 10),
    reconnectInitialMs: positive("reconnectInitialMs", options.reconnectInitialMs, 100),
    reconnectMaxMs: positive("reconnectMaxMs", options.reconnectMaxMs, 5_000),
    connectTimeoutMs: positive("connectTimeoutMs", options.connectTimeoutMs, 30_000),
    revocationRetention: retention,
    log: options.log ?? ((message) => console.error(message)),
    connectionName: options.connectionName ?? `celerity@${process.pid}`,
  };
};

/** The url with its password hidden, for messages and logs. */
export const redactUrl = (url: string): string => {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "***";
    return parsed.toString();
  } catch {
    return url;
  }
};
