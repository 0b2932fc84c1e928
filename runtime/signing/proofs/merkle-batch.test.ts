import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { PROOF_STEP_BYTES, buildBatch, rootFromProof } from "./merkle-batch.ts";

/** Stand-ins for leaf hashes: the tree treats a leaf as 32 opaque bytes. */
const leaves = (n: number) => Array.from({ length: n }, () => randomBytes(32));

describe("merkle batch", () => {
  it("leads every leaf of batches of 1 to 33 to the root with a proof of ceil(log2 n) steps at most", () => {
    for (let n = 1; n <= 33; n++) {
      const batch = leaves(n);
      const { root, proofs } = buildBatch(batch);
      batch.forEach((leaf, i) => {
        assert.deepEqual(rootFromProof(leaf, proofs[i]), root, `leaf ${i} of ${n}`);
        assert.ok(proofs[i].length <= Math.ceil(Math.log2(n)) * PROOF_STEP_BYTES);
      });
    }
  });

  it("leads another leaf, a swapped proof or a flipped side byte elsewhere", () => {
    const batch = leaves(8);
    const { root, proofs } = buildBatch(batch);
    assert.notDeepEqual(rootFromProof(batch[1], proofs[0]), root);
    const flipped = Buffer.from(proofs[3]);
    flipped[PROOF_STEP_BYTES] ^= 1;
    assert.notDeepEqual(rootFromProof(batch[3], flipped), root);
  });

  it("refuses a proof that is not whole steps or has a side byte other than 0 or 1", () => {
    const batch = leaves(4);
    const { proofs } = buildBatch(batch);
    assert.equal(rootFromProof(batch[0], proofs[0].subarray(1)), undefined);
    const bad = Buffer.from(proofs[0]);
    bad[0] = 2;
    assert.equal(rootFromProof(batch[0], bad), undefined);
  });

  it("refuses an empty batch", () => {
    assert.throws(() => buildBatch([]), /at least one message/);
  });
});
