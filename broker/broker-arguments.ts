// Validation of what callers hand a broker (queue names, delivery limits, ttls, envelopes),
// shared by the embedded broker and the Redis transport: each failure is an
// InvalidArgumentError naming the argument and why.
import type { Envelope } from "./envelope.ts";
import { InvalidArgumentError } from "./errors.ts";

export const checkQueueName = (name: unknown, argument: string): void => {
  if (typeof name !== "string" || name === "") {
    throw new InvalidArgumentError({ argument, reason: `must be a non-empty string, got ${JSON.stringify(name)}` });
  }
};

export const checkMaxDeliveries = (value: number, argument: string): number => {
  if (value !== Number.POSITIVE_INFINITY && (!Number.isInteger(value) || value < 1)) {
    throw new InvalidArgumentError({
      argument,
      reason: `must be an integer of at least 1 (or Infinity), got ${value}`,
    });
  }
  return value;
};

export const checkTtl = (value: number, argument: string): number => {
  if (typeof value !== "number" || Number.isNaN(value) || value <= 0) {
    throw new InvalidArgumentError({ argument, reason: `must be a positive number of milliseconds, got ${value}` });
  }
  return value;
};

export const checkEnvelope = (envelope: Envelope): InvalidArgumentError | undefined => {
  if (typeof envelope !== "object" || envelope === null) return invalidEnvelope("envelope", "must be an object");
  if (typeof envelope.id !== "string" || envelope.id === "")
    return invalidEnvelope("envelope.id", "must be a non-empty string");
  if (typeof envelope.exchange !== "string") return invalidEnvelope("envelope.exchange", "must be a string");
  if (typeof envelope.routingKey !== "string") return invalidEnvelope("envelope.routingKey", "must be a string");
  if (envelope.exchange === "" && envelope.routingKey === "") {
    return invalidEnvelope("envelope.routingKey", 'must name a queue when publishing to the default exchange ""');
  }
  if (envelope.eta !== undefined && !Number.isFinite(envelope.eta))
    return invalidEnvelope("envelope.eta", "must be epoch milliseconds");
  if (envelope.expires !== undefined && !Number.isFinite(envelope.expires)) {
    return invalidEnvelope("envelope.expires", "must be epoch milliseconds");
  }
  if (!(envelope.body instanceof Uint8Array)) return invalidEnvelope("envelope.body", "must be a Uint8Array");
  return undefined;
};

const invalidEnvelope = (argument: string, reason: string): InvalidArgumentError =>
  new InvalidArgumentError({ argument, reason });
