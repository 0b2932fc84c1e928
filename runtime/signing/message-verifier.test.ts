import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Envelope } from "../../broker/envelope.ts";
import { naclEd25519, nativeEd25519 } from "./ed25519.ts";
import { BatchSigner } from "./message-signer.ts";
import { MessageVerifier } from "./message-verifier.ts";
import { readTrailer } from "./proofs/signature-trailer.ts";
import { freshKeys, sampleEnvelope } from "./test-keys.ts";

const NOW = 1_750_000_000_000;
const clock = { now: NOW };
const now = () => clock.now;

const setup = () => {
  const producer = freshKeys();
  const signer = new BatchSigner(producer.pair, nativeEd25519, now);
  const verifier = new MessageVerifier([producer.trusted], nativeEd25519, { now });
  return { producer, signer, verifier };
};

const batchOf = (n: number): Envelope[] =>
  Array.from({ length: n }, (_, i) =>
    sampleEnvelope({
      id: `id-${i}`,
      headers: { task: "add", retries: 0, workflow: "wf", node: i },
      body: new Uint8Array([i, 1, 2, 3]),
    }),
  );

const rejects = (verifier: MessageVerifier, envelope: Envelope, pattern: RegExp) => {
  const checked = verifier.check(envelope);
  assert.equal(checked.ok, false, `expected a refusal matching ${pattern}`);
  if (!checked.ok) assert.match(checked.reason, pattern);
};

describe("signed envelopes", () => {
  it("verify, every message of a batch, in any order", () => {
    const { signer, verifier } = setup();
    const signed = signer.sign(batchOf(10));
    for (const envelope of [...signed].reverse()) assert.equal(verifier.check(envelope).ok, true);
  });

  it("verify under tweetnacl what node:crypto signed, and the other way round", () => {
    const { producer } = setup();
    const signedNative = new BatchSigner(producer.pair, nativeEd25519, now).sign(batchOf(3));
    const signedNacl = new BatchSigner(producer.pair, naclEd25519, now).sign(batchOf(3));
    assert.deepEqual(signedNative, signedNacl);
    assert.equal(new MessageVerifier([producer.trusted], naclEd25519, { now }).check(signedNative[1]).ok, true);
    assert.equal(new MessageVerifier([producer.trusted], nativeEd25519, { now }).check(signedNacl[2]).ok, true);
  });

  it("are refused when any routing field, header or the body is changed", () => {
    const { signer, verifier } = setup();
    const [signed] = signer.sign(batchOf(4));
    const changed: Envelope[] = [
      { ...signed, id: "id-1" },
      { ...signed, exchange: "other" },
      { ...signed, routingKey: "elsewhere" },
      { ...signed, priority: 9 },
      { ...signed, eta: NOW + 60_000 },
      { ...signed, expires: NOW + 60_000 },
      { ...signed, headers: { ...signed.headers, task: "rm" } },
      { ...signed, headers: { ...signed.headers, retries: 1 } },
      { ...signed, headers: { ...signed.headers, node: 3 } },
      { ...signed, headers: { ...signed.headers, extra: "added" } },
      { ...signed, headers: { ...signed.headers, "sig.at": NOW - 1 } },
      { ...signed, body: Uint8Array.from([9, ...signed.body.subarray(1)]) },
    ];
    for (const envelope of changed) rejects(verifier, envelope, /does not match/);
  });

  it("are refused when the proof, the signature or the trailer is changed, even after their batch's root was verified", () => {
    const { signer, verifier } = setup();
    const signed = signer.sign(batchOf(4));
    assert.equal(verifier.check(signed[0]).ok, true); // the root is now cached
    const target = signed[1];
    const { proof, signature } = readTrailer(target.body)!;
    const at = (view: Uint8Array) => view.byteOffset - target.body.byteOffset;
    const flipped = (offset: number) => {
      const body = Uint8Array.from(target.body);
      body[offset] ^= 1;
      return { ...target, body };
    };
    rejects(verifier, flipped(at(proof) + 5), /does not match/);
    rejects(verifier, flipped(at(signature) + 10), /does not match/);
    rejects(verifier, flipped(at(proof)), /malformed|does not match/); // a side byte
    rejects(verifier, flipped(target.body.length - 1), /no signature trailer/);
    rejects(verifier, flipped(target.body.length - 3), /no signature trailer|does not match/); // the step count
    rejects(verifier, { ...target, body: target.body.subarray(0, target.body.length - 70) }, /no signature trailer/);
    rejects(verifier, { ...target, headers: { ...target.headers, "sig.key": undefined } }, /not signed/);
    assert.equal(verifier.check(target).ok, true);
  });

  it("are refused when unsigned, or signed by a key that is not trusted", () => {
    const { verifier } = setup();
    rejects(verifier, sampleEnvelope(), /not signed/);
    const stranger = freshKeys();
    const [signed] = new BatchSigner(stranger.pair, nativeEd25519, now).sign(batchOf(1));
    rejects(verifier, signed, new RegExp(`key ${stranger.pair.keyId} is not trusted`));
    // Naming a trusted key does not help a stranger's signature.
    const { producer } = setup();
    const claims = new MessageVerifier([producer.trusted, stranger.trusted], nativeEd25519, { now });
    rejects(claims, { ...signed, headers: { ...signed.headers, "sig.key": producer.pair.keyId } }, /does not match/);
  });

  it("are refused once their key is rotated out, though their root was verified before", () => {
    const { producer, signer, verifier } = setup();
    const next = freshKeys();
    verifier.trust([producer.trusted, next.trusted]);
    const [old] = signer.sign(batchOf(1));
    const [fresh] = new BatchSigner(next.pair, nativeEd25519, now).sign(batchOf(1));
    assert.equal(verifier.check(old).ok, true);
    assert.equal(verifier.check(fresh).ok, true);
    verifier.trust([next.trusted]);
    rejects(verifier, old, /is not trusted/);
    assert.equal(verifier.check(fresh).ok, true);
  });

  it("are refused outside the time window: too old, or from too far in the future; a delayed one counts from its eta", () => {
    const { producer } = setup();
    const windowed = new MessageVerifier([producer.trusted], nativeEd25519, {
      now,
      maxAgeMs: 60_000,
      maxSkewMs: 1_000,
    });
    const own = new BatchSigner(producer.pair, nativeEd25519, now);
    const [signed] = own.sign(batchOf(1));
    const [delayed] = own.sign([{ ...batchOf(1)[0], eta: NOW + 600_000 }]);
    clock.now = NOW + 61_000;
    rejects(windowed, signed, /signed 61000 ms ago, outside the window of 60000 ms/);
    assert.equal(windowed.check(delayed).ok, true);
    clock.now = NOW - 5_000;
    rejects(windowed, signed, /in the future/);
    clock.now = NOW;
    assert.equal(windowed.check(signed).ok, true);
  });
});
