/**
 * An envelope as an AMQP message, and back. The body is the envelope's body,
 * untouched; the id is the message id, the priority the AMQP priority; the
 * envelope's headers are AMQP headers. What RabbitMQ cannot carry in its own
 * fields travels in headers named `x-celerity-*`, which a consumer never sees.
 *
 * @module
 */
import type { Options } from "amqplib";
import { clampPriority, type DeadLetter, type Envelope, type HeaderValue } from "../envelope.ts";

/** The transport's own headers. */
export const Header = {
  eta: "x-celerity-eta",
  expires: "x-celerity-expires",
  /** Deliveries made before this copy was published (a requeue republishes the message with the count so far). */
  deliveries: "x-celerity-deliveries",
  /** The exchange and routing key the envelope was published with, kept where RabbitMQ's fields change (delays, dead letters, requeues). */
  exchange: "x-celerity-exchange",
  routingKey: "x-celerity-routing-key",
  deadReason: "x-celerity-dead-reason",
  deadQueue: "x-celerity-dead-queue",
  deadAt: "x-celerity-dead-at",
  /** When a delayed message was published: a purge of its queue after this drops it when it comes due. */
  sentAt: "x-celerity-sent-at",
} as const;

const OWN_PREFIX = "x-celerity-";
/** Headers RabbitMQ or the delay ladder add on the way, dropped before a consumer sees the envelope. */
const ROUTING_PREFIX = "celerity-delay-";
const BROKER_HEADERS = new Set([
  "x-death",
  "x-first-death-exchange",
  "x-first-death-queue",
  "x-first-death-reason",
  "x-last-death-exchange",
  "x-last-death-queue",
  "x-last-death-reason",
  "x-delivery-count",
]);

/** The facts of an AMQP message the transport reads: its fields, properties and body. */
export interface AmqpMessageLike {
  readonly fields: { readonly exchange: string; readonly routingKey: string; readonly redelivered: boolean };
  readonly properties: {
    readonly messageId?: string;
    readonly priority?: number;
    readonly headers?: Record<string, unknown>;
  };
  readonly content: Buffer;
}

/** The AMQP properties of `envelope`, with `extra` transport headers. */
export const publishOptions = (
  envelope: Envelope,
  persistent: boolean,
  extra?: Record<string, unknown>,
): Options.Publish => {
  const headers: Record<string, unknown> = {};
  for (const key in envelope.headers) {
    const value = envelope.headers[key];
    if (value !== undefined) headers[key] = value;
  }
  if (envelope.eta !== undefined) headers[Header.eta] = envelope.eta;
  if (envelope.expires !== undefined) headers[Header.expires] = envelope.expires;
  if (extra !== undefined) Object.assign(headers, extra);
  return { messageId: envelope.id, priority: clampPriority(envelope.priority), headers, persistent };
};

/**
 * The envelope an AMQP message carries, and how many deliveries it had
 * before this one: those recorded in the message by a requeue, plus those a
 * quorum queue counted itself (`x-delivery-count`, when `countedByQueue`).
 */
export const envelopeOf = (
  message: AmqpMessageLike,
): { envelope: Envelope; previousDeliveries: number; countedByQueue: boolean } => {
  const raw = message.properties.headers ?? {};
  const headers: Record<string, HeaderValue> = {};
  for (const key in raw) {
    if (key.startsWith(OWN_PREFIX) || key.startsWith(ROUTING_PREFIX) || BROKER_HEADERS.has(key)) continue;
    headers[key] = headerValue(raw[key]);
  }
  const exchange = raw[Header.exchange];
  const routingKey = raw[Header.routingKey];
  const eta = raw[Header.eta];
  const expires = raw[Header.expires];
  const deliveries = raw[Header.deliveries];
  const counted = raw["x-delivery-count"];
  const envelope: Envelope = {
    id: message.properties.messageId ?? "",
    exchange: typeof exchange === "string" ? exchange : message.fields.exchange,
    routingKey: typeof routingKey === "string" ? routingKey : message.fields.routingKey,
    priority: clampPriority(message.properties.priority),
    ...(typeof eta === "number" ? { eta } : {}),
    ...(typeof expires === "number" ? { expires } : {}),
    headers,
    body: message.content,
  };
  const countedByQueue = typeof counted === "number";
  return {
    envelope,
    previousDeliveries: (typeof deliveries === "number" ? deliveries : 0) + (countedByQueue ? counted : 0),
    countedByQueue,
  };
};

/** A message of a dead-letter queue as the contract's DeadLetter. */
export const deadLetterOf = (message: AmqpMessageLike): DeadLetter => {
  const raw = message.properties.headers ?? {};
  const reason = raw[Header.deadReason];
  const queue = raw[Header.deadQueue];
  const at = raw[Header.deadAt];
  return {
    envelope: envelopeOf(message).envelope,
    queue: typeof queue === "string" ? queue : (deathQueue(raw) ?? ""),
    reason: typeof reason === "string" ? reason : deathReason(raw),
    at: typeof at === "number" ? at : deathTime(raw),
  };
};

/** Headers that keep where a message was first published, for a copy sent elsewhere (a requeue or a dead letter). */
export const originHeaders = (envelope: Envelope): Record<string, unknown> => ({
  [Header.exchange]: envelope.exchange,
  [Header.routingKey]: envelope.routingKey,
});

// Header values from other publishers may be of AMQP types the contract does not have.
const headerValue = (value: unknown): HeaderValue => {
  if (value === null || typeof value === "string" || typeof value === "number" || typeof value === "boolean")
    return value;
  if (Buffer.isBuffer(value)) return value.toString("utf8");
  return JSON.stringify(value);
};

/** A message RabbitMQ dead-lettered itself (not through this transport) names its queue in x-death. */
const deathQueue = (headers: Record<string, unknown>): string | undefined => {
  const queue = headers["x-first-death-queue"];
  return typeof queue === "string" ? queue : undefined;
};

const deathReason = (headers: Record<string, unknown>): string => {
  const reason = headers["x-first-death-reason"];
  if (reason === "delivery_limit")
    return "delivered more times than its queue's delivery limit (maxDeliveries) without an acknowledgement";
  return typeof reason === "string" ? `dead-lettered by RabbitMQ: ${reason}` : "dead-lettered";
};

/** When RabbitMQ dead-lettered the message: x-death's time, an AMQP timestamp in seconds. */
const deathTime = (headers: Record<string, unknown>): number => {
  const deaths = headers["x-death"];
  const time = Array.isArray(deaths)
    ? (deaths[0] as { time?: { value?: unknown } } | undefined)?.time?.value
    : undefined;
  return typeof time === "number" ? time * 1000 : 0;
};
