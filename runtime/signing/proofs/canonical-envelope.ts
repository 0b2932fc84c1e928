// The bytes a signature covers: every field of an envelope, in one
// unambiguous encoding. That is the routing fields (id, exchange, routing
// key, priority, eta, expires), every header (task, retries, workflow and
// node, expires, the signing time...) and the body, so a broker that
// re-targets, re-times or re-prioritizes a signed message breaks its
// signature. The proof and the batch signature travel after the body (see
// signature-trailer.ts) and are not part of these bytes.
//
// Layout (lengths u32 big-endian, numbers float64 big-endian, strings as
// their byte length then UTF-16LE code units):
//   "celerity/envelope/1" 0x00
//   str id, str exchange, str routingKey, f64 priority,
//   opt eta, opt expires                 (opt: 0x00 absent | 0x01 f64)
//   u32 header count, then per header in code-unit order of its key:
//     str key, then 0x73 str | 0x6e f64 | 0x74 (true) | 0x66 (false)
//   u32 body length, body
// A header whose value is null or undefined counts as absent: msgpack on the
// wire turns one into the other.
import type { Envelope, HeaderValue } from "../../../broker/envelope.ts";
import { sha256 } from "./digest.ts";
import { LEAF_PREFIX } from "./merkle-batch.ts";

/** A header holds something other than a string, number, boolean or null (possible only from outside the runtime). */
export class UnsignableHeaderError extends TypeError {}

const MAGIC = Buffer.from("celerity/envelope/1\0", "latin1");

// One growable buffer reused across calls: encoding runs once per message on
// both the publishing and the verifying side, and is synchronous. Its first
// bytes (the leaf prefix and the magic) never change, so they are written
// once. Plain typed-array stores and a DataView rather than Buffer's write
// methods: their per-call checks cost more than the few bytes they write.
const HEAD = 1 + MAGIC.length;
let scratch = new Uint8Array(4096);
let view = new DataView(scratch.buffer);
scratch[0] = LEAF_PREFIX;
scratch.set(MAGIC, 1);
let at = HEAD;

const ensure = (n: number): void => {
  if (at + n <= scratch.length) return;
  const bigger = new Uint8Array(Math.max(scratch.length * 2, at + n));
  bigger.set(scratch.subarray(0, at));
  scratch = bigger;
  view = new DataView(scratch.buffer);
};

const u32 = (n: number): void => {
  ensure(4);
  view.setUint32(at, n);
  at += 4;
};

const f64 = (n: number): void => {
  ensure(8);
  view.setFloat64(at, n);
  at += 8;
};

const byte = (b: number): void => {
  ensure(1);
  scratch[at++] = b;
};

// UTF-16 code units rather than UTF-8: every JavaScript string, lone surrogates included, then has its own bytes.
const str = (s: string): void => {
  const length = s.length;
  ensure(4 + 2 * length);
  view.setUint32(at, 2 * length);
  const bytes = scratch;
  let o = at + 4;
  for (let i = 0; i < length; i++, o += 2) {
    const c = s.charCodeAt(i);
    bytes[o] = c;
    bytes[o + 1] = c >>> 8;
  }
  at = o;
};

const opt = (n: number | undefined | null): void => {
  if (n === undefined || n === null) return byte(0);
  byte(1);
  f64(n);
};

const value = (v: HeaderValue): void => {
  if (typeof v === "string") {
    byte(0x73);
    str(v);
  } else if (typeof v === "number") {
    byte(0x6e);
    f64(v);
  } else if (v === true) byte(0x74);
  else if (v === false) byte(0x66);
  else
    throw new UnsignableHeaderError(`a header value of type ${Array.isArray(v) ? "array" : typeof v} cannot be signed`);
};

/** The keys of the headers present (not null or undefined), in code-unit order (an insertion sort: a message has a handful). */
const presentKeys = (headers: Envelope["headers"]): string[] => {
  const keys: string[] = [];
  for (const key in headers) {
    const v = headers[key];
    if (v === undefined || v === null) continue;
    let i = keys.length;
    keys.push(key);
    for (; i > 0 && keys[i - 1] > key; i--) keys[i] = keys[i - 1];
    keys[i] = key;
  }
  return keys;
};

/**
 * The canonical bytes of `envelope`. The returned buffer is a view of shared
 * scratch space: hash it before the next call.
 */
export const canonicalBytes = (envelope: Envelope, body: Uint8Array = envelope.body): Uint8Array =>
  encode(envelope, body).subarray(1);

/**
 * The envelope's leaf hash in a signed batch: SHA-256 of the leaf prefix and
 * its canonical bytes, hashed in place (this runs for every message on both sides).
 */
export const envelopeLeaf = (envelope: Envelope, body: Uint8Array = envelope.body): Buffer =>
  sha256(encode(envelope, body));

/** The leaf prefix byte, then the canonical bytes. */
const encode = (envelope: Envelope, body: Uint8Array): Uint8Array => {
  at = HEAD;
  str(envelope.id);
  str(envelope.exchange);
  str(envelope.routingKey);
  f64(envelope.priority);
  opt(envelope.eta);
  opt(envelope.expires);
  const headers = envelope.headers;
  const keys = presentKeys(headers);
  u32(keys.length);
  for (const key of keys) {
    str(key);
    value(headers[key]);
  }
  u32(body.length);
  ensure(body.length);
  scratch.set(body, at);
  at += body.length;
  return scratch.subarray(0, at);
};
