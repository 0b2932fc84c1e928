// The node's wire protocol, version 1 (docs/protocol.md): the frame types, the envelope's
// wire form, the protocol's errors and the payload codec. Every frame (see wire-frame.ts)
// carries one of the types below and a msgpack payload. Hot frames (publish, deliver, ack)
// use positional arrays: smaller and faster to encode than maps.
import { Data } from "effect";
import type { Envelope, HeaderValue } from "../envelope.ts";
import { FrameDecoder } from "./frame-decoder.ts";
import { FrameEncoder } from "./frame-encoder.ts";

/**
 * The wire protocol's version, sent in the handshake; a node refuses a client of another version.
 *
 * @example
 * console.log(`speaks protocol ${PROTOCOL_VERSION}`); // docs/protocol.md
 */
export const PROTOCOL_VERSION = 1;

export const FrameType = {
  /** client → node: `{ version, token?, name }`, the first frame of a connection. */
  Hello: 1,
  /** node → client: `{ version, node, heartbeatMs, maxFrameBytes }`. */
  Welcome: 2,
  /** node → client: `{ code, message }`, then the node closes the connection. */
  Refused: 3,
  /** either way, empty: proof of life; the other side answers Pong. */
  Ping: 4,
  Pong: 5,
  /** client → node: `[requestId, op, args]`. */
  Request: 6,
  /** node → client: `[requestId, 1, value]` or `[requestId, 0, { tag, message, fields }]`. */
  Response: 7,
  /** node → client: `[consumerTag, deliveryTag, deliveryCount, queue, envelope]`. */
  Deliver: 8,
  /** node → client: `[id, terminate, ttlMs]`, a revocation as it happens. */
  Revoked: 9,
  /** node → client: `[topic, payload]`, an event of a service the client subscribed to (e.g. a result became final). */
  Notify: 10,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/** What a Refused frame or a failed Response carries. */
export interface WireError {
  readonly tag: string;
  readonly message: string;
  /** The error's own fields, so the client can rebuild the same class (see wire-errors.ts). */
  readonly fields?: Readonly<Record<string, unknown>>;
}

/**
 * Input that breaks the node's protocol, or a broker url that is not `celerity://host:port`.
 *
 * @example
 * createApp({ broker: "amqp://localhost" }); // throws ProtocolError: broker url must look like celerity://host:port
 */
export class ProtocolError extends Data.TaggedError("ProtocolError")<{
  readonly reason: string;
}> {
  override get message(): string {
    return `protocol error: ${this.reason}`;
  }
}

/**
 * An error the node reported for a request whose tag the client does not know: it carries the node's tag and message.
 *
 * @example
 * await add.delay(1, 2).catch((error) => error instanceof RemoteBrokerError && console.log(error.tag, error.op));
 */
export class RemoteBrokerError extends Data.TaggedError("RemoteBrokerError")<{
  readonly tag: string;
  readonly reason: string;
  readonly op: string;
}> {
  override get message(): string {
    return `${this.op} failed on the broker node: ${this.reason}`;
  }
}

/**
 * The connection may not run this operation: the node has an admin token,
 * and the operation (revoke, binding a queue to a task exchange, purging, a
 * rate change, rewriting a result) needs it.
 *
 * @example
 * await app.revoke([id]).catch((error) => error instanceof OperationNotPermittedError); // true without the admin token
 */
export class OperationNotPermittedError extends Data.TaggedError("OperationNotPermittedError")<{
  readonly op: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `the broker node does not let this connection run '${this.op}': ${this.reason}`;
  }
}

/**
 * The node refused the connection (wrong token, unsupported version).
 *
 * @example
 * const app = createApp({ broker: "celerity://127.0.0.1:5690", token: "wrong" });
 * await add.delay(1, 2).catch((error) => error instanceof ConnectionRefusedError); // true: code "unauthorized"
 */
export class ConnectionRefusedError extends Data.TaggedError("ConnectionRefusedError")<{
  readonly code: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `the broker node refused the connection (${this.code}): ${this.reason}`;
  }
}

export type WireEnvelope = [
  id: string,
  exchange: string,
  routingKey: string,
  priority: number,
  eta: number | null,
  expires: number | null,
  headers: Record<string, HeaderValue>,
  body: Uint8Array,
];

export const envelopeToWire = (envelope: Envelope): WireEnvelope => [
  envelope.id,
  envelope.exchange,
  envelope.routingKey,
  envelope.priority,
  envelope.eta ?? null,
  envelope.expires ?? null,
  envelope.headers as Record<string, HeaderValue>,
  envelope.body,
];

const isRecord = (value: unknown): value is Record<string, HeaderValue> =>
  value !== null && typeof value === "object" && !Array.isArray(value) && !(value instanceof Uint8Array);

/** Validate and rebuild an envelope from the wire; throws ProtocolError naming the bad field. */
export const envelopeFromWire = (wire: unknown): Envelope => {
  if (!Array.isArray(wire) || wire.length !== 8)
    throw new ProtocolError({ reason: "an envelope is an array of 8 fields" });
  const [id, exchange, routingKey, priority, eta, expires, headers, body] = wire as unknown[];
  if (typeof id !== "string" || id === "")
    throw new ProtocolError({ reason: "envelope id must be a non-empty string" });
  if (typeof exchange !== "string") throw new ProtocolError({ reason: "envelope exchange must be a string" });
  if (typeof routingKey !== "string") throw new ProtocolError({ reason: "envelope routing key must be a string" });
  if (typeof priority !== "number") throw new ProtocolError({ reason: "envelope priority must be a number" });
  if (eta !== null && typeof eta !== "number")
    throw new ProtocolError({ reason: "envelope eta must be a number or nil" });
  if (expires !== null && typeof expires !== "number")
    throw new ProtocolError({ reason: "envelope expires must be a number or nil" });
  if (!isRecord(headers)) throw new ProtocolError({ reason: "envelope headers must be a map" });
  if (!(body instanceof Uint8Array)) throw new ProtocolError({ reason: "envelope body must be binary" });
  const envelope: { -readonly [K in keyof Envelope]: Envelope[K] } = {
    id,
    exchange,
    routingKey,
    priority,
    headers,
    body,
  };
  if (eta !== null) envelope.eta = eta as number;
  if (expires !== null) envelope.expires = expires as number;
  return envelope;
};

/**
 * msgpack for frames. One Encoder and Decoder per connection side, reused:
 * frames are encoded and decoded one at a time, synchronously.
 */
export class FrameCodec {
  private readonly encoder = new FrameEncoder();
  private readonly decoder = new FrameDecoder();

  encode(value: unknown): Uint8Array {
    return this.encoder.encodeSharedRef(value);
  }

  decode(payload: Uint8Array): unknown {
    try {
      return this.decoder.decode(payload);
    } catch (cause) {
      throw new ProtocolError({
        reason: `undecodable payload (${payload.byteLength} bytes): ${cause instanceof Error ? cause.message : String(cause)}`,
      });
    }
  }
}
