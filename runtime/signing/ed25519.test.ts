import assert from "node:assert/strict";
import { describe, it } from "node:test";
import nacl from "tweetnacl";
import { defaultEd25519, naclEd25519, nativeEd25519 } from "./ed25519.ts";

const message = new TextEncoder().encode(
  "a 163-byte-ish celerity message: task add, args [2, 2], and a few headers to make it look real",
);

describe("ed25519 backends", () => {
  it("produce byte-identical signatures, and each accepts the other's", () => {
    for (let i = 0; i < 20; i++) {
      const { secretKey, publicKey } = nacl.sign.keyPair();
      const data = nacl.randomBytes(i * 13);
      const native = nativeEd25519.signer(secretKey)(data);
      const pure = naclEd25519.signer(secretKey)(data);
      assert.deepEqual(Buffer.from(native), Buffer.from(pure));
      assert.equal(nativeEd25519.verifier(publicKey)(data, pure), true);
      assert.equal(naclEd25519.verifier(publicKey)(data, native), true);
    }
  });

  it("both refuse a flipped bit in the message or the signature, and another key's signature", () => {
    const { secretKey, publicKey } = nacl.sign.keyPair();
    const other = nacl.sign.keyPair();
    for (const backend of [nativeEd25519, naclEd25519]) {
      const signature = backend.signer(secretKey)(message);
      const verify = backend.verifier(publicKey);
      const flippedMessage = Uint8Array.from(message);
      flippedMessage[5] ^= 1;
      const flippedSignature = Uint8Array.from(signature);
      flippedSignature[40] ^= 0x80;
      assert.equal(verify(message, signature), true, backend.name);
      assert.equal(verify(flippedMessage, signature), false, backend.name);
      assert.equal(verify(message, flippedSignature), false, backend.name);
      assert.equal(verify(message, backend.signer(other.secretKey)(message)), false, backend.name);
      assert.equal(verify(message, signature.subarray(0, 63)), false, `${backend.name}: short signature`);
    }
  });

  it("uses node:crypto where it signs ed25519 (Node 20 does)", () => {
    assert.equal(defaultEd25519().name, "node:crypto");
  });
});
