// SHA-256 of a Merkle tree's inner node: 0x01, the left child's hash, the
// right child's hash (65 bytes, two SHA-256 blocks). Written out in
// JavaScript because node:crypto's fixed cost per call (setting up a hash
// context in C++) is about twice what the two blocks cost here: a signing
// worker hashes one or two inner nodes per message and a producer one.
// Longer inputs (a message's leaf) still go to node:crypto (digest.ts).
// Checked against node:crypto in inner-node-hash.test.ts.
import { DIGEST_BYTES } from "./digest.ts";

const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
  0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
  0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
  0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
  0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
  0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
  0xc67178f2,
]);
const INITIAL = new Int32Array([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);

const INNER_PREFIX = 0x01;
const MESSAGE_BYTES = 1 + 2 * DIGEST_BYTES;

/** The padded message: two blocks, the padding and the bit length (520) written once. */
const message = new Uint8Array(128);
message[0] = INNER_PREFIX;
message[MESSAGE_BYTES] = 0x80;
message[126] = (MESSAGE_BYTES * 8) >>> 8;
message[127] = (MESSAGE_BYTES * 8) & 0xff;

const W = new Int32Array(64);
const H = new Int32Array(8);

const compress = (offset: number): void => {
  for (let i = 0, o = offset; i < 16; i++, o += 4)
    W[i] = (message[o] << 24) | (message[o + 1] << 16) | (message[o + 2] << 8) | message[o + 3];
  for (let i = 16; i < 64; i++) {
    const a = W[i - 15];
    const b = W[i - 2];
    const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
    const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
    W[i] = (s1 + W[i - 7] + s0 + W[i - 16]) | 0;
  }
  let a = H[0];
  let b = H[1];
  let c = H[2];
  let d = H[3];
  let e = H[4];
  let f = H[5];
  let g = H[6];
  let h = H[7];
  for (let i = 0; i < 64; i++) {
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const t1 = (h + S1 + ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  H[0] = (H[0] + a) | 0;
  H[1] = (H[1] + b) | 0;
  H[2] = (H[2] + c) | 0;
  H[3] = (H[3] + d) | 0;
  H[4] = (H[4] + e) | 0;
  H[5] = (H[5] + f) | 0;
  H[6] = (H[6] + g) | 0;
  H[7] = (H[7] + h) | 0;
};

/**
 * SHA-256 of 0x01, the 32 bytes of `left` from `leftAt`, and the 32 bytes of
 * `right` from `rightAt` (offsets, so a proof's sibling is read in place).
 */
export const innerNodeHash = (left: Uint8Array, leftAt: number, right: Uint8Array, rightAt: number): Buffer => {
  for (let i = 0; i < DIGEST_BYTES; i++) {
    message[1 + i] = left[leftAt + i];
    message[1 + DIGEST_BYTES + i] = right[rightAt + i];
  }
  H.set(INITIAL);
  compress(0);
  compress(64);
  const out = Buffer.allocUnsafe(DIGEST_BYTES);
  for (let i = 0, o = 0; i < 8; i++, o += 4) {
    const word = H[i];
    out[o] = word >>> 24;
    out[o + 1] = word >>> 16;
    out[o + 2] = word >>> 8;
    out[o + 3] = word;
  }
  return out;
};
