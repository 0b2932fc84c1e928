/**
 * Signed envelopes: every message of any batch verifies, and any single bit
 * flipped anywhere in a signed message (a routing field, a header's name or
 * value, the body, the proof or the signature in the body's trailer) makes it fail, including after
 * its batch's root was verified and cached.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { Envelope, HeaderValue } from "../broker/envelope.ts";
import { nativeEd25519 } from "../runtime/signing/ed25519.ts";
import { BatchSigner } from "../runtime/signing/message-signer.ts";
import { MessageVerifier } from "../runtime/signing/message-verifier.ts";
import { generateKeyPair, publicKeyOf } from "../runtime/signing/signing-keys.ts";

const NOW = 1_760_000_000_000;
const now = () => NOW;
const pair = generateKeyPair();
const signer = new BatchSigner(pair, nativeEd25519, now);
const verifier = new MessageVerifier([publicKeyOf(pair.publicKey)], nativeEd25519, { now });

const text = fc.oneof(
  fc.string(),
  fc.string({ unit: "binary", maxLength: 12 }),
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 8 }),
);
const headerKey = text.filter((k) => k !== "__proto__" && !k.startsWith("sig."));
const headerValue: fc.Arbitrary<HeaderValue> = fc.oneof(text, fc.double({ noNaN: true }), fc.integer(), fc.boolean());

const envelope: fc.Arbitrary<Envelope> = fc.record(
  {
    id: text,
    exchange: text,
    routingKey: text,
    priority: fc.integer({ min: 0, max: 9 }),
    eta: fc.integer({ min: NOW - 1_000, max: NOW + 1_000_000 }),
    expires: fc.integer({ min: 0, max: 2 ** 48 }),
    headers: fc.dictionary(headerKey, headerValue, { maxKeys: 6 }),
    body: fc.uint8Array({ maxLength: 300 }),
  },
  { requiredKeys: ["id", "exchange", "routingKey", "priority", "headers", "body"] },
);

/** One flippable place of an envelope: how many bits it has and the envelope with bit `i` flipped. */
interface Place {
  readonly where: string;
  readonly bits: number;
  flip(i: number): Envelope;
}

const flipString = (s: string, i: number): string => {
  const units = [...Array(s.length).keys()].map((k) => s.charCodeAt(k));
  units[Math.floor(i / 16)] ^= 1 << (i % 16);
  return String.fromCharCode(...units);
};
const flipNumber = (x: number, i: number): number => {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  view.setUint8(Math.floor(i / 8), view.getUint8(Math.floor(i / 8)) ^ (1 << (i % 8)));
  return view.getFloat64(0);
};
const flipBytes = (bytes: Uint8Array, i: number): Uint8Array => {
  const copy = Uint8Array.from(bytes);
  copy[Math.floor(i / 8)] ^= 1 << (i % 8);
  return copy;
};

const placesOf = (e: Envelope): Place[] => {
  const places: Place[] = [];
  const field = (name: "id" | "exchange" | "routingKey") =>
    places.push({ where: name, bits: e[name].length * 16, flip: (i) => ({ ...e, [name]: flipString(e[name], i) }) });
  field("id");
  field("exchange");
  field("routingKey");
  places.push({ where: "priority", bits: 64, flip: (i) => ({ ...e, priority: flipNumber(e.priority, i) }) });
  if (e.eta !== undefined)
    places.push({ where: "eta", bits: 64, flip: (i) => ({ ...e, eta: flipNumber(e.eta as number, i) }) });
  if (e.expires !== undefined)
    places.push({ where: "expires", bits: 64, flip: (i) => ({ ...e, expires: flipNumber(e.expires as number, i) }) });
  // The signed body: the body as published, then the trailer with the proof and the batch signature.
  places.push({
    where: "body or its signature trailer",
    bits: e.body.length * 8,
    flip: (i) => ({ ...e, body: flipBytes(e.body, i) }),
  });
  for (const [key, value] of Object.entries(e.headers)) {
    const rest = Object.fromEntries(Object.entries(e.headers).filter(([k]) => k !== key));
    places.push({
      where: `header name '${key}'`,
      bits: key.length * 16,
      flip: (i) => ({ ...e, headers: { ...rest, [flipString(key, i)]: value } }),
    });
    const withValue = (v: HeaderValue): Envelope => ({ ...e, headers: { ...e.headers, [key]: v } });
    if (typeof value === "string") {
      places.push({ where: `header '${key}'`, bits: value.length * 16, flip: (i) => withValue(flipString(value, i)) });
    } else if (typeof value === "number")
      places.push({ where: `header '${key}'`, bits: 64, flip: (i) => withValue(flipNumber(value, i)) });
    else if (typeof value === "boolean")
      places.push({ where: `header '${key}'`, bits: 1, flip: () => withValue(!value) });
  }
  return places.filter((p) => p.bits > 0);
};

describe("signed envelopes (property)", () => {
  it("every message of a random batch verifies, in any order", () => {
    fc.assert(
      fc.property(fc.array(envelope, { minLength: 1, maxLength: 40 }), fc.nat(), (batch, start) => {
        const signed = signer.sign(batch);
        for (let k = 0; k < signed.length; k++) {
          const checked = verifier.check(signed[(start + k) % signed.length]);
          assert.equal(checked.ok, true, checked.ok ? "" : checked.reason);
        }
      }),
      { numRuns: 200 },
    );
  });

  it("any single bit flipped anywhere in a signed message is refused, even once its batch root is cached", () => {
    fc.assert(
      fc.property(
        fc.array(envelope, { minLength: 1, maxLength: 8 }),
        fc.nat(),
        fc.nat(),
        fc.nat(),
        (batch, which, placeSeed, bitSeed) => {
          const signed = signer.sign(batch);
          const target = signed[which % signed.length];
          assert.equal(verifier.check(signed[0]).ok, true);
          const places = placesOf(target);
          const place = places[placeSeed % places.length];
          const tampered = place.flip(bitSeed % place.bits);
          assert.equal(verifier.check(tampered).ok, false, `a flip in ${place.where} was accepted`);
        },
      ),
      { numRuns: 2_000 },
    );
  });
});
