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
// both the publishing and the verifying side, and is synchronous.
let scratch = Buffer.allocUnsafe(4096);
let at = 0;

const ensure = (n: number): void => {
  if (at + n <= scratch.length) return;
  const bigger = Buffer.allocUnsafe(Math.max(scratch.length * 2, at + n));
  scratch.copy(bigger, 0, 0, at);
  scratch = bigger;
};

// Written by hand rather than with Buffer's write methods: their per-call checks cost more than the
// few bytes they write, and this runs a dozen times per message on each side.
const u32 = (n: number): void => {
  ensure(4);
  scratch[at] = n >>> 24;
  scratch[at + 1] = n >>> 16;
  scratch[at + 2] = n >>> 8;
  scratch[at + 3] = n;
  at += 4;
};

const float = new Float64Array(1);
const floatBytes = new Uint8Array(float.buffer);
const bigEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 0;

const f64 = (n: number): void => {
  ensure(8);
  float[0] = n;
  for (let i = 0; i < 8; i++) scratch[at + i] = floatBytes[bigEndian ? i : 7 - i];
  at += 8;
};

const byte = (b: number): void => {
  ensure(1);
  scratch[at++] = b;
};

// UTF-16 code units rather than UTF-8: every JavaScript string, lone surrogates included, then has its own bytes.
const str = (s: string): void => {
  const bytes = s.length * 2;
  u32(bytes);
  ensure(bytes);
  if (s.length > 64) scratch.write(s, at, "utf16le");
  else {
    for (let i = 0, o = at; i < s.length; i++, o += 2) {
      const c = s.charCodeAt(i);
      scratch[o] = c;
      scratch[o + 1] = c >>> 8;
    }
  }
  at += bytes;
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

const byCodeUnit = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The canonical bytes of `envelope`. The returned buffer is a view of shared
 * scratch space: hash it before the next call.
 */
export const canonicalBytes = (envelope: Envelope, body: Uint8Array = envelope.body): Buffer =>
  encode(envelope, body).subarray(1);

/**
 * The envelope's leaf hash in a signed batch: SHA-256 of the leaf prefix and
 * its canonical bytes, hashed in place (this runs for every message on both sides).
 */
export const envelopeLeaf = (envelope: Envelope, body: Uint8Array = envelope.body): Buffer =>
  sha256(encode(envelope, body));

/** The leaf prefix byte, then the canonical bytes. */
const encode = (envelope: Envelope, body: Uint8Array): Buffer => {
  at = 0;
  ensure(1 + MAGIC.length);
  scratch[0] = LEAF_PREFIX;
  MAGIC.copy(scratch, 1);
  at = 1 + MAGIC.length;
  str(envelope.id);
  str(envelope.exchange);
  str(envelope.routingKey);
  f64(envelope.priority);
  opt(envelope.eta);
  opt(envelope.expires);
  const headers = envelope.headers;
  const keys: string[] = [];
  for (const key in headers) {
    const v = headers[key];
    if (v !== undefined && v !== null) keys.push(key);
  }
  keys.sort(byCodeUnit);
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
