import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { Envelope, HeaderValue } from "../../../broker/envelope.ts";
import { canonicalBytes } from "./canonical-envelope.ts";
import { sampleEnvelope } from "../test-keys.ts";

/** The layout documented in canonical-envelope.ts, written plainly with Buffer's own methods, to hold the fast encoder to it. */
const reference = (e: Envelope): Buffer => {
  const parts: Buffer[] = [Buffer.from("celerity/envelope/1\0", "latin1")];
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    parts.push(b);
  };
  const f64 = (n: number) => {
    const b = Buffer.alloc(8);
    b.writeDoubleBE(n);
    parts.push(b);
  };
  const str = (s: string) => {
    const b = Buffer.from(s, "utf16le");
    u32(b.length);
    parts.push(b);
  };
  const opt = (n: number | undefined) => {
    parts.push(Buffer.from([n === undefined ? 0 : 1]));
    if (n !== undefined) f64(n);
  };
  str(e.id);
  str(e.exchange);
  str(e.routingKey);
  f64(e.priority);
  opt(e.eta);
  opt(e.expires);
  const keys = Object.keys(e.headers)
    .filter((k) => e.headers[k] !== undefined && e.headers[k] !== null)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  u32(keys.length);
  for (const k of keys) {
    str(k);
    const v = e.headers[k];
    if (typeof v === "string") {
      parts.push(Buffer.from([0x73]));
      str(v);
    } else if (typeof v === "number") {
      parts.push(Buffer.from([0x6e]));
      f64(v);
    } else parts.push(Buffer.from([v ? 0x74 : 0x66]));
  }
  u32(e.body.length);
  parts.push(Buffer.from(e.body));
  return Buffer.concat(parts);
};

const text = fc.oneof(
  fc.string(),
  fc.string({ unit: "binary", maxLength: 80 }),
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 100 }),
);
const value: fc.Arbitrary<HeaderValue> = fc.oneof(
  text,
  fc.double(),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
);

describe("canonical envelope bytes", () => {
  it("follow the documented layout for any envelope", () => {
    fc.assert(
      fc.property(
        fc.record(
          {
            id: text,
            exchange: text,
            routingKey: text,
            priority: fc.double(),
            eta: fc.double(),
            expires: fc.double(),
            headers: fc.dictionary(
              text.filter((k) => k !== "__proto__"),
              value,
              { maxKeys: 8 },
            ),
            body: fc.uint8Array({ maxLength: 200 }),
          },
          { requiredKeys: ["id", "exchange", "routingKey", "priority", "headers", "body"] },
        ),
        (e) => assert.deepEqual(Buffer.from(canonicalBytes(e)), reference(e)),
      ),
      { numRuns: 500 },
    );
  });

  it("treat a header that is null like one that is absent (msgpack turns undefined into null on the wire)", () => {
    const plain = Buffer.from(canonicalBytes(sampleEnvelope()));
    assert.deepEqual(
      Buffer.from(canonicalBytes(sampleEnvelope({ headers: { task: "add", retries: 0, parent: null } }))),
      plain,
    );
  });

  it("refuse a header value that is neither string, number, boolean nor null", () => {
    assert.throws(
      () => canonicalBytes(sampleEnvelope({ headers: { task: ["add"] as never } })),
      /header value of type array cannot be signed/,
    );
  });
});
