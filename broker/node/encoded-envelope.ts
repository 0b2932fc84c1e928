// A published envelope's msgpack bytes, found in the publish request, so the node's log
// record can take them as they are: the node decodes a published envelope once (it must
// read the routing fields) and does not encode it again for the log. The bytes are exactly
// the wire form (protocol.ts, `WireEnvelope`), so a record built from them reads back the
// same as one encoded from the fields. They are a view into a socket read, used at once
// and never kept (a kept view would keep the whole read). Also an envelope's bytes of their
// own, for an operation that carries envelopes as bin for the same reason (`results.send`).
import type { Envelope } from "../envelope.ts";
import { FrameDecoder } from "./frame-decoder.ts";
import { FrameEncoder } from "./frame-encoder.ts";
import type { RecordArena } from "./pooled-bytes.ts";
import { envelopeFromWire, envelopeToWire, ProtocolError } from "./protocol.ts";

const FIXARRAY_3 = 0x93;
const FIXARRAY_2 = 0x92;
const FIXARRAY_8 = 0x98;
const FALSE = 0xc2;
const TRUE = 0xc3;
/** "publish" as a msgpack fixstr. */
const PUBLISH = [0xa7, 0x70, 0x75, 0x62, 0x6c, 0x69, 0x73, 0x68];

/** Bytes taken by the msgpack unsigned integer starting at `payload[at]`, or 0 if none starts there. */
const uintLength = (marker: number): number => {
  if (marker < 0x80) return 1;
  switch (marker) {
    case 0xcc:
      return 2;
    case 0xcd:
      return 3;
    case 0xce:
      return 5;
    case 0xcf:
      return 9;
    default:
      return 0;
  }
};

/**
 * The envelope's bytes inside a `publish` Request payload,
 * `[requestId, "publish", [envelope, mandatory]]`, as the client encodes it;
 * undefined for any other layout (the caller then encodes the envelope itself).
 * The caller has decoded and validated the same payload, so only its shape is checked here.
 */
export const publishedEnvelopeBytes = (payload: Uint8Array): Uint8Array | undefined => {
  if (payload.length < 12 || payload[0] !== FIXARRAY_3) return undefined;
  const idLength = uintLength(payload[1]);
  if (idLength === 0) return undefined;
  let at = 1 + idLength;
  for (let i = 0; i < PUBLISH.length; i++) if (payload[at + i] !== PUBLISH[i]) return undefined;
  at += PUBLISH.length;
  if (payload[at] !== FIXARRAY_2 || payload[at + 1] !== FIXARRAY_8) return undefined;
  const last = payload[payload.length - 1];
  if (last !== FALSE && last !== TRUE) return undefined;
  return payload.subarray(at + 1, payload.length - 1);
};

/**
 * msgpack of the array `[...head, <envelope>]`, where the envelope is given
 * already encoded: `head` is encoded as an array (of at most 14 items) and its
 * header widened by one, then the envelope's bytes follow; made in `arena`.
 */
export const encodeWithEnvelope = (
  encoder: FrameEncoder,
  head: readonly unknown[],
  envelope: Uint8Array,
  arena: RecordArena,
): Uint8Array => {
  const encodedHead = encoder.encodeSharedRef(head);
  const bytes = arena.alloc(encodedHead.length + envelope.length);
  bytes.set(encodedHead);
  bytes[0] = 0x90 | (head.length + 1);
  bytes.set(envelope, encodedHead.length);
  return bytes;
};

const envelopeEncoder = new FrameEncoder();
const envelopeDecoder = new FrameDecoder();

/**
 * An envelope's wire form as msgpack bytes of their own: what an operation
 * sends as `bin` when the node is to journal the envelope as it came (see
 * `results.send`), rather than decode it and encode it again.
 */
export const envelopeBytes = (envelope: Envelope): Uint8Array => envelopeEncoder.encode(envelopeToWire(envelope));

/** The envelope in `bytes` (as `envelopeBytes` writes them), decoded and validated; throws ProtocolError. */
export const envelopeFromBytes = (bytes: Uint8Array): Envelope => {
  let wire: unknown;
  try {
    wire = envelopeDecoder.decode(bytes);
  } catch (cause) {
    throw new ProtocolError({
      reason: `undecodable envelope: ${cause instanceof Error ? cause.message : String(cause)}`,
    });
  }
  return envelopeFromWire(wire);
};
