// Where a signed message carries its proof and its batch's signature: in a
// trailer after the body, as raw bytes. Headers would need them as base64
// text (headers hold strings, not bytes), which a broker node decodes and
// encodes again for every message, and which costs each end an encoding.
// The broker moves the body as an opaque byte string, so the trailer costs
// it nothing but its length (7 * 33 + 67 bytes for a batch of 128).
//
//   body | proof (33 bytes a step) | signature (64) | step count (u8) | 0xc5 0x16
//
// The trailer is not covered by the signature (it is made from it); any
// change to it changes the root the proof leads to or the signature checked.
import { SIGNATURE_BYTES } from "../ed25519.ts";
import { PROOF_STEP_BYTES } from "./merkle-batch.ts";

const MAGIC_0 = 0xc5;
const MAGIC_1 = 0x16;
const FIXED = SIGNATURE_BYTES + 3;
export const MAX_PROOF_STEPS = 255;

/**
 * `body` followed by the trailer holding its proof and its batch's signature.
 *
 * @example
 * const signedBody = withTrailer(body, proof, signature);
 * const { body, proof, signature } = readTrailer(signedBody)!;
 */
export const withTrailer = (body: Uint8Array, proof: Uint8Array, signature: Uint8Array): Uint8Array => {
  const steps = proof.length / PROOF_STEP_BYTES;
  if (!Number.isInteger(steps) || steps > MAX_PROOF_STEPS)
    throw new RangeError(`a proof of ${proof.length} bytes cannot be carried`);
  const out = new Uint8Array(body.length + proof.length + FIXED);
  out.set(body, 0);
  out.set(proof, body.length);
  out.set(signature, body.length + proof.length);
  const end = out.length;
  out[end - 3] = steps;
  out[end - 2] = MAGIC_0;
  out[end - 1] = MAGIC_1;
  return out;
};

export interface Trailer {
  /** The body as published (views of the signed body, no copies). */
  readonly body: Uint8Array;
  readonly proof: Uint8Array;
  readonly signature: Uint8Array;
}

/** Split a signed body; undefined when it carries no well-formed trailer. */
export const readTrailer = (signed: Uint8Array): Trailer | undefined => {
  const end = signed.length;
  if (end < FIXED || signed[end - 1] !== MAGIC_1 || signed[end - 2] !== MAGIC_0) return undefined;
  const proofBytes = signed[end - 3] * PROOF_STEP_BYTES;
  const bodyEnd = end - FIXED - proofBytes;
  if (bodyEnd < 0) return undefined;
  return {
    body: signed.subarray(0, bodyEnd),
    proof: signed.subarray(bodyEnd, bodyEnd + proofBytes),
    signature: signed.subarray(end - FIXED, end - 3),
  };
};
