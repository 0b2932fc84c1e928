/**
 * Errors that keep their identity across the wire. An error the node raises
 * for a request travels as `{ tag, message, fields }`; the client rebuilds
 * it as the same class with the same fields when the tag is one it knows
 * (every error of the transport contract, the protocol's own, and any a
 * layer above registers), so `instanceof UnroutableError` holds over TCP as
 * it does on the embedded broker. An unknown tag becomes a RemoteBrokerError
 * carrying the tag and the node's message.
 *
 * @example
 * registerWireErrors({ MyServiceError });
 * // node: a handler throws new MyServiceError({ id })
 * // client: await client.call(op, args) rejects with a MyServiceError whose id is set
 */
import {
  BrokerClosedError,
  DeclarationConflictError,
  ExchangeNotFoundError,
  InvalidArgumentError,
  QueueNotFoundError,
  UnknownDeliveryError,
  UnroutableError,
} from "../errors.ts";
import { OperationNotPermittedError, ProtocolError, RemoteBrokerError, type WireError } from "./protocol.ts";

/** A tagged error class, built from its fields (as `Data.TaggedError` classes are). */
export type WireErrorClass = new (fields: any) => Error;

const known = new Map<string, WireErrorClass>();

/** Make errors of these classes, keyed by their tag, cross the wire as themselves. */
export const registerWireErrors = (classes: Readonly<Record<string, WireErrorClass>>): void => {
  for (const [tag, errorClass] of Object.entries(classes)) known.set(tag, errorClass);
};

registerWireErrors({
  BrokerClosedError,
  DeclarationConflictError,
  ExchangeNotFoundError,
  InvalidArgumentError,
  QueueNotFoundError,
  UnknownDeliveryError,
  UnroutableError,
  ProtocolError,
  OperationNotPermittedError,
});

const isPlainValue = (value: unknown, depth = 0): boolean => {
  if (value === null || ["string", "number", "boolean"].includes(typeof value)) return true;
  if (depth > 4) return false;
  if (Array.isArray(value)) return value.every((item) => isPlainValue(item, depth + 1));
  if (typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.values(value as object).every((item) => isPlainValue(item, depth + 1));
  }
  return false;
};

/** An error as it travels: its tag, its message, and its own fields that msgpack can carry. */
export const errorToWire = (error: unknown): WireError => {
  if (!(error instanceof Error)) return { tag: "Error", message: String(error) };
  const tag = (error as { _tag?: unknown })._tag;
  const fields: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(error)) {
    if (key !== "_tag" && key !== "stack" && key !== "message" && isPlainValue(value)) fields[key] = value;
  }
  return { tag: typeof tag === "string" ? tag : error.name, message: error.message, fields };
};

/** Rebuild an error the node reported for `op`: the same class when its tag is known, else a RemoteBrokerError. */
export const errorFromWire = (wire: WireError, op: string): Error => {
  const errorClass = known.get(wire.tag);
  if (errorClass !== undefined && wire.fields !== undefined && wire.fields !== null) {
    try {
      return new errorClass(wire.fields);
    } catch {
      // Fields that no longer fit the class (a node of another version): fall through to the generic error.
    }
  }
  return new RemoteBrokerError({ tag: wire.tag, reason: wire.message, op });
};
