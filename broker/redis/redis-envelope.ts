// An envelope as Redis stores it: one msgpack array
// `[id, exchange, routingKey, priority, eta|nil, expires|nil, headers, body]`.
// The scripts never read it; the routing facts they need travel beside it.
import { Decoder, Encoder } from "@msgpack/msgpack";
import type { Envelope, HeaderValue } from "../envelope.ts";

const encoder = new Encoder();
const decoder = new Decoder();

export const encodeEnvelope = (envelope: Envelope): Buffer => {
  const bytes = encoder.encode([
    envelope.id,
    envelope.exchange,
    envelope.routingKey,
    envelope.priority,
    envelope.eta ?? null,
    envelope.expires ?? null,
    envelope.headers,
    envelope.body,
  ]);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
};

/** Read back a stored envelope; throws naming the field when the bytes are not one (written by something else). */
export const decodeEnvelope = (bytes: Uint8Array): Envelope => {
  const wire = decoder.decode(bytes);
  if (!Array.isArray(wire) || wire.length !== 8) throw new Error("a stored envelope is an array of 8 fields");
  const [id, exchange, routingKey, priority, eta, expires, headers, body] = wire as unknown[];
  if (
    typeof id !== "string" ||
    typeof exchange !== "string" ||
    typeof routingKey !== "string" ||
    typeof priority !== "number"
  ) {
    throw new Error("a stored envelope's id, exchange, routing key or priority has the wrong type");
  }
  if (!(body instanceof Uint8Array) || headers === null || typeof headers !== "object")
    throw new Error("a stored envelope's headers or body has the wrong type");
  const envelope: { -readonly [K in keyof Envelope]: Envelope[K] } = {
    id,
    exchange,
    routingKey,
    priority,
    headers: headers as Record<string, HeaderValue>,
    body,
  };
  if (typeof eta === "number") envelope.eta = eta;
  if (typeof expires === "number") envelope.expires = expires;
  return envelope;
};
