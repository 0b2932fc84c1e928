// A Merkle tree over a batch of messages, so that one signature covers the
// whole batch and each message carries only its inclusion proof: the
// sibling hashes from its leaf up to the root. A verifier rebuilds the root
// from a message and its proof (log2 N hashes) and checks the root's
// signature once per batch.
//
// Leaves and inner nodes hash with different prefixes (0x00 and 0x01, as in
// RFC 6962), so no leaf can pass for an inner node. A level with an odd
// count carries its last node up unchanged.
//
// A proof is a byte string of 33-byte steps: a side byte (0x00: the sibling
// is on the left, 0x01: on the right) and the sibling's 32-byte hash.
import { DIGEST_BYTES } from "./digest.ts";
import { innerNodeHash } from "./inner-node-hash.ts";

/**
 * The prefix of a leaf's hash (an inner node's is 0x01, inner-node-hash.ts).
 *
 * @example
 * const leaves = envelopes.map((envelope) => envelopeLeaf(envelope)); // canonical-envelope.ts
 * const { root, proofs } = buildBatch(leaves);
 * rootFromProof(leaves[3], proofs[3]); // equals root
 */
export const LEAF_PREFIX = 0x00;
export const PROOF_STEP_BYTES = 1 + DIGEST_BYTES;

const innerHash = (left: Uint8Array, right: Uint8Array): Buffer => innerNodeHash(left, 0, right, 0);

export interface Batch {
  readonly root: Buffer;
  /** One proof per leaf, in leaf order. */
  readonly proofs: readonly Buffer[];
}

/** Build the tree over `leaves` (at least one) and every leaf's proof. */
export const buildBatch = (leaves: readonly Buffer[]): Batch => {
  if (leaves.length === 0) throw new RangeError("a batch needs at least one message");
  const levels: Buffer[][] = [leaves as Buffer[]];
  for (let level = levels[0]; level.length > 1; ) {
    const next: Buffer[] = [];
    for (let i = 0; i < level.length; i += 2)
      next.push(i + 1 < level.length ? innerHash(level[i], level[i + 1]) : level[i]);
    levels.push(next);
    level = next;
  }
  // A node's sibling is at index ^ 1 and its parent at index >> 1; a last node without a sibling is carried up.
  const depth = levels.length - 1;
  const space = Buffer.allocUnsafe(leaves.length * depth * PROOF_STEP_BYTES);
  const proofs: Buffer[] = [];
  for (let leaf = 0, offset = 0; leaf < leaves.length; leaf++) {
    const start = offset;
    for (let level = 0, index = leaf; level < depth; level++, index >>= 1) {
      const sibling = index ^ 1;
      if (sibling >= levels[level].length) continue;
      space[offset] = index & 1 ? 0 : 1;
      levels[level][sibling].copy(space, offset + 1);
      offset += PROOF_STEP_BYTES;
    }
    proofs.push(space.subarray(start, offset));
  }
  return { root: levels[depth][0], proofs };
};

/** The node one step of `proof` (at byte `offset`) leads to from `node`; undefined for a side byte other than 0 or 1. */
export const stepUp = (node: Buffer, proof: Uint8Array, offset: number): Buffer | undefined => {
  const side = proof[offset];
  const sibling = offset + 1;
  if (offset + PROOF_STEP_BYTES > proof.length) return undefined;
  return side === 1
    ? innerNodeHash(node, 0, proof, sibling)
    : side === 0
      ? innerNodeHash(proof, sibling, node, 0)
      : undefined;
};

/** The root that `leaf` and `proof` lead to, or undefined when the proof is not a whole number of well-formed steps. */
export const rootFromProof = (leaf: Buffer, proof: Uint8Array): Buffer | undefined => {
  if (proof.length % PROOF_STEP_BYTES !== 0) return undefined;
  let node: Buffer | undefined = leaf;
  for (let offset = 0; offset < proof.length && node !== undefined; offset += PROOF_STEP_BYTES)
    node = stepUp(node, proof, offset);
  return node;
};
