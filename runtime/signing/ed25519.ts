// Ed25519 behind one interface: node:crypto's native implementation where
// the runtime has it, tweetnacl's where it does not. Ed25519 is
// deterministic, so both produce the same 64 bytes for the same key and
// message, and each accepts the other's signatures (ed25519.test.ts holds
// them to it). Keys are in tweetnacl's format: a 64-byte secret key (the
// 32-byte seed followed by the public key) and a 32-byte public key.
//
// A signer or verifier is made once per key: node:crypto's key objects cost
// more to build than a signature does to check.
import {
  createPrivateKey,
  createPublicKey,
  sign as nativeSign,
  verify as nativeVerify,
  type KeyObject,
} from "node:crypto";
import nacl from "tweetnacl";

/**
 * One Ed25519 implementation: it makes a signer per secret key and a verifier per public key.
 *
 * @example
 * const backend = defaultEd25519();
 * const sign = backend.signer(secretKey);
 * const ok = backend.verifier(publicKey)(message, sign(message));
 */
export interface Ed25519 {
  readonly name: "node:crypto" | "tweetnacl";
  /** A function that signs with `secretKey` (64 bytes, tweetnacl's format). */
  signer(secretKey: Uint8Array): (message: Uint8Array) => Uint8Array;
  /** A function that checks a 64-byte signature against `publicKey` (32 bytes); never throws on a bad signature. */
  verifier(publicKey: Uint8Array): (message: Uint8Array, signature: Uint8Array) => boolean;
}

export const SECRET_KEY_BYTES = 64;
export const PUBLIC_KEY_BYTES = 32;
export const SIGNATURE_BYTES = 64;

// DER prefixes that wrap a raw 32-byte ed25519 seed (PKCS#8) and public key (SPKI).
const PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
const SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

const privateKeyOf = (secretKey: Uint8Array): KeyObject =>
  createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, secretKey.subarray(0, 32)]), format: "der", type: "pkcs8" });

const publicKeyOf = (publicKey: Uint8Array): KeyObject =>
  createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: "der", type: "spki" });

/** node:crypto's ed25519 (OpenSSL): about 150 times faster than tweetnacl here. */
export const nativeEd25519: Ed25519 = {
  name: "node:crypto",
  signer(secretKey) {
    const key = privateKeyOf(secretKey);
    return (message) => nativeSign(null, message, key);
  },
  verifier(publicKey) {
    const key = publicKeyOf(publicKey);
    return (message, signature) => signature.length === SIGNATURE_BYTES && nativeVerify(null, message, key, signature);
  },
};

/** tweetnacl's ed25519, in pure JavaScript: the fallback for runtimes without a native one. */
export const naclEd25519: Ed25519 = {
  name: "tweetnacl",
  signer(secretKey) {
    const key = Uint8Array.from(secretKey);
    return (message) => nacl.sign.detached(message, key);
  },
  verifier(publicKey) {
    const key = Uint8Array.from(publicKey);
    return (message, signature) =>
      signature.length === SIGNATURE_BYTES && nacl.sign.detached.verify(message, signature, key);
  },
};

let detected: Ed25519 | undefined;

/** The native backend if this runtime's node:crypto signs and verifies ed25519 correctly, else tweetnacl's. */
export const defaultEd25519 = (): Ed25519 => (detected ??= nativeWorks() ? nativeEd25519 : naclEd25519);

const nativeWorks = (): boolean => {
  try {
    const pair = nacl.sign.keyPair.fromSeed(new Uint8Array(32).fill(7));
    const probe = new TextEncoder().encode("celerity ed25519 probe");
    const signature = nativeEd25519.signer(pair.secretKey)(probe);
    return (
      nacl.sign.detached.verify(probe, signature, pair.publicKey) &&
      nativeEd25519.verifier(pair.publicKey)(probe, signature)
    );
  } catch {
    return false;
  }
};
